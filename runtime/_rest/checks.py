"""Argument checks and body decoding shared by the REST namespaces.

The one job of this module: turn what a caller passed to a REST method into
wire values, or refuse it with :class:`~runtime._base.errors.ConfigurationError`
before any I/O; and turn a 2xx body into a typed Struct, or blame the server
with :class:`~runtime._base.errors.RemoteProtocolError`. Sans-io: stdlib and
msgspec only.

Rules:

1. Every refusal is one plain sentence that names the parameter and quotes the
   offending value with ``!r``. Secrets are never quoted: a code verifier's
   checks (in ``runtime._protocol.oauth``) describe the problem instead.
2. ``bool`` is not a number here, even though Python says it is an ``int``.
3. A body that does not decode is the server's fault: the message names what
   was expected and msgspec's path, never the body itself (a body may carry a
   freshly created API key).
"""

from __future__ import annotations

import datetime
import math
import re
import urllib.parse
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeVar

import msgspec

from runtime._base.errors import ConfigurationError, RemoteProtocolError

__all__ = [
    "bool_text",
    "check_absolute_url",
    "check_bool",
    "check_choice",
    "check_csv",
    "check_date",
    "check_datetime",
    "check_int",
    "check_key_hash",
    "check_number",
    "check_str",
    "check_uuid",
    "convert_params",
    "decode_body",
]

_T = TypeVar("_T")
_S = TypeVar("_S", bound=msgspec.Struct)
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_PATH_AT: Final = re.compile(r" - at `\$\.([A-Za-z0-9_]+)")
# A key hash goes into a URL path: refuse what would change the path's meaning.
_HASH_FORBIDDEN: Final = re.compile(r"[/?#%\s\\]")


def bool_text(value: bool) -> str:
    """A boolean as a query-string value: ``"true"`` or ``"false"``."""
    return "true" if value else "false"


def check_str(name: str, value: object, *, max_length: int | None = None) -> str:
    """``value`` if it is a non-empty string (of at most ``max_length`` characters)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")
    if max_length is not None and len(value) > max_length:
        raise ConfigurationError(
            f"{name} must be at most {max_length} characters, got {len(value)}: {value!r}"
        )
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a ``bool``."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, got {value!r}")
    return value


def check_number(
    name: str, value: object, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    """``value`` if it is a finite real number in ``[minimum, maximum]`` (ints kept as ints)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def check_int(
    name: str, value: object, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(choice) for choice in choices)
        raise ConfigurationError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_uuid(name: str, value: object) -> str:
    """A UUID (``uuid.UUID`` or its string form) as its canonical string."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise ConfigurationError(f"{name} must be a UUID such as a workspace id, got {value!r}")


def check_datetime(name: str, value: object) -> str:
    """An ISO 8601 date-time string; an aware ``datetime`` is converted to UTC ``...Z``."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ConfigurationError(
                f"{name} must be timezone-aware (OpenRouter takes UTC), got {value!r}"
            )
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            if "T" in value or " " in value:
                return value
    raise ConfigurationError(
        f"{name} must be an ISO 8601 date-time such as '2027-12-31T23:59:59Z', got {value!r}"
    )


def check_date(name: str, value: object) -> str:
    """A calendar date as ``YYYY-MM-DD`` (from a ``datetime.date`` or such a string)."""
    if isinstance(value, datetime.datetime):
        raise ConfigurationError(f"{name} must be a date, not a date-time, got {value!r}")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    raise ConfigurationError(f"{name} must be a date in YYYY-MM-DD form, got {value!r}")


def check_absolute_url(name: str, value: object) -> str:
    """``value`` if it is a string that parses as an absolute URL with a host."""
    if isinstance(value, str) and not any(c.isspace() for c in value):
        try:
            parts = urllib.parse.urlsplit(value)
            _ = parts.port  # a bad port raises ValueError
        except ValueError:
            pass
        else:
            if parts.scheme and parts.hostname:
                return value
    raise ConfigurationError(f"{name} must be an absolute URL, got {value!r}")


def check_key_hash(value: object) -> str:
    """A key's ``hash`` (as the keys API returns it), safe to put in a URL path."""
    if not isinstance(value, str) or not value or _HASH_FORBIDDEN.search(value):
        raise ConfigurationError(
            f"hash must be a key hash as returned by the keys API, got {value!r}"
        )
    return value


def check_csv(name: str, value: object) -> str:
    """A comma-separated list from a string or a sequence of non-empty strings."""
    if isinstance(value, str):
        if value.strip():
            return value
    elif isinstance(value, Sequence) and value:
        items = list(value)
        if all(isinstance(item, str) and item and "," not in item for item in items):
            return ",".join(items)
    raise ConfigurationError(
        f"{name} must be a string or a non-empty sequence of strings, got {value!r}"
    )


def convert_params(where: str, kind: type[_S], values: Mapping[str, Any]) -> _S:
    """Build the request Struct ``kind`` from ``values``, type-checking each field.

    Raises:
        ConfigurationError: a field has the wrong type; the message names the
            field and quotes the value.
    """
    try:
        return msgspec.convert(values, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH_AT.search(text)
        if match is not None and match.group(1) in values:
            field = match.group(1)
            reason = text[: match.start()]
            raise ConfigurationError(
                f"{where} got {field}={values[field]!r}, which is invalid: {reason}"
            ) from None
        raise ConfigurationError(f"{where} got invalid arguments: {text}") from None


def decode_body(decoder: msgspec.json.Decoder[_T], body: bytes, what: str) -> _T:
    """Decode a 2xx body, blaming the server if it does not fit.

    Raises:
        RemoteProtocolError: the body is not JSON or not ``what``.
    """
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise RemoteProtocolError(f"The server sent a body that is not {what} ({exc})") from exc
