"""Durable runs on Redis: the work queue, leases, checkpoints, tool-call keys, cancel, registry.

The pieces a worker process (``openrouter-trio worker``, composed in
``runtime._cli.worker``) and any client use; each is one or two Redis commands.

Rules
-----

Rule 1 (queue and lease). :func:`submit_run` adds a :class:`Job` to the
``<prefix>:sessions`` stream. Workers read it through one consumer group
(``XREADGROUP``): a job delivered to a worker is in the group's pending list
under that worker's name, and that entry *is* the lease. The worker renews it
(:func:`renew_leases`, which resets the entry's idle time, but only while the
entry is still its own) every third of the lease time. A job whose entry stayed
idle longer than the lease belongs to a lost worker: another worker takes it
over with ``XAUTOCLAIM`` (:func:`claim_expired`). A worker acknowledges
(``XACK`` + ``XDEL``) a job once the run's terminal entry is in its stream. A
worker that stops hands its jobs back (:func:`hand_back`): one script re-adds
each job it still holds to the queue (marked ``handed_back``) and acknowledges
and deletes its old entry, so a waiting worker's ``XREADGROUP`` takes it at once
instead of after the lease; a job another worker claimed meanwhile is not its
own any more and is left alone.

Rule 2 (checkpoints, fenced). At each turn boundary (a model turn answered with
tool calls, before they run) the run's :class:`TurnCheckpoint` replaces the
previous one in the hash ``<prefix>:run:{id}:checkpoint`` (field ``doc``). A
run taken over resumes from it. Each attempt at a run first makes itself the
hash's ``owner`` (:func:`own_run`, a fresh token), then loads the checkpoint; a
save writes only while its attempt is still the owner (one Lua script), so a
worker that lost its lease without knowing yet can never overwrite the new
owner's checkpoint (its save raises ``RunTakenOver`` and the run stops there),
nor take the TTL off an ended run's checkpoint.

Rule 3 (a tool call runs at most once per call id). Before a call runs, its
field in the run's hash ``<prefix>:run:{id}:tools`` is set with ``HSETNX``; the
call's outcome replaces it as soon as the call settles (one hash per run, so the
run's end gives every record the run's TTL at once, ``store`` Rule 5). A call whose key already
existed is not run: its recorded outcome is reused, or, when its process died
while it ran, the model reads an error output saying so (the call may or may
not have had its effect).

Rule 4 (cancel). :func:`cancel_run` first sets ``<prefix>:run:{id}:cancel``
(read by a worker before it starts or resumes a run), unless the run's stream
already holds its terminal entry (one script over the run's keys: an ended run
gets no key without a TTL), then announces the id on the ``{<prefix>}:cancels``
stream, which every worker follows, so a cancel reaches the run on whichever
worker holds it. The two steps are two commands (the keys are in two hash
slots): the key is what makes a cancel durable, the announcement only makes it
prompt, so a client lost between the two leaves a cancel that takes effect when
the run is next started or resumed.

Rule 5 (registry). Workers publish each run's :class:`RunSnapshot` on changes:
the hash ``{<prefix>}:runs`` holds the latest one per run, the stream
``{<prefix>}:registry`` the updates (for feed processes, see ``registry``); both
change in one transaction. A run's final snapshot, published with ``keep``
seconds, also enters the zset ``{<prefix>}:finished`` scored with the time its
entry is due to go (Redis 7.0 has no per-field TTL on a hash);
:func:`prune_finished`, called by every worker now and then, removes the due
runs from the hash and publishes a ``removed`` update for each, in one script.

Rule 6 (Redis Cluster). Every transaction and script here touches the keys of
one hash slot: the run's (``{<run id>}``) or the deployment's (``{<prefix>}``).
Nothing needs both at once: the run's end and its expiry are one script on the
run's slot; its final snapshot follows (Rule 1 of the worker: a worker lost in
between leaves the job pending, and the next one publishes it).
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import msgspec

from runtime._agent.outcomes import ToolOutcome
from runtime._agent.usage import RunUsage
from runtime._base.errors import (
    ConfigurationError,
    InvalidStateError,
    UnsupportedStateVersionError,
)
from runtime._protocol.wire import _dec_hook
from runtime._redis.codec import RunEnd, decode_entry, seq_of
from runtime._redis.state import check_conversation_id
from runtime._run.registry import RegistryUpdate
from runtime._run.retention import KEEP_ALL, KeepAll, Ring, TrimBehindSlowest
from runtime._run.status import CHECKPOINT_VERSION, RunSnapshot, TurnCheckpoint
from runtime._telemetry import trace_carrier

if TYPE_CHECKING:
    from collections.abc import Sequence

    from runtime._protocol.wire import ParsedToolCall
    from runtime._redis.store import RedisStore

__all__ = [
    "INTERRUPTED_TOOL_ERROR",
    "Job",
    "RedisToolGuard",
    "ack_job",
    "cancel_requested",
    "cancel_run",
    "claim_expired",
    "decode_checkpoint",
    "ensure_group",
    "hand_back",
    "load_checkpoint",
    "load_snapshot",
    "load_snapshots",
    "own_run",
    "publish_end",
    "publish_snapshot",
    "prune_finished",
    "renew_leases",
    "save_checkpoint",
    "submit_run",
    "take_jobs",
]

INTERRUPTED_TOOL_ERROR: Final = (
    "this tool call was interrupted when the worker running it was lost; it is not run "
    "twice, and it may or may not have had its effect"
)
_REGISTRY_LEN: Final = 10_000
_ENCODER: Final = msgspec.json.Encoder()


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """One submitted run: what a worker needs to run it.

    Attributes:
        run_id: the run's id (``run_<hex>``), its stream and keys are named by it.
        request: ``call_model`` keyword arguments with JSON values (``model``,
            ``input``, ``instructions``, ``temperature``, ...).
        tools: names of the worker's tools the run may use.
        retention: the run's stream retention (``KeepAll``, ``Ring``).
        submitted_ms: when it was submitted (epoch ms).
        conversation: the id of the conversation the run continues (a
            :class:`~runtime.RedisStateStore` the worker passes as ``state=``), or ``None``.
        trace_context: the submitter's current span (OpenTelemetry text headers,
            ``traceparent``): the run's spans, on any worker, are its children.
        handed_back: a stopping worker handed it back (it may have run part of
            it: a worker that takes it resumes it, Rule 1).
    """

    run_id: str
    request: dict[str, Any]
    tools: list[str] = msgspec.field(default_factory=list)
    retention: KeepAll | Ring | TrimBehindSlowest = KEEP_ALL
    submitted_ms: int = 0
    conversation: str | None = None
    trace_context: dict[str, str] = msgspec.field(default_factory=dict)
    handed_back: bool = False


_JOB_DECODER: Final = msgspec.json.Decoder(Job)
_SNAPSHOT_DECODER: Final = msgspec.json.Decoder(RunSnapshot)
# The wire's hook turns output items (tagged on ``type``) back into their structs.
_CHECKPOINT_DECODER: Final = msgspec.json.Decoder(TurnCheckpoint, dec_hook=_dec_hook)


class _ToolRecord(msgspec.Struct, frozen=True, kw_only=True):
    state: str  # "started" or "done"
    owner: str
    result: Any = None
    error: str | None = None


_TOOL_DECODER: Final = msgspec.json.Decoder(_ToolRecord)


# -- submitting and cancelling (any process) -------------------------------------------


async def submit_run(
    store: RedisStore,
    *,
    tools: Sequence[str] = (),
    retention: KeepAll | Ring = KEEP_ALL,
    conversation: str | None = None,
    **request: Any,
) -> str:
    """Queue one run for the workers; returns its id at once (Rule 1).

    Args:
        store: the store.
        tools: names of tools the workers were started with (``--tools``).
        retention: the run's stream retention (``Ring(n)`` keeps its last n events).
        conversation: continue (or start) this conversation, kept in Redis
            (:class:`~runtime.RedisStateStore`): approvals (``require_approval``,
            then ``approve=``/``reject=`` in a later run), client tools and
            follow-up input work across workers.
        **request: ``call_model`` keyword arguments with JSON values.

    Raises:
        ConfigurationError: no ``model``, a value that is not JSON, a bad
            conversation id, or ``state=`` (use ``conversation=``).
    """
    if "model" not in request:
        raise ConfigurationError("submit_run needs a model=... argument.")
    if "state" in request:
        raise ConfigurationError(
            "submit_run takes conversation='<id>' (kept in Redis), not state=..."
        )
    if conversation is not None:
        check_conversation_id(conversation)
    if isinstance(tools, str) or not all(isinstance(t, str) for t in tools):
        raise ConfigurationError(f"tools must be a list of tool names, got {tools!r}.")
    if not isinstance(retention, KeepAll | Ring):
        raise ConfigurationError(f"retention must be KeepAll() or Ring(n), got {retention!r}.")
    job = Job(
        run_id=f"run_{secrets.token_hex(8)}",
        request=request,
        tools=list(tools),
        retention=retention,
        submitted_ms=time.time_ns() // 1_000_000,
        conversation=conversation,
        trace_context=trace_carrier(),
    )
    try:
        body = _ENCODER.encode(job)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ConfigurationError(f"a submit_run argument is not JSON: {exc}") from exc
    model = request.get("model")
    snap = RunSnapshot(
        id=job.run_id,
        model=model if isinstance(model, str) else None,
        status="queued",
        turn=0,
        usage=RunUsage(),
        tool_calls_executed=0,
        next_seq=0,
    )
    keys = store.keys
    async with store.client.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.sessions, {b"job": body})
        _publish(pipe, store, RegistryUpdate(kind="updated", session=snap))
    return job.run_id


# KEYS: the run's stream, its cancel key. Sets the key unless the run has ended.
_CANCEL_SCRIPT: Final = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  local fields = last[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'end' then return 0 end
  end
end
redis.call('SET', KEYS[2], '1')
return 1
"""
_CANCELS_LEN: Final = 10_000


async def cancel_run(store: RedisStore, run_id: str) -> None:
    """Ask for a run to be cancelled, wherever it runs or will run (Rule 4).

    A run that has already ended is left as it is.
    """
    keys = store.keys
    pending = await store.client.eval(
        _CANCEL_SCRIPT, keys=[keys.events(run_id), keys.cancel(run_id)], args=[]
    )
    if pending:
        await store.client.xadd(
            keys.cancels,
            {b"run": run_id.encode()},
            trim_strategy=_pure().MAXLEN,
            threshold=_CANCELS_LEN,
            trim_operator=_pure().APPROXIMATELY,
        )


async def cancel_requested(store: RedisStore, run_id: str) -> bool:
    """Whether :func:`cancel_run` was called for this run."""
    return bool(await store.client.exists([store.keys.cancel(run_id)]))


# -- the registry ------------------------------------------------------------------------


def _publish(pipe: Any, store: RedisStore, update: RegistryUpdate) -> None:
    keys = store.keys
    body = _ENCODER.encode(update)
    pipe.hset(keys.runs, {update.session.id: _ENCODER.encode(update.session)})
    pipe.xadd(
        keys.registry,
        {b"u": body},
        trim_strategy=_pure().MAXLEN,
        threshold=_REGISTRY_LEN,
        trim_operator=_pure().APPROXIMATELY,
    )


async def publish_snapshot(store: RedisStore, snapshot: RunSnapshot, *, keep: float = 0) -> None:
    """Publish a run's snapshot (Rule 5).

    Args:
        keep: for a run's final snapshot: seconds until :func:`prune_finished`
            removes its entry (``0``: never).
    """
    from runtime._redis.store import keep_milliseconds

    keep_ms = keep_milliseconds(keep)
    async with store.client.pipeline(transaction=True) as pipe:
        _publish(pipe, store, RegistryUpdate(kind="updated", session=snapshot))
        if keep_ms:
            due = time.time_ns() // 1_000_000 + keep_ms
            pipe.zadd(store.keys.finished, {snapshot.id: due})


async def load_snapshot(store: RedisStore, run_id: str) -> RunSnapshot | None:
    """The run's latest published snapshot (Rule 5), or ``None``."""
    body = await store.client.hget(store.keys.runs, run_id)
    return None if body is None else _SNAPSHOT_DECODER.decode(body)


async def load_snapshots(store: RedisStore) -> list[RunSnapshot]:
    """The latest published snapshot of every run (Rule 5), in no particular order."""
    bodies = await store.client.hgetall(store.keys.runs)
    return [_SNAPSHOT_DECODER.decode(body) for body in bodies.values()]


async def publish_end(store: RedisStore, run_id: str, entry: Any, *, keep: float = 0) -> None:
    """Publish the outcome of a run whose terminal ``entry`` was written by a lost worker."""
    end = decode_entry(entry.field_values)
    snap = await load_snapshot(store, run_id)
    if snap is None or type(end) is not RunEnd:
        return
    error = None if end.error is None else repr(end.error)
    final = msgspec.structs.replace(
        snap, status=end.status, error=error, next_seq=seq_of(entry.identifier)
    )
    await publish_snapshot(store, final, keep=keep)


# KEYS: finished (zset), runs (hash), registry (stream). ARGV: now (ms), at most
# how many, the registry's MAXLEN. Removes the due runs; returns how many.
_PRUNE_SCRIPT: Final = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(due) do
  local body = redis.call('HGET', KEYS[2], id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  if body then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
      'u', '{"kind":"removed","session":' .. body .. '}')
  end
end
return #due
"""


async def prune_finished(store: RedisStore, *, limit: int = 256) -> int:
    """Remove the registry entries of runs whose ``keep`` time is over (Rule 5).

    Returns how many were removed (at most ``limit``; call again if it is ``limit``).
    """
    keys = store.keys
    now = time.time_ns() // 1_000_000
    removed = await store.client.eval(
        _PRUNE_SCRIPT, keys=[keys.finished, keys.runs, keys.registry],
        args=[now, limit, _REGISTRY_LEN],
    )  # fmt: skip
    return int(removed)  # type: ignore[arg-type]


def _pure() -> Any:
    from runtime._redis.store import import_coredis

    return import_coredis().PureToken


# -- the queue and the leases (workers) -------------------------------------------------


async def ensure_group(store: RedisStore) -> None:
    """Create the workers' consumer group (and the queue) unless they exist."""
    from runtime._redis.store import import_coredis

    keys = store.keys
    exceptions = import_coredis().exceptions
    try:
        await store.client.xgroup_create(keys.sessions, keys.group, identifier="0", mkstream=True)
    except exceptions.StreamDuplicateConsumerGroupError:
        pass  # another worker created it


def _jobs(entries: Sequence[Any]) -> list[tuple[str, Job]]:
    out = []
    for entry in entries:
        body = entry.field_values.get(b"job")
        if body is not None:
            job = _JOB_DECODER.decode(body)
            if b"handed" in entry.field_values:
                job = msgspec.structs.replace(job, handed_back=True)
            out.append((entry.identifier.decode(), job))
    return out


async def take_jobs(
    store: RedisStore, consumer: str, count: int, block_ms: int
) -> list[tuple[str, Job]]:
    """New jobs for ``consumer`` (``XREADGROUP``), at most ``count``; ``[]`` after ``block_ms``."""
    keys = store.keys
    reply = await store.client.xreadgroup(
        keys.group, consumer, {keys.sessions: ">"}, count=count, block=block_ms
    )
    if not reply:
        return []
    return _jobs(next(iter(reply.values())))


async def claim_expired(
    store: RedisStore, consumer: str, lease_ms: int, count: int
) -> list[tuple[str, Job]]:
    """Jobs whose lease expired (their worker is lost), now ``consumer``'s (``XAUTOCLAIM``)."""
    keys = store.keys
    reply = await store.client.xautoclaim(
        keys.sessions, keys.group, consumer, lease_ms, "0-0", count=count
    )
    return _jobs(reply[1])


_RENEW_SCRIPT: Final = """
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 0 or p[1][2] ~= ARGV[2] then
    lost[#lost + 1] = ARGV[i]
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  end
end
return lost
"""


async def renew_leases(store: RedisStore, consumer: str, entry_ids: Sequence[str]) -> set[str]:
    """Renew ``consumer``'s leases; returns the entry ids it no longer holds (Rule 1)."""
    if not entry_ids:
        return set()
    keys = store.keys
    lost = await store.client.eval(
        _RENEW_SCRIPT, keys=[keys.sessions], args=[keys.group, consumer, *entry_ids]
    )
    return {x.decode() if isinstance(x, bytes) else str(x) for x in lost}  # type: ignore[union-attr]


# KEYS: the queue. ARGV: the group, the consumer, at most how many. Re-adds every
# job the consumer holds (marked "handed"), then acknowledges and deletes its entry.
_HAND_BACK_SCRIPT: Final = """
local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', ARGV[3], ARGV[2])
local n = 0
for _, p in ipairs(held) do
  local entry = redis.call('XRANGE', KEYS[1], p[1], p[1])
  if #entry > 0 then
    local fields = entry[1][2]
    for i = 1, #fields, 2 do
      if fields[i] == 'job' then
        redis.call('XADD', KEYS[1], '*', 'job', fields[i + 1], 'handed', '1')
        n = n + 1
      end
    end
  end
  redis.call('XACK', KEYS[1], ARGV[1], p[1])
  redis.call('XDEL', KEYS[1], p[1])
end
return n
"""


async def hand_back(store: RedisStore, consumer: str, *, limit: int = 10_000) -> int:
    """Give every job ``consumer`` still holds back to the queue (Rule 1); returns how many.

    Call it once the consumer's runs are stopped: a waiting worker takes each
    job at once and resumes it. Jobs another worker claimed are not touched.
    """
    keys = store.keys
    handed = await store.client.eval(
        _HAND_BACK_SCRIPT, keys=[keys.sessions], args=[keys.group, consumer, limit]
    )
    return int(handed)  # type: ignore[arg-type]


async def ack_job(store: RedisStore, entry_id: str) -> None:
    """The job's run has ended (its terminal entry is written): drop it from the queue."""
    keys = store.keys
    async with store.client.pipeline(transaction=True) as pipe:
        pipe.xack(keys.sessions, keys.group, [entry_id])
        pipe.xdel(keys.sessions, [entry_id])


# -- checkpoints and tool keys -----------------------------------------------------------


_SAVE_CHECKPOINT_SCRIPT: Final = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return redis.error_reply('NOTOWNER') end
redis.call('HSET', KEYS[1], 'doc', ARGV[2])
return 1
"""


async def own_run(store: RedisStore, run_id: str, owner: str) -> str:
    """Make this attempt the run's owner (Rule 2); returns its token.

    Call it before :func:`load_checkpoint`: every later save of an earlier
    attempt is refused.
    """
    token = f"{owner}:{secrets.token_hex(6)}"
    await store.client.hset(store.keys.checkpoint(run_id), {"owner": token})
    return token


async def save_checkpoint(
    store: RedisStore, run_id: str, token: str, checkpoint: TurnCheckpoint
) -> None:
    """Replace the run's checkpoint, if ``token`` still owns the run (Rule 2).

    Raises:
        RunTakenOver: another attempt owns the run now; nothing was written.
    """
    from runtime._redis.store import RunTakenOver, import_coredis

    try:
        await store.client.eval(
            _SAVE_CHECKPOINT_SCRIPT,
            keys=[store.keys.checkpoint(run_id)],
            args=[token, _ENCODER.encode(checkpoint)],
        )
    except import_coredis().exceptions.ResponseError as exc:
        if "NOTOWNER" not in str(exc):
            raise
        raise RunTakenOver(
            f"run {run_id!r} has another owner now (its lease was taken over); "
            "this attempt's checkpoint was not written"
        ) from None


async def load_checkpoint(store: RedisStore, run_id: str) -> TurnCheckpoint | None:
    """The run's last checkpoint, or ``None``.

    Raises:
        UnsupportedStateVersionError: the checkpoint was written by a release with
            another checkpoint format (the run cannot be resumed by this worker).
        InvalidStateError: the checkpoint is not a checkpoint.
    """
    body = await store.client.hget(store.keys.checkpoint(run_id), "doc")
    return None if body is None else decode_checkpoint(body)


class _Version(msgspec.Struct):
    version: int = 1


def decode_checkpoint(body: bytes) -> TurnCheckpoint:
    """A checkpoint from its JSON (see :func:`load_checkpoint` for the errors)."""
    try:
        version = msgspec.json.decode(body, type=_Version).version
        if version != CHECKPOINT_VERSION:
            raise UnsupportedStateVersionError(
                f"checkpoint version {version} cannot be read by this release "
                f"(it reads version {CHECKPOINT_VERSION}); let runs end before upgrading workers",
                version=version,
            )
        return _CHECKPOINT_DECODER.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise InvalidStateError(f"a run checkpoint is malformed: {exc}") from None


class RedisToolGuard:
    """A run's tool-call keys (Rule 3); the session calls ``claim`` and ``record``."""

    __slots__ = ("_owner", "_run_id", "_store")

    def __init__(self, store: RedisStore, run_id: str, owner: str) -> None:
        self._store = store
        self._run_id = run_id
        self._owner = owner

    async def claim(self, calls: Sequence[ParsedToolCall]) -> dict[str, ToolOutcome]:
        """Claim every call; returns the outcomes of calls claimed before (not to run)."""
        if not calls:
            return {}
        key = self._store.keys.tools(self._run_id)
        started = _ENCODER.encode(_ToolRecord(state="started", owner=self._owner))
        async with self._store.client.pipeline(transaction=False) as pipe:
            answers = [pipe.hsetnx(key, c.id, started) for c in calls]
        taken = [c for c, answer in zip(calls, answers, strict=True) if not await answer]
        if not taken:
            return {}
        bodies = await self._store.client.hmget(key, [c.id for c in taken])
        settled: dict[str, ToolOutcome] = {}
        for call, body in zip(taken, bodies, strict=True):
            record = _TOOL_DECODER.decode(body) if body is not None else None
            if record is not None and record.state == "done":
                settled[call.id] = ToolOutcome(call=call, result=record.result, error=record.error)
            else:
                settled[call.id] = ToolOutcome(call=call, error=INTERRUPTED_TOOL_ERROR)
        return settled

    async def record(self, outcome: ToolOutcome) -> None:
        """Store the outcome of a call this process ran, as soon as it is settled."""
        record = _ToolRecord(
            state="done", owner=self._owner, result=outcome.result, error=outcome.error
        )
        key = self._store.keys.tools(self._run_id)
        await self._store.client.hset(key, {outcome.call.id: _ENCODER.encode(record)})
