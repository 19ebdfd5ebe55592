"""The emulator's account: API keys, credits, activity and OAuth PKCE codes.

Rules (OpenRouter's, as far as the wire notes describe them):

1. ``Authorization: Bearer <key>``; a missing, unknown, deleted, disabled or
   expired key is 401. Inference endpoints reject management keys (403);
   management endpoints (``/keys*``, ``/credits``, ``/activity``) reject
   inference keys (403).
2. A key's ``hash`` is the SHA-256 hex of the key string.
3. Every inference call is charged: its cost is added to the key's usage, the
   account's ``total_usage`` and the day's activity row for the model. A key
   whose ``limit`` is used up, or an account out of credits, gets 402.
4. PKCE codes are single-use and expire ten minutes after they are issued;
   ``S256`` verifies ``base64url(sha256(verifier)) == challenge``, ``plain``
   verifies equality (RFC 7636). Errors follow §9.2: 400 ``Invalid
   code_challenge_method``, 403 ``Invalid code or code_verifier``, 403
   ``Authorization code expired``.

Keys are generated deterministically from the emulator's seed and a counter,
so two emulators with the same seed hand out the same keys. No key ever
appears in an error message.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
from typing import TYPE_CHECKING, Any, Final, final

from runtime.emulator._http import HTTPError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Accounts", "AuthCode", "KeyRecord", "key_hash", "parse_iso", "s256_challenge"]

CODE_LIFETIME: Final = 600.0
WORKSPACE_ID: Final = "00000000-0000-4000-8000-00000000e4e4"
USER_ID: Final = "user_emulator"
APP_ID: Final = 4242


def key_hash(key: str) -> str:
    """The ``hash`` OpenRouter gives a key: SHA-256 hex of the key string."""
    return hashlib.sha256(key.encode()).hexdigest()


def s256_challenge(verifier: str) -> str:
    """The S256 PKCE challenge of ``verifier`` (base64url, no padding)."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _iso(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> float | None:
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


@final
class KeyRecord:
    """One API key and its counters (mutable; owned by :class:`Accounts`)."""

    def __init__(
        self,
        key: str,
        *,
        name: str,
        management: bool,
        created_at: float,
        limit: float | None = None,
        limit_reset: str | None = None,
        include_byok_in_limit: bool = False,
        expires_at: str | None = None,
        creator_user_id: str | None = None,
    ) -> None:
        self._key = key
        self.hash = key_hash(key)
        self.name = name
        self.management = management
        self.disabled = False
        self.limit = limit
        self.limit_reset = limit_reset
        self.include_byok_in_limit = include_byok_in_limit
        self.expires_at = expires_at
        self.creator_user_id = creator_user_id
        self.usage = 0.0
        self.created_at = _iso(created_at)
        self.updated_at: str | None = None

    @property
    def label(self) -> str:
        """The masked form OpenRouter shows (``sk-or-v1-abc...xyz``)."""
        return f"{self._key[:12]}...{self._key[-3:]}"

    @property
    def limit_remaining(self) -> float | None:
        return None if self.limit is None else max(self.limit - self.usage, 0.0)

    def expired(self, now: float) -> bool:
        if self.expires_at is None:
            return False
        moment = parse_iso(self.expires_at)
        return moment is not None and moment <= now

    def _usage_fields(self) -> dict[str, Any]:
        return {
            "usage": self.usage,
            "usage_daily": self.usage,
            "usage_weekly": self.usage,
            "usage_monthly": self.usage,
            "byok_usage": 0.0,
            "byok_usage_daily": 0.0,
            "byok_usage_weekly": 0.0,
            "byok_usage_monthly": 0.0,
        }

    def info(self) -> dict[str, Any]:
        """The ``KeyInfo`` object of ``/keys`` endpoints."""
        return {
            "hash": self.hash,
            "name": self.name,
            "label": self.label,
            "disabled": self.disabled,
            "limit": self.limit,
            "limit_remaining": self.limit_remaining,
            "limit_reset": self.limit_reset,
            "include_byok_in_limit": self.include_byok_in_limit,
            **self._usage_fields(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "creator_user_id": self.creator_user_id,
            "workspace_id": WORKSPACE_ID,
            "expires_at": self.expires_at,
        }

    def current(self) -> dict[str, Any]:
        """The ``data`` object of ``GET /key``."""
        return {
            "label": self.label,
            "limit": self.limit,
            "limit_remaining": self.limit_remaining,
            "limit_reset": self.limit_reset,
            "include_byok_in_limit": self.include_byok_in_limit,
            **self._usage_fields(),
            "is_free_tier": False,
            "is_management_key": self.management,
            "is_provisioning_key": self.management,
            "creator_user_id": self.creator_user_id,
            "expires_at": self.expires_at,
            "rate_limit": {"requests": -1, "interval": "10s", "note": "deprecated"},
        }

    def __repr__(self) -> str:
        kind = "management" if self.management else "inference"
        return f"KeyRecord(name={self.name!r}, hash={self.hash[:12]!r}, kind={kind!r})"


@final
class AuthCode:
    """A PKCE authorization code waiting to be exchanged."""

    def __init__(
        self,
        code: str,
        *,
        issued_at: float,
        callback_url: str | None,
        challenge: str | None,
        method: str,
        limit: float | None,
        key_label: str | None,
        expires_at: str | None,
    ) -> None:
        self.code = code
        self.issued_at = issued_at
        self.callback_url = callback_url
        self.challenge = challenge
        self.method = method
        self.limit = limit
        self.key_label = key_label
        self.expires_at = expires_at
        self.used = False


class _ActivityRow:
    __slots__ = ("completion", "prompt", "reasoning", "requests", "usage")

    def __init__(self) -> None:
        self.requests = 0
        self.prompt = 0
        self.completion = 0
        self.reasoning = 0
        self.usage = 0.0


@final
class Accounts:
    """Keys, credits, activity and PKCE codes of one emulator."""

    def __init__(self, *, seed: str, clock: Callable[[], float], credits: float) -> None:
        self._seed = seed
        self._clock = clock
        self._serial = 0
        self._keys: dict[str, KeyRecord] = {}
        self._codes: dict[str, AuthCode] = {}
        self._activity: dict[tuple[str, str, str], _ActivityRow] = {}
        self.total_credits = credits
        self.total_usage = 0.0

    # -- keys --------------------------------------------------------------

    def _next_secret(self, kind: str) -> str:
        self._serial += 1
        digest = hashlib.sha256(f"{self._seed}:{kind}:{self._serial}".encode()).hexdigest()
        return f"sk-or-v1-emu-{digest}"

    def create_key(
        self,
        name: str,
        *,
        management: bool = False,
        limit: float | None = None,
        limit_reset: str | None = None,
        include_byok_in_limit: bool = False,
        expires_at: str | None = None,
        creator_user_id: str | None = None,
        secret: str | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key: ``(plaintext, record)``; ``secret`` fixes its text (else generated)."""
        if secret is None:
            secret = self._next_secret("management" if management else "inference")
        record = KeyRecord(
            secret,
            name=name,
            management=management,
            created_at=self._clock(),
            limit=limit,
            limit_reset=limit_reset,
            include_byok_in_limit=include_byok_in_limit,
            expires_at=expires_at,
            creator_user_id=creator_user_id,
        )
        self._keys[record.hash] = record
        return secret, record

    def get(self, hash_: str) -> KeyRecord:
        """The key with ``hash_`` (404 if there is none)."""
        record = self._keys.get(hash_)
        if record is None:
            raise HTTPError(404, "No API key found with this hash.")
        return record

    def delete(self, hash_: str) -> None:
        """Delete a key (404 if there is none); it stops authenticating at once."""
        self.get(hash_)
        del self._keys[hash_]

    def touch(self, record: KeyRecord) -> None:
        """Mark ``record`` as updated now."""
        record.updated_at = _iso(self._clock())

    def list_keys(self, *, include_disabled: bool) -> list[KeyRecord]:
        """Inference keys in creation order (management keys are not listed)."""
        return [
            record
            for record in self._keys.values()
            if not record.management and (include_disabled or not record.disabled)
        ]

    def authenticate(self, authorization: str | None) -> KeyRecord:
        """The key named by an ``Authorization`` header, or a 401."""
        if not authorization:
            raise HTTPError(401, "No auth credentials found")
        scheme, _, secret = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise HTTPError(401, "No auth credentials found")
        record = self._keys.get(key_hash(secret.strip()))
        if record is None:
            raise HTTPError(401, "User not found.")
        if record.disabled:
            raise HTTPError(401, "This API key is disabled.")
        if record.expired(self._clock()):
            raise HTTPError(401, "This API key has expired.")
        return record

    def check_budget(self, record: KeyRecord) -> None:
        """402 when the key's limit or the account's credits are used up."""
        if record.limit is not None and record.usage >= record.limit:
            raise HTTPError(
                402,
                "This API key's credit limit has been reached.",
                metadata={"limit_source": "key"},
            )
        if self.total_usage >= self.total_credits:
            raise HTTPError(
                402,
                "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
                metadata={"limit_source": "account"},
            )

    def charge(
        self,
        record: KeyRecord,
        *,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        reasoning_tokens: int,
        cost: float,
    ) -> None:
        """Bill one model call to ``record``, the account and today's activity."""
        record.usage += cost
        self.total_usage += cost
        day = _iso(self._clock())[:10]
        row = self._activity.setdefault((day, model, record.hash), _ActivityRow())
        row.requests += 1
        row.prompt += prompt_tokens
        row.completion += completion_tokens
        row.reasoning += reasoning_tokens
        row.usage += cost

    def activity(self, *, date: str | None, api_key_hash: str | None) -> list[dict[str, Any]]:
        """``ActivityItem`` rows per day and model, newest day first."""
        merged: dict[tuple[str, str], _ActivityRow] = {}
        for (day, model, hash_), row in self._activity.items():
            if (date is not None and day != date) or (
                api_key_hash is not None and hash_ != api_key_hash
            ):
                continue
            total = merged.setdefault((day, model), _ActivityRow())
            total.requests += row.requests
            total.prompt += row.prompt
            total.completion += row.completion
            total.reasoning += row.reasoning
            total.usage += row.usage
        return [
            {
                "date": day,
                "model": model,
                "model_permaslug": model,
                "endpoint_id": f"emulator:{model}",
                "provider_name": "Emulator",
                "usage": round(row.usage, 12),
                "byok_usage_inference": 0.0,
                "requests": row.requests,
                "prompt_tokens": row.prompt,
                "completion_tokens": row.completion,
                "reasoning_tokens": row.reasoning,
            }
            for (day, model), row in sorted(
                sorted(merged.items(), key=lambda item: item[0][1]),
                key=lambda item: item[0][0],
                reverse=True,
            )
        ]

    def knows_hash(self, hash_: str) -> bool:
        return hash_ in self._keys

    # -- OAuth PKCE --------------------------------------------------------

    def issue_code(
        self,
        *,
        callback_url: str | None,
        challenge: str | None,
        method: str | None,
        limit: float | None = None,
        key_label: str | None = None,
        expires_at: str | None = None,
    ) -> AuthCode:
        """A new single-use authorization code."""
        self._serial += 1
        digest = hashlib.sha256(f"{self._seed}:code:{self._serial}".encode()).hexdigest()
        code = AuthCode(
            f"auth_code_emu_{digest[:24]}",
            issued_at=self._clock(),
            callback_url=callback_url,
            challenge=challenge,
            method=method or "plain",
            limit=limit,
            key_label=key_label,
            expires_at=expires_at,
        )
        self._codes[code.code] = code
        return code

    def code_created_at(self, code: AuthCode) -> str:
        return _iso(code.issued_at)

    def exchange_code(self, code: str, verifier: str | None, method: str | None) -> str:
        """Trade a code (and its verifier) for a new inference key (plaintext)."""
        record = self._codes.get(code)
        if record is None or record.used:
            raise HTTPError(403, "Invalid code or code_verifier")
        if self._clock() - record.issued_at > CODE_LIFETIME:
            raise HTTPError(403, "Authorization code expired")
        if record.challenge is not None:
            if method is not None and method != record.method:
                raise HTTPError(400, "Invalid code_challenge_method")
            if verifier is None:
                raise HTTPError(403, "Invalid code or code_verifier")
            expected = s256_challenge(verifier) if record.method == "S256" else verifier
            if not hmac.compare_digest(expected.encode(), record.challenge.encode()):
                raise HTTPError(403, "Invalid code or code_verifier")
        record.used = True
        secret, _ = self.create_key(
            record.key_label or "OAuth key",
            limit=record.limit,
            expires_at=record.expires_at,
            creator_user_id=USER_ID,
        )
        return secret
