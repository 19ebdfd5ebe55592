"""A session registry of every run in Redis, for the websocket feed of any process.

:func:`open_redis_registry` gives a :class:`RedisRegistry`: the
``SessionRegistry`` protocol the feed (``actors._feed``) serves, backed by what
the workers publish (``runtime._redis.work`` Rule 5) and by the runs' streams.
Any number of feed processes can each hold one, and each follows any run.

Rules
-----

Rule 1 (listing). At start the registry reads the latest snapshot of every run
(the ``<prefix>:runs`` hash), then follows the ``<prefix>:registry`` stream from
the last update it had before reading the hash, so no update falls in between
(an update read twice is a full snapshot applied again: harmless). Every update
is also appended to a local ``Ring`` log that :meth:`RedisRegistry.watch`
cursors read, as with a ``SessionPool``.

Rule 2 (events). Each run read in this process has one local mirror of its
stream, shared by every cursor :meth:`RedisRegistry.events` returns for it (the
feed wakes a subscription through a second cursor on the same log, so they
must share it). The mirror starts at the first reader's ``from_seq`` and keeps
a ``Ring`` of ``mirror_size`` events: a reader asking for older events, or
falling further behind, gets ``Lagged`` and the feed resyncs it. One task per
mirror copies the stream (``XREAD BLOCK``); it stops when the run ends or when
no cursor reads the mirror any more, and a later reader starts a new one.

Rule 3 (positions). A run's ``next_seq`` in :meth:`snapshot` is the larger of the
last published one and the furthest any mirror of this process has read, so a
client that resumes with ``after=<last seq seen>`` is never told it is ahead;
once a mirror read the run's terminal entry, that entry's outcome is the
snapshot's status even before the worker's last snapshot arrives.
``events`` also accepts a ``from_seq`` beyond the published ``next_seq`` of a
run that has not ended: the mirror waits for those events.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, final

import msgspec
import trio

from runtime._base.errors import ConfigurationError
from runtime._base.groups import unwrap_lone_exception
from runtime._redis.store import cancelled_connect_guard
from runtime._redis.work import load_snapshots
from runtime._run.eventlog import EventLog
from runtime._run.registry import RegistryUpdate
from runtime._run.retention import Ring
from runtime._run.status import FINISHED, RunSnapshot

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime._redis.codec import RunEnd
    from runtime._redis.store import RedisStore
    from runtime._run.cursor import Cursor

__all__ = ["DEFAULT_MIRROR_SIZE", "RedisRegistry", "open_redis_registry"]

DEFAULT_MIRROR_SIZE: Final = 8192
"""Events a mirror keeps for its slowest subscriber (Rule 2)."""

_UPDATE_DECODER: Final = msgspec.json.Decoder(RegistryUpdate)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@final
class RedisRegistry:
    """Every run published in one Redis deployment, as a ``SessionRegistry``.

    Get one from :func:`open_redis_registry`. All methods are synchronous and not
    checkpoints (the protocol's contract); the Redis I/O happens in the tasks of
    the block that opened it.
    """

    __slots__ = (
        "_ends",
        "_heads",
        "_mirror_size",
        "_mirrors",
        "_nursery",
        "_runs",
        "_store",
        "_updates",
    )

    def __init__(
        self, store: RedisStore, nursery: trio.Nursery, *, mirror_size: int, update_buffer: int
    ) -> None:
        self._store = store
        self._nursery = nursery
        self._mirror_size = mirror_size
        self._runs: dict[str, RunSnapshot] = {}  # in first-seen order
        self._heads: dict[str, int] = {}  # furthest next_seq read by a mirror (Rule 3)
        self._ends: dict[str, RunEnd] = {}  # terminal entries read by a mirror (Rule 3)
        self._mirrors: dict[str, EventLog[Any]] = {}  # one per run while it is read (Rule 2)
        self._updates: EventLog[RegistryUpdate] = EventLog(Ring(update_buffer))

    def __repr__(self) -> str:
        return f"<RedisRegistry {self._store!r} runs={len(self._runs)!r}>"

    def sessions(self) -> list[RunSnapshot]:
        """Snapshots of every listed run, oldest first."""
        return [self._fresh(snap) for snap in self._runs.values()]

    def snapshot(self, run_id: str) -> RunSnapshot:
        """The snapshot of one run; ``KeyError`` if it is not listed."""
        try:
            return self._fresh(self._runs[run_id])
        except KeyError:
            raise KeyError(f"No session with id {run_id!r} is listed in Redis.") from None

    def events(self, run_id: str, from_seq: int = 0) -> Cursor[Any]:
        """A cursor on a local mirror of the run's stream from ``from_seq`` (Rule 2).

        Raises:
            KeyError: the run is not listed.
            ConfigurationError: ``from_seq`` is negative, or beyond the end of a
                run that has ended.
        """
        snap = self.snapshot(run_id)
        if type(from_seq) is not int or from_seq < 0:
            raise ConfigurationError(f"from_seq must be an int >= 0, got {from_seq!r}.")
        if snap.status in FINISHED and from_seq > snap.next_seq:
            raise ConfigurationError(
                f"from_seq must be at most {snap.next_seq!r} for the finished session "
                f"{run_id!r}, got {from_seq!r}."
            )
        log = self._mirrors.get(run_id)
        if log is None:
            log = EventLog(Ring(self._mirror_size), first_seq=from_seq)
            self._mirrors[run_id] = log
            self._nursery.start_soon(self._mirror, run_id, log, name=f"mirror {run_id}")
        elif from_seq > log.next_seq:
            raise ConfigurationError(
                f"from_seq {from_seq!r} of session {run_id!r} is ahead of this process's copy "
                f"of its stream (at {log.next_seq!r}); ask again in a moment."
            )
        return log.cursor(from_seq)

    def watch(self) -> Cursor[RegistryUpdate]:
        """A new cursor over registry updates from now on (may raise ``Lagged``)."""
        return self._updates.cursor(self._updates.next_seq)

    # -- internals ------------------------------------------------------------------------

    def _fresh(self, snap: RunSnapshot) -> RunSnapshot:
        head = self._heads.get(snap.id, 0)
        if head > snap.next_seq:
            snap = msgspec.structs.replace(snap, next_seq=head)
        end = self._ends.get(snap.id)
        if end is not None and snap.status not in FINISHED:
            error = None if end.error is None else repr(end.error)
            snap = msgspec.structs.replace(snap, status=end.status, error=error)
        return snap

    def _apply(self, update: RegistryUpdate) -> None:
        run = update.session
        if update.kind == "removed":
            self._runs.pop(run.id, None)
            self._heads.pop(run.id, None)
            self._ends.pop(run.id, None)
        else:
            self._runs[run.id] = run
        if not self._updates.closed:
            self._updates.append(msgspec.structs.replace(update, session=self._fresh(run)))

    async def _load(self) -> str:
        """Rule 1: the position to follow from, then every run's latest snapshot."""
        keys = self._store.keys
        client = self._store.client
        tail = await client.xrevrange(keys.registry, count=1)
        last = _text(tail[0].identifier) if tail else "0-0"
        for snap in await load_snapshots(self._store):
            self._runs[snap.id] = snap
        return last

    async def _follow(self, last: str) -> None:
        keys = self._store.keys
        client = self._store.client
        while True:
            async with cancelled_connect_guard():
                reply = await client.xread({keys.registry: last}, count=512, block=5000)
            for entry in next(iter(reply.values())) if reply else ():
                last = _text(entry.identifier)
                body = entry.field_values.get(b"u")
                if body is not None:
                    self._apply(_UPDATE_DECODER.decode(body))

    async def _mirror(self, run_id: str, log: EventLog[Any]) -> None:
        """Rule 2: copy the stream into ``log`` until the run ends or nobody reads it."""
        heads = self._heads

        def progress(pos: int) -> None:
            if pos > heads.get(run_id, 0) and run_id in self._runs:
                heads[run_id] = pos

        def ended(end: RunEnd, pos: int) -> None:
            progress(pos)
            if run_id in self._runs:
                self._ends[run_id] = end

        try:
            await self._store.follow(run_id, log, while_read=True, progress=progress, ended=ended)
        finally:
            if self._mirrors.get(run_id) is log and not log.statistics().cursors_attached:
                del self._mirrors[run_id]


@asynccontextmanager
async def open_redis_registry(
    store: RedisStore,
    *,
    mirror_size: int = DEFAULT_MIRROR_SIZE,
    update_buffer: int = 4096,
) -> AsyncIterator[RedisRegistry]:
    """Follow every run of ``store``'s deployment for the block's duration.

    Pass the registry to ``serve_event_feed`` / ``serve_dashboard``: the feed then
    lists and follows every run any worker runs (Rules 1-3).

    Raises:
        ConfigurationError: ``mirror_size`` or ``update_buffer`` is below 1.
    """
    for name, value in (("mirror_size", mirror_size), ("update_buffer", update_buffer)):
        if type(value) is not int or value < 1:
            raise ConfigurationError(f"{name} must be a positive int, got {value!r}.")
    with unwrap_lone_exception():
        async with trio.open_nursery() as nursery:
            registry = RedisRegistry(
                store, nursery, mirror_size=mirror_size, update_buffer=update_buffer
            )
            last = await registry._load()
            nursery.start_soon(registry._follow, last, name="registry follower")
            try:
                yield registry
            finally:
                registry._updates.close()
                nursery.cancel_scope.cancel()
