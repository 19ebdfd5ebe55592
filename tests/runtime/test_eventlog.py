"""Tests for runtime._run.eventlog: the seq-numbered EventLog and its cursors.

Scenarios T-01..T-11 and R-01..R-03 of spec §8 are adapted to the log: the
broadcaster's ``push`` is ``append``, ``complete(err)`` is ``close(err)``, a
consumer is a cursor, and "done" is ``trio.EndOfChannel`` (the end of ``async for``).

Rules: no sleeps; every test that can wait runs on ``autojump_clock`` inside
``trio.fail_after`` so that a lost wake-up fails fast instead of hanging; orderings
are forced with ``wait_all_tasks_blocked`` and ``Sequencer``.
"""

from __future__ import annotations

import gc
import pickle
import weakref
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing

from runtime._base.errors import AgentError, ConfigurationError
from runtime._run.cursor import BATCH_LIMIT, Cursor, Lagged
from runtime._run.eventlog import EventLog, EventLogStatistics
from runtime._run.retention import KEEP_ALL, KeepAll, Ring, TrimBehindSlowest

if TYPE_CHECKING:
    from trio.testing import MockClock

TIMEOUT = 10


async def drain(cursor: Cursor[Any]) -> list[Any]:
    """Every event until the end of the log, through ``async for``."""
    return [event async for event in cursor]


async def drain_into(cursor: Cursor[Any], sink: list[Any]) -> None:
    """Like ``drain``, but what was received stays in ``sink`` if the loop raises."""
    async for event in cursor:
        sink.append(event)


class Obj:
    """A weak-referenceable event."""

    def __init__(self, n: int) -> None:
        self.n = n


# -- appending ---------------------------------------------------------------------


def test_append_returns_consecutive_seqs_from_zero() -> None:
    log: EventLog[str] = EventLog()
    assert [log.append(x) for x in "abc"] == [0, 1, 2]
    assert log.next_seq == 3
    assert log.first_seq == 0


def test_extend_returns_next_seq_after_the_batch() -> None:
    log: EventLog[int] = EventLog()
    assert log.extend([10, 11]) == 2
    assert log.extend(iter([12])) == 3
    assert log.extend([]) == 3
    assert log.snapshot() == [10, 11, 12]


def test_extend_with_a_failing_iterable_appends_nothing() -> None:
    log: EventLog[int] = EventLog()

    def events() -> Any:
        yield 1
        raise RuntimeError("decoder broke")

    with pytest.raises(RuntimeError, match="decoder broke"):
        log.extend(events())
    assert log.next_seq == 0


def test_append_after_close_raises_closed_resource_error() -> None:
    log: EventLog[int] = EventLog()
    log.append(1)
    log.close()
    with pytest.raises(trio.ClosedResourceError, match=r"closed event log \(next_seq=1\)"):
        log.append(2)
    with pytest.raises(trio.ClosedResourceError):
        log.extend([2])
    assert log.next_seq == 1


def test_close_twice_keeps_the_first_outcome() -> None:
    failed: EventLog[int] = EventLog()
    error = ValueError("boom")
    failed.close(error)
    failed.close()
    failed.close(KeyError("late"))
    assert failed.error is error

    clean: EventLog[int] = EventLog()
    clean.close()
    clean.close(ValueError("late"))
    assert clean.closed
    assert clean.error is None


def test_close_rejects_a_non_exception() -> None:
    log: EventLog[int] = EventLog()
    with pytest.raises(ConfigurationError, match="'oops'"):
        log.close("oops")  # type: ignore[arg-type]
    assert not log.closed


def test_repr_shows_the_state() -> None:
    log: EventLog[int] = EventLog(Ring(4))
    log.append(1)
    cursor = log.cursor()
    assert repr(log) == (
        "<EventLog next_seq=1 first_seq=0 cursors=1 closed=False retention=Ring(capacity=4)>"
    )
    assert repr(cursor).startswith("<Cursor seq=0 of <EventLog")
    cursor.close()
    assert repr(cursor).startswith("<Cursor seq=0 closed of")


# -- retention policies and validation ---------------------------------------------


@pytest.mark.parametrize("capacity", [0, -1, 1.5, True, "3"])
def test_ring_rejects_a_bad_capacity(capacity: Any) -> None:
    with pytest.raises(ConfigurationError, match=repr(capacity)):
        Ring(capacity)


def test_event_log_rejects_an_unknown_retention() -> None:
    with pytest.raises(ConfigurationError, match="'forever'"):
        EventLog(retention="forever")  # type: ignore[arg-type]


def test_retention_policies_encode_with_their_kind() -> None:
    assert msgspec.json.encode(Ring(4)) == b'{"kind":"ring","capacity":4}'
    assert msgspec.json.encode(KEEP_ALL) == b'{"kind":"keep_all"}'
    assert msgspec.json.encode(TrimBehindSlowest()) == b'{"kind":"trim_behind_slowest"}'
    assert Ring(capacity=4) == Ring(4)
    assert EventLog().retention == KeepAll()


@pytest.mark.parametrize("from_seq", [-1, 3, 1.0, True, None])
def test_cursor_rejects_a_position_outside_the_log(from_seq: Any) -> None:
    log: EventLog[int] = EventLog()
    log.extend([1, 2])
    with pytest.raises(ConfigurationError, match=rf"next_seq \(2\), got {from_seq!r}"):
        log.cursor(from_seq)


def test_batch_receives_reject_a_bad_limit() -> None:
    log: EventLog[int] = EventLog()
    log.append(1)
    cursor = log.cursor()
    with pytest.raises(ConfigurationError, match="got 0"):
        cursor.receive_batch_nowait(0)
    assert cursor.seq == 0


async def test_receive_batch_rejects_a_bad_limit() -> None:
    log: EventLog[int] = EventLog()
    cursor = log.cursor()
    with pytest.raises(ConfigurationError, match="got -2"):
        await cursor.receive_batch(-2)


# -- Lagged --------------------------------------------------------------------------


def test_lagged_is_an_agent_error_and_a_too_slow_error() -> None:
    error = Lagged(3, 10)
    assert isinstance(error, AgentError)
    assert isinstance(error, trio.TooSlowError)
    assert (error.missed, error.resume_seq) == (3, 10)
    assert str(error) == (
        "The cursor missed 3 events that the log's retention had dropped, and resumes at seq 10."
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.missed, copy.resume_seq, str(copy)) == (3, 10, str(error))


# -- snapshot and statistics ---------------------------------------------------------


def test_snapshot_copies_the_retained_events() -> None:
    log: EventLog[int] = EventLog()
    log.extend([1, 2, 3])
    snap = log.snapshot()
    snap.append(99)
    assert log.snapshot() == [1, 2, 3]
    assert log.snapshot(from_seq=1) == [2, 3]
    assert log.snapshot(from_seq=3) == []
    with pytest.raises(ConfigurationError, match="got 4"):
        log.snapshot(from_seq=4)


def test_snapshot_below_first_seq_raises_lagged() -> None:
    log: EventLog[int] = EventLog(Ring(2))
    log.extend([1, 2, 3, 4, 5])
    assert log.snapshot() == [4, 5]
    with pytest.raises(Lagged) as info:
        log.snapshot(from_seq=1)
    assert (info.value.missed, info.value.resume_seq) == (2, 3)
    assert log.snapshot(from_seq=info.value.resume_seq) == [4, 5]


def test_statistics_describe_the_log() -> None:
    log: EventLog[int] = EventLog(Ring(3))
    assert log.statistics() == EventLogStatistics(
        next_seq=0,
        first_seq=0,
        retained=0,
        cursors_attached=0,
        slowest_cursor_lag=0,
        tasks_waiting=0,
        closed=False,
        retention="ring",
    )
    slow = log.cursor()
    fast = log.cursor()
    log.extend(range(5))
    with pytest.raises(Lagged):
        fast.receive_batch_nowait()
    assert fast.receive_batch_nowait() == [2, 3, 4]
    log.close()
    stats = log.statistics()
    assert (stats.next_seq, stats.first_seq, stats.retained) == (5, 2, 3)
    assert (stats.cursors_attached, stats.slowest_cursor_lag, stats.closed) == (2, 5, True)
    slow.close()
    assert log.statistics().slowest_cursor_lag == 0
    assert EventLog(TrimBehindSlowest()).statistics().retention == "trim_behind_slowest"
    assert EventLog().statistics().retention == "keep_all"


async def test_statistics_count_waiting_tasks(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    log: EventLog[int] = EventLog()
    cursors = [log.cursor() for _ in range(3)]
    for cursor in cursors:
        nursery.start_soon(cursor.receive)
    await trio.testing.wait_all_tasks_blocked()
    assert log.statistics().tasks_waiting == 3
    log.append(1)
    assert log.statistics().tasks_waiting == 0
    await trio.testing.wait_all_tasks_blocked()
    assert [c.seq for c in cursors] == [1, 1, 1]


# -- spec scenarios --------------------------------------------------------------------


async def test_t01_events_appended_after_close_are_refused() -> None:
    """T-01: turn.start, event1, close, then turn.end → exactly [turn.start, event1].

    The broadcaster silently dropped the late push; the log refuses it loudly.
    """
    log: EventLog[str] = EventLog()
    cursor = log.cursor()
    log.append("turn.start")
    log.append("event1")
    log.close()
    with pytest.raises(trio.ClosedResourceError):
        log.append("turn.end")
    assert await drain(cursor) == ["turn.start", "event1"]


async def test_t02_closing_without_waiting_for_the_pipe_loses_turn_end(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """T-02 (the hazard): completion that does not wait for the pipe loses ``turn.end``.

    With the log the lost append raises in the pipe instead of vanishing.
    """
    log: EventLog[str] = EventLog()
    seq = trio.testing.Sequencer()
    pipe_error: list[BaseException] = []

    async def pipe() -> None:
        async with seq(0):
            log.append("turn.start")
            log.append("delta-1")
        async with seq(2):
            try:
                log.append("delta-2")
                log.append("turn.end")
            except trio.ClosedResourceError as exc:
                pipe_error.append(exc)

    async def execution() -> None:
        async with seq(1):
            log.close()  # does not wait for the pipe: the bug pattern

    with trio.fail_after(TIMEOUT):
        consumer = log.cursor()
        async with trio.open_nursery() as inner:
            inner.start_soon(pipe)
            inner.start_soon(execution)
        got = await drain(consumer)
    assert got.count("turn.start") == 1
    assert got.count("turn.end") == 0
    assert len(pipe_error) == 1


async def test_t03_closing_after_the_pipe_keeps_turn_start_and_turn_end(
    autojump_clock: MockClock,
) -> None:
    """T-03 (fixed): completion awaits the pipe → one turn.start before one turn.end."""
    log: EventLog[tuple[str, int]] = EventLog()
    consumer = log.cursor()
    pipe_done = trio.Event()

    async def pipe() -> None:
        log.append(("turn.start", 0))
        for _ in range(2):
            await trio.sleep(0.02)
            log.append(("delta", 0))
        log.append(("turn.end", 0))
        pipe_done.set()

    async def execution() -> None:
        await trio.sleep(0.005)
        await pipe_done.wait()
        log.close()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pipe)
            nursery.start_soon(execution)
            got = await drain(consumer)
    kinds = [kind for kind, _ in got]
    assert kinds.count("turn.start") == kinds.count("turn.end") == 1
    assert kinds.index("turn.start") < kinds.index("turn.end")
    assert {turn for _, turn in got} == {0}


async def test_t04_a_closed_log_yields_its_events_then_ends() -> None:
    """T-04: 1, 2, 3 then close → [1, 2, 3]; an empty closed log → []."""
    log: EventLog[int] = EventLog()
    log.extend([1, 2, 3])
    log.close()
    assert await drain(log.cursor()) == [1, 2, 3]
    empty: EventLog[int] = EventLog()
    empty.close()
    assert await drain(empty.cursor()) == []


async def test_t05_a_closed_cursor_receives_nothing_more() -> None:
    """T-05: read 1, close the cursor → the next receive reports the cursor closed."""
    log: EventLog[int] = EventLog()
    log.extend([1, 2])
    cursor = log.cursor()
    assert await cursor.receive() == 1
    open_before = not cursor.closed
    await cursor.aclose()
    await cursor.aclose()  # idempotent
    assert open_before
    assert cursor.closed
    with pytest.raises(trio.ClosedResourceError, match="cursor at seq 1 was closed"):
        await cursor.receive()
    with pytest.raises(trio.ClosedResourceError):
        cursor.receive_batch_nowait()
    with pytest.raises(trio.ClosedResourceError):
        await cursor.__anext__()
    assert log.statistics().cursors_attached == 0
    log.append(3)  # the log goes on


async def test_t06_two_concurrent_consumers_each_get_every_event(
    autojump_clock: MockClock,
) -> None:
    """T-06: two consumers, a and b appended, close → both get [a, b]."""
    log: EventLog[str] = EventLog()
    results: dict[int, list[str]] = {}

    async def consume(i: int, cursor: Cursor[str]) -> None:
        results[i] = await drain(cursor)

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(consume, i, log.cursor())
            await trio.testing.wait_all_tasks_blocked()
            log.append("a")
            log.append("b")
            log.close()
    assert results == {0: ["a", "b"], 1: ["a", "b"]}


async def test_t07_a_late_joiner_replays_from_the_start() -> None:
    """T-07: consumer1 reads 1; consumer2 attaches; 3 appended → [2, 3] and [1, 2, 3]."""
    log: EventLog[int] = EventLog()
    first = log.cursor()
    log.extend([1, 2])
    assert first.receive_nowait() == 1
    late = log.cursor()
    log.append(3)
    log.close()
    assert await drain(first) == [2, 3]
    assert await drain(late) == [1, 2, 3]


async def test_t08_a_consumer_waiting_before_any_event_gets_them_all(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """T-08: consumer waits first; 1 and 2 appended later → [1, 2]; 10 rapid appends in order."""
    log: EventLog[int] = EventLog()
    got: list[int] = []
    done = trio.Event()

    async def consume() -> None:
        got.extend(await drain(log.cursor()))
        done.set()

    nursery.start_soon(consume)
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked()
        log.append(1)
        await trio.testing.wait_all_tasks_blocked()
        log.append(2)
        for i in range(3, 13):
            log.append(i)
            if i % 3 == 0:
                await trio.lowlevel.checkpoint()
        log.close()
        await done.wait()
    assert got == list(range(1, 13))


async def test_t09_an_error_comes_after_every_event(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """T-09: 1, close(error) → 1 then the error; a consumer already waiting gets it too."""
    log: EventLog[int] = EventLog()
    reader = log.cursor()
    waiting = EventLog[int]()
    waiter_outcome: list[BaseException] = []

    async def wait_for_error() -> None:
        try:
            await waiting.cursor().receive()
        except RuntimeError as exc:
            waiter_outcome.append(exc)

    nursery.start_soon(wait_for_error)
    log.append(1)
    error = ValueError("Test error")
    log.close(error)
    assert await reader.receive() == 1
    with pytest.raises(ValueError, match="Test error") as info:
        await reader.receive()
    assert info.value is error
    with pytest.raises(ValueError, match="Test error"):
        reader.receive_nowait()  # every later receive raises it again

    async_error = RuntimeError("Async error")
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked()
        waiting.close(async_error)
        await trio.testing.wait_all_tasks_blocked()
    assert waiter_outcome == [async_error]


async def test_t09_async_for_yields_every_event_before_the_error() -> None:
    """T-09 through ``async for``: the loop body sees every event, then the error."""
    log: EventLog[int] = EventLog()
    log.extend(range(3 * BATCH_LIMIT))
    error = KeyError("late failure")
    log.close(error)
    seen: list[int] = []
    with pytest.raises(KeyError) as info:
        await drain_into(log.cursor(), seen)
    assert info.value is error
    assert seen == list(range(3 * BATCH_LIMIT))


async def test_the_error_keeps_its_traceback_from_growing() -> None:
    log: EventLog[int] = EventLog()
    try:
        raise ValueError("origin")
    except ValueError as exc:
        log.close(exc)
    cursor = log.cursor()
    depths = []
    for _ in range(3):
        with pytest.raises(ValueError, match="origin") as info:
            await cursor.receive()
        depth, tb = 0, info.value.__traceback__
        while tb is not None:
            depth, tb = depth + 1, tb.tb_next
        depths.append(depth)
    assert depths[0] == depths[1] == depths[2]
    names = []
    tb = info.value.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    # Where it was re-raised, then where it was first raised.
    assert names[-2:] == ["_raise_empty", "test_the_error_keeps_its_traceback_from_growing"]


async def test_t10_events_buffered_before_close_survive_it() -> None:
    """T-10: 1, 2, 3; read 1; close → 2, 3, then done."""
    log: EventLog[int] = EventLog()
    log.extend([1, 2, 3])
    cursor = log.cursor()
    assert await cursor.receive() == 1
    log.close()
    assert await cursor.receive() == 2
    assert await cursor.receive() == 3
    with pytest.raises(trio.EndOfChannel):
        await cursor.receive()
    with pytest.raises(trio.EndOfChannel):
        cursor.receive_batch_nowait()


class Delta(msgspec.Struct, frozen=True, tag="delta"):
    content: str


class PreliminaryResult(msgspec.Struct, frozen=True, tag="preliminary_result"):
    tool_call_id: str
    result: dict[str, int]


async def test_t11_typed_events_pass_through_unchanged() -> None:
    """T-11: typed events come out as the very objects that went in."""
    log: EventLog[Delta | PreliminaryResult] = EventLog()
    events: list[Delta | PreliminaryResult] = [
        Delta("hi"),
        PreliminaryResult("call_1", {"progress": 50}),
    ]
    log.extend(events)
    log.close()
    got = await drain(log.cursor())
    assert all(a is b for a, b in zip(got, events, strict=True))


async def test_r01_a_consumer_attached_after_another_finished_gets_the_same_events() -> None:
    """R-01: A reads all 5; B attaches afterwards → B gets the same 5."""
    log: EventLog[int] = EventLog()
    log.extend(range(5))
    log.close()
    a = await drain(log.cursor())
    b = await drain(log.cursor())
    assert a == b == [0, 1, 2, 3, 4]


async def test_r02_a_later_consumer_gets_the_events_then_the_source_error() -> None:
    """R-02: error after 2 events; a consumer attached later → the 2 events, then the error."""
    log: EventLog[str] = EventLog()
    log.extend(["e1", "e2"])
    error = ConnectionError("source broke")
    log.close(error)
    got: list[str] = []
    with pytest.raises(ConnectionError) as info:
        await drain_into(log.cursor(), got)
    assert info.value is error
    assert got == ["e1", "e2"]


async def test_r03_closing_while_a_consumer_waits_ends_it_cleanly(
    autojump_clock: MockClock,
) -> None:
    """R-03: close (cancel) while a consumer waits → it finishes without error."""
    log: EventLog[int] = EventLog()
    got: list[list[int]] = []

    async def consume() -> None:
        got.append(await drain(log.cursor()))

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            log.append(1)
            await trio.testing.wait_all_tasks_blocked()
            log.close()
    assert got == [[1]]


# -- fan-out ---------------------------------------------------------------------------


async def test_ten_concurrent_consumers_each_see_every_event(
    autojump_clock: MockClock,
) -> None:
    log: EventLog[int] = EventLog()
    results: list[list[int]] = []

    async def consume(cursor: Cursor[int]) -> None:
        results.append(await drain(cursor))

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(consume, log.cursor())
            for start in range(0, 2000, 7):
                log.extend(range(start, min(start + 7, 2000)))
                await trio.lowlevel.checkpoint()
            log.close()
    assert results == [list(range(2000))] * 10


async def test_a_consumer_breaking_early_leaves_the_others_untouched(
    autojump_clock: MockClock,
) -> None:
    log: EventLog[int] = EventLog()
    full: list[int] = []
    partial: list[int] = []

    async def quitter(cursor: Cursor[int]) -> None:
        async with cursor:
            async for event in cursor:
                partial.append(event)
                if event == 2:
                    break

    async def stayer(cursor: Cursor[int]) -> None:
        full.extend(await drain(cursor))

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(quitter, log.cursor())
            nursery.start_soon(stayer, log.cursor())
            for i in range(10):
                log.append(i)
                await trio.testing.wait_all_tasks_blocked()
            assert log.statistics().cursors_attached == 1
            log.close()
    assert partial == [0, 1, 2]
    assert full == list(range(10))


async def test_a_cursor_attached_after_close_gets_a_full_replay() -> None:
    log: EventLog[int] = EventLog()
    log.extend(range(1000))
    log.close()
    cursor = log.cursor()
    assert await drain(cursor) == list(range(1000))
    assert cursor.seq == 1000


async def test_one_append_wakes_many_waiting_consumers(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    log: EventLog[int] = EventLog()
    got: list[int] = []

    async def consume(cursor: Cursor[int]) -> None:
        got.append(await cursor.receive())

    for _ in range(100):
        nursery.start_soon(consume, log.cursor())
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked()
        log.append(7)
        await trio.testing.wait_all_tasks_blocked()
    assert got == [7] * 100


class _CountScheduled(trio.abc.Instrument):
    def __init__(self) -> None:
        self.count = 0

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        self.count += 1


async def test_append_wakes_one_task_however_many_wait(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """Appending is O(1): the producer reschedules one task, the woken ones the rest."""
    log: EventLog[int] = EventLog()
    cursors = [log.cursor() for _ in range(200)]
    for cursor in cursors:
        nursery.start_soon(cursor.receive)
    await trio.testing.wait_all_tasks_blocked()
    counter = _CountScheduled()
    trio.lowlevel.add_instrument(counter)
    try:
        log.append(1)
        assert counter.count == 1
        log.extend([2, 3])  # the generation was handed over: nothing to wake
        assert counter.count == 1
        with trio.fail_after(TIMEOUT):
            await trio.testing.wait_all_tasks_blocked()
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert [c.seq for c in cursors] == [1] * 200


class _CountProducerWakes(trio.abc.Instrument):
    """Counts the tasks that one task reschedules."""

    def __init__(self, waker: trio.lowlevel.Task) -> None:
        self.waker = waker
        self.count = 0

    def task_scheduled(self, task: trio.lowlevel.Task) -> None:
        if task is not self.waker and trio.lowlevel.current_task() is self.waker:
            self.count += 1


async def test_news_during_a_wake_up_is_passed_on_by_its_last_task(
    autojump_clock: MockClock,
) -> None:
    """Appends while a wake-up spreads reschedule nobody, and nothing is lost.

    30 consumers take several scheduler passes to wake, and the producer appends
    once per pass. Which of them runs first in a pass is random in trio, so the
    scenario runs 10 times: it must never lose an event, and in the usual order the
    producer wakes the consumers once; every later append only flags the wake-up
    in flight, whose last task starts the next one.
    """
    counts = []
    for _ in range(10):
        log: EventLog[int] = EventLog()
        results: list[list[int]] = []

        async def consume(cursor: Cursor[int], results: list[list[int]]) -> None:
            got: list[int] = []
            while True:
                try:
                    got.append(await cursor.receive())
                except trio.EndOfChannel:
                    results.append(got)
                    return

        counter = _CountProducerWakes(trio.lowlevel.current_task())
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                for _ in range(30):
                    nursery.start_soon(consume, log.cursor(), results)
                await trio.testing.wait_all_tasks_blocked()
                trio.lowlevel.add_instrument(counter)
                try:
                    for i in range(60):
                        log.append(i)
                        await trio.lowlevel.checkpoint()
                finally:
                    trio.lowlevel.remove_instrument(counter)
                log.close()
        assert results == [list(range(60))] * 30
        counts.append(counter.count)
    assert min(counts) == 1, counts


async def test_cancelled_waiters_do_not_strand_the_others(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    """A waiter cancelled while parked leaves a tombstone; its subtree still wakes."""
    log: EventLog[int] = EventLog()
    woken: list[int] = []
    scopes: list[trio.CancelScope] = []

    async def consume(i: int, cursor: Cursor[int]) -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            woken.append(i + 1000 * await cursor.receive())

    for i in range(30):
        nursery.start_soon(consume, i, log.cursor())
        await trio.testing.wait_all_tasks_blocked()  # park in a known order
    # Cancel the root of the wake tree, one of its children and a grandchild.
    for i in (0, 1, 6):
        scopes[i].cancel()
    await trio.testing.wait_all_tasks_blocked()
    assert log.statistics().tasks_waiting == 27
    with trio.fail_after(TIMEOUT):
        log.append(5)
        await trio.testing.wait_all_tasks_blocked()
    assert sorted(woken) == [5000 + i for i in range(30) if i not in (0, 1, 6)]


# -- waiting, cancellation, checkpoints -------------------------------------------------


async def test_cancelling_a_waiting_consumer_leaves_its_cursor_consistent(
    autojump_clock: MockClock,
) -> None:
    log: EventLog[int] = EventLog()
    log.append(0)
    cursor = log.cursor()
    assert cursor.receive_nowait() == 0
    with trio.move_on_after(1) as scope:
        await cursor.receive()
    assert scope.cancelled_caught
    with trio.move_on_after(1) as scope:
        await cursor.receive_batch()
    assert scope.cancelled_caught
    with trio.move_on_after(1) as scope:
        async for _ in cursor:
            pytest.fail("nothing was appended")
    assert scope.cancelled_caught
    assert cursor.seq == 1
    assert log.statistics().tasks_waiting == 0
    log.extend([1, 2])
    assert await cursor.receive() == 1
    assert await cursor.receive() == 2


async def test_a_cancelled_receive_consumes_nothing() -> None:
    """Receives checkpoint before taking: cancelled with events ready, nothing is lost."""
    log: EventLog[int] = EventLog()
    log.extend(range(5))
    cursor = log.cursor()
    with trio.CancelScope() as scope:
        scope.cancel()
        await cursor.receive()
    with trio.CancelScope() as scope:
        scope.cancel()
        await cursor.receive_batch()
    with trio.CancelScope() as scope:
        scope.cancel()
        async for _ in cursor:
            pytest.fail("the first fetch is a checkpoint")
    assert cursor.seq == 0
    assert cursor.receive_batch_nowait() == [0, 1, 2, 3, 4]


class _EventsPerStep(trio.abc.Instrument):
    """Counts how many events one task handles per scheduler step."""

    def __init__(self, task: trio.lowlevel.Task, seen: list[int]) -> None:
        self.task = task
        self.seen = seen
        self.before = 0
        self.per_step: list[int] = []

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.before = len(self.seen)

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.per_step.append(len(self.seen) - self.before)


async def test_async_for_checkpoints_at_least_every_batch_limit_events() -> None:
    """Rule 6: a replay of many events yields to the scheduler once per batch."""
    log: EventLog[int] = EventLog()
    total = 4 * BATCH_LIMIT + 3
    log.extend(range(total))
    log.close()
    seen: list[int] = []

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain_into, log.cursor(), seen)
        task = next(iter(nursery.child_tasks))
        counter = _EventsPerStep(task, seen)
        trio.lowlevel.add_instrument(counter)
    trio.lowlevel.remove_instrument(counter)
    assert seen == list(range(total))
    assert max(counter.per_step) == BATCH_LIMIT
    assert len(counter.per_step) >= total // BATCH_LIMIT + 1


async def test_closing_a_cursor_wakes_its_waiting_task(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    log: EventLog[int] = EventLog()
    cursor = log.cursor()
    other = log.cursor()
    outcomes: list[str] = []

    async def wait_on(c: Cursor[int], name: str) -> None:
        try:
            await c.receive()
            outcomes.append(f"{name}: event")
        except trio.ClosedResourceError:
            outcomes.append(f"{name}: closed")

    nursery.start_soon(wait_on, cursor, "mine")
    nursery.start_soon(wait_on, other, "other")
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked()
        cursor.close()
        await trio.testing.wait_all_tasks_blocked()
        assert outcomes == ["mine: closed"]
        assert log.statistics().tasks_waiting == 1  # the other one parked again
        log.append(1)
        await trio.testing.wait_all_tasks_blocked()
    assert outcomes == ["mine: closed", "other: event"]


async def test_receive_batch_waits_then_returns_everything_available(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    log: EventLog[int] = EventLog()
    cursor = log.cursor()
    batches: list[list[int]] = []

    async def consume() -> None:
        batches.append(await cursor.receive_batch(max_events=4))
        batches.append(await cursor.receive_batch(max_events=4))

    nursery.start_soon(consume)
    with trio.fail_after(TIMEOUT):
        await trio.testing.wait_all_tasks_blocked()
        assert batches == []
        log.extend(range(6))
        await trio.testing.wait_all_tasks_blocked()
    assert batches == [[0, 1, 2, 3], [4, 5]]


async def test_break_out_of_async_for_then_go_on_with_receive() -> None:
    """The local ``async for`` batch is drained first by every receive method."""
    log: EventLog[int] = EventLog()
    log.extend(range(10))
    cursor = log.cursor()
    async for event in cursor:
        if event == 2:
            break
    assert cursor.seq == 3
    assert log.statistics().slowest_cursor_lag == 7
    assert cursor.receive_nowait() == 3
    assert await cursor.receive() == 4
    log.append(10)
    assert cursor.receive_batch_nowait(3) == [5, 6, 7]
    assert await cursor.receive_batch() == [8, 9, 10]
    assert cursor.seq == 11
    with pytest.raises(trio.WouldBlock):
        cursor.receive_nowait()


async def test_a_cursor_shared_by_two_tasks_hands_each_event_out_once(
    autojump_clock: MockClock,
) -> None:
    log: EventLog[int] = EventLog()
    cursor = log.cursor()
    got: list[int] = []

    async def consume(batched: bool) -> None:
        while True:
            try:
                if batched:
                    got.extend(await cursor.receive_batch(2))
                else:
                    got.append(await cursor.receive())
            except trio.EndOfChannel:
                return

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume, True)
            nursery.start_soon(consume, False)
            for i in range(50):
                log.append(i)
                if i % 5 == 0:
                    await trio.testing.wait_all_tasks_blocked()
            log.close()
    assert sorted(got) == list(range(50))


async def test_a_cursor_shared_by_two_async_for_loops_loses_nothing(
    autojump_clock: MockClock,
) -> None:
    log: EventLog[int] = EventLog()
    cursor = log.cursor()
    got: list[list[int]] = [[], []]

    async def consume(sink: list[int]) -> None:
        async for event in cursor:
            sink.append(event)
            await trio.lowlevel.checkpoint()  # the other loop runs mid-batch

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume, got[0])
            nursery.start_soon(consume, got[1])
            for start in range(0, 3000, 100):
                log.extend(range(start, start + 100))
                await trio.testing.wait_all_tasks_blocked()
            log.close()
    assert sorted(got[0] + got[1]) == list(range(3000))
    assert got[0]
    assert got[1]


async def test_the_loser_of_a_race_on_a_shared_cursor_waits_for_the_next_event(
    nursery: trio.Nursery, autojump_clock: MockClock
) -> None:
    log: EventLog[int] = EventLog()
    log.append(1)
    cursor = log.cursor()
    got: list[int] = []

    async def one_step() -> None:
        got.append(await cursor.__anext__())

    with trio.fail_after(TIMEOUT):
        nursery.start_soon(one_step)
        nursery.start_soon(one_step)
        await trio.testing.wait_all_tasks_blocked()
        assert got == [1]
        log.append(2)
        await trio.testing.wait_all_tasks_blocked()
    assert got == [1, 2]


async def test_a_cursor_from_next_seq_follows_live_only() -> None:
    log: EventLog[int] = EventLog()
    log.extend([1, 2])
    live = log.cursor(log.next_seq)
    assert live.seq == 2
    with pytest.raises(trio.WouldBlock):
        live.receive_nowait()
    log.append(3)
    log.close()
    assert await drain(live) == [3]


# -- Ring --------------------------------------------------------------------------------


def test_ring_overrun_raises_lagged_with_the_exact_count_then_resumes() -> None:
    log: EventLog[int] = EventLog(Ring(4))
    cursor = log.cursor()
    log.extend(range(3))
    assert cursor.receive_nowait() == 0
    log.extend(range(3, 10))  # retains 6..9; the cursor is at 1
    assert log.first_seq == 6
    with pytest.raises(Lagged) as info:
        cursor.receive_nowait()
    assert (info.value.missed, info.value.resume_seq) == (5, 6)
    assert cursor.seq == 6
    assert cursor.receive_batch_nowait() == [6, 7, 8, 9]
    log.close()
    with pytest.raises(trio.EndOfChannel):
        cursor.receive_nowait()


async def test_ring_consumer_catches_lagged_and_goes_on(
    autojump_clock: MockClock,
) -> None:
    log: EventLog[int] = EventLog(Ring(8))
    cursor = log.cursor()
    seen: list[int] = []
    missed = 0

    async def consume() -> None:
        nonlocal missed
        while True:
            try:
                await drain_into(cursor, seen)
                return
            except Lagged as lag:
                missed += lag.missed

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            log.extend(range(5))  # the consumer keeps up with this one
            await trio.testing.wait_all_tasks_blocked()
            log.extend(range(5, 25))  # overruns it by 12
            log.close()
    assert seen == [0, 1, 2, 3, 4, *range(17, 25)]
    assert missed == 12
    assert len(seen) + missed == 25


def test_ring_never_references_more_than_capacity_events() -> None:
    log: EventLog[Obj] = EventLog(Ring(3))
    refs = []
    for i in range(700):  # enough to go through compaction more than once
        event = Obj(i)
        refs.append(weakref.ref(event))
        log.append(event)
        del event
    gc.collect()
    alive = [r for r in refs if r() is not None]
    assert len(alive) == 3
    assert [e.n for e in log.snapshot()] == [697, 698, 699]
    assert log.statistics().retained == 3


def test_trim_drops_references_behind_the_slowest_cursor_promptly() -> None:
    """Memory follows first_seq: passed events are released on the next append,
    not only when the lazy bulk deletion runs (issue: 1M events with a keeping-up
    consumer must cost about what 10k do)."""
    log: EventLog[Obj] = EventLog(TrimBehindSlowest())
    cursor = log.cursor()
    refs = []
    for i in range(700):
        event = Obj(i)
        refs.append(weakref.ref(event))
        log.append(event)
        del event
        if i % 10 == 9:
            assert len(cursor.receive_batch_nowait(10)) == 10
    log.append(Obj(-1))  # the next append releases what the cursor passed
    gc.collect()
    assert [r for r in refs if r() is not None] == []
    assert log.statistics().retained == 1
    cursor.close()


async def test_ring_capacity_one_with_a_late_cursor() -> None:
    log: EventLog[int] = EventLog(Ring(1))
    log.extend(range(300))
    cursor = log.cursor()
    with pytest.raises(Lagged) as info:
        await cursor.receive()
    assert (info.value.missed, info.value.resume_seq) == (299, 299)
    log.close()
    assert await drain(cursor) == [299]


async def test_ring_events_already_fetched_by_async_for_stay_with_the_cursor() -> None:
    log: EventLog[int] = EventLog(Ring(4))
    log.extend(range(4))
    cursor = log.cursor()
    assert await cursor.__anext__() == 0  # fetched 0..3 into the local batch
    log.extend(range(4, 12))
    assert [await cursor.__anext__() for _ in range(3)] == [1, 2, 3]
    with pytest.raises(Lagged) as info:
        await cursor.__anext__()
    assert (info.value.missed, info.value.resume_seq) == (4, 8)


# -- TrimBehindSlowest ---------------------------------------------------------------


async def test_trim_keeps_retention_near_the_lag_of_keeping_up_cursors(
    autojump_clock: MockClock,
) -> None:
    log: EventLog[Obj] = EventLog(TrimBehindSlowest())
    counts = [0, 0]
    max_retained = 0

    async def consume(i: int, cursor: Cursor[Obj]) -> None:
        async with cursor:
            async for _ in cursor:
                counts[i] += 1

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for i in range(2):
                nursery.start_soon(consume, i, log.cursor())
            for start in range(0, 20_000, 16):
                log.extend(Obj(n) for n in range(start, start + 16))
                max_retained = max(max_retained, log.statistics().retained)
                await trio.testing.wait_all_tasks_blocked()
            log.close()
    assert counts == [20_000, 20_000]
    assert max_retained <= 16
    assert len(log._events) <= 600  # trimmed storage is compacted in bulk


def test_trim_keeps_everything_while_no_cursor_is_attached() -> None:
    log: EventLog[int] = EventLog(TrimBehindSlowest())
    log.extend(range(5))
    assert log.first_seq == 0
    cursor = log.cursor()
    assert cursor.receive_batch_nowait(2) == [0, 1]
    assert log.first_seq == 2
    cursor.close()
    log.extend(range(5, 8))
    assert log.first_seq == 2  # nobody attached: nothing more is dropped
    assert log.snapshot() == [2, 3, 4, 5, 6, 7]


def test_trim_waits_for_the_slowest_cursor_and_detaching_it_releases() -> None:
    log: EventLog[int] = EventLog(TrimBehindSlowest())
    slow = log.cursor()
    fast = log.cursor()
    log.extend(range(10))
    fast.receive_batch_nowait()
    assert log.first_seq == 0
    assert slow.receive_batch_nowait(3) == [0, 1, 2]
    assert log.first_seq == 3
    slow.close()
    assert log.first_seq == 10
    assert log.statistics().retained == 0


def test_trim_tells_a_late_cursor_what_it_missed() -> None:
    log: EventLog[int] = EventLog(TrimBehindSlowest())
    early = log.cursor()
    log.extend(range(6))
    early.receive_batch_nowait(4)
    late = log.cursor()  # from 0, but 0..3 are gone
    with pytest.raises(Lagged) as info:
        late.receive_nowait()
    assert (info.value.missed, info.value.resume_seq) == (4, 4)
    assert late.receive_batch_nowait() == [4, 5]
    assert early.receive_batch_nowait() == [4, 5]
    assert log.first_seq == 6


def test_trim_a_live_only_cursor_releases_the_backlog() -> None:
    log: EventLog[int] = EventLog(TrimBehindSlowest())
    log.extend(range(5))
    live = log.cursor(log.next_seq)
    assert log.first_seq == 5
    log.append(5)
    assert live.receive_nowait() == 5
    assert log.first_seq == 6


def test_trim_with_many_cursors_at_distinct_positions() -> None:
    log: EventLog[int] = EventLog(TrimBehindSlowest())
    cursors = [log.cursor() for _ in range(40)]
    log.extend(range(100))
    for i, cursor in enumerate(cursors):
        cursor.receive_batch_nowait(2 * (i + 1))  # positions 2, 4, ..., 80
    assert log.first_seq == 2
    for cursor in cursors[:20]:
        cursor.close()
    assert log.first_seq == 42
    cursors[20].receive_batch_nowait(50)
    assert log.first_seq == 44
    for cursor in cursors[21:]:
        cursor.receive_batch_nowait()
    assert log.first_seq == 92
