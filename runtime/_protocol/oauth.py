"""OAuth PKCE helpers: code verifiers, S256 challenges and the browser authorization URL.

This module's one job: the pure parts of OpenRouter's OAuth PKCE flow
(``spec/callmodel.md`` §7, ``spec/wire-protocol.md`` §9). No HTTP happens
here; exchanging the code for a key is the client's business.

Invariants:

1. A code verifier is 43 to 128 characters from ``[A-Za-z0-9-._~]``
   (RFC 7636 §4.1); generated verifiers are 32 random bytes from
   :mod:`secrets`, base64url-encoded without padding (43 characters).
2. A challenge is ``base64url_nopad(SHA-256(verifier))``: always 43 characters,
   never ``+``, ``/`` or ``=``.
3. The authorization URL is the *origin* of the base URL plus ``/auth`` (the
   ``/api/v1`` path is dropped) with query parameters in the order
   ``callback_url``, ``code_challenge``, ``code_challenge_method``, ``limit``.

Decision (§7.2 step 1): the TypeScript SDK silently drops a lone
``code_challenge`` or ``code_challenge_method`` and builds a URL without PKCE.
That turns a caller's mistake into a weaker flow, so here a lone PKCE field
raises :class:`~runtime._base.errors.ConfigurationError`. A negative or
non-finite ``limit`` is refused for the same reason. The base URL is a plain
argument: resolving ``OPENROUTER_BASE_URL`` and friends is the client's job.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from urllib.parse import urlencode, urlsplit

import msgspec

from runtime._base.errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "CodeChallenge",
    "create_authorization_url",
    "create_sha256_code_challenge",
    "generate_code_verifier",
]

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"

_VERIFIER_MIN = 43
_VERIFIER_MAX = 128
_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# Schemes that the WHATWG URL parser (which the SDK uses) requires a host for.
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_CHALLENGE_METHODS = ("S256", "plain")


class CodeChallenge(msgspec.Struct, frozen=True, kw_only=True):
    """A PKCE pair: send ``code_challenge`` now, keep ``code_verifier`` for the exchange."""

    code_challenge: str
    code_verifier: str


def _b64url_nopad(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def generate_code_verifier() -> str:
    """A fresh random code verifier: 32 bytes from :mod:`secrets`, base64url, 43 characters."""
    return _b64url_nopad(secrets.token_bytes(32))


def _check_verifier(code_verifier: object) -> str:
    if not isinstance(code_verifier, str):
        raise ConfigurationError(
            f"Code verifier must be a string, got {type(code_verifier).__name__}"
        )
    # The messages are the SDK's, word for word; they do not echo the verifier,
    # which is a secret for as long as the code exchange is pending.
    if len(code_verifier) < _VERIFIER_MIN:
        raise ConfigurationError("Code verifier must be at least 43 characters")
    if len(code_verifier) > _VERIFIER_MAX:
        raise ConfigurationError("Code verifier must be at most 128 characters")
    if _UNRESERVED.fullmatch(code_verifier) is None:
        raise ConfigurationError(
            "Code verifier must only contain unreserved characters: [A-Za-z0-9-._~]"
        )
    return code_verifier


def create_sha256_code_challenge(code_verifier: str | None = None) -> CodeChallenge:
    """Build an S256 PKCE challenge, generating the verifier when none is given.

    Args:
        code_verifier: a verifier of 43 to 128 characters from
            ``[A-Za-z0-9-._~]``; ``None`` draws a random one.

    Returns:
        The challenge and the verifier it was computed from.

    Raises:
        ConfigurationError: the verifier is not a string, is shorter than 43 or
            longer than 128 characters, or holds another character.

    Example:
        >>> pair = create_sha256_code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        >>> pair.code_challenge
        'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
    """
    verifier = generate_code_verifier() if code_verifier is None else _check_verifier(code_verifier)
    challenge = _b64url_nopad(hashlib.sha256(verifier.encode("ascii")).digest())
    return CodeChallenge(code_challenge=challenge, code_verifier=verifier)


def _absolute_url(value: object, what: str) -> str:
    """``value`` as a string that parses as an absolute URL, or ConfigurationError."""
    if isinstance(value, str):
        text = value
    elif hasattr(value, "geturl"):  # urllib.parse.SplitResult / ParseResult
        text = str(value.geturl())
    elif isinstance(value, int | float | bytes | bytearray) or value is None:
        raise ConfigurationError(f"The {what} must be a URL string, got {value!r}")
    else:  # a URL object such as httpx.URL or yarl.URL
        text = str(value)
    valid = False
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError for a bad port
        scheme = parts.scheme.lower()
        if _SCHEME.fullmatch(parts.scheme) and not any(c.isspace() for c in text):
            valid = (
                bool(parts.hostname) if scheme in _SPECIAL_SCHEMES else len(text) > len(scheme) + 1
            )
    except ValueError:
        valid = False
    if not valid:
        raise ConfigurationError(f"The {what} is not an absolute URL: {value!r}")
    return text


def _origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(f"The base URL must be http or https, got {base_url!r}")
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def _format_limit(limit: object) -> str:
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        raise ConfigurationError(f"The credit limit must be a number, got {limit!r}")
    if not math.isfinite(limit) or limit < 0:
        raise ConfigurationError(f"The credit limit must be a finite number >= 0, got {limit!r}")
    if isinstance(limit, float) and limit.is_integer():
        return str(int(limit))  # JavaScript's String(100.0) is "100"
    return str(limit)


def create_authorization_url(
    *,
    callback_url: object,
    code_challenge: str | None = None,
    code_challenge_method: str | None = None,
    limit: float | None = None,
    base_url: str = DEFAULT_BASE_URL,
) -> str:
    """The browser URL that starts OpenRouter's OAuth flow (no HTTP is made).

    Args:
        callback_url: where OpenRouter redirects with ``?code=``; a string or a
            URL object (``httpx.URL``, ``urllib.parse.SplitResult``, ...) that
            parses as an absolute URL. Its query, fragment and port are kept
            verbatim inside the ``callback_url`` parameter.
        code_challenge: the PKCE challenge; give it together with
            ``code_challenge_method`` or not at all.
        code_challenge_method: ``"S256"`` (recommended) or ``"plain"``.
        limit: an optional credit limit for the new key (``0`` is sent).
        base_url: the API base URL; only its origin is used.

    Returns:
        ``<origin>/auth?callback_url=...[&code_challenge=...&code_challenge_method=...][&limit=...]``.

    Raises:
        ConfigurationError: the callback or base URL is not an absolute URL,
            only one of the two PKCE fields is given, the method is not S256
            or plain, or ``limit`` is not a finite number >= 0.
    """
    callback = _absolute_url(callback_url, "callback URL")
    origin = _origin(_absolute_url(base_url, "base URL"))
    params: list[tuple[str, str]] = [("callback_url", callback)]
    if (code_challenge is None) != (code_challenge_method is None):
        given = "code_challenge" if code_challenge is not None else "code_challenge_method"
        raise ConfigurationError(
            f"PKCE needs both code_challenge and code_challenge_method, only {given!r} was given"
        )
    if code_challenge is not None:
        if not isinstance(code_challenge, str) or not code_challenge:
            raise ConfigurationError(
                f"The code challenge must be a non-empty string, got {code_challenge!r}"
            )
        if code_challenge_method not in _CHALLENGE_METHODS:
            raise ConfigurationError(
                "The code challenge method must be 'S256' or 'plain', "
                f"got {code_challenge_method!r}"
            )
        params.append(("code_challenge", code_challenge))
        params.append(("code_challenge_method", code_challenge_method))
    if limit is not None:
        params.append(("limit", _format_limit(limit)))
    return f"{origin}/auth?{urlencode(params)}"
