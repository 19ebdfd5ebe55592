"""The non-inference endpoints: models, key, keys, credits, activity, OAuth.

Each handler takes the parsed request and the state it needs and returns an
:class:`EmulatorResponse` (or raises :class:`HTTPError`). Authentication is the
caller's job (:mod:`runtime.emulator._core` checks the key kind per route);
these functions only validate their own input. Response shapes are the ones of
the OpenAPI subset; the tests validate every one of them.
"""

from __future__ import annotations

import html
import operator
import urllib.parse
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import msgspec

from runtime.emulator._accounts import APP_ID, USER_ID, Accounts, KeyRecord, parse_iso
from runtime.emulator._http import EmulatorRequest, EmulatorResponse, HTTPError, json_response

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runtime.emulator._models import ModelCard

__all__ = [
    "activity_response",
    "auth_code_response",
    "auth_page_response",
    "create_key_response",
    "credits_response",
    "exchange_response",
    "key_by_hash_response",
    "key_response",
    "list_keys_response",
    "model_json",
    "models_response",
]

KEYS_PAGE: Final = 100
_MODELS_DEFAULT_LIMIT: Final = 500
_MODELS_MAX_LIMIT: Final = 1000
_SORTS: Final = frozenset(
    {
        "most-popular",
        "newest",
        "top-weekly",
        "pricing-low-to-high",
        "pricing-high-to-low",
        "context-high-to-low",
        "throughput-high-to-low",
        "latency-low-to-high",
        "intelligence-high-to-low",
        "coding-high-to-low",
        "agentic-high-to-low",
        "design-arena-elo-high-to-low",
    }
)
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_LimitReset = Literal["daily", "weekly", "monthly"]
_Method = Literal["S256", "plain"]


# -- request bodies ----------------------------------------------------------


class _CreateKey(msgspec.Struct, kw_only=True):
    name: str
    limit: float | None = None
    limit_reset: _LimitReset | None = None
    include_byok_in_limit: bool = False
    expires_at: str | None = None
    creator_user_id: str | None = None
    workspace_id: str | None = None


class _PatchKey(msgspec.Struct, kw_only=True):
    name: str | msgspec.UnsetType = msgspec.UNSET
    disabled: bool | msgspec.UnsetType = msgspec.UNSET
    limit: float | msgspec.UnsetType | None = msgspec.UNSET
    limit_reset: _LimitReset | msgspec.UnsetType | None = msgspec.UNSET
    include_byok_in_limit: bool | msgspec.UnsetType = msgspec.UNSET


class _CreateCode(msgspec.Struct, kw_only=True):
    callback_url: str
    code_challenge: str | None = None
    code_challenge_method: _Method | None = None
    limit: float | None = None
    expires_at: str | None = None
    key_label: str | None = None
    usage_limit_type: _LimitReset | None = None
    workspace_id: str | None = None


class _Exchange(msgspec.Struct, kw_only=True):
    code: str
    code_verifier: str | None = None
    code_challenge_method: _Method | None = None


_T = TypeVar("_T")


def _decode(raw: bytes, kind: type[_T]) -> _T:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise HTTPError(400, f"Invalid request body: {exc}.") from None
    except msgspec.DecodeError as exc:
        raise HTTPError(400, f"The request body is not valid JSON: {exc}.") from None


def _int_param(request: EmulatorRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_value(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPError(400, f"Query parameter {name!r} must be an integer, got {raw!r}.") from None
    if not low <= value <= high:
        raise HTTPError(400, f"Query parameter {name!r} must be between {low} and {high}.")
    return value


def _bool_param(request: EmulatorRequest, name: str) -> bool:
    raw = request.query_value(name)
    if raw is None or raw.lower() == "false":
        return False
    if raw.lower() == "true":
        return True
    raise HTTPError(400, f"Query parameter {name!r} must be 'true' or 'false', got {raw!r}.")


def _check_expiry(value: str | None) -> None:
    if value is not None and parse_iso(value) is None:
        raise HTTPError(400, f"expires_at {value!r} is not an ISO 8601 date-time.")


# -- models ------------------------------------------------------------------


def model_json(card: ModelCard) -> dict[str, Any]:
    """A ``Model`` object for ``GET /models``."""
    model: dict[str, Any] = {
        "id": card.id,
        "canonical_slug": card.id,
        "hugging_face_id": None,
        "name": card.name,
        "created": card.created,
        "description": card.description,
        "context_length": card.context_length,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": card.pricing.prompt,
            "completion": card.pricing.completion,
            "request": "0",
            "image": "0",
            "web_search": "0",
            "internal_reasoning": "0",
        },
        "top_provider": {
            "context_length": card.context_length,
            "max_completion_tokens": card.max_completion_tokens,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": list(card.supported_parameters),
        "default_parameters": {"temperature": None, "top_p": None, "frequency_penalty": None},
        "supported_voices": None,
        "knowledge_cutoff": None,
        "expiration_date": None,
        "links": {"details": f"/api/v1/models/{card.id}/endpoints"},
    }
    if card.reasoning:
        model["reasoning"] = {
            "mandatory": False,
            "supported_efforts": ["high", "medium", "low"],
            "default_effort": "medium",
            "default_enabled": True,
            "supports_max_tokens": True,
        }
    return model


def _per_million(price: str) -> Decimal:
    return Decimal(price) * 1_000_000


def _price_param(request: EmulatorRequest, name: str) -> Decimal | None:
    raw = request.query_value(name)
    if raw is None:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise HTTPError(400, f"Query parameter {name!r} must be a number, got {raw!r}.") from None


def _list_param(request: EmulatorRequest, name: str) -> list[str] | None:
    raw = request.query_value(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def models_response(request: EmulatorRequest, cards: Sequence[ModelCard]) -> EmulatorResponse:
    """``GET /models`` with pagination, filters and sorts the emulator can honour.

    Pagination happens only when ``offset`` or ``limit`` is given (then
    ``limit`` defaults to 500, at most 1000) and ``links.next`` carries the
    other query parameters along. Filters: ``supported_parameters``, ``q``,
    ``input_modalities``, ``output_modalities``, ``context``, ``min_price``,
    ``max_price``, ``min_output_price``, ``max_output_price``,
    ``model_authors``. Sorts: ``newest``, ``pricing-low-to-high``,
    ``pricing-high-to-low``, ``context-high-to-low`` (the other documented
    sorts keep the default order).
    """
    paginate = request.query_value("offset") is not None or request.query_value("limit") is not None
    offset = _int_param(request, "offset", 0, 0, 2**31)
    limit = _int_param(request, "limit", _MODELS_DEFAULT_LIMIT, 1, _MODELS_MAX_LIMIT)
    selected = list(cards)
    wanted = _list_param(request, "supported_parameters")
    if wanted:
        selected = [c for c in selected if set(wanted) <= set(c.supported_parameters)]
    text = request.query_value("q")
    if text:
        needle = text.lower()
        selected = [
            c
            for c in selected
            if needle in c.id.lower() or needle in c.name.lower() or needle in c.description.lower()
        ]
    for name in ("input_modalities", "output_modalities"):
        modalities = _list_param(request, name)
        if modalities is not None and "all" not in modalities and "text" not in modalities:
            selected = []
    context = request.query_value("context")
    if context is not None:
        minimum = _int_param(request, "context", 0, 0, 2**31)
        selected = [c for c in selected if c.context_length >= minimum]
    for name, field, keep_if in (
        ("min_price", "prompt", operator.ge),
        ("max_price", "prompt", operator.le),
        ("min_output_price", "completion", operator.ge),
        ("max_output_price", "completion", operator.le),
    ):
        bound = _price_param(request, name)
        if bound is not None:
            selected = [
                c for c in selected if keep_if(_per_million(getattr(c.pricing, field)), bound)
            ]
    authors = _list_param(request, "model_authors")
    if authors:
        selected = [c for c in selected if c.id.partition("/")[0] in authors]
    order = request.query_value("sort")
    if order is not None and order not in _SORTS:
        raise HTTPError(400, f"Query parameter 'sort' has an unknown value {order!r}.")
    if order == "newest":
        selected.sort(key=lambda c: -c.created)
    elif order in ("pricing-low-to-high", "pricing-high-to-low"):
        selected.sort(
            key=lambda c: Decimal(c.pricing.prompt) + Decimal(c.pricing.completion),
            reverse=order == "pricing-high-to-low",
        )
    elif order == "context-high-to-low":
        selected.sort(key=lambda c: -c.context_length)
    total = len(selected)
    next_link = None
    if paginate:
        page = selected[offset : offset + limit]
        if offset + limit < total:
            params = {k: v[-1] for k, v in request.query.items()}
            params.update(offset=str(offset + limit), limit=str(limit))
            next_link = "/api/v1/models?" + urllib.parse.urlencode(params)
    else:
        page = selected
    return json_response(
        {
            "data": [model_json(card) for card in page],
            "total_count": total,
            "links": {"next": next_link},
        }
    )


# -- key, keys, credits, activity ---------------------------------------------


def list_keys_response(request: EmulatorRequest, accounts: Accounts) -> EmulatorResponse:
    """``GET /keys``: inference keys, 100 per page from ``offset``."""
    offset = _int_param(request, "offset", 0, 0, 2**31)
    include_disabled = _bool_param(request, "include_disabled")
    keys = accounts.list_keys(include_disabled=include_disabled)
    return json_response({"data": [key.info() for key in keys[offset : offset + KEYS_PAGE]]})


def create_key_response(request: EmulatorRequest, accounts: Accounts) -> EmulatorResponse:
    """``POST /keys`` → 201 with the new key's info and, only here, its plaintext."""
    body = _decode(request.body, _CreateKey)
    if not body.name.strip():
        raise HTTPError(400, "The key's name must not be empty.")
    _check_expiry(body.expires_at)
    secret, record = accounts.create_key(
        body.name,
        limit=body.limit,
        limit_reset=body.limit_reset,
        include_byok_in_limit=body.include_byok_in_limit,
        expires_at=body.expires_at,
        creator_user_id=body.creator_user_id,
    )
    return json_response({"data": record.info(), "key": secret}, status=201)


def key_by_hash_response(
    request: EmulatorRequest, accounts: Accounts, hash_: str
) -> EmulatorResponse:
    """``GET`` / ``PATCH`` / ``DELETE /keys/{hash}``."""
    record = accounts.get(hash_)
    if request.method == "DELETE":
        accounts.delete(hash_)
        return json_response({"deleted": True})
    if request.method == "PATCH":
        patch = _decode(request.body, _PatchKey)
        if patch.name is not msgspec.UNSET:
            if not patch.name.strip():
                raise HTTPError(400, "The key's name must not be empty.")
            record.name = patch.name
        if patch.disabled is not msgspec.UNSET:
            record.disabled = patch.disabled
        if patch.limit is not msgspec.UNSET:
            record.limit = patch.limit
        if patch.limit_reset is not msgspec.UNSET:
            record.limit_reset = patch.limit_reset
        if patch.include_byok_in_limit is not msgspec.UNSET:
            record.include_byok_in_limit = patch.include_byok_in_limit
        accounts.touch(record)
    return json_response({"data": record.info()})


def key_response(record: KeyRecord) -> EmulatorResponse:
    """``GET /key``: the presented key's own metadata."""
    return json_response({"data": record.current()})


def credits_response(accounts: Accounts) -> EmulatorResponse:
    """``GET /credits``."""
    return json_response(
        {
            "data": {
                "total_credits": accounts.total_credits,
                "total_usage": round(accounts.total_usage, 12),
            }
        }
    )


def activity_response(request: EmulatorRequest, accounts: Accounts) -> EmulatorResponse:
    """``GET /activity`` by day and model (today included, unlike the real service)."""
    date = request.query_value("date")
    if date is not None and (len(date) != 10 or parse_iso(date) is None):
        raise HTTPError(400, f"Query parameter 'date' must be YYYY-MM-DD, got {date!r}.")
    hash_ = request.query_value("api_key_hash")
    if hash_ is not None and not accounts.knows_hash(hash_):
        raise HTTPError(404, "No API key found with this hash.")
    return json_response({"data": accounts.activity(date=date, api_key_hash=hash_)})


# -- OAuth PKCE ----------------------------------------------------------------


def _absolute_url(value: str) -> urllib.parse.SplitResult | None:
    parts = urllib.parse.urlsplit(value)
    return parts if parts.scheme and parts.netloc else None


def auth_code_response(request: EmulatorRequest, accounts: Accounts) -> EmulatorResponse:
    """``POST /auth/keys/code``: register a code for a callback URL."""
    body = _decode(request.body, _CreateCode)
    if _absolute_url(body.callback_url) is None:
        raise HTTPError(400, f"callback_url {body.callback_url!r} is not an absolute URL.")
    if body.key_label is not None and len(body.key_label) > 100:
        raise HTTPError(400, "key_label must be at most 100 characters.")
    _check_expiry(body.expires_at)
    code = accounts.issue_code(
        callback_url=body.callback_url,
        challenge=body.code_challenge,
        method=body.code_challenge_method,
        limit=body.limit,
        key_label=body.key_label,
        expires_at=body.expires_at,
    )
    return json_response(
        {"data": {"id": code.code, "app_id": APP_ID, "created_at": accounts.code_created_at(code)}}
    )


def exchange_response(request: EmulatorRequest, accounts: Accounts) -> EmulatorResponse:
    """``POST /auth/keys``: trade a code and its verifier for a user key."""
    body = _decode(request.body, _Exchange)
    secret = accounts.exchange_code(body.code, body.code_verifier, body.code_challenge_method)
    return json_response({"key": secret, "user_id": USER_ID})


def auth_page_response(request: EmulatorRequest, accounts: Accounts) -> EmulatorResponse:
    """``GET /auth`` (site root): approve at once and redirect with ``?code=``.

    The browser page of OpenRouter, minus the human: given ``callback_url``
    (https, or http on localhost / 127.0.0.1 / ::1, any port) and optionally
    ``code_challenge`` + ``code_challenge_method`` and ``limit``, it issues a
    code and answers ``302 Location: <callback_url>?code=<code>`` (existing
    query and fragment kept). Headless mode (no ``callback_url``, a
    ``key_label`` and a challenge) answers a small HTML page showing the code.
    """
    callback = request.query_value("callback_url")
    challenge = request.query_value("code_challenge") or None
    method = request.query_value("code_challenge_method") or None
    if method is not None and method not in ("S256", "plain"):
        raise HTTPError(400, f"code_challenge_method {method!r} must be 'S256' or 'plain'.")
    raw_limit = request.query_value("limit")
    limit = None
    if raw_limit is not None:
        try:
            limit = float(raw_limit)
        except ValueError:
            raise HTTPError(400, f"limit {raw_limit!r} is not a number.") from None
    label = request.query_value("key_label")
    if callback is None:
        if label is None or challenge is None:
            raise HTTPError(
                400, "callback_url is required (headless mode needs key_label and code_challenge)."
            )
        code = accounts.issue_code(
            callback_url=None, challenge=challenge, method=method, limit=limit, key_label=label
        )
        page = (
            "<!doctype html><title>Authorization code</title>"
            f"<p>Your authorization code:</p><pre id=code>{html.escape(code.code)}</pre>"
        )
        return EmulatorResponse(200, [("content-type", "text/html; charset=utf-8")], page.encode())
    parts = _absolute_url(callback)
    if parts is None or not (
        parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)
    ):
        raise HTTPError(
            400, f"callback_url {callback!r} must use https, or http on localhost / 127.0.0.1."
        )
    code = accounts.issue_code(
        callback_url=callback, challenge=challenge, method=method, limit=limit, key_label=label
    )
    query = urllib.parse.urlencode({"code": code.code})
    target = parts._replace(query=f"{parts.query}&{query}" if parts.query else query).geturl()
    page = f'<!doctype html><a href="{html.escape(target)}">Continue</a>'
    return EmulatorResponse(
        302,
        [("location", target), ("content-type", "text/html; charset=utf-8")],
        page.encode(),
    )
