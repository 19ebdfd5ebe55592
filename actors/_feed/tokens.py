"""Feed credentials without I/O: the server token's check and per-session read tokens.

A *read token* lets a dashboard follow one session and nothing else, until it
expires, without knowing the feed's token. It is
``rt1.<session, base64url>.<expiry, unix seconds>.<signature, base64url>``,
where the signature is HMAC-SHA256 over everything before it, keyed with a key
derived from the feed's token (so rotating the token revokes every read
token). The server checks it with a constant-time comparison and never logs
or echoes it.

Invariant: no function here returns, raises or formats a token's value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from typing import Final

import msgspec

from runtime._base.errors import ConfigurationError

__all__ = ["READ_TOKEN_PREFIX", "Grant", "check_token", "make_read_token"]

READ_TOKEN_PREFIX: Final = "rt1."
_KEY_LABEL: Final = b"openrouter-trio feed read token v1"
_MAX_TOKEN: Final = 4096


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """What a valid credential allows.

    Attributes:
        session: the only session it may follow (``None``: everything).
        expires_at: when it stops working (unix seconds; ``None``: never).
    """

    session: str | None = None
    expires_at: float | None = None


FULL: Final = Grant()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()


def make_read_token(secret: bytes, session: str, expires_at: float) -> str:
    """A read token for ``session`` valid until ``expires_at`` (unix seconds).

    Raises:
        ConfigurationError: ``session`` is empty or ``expires_at`` not finite.
    """
    if not isinstance(session, str) or not session:
        raise ConfigurationError(f"session must be a non-empty string, got {session!r}.")
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        raise ConfigurationError(f"expires_at must be a number, got {expires_at!r}.")
    if not math.isfinite(expires_at):
        raise ConfigurationError(f"expires_at must be finite, got {expires_at!r}.")
    body = f"{READ_TOKEN_PREFIX}{_b64(session.encode())}.{math.ceil(expires_at)}"
    signature = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def check_token(secret: bytes, token: bytes, now: float) -> Grant | None:
    """What ``token`` grants: everything (the feed's token), one session, or ``None``.

    An expired, forged or malformed read token grants nothing. Constant-time in
    the secret's comparisons.
    """
    if hmac.compare_digest(token, secret):
        return FULL
    if len(token) > _MAX_TOKEN or not token.startswith(READ_TOKEN_PREFIX.encode()):
        return None
    try:
        text = token.decode("ascii")
    except UnicodeDecodeError:
        return None
    body, _, signature = text.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3:
        return None
    expected = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        session = _unb64(parts[1]).decode("utf-8")
        expires = int(parts[2])
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, expected) or expires <= now or not session:
        return None
    return Grant(session=session, expires_at=float(expires))
