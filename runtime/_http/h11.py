"""An ``httpx.AsyncBaseTransport`` for HTTP/1.1 on trio streams, built for streamed bodies.

Its one job: carry httpx requests over pooled trio TCP (or TLS) connections and
hand back response bodies in as few, as large chunks as the socket allows.

Why it exists: httpx's default transport (httpcore) feeds every HTTP chunk of a
``Transfer-Encoding: chunked`` body through h11's event machinery and up a chain
of async generators, about 17 µs per chunk on a small machine. A server that
flushes every token sends one HTTP chunk per SSE event, so that per-chunk cost
caps a stream at ~50k events/s whatever the decoder above it does. Here the
body is read in bulk (``receive_some(READ_SIZE)``) and a C-speed chunked decoder
(``bytes.find`` plus one regex match per chunk) joins every chunk payload found
in one read into one ``bytes``: the cost per HTTP chunk falls below a
microsecond and the SSE decoder above sees large chunks.

Division of labour with h11: h11 writes the request (head and body framing) and
parses the response head, including its validation of framing headers. Once
the head is parsed, the bytes h11 buffered past it (``trailing_data``) and all
later reads go to this module's body reader, and that h11 connection object is
dropped (a new one is made for the next request on the same socket). Body
framing follows RFC 9112 §6.3 for a response: no body for ``HEAD``, 1xx, 204
and 304; ``chunked``; ``Content-Length``; otherwise read until the server
closes (and never reuse that connection).

Rules this module keeps:

1. **httpx's exceptions, httpx's semantics.** Every failure is raised as the
   httpx exception httpcore would raise (``ConnectError``, ``ConnectTimeout``,
   ``ReadError``, ``ReadTimeout``, ``WriteError``, ``WriteTimeout``,
   ``PoolTimeout``, ``RemoteProtocolError``, ``LocalProtocolError``,
   ``UnsupportedProtocol``) with ``request`` set, so ``runtime._http.transport``'s
   one mapping boundary and retry rules work unchanged. ``httpx.Timeout``'s
   four phases are honoured from ``request.extensions["timeout"]``: ``connect``
   (TCP plus TLS handshake), ``read`` and ``write`` (each wait for the socket),
   ``pool`` (waiting for a free connection); ``None`` means no limit.
2. **Pool accounting is synchronous.** Taking, returning and discarding a
   connection never awaits (discarding closes the socket at once, without a TLS
   close_notify), so a cancelled task can never leave a slot or a connection
   counted wrongly. ``httpx.Limits`` are honoured: at most ``max_connections``
   open or opening, at most ``max_keepalive_connections`` idle, idle ones
   closed after ``keepalive_expiry`` seconds (checked lazily, on trio's clock).
   Waiting requests are served first come, first served: a returned connection
   is handed straight to the oldest waiter (or closed to give it a slot when
   the waiter wants another origin).
3. **A connection is reused only when its last exchange ended cleanly:** the
   body was read to its exact end, both sides speak HTTP/1.1 without
   ``Connection: close``, and nothing followed the body. A body closed early,
   a cancelled or failed read, or a read timeout discards the connection. An
   idle connection the server has closed (or sent stray bytes on) is detected
   by a zero-timeout readability check before reuse and replaced.
4. **A body never ends silently short.** End of input before the framing says
   the body is complete is ``httpx.RemoteProtocolError``; a read after the body
   was aborted is ``httpx.ReadError``.

Out of scope: HTTP proxies (a client's env-configured proxies still go through
httpx's own proxy transports, which httpx mounts in front of this one),
HTTP/2, ``Expect: 100-continue`` and protocol upgrades (a ``101`` answer is a
``RemoteProtocolError``).
"""

from __future__ import annotations

import collections
import ssl
from typing import TYPE_CHECKING, Any, Final, Self, final

import h11
import httpx
import msgspec
import trio

from runtime._base.errors import ConfigurationError
from runtime._http.connection import (
    _CHUNKED,
    _LENGTH,
    _UNTIL_CLOSE,
    READ_SIZE,
    Origin,
    _Body,
    _Connection,
)

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["H11Transport", "H11TransportStatistics"]

_WRITE_BUFFER: Final = 65536  # request bytes gathered before one send_all
_NO_BODY_STATUS: Final = frozenset({204, 304})
_DEFAULT_PORTS: Final = {b"http": 80, b"https": 443}


class H11TransportStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of an :class:`H11Transport`'s pool (see :meth:`H11Transport.statistics`).

    Attributes:
        connections: connections open or being opened (in use plus idle).
        idle: connections kept alive, waiting for a request.
        in_use: connections carrying a request or a response body.
        waiting: requests waiting for a free connection.
        opened: connections opened since the transport was created.
    """

    connections: int
    idle: int
    in_use: int
    waiting: int
    opened: int


# --------------------------------------------------------------------------- waiters


_CLOSED: Final = object()  # what a waiter gets when the transport closes


@final
class _Waiter:
    __slots__ = ("done", "event", "origin", "result")

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.event = trio.Event()
        self.done = False
        # A connection, None (a slot: open a new connection) or _CLOSED.
        self.result: object = None

    def give(self, result: object) -> None:
        self.done = True
        self.result = result
        self.event.set()


# --------------------------------------------------------------------------- the transport


def _origin(url: httpx.URL) -> Origin:
    scheme = url.raw_scheme
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(scheme, 0)
    return scheme, url.raw_host, port


def _has_close(headers: Any) -> bool:
    """Whether a ``Connection`` header lists ``close`` (names may be any case)."""
    for name, value in headers:
        if name.lower() == b"connection" and b"close" in [
            token.strip() for token in value.lower().split(b",")
        ]:
            return True
    return False


@final
class H11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over pooled trio connections, with bulk body reads.

    Plug it into httpx like any transport: ``httpx.AsyncClient(transport=
    H11Transport(limits=...))``. Timeouts come from the client's
    ``httpx.Timeout`` as usual; limits are given here (a client ignores its own
    ``limits=`` when a transport is passed). ``runtime.ApiTransport`` uses it
    by default.

    Each response body's chunks are whatever one socket read carried, decoded:
    a fast server's many small HTTP chunks come out as one large ``bytes``.

    Args:
        limits: the pool's limits (``httpx.Limits()`` by default).
        ssl_context: the TLS configuration for ``https`` origins; by default
            ``httpx.create_ssl_context()`` (certifi roots, verification on),
            built on the first ``https`` request.

    Raises:
        ConfigurationError: ``limits`` is not an ``httpx.Limits`` or
            ``ssl_context`` not an ``ssl.SSLContext``.
    """

    def __init__(
        self, *, limits: httpx.Limits | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        limits = httpx.Limits() if limits is None else limits
        if not isinstance(limits, httpx.Limits):
            raise ConfigurationError(f"limits must be an httpx.Limits, not {limits!r}.")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ConfigurationError(f"ssl_context must be an ssl.SSLContext, not {ssl_context!r}.")
        inf = float("inf")
        self._max_connections = (
            inf if limits.max_connections is None else max(1, limits.max_connections)
        )
        self._max_idle = (
            inf if limits.max_keepalive_connections is None else limits.max_keepalive_connections
        )
        self._expiry = inf if limits.keepalive_expiry is None else limits.keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._total = 0  # connections open or opening: the slots taken
        self._in_use: set[_Connection] = set()
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._opened = 0
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"connections={self._total}"
        return f"<H11Transport {state}>"

    def statistics(self) -> H11TransportStatistics:
        """Return a snapshot of the pool; not a checkpoint."""
        return H11TransportStatistics(
            connections=self._total,
            idle=self._idle_count,
            in_use=len(self._in_use),
            waiting=len(self._waiters),
            opened=self._opened,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection, idle or in use; idempotent; a checkpoint.

        Bodies still being read fail with ``httpx.ReadError``; requests waiting
        for a connection, and later requests, get ``trio.ClosedResourceError``.
        """
        if not self._closed:
            self._closed = True
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
            self._idle.clear()
            self._idle_count = 0
            for conn in self._in_use:
                conn.close()
            while self._waiters:
                self._waiters.popleft().give(_CLOSED)
        await trio.lowlevel.checkpoint()

    # -- one exchange ------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return its response with the body still unread.

        A checkpoint. Cancellation while sending or reading the head discards
        the connection; nothing stays counted.
        """
        scheme = request.url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(
                f"H11Transport speaks http and https, not {scheme.decode('ascii', 'replace')!r}.",
                request=request,
            )
        timeouts = request.extensions.get("timeout") or {}
        origin = _origin(request.url)
        conn = await self._acquire(origin, timeouts.get("pool"), request)
        if conn is None:
            try:
                conn = await self._connect(origin, timeouts.get("connect"), request)
            except BaseException:
                self._release_slot()
                raise
        self._in_use.add(conn)
        try:
            return await self._exchange(conn, request, timeouts)
        except BaseException:
            self._release(conn, reusable=False)
            raise

    async def _exchange(
        self, conn: _Connection, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        h11_conn = h11.Connection(h11.CLIENT)
        try:
            await self._send_request(conn, h11_conn, request, timeouts.get("write"))
        except httpx.WriteError:
            # A server may answer (413, 401...) and close before reading the
            # whole body: read its answer if there is one, like httpcore.
            pass
        read_timeout = timeouts.get("read")
        received = False
        while True:
            try:
                event = h11_conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc), request=request) from exc
            if event is h11.NEED_DATA:
                data = await self._receive(conn, read_timeout, request)
                if not data and not received:
                    raise httpx.RemoteProtocolError(
                        "Server disconnected without sending a response.", request=request
                    )
                received = True
                h11_conn.receive_data(data)
                continue
            if type(event) is h11.InformationalResponse:
                if event.status_code == 101:
                    raise httpx.RemoteProtocolError(
                        "The server switched protocols (101), which H11Transport does not do.",
                        request=request,
                    )
                continue
            if type(event) is h11.Response:
                break
            raise httpx.RemoteProtocolError(  # pragma: no cover - h11 yields nothing else here
                f"Unexpected event {event!r} before the response head.", request=request
            )

        pending, _ = h11_conn.trailing_data
        status = event.status_code
        headers = event.headers.raw_items()
        keep_alive = (
            event.http_version == b"1.1"
            and not _has_close(headers)
            and not _has_close(request.headers.raw)
            and h11_conn.our_state is h11.DONE
        )
        framing = _LENGTH
        length = 0
        if request.method != "HEAD" and status not in _NO_BODY_STATUS:
            # h11 has validated both: Transfer-Encoding can only be "chunked",
            # Content-Length only one decimal number.
            fields = dict(event.headers)
            content_length = fields.get(b"content-length")
            if b"transfer-encoding" in fields:
                framing = _CHUNKED
            elif content_length is not None:
                length = int(content_length)
            else:
                framing = _UNTIL_CLOSE
                keep_alive = False
        body = _Body(self, conn, request, framing, length, pending, read_timeout, keep_alive)
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason},
        )

    async def _send_request(
        self,
        conn: _Connection,
        h11_conn: h11.Connection,
        request: httpx.Request,
        write_timeout: float | None,
    ) -> None:
        try:
            out = bytearray(
                h11_conn.send(
                    h11.Request(
                        method=request.method,
                        target=request.url.raw_path,
                        headers=request.headers.raw,
                    )
                )
                or b""
            )
            stream = request.stream
            if not isinstance(stream, httpx.AsyncByteStream):
                raise RuntimeError("H11Transport needs an async request body.")
            parts = aiter(stream)
            try:
                async for part in parts:
                    if part:
                        out += h11_conn.send(h11.Data(data=part)) or b""
                        if len(out) >= _WRITE_BUFFER:
                            await self._send(conn, bytes(out), write_timeout, request)
                            out.clear()
            finally:
                # Close a body generator that a failed send left suspended
                # (httpx's own ByteStream is one), or trio's GC hook reports it.
                aclose = getattr(parts, "aclose", None)
                if aclose is not None:
                    await aclose()
            out += h11_conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        await self._send(conn, bytes(out), write_timeout, request)

    @staticmethod
    async def _send(
        conn: _Connection, data: bytes, limit: float | None, request: httpx.Request
    ) -> None:
        try:
            with trio.move_on_after(float("inf") if limit is None else limit) as cancel_scope:
                await conn.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.WriteError(
                f"The connection failed while sending the request: {exc!r}.", request=request
            ) from exc
        if cancel_scope.cancelled_caught:
            raise httpx.WriteTimeout("Timed out while sending the request.", request=request)

    @staticmethod
    async def _receive(conn: _Connection, limit: float | None, request: httpx.Request) -> bytes:
        try:
            with trio.move_on_after(float("inf") if limit is None else limit):
                return bytes(await conn.stream.receive_some(READ_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise httpx.ReadError(
                f"The connection failed while reading the response: {exc!r}.", request=request
            ) from exc
        raise httpx.ReadTimeout("Timed out while waiting for the response.", request=request)

    async def _connect(
        self, origin: Origin, limit: float | None, request: httpx.Request
    ) -> _Connection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        with trio.move_on_after(float("inf") if limit is None else limit) as cancel_scope:
            try:
                tcp = await trio.open_tcp_stream(hostname, port)
            except OSError as exc:
                raise httpx.ConnectError(
                    f"Could not connect to {hostname}:{port}: {exc}", request=request
                ) from exc
            stream: trio.abc.Stream = tcp
            if scheme == b"https":
                ssl_stream = trio.SSLStream(
                    tcp, self._get_ssl_context(), server_hostname=hostname, https_compatible=True
                )
                try:
                    await ssl_stream.do_handshake()
                except trio.BrokenResourceError as exc:
                    tcp.socket.close()
                    raise httpx.ConnectError(
                        f"TLS handshake with {hostname}:{port} failed: {exc.__cause__ or exc}",
                        request=request,
                    ) from exc
                except BaseException:
                    tcp.socket.close()
                    raise
                stream = ssl_stream
        if cancel_scope.cancelled_caught:
            raise httpx.ConnectTimeout(
                f"Timed out connecting to {hostname}:{port}.", request=request
            )
        if self._closed:
            tcp.socket.close()
            raise trio.ClosedResourceError("This H11Transport is closed.")
        self._opened += 1
        return _Connection(stream, tcp.socket, origin)

    def _get_ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            context = httpx.create_ssl_context()
            context.set_alpn_protocols(["http/1.1"])
            self._ssl_context = context
        return self._ssl_context

    # -- the pool (all synchronous but _acquire's wait) -------------------------------------

    async def _acquire(
        self, origin: Origin, limit: float | None, request: httpx.Request
    ) -> _Connection | None:
        """An idle connection to ``origin``, or ``None`` with a slot reserved to open one."""
        if self._closed:
            raise trio.ClosedResourceError("This H11Transport is closed.")
        conn = self._take_idle(origin)
        if conn is not None:
            return conn
        if self._total < self._max_connections or self._evict_idle():
            self._total += 1
            return None
        waiter = _Waiter(origin)
        self._waiters.append(waiter)
        try:
            with trio.move_on_after(float("inf") if limit is None else limit):
                await waiter.event.wait()
        except BaseException:
            if waiter.done:
                self._give_back(waiter.result)
            else:
                self._waiters.remove(waiter)
            raise
        if not waiter.done:
            self._waiters.remove(waiter)
            raise httpx.PoolTimeout("Timed out waiting for a free connection.", request=request)
        result = waiter.result
        if result is _CLOSED:
            raise trio.ClosedResourceError("This H11Transport is closed.")
        return result  # type: ignore[return-value]

    def _take_idle(self, origin: Origin) -> _Connection | None:
        conns = self._idle.get(origin)
        if not conns:
            return None
        deadline = trio.current_time() - self._expiry
        while conns:
            conn = conns.pop()  # the most recently used is the least likely to be stale
            self._idle_count -= 1
            if conn.idle_since >= deadline and not conn.looks_dead():
                return conn
            conn.close()
            self._total -= 1
        return None

    def _evict_idle(self) -> bool:
        """Close the oldest idle connection (of any origin) to free its slot."""
        oldest: list[_Connection] | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest[0].idle_since):
                oldest = conns
        if oldest is None:
            return False
        oldest.pop(0).close()
        self._idle_count -= 1
        self._total -= 1
        return True

    def _give_back(self, result: object) -> None:
        # A waiter was served but its task was cancelled before it could use it.
        if isinstance(result, _Connection):
            self._in_use.add(result)  # _release takes back only what is in use
            self._release(result, reusable=True)
        elif result is None:
            self._release_slot()

    def _release_slot(self) -> None:
        """A reserved slot is not needed (its connection failed or was closed)."""
        if self._waiters:
            self._waiters.popleft().give(None)
        else:
            self._total -= 1

    def _release(self, conn: _Connection, *, reusable: bool) -> None:
        """Take a connection back from a finished (or failed) exchange; idempotent."""
        if conn not in self._in_use:
            return
        self._in_use.remove(conn)
        if self._closed or not reusable:
            conn.close()
            self._release_slot()
        elif self._waiters:
            waiter = self._waiters.popleft()
            if waiter.origin == conn.origin:
                waiter.give(conn)
            else:
                conn.close()
                waiter.give(None)
        elif self._idle_count < self._max_idle:
            conn.idle_since = trio.current_time()
            self._idle.setdefault(conn.origin, []).append(conn)
            self._idle_count += 1
        else:
            conn.close()
            self._total -= 1
