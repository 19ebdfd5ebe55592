"""One pooled HTTP/1.1 connection of ``H11Transport`` and the response body read from it.

:class:`_Connection` wraps a trio stream and its raw socket (so the pool can
close it synchronously); :class:`_Body` reads a response body from it in bulk
(``receive_some(READ_SIZE)``), undoes its framing (``chunked``,
``Content-Length`` or until close) and hands the connection back to the pool
when the body ends, reusable only if it ended cleanly.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING, Final, final

import httpx
import trio

from runtime._http.chunked import _ChunkedDecoder

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime._http.h11 import H11Transport

__all__ = ["READ_SIZE", "Origin"]
# Package-internal: _Connection, _Body and the framings _CHUNKED, _LENGTH, _UNTIL_CLOSE
# (runtime._http.h11).

READ_SIZE: Final = 65536
"""Bytes asked of the socket per read (what one body chunk can grow to)."""

Origin = tuple[bytes, bytes, int]


@final
class _Connection:
    """One pooled socket: its stream, the raw socket (for sync close), its origin."""

    __slots__ = ("idle_since", "origin", "sock", "stream")

    def __init__(
        self, stream: trio.abc.Stream, sock: trio.socket.SocketType, origin: Origin
    ) -> None:
        self.stream = stream
        self.sock = sock
        self.origin = origin
        self.idle_since = 0.0

    def close(self) -> None:
        # Synchronous and I/O-free (no TLS close_notify): a task blocked on the
        # socket gets trio.ClosedResourceError.
        self.sock.close()

    def looks_dead(self) -> bool:
        """Whether an idle connection was closed by the server (or got stray bytes)."""
        fd = self.sock.fileno()
        if fd < 0:
            return True
        try:
            if hasattr(select, "poll"):  # select() cannot watch descriptors >= 1024
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                return bool(poller.poll(0))
            readable, _, _ = select.select([fd], [], [], 0)  # pragma: no cover - Windows
        except (OSError, ValueError):  # pragma: no cover - a descriptor closed under us
            return True
        return bool(readable)  # pragma: no cover - Windows


# --------------------------------------------------------------------------- the body


_CHUNKED: Final = 1
_LENGTH: Final = 2
_UNTIL_CLOSE: Final = 3


@final
class _Body(httpx.AsyncByteStream):
    """A response body read in bulk from its connection (see the module docstring)."""

    __slots__ = (
        "_aborted",
        "_chunked",
        "_conn",
        "_finished",
        "_framing",
        "_keep_alive",
        "_left",
        "_pending",
        "_read_timeout",
        "_request",
        "_transport",
    )

    def __init__(
        self,
        transport: H11Transport,
        conn: _Connection,
        request: httpx.Request,
        framing: int,
        length: int,
        pending: bytes,
        read_timeout: float | None,
        keep_alive: bool,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._request = request
        self._framing = framing
        self._left = length  # _LENGTH: body bytes still to come
        self._chunked = _ChunkedDecoder() if framing == _CHUNKED else None
        self._pending = pending  # bytes read past the head, not yet decoded
        self._read_timeout = read_timeout
        self._keep_alive = keep_alive
        self._finished = False
        self._aborted = False
        if framing == _LENGTH and length == 0:
            self._finish(pending)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._finished:
                if self._aborted:
                    raise httpx.ReadError(
                        "The response body was closed before it was complete.",
                        request=self._request,
                    )
                raise StopAsyncIteration
            data = self._pending
            if data:
                self._pending = b""
            else:
                data = await self._read()
            out = self._decode(data)
            if out:
                return out

    async def _read(self) -> bytes:
        conn = self._conn
        assert conn is not None
        timeout = self._read_timeout
        data = None
        try:
            if timeout is None:
                data = await conn.stream.receive_some(READ_SIZE)
            else:
                with trio.move_on_after(timeout):
                    data = await conn.stream.receive_some(READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._abort()
            raise httpx.ReadError(
                f"The connection failed while reading the response body: {exc!r}.",
                request=self._request,
            ) from exc
        except BaseException:  # Cancelled, KeyboardInterrupt: the body is unusable now
            self._abort()
            raise
        if data is None:
            self._abort()
            raise httpx.ReadTimeout(
                "Timed out while reading the response body.", request=self._request
            )
        if not data:
            if self._framing == _UNTIL_CLOSE:
                self._keep_alive = False
                self._finish(b"")
                return b""
            self._abort()
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body: "
                + ("incomplete chunked read" if self._framing == _CHUNKED else "incomplete read"),
                request=self._request,
            )
        return bytes(data)

    def _decode(self, data: bytes) -> bytes:
        chunked = self._chunked
        if chunked is not None:
            try:
                out = chunked.feed(data)
            except httpx.RemoteProtocolError as exc:
                self._abort()
                exc.request = self._request
                raise
            if chunked.done:
                self._finish(chunked.extra)
            return out
        if self._framing == _LENGTH:
            left = self._left
            if len(data) >= left:
                out = data[:left] if len(data) > left else data
                self._left = 0
                self._finish(data[left:])
                return out
            self._left = left - len(data)
        return data

    def _finish(self, extra: bytes) -> None:
        """The body is complete: return the connection (reusable or not)."""
        self._finished = True
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._transport._release(conn, reusable=self._keep_alive and not extra)

    def _abort(self) -> None:
        """The body is broken or abandoned: discard the connection."""
        self._finished = True
        self._aborted = True
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._transport._release(conn, reusable=False)

    async def aclose(self) -> None:
        """Stop reading: a body not read to its end discards its connection."""
        if not self._finished:
            self._abort()
        await trio.lowlevel.checkpoint()
