"""Error mapping of the transport: httpx failures and non-2xx answers to the runtime's errors.

:func:`_translate` (through :func:`_map_httpx_errors`) is the one boundary where
an ``httpx.*`` exception becomes a :class:`TransportTimeout`,
:class:`TransportError` or :class:`RemoteProtocolError`; :func:`_status_error`
builds the typed :class:`APIStatusError` of a non-2xx answer from its status,
headers and body. Both scrub the API key out of any text they quote.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, Final

import httpx
import msgspec

from runtime._base.errors import (
    AgentError,
    APIStatusError,
    RemoteProtocolError,
    TransportError,
    TransportTimeout,
    status_error_class,
)
from runtime._http.retry import _retry_after

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__: list[str] = []
# Package-internal: _translate, _map_httpx_errors, _retryable_failure, _status_error
# (runtime._http.transport, .responses).

_MESSAGE_BODY_LIMIT: Final = 500  # characters of a non-JSON error body quoted in a message
_JSON_DECODER: Final = msgspec.json.Decoder()


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _describe(exc: BaseException, secret: str | None) -> str:
    detail = _scrub(str(exc), secret)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _translate(exc: httpx.HTTPError, method: str, path: str, secret: str | None) -> AgentError:
    """The runtime error for an httpx error: the most specific mapping wins."""
    if isinstance(exc, httpx.TimeoutException):
        return TransportTimeout(f"{method} {path!r} timed out ({_describe(exc, secret)}).")
    if isinstance(exc, httpx.DecodingError):  # the server's bytes, not the network
        return RemoteProtocolError(
            f"The body of {method} {path!r} could not be decoded ({_describe(exc, secret)})."
        )
    # httpx.TransportError (connect, read, write, protocol, proxy) and the rest.
    return TransportError(f"{method} {path!r} failed ({_describe(exc, secret)}).")


@contextlib.contextmanager
def _map_httpx_errors(method: str, path: str, secret: str | None) -> Iterator[None]:
    """Translate httpx's exceptions into the runtime's tree: the one boundary.

    The body iterator inlines the same ``except`` (a context manager per chunk
    would cost a generator per chunk); both go through :func:`_translate`.
    """
    try:
        yield
    except httpx.HTTPError as exc:
        raise _translate(exc, method, path, secret) from exc


def _retryable_failure(exc: TransportError) -> bool:
    # A timeout, a network failure or a connection the server dropped before
    # answering; not a local protocol error, a bad proxy or an unsupported scheme.
    return isinstance(
        exc.__cause__, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _status_error(
    status_code: int, headers: httpx.Headers, body: bytes, secret: str | None, now: float
) -> APIStatusError:
    """Build the typed error for a non-2xx answer (wire-protocol §10.1, all variants)."""
    if secret and secret.encode() in body:
        body = body.replace(secret.encode(), b"***")
    retry_after = _retry_after(headers, now)
    message: str | None = None
    code: int | str | None = None
    metadata_: dict[str, Any] | None = None
    error_type: str | None = None
    data: Any = None
    is_json = False
    if body:
        try:
            data = _JSON_DECODER.decode(body)
            is_json = True
        except msgspec.DecodeError:
            data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = _str_or_none(error.get("message"))
            raw_code = error.get("code")
            if isinstance(raw_code, int | str) and not isinstance(raw_code, bool):
                code = raw_code
            raw_metadata = error.get("metadata")
            metadata_ = raw_metadata if isinstance(raw_metadata, dict) else None
            error_type = _str_or_none(error.get("error_type"))
            if error_type is None and metadata_ is not None:
                error_type = _str_or_none(metadata_.get("error_type"))
            availability = error.get("availability")
            if retry_after is None and isinstance(availability, dict):
                hint = availability.get("retry_after")
                if (
                    isinstance(hint, int | float)
                    and not isinstance(hint, bool)
                    and math.isfinite(hint)
                    and hint >= 0
                ):
                    retry_after = float(hint)
        elif isinstance(error, str):
            message = error or None
        if message is None:
            message = _str_or_none(data.get("message"))
        if error_type is None:
            error_type = _str_or_none(data.get("error_type"))
    if message is None:
        message = _describe_body(body, headers.get("content-type"), is_json=is_json)
    return status_error_class(status_code)(
        message,
        status_code=status_code,
        code=code,
        metadata=metadata_,
        error_type=error_type,
        retry_after=retry_after,
        body=data,
    )


def _describe_body(body: bytes, content_type: str | None, *, is_json: bool) -> str:
    kind = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
    if not body:
        return f"The server sent an empty error body ({kind})."
    text = body.decode("utf-8", errors="replace")
    more = len(text) - _MESSAGE_BODY_LIMIT
    snippet = text[:_MESSAGE_BODY_LIMIT]
    tail = f" ...and {more} more chars" if more > 0 else ""
    if is_json:
        return f"The server's JSON error body has no message: {snippet!r}{tail}."
    return f"The server sent a non-JSON error body ({kind}): {snippet!r}{tail}."
