"""The websocket event feed: a session registry and its runs' event logs, live, for dashboards.

With :mod:`actors._feed.connection` (one connection's actor), the only modules that
import ``trio_websocket``. :func:`serve_event_feed` listens
on TCP; :class:`EventFeed` holds the configuration and the shared counters and
serves each connection (:meth:`EventFeed.serve_stream` also serves a single
already-open stream, which is how tests drive it over memory streams). The
protocol is described, with example bytes, in ``docs/guides/websocket-feed.md``;
its sans-io part (commands, frame encoding, close codes, settings checks) is
:mod:`actors._feed.protocol`; this module (listener, limits, handshakes, statistics) and
:mod:`actors._feed.connection` (each connection's tasks and outbox, and the cost per
frame) do the trio and websocket I/O.

Connection life cycle::

    handshake ── Origin not in allowed_origins ─────────────► reject 403
        │     ── Authorization header with a wrong token ────► reject 401
        │     ── max_connections already open ───────────────► accept, close 1013
        ▼
    accepted ── no header token: the first frame must be
        │       {"type": "auth", "token": ...} within auth_timeout ─► else close 1008
        ▼
    ready (a ``feed.ready`` frame) ── commands, subscriptions, heartbeats ──►
    closed: by the client; 1001 on shutdown or idle timeout; 1003 binary frame;
            1007 malformed command; 1008 policy; 1009 frame too big (trio-websocket);
            1011 internal error.

Rules
-----

Rule 1 (tasks). Each connection is one task (:meth:`EventFeed.serve_stream`,
running a :class:`actors._feed.connection.Connection`) owning a nursery with a
reader (commands), a writer (the only task that sends frames), a watchdog (auth
deadline, idle timeout), a heartbeat (websocket pings) and one task per
subscription, each with its own cursor. Nothing outlives the connection.

Rule 2 (a slow client slows nothing else). A session's log never waits for a
cursor (EventLog Rule 2). A subscription task hands its frames to the
connection's bounded outbox without waiting. When the outbox is full, or when
the log dropped events the subscriber still needed (``Lagged``), the
subscription closes its cursor (so it pins nothing), waits until the outbox is
half empty, then sends one ``resync`` frame (the session's snapshot and the
seq it resumes after) and follows live from there. A stalled client costs its
own outbox (``send_buffer`` frames) and never the session or other clients.

Rule 3 (order). Within one subscription, frames follow log order and
``sequence`` increases by one per event; a ``resync`` frame's ``sequence`` is
the seq it resumes after, so a client that keeps "the last ``sequence`` seen"
can always reconnect with ``after=<that>`` and get neither a gap nor a
duplicate (unless the log no longer retains those events: then ``resync``).

Rule 4 (no secrets). Frames carry events, snapshots and feed metadata only.
The token is compared with ``hmac.compare_digest`` and never echoed, logged or
put in a repr. An error frame may quote a command's type or session id (the
client's own input, back to that client only), never an ``auth`` command.

Rule 5 (errors stay in their connection). An unexpected exception in a
connection closes that connection with 1011 and is logged; the server and the
other connections carry on.

Rule 6 (shutdown). Cancelling :func:`serve_event_feed` first closes every open
connection with 1001 and waits (at most ``close_timeout``) for the closing
handshakes, then stops listening.
"""

from __future__ import annotations

import functools
import hmac
import logging
from typing import TYPE_CHECKING, Any, Final, NoReturn, final

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_server_stream

from actors._feed.connection import Connection, GuardedNursery
from actors._feed.page import serve_dashboard_page
from actors._feed.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_DATA,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNSUPPORTED_DATA,
    DEFAULT_AUTH_TIMEOUT,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_SUBSCRIPTIONS,
    DEFAULT_SEND_BUFFER,
    Close,
    DashboardAddress,
    FeedStatistics,
    FrameCache,
    header_value,
    optional_seconds,
    positive_int,
    seconds,
)
from runtime._base.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from trio_websocket import WebSocketRequest

    from runtime._run.registry import SessionRegistry

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL_ERROR",
    "CLOSE_INVALID_DATA",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN_LATER",
    "CLOSE_UNSUPPORTED_DATA",
    "DashboardAddress",
    "EventFeed",
    "FeedStatistics",
    "serve_dashboard",
    "serve_event_feed",
]

_logger = logging.getLogger("actors.feed")

_SHUTDOWN: Final = Close(CLOSE_GOING_AWAY, "server shutting down")
# The same close, when the connection's task was cancelled from outside (its
# protocol reader is cancelled too, so nobody can read the client's reply).
_CANCELLED: Final = Close(CLOSE_GOING_AWAY, "server shutting down")
# How long a cancelled connection waits for its close frame to go out.
_CANCELLED_GRACE: Final = 0.1


# -- the server ----------------------------------------------------------------------


@final
class EventFeed:
    """The websocket feed of one session registry: configuration, counters, connections.

    Most users call :func:`serve_event_feed`, which builds one and listens on
    TCP. An ``EventFeed`` can also serve already-open byte streams with
    :meth:`serve_stream` (tests use memory streams).

    Args:
        registry: what to serve, e.g. a ``SessionPool``.
        token: the secret a client must present (``Authorization: Bearer`` in the
            handshake, or a first ``{"type": "auth", "token": ...}`` frame).
        allowed_origins: if given, a handshake whose ``Origin`` header is not in
            it is rejected with 403 (handshakes without ``Origin``, i.e. not from
            a browser, are allowed).
        max_connections: connections beyond this are closed with 1013.
        max_message_size: client messages longer than this (in characters) close
            the connection with 1009.
        max_subscriptions: session subscriptions per connection.
        heartbeat_interval: seconds between websocket pings; ``None``: no pings.
        idle_timeout: close (1001) a connection from which nothing (message or
            pong) arrived for this long; ``None``: never.
        auth_timeout: seconds to complete the handshake and authenticate.
        send_buffer: frames buffered per connection before its subscriptions
            resync (Rule 2).
        close_timeout: seconds to wait for a closing handshake.

    Raises:
        ConfigurationError: a bad argument.
    """

    def __init__(
        self,
        registry: SessionRegistry,
        *,
        token: str,
        allowed_origins: Iterable[str] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        auth_timeout: float = DEFAULT_AUTH_TIMEOUT,
        send_buffer: int = DEFAULT_SEND_BUFFER,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        if not isinstance(token, str) or not token:
            # Never show the value: it is (meant to be) a secret.
            raise ConfigurationError(
                f"token must be a non-empty string, got a {type(token).__name__!r}."
            )
        self._registry = registry
        self._token = token.encode()
        self._origins = None if allowed_origins is None else frozenset(allowed_origins)
        if self._origins is not None and not all(isinstance(o, str) for o in self._origins):
            raise ConfigurationError(
                f"allowed_origins must hold strings, got {sorted(map(repr, self._origins))!r}."
            )
        self._max_connections = positive_int("max_connections", max_connections)
        self._max_message_size = positive_int("max_message_size", max_message_size)
        self._max_subscriptions = positive_int("max_subscriptions", max_subscriptions)
        self._send_buffer = positive_int("send_buffer", send_buffer)
        if self._send_buffer < 2:
            raise ConfigurationError(f"send_buffer must be at least 2, got {send_buffer!r}.")
        self._heartbeat_interval = optional_seconds("heartbeat_interval", heartbeat_interval)
        self._idle_timeout = optional_seconds("idle_timeout", idle_timeout)
        self._auth_timeout = seconds("auth_timeout", auth_timeout)
        self._close_timeout = seconds("close_timeout", close_timeout)
        self._live: set[Connection] = set()
        self._caches: dict[str, FrameCache] = {}  # followed sessions' recent frames
        self._open = 0  # connections from handshake to the end of their close
        self._drained = trio.Event()
        self._drained.set()
        self._numbers = 0
        self._accepted = 0
        self._rejected = 0
        self._frames_sent = 0
        self._frames_dropped = 0
        self._resyncs = 0
        self._shutting_down = False
        self._port: int | None = None

    def __repr__(self) -> str:
        where = "not listening" if self._port is None else f"port={self._port!r}"
        return f"<EventFeed {where} connections={self._open!r}>"

    @property
    def port(self) -> int:
        """The TCP port :meth:`serve` listens on (the real one when asked for 0).

        Raises:
            RuntimeError: the feed is not listening.
        """
        if self._port is None:
            raise RuntimeError("The event feed is not listening on a port.")
        return self._port

    def statistics(self) -> FeedStatistics:
        """Counters of the feed (O(connections)). Not a checkpoint."""
        return FeedStatistics(
            connections=self._open,
            subscriptions=sum(conn.subscriptions for conn in self._live),
            accepted=self._accepted,
            rejected=self._rejected,
            frames_sent=self._frames_sent,
            frames_dropped=self._frames_dropped,
            resyncs=self._resyncs,
        )

    def _cache(self, session: str) -> FrameCache:
        cache = self._caches.get(session)
        if cache is None:
            cache = self._caches[session] = FrameCache(session)
        cache.users += 1
        return cache

    def _uncache(self, session: str) -> None:
        cache = self._caches[session]
        cache.users -= 1
        if not cache.users:
            del self._caches[session]

    def _token_ok(self, token: bytes) -> bool:
        return hmac.compare_digest(token, self._token)

    async def serve(
        self,
        host: str | None,
        port: int,
        *,
        task_status: trio.TaskStatus[EventFeed] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Listen on TCP and serve every connection until cancelled.

        Supports ``await nursery.start(feed.serve, host, port)``, which returns
        the feed once it listens (:attr:`port` is then the bound port). On
        cancellation every connection is closed with 1001 (waiting at most
        ``close_timeout`` for the closing handshakes), then the listener closes.
        """
        # The listener and the connections run in a shielded scope so that the
        # closing handshakes of Rule 6 can complete after we are cancelled.
        server_scope = trio.CancelScope(shield=True)
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(self._listen, host, port, server_scope)
            self._port = listeners[0].socket.getsockname()[1]
            task_status.started(self)
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await self._shut_down()
                server_scope.cancel()
                self._port = None

    async def _listen(
        self,
        host: str | None,
        port: int,
        server_scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with server_scope:
            await trio.serve_tcp(self.serve_stream, port, host=host, task_status=task_status)

    async def _shut_down(self) -> None:
        self._shutting_down = True
        for conn in list(self._live):
            conn.shut(_SHUTDOWN)
        with trio.move_on_after(self._close_timeout + 0.5):
            await self._drained.wait()

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one connection on an open byte stream, from handshake to close.

        Owns and closes ``stream``. Never raises for anything the client does
        (Rule 5); returns when the connection is over. A client that does not
        complete the websocket handshake within ``auth_timeout`` is dropped.
        """
        try:
            async with trio.open_nursery() as nursery:
                request: WebSocketRequest | None = None
                with trio.move_on_after(self._auth_timeout):
                    request = await wrap_server_stream(
                        GuardedNursery(nursery),  # type: ignore[arg-type]  # start_soon only
                        stream,
                        max_message_size=self._max_message_size,
                    )
                if request is not None:
                    await self.handle(request)
                # Let trio-websocket's reader flush what it still has to send (a
                # close frame of its own, for one), then stop it.
                nursery.cancel_scope.deadline = trio.current_time() + self._close_timeout
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(self._close_timeout):
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

    async def handle(self, request: WebSocketRequest) -> None:
        """Serve one websocket handshake request to the end of its connection.

        For a server of your own built on ``trio_websocket.serve_websocket``.
        Never raises for anything the client does (Rule 5). Prefer
        :meth:`serve_stream` (what :meth:`serve` uses): it also shields the
        connection from a trio-websocket reader failure (see ``GuardedNursery``)
        and lets the reader flush its last frames before the stream closes.
        """
        if self._open == 0:
            self._drained = trio.Event()
        self._open += 1
        try:
            await self._handle(request)
        except* Exception as group:
            _logger.error(
                "An event feed connection failed; it was closed with 1011.", exc_info=group
            )
        finally:
            self._open -= 1
            if self._open == 0:
                self._drained.set()

    async def _handle(self, request: WebSocketRequest) -> None:
        headers = request.headers
        origin = header_value(headers, b"origin")
        if (
            self._origins is not None
            and origin is not None
            and origin.decode("latin-1") not in self._origins
        ):
            await self._reject(request, 403)
            return
        authenticated = False
        authorization = header_value(headers, b"authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.strip().partition(b" ")
            if scheme.lower() != b"bearer" or not self._token_ok(credentials.strip()):
                await self._reject(request, 401, [(b"www-authenticate", b'Bearer realm="feed"')])
                return
            authenticated = True
        over_limit = self._open > self._max_connections or self._shutting_down
        try:
            ws = await request.accept()
        except ConnectionClosed:
            return
        if over_limit:
            self._rejected += 1
            await self._close(
                ws,
                _SHUTDOWN
                if self._shutting_down
                else Close(CLOSE_TRY_AGAIN_LATER, "too many connections"),
            )
            return
        self._accepted += 1
        self._numbers += 1
        conn = Connection(self, ws, self._numbers, authenticated=authenticated)
        self._live.add(conn)
        close: Close | None = _CANCELLED  # unless run() returns
        try:
            try:
                close = await conn.run()
            except Exception:
                close = Close(CLOSE_INTERNAL_ERROR, "internal error")
                raise
        finally:
            self._live.discard(conn)
            if close is not None:
                await self._close(ws, close)

    async def _reject(
        self,
        request: WebSocketRequest,
        status: int,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self._rejected += 1
        try:
            await request.reject(status, extra_headers=headers)
        except ConnectionClosed:
            pass

    async def _close(self, ws: WebSocketConnection, close: Close) -> None:
        """Send the error frame (if any), then close with ``close.code``; bounded.

        A connection cancelled from outside (``_CANCELLED``) closes in a shielded
        scope, but only waits ``_CANCELLED_GRACE`` for its close frame to go out:
        nobody is left to read the client's reply. Otherwise the closing handshake
        gets ``close_timeout`` and stays cancellable, so that a connection whose
        protocol layer failed does not wait for a reply that cannot come.
        """
        if ws.closed is not None:
            return
        cancelled = close is _CANCELLED
        grace = _CANCELLED_GRACE if cancelled else self._close_timeout
        with trio.CancelScope(shield=cancelled), trio.move_on_after(grace):
            try:
                if close.frame is not None:
                    await ws.send_message(close.frame)
                    self._frames_sent += 1
            except ConnectionClosed:
                return
            await ws.aclose(close.code, close.reason)


async def serve_event_feed(
    registry: SessionRegistry,
    host: str | None,
    port: int,
    *,
    token: str,
    allowed_origins: Iterable[str] | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS,
    heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    auth_timeout: float = DEFAULT_AUTH_TIMEOUT,
    send_buffer: int = DEFAULT_SEND_BUFFER,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    task_status: trio.TaskStatus[EventFeed] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve a session registry's live sessions and event logs over websockets.

    Runs until cancelled; start it with ``feed = await nursery.start(serve_event_feed,
    pool, "127.0.0.1", 0, token=...)`` and read the bound port from ``feed.port``.
    Each connection is a task of the server (Rule 1) with its own cursors; a slow
    client gets ``resync`` frames instead of slowing anything (Rule 2). On
    cancellation open connections are closed with 1001 first (Rule 6).

    Args:
        registry: what to serve, e.g. a ``SessionPool`` (any ``SessionRegistry``).
        host: the interface to bind (``None``: all).
        port: the TCP port (0: any free port).
        token, allowed_origins, max_connections, max_message_size, max_subscriptions,
        heartbeat_interval, idle_timeout, auth_timeout, send_buffer, close_timeout:
            see :class:`EventFeed`.

    Raises:
        ConfigurationError: a bad argument (before binding).
        OSError: the address cannot be bound.
    """
    feed = EventFeed(
        registry,
        token=token,
        allowed_origins=allowed_origins,
        max_connections=max_connections,
        max_message_size=max_message_size,
        max_subscriptions=max_subscriptions,
        heartbeat_interval=heartbeat_interval,
        idle_timeout=idle_timeout,
        auth_timeout=auth_timeout,
        send_buffer=send_buffer,
        close_timeout=close_timeout,
    )
    await feed.serve(host, port, task_status=task_status)


async def serve_dashboard(
    registry: SessionRegistry,
    host: str,
    port: int,
    *,
    token: str,
    feed_port: int = 0,
    task_status: trio.TaskStatus[DashboardAddress] = trio.TASK_STATUS_IGNORED,
    **feed_options: Any,
) -> NoReturn:
    """Serve the dashboard page (plain HTTP on ``port``) and its feed (on ``feed_port``).

    The page takes the token from its URL fragment (``#token=...``, never sent to
    the HTTP server) and reads the feed's port from ``/config.json``. Runs until
    cancelled; ``await nursery.start(serve_dashboard, pool, "127.0.0.1", 0,
    token=...)`` returns a :class:`DashboardAddress`.

    Args:
        registry: what to serve, e.g. a ``SessionPool``.
        host: the interface both servers bind.
        port: the page's port (0: any free port).
        token: the feed's token.
        feed_port: the feed's port (0: any free port).
        **feed_options: more :class:`EventFeed` arguments.

    Raises:
        ConfigurationError: a bad argument.
        OSError: an address cannot be bound.
    """
    feed = EventFeed(registry, token=token, **feed_options)
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.serve, host, feed_port)
        http_port: int = await nursery.start(
            functools.partial(serve_dashboard_page, host, port, feed_port=feed.port)
        )
        shown = f"[{host}]" if ":" in host else host
        task_status.started(
            DashboardAddress(
                host=host,
                http_port=http_port,
                feed_port=feed.port,
                url=f"http://{shown}:{http_port}/",
            )
        )
        await trio.sleep_forever()
