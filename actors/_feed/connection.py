"""One feed connection: its actor (auth, commands, subscriptions, writer) and its outbox.

:class:`Connection` is the task tree of one accepted websocket connection (Rule 1 of
:mod:`actors._feed.server`, which states the feed's rules and accepts, limits and closes
connections): a reader (commands, auth), a writer (the only task that sends frames), a
watchdog, a heartbeat and one task per subscription, each with its own cursor.

Cost per frame
--------------

An event is encoded once per session, not once per subscriber
(:class:`actors._feed.protocol.FrameCache`), with one msgspec encode and
one string format. A connection's writer takes up to ``_WRITE_BATCH`` queued frames at a time and
writes them with one ``send_all`` (:func:`_send_frames`), instead of one
system call and one scheduler round trip per frame.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from typing import TYPE_CHECKING, Any, Final, final

import trio
from trio.lowlevel import ParkingLot
from trio_websocket import ConnectionClosed, WebSocketConnection
from wsproto.events import TextMessage

from actors._feed.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_INVALID_DATA,
    CLOSE_POLICY_VIOLATION,
    CLOSE_UNSUPPORTED_DATA,
    PROTOCOL,
    AnyCommand,
    Auth,
    Close,
    CommandError,
    Ping,
    Subscribe,
    SubscribeIndex,
    Unsubscribe,
    UnsubscribeIndex,
    build_frame,
    decode_command,
    index_frames,
    index_snapshot_frame,
    resync_frame,
    session_frame,
)
from runtime._base.errors import ConfigurationError
from runtime._run.cursor import BATCH_LIMIT, Lagged

if TYPE_CHECKING:
    from actors._feed.server import EventFeed
    from runtime._run.cursor import Cursor
    from runtime._run.registry import RegistryUpdate
    from runtime._run.status import RunSnapshot

__all__ = ["Connection", "GuardedNursery"]

_logger = logging.getLogger("actors.feed")

_BATCH: Final = BATCH_LIMIT
# Most frames the writer puts into one write (about 64 KiB of typical deltas).
_WRITE_BATCH: Final = 128


# -- the bounded outbox --------------------------------------------------------------


@final
class _Outbox:
    """The send buffer of one connection: many producers, one writer (Rule 2).

    Event frames are only *offered* (never waited for); control frames that
    must arrive (``resync``, ``session.end``) wait for :meth:`wait_room`, which
    returns once the buffer is at most half full, so a stalled client does not
    make its subscriptions spin.
    """

    __slots__ = ("_frames", "_limit", "_low", "_space", "_writer")

    def __init__(self, limit: int) -> None:
        self._frames: deque[str] = deque()
        self._limit = limit
        self._low = limit // 2
        self._writer = ParkingLot()
        self._space = ParkingLot()

    def __len__(self) -> int:
        return len(self._frames)

    def has_room(self) -> bool:
        return len(self._frames) < self._limit

    def room(self) -> int:
        return max(self._limit - len(self._frames), 0)

    def offer(self, frames: list[str]) -> int:
        """Queue as many of ``frames`` as fit, in order; return how many."""
        room = self._limit - len(self._frames)
        n = len(frames)
        if n > room:
            n = max(room, 0)
            self._frames.extend(frames[:n])
        else:
            self._frames.extend(frames)
        if n and self._writer:
            self._writer.unpark()
        return n

    def put(self, frame: str) -> bool:
        """Queue one frame if there is room; return whether it was queued."""
        if len(self._frames) >= self._limit:
            return False
        self._frames.append(frame)
        if self._writer:
            self._writer.unpark()
        return True

    async def wait_room(self) -> None:
        """Wait until the buffer is at most half full. Always a checkpoint."""
        if len(self._frames) > self._low:
            while len(self._frames) > self._low:
                await self._space.park()
        else:
            await trio.lowlevel.checkpoint()

    async def take(self, max_frames: int) -> list[str]:
        """The writer's side: wait for frames, then remove and return up to ``max_frames``."""
        frames = self._frames
        while not frames:
            await self._writer.park()
        if len(frames) <= max_frames:
            batch = list(frames)
            frames.clear()
        else:
            batch = [frames.popleft() for _ in range(max_frames)]
        if self._space and len(frames) <= self._low:
            self._space.unpark_all()
        return batch


async def _send_frames(ws: WebSocketConnection, frames: list[str]) -> None:
    """Send text messages in order, several per write when the connection allows it.

    ``WebSocketConnection.send_message`` makes one ``send_all`` (a system call
    and a scheduler round trip) per message, which dominates the feed's cost per
    frame. Here the frames are serialized with the connection's own wsproto
    state machine and written at once, under the connection's send lock,
    exactly as trio-websocket's ``_send`` does for one event. That needs three
    trio-websocket internals (``_wsproto``, ``_stream_lock``, ``_stream``);
    if a future version lacks them, frames are sent one by one.

    Raises:
        ConnectionClosed: the connection is closed or broke.
    """
    proto = getattr(ws, "_wsproto", None)
    lock = getattr(ws, "_stream_lock", None)
    stream = getattr(ws, "_stream", None)
    if len(frames) == 1 or proto is None or lock is None or stream is None:
        for frame in frames:
            await ws.send_message(frame)
        return
    reason = ws.closed
    if reason is not None:
        raise ConnectionClosed(reason)
    # Checking ws.closed first is what send_message does: trio-websocket records a
    # close reason before (or as) wsproto leaves the OPEN state, so messages can
    # still be serialized here.
    data = b"".join([proto.send(TextMessage(data=frame)) for frame in frames])
    async with lock:
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await ws._abort_web_socket()
            raise ConnectionClosed(ws.closed) from None


# -- one connection ------------------------------------------------------------------


@final
class GuardedNursery:
    """The part of a nursery ``wrap_server_stream`` uses, guarding the reader task.

    trio-websocket's reader task raises (wsproto's ``LocalProtocolError``) when
    an oversized message arrives after our close frame was queued: it tries to
    send a second close. In a plain nursery that would cancel the connection's
    handler in the middle of its closing handshake, so the close frame would
    never go out. Here the reader just ends (the connection is over anyway)
    and the handler's close runs its course, bounded by ``close_timeout``.
    """

    __slots__ = ("_nursery",)

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def start_soon(self, fn: Any, *args: Any, name: object = None) -> None:
        self._nursery.start_soon(_guarded, fn, *args, name=name)


async def _guarded(fn: Any, *args: Any) -> None:
    try:
        await fn(*args)
    except Exception:
        _logger.debug("The websocket reader of a feed connection failed.", exc_info=True)


@final
class Connection:
    """The tasks and state of one accepted websocket connection (Rule 1)."""

    def __init__(
        self, feed: EventFeed, ws: WebSocketConnection, number: int, *, authenticated: bool
    ) -> None:
        self._feed = feed
        self._ws = ws
        self._authenticated = authenticated
        self._outbox = _Outbox(feed._send_buffer)
        self._subs: dict[str, trio.CancelScope] = {}
        self._index: trio.CancelScope | None = None
        self._close: Close | None = None
        self._closing = False
        self._nursery: trio.Nursery | None = None
        self._last_seen = trio.current_time()
        self._auth_deadline = self._last_seen + feed._auth_timeout
        self._control = 0
        self._name = f"feed:{number}"

    @property
    def subscriptions(self) -> int:
        return len(self._subs) + (self._index is not None)

    async def run(self) -> Close | None:
        """Serve until the connection ends; return how the server wants it closed.

        ``None`` means the client closed it (or it broke): nothing left to send.
        """
        feed = self._feed
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._write, name=f"{self._name} writer")
            nursery.start_soon(self._watch, name=f"{self._name} watchdog")
            if feed._heartbeat_interval is not None:
                nursery.start_soon(self._heartbeat, name=f"{self._name} heartbeat")
            if self._authenticated:
                self._ready()
            nursery.start_soon(self._read, name=f"{self._name} reader")
        return self._close

    def _ended(self) -> bool:
        return self._closing

    def shut(self, close: Close | None) -> None:
        """End the connection's tasks; the first reason given wins."""
        if not self._closing:
            self._closing = True
            self._close = close
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # -- frames ---------------------------------------------------------------------

    def _control_frame(self, kind: str, data: Any) -> str:
        self._control += 1
        return build_frame(id=f"{self._name}:{self._control}", source="/feed", type=kind, data=data)

    def _error(self, code: str, message: str, command: str | None = None) -> None:
        """Queue a non-fatal ``feed.error`` frame (dropped if the client is not reading)."""
        data = {"code": code, "message": message, "command": command}
        self._outbox.put(self._control_frame("feed.error", data))

    def _fatal(self, close_code: int, code: str, message: str, command: str | None = None) -> None:
        data = {"code": code, "message": message, "command": command}
        frame = self._control_frame("feed.error", data)
        self.shut(Close(close_code, code, frame))

    def _ready(self) -> None:
        feed = self._feed
        self._outbox.put(
            self._control_frame(
                "feed.ready",
                {
                    "protocol": PROTOCOL,
                    "heartbeat_interval": feed._heartbeat_interval,
                    "idle_timeout": feed._idle_timeout,
                    "max_message_size": feed._max_message_size,
                    "max_subscriptions": feed._max_subscriptions,
                    "send_buffer": feed._send_buffer,
                },
            )
        )

    # -- tasks ----------------------------------------------------------------------

    async def _write(self) -> None:
        outbox = self._outbox
        ws = self._ws
        feed = self._feed
        while True:
            frames = await outbox.take(_WRITE_BATCH)
            try:
                await _send_frames(ws, frames)
            except ConnectionClosed:
                self.shut(None)
                return
            feed._frames_sent += len(frames)

    async def _heartbeat(self) -> None:
        interval = self._feed._heartbeat_interval
        assert interval is not None
        count = 0
        while True:
            await trio.sleep(interval)
            count += 1
            try:
                await self._ws.ping(count.to_bytes(8, "big"))
            except ConnectionClosed:
                self.shut(None)
                return
            self._last_seen = trio.current_time()

    async def _watch(self) -> None:
        idle = self._feed._idle_timeout
        while True:
            now = trio.current_time()
            deadline = math.inf
            if not self._authenticated:
                if now >= self._auth_deadline:
                    self._fatal(
                        CLOSE_POLICY_VIOLATION,
                        "auth_timeout",
                        "No auth frame arrived in time.",
                    )
                    return
                deadline = self._auth_deadline
            if idle is not None:
                idle_deadline = self._last_seen + idle
                if now >= idle_deadline:
                    self.shut(Close(CLOSE_GOING_AWAY, "idle timeout"))
                    return
                deadline = min(deadline, idle_deadline)
            await trio.sleep_until(deadline)

    async def _read(self) -> None:
        ws = self._ws
        while True:
            try:
                message = await ws.get_message()
            except ConnectionClosed:
                self.shut(None)
                return
            self._last_seen = trio.current_time()
            if isinstance(message, bytes):
                self._fatal(
                    CLOSE_UNSUPPORTED_DATA,
                    "unsupported_data",
                    "Binary messages are not accepted; send JSON text.",
                )
                return
            command = self._decode(message)
            if command is not None:
                self._dispatch(command)
            if self._ended():
                return

    def _decode(self, message: str) -> AnyCommand | None:
        command = decode_command(message)
        if not isinstance(command, CommandError):
            return command
        if command.fatal:
            self._fatal(CLOSE_INVALID_DATA, command.code, command.message, command.command)
        else:
            self._error(command.code, command.message, command.command)
        return None

    def _dispatch(self, command: AnyCommand) -> None:
        if not self._authenticated:
            if type(command) is Auth and self._feed._token_ok(
                command.token.encode("utf-8", "surrogatepass")
            ):
                self._authenticated = True
                self._ready()
            elif type(command) is Auth:
                self._fatal(
                    CLOSE_POLICY_VIOLATION, "unauthorized", "The token is not valid.", "auth"
                )
            else:
                self._fatal(
                    CLOSE_POLICY_VIOLATION,
                    "unauthenticated",
                    'Authenticate first with {"type": "auth", "token": ...}.',
                    str(command.__struct_config__.tag),
                )
            return
        match command:
            case Subscribe(session=session, after=after):
                self._subscribe(session, after)
            case Unsubscribe(session=session):
                scope = self._subs.pop(session, None)
                if scope is not None:
                    scope.cancel()
            case SubscribeIndex():
                if self._index is not None:
                    self._index.cancel()
                scope = trio.CancelScope()
                self._index = scope
                self._start(self._follow_index, scope, name="index")
            case UnsubscribeIndex():
                if self._index is not None:
                    self._index.cancel()
                    self._index = None
            case Ping(id=ping_id):
                self._outbox.put(self._control_frame("feed.pong", {"id": ping_id}))
            case Auth():
                self._error("already_authenticated", "This connection is authenticated.", "auth")

    def _start(self, fn: Any, *args: Any, name: str) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args, name=f"{self._name} {name}")

    # -- session subscriptions ------------------------------------------------------

    def _subscribe(self, session: str, after: int) -> None:
        feed = self._feed
        if session not in self._subs and len(self._subs) >= feed._max_subscriptions:
            self._error(
                "too_many_subscriptions",
                f"At most {feed._max_subscriptions!r} session subscriptions per connection.",
                "subscribe",
            )
            return
        registry = feed._registry
        try:
            snap = registry.snapshot(session)
        except KeyError:
            self._error("unknown_session", f"No session {session!r}.", "subscribe")
            return
        cursor: Cursor[Any] | None = None
        if after >= -1:
            try:
                # The registry decides how far ahead a cursor may start: a local
                # log up to its next_seq; a Redis-backed one (whose snapshot may
                # trail the run) anywhere in a run that has not ended.
                cursor = registry.events(session, after + 1)
            except ConfigurationError:
                cursor = None
        if cursor is None:
            self._error(
                "invalid_after",
                f"after must be between -1 and {snap.next_seq - 1!r} for session "
                f"{session!r}, got {after!r}.",
                "subscribe",
            )
            return
        old = self._subs.pop(session, None)
        if old is not None:
            old.cancel()
        scope = trio.CancelScope()
        self._subs[session] = scope
        self._start(self._follow, session, cursor, scope, snap, after, name=f"session {session}")

    async def _follow(
        self,
        session: str,
        cursor: Cursor[Any],
        scope: trio.CancelScope,
        snap: RunSnapshot,
        after: int,
    ) -> None:
        outbox = self._outbox
        feed = self._feed
        cache = feed._cache(session)
        last = after  # the seq of the last event queued for the client
        current: Cursor[Any] | None = cursor
        try:
            with scope:
                await self._put_session_frame(
                    session, "session.subscribed", after, {"after": after, "snapshot": snap}
                )
                while current is not None:
                    try:
                        batch = await current.receive_batch(_BATCH)
                    except Lagged:
                        current.close()
                        current, last = await self._resync(session, "lagged", last)
                        continue
                    except trio.EndOfChannel:
                        await self._end(session)
                        return
                    except trio.ClosedResourceError:
                        return
                    except Exception:
                        # The run failed: its log re-raises the run's error after
                        # the last event. The snapshot says what failed.
                        await self._end(session)
                        return
                    first = current.seq - len(batch)
                    room = outbox.room()
                    if room >= len(batch):
                        outbox.offer(cache.frames(batch, first))
                        last = first + len(batch) - 1
                    else:
                        # Rule 2: queue what fits, drop the rest, resync.
                        outbox.offer(cache.frames(batch[:room], first))
                        last = first + room - 1
                        feed._frames_dropped += len(batch) - room
                        current.close()
                        current, last = await self._resync(session, "overflow", last)
        finally:
            if current is not None:
                current.close()
            cursor.close()
            feed._uncache(session)
            if self._subs.get(session) is scope:
                del self._subs[session]

    async def _put_session_frame(self, session: str, kind: str, seq: int, data: Any) -> None:
        outbox = self._outbox
        frame = session_frame(session, kind, seq, data)
        while True:
            await outbox.wait_room()
            if outbox.put(frame):
                return

    async def _resync(self, session: str, reason: str, last: int) -> tuple[Cursor[Any] | None, int]:
        """Rule 2: wait for room, then snapshot and re-attach at the current seq."""
        outbox = self._outbox
        registry = self._feed._registry
        while True:
            await outbox.wait_room()
            if outbox.has_room():
                break
        try:
            snap = registry.snapshot(session)
        except KeyError:
            self._error("unknown_session", f"Session {session!r} is gone.", None)
            return None, last
        next_seq = snap.next_seq
        cursor = registry.events(session, next_seq)
        self._feed._resyncs += 1
        outbox.put(resync_frame(session, reason, last, next_seq, snap))
        return cursor, next_seq - 1

    async def _end(self, session: str) -> None:
        try:
            snap = self._feed._registry.snapshot(session)
        except KeyError:
            return
        await self._put_session_frame(
            session,
            "session.end",
            snap.next_seq - 1,
            {"status": snap.status, "error": snap.error, "snapshot": snap},
        )

    # -- the index subscription -----------------------------------------------------

    async def _follow_index(self, scope: trio.CancelScope) -> None:
        outbox = self._outbox
        feed = self._feed
        watch: Cursor[RegistryUpdate] | None = None
        try:
            with scope:
                watch = await self._index_snapshot("subscribe")
                while True:
                    try:
                        batch = await watch.receive_batch(_BATCH)
                    except Lagged:
                        watch.close()
                        watch = await self._index_snapshot("lagged")
                        continue
                    except (trio.EndOfChannel, trio.ClosedResourceError):
                        return
                    first = watch.seq - len(batch)
                    frames = index_frames(batch, first)
                    taken = outbox.offer(frames)
                    if taken < len(frames):
                        feed._frames_dropped += len(frames) - taken
                        watch.close()
                        watch = await self._index_snapshot("overflow")
        finally:
            if watch is not None:
                watch.close()
            if self._index is scope:
                self._index = None

    async def _index_snapshot(self, reason: str) -> Cursor[RegistryUpdate]:
        outbox = self._outbox
        while True:
            await outbox.wait_room()
            if outbox.has_room():
                break
        registry = self._feed._registry
        watch = registry.watch()  # attach first: no update can fall in between
        sessions = registry.sessions()
        if reason != "subscribe":
            self._feed._resyncs += 1
        outbox.put(index_snapshot_frame(reason, watch.seq - 1, sessions))
        return watch
