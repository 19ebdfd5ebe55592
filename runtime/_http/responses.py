"""The responses :class:`~runtime._http.transport.ApiTransport` hands out, and closing them.

:class:`HTTPResponse` is a fully read 2xx answer; :class:`StreamingResponse` a
2xx answer whose body is still unread, read through :class:`_RawBody` (which
translates httpx's errors per chunk and unwinds an abandoned body at once).
:func:`_close_response` and :func:`_read_error_body` close and read responses
within the ``_CLOSE_GRACE`` and ``_ERROR_BODY_LIMIT`` bounds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping  # noqa: TC003 - msgspec resolves Struct fields at runtime
from typing import TYPE_CHECKING, Any, Final, Self, final

import httpx
import msgspec
import trio

from runtime._base.errors import RemoteProtocolError
from runtime._http.errors import _translate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["HTTPResponse", "StreamingResponse"]
# Package-internal: _CLOSE_GRACE, _close_response, _read_error_body (runtime._http.transport).

_ERROR_BODY_LIMIT: Final = 256 * 1024  # bytes of an error body we read at most
_CLOSE_GRACE: Final = 5.0  # seconds a shielded response/client close may take
# Chunks _RawBody.aclose may discard before giving up: what h11 still buffers
# (at most one 64 KiB read) comes out before the first real await.
_DRAIN_LIMIT: Final = 4096
_JSON_DECODER: Final = msgspec.json.Decoder()


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
