"""``openrouter-trio worker --redis URL``: a process that runs submitted sessions durably.

A composition root (the ``OpenRouter`` client, actors through it, the Redis store).
Many worker processes, on any machines, share one Redis: each takes jobs from
the consumer group, runs them as ordinary runs of its client, and writes every
event to the run's stream (``runtime._redis``). See ``docs/guides/scale-out.md``.

Rules
-----

Rule 1 (tasks). One nursery: the intake (``XREADGROUP``, as many jobs as free
slots), the claimer (``XAUTOCLAIM`` of jobs whose lease expired, every half
lease; it also prunes the registry entries of expired runs), the lease renewer
(every third of a lease), the cancel listener, the snapshot sampler, and one
task per run. A run's task owns a nursery with the run and its sink; its
cancel scope is the run's *fence*: cancelled when the lease is lost or when a
checkpoint save is refused (another attempt owns the run: ``work.own_run``), it
stops the run without writing an outcome (another worker owns the run now).

Rule 2 (what a run's end means). The job is acknowledged only after the run's
terminal entry is in its stream; then the run's final snapshot is published,
after any earlier one of that run (one lock per run orders them), with the
run's expiry (``keep_finished``: the terminal entry gave the run's keys their
TTL, the final snapshot schedules its registry entry's removal). Every way a
run ends (run, failed before it started, cancelled before it started) goes
through the same three steps. A worker that crashes (SIGKILL, power) leaves its
jobs pending; once their leases expire another worker resumes each from its
last checkpoint, at the stream's next seq, after a ``turn.retry`` event.

Rule 3 (cancel). A cancel request reaches the run wherever it runs: the run ends
``cancelled`` (its log closes cleanly and the sink writes that outcome).

Rule 4 (stopping). A worker stops when its ``run_worker`` is cancelled
(``worker_command``: on SIGINT or SIGTERM). Cancelling the nursery stops the
intake and the claimer and fences every run (nothing more is written for
them); only then, shielded and bounded by ``hand_back`` seconds, it hands its
jobs back (``work.hand_back``), so another worker resumes them at once rather
than after the lease. The intake's blocking ``XREADGROUP`` (at most
``min(lease / 3, 0.5 s)``) is shielded and let finish: a read abandoned by the client
stays blocked in Redis, which would later deliver a job to this stopped worker,
where it would wait for its lease to expire; finished, its jobs are this
worker's and are handed back with the others. If Redis cannot be reached in that time the jobs stay
pending and their leases expire as after a crash.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import signal
import socket
from typing import TYPE_CHECKING, Any, Final, final

import msgspec
import trio

from runtime._base.errors import ConfigurationError, StateError
from runtime._cli.redis_url import add_redis_argument
from runtime._client.client import OpenRouter
from runtime._redis.state import RedisStateStore
from runtime._redis.store import RunTakenOver, cancelled_connect_guard, open_redis_store
from runtime._redis.work import (
    RedisToolGuard,
    ack_job,
    cancel_requested,
    claim_expired,
    ensure_group,
    hand_back,
    load_checkpoint,
    own_run,
    prune_finished,
    publish_end,
    publish_snapshot,
    renew_leases,
    save_checkpoint,
    take_jobs,
)
from runtime._run.retention import TrimBehindSlowest
from runtime._telemetry import remote_parent

if TYPE_CHECKING:
    import argparse

    from runtime._agent.tools import Tool
    from runtime._client.result import ModelResult
    from runtime._redis.store import RedisStore
    from runtime._redis.work import Job
    from runtime._run.status import RunSnapshot, TurnCheckpoint

__all__ = ["WorkerOptions", "add_worker_parser", "load_tools", "run_worker", "worker_command"]

DEFAULT_LEASE: Final = 10.0
DEFAULT_KEEP_FINISHED: Final = 7 * 24 * 3600.0
"""A week: long enough to read a run's events after a weekend, short enough
that a busy deployment's Redis does not grow without bound."""
DEFAULT_HAND_BACK: Final = 5.0
_UPDATE_INTERVAL: Final = 0.25


class WorkerOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a worker runs.

    Attributes:
        name: its consumer name in the group (unique per live worker).
        concurrency: runs at once.
        lease: seconds after which a silent worker's runs are taken over.
        keep_finished: seconds an ended run's keys and registry entry are kept
            (``0``: until deleted by hand).
        hand_back: seconds a stopping worker may spend handing its jobs back
            (Rule 4); ``0`` hands nothing back (its leases expire instead).
    """

    name: str
    concurrency: int = 16
    lease: float = DEFAULT_LEASE
    keep_finished: float = DEFAULT_KEEP_FINISHED
    hand_back: float = DEFAULT_HAND_BACK

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() for c in self.name):
            raise ConfigurationError(f"name must be a word, got {self.name!r}.")
        if type(self.concurrency) is not int or self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be >= 1, got {self.concurrency!r}.")
        if not (math.isfinite(self.lease) and 0.3 <= self.lease <= 3600):
            raise ConfigurationError(
                f"lease must be between 0.3 and 3600 seconds, got {self.lease!r}."
            )
        if not (math.isfinite(self.keep_finished) and self.keep_finished >= 0):
            raise ConfigurationError(
                "keep_finished must be a number of seconds >= 0 (0: forever), "
                f"got {self.keep_finished!r}."
            )
        if not (math.isfinite(self.hand_back) and 0 <= self.hand_back <= 600):
            raise ConfigurationError(
                f"hand_back must be between 0 and 600 seconds, got {self.hand_back!r}."
            )


@final
class _Run:
    __slots__ = ("ended", "entry_id", "fence", "last", "offset", "publishing", "result")

    def __init__(self, entry_id: str, result: ModelResult, offset: int) -> None:
        self.entry_id = entry_id
        self.result = result
        self.offset = offset
        self.fence = trio.CancelScope()
        self.last: tuple[object, ...] = ()
        self.ended = False  # the terminal entry is in the stream
        # Publishes of one run go out one at a time, the last one last.
        self.publishing = trio.Lock()

    async def publish(self, store: RedisStore, *, final: bool = False, keep: float = 0) -> None:
        async with self.publishing:
            if self.ended and not final:
                return  # the final snapshot is (being) published: never overwrite it
            snap = self.snapshot()
            self.last = (snap.status, snap.turn, snap.usage, snap.tool_calls_executed)
            await publish_snapshot(store, snap, keep=keep if final else 0)

    def snapshot(self) -> RunSnapshot:
        snap = self.result.snapshot()
        return msgspec.structs.replace(snap, next_seq=self.offset + snap.next_seq)


@final
class _Worker:
    def __init__(
        self, store: RedisStore, client: OpenRouter, tools: dict[str, Tool], options: WorkerOptions
    ) -> None:
        self.store = store
        self.client = client
        self.tools = tools
        self.options = options
        self.lease_ms = max(1, int(options.lease * 1000))
        self.limiter = trio.CapacityLimiter(options.concurrency)
        self.runs: dict[str, _Run] = {}  # run id -> run, while this worker holds it
        self.busy: set[str] = set()  # queue entry ids being handled here

    async def intake(self, nursery: trio.Nursery) -> None:
        block_ms = min(self.lease_ms // 3, 500)
        while True:
            async with self.limiter:  # wait for a free slot
                pass
            free = int(self.limiter.available_tokens)
            # Not cut short (Rule 4): Redis would still deliver jobs to a read this
            # worker abandoned, after it handed its jobs back.
            with trio.CancelScope(shield=True):
                jobs = await take_jobs(self.store, self.options.name, free, block_ms)
            await trio.lowlevel.checkpoint_if_cancelled()
            for entry_id, job in jobs:
                self.start(nursery, entry_id, job, claimed=False)

    async def claimer(self, nursery: trio.Nursery) -> None:
        while True:
            await trio.sleep(self.options.lease / 2)
            await prune_finished(self.store)
            free = int(self.limiter.available_tokens)
            if not free:
                continue
            for entry_id, job in await claim_expired(
                self.store, self.options.name, self.lease_ms, free
            ):
                if entry_id not in self.busy:
                    self.start(nursery, entry_id, job, claimed=True)

    async def renewer(self) -> None:
        while True:
            await trio.sleep(self.options.lease / 3)
            held = {run.entry_id: run for run in self.runs.values()}
            for entry_id in await renew_leases(self.store, self.options.name, list(held)):
                held[entry_id].fence.cancel()  # another worker owns it now (Rule 1)

    async def cancels(self) -> None:
        keys = self.store.keys
        last = "$"
        while True:
            async with cancelled_connect_guard():
                reply = await self.store.client.xread({keys.cancels: last}, count=256, block=5000)
            for entry in next(iter(reply.values())) if reply else ():
                last = _text(entry.identifier)
                run = self.runs.get(_text(entry.field_values.get(b"run", b"")))
                if run is not None:
                    run.result.cancel()

    async def sampler(self) -> None:
        while True:
            await trio.sleep(_UPDATE_INTERVAL)
            for run in list(self.runs.values()):
                snap = run.snapshot()
                key = (snap.status, snap.turn, snap.usage, snap.tool_calls_executed)
                if key != run.last:
                    await run.publish(self.store)

    def start(self, nursery: trio.Nursery, entry_id: str, job: Job, *, claimed: bool) -> None:
        self.limiter.acquire_on_behalf_of_nowait(entry_id)
        self.busy.add(entry_id)
        nursery.start_soon(self.handle, entry_id, job, claimed, name=f"run {job.run_id}")

    async def handle(self, entry_id: str, job: Job, claimed: bool) -> None:
        try:
            await self._handle(entry_id, job, claimed)
        finally:
            self.runs.pop(job.run_id, None)
            self.busy.discard(entry_id)
            self.limiter.release_on_behalf_of(entry_id)

    async def _handle(self, entry_id: str, job: Job, claimed: bool) -> None:
        store = self.store
        run_id = job.run_id
        keep = self.options.keep_finished
        tail = await store.client.xrevrange(store.keys.events(run_id), count=1)
        if tail and b"end" in tail[0].field_values:
            # It ended; its worker died before acknowledging and publishing it.
            await self.finished(entry_id, run_id)
            return
        offset = (await store.last_seq(run_id)) + 1 if tail else 0
        if await cancel_requested(store, run_id):
            await store.end(run_id, offset, "cancelled", keep=keep)
            await self.finished(entry_id, run_id)
            return
        unknown = [name for name in job.tools if name not in self.tools]
        try:
            token = await own_run(store, run_id, self.options.name)  # fences older attempts
            checkpoint = await load_checkpoint(store, run_id)
            if unknown:
                raise ConfigurationError(
                    f"this worker has no tool named {unknown[0]!r} (it has {sorted(self.tools)})"
                )
            if job.conversation is not None:
                state = RedisStateStore(store, job.conversation)
                request = {**job.request, "state": state}
            else:
                request = job.request
            result = self.client.call_model(
                **request,
                tools=[self.tools[name] for name in job.tools],
                retention=TrimBehindSlowest(),
            )
        except (ConfigurationError, StateError) as exc:
            await store.end(run_id, offset, "failed", exc, keep=keep)
            await self.finished(entry_id, run_id)
            return
        result._durable(
            run_id,
            checkpoint=functools.partial(self.checkpoint, run_id, token),
            resume=checkpoint,
            resumed=claimed or offset > 0 or job.handed_back,
            tool_guard=RedisToolGuard(store, run_id, self.options.name),
        )
        run = _Run(entry_id, result, offset)
        self.runs[run_id] = run
        if await cancel_requested(store, run_id):
            # Asked while this attempt started, before the listener could find the run.
            result.cancel()
        taken_over = False
        with run.fence:
            try:
                async with trio.open_nursery() as nursery:
                    with remote_parent(job.trace_context):  # the submitter's trace
                        result._start_via(
                            functools.partial(nursery.start_soon, name=f"{run_id} loop")
                        )
                    await run.publish(store)
                    await store.sink(
                        run_id,
                        result.events(0),
                        lambda: result.snapshot().status,
                        seq_offset=offset,
                        retention=job.retention,
                        keep=keep,
                    )
                    run.ended = True
            except* RunTakenOver:
                taken_over = True  # Rule 1: the run is another worker's now
        if taken_over or not run.ended:
            return  # taken over, or the lease was lost (fence) before the end
        # The run has ended in Redis: stop renewing its lease, then acknowledge it
        # and publish its final snapshot, whatever the renewer decides meanwhile.
        self.runs.pop(run_id, None)
        await ack_job(store, entry_id)
        await run.publish(store, final=True, keep=keep)

    async def checkpoint(self, run_id: str, token: str, checkpoint: TurnCheckpoint) -> None:
        """The run's turn-boundary hook: save, or stop the run if it has another owner."""
        try:
            await save_checkpoint(self.store, run_id, token, checkpoint)
        except RunTakenOver:
            # As a lost lease does (Rule 1): stop without writing anything more.
            run = self.runs.get(run_id)
            if run is not None:
                run.fence.cancel()
            await trio.lowlevel.checkpoint()

    async def finished(self, entry_id: str, run_id: str) -> None:
        """Acknowledge a run that ended without running here, and publish its outcome."""
        tail = await self.store.client.xrevrange(self.store.keys.events(run_id), count=1)
        await ack_job(self.store, entry_id)
        if tail:
            await publish_end(self.store, run_id, tail[0], keep=self.options.keep_finished)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def run_worker(
    store: RedisStore,
    client: OpenRouter,
    tools: list[Tool],
    options: WorkerOptions,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Take and run jobs until cancelled (startable: ready once the group exists).

    Cancelling it stops the worker: its runs are fenced, then its jobs are
    handed back to the queue (Rule 4).
    """
    await ensure_group(store)
    worker = _Worker(store, client, {t.name: t for t in tools}, options)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker.renewer, name="lease renewer")
            nursery.start_soon(worker.cancels, name="cancel listener")
            nursery.start_soon(worker.sampler, name="snapshot sampler")
            nursery.start_soon(worker.claimer, nursery, name="claimer")
            nursery.start_soon(worker.intake, nursery, name="intake")
            task_status.started()
    finally:
        # Every task of the nursery has finished: no run of this worker writes
        # any more. Hand the jobs back, even though the worker is being cancelled.
        if options.hand_back > 0:
            with trio.CancelScope(shield=True), trio.move_on_after(options.hand_back):
                await _hand_back(store, options.name)


async def _hand_back(store: RedisStore, name: str) -> None:
    """Rule 4; an unreachable Redis leaves the jobs to expire as after a crash."""
    from runtime._redis.store import import_coredis

    try:
        await hand_back(store, name)
    except (OSError, import_coredis().exceptions.RedisError):
        pass  # the leases expire: the same outcome as a crash, later


def load_tools(spec: str, *, steps: int = 5, delay: float = 0.0) -> list[Tool]:
    """The tools named by ``--tools``: ``demo`` or ``module:attribute`` (a list of tools).

    Raises:
        ConfigurationError: the module or attribute does not exist, or is not a list of tools.
    """
    from runtime._agent.tools import Tool

    if spec == "demo":
        from runtime._cli.tools import demo_tools

        return demo_tools(steps, delay)
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--tools must be 'demo' or 'module:attribute', got {spec!r}.")
    try:
        value: Any = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"--tools {spec!r} cannot be loaded: {exc}") from exc
    if callable(value) and not isinstance(value, Tool):
        value = value()
    if not isinstance(value, list | tuple) or not all(isinstance(t, Tool) for t in value):
        raise ConfigurationError(f"--tools {spec!r} is not a list of tools.")
    return list(value)


def add_worker_parser(commands: Any) -> None:
    """The ``worker`` sub-command's arguments."""
    worker = commands.add_parser(
        "worker",
        help="run sessions submitted to Redis, durably (scale-out)",
        description="Take sessions from Redis (a consumer group), run them, write their "
        "events to Redis streams, and take over the sessions of lost workers. Uses "
        "OPENROUTER_API_KEY and OPENROUTER_BASE_URL (or --base-url).",
    )
    add_redis_argument(worker, required=True, help="redis://host:port/db")
    worker.add_argument("--prefix", default="ort", help="key prefix of the deployment (ort)")
    worker.add_argument("--name", help="consumer name (default: host-pid)")
    worker.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="runs at once (16)"
    )
    worker.add_argument(
        "--lease", type=float, default=DEFAULT_LEASE, metavar="SECONDS", help="lease (10)"
    )
    worker.add_argument(
        "--keep-finished",
        type=float,
        default=DEFAULT_KEEP_FINISHED,
        metavar="SECONDS",
        help="how long an ended run's stream, keys and registry entry are kept; "
        "0 keeps them forever (604800: a week)",
    )
    worker.add_argument(
        "--hand-back",
        type=float,
        default=DEFAULT_HAND_BACK,
        metavar="SECONDS",
        help="on Ctrl-C/SIGTERM, how long to spend handing the runs back to the other "
        "workers; 0 lets their leases expire instead (5)",
    )
    worker.add_argument("--base-url", help="API root (default: OPENROUTER_BASE_URL)")
    worker.add_argument(
        "--tools", default="demo", help="'demo' or module:attribute, a list of tools (demo)"
    )
    worker.add_argument(
        "--tool-steps", type=int, default=5, metavar="N", help="demo scan_table steps (5)"
    )
    worker.add_argument(
        "--tool-delay", type=float, default=0.0, metavar="SECONDS", help="demo step pause (0)"
    )


async def worker_command(args: argparse.Namespace, announce: Any) -> None:
    """Run a worker until SIGINT or SIGTERM (or cancelled), then stop it (Rule 4).

    ``announce(line)`` is called once it is ready, and once it has stopped.
    """
    options = WorkerOptions(
        name=args.name or f"{socket.gethostname()}-{os.getpid()}",
        concurrency=args.concurrency,
        lease=args.lease,
        keep_finished=args.keep_finished,
        hand_back=args.hand_back,
    )
    tools = load_tools(args.tools, steps=args.tool_steps, delay=args.tool_delay)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with (
            open_redis_store(args.redis, prefix=args.prefix) as store,
            OpenRouter(base_url=args.base_url) as client,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(run_worker, store, client, tools, options)
            announce(f"worker {options.name} ready ({options.concurrency} runs at once)")
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()
    announce(f"worker {options.name} stopped")
