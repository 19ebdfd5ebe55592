"""The REST namespaces of the ``OpenRouter`` client: keys, OAuth, credits, activity
and non-streaming responses.

The one job of this module is to map one method call to one HTTP exchange on
the client's shared
:class:`~runtime._http.transport.ApiTransport`, so every call gets the same auth,
attribution headers, retry policy and typed errors as ``call_model``. Chat and
legacy completions, which can stream, live in :mod:`runtime._rest.chat`; the
paged model catalogue in :mod:`runtime._rest.models`.

Rules every method keeps:

1. **Eager validation.** Arguments are checked before any I/O; a bad one
   raises :class:`~runtime._base.errors.ConfigurationError` naming it. Nothing is
   sent for a call that raised.
2. **Async iff it does I/O, and then always a checkpoint** (the transport's
   ``request`` checkpoints on every call). The pure helpers
   (:meth:`OAuth.create_authorization_url`,
   :meth:`OAuth.create_sha256_code_challenge`) are synchronous.
3. **Cancellation** leaves nothing open: the transport closes the response
   (shielded) on every path. A cancelled ``create`` may still have created the
   key on the server; only the answer is lost.
4. **Errors**: a non-2xx answer is the typed ``APIStatusError`` subclass of its
   status (401 ``AuthenticationError``, 403 ``PermissionDeniedError``, 404
   ``NotFoundError`` ...); network trouble is ``TransportError``; a 2xx body
   that does not decode is ``RemoteProtocolError``.
5. **Secrets**: the plaintext keys of :class:`CreatedKey` and
   :class:`ExchangedKey` never appear in a repr or an error message.
"""

from __future__ import annotations

import urllib.parse
import warnings
from typing import TYPE_CHECKING, Any, Final, Literal, final

import msgspec
from msgspec import UNSET, UnsetType

from runtime._base.errors import ConfigurationError
from runtime._protocol.oauth import (
    CodeChallenge,
    create_authorization_url,
    create_sha256_code_challenge,
)
from runtime._protocol.wire import Response, ResponsesRequest, decode_response, encode_request
from runtime._rest.checks import (
    bool_text,
    check_absolute_url,
    check_bool,
    check_choice,
    check_date,
    check_datetime,
    check_int,
    check_key_hash,
    check_number,
    check_str,
    check_uuid,
    decode_body,
)
from runtime._rest.types import (
    ActivityItem,
    AuthCode,
    CreateAuthCodeRequest,
    CreatedKey,
    CreateKeyRequest,
    Credits,
    ExchangeAuthCodeRequest,
    ExchangedKey,
    KeyInfo,
    KeyMetadata,
    LimitReset,
    UpdateKeyRequest,
)

if TYPE_CHECKING:
    import builtins
    import datetime
    import uuid

    from runtime._http.transport import ApiTransport

__all__ = [
    "Analytics",
    "ApiKeys",
    "Beta",
    "CreditsAPI",
    "OAuth",
    "Responses",
]

_LIMIT_RESETS: Final = ("daily", "weekly", "monthly")
_CHALLENGE_METHODS: Final = ("S256", "plain")


class _KeyEnvelope(msgspec.Struct, frozen=True):
    data: KeyInfo


class _KeyListEnvelope(msgspec.Struct, frozen=True):
    data: list[KeyInfo]


class _MetadataEnvelope(msgspec.Struct, frozen=True):
    data: KeyMetadata


class _CreditsEnvelope(msgspec.Struct, frozen=True):
    data: Credits


class _ActivityEnvelope(msgspec.Struct, frozen=True):
    data: list[ActivityItem]


class _AuthCodeEnvelope(msgspec.Struct, frozen=True):
    data: AuthCode


class _Deleted(msgspec.Struct, frozen=True):
    deleted: bool


_KEY: Final = msgspec.json.Decoder(_KeyEnvelope)
_KEY_LIST: Final = msgspec.json.Decoder(_KeyListEnvelope)
_METADATA: Final = msgspec.json.Decoder(_MetadataEnvelope)
_CREDITS: Final = msgspec.json.Decoder(_CreditsEnvelope)
_ACTIVITY: Final = msgspec.json.Decoder(_ActivityEnvelope)
_AUTH_CODE: Final = msgspec.json.Decoder(_AuthCodeEnvelope)
_CREATED_KEY: Final = msgspec.json.Decoder(CreatedKey)
_EXCHANGED_KEY: Final = msgspec.json.Decoder(ExchangedKey)
_DELETED: Final = msgspec.json.Decoder(_Deleted)
_ENCODER: Final = msgspec.json.Encoder()


def _key_path(hash: object) -> str:
    return f"/keys/{urllib.parse.quote(check_key_hash(hash), safe='')}"


def _limit_reset(name: str, value: object) -> LimitReset | None:
    if value is None:
        return None
    check_choice(name, value, _LIMIT_RESETS)
    return value  # type: ignore[return-value]  # narrowed by check_choice


# --------------------------------------------------------------------------- keys


@final
class ApiKeys:
    """``client.api_keys``: API key management (``/key``, ``/keys``).

    Everything but :meth:`get_current_key_metadata` needs a management key;
    an inference key gets :class:`~runtime._base.errors.PermissionDeniedError` (403).

    Args:
        transport: the client's transport (auth, retries, error mapping).
    """

    def __init__(self, transport: ApiTransport) -> None:
        self._transport = transport

    async def list(
        self,
        *,
        include_disabled: bool | None = None,
        offset: int | None = None,
        workspace_id: str | uuid.UUID | None = None,
    ) -> builtins.list[KeyInfo]:
        """List the account's API keys (``GET /keys``), a page of up to 100 from ``offset``.

        Args:
            include_disabled: also list disabled keys.
            offset: how many keys to skip.
            workspace_id: list the keys of this workspace instead of the default one.

        Returns:
            The keys' metadata (never their secrets).

        Raises:
            ConfigurationError: a bad argument (before any I/O).
            AuthenticationError: the client's key is missing or invalid (401).
            PermissionDeniedError: the client's key is not a management key (403).

        Example::

            for info in await client.api_keys.list(include_disabled=True):
                print(info.name, info.usage)
        """
        params: dict[str, str] = {}
        if include_disabled is not None:
            params["include_disabled"] = bool_text(check_bool("include_disabled", include_disabled))
        if offset is not None:
            params["offset"] = str(check_int("offset", offset, minimum=0))
        if workspace_id is not None:
            params["workspace_id"] = check_uuid("workspace_id", workspace_id)
        response = await self._transport.request("GET", "/keys", params=params or None)
        return decode_body(_KEY_LIST, response.body, "a list of keys").data

    async def create(
        self,
        *,
        name: str,
        limit: float | None = None,
        limit_reset: LimitReset | None = None,
        include_byok_in_limit: bool | None = None,
        expires_at: str | datetime.datetime | None = None,
        creator_user_id: str | None = None,
        workspace_id: str | uuid.UUID | None = None,
    ) -> CreatedKey:
        """Create an API key (``POST /keys``); its secret is returned only here.

        Args:
            name: a name for the key (non-empty).
            limit: a spending limit in USD (``None``: no limit).
            limit_reset: reset the limit ``"daily"``, ``"weekly"`` or ``"monthly"``.
            include_byok_in_limit: count bring-your-own-key usage against the limit.
            expires_at: when the key stops working (ISO 8601 string or an aware
                ``datetime``).
            creator_user_id: the organization member who owns the key.
            workspace_id: create the key in this workspace.

        Returns:
            The new key's info and, in ``.key``, the secret (redacted in reprs).

        Raises:
            ConfigurationError: a bad argument (before any I/O).
            AuthenticationError: 401. PermissionDeniedError: 403 (not a management key).
            BadRequestError: the server refused the body (400).

        Example::

            created = await client.api_keys.create(name="ci", limit=5.0, limit_reset="daily")
            store_secret(created.key)
        """
        body = CreateKeyRequest(
            name=check_str("name", name),
            limit=UNSET if limit is None else check_number("limit", limit, minimum=0),
            limit_reset=UNSET if limit_reset is None else _limit_reset("limit_reset", limit_reset),
            include_byok_in_limit=UNSET
            if include_byok_in_limit is None
            else check_bool("include_byok_in_limit", include_byok_in_limit),
            expires_at=UNSET if expires_at is None else check_datetime("expires_at", expires_at),
            creator_user_id=UNSET
            if creator_user_id is None
            else check_str("creator_user_id", creator_user_id),
            workspace_id=UNSET
            if workspace_id is None
            else check_uuid("workspace_id", workspace_id),
        )
        response = await self._transport.request("POST", "/keys", content=_ENCODER.encode(body))
        return decode_body(_CREATED_KEY, response.body, "a created key")

    async def get(self, hash: str) -> KeyInfo:
        """One key's metadata (``GET /keys/{hash}``).

        Raises:
            ConfigurationError: ``hash`` is not a key hash (before any I/O).
            NotFoundError: no key has this hash (404).
            AuthenticationError: 401. PermissionDeniedError: 403.

        Example::

            info = await client.api_keys.get(created.hash)
        """
        path = _key_path(hash)
        response = await self._transport.request("GET", path)
        return decode_body(_KEY, response.body, "a key").data

    async def update(
        self,
        hash: str,
        *,
        name: str | UnsetType = UNSET,
        disabled: bool | UnsetType = UNSET,
        limit: float | UnsetType | None = UNSET,
        limit_reset: LimitReset | UnsetType | None = UNSET,
        include_byok_in_limit: bool | UnsetType = UNSET,
    ) -> KeyInfo:
        """Change a key (``PATCH /keys/{hash}``); only the arguments given are sent.

        Args:
            hash: the key's hash.
            name: a new name.
            disabled: disable (``True``) or re-enable (``False``) the key.
            limit: a new spending limit in USD; ``None`` removes the limit.
            limit_reset: ``"daily"``, ``"weekly"``, ``"monthly"``, or ``None``
                for a limit that never resets.
            include_byok_in_limit: count BYOK usage against the limit.

        Returns:
            The key's metadata after the change.

        Raises:
            ConfigurationError: a bad argument (before any I/O).
            NotFoundError: 404. AuthenticationError: 401. PermissionDeniedError: 403.

        Example::

            await client.api_keys.update(created.hash, disabled=True)
        """
        path = _key_path(hash)
        body = UpdateKeyRequest(
            name=UNSET if name is UNSET else check_str("name", name),
            disabled=UNSET if disabled is UNSET else check_bool("disabled", disabled),
            limit=limit
            if limit is UNSET or limit is None
            else check_number("limit", limit, minimum=0),
            limit_reset=UNSET if limit_reset is UNSET else _limit_reset("limit_reset", limit_reset),
            include_byok_in_limit=UNSET
            if include_byok_in_limit is UNSET
            else check_bool("include_byok_in_limit", include_byok_in_limit),
        )
        response = await self._transport.request("PATCH", path, content=_ENCODER.encode(body))
        return decode_body(_KEY, response.body, "a key").data

    async def delete(self, hash: str) -> bool:
        """Delete a key (``DELETE /keys/{hash}``); it stops working at once.

        Returns:
            ``True`` (the server's ``deleted`` confirmation).

        Raises:
            ConfigurationError: ``hash`` is not a key hash (before any I/O).
            NotFoundError: 404. AuthenticationError: 401. PermissionDeniedError: 403.

        Example::

            assert await client.api_keys.delete(created.hash)
        """
        path = _key_path(hash)
        response = await self._transport.request("DELETE", path)
        return decode_body(_DELETED, response.body, "a deletion confirmation").deleted

    async def get_current_key_metadata(self) -> KeyMetadata:
        """What the server knows about the client's own key (``GET /key``).

        Works with any key. ``label`` is the masked key, ``limit_remaining``
        what is left to spend.

        Raises:
            AuthenticationError: the key is missing, unknown, disabled or expired (401).

        Example::

            meta = await client.api_keys.get_current_key_metadata()
            print(meta.label, meta.limit_remaining)
        """
        response = await self._transport.request("GET", "/key")
        return decode_body(_METADATA, response.body, "key metadata").data


# --------------------------------------------------------------------------- OAuth


@final
class OAuth:
    """``client.o_auth``: OpenRouter's OAuth PKCE flow.

    The usual flow: :meth:`create_sha256_code_challenge` → keep the verifier →
    redirect the user to :meth:`create_authorization_url` → receive ``?code=``
    on the callback → :meth:`exchange_auth_code_for_api_key` with the verifier.

    Args:
        transport: the client's transport; its base URL decides the origin of
            the authorization page.
    """

    def __init__(self, transport: ApiTransport) -> None:
        self._transport = transport

    async def create_auth_code(
        self,
        *,
        callback_url: str,
        code_challenge: str | None = None,
        code_challenge_method: Literal["S256", "plain"] | None = None,
        expires_at: str | datetime.datetime | None = None,
        key_label: str | None = None,
        limit: float | None = None,
        usage_limit_type: LimitReset | None = None,
        workspace_id: str | uuid.UUID | None = None,
    ) -> AuthCode:
        """Register an authorization code server-side (``POST /auth/keys/code``).

        Needs an API key. The returned ``id`` is the code to exchange.

        Args:
            callback_url: an absolute URL the code is bound to.
            code_challenge: a PKCE challenge; ``code_challenge_method`` needs it.
            code_challenge_method: ``"S256"`` or ``"plain"``.
            expires_at: when the resulting key expires (ISO 8601 or aware datetime).
            key_label: a label for the resulting key (at most 100 characters).
            limit: a credit limit for the resulting key (USD).
            usage_limit_type: ``"daily"``, ``"weekly"`` or ``"monthly"`` limit reset.
            workspace_id: the workspace of the resulting key.

        Raises:
            ConfigurationError: a bad argument (before any I/O).
            AuthenticationError: 401. PermissionDeniedError: 403.
            BadRequestError: 400. ConflictError: 409.

        Example::

            code = await client.o_auth.create_auth_code(callback_url="https://app.example/cb")
            print(code.id)
        """
        if code_challenge_method is not None and code_challenge is None:
            raise ConfigurationError(
                f"code_challenge_method={code_challenge_method!r} needs a code_challenge"
            )
        body = CreateAuthCodeRequest(
            callback_url=check_absolute_url("callback_url", callback_url),
            code_challenge=UNSET
            if code_challenge is None
            else check_str("code_challenge", code_challenge),
            code_challenge_method=UNSET
            if code_challenge_method is None
            else _method("code_challenge_method", code_challenge_method),
            expires_at=UNSET if expires_at is None else check_datetime("expires_at", expires_at),
            key_label=UNSET
            if key_label is None
            else check_str("key_label", key_label, max_length=100),
            limit=UNSET if limit is None else check_number("limit", limit, minimum=0),
            usage_limit_type=UNSET
            if usage_limit_type is None
            else _limit_reset("usage_limit_type", usage_limit_type) or UNSET,
            workspace_id=UNSET
            if workspace_id is None
            else check_uuid("workspace_id", workspace_id),
        )
        response = await self._transport.request(
            "POST", "/auth/keys/code", content=_ENCODER.encode(body)
        )
        return decode_body(_AUTH_CODE, response.body, "an auth code").data

    def create_authorization_url(
        self,
        *,
        callback_url: object,
        code_challenge: str | None = None,
        code_challenge_method: Literal["S256", "plain"] | None = None,
        limit: float | None = None,
    ) -> str:
        """The browser URL that starts the OAuth flow; no I/O (O-03).

        The page lives at the *origin* of the client's base URL plus ``/auth``.
        See :func:`runtime._protocol.oauth.create_authorization_url` for the rules.

        Raises:
            ConfigurationError: the callback is not an absolute URL, only one of
                the two PKCE fields is given, or ``limit`` is negative.

        Example::

            url = client.o_auth.create_authorization_url(
                callback_url="http://localhost:3000/callback",
                code_challenge=pair.code_challenge,
                code_challenge_method="S256",
            )
        """
        return create_authorization_url(
            callback_url=callback_url,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            limit=limit,
            base_url=self._transport.base_url,
        )

    def create_sha256_code_challenge(self) -> CodeChallenge:
        """A fresh random verifier and its S256 challenge; no I/O (O-03).

        Takes no arguments, as the SDK's client method: the verifier is always
        random. Keep ``code_verifier`` secret until the exchange.

        Example::

            pair = client.o_auth.create_sha256_code_challenge()
        """
        return create_sha256_code_challenge()

    async def exchange_auth_code_for_api_key(
        self,
        *,
        code: str,
        code_verifier: str | None = None,
        code_challenge_method: Literal["S256", "plain"] | None = None,
    ) -> ExchangedKey:
        """Trade an authorization code for the user's API key (``POST /auth/keys``).

        Args:
            code: the ``code`` the callback received.
            code_verifier: the PKCE verifier the challenge was made from.
            code_challenge_method: the method used for the challenge.

        Returns:
            The new key (``.key``, redacted in reprs) and the user's id.

        Raises:
            ConfigurationError: a bad argument (before any I/O); a bad verifier's
                message describes the problem without quoting the verifier.
            PermissionDeniedError: invalid code or verifier, or an expired code (403).
            BadRequestError: the method does not match the challenge's (400).

        Example::

            user = await client.o_auth.exchange_auth_code_for_api_key(
                code=code, code_verifier=pair.code_verifier, code_challenge_method="S256"
            )
        """
        if code_verifier is not None:
            create_sha256_code_challenge(code_verifier)  # validates; the result is unused
        body = ExchangeAuthCodeRequest(
            code=check_str("code", code),
            code_verifier=UNSET if code_verifier is None else code_verifier,
            code_challenge_method=UNSET
            if code_challenge_method is None
            else _method("code_challenge_method", code_challenge_method),
        )
        response = await self._transport.request(
            "POST", "/auth/keys", content=_ENCODER.encode(body)
        )
        return decode_body(_EXCHANGED_KEY, response.body, "an exchanged key")


def _method(name: str, value: object) -> Literal["S256", "plain"]:
    check_choice(name, value, _CHALLENGE_METHODS)
    return value  # type: ignore[return-value]  # narrowed by check_choice


# --------------------------------------------------------------------------- credits, activity


@final
class CreditsAPI:
    """``client.credits``: the account's credit balance (``GET /credits``).

    (Named ``CreditsAPI`` to stay apart from the
    :class:`~runtime._rest.types.Credits` record it returns.)

    Args:
        transport: the client's transport.
    """

    def __init__(self, transport: ApiTransport) -> None:
        self._transport = transport

    async def get_credits(self) -> Credits:
        """Total credits bought and used, USD (``GET /credits``; a management key).

        Raises:
            AuthenticationError: 401. PermissionDeniedError: 403.

        Example::

            credits = await client.credits.get_credits()
            print(credits.balance)
        """
        response = await self._transport.request("GET", "/credits")
        return decode_body(_CREDITS, response.body, "credits").data


@final
class Analytics:
    """``client.analytics``: usage activity of the last 30 days (``GET /activity``).

    Args:
        transport: the client's transport.
    """

    def __init__(self, transport: ApiTransport) -> None:
        self._transport = transport

    async def get_user_activity(
        self,
        *,
        date: str | datetime.date | None = None,
        api_key_hash: str | None = None,
        user_id: str | None = None,
        workspace_id: str | uuid.UUID | None = None,
        group_by: Literal["workspace"] | None = None,
    ) -> builtins.list[ActivityItem]:
        """Activity rows per day and model (a management key).

        Args:
            date: one UTC day (``YYYY-MM-DD`` or a ``datetime.date``).
            api_key_hash: only the activity of this key.
            user_id: only this organization member's activity.
            workspace_id: only this workspace's activity.
            group_by: ``"workspace"`` splits rows per workspace.

        Raises:
            ConfigurationError: a bad argument (before any I/O).
            AuthenticationError: 401. PermissionDeniedError: 403.
            NotFoundError: unknown key hash or workspace (404). BadRequestError: 400.

        Example::

            rows = await client.analytics.get_user_activity(date="2026-05-01")
            print(sum(row.usage for row in rows))
        """
        params: dict[str, str] = {}
        if date is not None:
            params["date"] = check_date("date", date)
        if api_key_hash is not None:
            params["api_key_hash"] = check_key_hash(api_key_hash)
        if user_id is not None:
            params["user_id"] = check_str("user_id", user_id)
        if workspace_id is not None:
            params["workspace_id"] = check_uuid("workspace_id", workspace_id)
        if group_by is not None:
            params["group_by"] = check_choice("group_by", group_by, ("workspace",))
        response = await self._transport.request("GET", "/activity", params=params or None)
        return decode_body(_ACTIVITY, response.body, "activity rows").data


# --------------------------------------------------------------------------- responses


_REQUEST_FIELDS: Final = frozenset(ResponsesRequest.__struct_fields__)


def _responses_request(request: object) -> ResponsesRequest:
    if isinstance(request, ResponsesRequest):
        checked = request
    elif isinstance(request, dict):
        unknown = sorted(str(name) for name in request if name not in _REQUEST_FIELDS)
        if unknown:
            raise ConfigurationError(f"Responses.send got unknown request fields {unknown!r}")
        checked = ResponsesRequest(**request)
    else:
        raise ConfigurationError(
            f"Responses.send takes a ResponsesRequest or a dict, got {request!r}"
        )
    if checked.stream is True:
        raise ConfigurationError(
            "Responses.send does not stream, got stream=True; use call_model to stream"
        )
    return checked


@final
class Responses:
    """``client.responses``: one non-streaming ``POST /responses`` (N-01).

    For streaming, tools and the agent loop use ``client.call_model``.

    Args:
        transport: the client's transport.
    """

    def __init__(self, transport: ApiTransport) -> None:
        self._transport = transport

    async def send(self, request: ResponsesRequest | dict[str, Any]) -> Response:
        """Send one Responses request and return the whole response.

        Args:
            request: a :class:`~runtime._protocol.wire.ResponsesRequest`, or a dict of
                its fields by wire name. ``stream`` must not be ``True``.

        Returns:
            The decoded response object (unknown output items kept opaque).

        Raises:
            ConfigurationError: an unknown field, ``stream=True``, or a value
                JSON cannot represent (before any I/O).
            APIStatusError: the typed error of a non-2xx status.
            RemoteProtocolError: the body is not a response object.

        Example::

            response = await client.responses.send({"model": "openai/gpt-5", "input": "Hi"})
            print(response.output_text)
        """
        body = encode_request(_responses_request(request))
        response = await self._transport.request("POST", "/responses", content=body)
        return decode_response(response.body)


@final
class Beta:
    """``client.beta``: deprecated aliases kept for SDK compatibility (N-01).

    Args:
        responses: the client's :class:`Responses` namespace, which
            ``beta.responses`` returns (the very same object).
    """

    def __init__(self, responses: Responses) -> None:
        self._responses = responses

    @property
    def responses(self) -> Responses:
        """Deprecated alias of ``client.responses`` (emits ``DeprecationWarning``)."""
        warnings.warn(
            "client.beta.responses is deprecated; use client.responses",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._responses
