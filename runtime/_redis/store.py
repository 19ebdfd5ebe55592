"""The Redis event store: every event of a run also in one stream, readable from any process.

:func:`open_redis_store` connects; a :class:`RedisStore` then

* **writes** a run's log to its stream (:meth:`RedisStore.sink`): a task that
  follows the run's ``EventLog`` through its own cursor and writes each batch
  it receives with one pipelined round of ``XADD`` (a batch is whatever was
  appended since the last write, so at least one read of the model stream).
  The producer never waits for Redis: the in-memory log stays the hot path and
  Redis costs the run nothing when it is not configured;
* **reads** a run from any process (:meth:`RedisStore.follow`, :func:`open_run_reader`):
  a task copies the stream into a local ``EventLog`` (``XREAD BLOCK`` from the
  reader's position), so a reader gets the very same ``Cursor`` API, the same
  ``Lagged`` semantics and the run's terminal outcome.

Rules
-----

Rule 1 (one id per seq). Event ``seq`` is the entry ``0-<seq+1>`` (see
:mod:`runtime._redis.codec`). A batch is written atomically by one Lua script,
and only if it starts at the stream's next seq; otherwise nothing is written
and the sink raises :class:`RunTakenOver`: another process wrote that seq, so
another worker owns the run now. No seq is ever written twice, and no gap is
ever written.

Rule 2 (retention). The run's policy maps to the stream's trimming, applied by
each ``XADD``: ``KeepAll`` trims nothing; ``Ring(capacity)`` is ``MAXLEN ~
capacity`` (Redis keeps at least ``capacity``); ``TrimBehindSlowest`` is ``MINID``
at the local log's ``first_seq`` (what every local cursor, the sink included, has
passed). A reader whose position the stream no longer holds gets one ``Lagged``
with the exact number of events it missed, as with an in-memory ``Ring``.

Rule 3 (terminal outcome). When the run's log closes, the sink writes one
terminal entry: ``done`` or ``cancelled`` end a reader's cursors cleanly
(``EndOfChannel``), ``failed`` re-raises a :class:`RemoteRunError` naming the
original error's type and message. A run abandoned by a dead process has no
terminal entry until another process finishes it.

Rule 4 (what is durable). What reached Redis: the events the sink wrote. The
in-flight batch of a process that dies is lost from the stream unless the run
is resumed (the worker resumes from its last checkpoint and carries on at the
stream's next seq, so no seq is ever written twice).

Rule 5 (expiry). A run's keys expire only once it has ended: the script that
writes the terminal entry also gives the run's stream, checkpoint, cancel key and
tool records the TTL ``keep`` (``0``: none), in one step, so a live run's keys
never carry a TTL and an ended run's all do (they share one hash slot, so this
holds on Redis Cluster too). Nothing written later by this package adds a key
to an ended run: a cancel of an ended run writes nothing (``work`` Rule 4).

Rule 6 (Redis Cluster). A ``redis+cluster://`` URL connects a cluster client.
Every command, transaction and script touches the keys of one run (hash tag
``{<run id>}``) or the deployment-wide keys (hash tag ``{<prefix>}``), never
both, so none fails with ``CROSSSLOT`` (see ``codec.Keys``). The cluster client's
pool gives back the connection slot of every cancelled blocking read (coredis
6.9 alone loses one per cancellation and, ten later, hangs; readers and mirrors
stop by cancellation all the time).
"""

from __future__ import annotations

import contextlib
import functools
import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, final
from urllib.parse import unquote, urlsplit

import trio

from runtime._base.errors import ConfigurationError, RunError
from runtime._base.groups import unwrap_lone_exception
from runtime._redis.codec import (
    Keys,
    RunEnd,
    decode_entry,
    encode_end,
    encode_events,
    entry_id,
    seq_of,
)
from runtime._run.cursor import BATCH_LIMIT, Lagged
from runtime._run.eventlog import EventLog
from runtime._run.retention import KEEP_ALL, Ring, TrimBehindSlowest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    import coredis

    from runtime._run.cursor import Cursor
    from runtime._run.retention import Retention

__all__ = [
    "DEFAULT_BLOCK",
    "RedisStore",
    "RunTakenOver",
    "open_redis_store",
    "open_run_reader",
]

DEFAULT_BLOCK: Final = 5.0
"""Seconds one ``XREAD BLOCK`` waits before it is simply issued again."""

_READ_COUNT: Final = BATCH_LIMIT
_SCHEMES: Final = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")

# Appends entries atomically, and only at the stream's next seq (Rule 1). KEYS: the
# stream, then (for a terminal entry) the run's other keys. ARGV: the first seq, the
# trim kind ("", "MAXLEN" or "MINID"), its threshold, the milliseconds every key
# of KEYS is kept from now on (0: no expiry, Rule 5), then per entry its number
# of field/value strings followed by them.
_APPEND_SCRIPT: Final = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local expect = 0
if #last > 0 then expect = tonumber(string.sub(last[1][1], 3)) end
local first = tonumber(ARGV[1])
if first ~= expect then return redis.error_reply('SEQCONFLICT ' .. expect) end
local i = 5
local seq = first
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local id = '0-' .. (seq + 1)
  local args = {'XADD', KEYS[1]}
  if i + n >= #ARGV and ARGV[2] == 'MAXLEN' then
    args[#args + 1] = 'MAXLEN'; args[#args + 1] = '~'; args[#args + 1] = ARGV[3]
  elseif i + n >= #ARGV and ARGV[2] == 'MINID' then
    args[#args + 1] = 'MINID'; args[#args + 1] = ARGV[3]
  end
  args[#args + 1] = id
  for j = i + 1, i + n do args[#args + 1] = ARGV[j] end
  redis.call(unpack(args))
  i = i + n + 1
  seq = seq + 1
end
local keep = tonumber(ARGV[4])
if keep > 0 then
  for k = 1, #KEYS do redis.call('PEXPIRE', KEYS[k], keep) end
end
return seq
"""


class RunTakenOver(RunError):
    """The stream already holds the seq this process tried to write: another
    worker claimed the run (its lease had expired) and this process must stop it."""


def import_coredis() -> Any:
    """``coredis``, or a ``ConfigurationError`` saying how to install it."""
    try:
        import coredis
    except ImportError as exc:  # pragma: no cover - the extra is installed by make test
        raise ConfigurationError(
            "Redis support needs the coredis package: pip install 'openrouter-trio[redis]'."
        ) from exc
    return coredis


@final
class RedisStore:
    """One Redis connection pool and the key layout of a deployment (a prefix).

    Get one from :func:`open_redis_store`. Safe to share between tasks.

    Attributes:
        client: the ``coredis`` client (bytes in, bytes out); a ``RedisCluster``
            for a ``redis+cluster://`` URL.
        keys: the key names (:class:`runtime._redis.codec.Keys`).
    """

    __slots__ = ("_append", "_block_ms", "client", "keys")

    def __init__(
        self,
        client: coredis.Redis[bytes] | coredis.RedisCluster[bytes],
        keys: Keys,
        *,
        block: float,
    ) -> None:
        self.client = client
        self.keys = keys
        self._append = client.register_script(_APPEND_SCRIPT)
        self._block_ms = max(1, int(block * 1000))

    def __repr__(self) -> str:
        return f"<RedisStore prefix={self.keys.prefix!r}>"

    # -- writing ----------------------------------------------------------------------

    async def append(
        self,
        run_id: str,
        first_seq: int,
        events: Sequence[Any],
        *,
        retention: Retention = KEEP_ALL,
        floor: int = 0,
    ) -> None:
        """Write ``events`` as seqs ``first_seq, first_seq + 1, ...`` in one pipeline.

        Args:
            run_id: the run.
            first_seq: the seq of ``events[0]``.
            events: the events, in order.
            retention: the run's policy, mapped to the stream's trimming (Rule 2).
            floor: for ``TrimBehindSlowest``, the oldest seq to keep.

        Raises:
            RunTakenOver: the stream already holds one of these seqs (Rule 1).
        """
        if events:
            trim = self._trim(retention, floor)
            await self._write(run_id, first_seq, encode_events(events), trim)

    async def end(
        self,
        run_id: str,
        seq: int,
        status: str,
        error: BaseException | None = None,
        *,
        keep: float = 0,
    ) -> None:
        """Write the run's terminal entry at ``seq`` (the seq after its last event).

        Args:
            keep: seconds the run's keys (stream, checkpoint, cancel, tool
                records) are kept from now on, set in the same script as the
                entry (Rule 5); ``0`` keeps them until deleted.

        Raises:
            RunTakenOver: ``seq`` is not the stream's next seq.
            ConfigurationError: a bad ``status`` or ``keep``.
        """
        keep_ms = keep_milliseconds(keep)
        keys = self.keys.run_keys(run_id) if keep_ms else [self.keys.events(run_id)]
        await self._write(
            run_id, seq, [encode_end(status, error)], ("", ""), keys=keys, keep_ms=keep_ms
        )

    async def _write(
        self,
        run_id: str,
        first_seq: int,
        entries: list[dict[bytes, bytes]],
        trim: tuple[str, str],
        *,
        keys: list[str] | None = None,
        keep_ms: int = 0,
    ) -> None:
        args: list[str | bytes | int] = [first_seq, trim[0], trim[1], keep_ms]
        for fields in entries:
            args.append(2 * len(fields))
            for name, value in fields.items():
                args.append(name)
                args.append(value)
        try:
            await self._append(keys=keys or [self.keys.events(run_id)], args=args)
        except import_coredis().exceptions.ResponseError as exc:
            if "SEQCONFLICT" in str(exc):
                raise RunTakenOver(
                    f"run {run_id!r} cannot take seq {first_seq!r} in Redis: another "
                    "process wrote it (the run belongs to another worker now)"
                ) from exc
            raise

    async def sink(
        self,
        run_id: str,
        cursor: Cursor[Any],
        status: Callable[[], str],
        *,
        seq_offset: int = 0,
        retention: Retention = KEEP_ALL,
        floor: Callable[[], int] | None = None,
        keep: float = 0,
    ) -> None:
        """Write every event ``cursor`` yields, then the run's terminal entry (Rule 3).

        Returns once the terminal entry is written. Cancelling it leaves the
        stream without one (the run is not over as far as Redis knows).

        Args:
            run_id: the run.
            cursor: a cursor on the run's log, owned (and closed) by the sink. The
                log's retention must keep events until the sink has read them
                (``KeepAll`` or ``TrimBehindSlowest``, where the cursor pins them).
            status: returns the run's final status once the log is closed
                (``done`` or ``cancelled`` for a clean close).
            seq_offset: added to the local seq (a resumed run's local log starts
                at 0 while its stream goes on).
            retention: the stream's policy (Rule 2).
            floor: the local log's ``first_seq`` for ``TrimBehindSlowest``.
            keep: seconds the run's keys are kept once it ended (Rule 5; 0: forever).

        Raises:
            RunTakenOver: another worker wrote this run's next seq first.
            Lagged: the local log dropped events before the sink read them.
        """
        try:
            while True:
                try:
                    batch = await cursor.receive_batch(_READ_COUNT)
                except trio.EndOfChannel:
                    await self.end(run_id, seq_offset + cursor.seq, status(), keep=keep)
                    return
                except Lagged:
                    raise
                except trio.ClosedResourceError:
                    raise
                except Exception as exc:  # the log was closed with the run's error
                    await self.end(run_id, seq_offset + cursor.seq, "failed", exc, keep=keep)
                    return
                first = seq_offset + cursor.seq - len(batch)
                low = seq_offset + floor() if floor is not None else 0
                await self.append(run_id, first, batch, retention=retention, floor=low)
        finally:
            cursor.close()

    # -- reading ----------------------------------------------------------------------

    async def read(
        self, run_id: str, after: int, *, count: int = _READ_COUNT, block: bool = True
    ) -> list[tuple[int, Any]]:
        """The entries after seq ``after``: ``(seq, event or RunEnd)`` pairs, in order.

        With ``block``, waits (``XREAD BLOCK``) until there is at least one; an
        empty list means the block timed out (call again).
        """
        key = self.keys.events(run_id)
        async with cancelled_connect_guard():
            reply = await self.client.xread(
                {key: entry_id(after)}, count=count, block=self._block_ms if block else None
            )
        if not reply:
            return []
        entries = next(iter(reply.values()))
        return [(seq_of(e.identifier), decode_entry(e.field_values)) for e in entries]

    async def last_seq(self, run_id: str) -> int:
        """The seq of the stream's last entry (terminal entry included); -1 when empty."""
        entries = await self.client.xrevrange(self.keys.events(run_id), count=1)
        return seq_of(entries[0].identifier) if entries else -1

    async def follow(
        self,
        run_id: str,
        log: EventLog[Any],
        *,
        while_read: bool = False,
        progress: Callable[[int], None] | None = None,
        ended: Callable[[RunEnd, int], None] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Copy the run's stream into ``log`` from ``log.next_seq`` on, until the run ends.

        ``log`` is a local mirror: its cursors are the readers. A gap in the
        stream (trimmed before this reader got there) skips the mirror ahead, so
        its cursors see one ``Lagged`` with the exact count (Rule 2). The mirror
        closes with the run's outcome (Rule 3).

        Args:
            run_id: the run.
            log: the mirror.
            while_read: also stop (closing ``log``) once no cursor is attached to it.
            progress: called with the mirror's ``next_seq`` after each read.
            ended: called with the terminal entry and the run's final ``next_seq``.
        """
        task_status.started()
        pos = log.next_seq
        while not while_read or log.statistics().cursors_attached:
            entries = await self.read(run_id, pos - 1)
            batch: list[Any] = []
            for seq, item in entries:
                if seq > pos:
                    log.extend(batch)
                    batch = []
                    log.skip_to(seq)
                if type(item) is RunEnd:
                    log.extend(batch)
                    if ended is not None:
                        ended(item, seq)
                    if item.error is not None:
                        log.close(item.error)
                    else:
                        log.close()
                    return
                batch.append(item)
                pos = seq + 1
            log.extend(batch)
            if progress is not None:
                progress(pos)
        log.close()

    def _trim(self, retention: Retention, floor: int) -> tuple[str, str]:
        if isinstance(retention, Ring):
            return ("MAXLEN", str(retention.capacity))
        if isinstance(retention, TrimBehindSlowest) and floor > 0:
            return ("MINID", entry_id(floor))
        return ("", "")


@asynccontextmanager
async def open_redis_store(
    url: str, *, prefix: str = "ort", block: float = DEFAULT_BLOCK
) -> AsyncIterator[RedisStore]:
    """Connect to Redis (or Valkey) at ``url`` for the block's duration.

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS; a password in the
            URL is never printed by this package), or ``redis+cluster://host:port``
            (``rediss+cluster://``) for a Redis Cluster, given any one of its
            nodes (Rule 6).
        prefix: the prefix of every key (one deployment per prefix).
        block: seconds one blocking read waits before it is re-issued.

    Raises:
        ConfigurationError: a bad URL or prefix, or ``coredis`` is not installed.
    """
    if not isinstance(url, str) or not url.startswith(_SCHEMES):
        raise ConfigurationError(
            "the Redis URL must start with redis://, rediss://, unix://, redis+cluster:// or "
            f"rediss+cluster://, got {_safe(url)!r}."
        )
    if not isinstance(block, int | float) or not 0 < block <= 3600:
        raise ConfigurationError(f"block must be between 0 and 3600 seconds, got {block!r}.")
    keys = Keys(prefix)
    coredis = import_coredis()
    from coredis.retry import NoRetryPolicy

    client: Any
    if url.startswith(("redis+cluster://", "rediss+cluster://")):
        from coredis.exceptions import ClusterDownError
        from coredis.retry import ConstantRetryPolicy

        parts = urlsplit(url)
        # Only a refusal that ran nothing is retried: a write retried after a lost
        # reply could be refused as written by "another" worker (Rule 1).
        client = coredis.RedisCluster(
            startup_nodes=[_cluster_node(url)],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=url.startswith("rediss"),
            retry_policy=ConstantRetryPolicy((ClusterDownError,), retries=2, delay=0.1),
            connection_pool_cls=_cluster_pool_class(),
        )
    else:
        client = coredis.Redis.from_url(url, retry_policy=NoRetryPolicy())
    try:
        async with client:
            yield RedisStore(client, keys, block=block)
    finally:
        _close_layout(client)


_CONNECTION_BUFFERS: Final = (
    "_write_buffer_in",
    "_write_buffer_out",
    "_push_message_buffer_in",
    "_push_message_buffer_out",
    "_streamed_message_buffer_in",
    "_streamed_message_buffer_out",
)


@asynccontextmanager
async def cancelled_connect_guard() -> AsyncIterator[None]:
    """Re-raise as ``Cancelled`` the ``ConnectionError`` coredis raises when a command
    is cancelled while its connection is being opened (so a reader or listener that
    is stopped stops cleanly instead of failing)."""
    try:
        yield
    except import_coredis().exceptions.ConnectionError:
        await trio.lowlevel.checkpoint_if_cancelled()
        raise


@functools.cache
def _cluster_pool_class() -> Any:
    """coredis's cluster pool, returning the slot of every connection it drops, with
    connections that close their buffers even when they never connected.

    In coredis 6.9 a blocking command (``XREAD BLOCK``) that is cancelled closes
    its connection, and the pool then drops that connection without giving its
    slot back: after ten such cancellations on one node (32 connections shared
    by three nodes), every later command to that node waits forever. Readers and
    mirrors stop by cancellation all the time, so this pool puts an empty slot
    back for each connection it drops.
    """
    from coredis._concurrency import QueueFull
    from coredis.connection import ClusterConnection
    from coredis.pool import ClusterConnectionPool

    class BufferClosingConnection(ClusterConnection):
        async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await super().run(task_status=task_status)
            finally:
                # A connection whose connect was cancelled never opens (so never
                # closes) its buffers; the garbage collector then warns.
                for name in _CONNECTION_BUFFERS:
                    buffer = getattr(self, name, None)
                    if buffer is not None:
                        buffer.close()

    class SlotKeepingClusterPool(ClusterConnectionPool):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("connection_class", BufferClosingConnection)
            super().__init__(*args, **kwargs)

        def release(self, connection: Any) -> None:
            usable = connection.usable
            super().release(connection)
            if not usable:
                with contextlib.suppress(QueueFull):
                    self._node_pool(connection.location).append_nowait(None)

    return SlotKeepingClusterPool


def _close_layout(client: Any) -> None:
    """Close the error channel a cluster client's slot layout keeps (coredis 6.9 never
    closes it, and the garbage collector then warns about an unclosed stream)."""
    layout = getattr(getattr(client, "connection_pool", None), "cluster_layout", None)
    for stream in getattr(layout, "_error_stream", ()):
        stream.close()


def _cluster_node(url: str) -> Any:
    """The startup node of a ``redis+cluster://[user:password@]host:port`` URL.

    Raises:
        ConfigurationError: no host, or a port that is not a number.
    """
    from coredis.connection import TCPLocation

    parts = urlsplit(url)
    try:
        port = parts.port or 6379
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        raise ConfigurationError(
            f"a cluster URL must be redis+cluster://host:port, got {_safe(url)!r}."
        )
    return TCPLocation(parts.hostname, port)


def keep_milliseconds(keep: float) -> int:
    """``keep`` seconds as whole milliseconds (at least 1 when positive).

    Raises:
        ConfigurationError: ``keep`` is negative, not finite, or not a number.
    """
    if type(keep) not in (int, float) or not math.isfinite(keep) or keep < 0:
        raise ConfigurationError(
            f"keep must be a number of seconds >= 0 (0: keep forever), got {keep!r}."
        )
    return max(1, int(keep * 1000)) if keep > 0 else 0


def _safe(url: object) -> object:
    """A URL with any password replaced by ``***``."""
    if not isinstance(url, str) or "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    _, _, host = rest.rpartition("@")
    return f"{scheme}://***@{host}"


@asynccontextmanager
async def open_run_reader(
    store: RedisStore, run_id: str, after: int = -1, *, retention: Retention = KEEP_ALL
) -> AsyncIterator[Cursor[Any]]:
    """A cursor on a run that any process wrote, from the event after seq ``after``.

    The same cursor as an in-memory run's (``async for``, ``receive_batch``,
    ``Lagged``, the terminal outcome); the run may be live or finished. The
    block owns a task that follows the stream; leaving the block stops it.

    Args:
        store: the store.
        run_id: the run.
        after: the last seq already seen (``-1``: from the start).
        retention: what the local mirror keeps (``KeepAll`` by default).

    Raises:
        ConfigurationError: ``after`` is not an int >= -1.
    """
    if type(after) is not int or after < -1:
        raise ConfigurationError(f"after must be an int >= -1, got {after!r}.")
    log: EventLog[Any] = EventLog(retention, first_seq=after + 1)
    with unwrap_lone_exception():
        async with trio.open_nursery() as nursery:
            await nursery.start(store.follow, run_id, log)
            cursor = log.cursor(after + 1)
            try:
                yield cursor
            finally:
                cursor.close()
                nursery.cancel_scope.cancel()
