"""One feed connection: commands in, frames out, every subscription paced by the socket.

A connection is one task (:meth:`FeedConnection.run`) that writes, plus a
reader (commands), a watchdog (auth deadline, token expiry, idle timeout) and
a heartbeat (pings). Subscriptions are not tasks: they are cursors that the
writer reads when the socket can take more.

Rules
-----

Rule 1 (lossless pacing, issue 16). A subscription reads its session's log
only when the writer is about to write: at most ``send_buffer`` events per
subscription per write, encoded and written at once. So a replay of any
length, and a client of any speed, costs a cursor position and never a buffer
that could overflow; the log's retention is the only buffer. A subscription
tells its client about a gap only when the log's retention really dropped
events it still needed (``Lagged``): a ``resync`` frame naming the exact seqs
(``missed_from`` .. ``missed_to``), then it goes on from the oldest retained
event.

Rule 2 (waking without a task per subscription). A subscription that caught up
with its log waits on the session's :class:`Watch`: one task per followed
session (per feed, or per connection when the feed serves a lone stream) that
waits for the log's news with its own cursor and marks the waiting
subscriptions ready. So a burst of events in one session costs one wake-up of
the watch plus one of each connection's writer, whatever the number of
subscriptions, and the writer reads every ready subscription in one pass:
no task switch per frame or per subscription on the hot path (issue 13).

The log is read only through the registry's cursor API (``events(session,
from_seq)``, then ``receive_batch_nowait``, ``receive_batch``, ``seq``,
``close`` and ``Lagged``'s ``resume_seq``), so any log source with that API
(a Redis-backed reader, issue 13) serves the same feed.

Rule 3 (order). Within one subscription frames follow log order and
``sequence`` grows by one per event (a ``types`` filter leaves out events,
never reorders them). Control frames queued by a command (``session.subscribed``,
``feed.pong``, ``feed.error``) go out before any event read after it.

Rule 4 (one writer). Only :meth:`FeedConnection.run`'s task writes to the
socket, the close frame included (``actors._feed.websocket`` Rule 1).

Rule 5 (bounded). What a connection holds is bounded whatever the client does:
events stay in the log until the writer reads them (Rule 1); answers to
commands queue up to ``_CONTROL_ROOM`` frames, after which the reader stops
reading the client until they drain.

Rule 6 (no secrets). Frames carry events, snapshots and feed metadata only;
tokens are checked by ``actors._feed.tokens`` and never echoed or logged.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final, final

import trio
from trio.lowlevel import ParkingLot

from actors._feed.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_INVALID_DATA,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNSUPPORTED_DATA,
    PROTOCOL,
    AnyCommand,
    Auth,
    Close,
    CommandError,
    Ping,
    Subscribe,
    SubscribeAll,
    SubscribeIndex,
    Unsubscribe,
    UnsubscribeAll,
    UnsubscribeIndex,
    batch_payload,
    build_frame,
    decode_command,
    index_frames,
    index_snapshot_frame,
    resync_frame,
    session_frame,
    type_filter,
)
from actors._feed.subscriptions import Group, Sub, Watches
from actors._feed.tokens import Grant, check_token
from actors._feed.websocket import (
    BinaryMessage,
    ClientClosed,
    ConnectionBroken,
    MessageTooBig,
    ProtocolViolation,
)
from runtime._base.errors import ConfigurationError
from runtime._run.cursor import Lagged

if TYPE_CHECKING:
    from actors._feed.server import EventFeed
    from actors._feed.websocket import ServerWebSocket
    from runtime._run.cursor import Cursor
    from runtime._run.registry import RegistryUpdate
    from runtime._run.status import RunSnapshot

__all__ = ["FeedConnection"]

# Bytes the writer gathers for one write before it stops reading subscriptions.
_WRITE_BUDGET: Final = 256 * 1024
# Control frames queued before the index subscription waits for the socket.
_CONTROL_ROOM: Final = 256
# Events read at subscribe time to learn whether the requested range is retained.
_PROBE: Final = 64


# -- the connection ------------------------------------------------------------------


@final
class FeedConnection:
    """The tasks and state of one accepted websocket connection (see the module rules)."""

    def __init__(
        self, feed: EventFeed, ws: ServerWebSocket, number: int, grant: Grant | None
    ) -> None:
        self.feed = feed
        self._ws = ws
        self._grant = grant
        self._control: list[bytes] = []
        self._control_frames = 0
        self._ready: deque[Sub] = deque()
        self._writer = ParkingLot()
        self._room = ParkingLot()
        self._subs: dict[str, Sub] = {}
        self._group: Group | None = None
        self._index: trio.CancelScope | None = None
        self._close: Close | None = None
        self._closing = False
        self._reply = b""
        self._nursery: trio.Nursery | None = None
        self._own_watches: Watches | None = None
        self._write_scope = trio.CancelScope()
        self._last_seen = trio.current_time()
        self._auth_deadline = self._last_seen + feed.auth_timeout
        self._expires = math.inf
        self._counter = 0
        self._name = f"feed:{number}"

    @property
    def authenticated(self) -> bool:
        return self._grant is not None

    @property
    def subscriptions(self) -> int:
        group = 0 if self._group is None else len(self._group.subs)
        return len(self._subs) + group + (self._index is not None)

    def watches(self) -> Watches:
        shared = self.feed.shared_watches
        if shared is not None:
            return shared
        assert self._own_watches is not None
        return self._own_watches

    def on_pong(self) -> None:
        self._last_seen = trio.current_time()

    def on_control(self, frame: bytes) -> None:
        """Queue an already framed control frame (a pong) and wake the writer."""
        self._control.append(frame)
        self._writer.unpark()

    async def run(self) -> Close | None:
        """Serve until the connection ends; return how it was closed (``None``: broken).

        The caller then finishes the closing handshake (``ServerWebSocket.finish``)
        and closes the stream.
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.feed.shared_watches is None:
                self._own_watches = Watches(nursery)
            nursery.start_soon(self._read, name=f"{self._name} reader")
            nursery.start_soon(self._watchdog, name=f"{self._name} watchdog")
            if self.feed.heartbeat_interval is not None:
                nursery.start_soon(self._heartbeat, name=f"{self._name} heartbeat")
            if self._grant is not None:
                self._authenticated(self._grant)
            try:
                with self._write_scope:
                    await self._write()
            finally:
                for sub in self._all_subs():
                    sub.close()
                nursery.cancel_scope.cancel()
        return self._close

    def shut(self, close: Close | None, reply: bytes = b"") -> None:
        """End the connection: the first reason given wins (``None``: it broke).

        The writer sends ``close.frame`` (if any) and the close frame (or
        ``reply``, the answer to the client's close), then returns; it gets
        ``close_timeout`` seconds to do so.
        """
        if self._closing:
            return
        self._closing = True
        self._close = close
        self._reply = reply
        if close is None and not reply:
            self._write_scope.cancel()
        else:
            self._write_scope.deadline = trio.current_time() + self.feed.close_timeout
        self._writer.unpark()

    def _all_subs(self) -> list[Sub]:
        subs = list(self._subs.values())
        if self._group is not None:
            subs += self._group.subs.values()
        return subs

    # -- frames ---------------------------------------------------------------------

    def _queue(self, payload: bytes, frames: int = 1) -> None:
        self._control.append(self._ws.frame(payload))
        self._control_frames += frames
        self._writer.unpark()

    def _feed_frame(self, kind: str, data: Any, correlation: str | int | None = None) -> bytes:
        self._counter += 1
        return build_frame(
            id=f"{self._name}:{self._counter}",
            source="/feed",
            type=kind,
            data=data,
            correlation=correlation,
        )

    def _error(
        self, code: str, message: str, command: str | None, correlation: str | int | None = None
    ) -> None:
        """Queue a non-fatal ``feed.error`` frame."""
        data = {"code": code, "message": message, "command": command}
        self._queue(self._feed_frame("feed.error", data, correlation))

    def _fatal(self, close_code: int, code: str, message: str, command: str | None = None) -> None:
        data = {"code": code, "message": message, "command": command}
        self.shut(Close(close_code, code, self._feed_frame("feed.error", data)))

    def _authenticated(self, grant: Grant) -> None:
        feed = self.feed
        self._grant = grant
        if grant.expires_at is not None:
            self._expires = trio.current_time() + (grant.expires_at - time.time())
        ws = self._ws
        self._queue(
            self._feed_frame(
                "feed.ready",
                {
                    "protocol": PROTOCOL,
                    "heartbeat_interval": feed.heartbeat_interval,
                    "idle_timeout": feed.idle_timeout,
                    "max_message_size": feed.max_message_size,
                    "max_subscriptions": feed.max_subscriptions,
                    "send_buffer": feed.send_buffer,
                    "compression": "permessage-deflate" if ws.deflater is not None else None,
                    "scope": None if grant.session is None else {"session": grant.session},
                    "pid": os.getpid(),
                },
            )
        )

    # -- the writer (Rule 4) ----------------------------------------------------------

    async def _write(self) -> None:
        ws = self._ws
        feed = self.feed
        while not self._closing:
            data, frames, messages = self._collect()
            if data:
                try:
                    await ws.send_all(data)
                except ConnectionBroken:
                    self.shut(None)
                    return
                feed.count_sent(frames, messages)
                if self._room:
                    self._room.unpark_all()
            else:
                await self._writer.park()
        close = self._close
        if self._reply:
            tail = self._reply
        elif close is not None:
            tail = (b"" if close.frame is None else ws.frame(close.frame)) + ws.close_frame(
                close.code, close.reason
            )
        else:
            return
        try:
            await ws.send_all(tail)
        except ConnectionBroken:
            self._close = None

    def _collect(self) -> tuple[bytes, int, int]:
        """Everything to write now: queued control frames, then ready subscriptions."""
        out = self._control
        frames = self._control_frames
        messages = len(out)
        self._control = []
        self._control_frames = 0
        ready = self._ready
        budget = _WRITE_BUDGET
        size = sum(map(len, out))
        while ready and size < budget:
            sub = ready.popleft()
            sub.ready = False
            if sub.closed:
                continue
            before = len(out)
            frames += self._pull(sub, out)
            messages += len(out) - before
            for i in range(before, len(out)):
                size += len(out[i])
        return b"".join(out), frames, messages

    def mark_ready(self, sub: Sub) -> None:
        if not sub.ready and not sub.closed:
            sub.ready = True
            self._ready.append(sub)
            self._writer.unpark()

    def _pull(self, sub: Sub, out: list[bytes]) -> int:
        """Read what ``sub`` may send now into ``out``; return the event frames added."""
        cursor = sub.cursor
        limit = self.feed.send_buffer
        events = sub.pending
        probed = events is not None
        if events is not None:
            sub.pending = None
            first = cursor.seq - len(events)
        else:
            before = cursor.seq
            try:
                events = cursor.receive_batch_nowait(limit)
            except trio.WouldBlock:
                self._wait(sub)
                return 0
            except Lagged as lag:
                self._resync(sub, before, lag.resume_seq, out)
                self.mark_ready(sub)
                return 1
            except trio.ClosedResourceError:
                return 0
            except Exception:  # EndOfChannel, or the run's error after its last event
                self._end(sub, out)
                return 1
            first = cursor.seq - len(events)
        ws = self._ws
        plain = ws.deflater is None
        payloads = sub.cache.encode(
            events,
            first,
            compact=sub.compact,
            accept=sub.accept,
            framed=plain and not sub.batch,
        )
        sub.last = first + len(events) - 1
        if payloads:
            if sub.batch:
                out.append(ws.frame(batch_payload(payloads)))
            elif plain:
                out += payloads
            else:
                out += [ws.frame(p) for p in payloads]
        if not probed and len(events) < limit:
            self._wait(sub)  # it read everything there was: wait for news
        else:
            self.mark_ready(sub)
        return len(payloads)

    def _wait(self, sub: Sub) -> None:
        if sub.watch is None:
            session = sub.session
            registry = self.feed.registry
            seq = sub.cursor.seq
            sub.watch = self.watches().attach(session, lambda: registry.events(session, seq))
        sub.watch.wait(sub)

    def _resync(self, sub: Sub, missed_from: int, resume: int, out: list[bytes]) -> None:
        self.feed.count_resync()
        snap = self._snapshot(sub.session)
        frame = resync_frame(sub.session, missed_from, resume, sub.last, snap)
        out.append(self._ws.frame(frame))
        sub.last = resume - 1

    def _end(self, sub: Sub, out: list[bytes]) -> None:
        snap = self._snapshot(sub.session)
        if snap is not None:
            data = {"status": snap.status, "error": snap.error, "snapshot": snap}
            out.append(
                self._ws.frame(session_frame(sub.session, "session.end", snap.next_seq - 1, data))
            )
        self._drop(sub)

    def _drop(self, sub: Sub) -> None:
        sub.close()
        if self._subs.get(sub.session) is sub:
            del self._subs[sub.session]
        group = sub.group
        if group is not None and group.subs.get(sub.session) is sub:
            del group.subs[sub.session]

    def _snapshot(self, session: str) -> RunSnapshot | None:
        try:
            return self.feed.registry.snapshot(session)
        except KeyError:
            return None

    async def _wait_room(self) -> None:
        """Wait until the control queue is short (for the index subscription)."""
        while len(self._control) > _CONTROL_ROOM:
            await self._room.park()
        await trio.lowlevel.checkpoint()

    # -- other tasks ----------------------------------------------------------------

    async def _heartbeat(self) -> None:
        interval = self.feed.heartbeat_interval
        assert interval is not None
        count = 0
        while True:
            await trio.sleep(interval)
            count += 1
            self._control.append(self._ws.ping(count.to_bytes(8, "big")))
            self._writer.unpark()

    async def _watchdog(self) -> None:
        idle = self.feed.idle_timeout
        while True:
            now = trio.current_time()
            deadline = self._expires
            if now >= deadline:
                self._fatal(CLOSE_POLICY_VIOLATION, "token_expired", "The read token expired.")
                return
            if self._grant is None:
                if now >= self._auth_deadline:
                    self._fatal(
                        CLOSE_POLICY_VIOLATION, "auth_timeout", "No auth frame arrived in time."
                    )
                    return
                deadline = min(deadline, self._auth_deadline)
            if idle is not None:
                idle_deadline = self._last_seen + idle
                if now >= idle_deadline:
                    self.shut(Close(CLOSE_GOING_AWAY, "idle timeout"))
                    return
                deadline = min(deadline, idle_deadline)
            await trio.sleep_until(deadline)

    async def _read(self) -> None:
        ws = self._ws
        try:
            while not self._closing:
                if len(self._control) > _CONTROL_ROOM:
                    # A client that sends commands (or pings) but does not read
                    # their answers: stop reading it until the answers drain, so
                    # what it costs stays bounded (TCP pushes back on it).
                    await self._wait_room()
                message = await ws.receive()
                self._last_seen = trio.current_time()
                command = self._decode(message)
                if command is not None and not self._closing:
                    self._dispatch(command)
        except ClientClosed as closed:
            self.shut(Close(closed.code, "closed by the client"), ws.close_reply(closed.code))
        except ProtocolViolation as violation:
            code = "invalid_utf8" if violation.code == CLOSE_INVALID_DATA else "protocol_error"
            self._fatal(violation.code, code, "The client broke the websocket protocol.")
        except MessageTooBig:
            limit = self.feed.max_message_size
            self._fatal(
                CLOSE_TOO_BIG, "message_too_big", f"Messages are limited to {limit!r} characters."
            )
        except BinaryMessage:
            self._fatal(
                CLOSE_UNSUPPORTED_DATA,
                "unsupported_data",
                "Binary messages are not accepted; send JSON text.",
            )
        except ConnectionBroken:
            self.shut(None)

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
        grant = self._grant
        if grant is None:
            self._unauthenticated(command)
            return
        cid = command.id
        if grant.session is not None and not _allowed(command, grant.session):
            kind = str(command.__struct_config__.tag)
            self._error("forbidden", "This token may only follow its own session.", kind, cid)
            return
        match command:
            case Subscribe():
                self._subscribe(command)
            case Unsubscribe(session=session):
                sub = self._subs.pop(session, None)
                if sub is not None:
                    sub.close()
                self._ack("unsubscribe", cid)
            case SubscribeIndex():
                if self._index is not None:
                    self._index.cancel()
                scope = self._index = trio.CancelScope()
                self._start(self._follow_index, scope, cid, name="index")
            case UnsubscribeIndex():
                if self._index is not None:
                    self._index.cancel()
                    self._index = None
                self._ack("unsubscribe_index", cid)
            case SubscribeAll():
                self._stop_group()
                group = self._group = Group(command)
                self._start(self._follow_all, group, cid, name="all")
            case UnsubscribeAll():
                self._stop_group()
                self._ack("unsubscribe_all", cid)
            case Ping():
                self._queue(self._feed_frame("feed.pong", {"id": cid}, cid))
            case Auth():
                self._error(
                    "already_authenticated", "This connection is authenticated.", "auth", cid
                )

    def _unauthenticated(self, command: AnyCommand) -> None:
        if type(command) is not Auth:
            self._fatal(
                CLOSE_POLICY_VIOLATION,
                "unauthenticated",
                'Authenticate first with {"type": "auth", "token": ...}.',
                str(command.__struct_config__.tag),
            )
            return
        feed = self.feed
        grant = check_token(
            feed.secret, command.token.encode("utf-8", "surrogatepass"), time.time()
        )
        if grant is None:
            self._fatal(CLOSE_POLICY_VIOLATION, "unauthorized", "The token is not valid.", "auth")
        elif not feed.promote(self):
            self.shut(Close(CLOSE_TRY_AGAIN_LATER, "too many connections"))
        else:
            self._authenticated(grant)

    def _ack(self, command: str, cid: str | int | None) -> None:
        if cid is not None:
            self._queue(self._feed_frame("feed.ack", {"command": command}, cid))

    def _start(self, fn: Any, *args: Any, name: str) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args, name=f"{self._name} {name}")

    # -- session subscriptions ------------------------------------------------------

    def _subscribe(self, command: Subscribe) -> None:
        feed = self.feed
        session, after, cid = command.session, command.after, command.id
        if session not in self._subs and len(self._subs) >= feed.max_subscriptions:
            self._error(
                "too_many_subscriptions",
                f"At most {feed.max_subscriptions!r} session subscriptions per connection.",
                "subscribe",
                cid,
            )
            return
        snap = self._snapshot(session)
        if snap is None:
            self._error("unknown_session", f"No session {session!r}.", "subscribe", cid)
            return
        cursor: Cursor[Any] | None = None
        if type(after) is int and after >= -1:
            try:
                # The registry decides how far ahead a cursor may start: a local
                # log up to its next_seq; a Redis-backed one (whose snapshot may
                # trail the run) anywhere in a run that has not ended.
                cursor = feed.registry.events(session, after + 1)
            except ConfigurationError:
                cursor = None
        if cursor is None:
            self._error(
                "invalid_after",
                f"after must be between -1 and {snap.next_seq - 1!r} for session "
                f"{session!r}, got {after!r}.",
                "subscribe",
                cid,
            )
            return
        old = self._subs.pop(session, None)
        if old is not None:
            old.close()
        sub = Sub(
            self,
            session,
            cursor,
            last=after,
            accept=type_filter(command.types),
            batch=command.batch,
            compact=command.envelope == "compact",
            group=None,
        )
        self._subs[session] = sub
        self._begin(sub, snap, after, cid)

    def _begin(self, sub: Sub, snap: RunSnapshot, after: int, cid: str | int | None) -> None:
        """Probe the log (Lagged: not recovered), say ``session.subscribed``, start reading."""
        trace = getattr(snap, "trace_id", None)
        if trace and not sub.cache.trace:
            sub.cache.set_trace(trace)
        data: dict[str, Any] = {"after": after, "recovered": True}
        resync: bytes | None = None
        try:
            sub.pending = sub.cursor.receive_batch_nowait(_PROBE)
        except Lagged as lag:
            self.feed.count_resync()
            data.update(recovered=False, missed_from=after + 1, missed_to=lag.resume_seq - 1)
            resync = resync_frame(sub.session, after + 1, lag.resume_seq, after, snap)
            sub.last = lag.resume_seq - 1
        except Exception:  # WouldBlock, EndOfChannel, the run's error: the pull sees them
            pass
        data["snapshot"] = snap
        if sub.group is None:
            self._queue(session_frame(sub.session, "session.subscribed", after, data, cid))
        if resync is not None:
            self._queue(resync)
        self.mark_ready(sub)

    def _stop_group(self) -> None:
        group = self._group
        if group is not None:
            self._group = None
            group.scope.cancel()
            for sub in list(group.subs.values()):
                sub.close()

    async def _follow_all(self, group: Group, cid: str | int | None) -> None:
        registry = self.feed.registry
        watch: Cursor[RegistryUpdate] | None = None
        try:
            with group.scope:
                watch = registry.watch()  # attach first: no session falls in between
                sessions = registry.sessions()
                for snap in sessions:
                    live = not group.replay
                    if live and snap.status in ("done", "failed", "cancelled"):
                        group.seen.add(snap.id)
                        continue
                    self._join(group, snap, snap.next_seq - 1 if live else -1)
                self._queue(
                    self._feed_frame(
                        "sessions.subscribed",
                        {"sessions": sorted(group.subs), "replay": group.replay},
                        cid,
                    )
                )
                while True:
                    await self._wait_room()
                    try:
                        updates = await watch.receive_batch(256)
                    except Lagged:
                        for snap in registry.sessions():
                            self._join(group, snap, -1)
                        continue
                    except (trio.EndOfChannel, trio.ClosedResourceError):
                        return
                    for update in updates:
                        if update.kind == "updated":
                            self._join(group, update.session, -1)
        finally:
            if watch is not None:
                watch.close()

    def _join(self, group: Group, snap: RunSnapshot, after: int) -> None:
        session = snap.id
        if session in group.seen or group is not self._group:
            return
        group.seen.add(session)
        try:
            cursor = self.feed.registry.events(session, max(after + 1, 0))
        except Exception:  # evicted meanwhile, or a stale next_seq: nothing to follow
            return
        sub = Sub(
            self,
            session,
            cursor,
            last=after,
            accept=group.accept,
            batch=group.batch,
            compact=group.compact,
            group=group,
        )
        group.subs[session] = sub
        self._begin(sub, snap, after, None)

    # -- the index subscription -----------------------------------------------------

    async def _follow_index(self, scope: trio.CancelScope, cid: str | int | None) -> None:
        watch: Cursor[RegistryUpdate] | None = None
        try:
            with scope:
                watch = self._index_snapshot("subscribe", cid)
                while True:
                    await self._wait_room()
                    try:
                        batch = await watch.receive_batch(256)
                    except Lagged:
                        watch.close()
                        watch = self._index_snapshot("lagged", None)
                        continue
                    except (trio.EndOfChannel, trio.ClosedResourceError):
                        return
                    first = watch.seq - len(batch)
                    for frame in index_frames(batch, first):
                        self._queue(frame)
        finally:
            if watch is not None:
                watch.close()
            if self._index is scope:
                self._index = None

    def _index_snapshot(self, reason: str, cid: str | int | None) -> Cursor[RegistryUpdate]:
        registry = self.feed.registry
        watch = registry.watch()  # attach first: no update can fall in between
        sessions = registry.sessions()
        if reason != "subscribe":
            self.feed.count_resync()
        self._queue(index_snapshot_frame(reason, watch.seq - 1, sessions, cid))
        return watch


def _allowed(command: AnyCommand, session: str) -> bool:
    """What a read token for ``session`` may do."""
    if isinstance(command, Subscribe | Unsubscribe):
        return command.session == session
    return isinstance(command, Ping | Auth)
