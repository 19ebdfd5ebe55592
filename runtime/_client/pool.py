"""The session pool: many agent runs at once, admitted under a limit, listed in a registry.

One job: run any number of ``call_model`` runs side by side, at most
``max_concurrent`` of them at a time, keep a live list of them for dashboards,
and never let one run's failure touch another.

Rules
-----

Rule 1 (admission). :meth:`SessionPool.start` is synchronous: it builds the run
with ``client.call_model`` (which validates every argument before any I/O),
appends it to the pool's FIFO queue and starts the run's task in the pool's
nursery. Admission is synchronous too: at ``start`` and whenever a run ends,
the oldest queued runs take the free tokens of the pool's
``trio.CapacityLimiter`` (``acquire_on_behalf_of_nowait``) and their tasks are
woken. No checkpoint separates "a token is free" from "it is taken", so there
is no check-then-act race, and the order is exactly the order of ``start``
calls (tasks racing for the limiter would be admitted in whatever order trio's
scheduler, which deliberately shuffles, runs them). Nothing is sent to the
model before admission. Consumers may use a queued run's ``ModelResult`` at
once: their streams simply wait until it is admitted and produces events.

Rule 2 (fault isolation). The session runner records failures (the run ends
``failed`` and its log closes with the error) instead of raising. The pool's
task catches any ``Exception`` escaping it all the same, records it as that
run's failure and closes the run's log, so a bug in one run can never cancel
the pool's nursery and its siblings.

Rule 3 (cancellation). :meth:`SessionPool.cancel` / :meth:`SessionPool.cancel_all`
cancel running runs through ``ModelResult.cancel()``; queued runs leave the queue
at once and end ``cancelled`` without sending anything. Leaving
``async with open_session_pool(...)`` normally waits for every run, as a nursery
does; leaving it with an exception cancels every run first. Either way no task
of the pool is left behind.

Rule 4 (registry). Every run stays listed from ``start`` until it is evicted.
Finished runs are evicted oldest first once more than ``history`` of them are
listed, or once the events they retain (their ``next_seq``) exceed
``memory_budget``. Unfinished runs are never evicted.

Rule 5 (change notification). :meth:`SessionPool.watch` returns a cursor over
an ``EventLog`` of :class:`RegistryUpdate` (a ``Ring``: a watcher that falls
behind gets ``Lagged`` once and re-lists with :meth:`SessionPool.sessions`).
Lifecycle transitions (queued, running, finished, removed) are published when
they happen. What changes inside a run (turn, tokens, cost, ``in_tool``) is not
signalled by the runtime, so one sampler task compares the running runs every
``update_interval`` seconds and publishes those that changed: O(running) per
tick, and nothing at all on the event hot path.

The ``ModelResult`` seam
------------------------

A pooled run must start in the pool's nursery under the limiter, not in the
client's nursery. ``ModelResult`` takes its spawn function at construction, and
``call_model`` passes the client's. :class:`_PooledRun` is the one place that
re-routes it (and reads the run's cancel request); see its docstring.
"""

from __future__ import annotations

import math
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final, Literal, final

import msgspec
import trio

from runtime._base.errors import ConfigurationError
from runtime._client.client import check_seconds
from runtime._run.eventlog import EventLog
from runtime._run.registry import RegistryUpdate
from runtime._run.retention import Ring
from runtime._run.status import FINISHED

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from runtime._client.client import OpenRouter
    from runtime._client.result import ModelResult
    from runtime._run.cursor import Cursor
    from runtime._run.status import RunSnapshot, RunStatus

__all__ = [
    "DEFAULT_HISTORY",
    "DEFAULT_UPDATE_BUFFER",
    "DEFAULT_UPDATE_INTERVAL",
    "PoolStatistics",
    "SessionPool",
    "open_session_pool",
]

DEFAULT_HISTORY: Final = 1000
"""Finished runs a pool keeps listed by default."""

DEFAULT_UPDATE_INTERVAL: Final = 0.25
"""Seconds between two samples of the running runs (turn, tokens, cost, status)."""

DEFAULT_UPDATE_BUFFER: Final = 4096
"""Registry updates retained for watchers (a ``Ring``); a slower watcher re-lists."""


class PoolStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of a :class:`SessionPool`, from :meth:`SessionPool.statistics`.

    Counts of finished runs are cumulative: evicted runs still count.

    Attributes:
        max_concurrent: the admission limit.
        queued: runs waiting for admission.
        running: admitted runs not finished (``running`` or ``in_tool``).
        done: runs that ended normally.
        failed: runs that ended with an error.
        cancelled: runs that were cancelled (queued or running).
        listed: runs in the registry now.
        total_tokens: tokens used by every run so far, finished or not.
        cost: cost reported by every run so far (``0.0`` when none reported any).
        model_calls: model calls made by every run so far.
    """

    max_concurrent: int
    queued: int
    running: int
    done: int
    failed: int
    cancelled: int
    listed: int
    total_tokens: int
    cost: float
    model_calls: int


@final
class _PooledRun:
    """One run of the pool: its ``ModelResult`` and the pool's bookkeeping.

    Uses the hooks ``ModelResult`` keeps for pools:

    * :meth:`__init__` starts the run through the pool (``_start_via``): from
      then on the run counts as started, every consumer attaches to its log and
      waits, and the run's task function is held here until admission
      (:meth:`start` runs it).
    * :meth:`abandon` ends a run whose task never ran as a cancel before start
      does (``_abandon``): log closed cleanly, status ``cancelled``, waiters woken.
    * :meth:`fail` records an exception that escaped the runner (which should
      never happen) the way the runner records a failure (``_fail``).
    """

    __slots__ = ("_fn", "admitted", "last", "ran", "result", "run_id", "scope", "stage", "status")

    def __init__(self, result: ModelResult) -> None:
        self.result = result
        self.run_id = result.id
        self._fn: Callable[[], Awaitable[None]] | None = None
        self.stage: Literal["queued", "running", "finished"] = "queued"
        self.status: RunStatus = "queued"  # the final status, once finished
        self.scope = trio.CancelScope()  # cancels the wait for admission
        self.admitted = trio.Event()  # set (synchronously) when it gets a token
        self.ran = False  # whether its task function was called
        self.last: tuple[object, ...] = ()  # what was published last (see _key)
        result._start_via(self._hold)

    def _hold(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._fn = fn

    async def start(self) -> None:
        assert self._fn is not None  # set through _hold by __init__
        self.ran = True
        await self._fn()

    @property
    def cancel_requested(self) -> bool:
        return self.result.cancel_requested

    def abandon(self) -> None:
        self.result._abandon()

    def fail(self, exc: Exception) -> None:
        self.result._fail(exc)

    def snapshot(self) -> RunSnapshot:
        snap = self.result.snapshot()
        stage = self.stage
        if stage == "queued":
            return msgspec.structs.replace(snap, status="queued")
        if stage == "running" and snap.status == "pending":
            return msgspec.structs.replace(snap, status="running")
        if stage == "finished" and snap.status != self.status:
            return msgspec.structs.replace(snap, status=self.status)
        return snap


def _key(snap: RunSnapshot) -> tuple[object, ...]:
    return (snap.status, snap.turn, snap.usage, snap.tool_calls_executed)


@final
class SessionPool:
    """Runs many agent sessions at once under a concurrency limit, with a live registry.

    Get one from :func:`open_session_pool`; it is usable until that block ends.
    Implements :class:`SessionRegistry`, so it can be passed to
    ``serve_event_feed``. See the module docstring for the admission, isolation,
    cancellation and registry rules.

    Every method is synchronous (none is a checkpoint) except
    :meth:`wait_idle`.
    """

    def __init__(
        self,
        client: OpenRouter,
        *,
        max_concurrent: int,
        history: int = DEFAULT_HISTORY,
        memory_budget: int | None = None,
        update_interval: float | None = DEFAULT_UPDATE_INTERVAL,
        update_buffer: int = DEFAULT_UPDATE_BUFFER,
        deadline: float | None = None,
    ) -> None:
        if type(max_concurrent) is not int or max_concurrent < 1:
            raise ConfigurationError(
                f"max_concurrent must be a positive integer, got {max_concurrent!r}."
            )
        if type(history) is not int or history < 0:
            raise ConfigurationError(f"history must be a non-negative integer, got {history!r}.")
        if memory_budget is not None and (type(memory_budget) is not int or memory_budget < 1):
            raise ConfigurationError(
                f"memory_budget must be a positive integer or None, got {memory_budget!r}."
            )
        if update_interval is not None and not (
            isinstance(update_interval, int | float)
            and math.isfinite(update_interval)
            and update_interval > 0
        ):
            raise ConfigurationError(
                f"update_interval must be a positive number of seconds or None, "
                f"got {update_interval!r}."
            )
        if type(update_buffer) is not int or update_buffer < 1:
            raise ConfigurationError(
                f"update_buffer must be a positive integer, got {update_buffer!r}."
            )
        self._deadline = check_seconds("deadline", deadline)
        self._client = client
        self._nursery: trio.Nursery | None = None  # set by open_session_pool
        self._limiter = trio.CapacityLimiter(max_concurrent)
        self._history = history
        self._memory_budget = memory_budget
        self._update_interval = update_interval
        self._updates: EventLog[RegistryUpdate] = EventLog(retention=Ring(update_buffer))
        self._runs: dict[str, _PooledRun] = {}  # every listed run, in start order
        self._queue: deque[_PooledRun] = deque()  # waiting for admission, FIFO (may hold
        # runs cancelled while queued: they are skipped when reached)
        self._running: dict[str, _PooledRun] = {}
        self._finished: deque[_PooledRun] = deque()  # listed finished runs, oldest first
        self._finished_events = 0  # sum of next_seq over self._finished
        self._queued = 0
        self._active = 0  # queued + running
        self._counts = {"done": 0, "failed": 0, "cancelled": 0}
        self._spent_tokens = 0  # of runs no longer running
        self._spent_cost = 0.0
        self._spent_calls = 0
        self._idle = trio.Event()
        self._idle.set()
        self._sampler_wake = trio.Event()
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"<SessionPool max_concurrent={self._limiter.total_tokens!r} "
            f"queued={self._queued!r} running={len(self._running)!r} "
            f"listed={len(self._runs)!r}{' closed' if self._closed else ''}>"
        )

    # -- starting and stopping runs -------------------------------------------------

    def start(self, **call_model_kwargs: Any) -> ModelResult:
        """Queue one run; it starts when a slot is free (FIFO). Not a checkpoint.

        Args:
            **call_model_kwargs: anything ``client.call_model`` accepts.

        Returns:
            The run's ``ModelResult``, already listed as ``queued``. Consume it as
            usual; its streams wait until the run is admitted. The pool owns the
            run's task: do not enter the result with ``async with``.

        Raises:
            ConfigurationError: a bad ``call_model`` argument (nothing is queued).
            trio.ClosedResourceError: the pool's block has ended.
        """
        nursery = self._nursery
        if self._closed or nursery is None:
            raise trio.ClosedResourceError("Cannot start a run in a closed session pool.")
        if self._deadline is not None:
            call_model_kwargs.setdefault("deadline", self._deadline)
        result = self._client.call_model(**call_model_kwargs)
        run = _PooledRun(result)
        self._runs[run.run_id] = run
        self._queued += 1
        if self._active == 0:
            self._idle = trio.Event()
        self._active += 1
        self._queue.append(run)
        nursery.start_soon(self._drive, run, name=f"session {run.run_id}")
        if not self._admit_waiting():
            self._publish("updated", run)
        return result

    def cancel(self, run_id: str) -> None:
        """Cancel one run, queued or running; a no-op once it finished. Not a checkpoint.

        Raises:
            KeyError: no run with this id is listed.
        """
        self._cancel(self._lookup(run_id))

    def cancel_all(self) -> None:
        """Cancel every queued and running run. Not a checkpoint.

        Queued runs end ``cancelled`` at once, in start order, without ever being
        admitted; running ones end as soon as their tasks notice. Runs started
        afterwards are not affected.
        """
        for run in list(self._runs.values()):
            self._cancel(run)

    async def wait_idle(self) -> None:
        """Wait until no run is queued or running. A checkpoint.

        Cancelling the wait changes nothing in the pool.
        """
        while True:
            # Re-check after waking: a run started meanwhile (from another task)
            # replaced the event, and must be waited for too.
            idle = self._idle
            await idle.wait()
            if not self._active:
                return

    # -- registry -------------------------------------------------------------------

    def sessions(self) -> list[RunSnapshot]:
        """Snapshots of every listed run, oldest first (``queued`` while waiting)."""
        return [run.snapshot() for run in self._runs.values()]

    def snapshot(self, run_id: str) -> RunSnapshot:
        """The snapshot of one listed run.

        Raises:
            KeyError: no run with this id is listed.
        """
        return self._lookup(run_id).snapshot()

    def get(self, run_id: str) -> ModelResult:
        """The ``ModelResult`` of one listed run.

        Raises:
            KeyError: no run with this id is listed (never started here, or evicted).
        """
        return self._lookup(run_id).result

    def events(self, run_id: str, from_seq: int = 0) -> Cursor[Any]:
        """A new cursor on one listed run's event log, from ``from_seq``.

        The caller owns the cursor and must close it.

        Raises:
            KeyError: no run with this id is listed.
            ConfigurationError: ``from_seq`` is not in ``[0, next_seq]``.
        """
        return self._lookup(run_id).result.events(from_seq)

    def watch(self) -> Cursor[RegistryUpdate]:
        """A new cursor over registry updates published from now on.

        The caller owns the cursor. A watcher that falls more than the update
        buffer behind gets ``Lagged`` once and should re-list with
        :meth:`sessions`. The cursor ends (``EndOfChannel``) when the pool closes.
        """
        updates = self._updates
        return updates.cursor(updates.next_seq)

    def statistics(self) -> PoolStatistics:
        """Counts and totals of the pool (O(running runs)). Not a checkpoint."""
        tokens = self._spent_tokens
        cost = self._spent_cost
        calls = self._spent_calls
        for run in self._running.values():
            usage = run.result.snapshot().usage
            tokens += usage.total_tokens
            cost += usage.cost or 0.0
            calls += usage.model_calls
        return PoolStatistics(
            max_concurrent=int(self._limiter.total_tokens),
            queued=self._queued,
            running=len(self._running),
            done=self._counts["done"],
            failed=self._counts["failed"],
            cancelled=self._counts["cancelled"],
            listed=len(self._runs),
            total_tokens=tokens,
            cost=cost,
            model_calls=calls,
        )

    # -- internals ------------------------------------------------------------------

    def _lookup(self, run_id: str) -> _PooledRun:
        try:
            return self._runs[run_id]
        except KeyError:
            raise KeyError(f"No session with id {run_id!r} is listed in this pool.") from None

    def _cancel(self, run: _PooledRun) -> None:
        if run.stage == "queued":
            run.scope.cancel()  # its task leaves the queue and abandons the run
        elif run.stage == "running":
            run.result.cancel()

    def _publish(self, kind: Literal["updated", "removed"], run: _PooledRun) -> None:
        snap = run.snapshot()
        run.last = _key(snap)
        if not self._updates.closed:
            self._updates.append(RegistryUpdate(kind=kind, session=snap))

    async def _drive(self, run: _PooledRun) -> None:
        """The task of one run: wait for admission, run the session, record the end."""
        try:
            with run.scope:
                await run.admitted.wait()
            if run.admitted.is_set() and not (run.scope.cancel_called or run.cancel_requested):
                try:
                    await run.start()
                except Exception as exc:
                    # Rule 2: the runner records failures itself; this is the last line.
                    run.fail(exc)
        finally:
            self._finish(run)

    def _admit_waiting(self) -> bool:
        """Admit queued runs, oldest first, while tokens are free (Rule 1).

        Synchronous, so nothing can slip in between the check for a free token
        and taking it. Returns whether the most recently started run was admitted.
        """
        queue = self._queue
        limiter = self._limiter
        admitted_last = False
        while queue and limiter.available_tokens:
            run = queue.popleft()
            if run.stage != "queued" or run.scope.cancel_called:
                continue  # cancelled while queued; its task is finishing it
            limiter.acquire_on_behalf_of_nowait(run)
            self._queued -= 1
            run.stage = "running"
            self._running[run.run_id] = run
            if not self._sampler_wake.is_set():
                self._sampler_wake.set()
            run.admitted.set()
            self._publish("updated", run)
            admitted_last = not queue
        return admitted_last

    def _finish(self, run: _PooledRun) -> None:
        if run.stage == "queued":
            self._queued -= 1  # never admitted: cancelled, or the pool's nursery was
        else:
            del self._running[run.run_id]
            self._limiter.release_on_behalf_of(run)
        if not run.ran:
            run.abandon()  # Rule 3: nothing was sent; end it as cancelled
        run.stage = "finished"
        snap = run.result.snapshot()
        status = snap.status if snap.status in FINISHED else "failed"
        run.status = status
        self._counts[status] += 1
        usage = snap.usage
        self._spent_tokens += usage.total_tokens
        self._spent_cost += usage.cost or 0.0
        self._spent_calls += usage.model_calls
        self._active -= 1
        self._publish("updated", run)
        self._finished.append(run)
        self._finished_events += snap.next_seq
        self._evict()
        if not self._closed:
            self._admit_waiting()
        if self._active == 0:
            self._idle.set()

    def _evict(self) -> None:
        finished = self._finished
        budget = self._memory_budget
        while finished and (
            len(finished) > self._history or (budget is not None and self._finished_events > budget)
        ):
            run = finished.popleft()
            self._finished_events -= run.result.snapshot().next_seq
            del self._runs[run.run_id]
            self._publish("removed", run)

    async def _sample(self) -> None:
        """Rule 5: publish the running runs whose turn, usage or status changed."""
        interval = self._update_interval
        assert interval is not None
        while True:
            if not self._running:
                self._sampler_wake = trio.Event()
                await self._sampler_wake.wait()
            await trio.sleep(interval)
            for run in list(self._running.values()):
                snap = run.snapshot()
                key = _key(snap)
                if key != run.last:
                    run.last = key
                    self._updates.append(RegistryUpdate(kind="updated", session=snap))

    def _close(self) -> None:
        self._closed = True
        self._updates.close()


@asynccontextmanager
async def open_session_pool(
    client: OpenRouter,
    *,
    max_concurrent: int,
    history: int = DEFAULT_HISTORY,
    memory_budget: int | None = None,
    update_interval: float | None = DEFAULT_UPDATE_INTERVAL,
    update_buffer: int = DEFAULT_UPDATE_BUFFER,
    deadline: float | None = None,
) -> AsyncIterator[SessionPool]:
    """Open a :class:`SessionPool` whose runs are tasks of a nursery owned by this block.

    Use it inside the client's block (the runs send their requests through the
    client's HTTP pool)::

        async with OpenRouter() as client, open_session_pool(client, max_concurrent=100) as pool:
            results = [pool.start(model="openai/gpt-5", input=q) for q in questions]
            print(pool.statistics())
        # every run has ended here

    Leaving the block normally waits for every queued and running run (a
    checkpoint; runs started meanwhile are waited for too). Leaving it with an
    exception (or being cancelled) cancels them all first. Afterwards the
    registry stays readable, :meth:`SessionPool.start` raises
    ``trio.ClosedResourceError`` and watchers see the end of their cursor.

    Args:
        client: an open ``OpenRouter`` client; each run is ``client.call_model(...)``.
        max_concurrent: how many runs may be admitted at once (at least 1).
        history: how many finished runs stay listed (oldest evicted first).
        memory_budget: evict finished runs, oldest first, while the events they
            retain (the sum of their ``next_seq``) exceed this; ``None``: no budget.
        update_interval: seconds between samples of the running runs for
            registry updates; ``None`` publishes lifecycle transitions only.
        update_buffer: registry updates retained for slow watchers.
        deadline: the default ``call_model(deadline=...)`` of every run started
            here (seconds from the run's admission; a run's own ``deadline=``
            wins); ``None``: no limit. Without one, a run whose server never
            answers holds its slot for as long as its retries last.

    Raises:
        ConfigurationError: a bad argument (before anything starts).
    """
    pool = SessionPool(
        client,
        max_concurrent=max_concurrent,
        history=history,
        memory_budget=memory_budget,
        update_interval=update_interval,
        update_buffer=update_buffer,
        deadline=deadline,
    )
    failure: Exception | None = None
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as nursery:
            pool._nursery = nursery
            if update_interval is not None:
                outer.start_soon(pool._sample, name="session pool sampler")
            try:
                yield pool
                await pool.wait_idle()
            except Exception as exc:
                # Raised by the block: re-raised below as itself, not wrapped in
                # the nurseries' exception groups.
                failure = exc
                pool.cancel_all()
                nursery.cancel_scope.cancel()
            except BaseException:
                pool.cancel_all()
                raise
            finally:
                pool._close()
        outer.cancel_scope.cancel()
    if failure is not None:
        raise failure
