"""Stateful property test of runtime._run.eventlog against a model, for every retention policy.

Hypothesis drives any interleaving of append / extend / attach (from 0 or from
``next_seq``) / detach / ``receive_nowait`` / ``receive_batch_nowait`` / one
``async for`` step / close (clean or with an error). The model predicts every
outcome exactly; the invariants check the statistics and the retained window, and
the teardown checks that every consumer saw a gap-free, ordered sequence whose only
gaps are announced ``Lagged`` errors of exactly the missed size (none at all under
``KeepAll``, where every consumer from 0 sees the same sequence).

Events are ints equal to their seq, so a value names its position in the log.
The ``async for`` step runs in its own ``trio.run`` and is only taken when the
model says it cannot block.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from runtime._run.cursor import BATCH_LIMIT, Cursor, Lagged
from runtime._run.eventlog import EventLog
from runtime._run.retention import KeepAll, Retention, Ring, TrimBehindSlowest


class Consumer:
    """The model of one cursor."""

    def __init__(self, cursor: Cursor[int], start: int) -> None:
        self.cursor = cursor
        self.start = start
        self.fetched = start  # the cursor's position in the log
        self.local: list[int] = []  # fetched by ``async for``, not yet returned
        self.history: list[tuple[str, int, int]] = []  # ("event", v, 0) / ("lag", missed, resume)

    @property
    def seq(self) -> int:
        return self.fetched - len(self.local)


class EventLogMachine(RuleBasedStateMachine):
    kind: str = "keep_all"

    def __init__(self) -> None:
        super().__init__()
        self.log: EventLog[int] = EventLog()
        self.capacity = 0
        self.next = 0
        self.first = 0
        self.closed = False
        self.error: BaseException | None = None
        self.consumers: list[Consumer] = []
        self.retired: list[Consumer] = []

    @initialize(capacity=st.integers(min_value=1, max_value=8))
    def create(self, capacity: int) -> None:
        policy: Retention
        if self.kind == "ring":
            self.capacity = capacity
            policy = Ring(capacity)
        elif self.kind == "trim_behind_slowest":
            policy = TrimBehindSlowest()
        else:
            policy = KeepAll()
        self.log = EventLog(policy)

    # -- the model's retention floor -----------------------------------------------

    def _update_first(self) -> None:
        if self.kind == "ring":
            self.first = max(self.first, self.next - self.capacity)
        elif self.kind == "trim_behind_slowest" and self.consumers:
            self.first = min(max(c.fetched, self.first) for c in self.consumers)

    def _pick(self, index: int) -> Consumer:
        return self.consumers[index % len(self.consumers)]

    def _expect_end(self, call: Any) -> None:
        if self.error is None:
            with pytest.raises(trio.EndOfChannel):
                call()
        else:
            with pytest.raises(type(self.error)) as info:
                call()
            assert info.value is self.error

    def _expect_lag(self, consumer: Consumer, call: Any) -> None:
        with pytest.raises(Lagged) as info:
            call()
        missed = self.first - consumer.fetched
        assert (info.value.missed, info.value.resume_seq) == (missed, self.first)
        consumer.history.append(("lag", missed, self.first))
        consumer.fetched = self.first

    def _take(self, consumer: Consumer, limit: int) -> list[int]:
        end = min(self.next, consumer.fetched + limit)
        taken = list(range(consumer.fetched, end))
        consumer.fetched = end
        return taken

    # -- rules -----------------------------------------------------------------------

    @rule()
    def append(self) -> None:
        if self.closed:
            with pytest.raises(trio.ClosedResourceError):
                self.log.append(self.next)
            return
        assert self.log.append(self.next) == self.next
        self.next += 1
        self._update_first()

    @rule(count=st.integers(min_value=0, max_value=12))
    def extend(self, count: int) -> None:
        events = list(range(self.next, self.next + count))
        if self.closed:
            with pytest.raises(trio.ClosedResourceError):
                self.log.extend(events)
            return
        self.next += count
        assert self.log.extend(events) == self.next
        self._update_first()

    @rule(live=st.booleans())
    def attach(self, live: bool) -> None:
        start = self.next if live else 0
        if self.kind == "trim_behind_slowest" and not self.consumers:
            self.first = max(self.first, start)
        self.consumers.append(Consumer(self.log.cursor(start), start))
        self._update_first()

    @precondition(lambda self: self.consumers)
    @rule(index=st.integers(min_value=0, max_value=7))
    def detach(self, index: int) -> None:
        consumer = self._pick(index)
        consumer.cursor.close()
        consumer.cursor.close()
        self.consumers.remove(consumer)
        self.retired.append(consumer)
        self._update_first()
        with pytest.raises(trio.ClosedResourceError):
            consumer.cursor.receive_nowait()

    @precondition(lambda self: self.consumers)
    @rule(index=st.integers(min_value=0, max_value=7))
    def receive_nowait(self, index: int) -> None:
        consumer = self._pick(index)
        call = consumer.cursor.receive_nowait
        if consumer.local:
            value = consumer.local.pop(0)
        elif consumer.fetched < self.first:
            self._expect_lag(consumer, call)
            return
        elif consumer.fetched < self.next:
            value = self._take(consumer, 1)[0]
        elif self.closed:
            self._expect_end(call)
            return
        else:
            with pytest.raises(trio.WouldBlock):
                call()
            return
        assert call() == value
        consumer.history.append(("event", value, 0))
        self._update_first()

    @precondition(lambda self: self.consumers)
    @rule(
        index=st.integers(min_value=0, max_value=7),
        limit=st.integers(min_value=1, max_value=20),
    )
    def receive_batch_nowait(self, index: int, limit: int) -> None:
        consumer = self._pick(index)

        def call() -> list[int]:
            return consumer.cursor.receive_batch_nowait(limit)

        if consumer.local:
            expected = consumer.local[:limit]
            del consumer.local[:limit]
            if len(expected) < limit and self.first <= consumer.fetched:
                expected += self._take(consumer, limit - len(expected))
        elif consumer.fetched < self.first:
            self._expect_lag(consumer, call)
            return
        elif consumer.fetched < self.next:
            expected = self._take(consumer, limit)
        elif self.closed:
            self._expect_end(call)
            return
        else:
            with pytest.raises(trio.WouldBlock):
                call()
            return
        assert call() == expected
        consumer.history.extend(("event", value, 0) for value in expected)
        self._update_first()

    @precondition(lambda self: self.consumers)
    @rule(index=st.integers(min_value=0, max_value=7))
    def async_for_step(self, index: int) -> None:
        consumer = self._pick(index)

        def call() -> int:
            return trio.run(consumer.cursor.__anext__)

        if consumer.local:
            value = consumer.local.pop(0)
        elif consumer.fetched < self.first:
            self._expect_lag(consumer, call)
            return
        elif consumer.fetched < self.next:
            batch = self._take(consumer, BATCH_LIMIT)
            value = batch[0]
            consumer.local = batch[1:]
        elif self.closed:
            if self.error is None:
                with pytest.raises(StopAsyncIteration):
                    call()
            else:
                self._expect_end(call)
            return
        else:
            return  # it would wait: not something a synchronous step can do
        assert call() == value
        consumer.history.append(("event", value, 0))
        self._update_first()

    @rule(with_error=st.booleans())
    def close(self, with_error: bool) -> None:
        error = RuntimeError("run failed") if with_error else None
        self.log.close(error)
        if not self.closed:
            self.closed = True
            self.error = error
        assert self.log.closed
        assert self.log.error is self.error

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def statistics_match_the_model(self) -> None:
        stats = self.log.statistics()
        assert stats.next_seq == self.log.next_seq == self.next
        assert stats.first_seq == self.log.first_seq == self.first
        assert stats.retained == self.next - self.first
        assert stats.cursors_attached == len(self.consumers)
        assert stats.slowest_cursor_lag == max(
            (self.next - c.seq for c in self.consumers), default=0
        )
        assert stats.tasks_waiting == 0
        assert stats.closed == self.closed
        assert stats.retention == self.kind
        assert [c.cursor.seq for c in self.consumers] == [c.seq for c in self.consumers]

    @invariant()
    def the_retained_window_is_right(self) -> None:
        assert self.log.snapshot() == list(range(self.first, self.next))
        if self.kind == "keep_all":
            assert self.first == 0
        elif self.kind == "ring":
            assert self.next - self.first <= self.capacity

    def teardown(self) -> None:
        for consumer in self.consumers + self.retired:
            expected = consumer.start
            for kind, a, b in consumer.history:
                if kind == "event":
                    assert a == expected, consumer.history
                    expected += 1
                else:
                    assert self.kind != "keep_all"
                    assert b == expected + a, consumer.history
                    expected = b
        if self.kind == "keep_all":
            sequences = [
                [a for _, a, _ in c.history] for c in self.consumers + self.retired if c.start == 0
            ]
            for sequence in sequences:
                assert sequence == list(range(len(sequence)))
        for consumer in self.consumers:
            consumer.cursor.close()


_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class KeepAllMachine(EventLogMachine):
    kind = "keep_all"


class TrimBehindSlowestMachine(EventLogMachine):
    kind = "trim_behind_slowest"


class RingMachine(EventLogMachine):
    kind = "ring"


TestKeepAll = KeepAllMachine.TestCase
TestKeepAll.settings = _SETTINGS
TestTrimBehindSlowest = TrimBehindSlowestMachine.TestCase
TestTrimBehindSlowest.settings = _SETTINGS
TestRing = RingMachine.TestCase
TestRing.settings = _SETTINGS
