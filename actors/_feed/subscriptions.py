"""The subscriptions of a feed connection, and the watches that wake them.

A :class:`Sub` is one followed session of one connection: a cursor on the
session's log and how to frame its events (envelope, batching, type filter).
It is not a task: the connection's writer reads it when the socket can take
more (``actors._feed.connection`` Rule 1). A subscription that caught up with
its log waits on the session's :class:`Watch`, one task per followed session
that learns of the log's news with a cursor of its own and marks the waiting
subscriptions ready (Rule 2 there). A :class:`Group` is a ``subscribe_all``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, final

import trio

from actors._feed.protocol import type_filter
from runtime._run.cursor import Lagged

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors._feed.connection import FeedConnection
    from actors._feed.protocol import FrameCache, SubscribeAll
    from runtime._run.cursor import Cursor

__all__ = ["Group", "Sub", "Watch", "Watches"]

# Events the watch's cursor takes per wake-up (it only needs to learn of news).
_WATCH_BATCH: Final = 4096


# -- session watches -----------------------------------------------------------------


@final
class Watch:
    """Wakes the subscriptions of one session that caught up with its log (Rule 2)."""

    __slots__ = ("done", "scope", "session", "users", "waiting")

    def __init__(self, session: str) -> None:
        self.session = session
        self.waiting: list[Sub] = []
        self.users = 0
        self.done = False
        self.scope = trio.CancelScope()

    def wait(self, sub: Sub) -> None:
        """Mark ``sub`` ready at the log's next news (at once if the log ended)."""
        if self.done:
            sub.conn.mark_ready(sub)
        else:
            self.waiting.append(sub)

    def _notify(self) -> None:
        waiting = self.waiting
        if waiting:
            self.waiting = []
            for sub in waiting:
                if not sub.closed:
                    sub.conn.mark_ready(sub)

    async def run(self, cursor: Cursor[Any]) -> None:
        """Follow the log until it ends or the last user leaves; wake waiters on news."""
        try:
            with self.scope:
                while True:
                    try:
                        await cursor.receive_batch(_WATCH_BATCH)
                    except Lagged:
                        pass
                    except (trio.EndOfChannel, trio.ClosedResourceError):
                        return
                    except Exception:
                        return  # the run failed: its log re-raises the error at the end
                    self._notify()
        finally:
            cursor.close()
            self.done = True
            self._notify()


@final
class Watches:
    """The :class:`Watch` tasks of one owner (the feed, or a lone connection)."""

    __slots__ = ("_nursery", "_watches")

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._watches: dict[str, Watch] = {}

    def attach(self, session: str, open_cursor: Callable[[], Cursor[Any]]) -> Watch:
        """The session's watch (started with ``open_cursor()`` if new), one more user."""
        watch = self._watches.get(session)
        if watch is None:
            watch = self._watches[session] = Watch(session)
            self._nursery.start_soon(watch.run, open_cursor(), name=f"feed watch {session}")
        watch.users += 1
        return watch

    def detach(self, watch: Watch) -> None:
        watch.users -= 1
        if not watch.users:
            watch.scope.cancel()
            if self._watches.get(watch.session) is watch:
                del self._watches[watch.session]


# -- subscriptions -------------------------------------------------------------------


@final
class Sub:
    """One followed session of one connection: a cursor and how to frame its events."""

    __slots__ = (
        "accept",
        "batch",
        "cache",
        "closed",
        "compact",
        "conn",
        "cursor",
        "group",
        "last",
        "pending",
        "ready",
        "session",
        "watch",
    )

    def __init__(
        self,
        conn: FeedConnection,
        session: str,
        cursor: Cursor[Any],
        *,
        last: int,
        accept: Callable[[str], bool] | None,
        batch: bool,
        compact: bool,
        group: Group | None,
    ) -> None:
        self.conn = conn
        self.session = session
        self.cursor = cursor
        self.last = last  # the seq of the last event handed to the client (or skipped)
        self.accept = accept
        self.batch = batch
        self.compact = compact
        self.group = group
        self.cache: FrameCache = conn.feed.cache(session)
        self.watch: Watch | None = None
        self.pending: list[Any] | None = None  # events read by the subscribe probe
        self.ready = False
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.cursor.close()
        feed = self.conn.feed
        feed.uncache(self.session)
        if self.watch is not None:
            self.conn.watches().detach(self.watch)
            self.watch = None


@final
class Group:
    """A ``subscribe_all``: every listed session, now and later, with one filter."""

    __slots__ = ("accept", "batch", "compact", "replay", "scope", "seen", "subs")

    def __init__(self, command: SubscribeAll) -> None:
        self.accept = type_filter(command.types)
        self.batch = command.batch
        self.compact = command.envelope == "compact"
        self.replay = command.replay
        self.scope = trio.CancelScope()
        self.subs: dict[str, Sub] = {}
        self.seen: set[str] = set()
