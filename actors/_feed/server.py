"""The websocket event feed: a session registry and its runs' event logs, live, for dashboards.

:func:`serve_event_feed` listens on TCP; :class:`EventFeed` holds the
configuration, the credentials, the limits and the shared counters, and serves
each connection (:meth:`EventFeed.serve_stream` also serves a single
already-open stream, which is how tests drive it over memory streams). The
protocol is described, with example bytes, in ``docs/guides/websocket-feed.md``;
its sans-io part is :mod:`actors._feed.protocol`, the websocket layer
:mod:`actors._feed.websocket`, one connection :mod:`actors._feed.connection`.

Connection life cycle::

    TCP accepted ── more than max_connections handshakes in progress ──► dropped
        ▼
    handshake ── not a websocket upgrade ────────────────────► 400
        │     ── Origin not in allowed_origins ──────────────► 403
        │     ── Authorization header with a wrong token ────► 401
        │     ── header token, max_connections authenticated ► accept, close 1013
        │     ── no token, max_unauthenticated waiting ──────► accept, close 1013
        ▼
    accepted ── no header token: the first frame must be
        │       {"type": "auth", "token": ...} within auth_timeout ─► else 1008
        ▼
    ready (a ``feed.ready`` frame) ── commands, subscriptions, heartbeats ──►
    closed: by the client; 1001 shutdown or idle timeout; 1003 binary message;
            1007 malformed command or invalid UTF-8; 1008 policy; 1009 message
            too big; 1011 internal error. Every close sends a close frame.

Rules
-----

Rule 1 (tasks). Each connection is one task (:meth:`EventFeed.serve_stream`):
its writer, with a reader, a watchdog and a heartbeat in its nursery. The
session watches (``actors._feed.connection`` Rule 2) run in the feed's own
nursery while :meth:`EventFeed.serve` runs. Nothing outlives the feed.

Rule 2 (budgets). Connections that have not authenticated yet have their own
small budget (``max_unauthenticated``), apart from the authenticated ones
(``max_connections``): a crowd of clients without a token can never lock out
one with a token (issue 15).

Rule 3 (errors stay in their connection). An unexpected exception in a
connection closes that connection with 1011 and is logged; the server and the
other connections carry on.

Rule 4 (shutdown). Cancelling :func:`serve_event_feed` first closes every open
connection with 1001 and waits (bounded by ``close_timeout``) for the closing
handshakes, then stops listening.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any, Final, NoReturn, final

import trio

from actors._feed.connection import FeedConnection
from actors._feed.listen import open_listeners
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
    DEFAULT_MAX_UNAUTHENTICATED,
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
from actors._feed.subscriptions import Watches
from actors._feed.tokens import check_token, make_read_token
from actors._feed.websocket import ConnectionBroken, HandshakeFailed, ServerWebSocket
from runtime._base.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from actors._feed.tokens import Grant
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
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})


@final
class EventFeed:
    """The websocket feed of one session registry: configuration, counters, connections.

    Most users call :func:`serve_event_feed`, which builds one and listens on
    TCP. An ``EventFeed`` can also serve already-open byte streams with
    :meth:`serve_stream` (tests use memory streams).

    Args:
        registry: what to serve, e.g. a ``SessionPool``.
        token: the secret a client must present (``Authorization: Bearer`` in the
            handshake, or a first ``{"type": "auth", "token": ...}`` frame); it
            also signs read tokens (:meth:`read_token`).
        allowed_origins: if given, a handshake whose ``Origin`` header is not in
            it is rejected with 403 (handshakes without ``Origin``, i.e. not from
            a browser, are allowed).
        max_connections: authenticated connections; beyond, closed with 1013.
        max_unauthenticated: connections waiting for their ``auth`` frame;
            beyond, closed with 1013 (a separate budget: Rule 2).
        max_message_size: client messages longer than this (in characters) close
            the connection with 1009.
        max_subscriptions: session subscriptions per connection.
        heartbeat_interval: seconds between websocket pings; ``None``: no pings.
        idle_timeout: close (1001) a connection from which nothing (message or
            pong) arrived for this long; ``None``: never.
        auth_timeout: seconds to complete the handshake and authenticate.
        send_buffer: the most events one subscription reads from its log for
            one write (replay and live alike are paced by the socket).
        close_timeout: seconds to wait for a closing handshake.
        compression: accept permessage-deflate when a client offers it.

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
        max_unauthenticated: int = DEFAULT_MAX_UNAUTHENTICATED,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_subscriptions: int = DEFAULT_MAX_SUBSCRIPTIONS,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        auth_timeout: float = DEFAULT_AUTH_TIMEOUT,
        send_buffer: int = DEFAULT_SEND_BUFFER,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        compression: bool = True,
    ) -> None:
        if not isinstance(token, str) or not token:
            # Never show the value: it is (meant to be) a secret.
            raise ConfigurationError(
                f"token must be a non-empty string, got a {type(token).__name__!r}."
            )
        self.registry = registry
        self.secret = token.encode("utf-8", "surrogatepass")
        self._origins: frozenset[str] | None = None
        if allowed_origins is not None:
            self.allow_origins(allowed_origins)
        self.max_connections = positive_int("max_connections", max_connections)
        self.max_unauthenticated = positive_int("max_unauthenticated", max_unauthenticated)
        self.max_message_size = positive_int("max_message_size", max_message_size)
        self.max_subscriptions = positive_int("max_subscriptions", max_subscriptions)
        self.send_buffer = positive_int("send_buffer", send_buffer)
        if self.send_buffer < 2:
            raise ConfigurationError(f"send_buffer must be at least 2, got {send_buffer!r}.")
        self.heartbeat_interval = optional_seconds("heartbeat_interval", heartbeat_interval)
        self.idle_timeout = optional_seconds("idle_timeout", idle_timeout)
        self.auth_timeout = seconds("auth_timeout", auth_timeout)
        self.close_timeout = seconds("close_timeout", close_timeout)
        if not isinstance(compression, bool):
            raise ConfigurationError(f"compression must be a bool, got {compression!r}.")
        self.compression = compression
        self.shared_watches: Watches | None = None
        self._live: set[FeedConnection] = set()
        self._caches: dict[str, FrameCache] = {}
        self._open = 0  # connections from TCP accept to the end of their close
        self._handshakes = 0
        self._waiting_auth = 0
        self._authed = 0
        self._drained = trio.Event()
        self._drained.set()
        self._numbers = 0
        self._accepted = 0
        self._rejected = 0
        self._frames_sent = 0
        self._messages_sent = 0
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

    def allow_origins(self, origins: Iterable[str]) -> None:
        """Replace the browser ``Origin``s allowed to connect.

        Raises:
            ConfigurationError: ``origins`` holds something else than strings.
        """
        allowed = frozenset(origins)
        if not all(isinstance(o, str) for o in allowed):
            raise ConfigurationError(
                f"allowed_origins must hold strings, got {sorted(map(repr, allowed))!r}."
            )
        self._origins = allowed

    def read_token(self, session: str, ttl: float = 3600.0) -> str:
        """A token that may follow ``session`` only, for ``ttl`` seconds.

        Signed with this feed's token (HMAC-SHA256): give it to a dashboard
        that should see one session. Not a checkpoint.

        Raises:
            ConfigurationError: ``session`` is empty or ``ttl`` not a positive number.
        """
        ttl = seconds("ttl", ttl)
        return make_read_token(self.secret, session, time.time() + ttl)

    def statistics(self) -> FeedStatistics:
        """Counters of the feed (O(connections)). Not a checkpoint."""
        return FeedStatistics(
            connections=self._open,
            unauthenticated=self._handshakes + self._waiting_auth,
            subscriptions=sum(conn.subscriptions for conn in self._live),
            accepted=self._accepted,
            rejected=self._rejected,
            frames_sent=self._frames_sent,
            messages_sent=self._messages_sent,
            frames_dropped=0,
            resyncs=self._resyncs,
        )

    # -- for connections ------------------------------------------------------------

    def cache(self, session: str) -> FrameCache:
        cache = self._caches.get(session)
        if cache is None:
            cache = self._caches[session] = FrameCache(session)
        cache.users += 1
        return cache

    def uncache(self, session: str) -> None:
        cache = self._caches[session]
        cache.users -= 1
        if not cache.users:
            del self._caches[session]

    def count_sent(self, frames: int, messages: int) -> None:
        self._frames_sent += frames
        self._messages_sent += messages

    def count_resync(self) -> None:
        self._resyncs += 1

    def promote(self, conn: FeedConnection) -> bool:
        """Move a connection that authenticated by frame into the authenticated budget."""
        del conn
        if self._authed >= self.max_connections:
            return False
        self._waiting_auth -= 1
        self._authed += 1
        return True

    # -- serving --------------------------------------------------------------------

    async def serve(
        self,
        host: str | None,
        port: int,
        *,
        reuse_port: bool = False,
        task_status: trio.TaskStatus[EventFeed] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Listen on TCP and serve every connection until cancelled.

        Supports ``await nursery.start(feed.serve, host, port)``, which returns
        the feed once it listens (:attr:`port` is then the bound port). On
        cancellation every connection is closed with 1001 (Rule 4), then the
        listener closes. With ``reuse_port=True`` the socket is bound with
        ``SO_REUSEPORT``: other processes may listen on the same port, and the
        kernel spreads new connections over them (``actors._feed.listen``).

        Raises:
            ConfigurationError: ``reuse_port`` on a platform without ``SO_REUSEPORT``.
            OSError: the address cannot be bound.
        """
        listeners = await open_listeners(host, port, reuse_port=reuse_port)
        # The listener and the connections run in a shielded scope so that the
        # closing handshakes of Rule 4 can complete after we are cancelled.
        server_scope = trio.CancelScope(shield=True)
        async with trio.open_nursery() as nursery:
            self.shared_watches = Watches(nursery)
            nursery.start_soon(self._listen, listeners, server_scope)
            self._port = listeners[0].socket.getsockname()[1]
            task_status.started(self)
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True):
                    await self._shut_down()
                server_scope.cancel()
                nursery.cancel_scope.cancel()
                self._port = None

    async def _listen(
        self, listeners: list[trio.SocketListener], server_scope: trio.CancelScope
    ) -> None:
        with server_scope:
            await trio.serve_listeners(self.serve_stream, listeners)

    async def _shut_down(self) -> None:
        self._shutting_down = True
        for conn in list(self._live):
            conn.shut(_SHUTDOWN)
        with trio.move_on_after(2 * self.close_timeout + 0.5):
            await self._drained.wait()

    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one connection on an open byte stream, from handshake to close.

        Owns and closes ``stream``. Never raises for anything the client does
        (Rule 3); returns when the connection is over.
        """
        if self._open == 0:
            self._drained = trio.Event()
        self._open += 1
        try:
            await self._serve(stream)
        except Exception:
            _logger.exception("An event feed connection failed; it was closed with 1011.")
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(self.close_timeout):
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            self._open -= 1
            if self._open == 0:
                self._drained.set()

    async def _serve(self, stream: trio.abc.Stream) -> None:
        if self._handshakes >= self.max_connections:
            self._rejected += 1
            return  # a flood of handshakes: drop the newest (each is bounded by auth_timeout)
        ws = ServerWebSocket(stream, self.max_message_size)
        self._handshakes += 1
        accepted, grant = False, None
        try:
            with trio.move_on_after(self.auth_timeout):
                accepted, grant = await self._handshake(ws)
        except HandshakeFailed:
            self._rejected += 1
        finally:
            self._handshakes -= 1
        if accepted:
            await self._connect(ws, grant)

    async def _handshake(self, ws: ServerWebSocket) -> tuple[bool, Grant | None]:
        """Read and answer the handshake: whether it was accepted, and the header's grant."""
        request = await ws.read_request()
        headers = request.extra_headers
        origin = header_value(headers, b"origin")
        if (
            self._origins is not None
            and origin is not None
            and origin.decode("latin-1") not in self._origins
        ):
            self._rejected += 1
            await ws.reject(403, b"Origin not allowed.\n")
            return False, None
        grant: Grant | None = None
        authorization = header_value(headers, b"authorization")
        if authorization is not None:
            scheme, _, credentials = authorization.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                grant = check_token(self.secret, credentials.strip(), time.time())
            if grant is None:
                self._rejected += 1
                await ws.reject(
                    401, b"Bad token.\n", [(b"www-authenticate", b'Bearer realm="feed"')]
                )
                return False, None
        deflate = self.compression and bool(request.extensions)
        await ws.send_all(ws.accept(deflate=deflate, headers=[]))
        return True, grant

    async def _connect(self, ws: ServerWebSocket, grant: Grant | None) -> None:
        if self._shutting_down:
            await self._close_now(ws, _SHUTDOWN)
            return
        if grant is not None:
            full = self._authed >= self.max_connections
        else:
            full = self._waiting_auth >= self.max_unauthenticated
        if full:
            self._rejected += 1
            await self._close_now(ws, Close(CLOSE_TRY_AGAIN_LATER, "too many connections"))
            return
        if grant is not None:
            self._authed += 1
        else:
            self._waiting_auth += 1
        self._accepted += 1
        self._numbers += 1
        conn = FeedConnection(self, ws, self._numbers, grant)
        ws.set_handlers(conn.on_pong, conn.on_control)
        self._live.add(conn)
        close: Close | None = None
        try:
            close = await conn.run()
        except Exception:
            _logger.exception("An event feed connection failed; it was closed with 1011.")
            close = Close(CLOSE_INTERNAL_ERROR, "internal error")
            await self._close_now(ws, close)
            return
        finally:
            self._live.discard(conn)
            if conn.authenticated:
                self._authed -= 1
            else:
                self._waiting_auth -= 1
        if close is not None:
            with trio.move_on_after(self.close_timeout):
                await ws.finish()

    async def _close_now(self, ws: ServerWebSocket, close: Close) -> None:
        """Close an accepted connection that no task serves (bounded, shielded)."""
        with trio.CancelScope(shield=True), trio.move_on_after(self.close_timeout):
            try:
                await ws.send_all(ws.close_frame(close.code, close.reason))
            except ConnectionBroken:
                return
            await ws.finish()


async def serve_event_feed(
    registry: SessionRegistry,
    host: str | None,
    port: int,
    *,
    token: str,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[EventFeed] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> NoReturn:
    """Serve a session registry's live sessions and event logs over websockets.

    Runs until cancelled; start it with ``feed = await nursery.start(serve_event_feed,
    pool, "127.0.0.1", 0, token=...)`` and read the bound port from ``feed.port``.
    Each connection is a task of the server with its own cursors; a slow client
    only slows its own replay (the log is the buffer). On cancellation open
    connections are closed with 1001 first (Rule 4).

    Args:
        registry: what to serve, e.g. a ``SessionPool`` (any ``SessionRegistry``).
        host: the interface to bind (``None``: all).
        port: the TCP port (0: any free port).
        token: the feed's token.
        reuse_port: bind with ``SO_REUSEPORT`` so that several processes serve
            one port (Linux spreads connections over them; see
            ``docs/guides/scale-out.md``).
        **options: the other :class:`EventFeed` arguments (``allowed_origins``,
            ``max_connections``, ``max_unauthenticated``, ``max_message_size``,
            ``max_subscriptions``, ``heartbeat_interval``, ``idle_timeout``,
            ``auth_timeout``, ``send_buffer``, ``close_timeout``, ``compression``).

    Raises:
        ConfigurationError: a bad argument (before binding), or ``reuse_port`` on a
            platform without ``SO_REUSEPORT``.
        OSError: the address cannot be bound.
    """
    feed = EventFeed(registry, token=token, **options)
    await feed.serve(host, port, reuse_port=reuse_port, task_status=task_status)


def _page_origins(host: str, port: int) -> set[str]:
    """The ``Origin``s of a page served on ``host:port`` (loopback names included)."""
    names = {host}
    if host in _LOOPBACK:
        names |= _LOOPBACK
    return {f"http://{'[' + n + ']' if ':' in n else n}:{port}" for n in names}


async def serve_dashboard(
    registry: SessionRegistry,
    host: str,
    port: int,
    *,
    token: str,
    feed_port: int = 0,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[DashboardAddress] = trio.TASK_STATUS_IGNORED,
    **feed_options: Any,
) -> NoReturn:
    """Serve the dashboard page (plain HTTP on ``port``) and its feed (on ``feed_port``).

    The page takes the token from its URL fragment (``#token=...``, never sent to
    the HTTP server) and reads the feed's port from ``/config.json``. Unless
    ``allowed_origins`` is given, the feed accepts browsers only from the page
    itself (``http://<host>:<port>``; for a loopback host also its other loopback
    names; for a wildcard host the origin is not checked). Runs until cancelled;
    ``await nursery.start(serve_dashboard, pool, "127.0.0.1", 0, token=...)``
    returns a :class:`DashboardAddress`.

    Args:
        registry: what to serve, e.g. a ``SessionPool``.
        host: the interface both servers bind.
        port: the page's port (0: any free port).
        token: the feed's token.
        feed_port: the feed's port (0: any free port).
        reuse_port: bind both ports with ``SO_REUSEPORT``, so that several
            processes serve the same page and feed ports (``serve --workers``).
        **feed_options: more :class:`EventFeed` arguments.

    Raises:
        ConfigurationError: a bad argument.
        OSError: an address cannot be bound.
    """
    explicit_origins = "allowed_origins" in feed_options
    feed = EventFeed(registry, token=token, **feed_options)
    if not explicit_origins and host not in ("", "0.0.0.0", "::"):
        feed.allow_origins(())  # nothing until the page's port is known
    async with trio.open_nursery() as nursery:
        await nursery.start(functools.partial(feed.serve, host, feed_port, reuse_port=reuse_port))
        http_port: int = await nursery.start(
            functools.partial(
                serve_dashboard_page, host, port, feed_port=feed.port, reuse_port=reuse_port
            )
        )
        if not explicit_origins and host not in ("", "0.0.0.0", "::"):
            feed.allow_origins(_page_origins(host, http_port))
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
