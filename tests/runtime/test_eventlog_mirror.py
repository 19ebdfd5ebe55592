"""EventLog as a mirror of another log: ``first_seq`` and ``skip_to`` (the Redis reader's needs)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from runtime._base.errors import ConfigurationError
from runtime._run.cursor import Lagged
from runtime._run.eventlog import EventLog
from runtime._run.retention import Ring, TrimBehindSlowest


async def test_a_log_can_start_at_any_seq() -> None:
    log: EventLog[str] = EventLog(first_seq=40)
    assert (log.first_seq, log.next_seq) == (40, 40)
    assert log.append("a") == 40
    log.extend(["b", "c"])
    log.close()
    cursor = log.cursor(40)
    assert [e async for e in cursor] == ["a", "b", "c"]
    assert log.snapshot(41) == ["b", "c"]
    with pytest.raises(Lagged) as lagged:
        log.cursor(0).receive_nowait()
    assert (lagged.value.missed, lagged.value.resume_seq) == (40, 40)


@pytest.mark.parametrize("bad", [-1, 1.0, "3", True])
def test_first_seq_must_be_a_non_negative_int(bad: object) -> None:
    with pytest.raises(ConfigurationError, match=repr(bad)):
        EventLog(first_seq=bad)  # type: ignore[arg-type]


async def test_skip_to_lags_every_cursor_behind_by_the_exact_count() -> None:
    log: EventLog[int] = EventLog()
    log.extend(range(5))
    early = log.cursor(0)
    middle = log.cursor(0)
    assert middle.receive_batch_nowait(3) == [0, 1, 2]
    log.skip_to(9)
    log.extend([9, 10])
    with pytest.raises(Lagged) as lagged:
        early.receive_nowait()
    assert (lagged.value.missed, lagged.value.resume_seq) == (9, 9)
    with pytest.raises(Lagged) as lagged:
        middle.receive_nowait()
    assert (lagged.value.missed, lagged.value.resume_seq) == (6, 9)
    assert early.receive_batch_nowait() == [9, 10]
    assert log.statistics().retained == 2


async def test_skip_to_wakes_a_waiting_cursor_with_lagged() -> None:
    log: EventLog[int] = EventLog(Ring(4))
    cursor = log.cursor(0)
    caught: list[Lagged] = []

    async def wait() -> None:
        try:
            await cursor.receive()
        except Lagged as exc:
            caught.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            log.skip_to(3)
    assert [(e.missed, e.resume_seq) for e in caught] == [(3, 3)]


def test_skip_to_refuses_going_back_trim_behind_slowest_and_a_closed_log() -> None:
    log: EventLog[int] = EventLog()
    log.extend([1, 2])
    log.skip_to(2)  # a no-op
    assert log.next_seq == 2
    with pytest.raises(ConfigurationError, match="1"):
        log.skip_to(1)
    with pytest.raises(ConfigurationError, match="TrimBehindSlowest"):
        EventLog(TrimBehindSlowest()).skip_to(3)
    log.close()
    with pytest.raises(trio.ClosedResourceError):
        log.skip_to(5)
