"""The HTTP transport: the one module that speaks HTTP to OpenRouter, and the only httpx importer.

Its job: turn ``(method, path, body)`` into an HTTP exchange that carries
OpenRouter's auth and attribution headers, retry the connect/headers phase
according to a :class:`RetryConfig`, and translate every failure into the
runtime's error tree. It knows HTTP, not SSE: a stream's body goes out as raw
byte chunks, and the model-call actor feeds them to the SSE decoder.

Rules this module keeps (each one is relied on elsewhere):

1. **One translation boundary.** Every httpx exception is translated by
   :func:`_translate`, reached through :func:`_map_httpx_errors` (httpx's
   ``map_httpcore_exceptions`` shape) or, per body chunk, through the same
   ``except`` inlined in :class:`_RawBody`: timeouts become
   :class:`TransportTimeout`, other transport failures :class:`TransportError`,
   undecodable content encodings :class:`RemoteProtocolError`, always
   ``raise Mapped(...) from exc``. Nothing outside this module ever sees an
   ``httpx.*`` exception.
2. **Status before body.** A non-2xx answer is read (at most
   ``_ERROR_BODY_LIMIT`` bytes), closed and raised as the typed error of its
   status before anything could hand its bytes to a body parser.
3. **Only the connect/headers phase is retried.** Once a 2xx response has been
   handed out, a failure while reading its body is raised, never answered with a
   re-send: a model's output would be duplicated and billed twice.
4. **The API key stays secret.** It is checked eagerly (so that h11 never gets
   to quote an illegal header value back in an error), every ``repr`` shows a
   redacted form, and any text that comes from the server or from httpx is
   scrubbed of it before it reaches a message or an error attribute.
5. **Every response is closed on every path**, cancellation included: closing
   runs in a shielded scope bounded by ``_CLOSE_GRACE`` seconds, and a body
   left half-read is unwound at once rather than left to the garbage
   collector (see :class:`_RawBody`).
6. **Backoff sleeps on trio's clock** (``trio.sleep``) and draws jitter from an
   injectable ``random.Random``, so tests run on ``autojump_clock``.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import os
import random
import re
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC
from importlib import metadata
from typing import Any, Final, Literal, Protocol, Self, TypeAlias, final

import httpx
import msgspec
import trio

from runtime._base.errors import (
    AgentError,
    APIStatusError,
    ConfigurationError,
    RemoteProtocolError,
    TransportError,
    TransportTimeout,
    status_error_class,
)
from runtime._http.h11 import H11Transport

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "NO_RETRY",
    "HttpxTransport",
    "HTTPTimeout",
    "HTTPResponse",
    "ApiTransport",
    "InProcessHandler",
    "InProcessTransport",
    "RetryConfig",
    "USER_AGENT",
    "StreamingResponse",
]

HttpxTransport: TypeAlias = httpx.AsyncBaseTransport
"""What ``OpenRouter(http_transport=...)`` takes (so other modules need not import httpx)."""
HTTPTimeout: TypeAlias = httpx.Timeout
"""What ``OpenRouter(timeout=...)`` takes besides seconds."""

DEFAULT_BASE_URL: Final = "https://openrouter.ai/api/v1"
# A model may think for minutes between two SSE lines when a provider sends no
# keep-alive, so reads get a long leash; a connect that takes 10 s is dead.
DEFAULT_TIMEOUT: Final = httpx.Timeout(600.0, connect=10.0)
# One pool shared by every session of a client: many sessions stream at once.
DEFAULT_LIMITS: Final = httpx.Limits(
    max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0
)

_ERROR_BODY_LIMIT: Final = 256 * 1024  # bytes of an error body we read at most
_MESSAGE_BODY_LIMIT: Final = 500  # characters of a non-JSON error body quoted in a message
_CLOSE_GRACE: Final = 5.0  # seconds a shielded response/client close may take
# Chunks _RawBody.aclose may discard before giving up: what h11 still buffers
# (at most one 64 KiB read) comes out before the first real await.
_DRAIN_LIMIT: Final = 4096
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Visible ASCII only: what an API key may contain.
_KEY_CHARS: Final = re.compile(r"[\x21-\x7e]+")
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_RETRY_CODE: Final = re.compile(r"[45](?:[0-9]{2}|XX)")
_JSON_ENCODER: Final = msgspec.json.Encoder()
_JSON_DECODER: Final = msgspec.json.Decoder()


def _package_version() -> str:
    try:
        return metadata.version("openrouter-trio")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


USER_AGENT: Final = (
    f"openrouter-trio/{_package_version()} python/{sys.version_info[0]}.{sys.version_info[1]}"
)


# --------------------------------------------------------------------------- retry policy


class RetryConfig(msgspec.Struct, frozen=True, kw_only=True):
    """When and how long to wait before re-sending a request.

    Only the connect/headers phase is ever retried; a response whose body has
    started is never re-sent. Each request (each turn of a run) has its own budget.

    The delay before retry ``x`` (0-based) is the server's hint when it gives a
    positive one (``retry-after-ms``, then ``Retry-After`` as seconds or an
    HTTP-date, then ``error.availability.retry_after`` in the body), otherwise
    ``initial_interval * x ** exponent + uniform[0, 1)`` seconds; either way
    capped at ``max_interval``.

    Attributes:
        strategy: ``"backoff"`` retries; ``"none"`` sends each request once.
        initial_interval: seconds; scale of the exponential part.
        max_interval: seconds; cap on any single delay, server hints included.
        exponent: growth of the exponential part.
        max_elapsed_time: seconds since the first attempt after which a failure
            is final: a retryable response is raised as its typed error, a
            connection failure as :class:`TransportError`.
        retry_connection_errors: retry connect/read/write failures and timeouts
            that happen before the response headers arrived.
        retry_codes: statuses to retry, exact (``"503"``) or by family
            (``"5XX"``). 429 is not retried unless listed.
        max_retries: hard cap on the number of retries (``None``: no cap beyond
            ``max_elapsed_time``).

    Raises:
        ConfigurationError: on construction, for a value out of range.
    """

    strategy: Literal["backoff", "none"] = "backoff"
    initial_interval: float = 0.5
    max_interval: float = 60.0
    exponent: float = 1.5
    max_elapsed_time: float = 3600.0
    retry_connection_errors: bool = True
    retry_codes: tuple[str, ...] = ("5XX",)
    max_retries: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in ("backoff", "none"):
            raise ConfigurationError(
                f"RetryConfig.strategy must be 'backoff' or 'none', not {self.strategy!r}."
            )
        _check_seconds("initial_interval", self.initial_interval)
        _check_seconds("max_interval", self.max_interval, allow_inf=True)
        _check_seconds("exponent", self.exponent)
        _check_seconds("max_elapsed_time", self.max_elapsed_time, allow_inf=True)
        if not isinstance(self.retry_connection_errors, bool):
            raise ConfigurationError(
                "RetryConfig.retry_connection_errors must be a bool, "
                f"not {self.retry_connection_errors!r}."
            )
        msgspec.structs.force_setattr(self, "retry_codes", _check_retry_codes(self.retry_codes))
        max_retries = self.max_retries
        if max_retries is not None and (
            not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0
        ):
            raise ConfigurationError(
                f"RetryConfig.max_retries must be None or an int >= 0, not {max_retries!r}."
            )

    def retries_status(self, status_code: int) -> bool:
        """Whether a response with ``status_code`` is retried under this policy."""
        if self.strategy != "backoff" or not 400 <= status_code <= 599:
            return False
        exact = str(status_code)
        family = f"{exact[0]}XX"
        return any(code in (exact, family) for code in self.retry_codes)


def _check_seconds(name: str, value: object, *, allow_inf: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < 0
        or (math.isinf(value) and not allow_inf)
    ):
        raise ConfigurationError(f"RetryConfig.{name} must be a number >= 0, not {value!r}.")


def _check_retry_codes(codes: object) -> tuple[str, ...]:
    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        raise ConfigurationError(
            "RetryConfig.retry_codes must be a sequence of strings such as ('5XX',), "
            f"not {codes!r}."
        )
    checked: list[str] = []
    for code in codes:
        normal = code.upper() if isinstance(code, str) else ""
        if not _RETRY_CODE.fullmatch(normal):
            raise ConfigurationError(
                "RetryConfig.retry_codes entries must be a 4xx/5xx status such as '503' "
                f"or a family such as '5XX', not {code!r}."
            )
        checked.append(normal)
    return tuple(checked)


DEFAULT_RETRY: Final = RetryConfig()
NO_RETRY: Final = RetryConfig(strategy="none")


def _backoff_delay(
    config: RetryConfig, attempt: int, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based)."""
    if retry_after is not None and retry_after > 0:
        delay = retry_after
    else:
        delay = config.initial_interval * float(attempt) ** config.exponent + rng.random()
    return min(delay, config.max_interval)


def _parse_seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _retry_after(headers: httpx.Headers, now: float) -> float | None:
    """The server's wait hint in seconds: ``retry-after-ms``, then ``Retry-After``."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        millis = _parse_seconds(raw_ms)
        if millis is not None:
            return millis / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _parse_seconds(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC without a named zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


# --------------------------------------------------------------------------- error mapping


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


# --------------------------------------------------------------------------- responses


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").partition(";")[0].strip().lower()


class HTTPResponse(msgspec.Struct, frozen=True, kw_only=True):
    """A fully read 2xx answer of :meth:`ApiTransport.request`.

    Attributes:
        status_code: the HTTP status (2xx).
        headers: the response headers (a case-insensitive mapping).
        body: the body, with any ``Content-Encoding`` undone.
    """

    status_code: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type, lower-cased and without parameters (``""`` if absent)."""
        return _media_type(self.headers)

    @property
    def generation_id(self) -> str | None:
        """The ``X-Generation-Id`` header, if the server sent one."""
        return self.headers.get("x-generation-id")

    def json(self) -> Any:
        """The body decoded as JSON.

        Raises:
            RemoteProtocolError: the body is not valid JSON.
        """
        try:
            return _JSON_DECODER.decode(self.body)
        except msgspec.DecodeError as exc:
            raise RemoteProtocolError(
                f"The response body is not valid JSON: {self.body[:100]!r}."
            ) from exc


@final
class _RawBody:
    """The async iterator :meth:`StreamingResponse.aiter_raw` returns.

    Why a class and why :meth:`aclose` is unusual: httpx and httpcore stream a
    body through a chain of four or five async generators. A consumer that
    stops early (at ``[DONE]``, or cancelled) abandons that chain, and trio's
    GC hook finalizes every link later, each with a ``ResourceWarning``
    (encode/httpx#3686). Closing only the top link does not help: an exception
    thrown in at the top never reaches the links below. An exception raised at
    the *bottom* does, finishing every link on its way up, so :meth:`aclose`
    resumes the chain inside an already-cancelled scope: the innermost await
    raises ``Cancelled``, every layer runs its own cleanup (httpcore closes the
    connection), and the scope absorbs its own cancellation. This class itself
    is not a generator, so it leaves nothing behind either.
    """

    __slots__ = ("_context", "_finished", "_source")

    def __init__(self, source: AsyncIterator[bytes], context: tuple[str, str, str | None]) -> None:
        self._source = source
        self._context = context
        self._finished = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        # try/except costs nothing per chunk until something is raised (3.11+).
        try:
            chunk = await self._source.__anext__()
            while not chunk:
                chunk = await self._source.__anext__()
        except httpx.HTTPError as exc:
            self._finished = True
            raise _translate(exc, *self._context) from exc
        except BaseException:  # the end, or Cancelled: the chain has unwound either way
            self._finished = True
            raise
        return chunk

    async def aclose(self) -> None:
        """Unwind the wrapped chain now. A checkpoint only if it was not finished."""
        if self._finished:
            return
        self._finished = True
        with trio.CancelScope() as cancel_scope:
            cancel_scope.cancel()
            # Chunks still buffered come out first; anything the layers raise
            # while unwinding (a read on a closed socket) is of no interest.
            with contextlib.suppress(Exception):
                for _ in range(_DRAIN_LIMIT):
                    await self._source.__anext__()
        # A chain that neither ended nor raised within the limit is left to GC.


@final
class StreamingResponse:
    """A 2xx answer whose body has not been read yet; handed out by :meth:`ApiTransport.stream`.

    Valid only inside the ``async with`` block that produced it: leaving the
    block closes the body and releases the connection. The body can be read
    once, either with :meth:`aiter_raw` or with :meth:`aread`.
    """

    __slots__ = ("_body", "_closed", "_context", "_response", "headers", "status_code")

    def __init__(self, response: httpx.Response, context: tuple[str, str, str | None]) -> None:
        self._response = response
        self._context = context  # (method, path, secret) for error messages
        self._body: _RawBody | None = None
        self._closed = False
        self.status_code: int = response.status_code
        self.headers: Mapping[str, str] = response.headers

    @property
    def content_type(self) -> str:
        """The media type, lower-cased and without parameters (``""`` if absent)."""
        return _media_type(self.headers)

    @property
    def is_event_stream(self) -> bool:
        """Whether the body is ``text/event-stream`` (otherwise it is usually JSON)."""
        return self.content_type == "text/event-stream"

    @property
    def generation_id(self) -> str | None:
        """The ``X-Generation-Id`` header (the ``gen-…`` id), if the server sent one."""
        return self.headers.get("x-generation-id")

    @property
    def request_id(self) -> str | None:
        """The ``X-Request-Id`` header, if the server (or a proxy) sent one."""
        return self.headers.get("x-request-id")

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """Iterate over the body's bytes in the chunks they arrive in.

        No buffering or re-chunking happens here, and empty chunks are skipped.
        A ``Content-Encoding`` (gzip, ...) is undone; without one the chunks are
        the connection's own. Each step is a checkpoint whenever it waits for
        the network. Stopping early is fine: leaving the block closes the rest.

        Raises:
            trio.ClosedResourceError: the body was already read, or the
                ``stream()`` block has exited.
            TransportError: the connection failed mid-body (after every chunk
                received before the failure was yielded).
            TransportTimeout: no bytes arrived within the read timeout.
            RemoteProtocolError: the ``Content-Encoding`` could not be decoded.
        """
        if self._closed:
            raise trio.ClosedResourceError("This response is closed: its stream() block exited.")
        if self._body is not None:
            raise trio.ClosedResourceError("This response's body has already been read.")
        response = self._response
        stream = response.stream
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        source: AsyncIterator[bytes]
        if encoding in ("", "identity") and isinstance(stream, httpx.AsyncByteStream):
            # Fast path: iterate the byte stream itself, skipping httpx's
            # Response.aiter_raw layer (one generator frame and one list per
            # chunk). Closing stays ours: stream() closes the response on exit.
            source = aiter(stream)
        else:
            source = response.aiter_bytes()
        self._body = _RawBody(source, self._context)
        return self._body

    async def aread(self) -> bytes:
        """Read the whole (remaining) body. Always a checkpoint.

        Raises:
            The same errors as :meth:`aiter_raw`.
        """
        await trio.lowlevel.checkpoint()
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def _aclose(self) -> None:
        # Shielded, bounded: a cancelled block still releases the connection.
        # Failures while closing an already failing connection tell nobody
        # anything new, so they are dropped.
        self._closed = True
        with trio.move_on_after(_CLOSE_GRACE, shield=True):
            if self._body is not None:
                await self._body.aclose()
            with contextlib.suppress(httpx.TransportError):
                await self._response.aclose()

    def __repr__(self) -> str:
        method, path, _ = self._context
        return (
            f"<StreamingResponse {method} {path!r} {self.status_code} "
            f"content_type={self.content_type!r}>"
        )


async def _close_response(response: httpx.Response) -> None:
    # Shielded so a cancelled caller still releases the connection; bounded so
    # a wedged close cannot hold the cancellation up. A failure to close an
    # already failing connection tells the caller nothing new.
    with trio.move_on_after(_CLOSE_GRACE, shield=True), contextlib.suppress(httpx.TransportError):
        await response.aclose()


async def _read_error_body(response: httpx.Response, context: tuple[str, str, str | None]) -> bytes:
    """At most ``_ERROR_BODY_LIMIT`` bytes of an error body (a proxy may send megabytes)."""
    parts: list[bytes] = []
    size = 0
    body = _RawBody(response.aiter_bytes(), context)
    try:
        async for chunk in body:
            parts.append(chunk)
            size += len(chunk)
            if size >= _ERROR_BODY_LIMIT:
                break
    finally:
        await body.aclose()
    return b"".join(parts)[:_ERROR_BODY_LIMIT]


# --------------------------------------------------------------------------- configuration


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _check_api_key(api_key: object) -> str | None:
    """The bare key (no ``Bearer `` prefix); never quotes the key in an error."""
    if api_key is None:
        return None
    if not isinstance(api_key, str):
        raise ConfigurationError(
            f"api_key must be a str or None, not a {type(api_key).__name__!r}."
        )
    key = api_key.strip()
    if key.lower() == "bearer" or key[:7].lower() == "bearer ":
        key = key[6:].strip()
    if not key:
        raise ConfigurationError("api_key is empty; pass a key such as 'sk-or-v1-...' or None.")
    if not _KEY_CHARS.fullmatch(key):
        index, char = next((i, c) for i, c in enumerate(key) if not _KEY_CHARS.fullmatch(c))
        raise ConfigurationError(
            f"api_key contains {char!r} at index {index}, which cannot be sent in an HTTP header."
        )
    return key


def _redacted(key: str | None) -> str | None:
    if key is None:
        return None
    if key.startswith("sk-or-") and len(key) >= 20:
        return f"sk-or-…{key[-4:]}"
    return "***"


def _check_base_url(value: object, source: str) -> str:
    example = f"an http(s) URL such as {DEFAULT_BASE_URL!r}"
    if not isinstance(value, str):
        raise ConfigurationError(f"{source} must be {example}, not {value!r}.")
    text = value.strip().rstrip("/")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{source} must be {example}, not {value!r}.") from exc
    if url.scheme not in ("http", "https") or not url.host or not 0 < (url.port or 1) < 65536:
        raise ConfigurationError(f"{source} must be {example}, not {value!r}.")
    if url.userinfo or url.query or url.fragment:
        raise ConfigurationError(
            f"{source} must not carry credentials, a query or a fragment, not {value!r}."
        )
    return text


def _check_header_value(what: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a str, not {value!r}.")
    if _CONTROL_CHARS.search(value):
        raise ConfigurationError(f"{what} contains a control character: {value!r}.")
    # Non-ASCII (an app title such as 'Café') goes out as UTF-8 (obs-text).
    return value.encode()


def _check_headers(headers: object, where: str) -> list[tuple[bytes, bytes]]:
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"{where} must be a mapping of str to str, not {headers!r}.")
    checked: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(f"{where} has an invalid header name {name!r}.")
        if name.lower() in ("authorization", "proxy-authorization"):
            raise ConfigurationError(
                f"{where} must not set {name!r}; pass the key as api_key so it stays redacted."
            )
        checked.append((name.encode(), _check_header_value(f"header {name!r}", value)))
    return checked


def _check_categories(categories: object) -> str | None:
    if categories is None:
        return None
    items: list[object]
    if isinstance(categories, str):
        items = [part.strip() for part in categories.split(",")]
    elif isinstance(categories, Sequence):
        items = list(categories)
    else:
        raise ConfigurationError(
            f"app_categories must be a sequence of strings, not {categories!r}."
        )
    for item in items:
        if not isinstance(item, str) or not item or not _HEADER_NAME.fullmatch(item) or "," in item:
            raise ConfigurationError(
                f"app_categories entries must be names such as 'cli-agent', not {item!r}."
            )
    return ",".join(str(item) for item in items) or None


def _check_timeout(timeout: object) -> httpx.Timeout:
    if timeout is None or isinstance(timeout, httpx.Timeout):
        return httpx.Timeout(timeout)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(
            f"timeout must be a number of seconds > 0, an httpx.Timeout or None, not {timeout!r}."
        )
    return httpx.Timeout(float(timeout))


def _check_path(path: object) -> str:
    if (
        not isinstance(path, str)
        or not path
        or "://" in path
        or path.startswith("//")
        or _CONTROL_CHARS.search(path)
        or " " in path
    ):
        raise ConfigurationError(
            f"path must be a path relative to the base URL such as '/responses', not {path!r}."
        )
    return path


# --------------------------------------------------------------------------- the transport


@final
class ApiTransport:
    """OpenRouter over HTTP: auth, attribution headers, retries and error mapping.

    Owns one ``httpx.AsyncClient`` whose connection pool is shared by every
    request and session that uses this transport. Use it as an async context
    manager, or call :meth:`aclose` when done.

    Unset arguments fall back to the environment: ``OPENROUTER_API_KEY``,
    ``OPENROUTER_BASE_URL``, ``OPENROUTER_HTTP_REFERER``,
    ``OPENROUTER_APP_TITLE``, ``OPENROUTER_APP_CATEGORIES`` (empty counts as
    unset). Everything is validated here, before any I/O.

    Args:
        api_key: the key sent as ``Authorization: Bearer <key>`` (a ``Bearer ``
            prefix is not doubled; surrounding whitespace is dropped). ``None``
            means the environment, and without that no ``Authorization`` header.
        base_url: API root; default ``https://openrouter.ai/api/v1``; a trailing
            ``/`` is stripped.
        http_referer: your app's URL (``HTTP-Referer``), for attribution.
        app_title: your app's name (``X-OpenRouter-Title``).
        app_categories: marketplace categories (``X-OpenRouter-Categories``),
            a sequence or a comma-separated string.
        retry: the default retry policy; each call may override it.
        timeout: seconds for every phase, an ``httpx.Timeout``, or ``None`` for
            no HTTP-level timeout. Whole-call deadlines belong to the caller
            (``trio.fail_after``).
        limits: connection-pool limits (ignored when ``http_transport`` is given).
        headers: extra headers sent with every request (not ``Authorization``).
        http_transport: an ``httpx.AsyncBaseTransport`` to send through
            (``httpx.MockTransport`` in tests); the transport then owns it.
        user_agent: replaces ``openrouter-trio/<version> python/<x.y>``.
        rng: source of backoff jitter (inject a seeded one in tests).

    Raises:
        ConfigurationError: for any invalid argument or environment value.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        http_referer: str | None = None,
        app_title: str | None = None,
        app_categories: str | Sequence[str] | None = None,
        retry: RetryConfig = DEFAULT_RETRY,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        limits: httpx.Limits | None = None,
        headers: Mapping[str, str] | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        key = _check_api_key(api_key if api_key is not None else _env("OPENROUTER_API_KEY"))
        if base_url is not None:
            url = _check_base_url(base_url, "base_url")
        else:
            env_url = _env("OPENROUTER_BASE_URL")
            url = (
                DEFAULT_BASE_URL
                if env_url is None
                else _check_base_url(env_url, "OPENROUTER_BASE_URL")
            )
        if not isinstance(retry, RetryConfig):
            raise ConfigurationError(f"retry must be a RetryConfig, not {retry!r}.")
        if limits is not None and not isinstance(limits, httpx.Limits):
            raise ConfigurationError(f"limits must be an httpx.Limits or None, not {limits!r}.")
        if http_transport is not None and not isinstance(http_transport, httpx.AsyncBaseTransport):
            raise ConfigurationError(
                f"http_transport must be an httpx.AsyncBaseTransport, not {http_transport!r}."
            )
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigurationError(f"rng must be a random.Random, not {rng!r}.")

        default_headers: list[tuple[bytes, bytes]] = [
            (b"User-Agent", _check_header_value("user_agent", user_agent or USER_AGENT))
        ]
        if key is not None:
            default_headers.append((b"Authorization", f"Bearer {key}".encode()))
        referer = http_referer if http_referer is not None else _env("OPENROUTER_HTTP_REFERER")
        if referer is not None:
            default_headers.append((b"HTTP-Referer", _check_header_value("http_referer", referer)))
        title = app_title if app_title is not None else _env("OPENROUTER_APP_TITLE")
        if title is not None:
            default_headers.append((b"X-OpenRouter-Title", _check_header_value("app_title", title)))
        categories = _check_categories(
            app_categories if app_categories is not None else _env("OPENROUTER_APP_CATEGORIES")
        )
        if categories is not None:
            default_headers.append((b"X-OpenRouter-Categories", categories.encode()))
        if headers is not None:
            default_headers.extend(_check_headers(headers, "headers"))

        self._api_key = key
        self._base_url = url
        self._retry = retry
        self._rng = rng if rng is not None else random.Random()
        self._closed = False
        pool_limits = limits if limits is not None else DEFAULT_LIMITS
        if http_transport is None:
            # Bulk reads: a server flushing every token costs ~1 µs per HTTP
            # chunk here instead of httpcore's ~17 µs (see _transport_h11).
            http_transport = H11Transport(limits=pool_limits)
        self._client = httpx.AsyncClient(
            base_url=url,
            headers=httpx.Headers(default_headers),
            timeout=_check_timeout(timeout),
            limits=pool_limits,
            transport=http_transport,
            follow_redirects=False,
        )

    @property
    def base_url(self) -> str:
        """The API root every path is relative to (no trailing ``/``)."""
        return self._base_url

    @property
    def retry(self) -> RetryConfig:
        """The default retry policy."""
        return self._retry

    def __repr__(self) -> str:
        return (
            f"ApiTransport(base_url={self._base_url!r}, "
            f"api_key={_redacted(self._api_key)!r}, closed={self._closed!r})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent; always a checkpoint.

        Closes even when cancelled (shielded, bounded), then checkpoints, like
        trio's own ``aclose`` methods. Responses still open are closed with it.
        """
        if not self._closed:
            self._closed = True
            with trio.move_on_after(_CLOSE_GRACE, shield=True):
                await self._client.aclose()
        await trio.lowlevel.checkpoint()

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str | int | float | bool | None] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryConfig | None = None,
    ) -> AsyncIterator[StreamingResponse]:
        """Send a request and yield its 2xx response with the body still unread.

        Sends ``Accept: text/event-stream`` (override with ``headers``) and, with
        ``content``, ``Content-Type: application/json``. The connect/headers
        phase is retried under ``retry`` (default: the transport's policy); the
        status is checked before the block is entered.

        Entering is a checkpoint. Cancellation while entering leaves nothing
        open. Leaving the block, in any way, closes the body and releases the
        connection; the :class:`StreamingResponse` is unusable afterwards.

        Args:
            method: ``"POST"``, ``"GET"``, ...
            path: relative to the base URL, e.g. ``"/responses"``.
            content: the request body, already encoded (JSON).
            params: query parameters.
            headers: extra headers for this request (not ``Authorization``).
            retry: the retry policy for this request.

        Raises:
            APIStatusError: a non-2xx answer (the subclass of its status), after
                retries were exhausted for a retryable status.
            TransportError: the request could not be sent or answered.
            TransportTimeout: an HTTP-level timeout expired.
            ConfigurationError: a bad argument.
            trio.ClosedResourceError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        request = self._build(method, path, content, params, headers, "text/event-stream")
        context = (request.method, request.url.path, self._api_key)
        streaming = StreamingResponse(await self._send(request, context, retry), context)
        try:
            yield streaming
        finally:
            await streaming._aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str | int | float | bool | None] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryConfig | None = None,
    ) -> HTTPResponse:
        """Send a request and read its whole 2xx answer (for the REST endpoints).

        ``json`` is encoded with msgspec (anything msgspec can encode, Structs
        included); ``content`` is sent as is. Retries and errors as in
        :meth:`stream`; reading the body after the headers is not retried.
        Always a checkpoint. On cancellation the response is closed.

        Raises:
            APIStatusError: a non-2xx answer (the subclass of its status).
            TransportError: the request failed, also while reading the body.
            TransportTimeout: an HTTP-level timeout expired.
            RemoteProtocolError: the body's ``Content-Encoding`` was undecodable.
            ConfigurationError: a bad argument (e.g. both ``json`` and ``content``).
            trio.ClosedResourceError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        if json is not None:
            if content is not None:
                raise ConfigurationError("Pass either json or content, not both.")
            try:
                content = _JSON_ENCODER.encode(json)
            except (TypeError, msgspec.EncodeError) as exc:
                raise ConfigurationError(
                    f"json could not be encoded: {type(json).__name__!r} ({exc})."
                ) from exc
        request = self._build(method, path, content, params, headers, "application/json")
        context = (request.method, request.url.path, self._api_key)
        response = await self._send(request, context, retry)
        try:
            with _map_httpx_errors(*context):
                body = await response.aread()
        finally:
            await _close_response(response)
        return HTTPResponse(status_code=response.status_code, headers=response.headers, body=body)

    def _build(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str | int | float | bool | None] | None,
        headers: Mapping[str, str] | None,
        accept: str,
    ) -> httpx.Request:
        if self._closed:
            raise trio.ClosedResourceError("This ApiTransport is closed.")
        verb = method.upper() if isinstance(method, str) else method
        if verb not in _METHODS:
            raise ConfigurationError(
                f"method must be an HTTP method such as 'POST', not {method!r}."
            )
        if content is not None and not isinstance(content, bytes):
            raise ConfigurationError(f"content must be bytes, not {type(content).__name__!r}.")
        request_headers = httpx.Headers({"Accept": accept})
        if content is not None:
            request_headers["Content-Type"] = "application/json"
        if headers:
            # Header names are case-insensitive: update() replaces ours with the caller's.
            request_headers.update(httpx.Headers(_check_headers(headers, "headers")))
        try:
            return self._client.build_request(
                verb, _check_path(path), content=content, params=params, headers=request_headers
            )
        except httpx.InvalidURL as exc:
            raise ConfigurationError(
                f"path must be a path relative to the base URL, not {path!r}."
            ) from exc

    async def _send(
        self,
        request: httpx.Request,
        context: tuple[str, str, str | None],
        retry: RetryConfig | None,
    ) -> httpx.Response:
        """Send with retries; return an unread 2xx response or raise the final failure."""
        if retry is not None and not isinstance(retry, RetryConfig):
            raise ConfigurationError(f"retry must be a RetryConfig or None, not {retry!r}.")
        config = self._retry if retry is None else retry
        start = trio.current_time()
        attempt = 0
        while True:
            try:
                with _map_httpx_errors(*context):
                    response = await self._client.send(request, stream=True)
                    if response.is_success:
                        return response
                    try:
                        body = await _read_error_body(response, context)
                    finally:
                        await _close_response(response)
            except TransportError as exc:
                if not (
                    config.strategy == "backoff"
                    and config.retry_connection_errors
                    and _retryable_failure(exc)
                ) or self._exhausted(config, attempt, start):
                    raise
                delay = _backoff_delay(config, attempt, None, self._rng)
            else:
                error = _status_error(
                    response.status_code, response.headers, body, self._api_key, time.time()
                )
                if not config.retries_status(response.status_code) or self._exhausted(
                    config, attempt, start
                ):
                    raise error
                delay = _backoff_delay(config, attempt, error.retry_after, self._rng)
            await trio.sleep(delay)
            attempt += 1

    @staticmethod
    def _exhausted(config: RetryConfig, attempt: int, start: float) -> bool:
        if config.max_retries is not None and attempt >= config.max_retries:
            return True
        return trio.current_time() - start > config.max_elapsed_time


# ---------------------------------------------------------------------------
# In-process adapter: an httpx transport over a handler (runtime.testing)
# ---------------------------------------------------------------------------


class InProcessHandler(Protocol):
    """What :class:`InProcessTransport` calls: ``FakeOpenRouter.handle`` and the like."""

    async def __call__(
        self, method: str, url_path: str, headers: list[tuple[str, str]], body: bytes
    ) -> Any: ...


class _InProcessBody(httpx.AsyncByteStream):
    """A streamed in-process body; a dropped connection reads as httpx's own error."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                yield chunk
        except trio.BrokenResourceError as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ) from exc

    async def aclose(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class InProcessTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that answers from an in-process handler, no sockets.

    The handler gets the method, the path with its query, the header pairs and
    the body, and returns an object with ``status``, ``headers`` (pairs) and
    ``body`` (bytes, or an async iterator of chunks). ``runtime.testing``'s
    ``FakeOpenRouter`` is such a handler: ``OpenRouter(http_transport=
    fake.http_transport())``.
    """

    def __init__(self, handler: InProcessHandler) -> None:
        self._handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        target = request.url.raw_path.decode("ascii")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        answer = await self._handler(request.method, target, headers, body)
        content = answer.body
        stream: httpx.AsyncByteStream | None = None
        if not isinstance(content, bytes):
            stream = _InProcessBody(content)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            content=content if stream is None else None,
            stream=stream,
            request=request,
        )
