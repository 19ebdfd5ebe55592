"""The EventLog: one append-only, sequence-numbered log per agent run, read through cursors.

A run's producer (the ModelCall and Session actors) appends events; any number of
consumers read them, each through its own :class:`Cursor`: the user's tasks iterating
streams (``async for`` directly over a cursor, no task hop in between), the Session
actor's own cursor, and one task per websocket feed connection.

The log (storage, appends, wake-ups) is this module; the consumer's side
(:class:`Cursor`, :class:`Lagged`, ``BATCH_LIMIT``) is :mod:`runtime._run.cursor` and
the retention policies are :mod:`runtime._run.retention`. The rules below hold for all
three.

Rules
-----

Rule 1 (order). Every appended event gets the next ``seq``: 0, 1, 2, ... with no
gaps. A cursor yields events in ``seq`` order, each exactly once, and never skips one
silently: the only gap a cursor can ever show is announced by a :class:`Lagged` error
whose ``missed`` is the exact size of the gap.

Rule 2 (the producer never waits and never walks consumers). ``append`` and
``extend`` are synchronous and O(1) (amortized) whatever the number of cursors. They
store the event and, only when at least one task is parked, wake at most *one*
task; woken tasks wake the others (see "Waking" below). A slow consumer never
slows the producer; what it costs is memory (``KeepAll``, ``TrimBehindSlowest``)
or events (``Ring``).

Rule 3 (replay). A cursor starts wherever it is attached, 0 by default, so a late
consumer replays everything still retained and then follows live. With ``KeepAll``
(the default) a late consumer sees exactly what an early one saw.

Rule 4 (end of log). ``close(error=None)`` ends the log. Every cursor first drains
every retained event, then sees ``trio.EndOfChannel`` (clean close) or ``error``
re-raised (the same object every time, with its original traceback). Appending after
``close`` raises ``trio.ClosedResourceError``. A second ``close`` is a no-op: the
first outcome stands, so a late "cancelled" cannot overwrite a failure, nor a late
failure a clean end.

Rule 5 (retention). Retention is a policy chosen per log:

===================== ===========================================================
``KeepAll()``         keep every event (the default, ``KEEP_ALL``).
``TrimBehindSlowest`` drop the events every attached cursor has already fetched.
                      With no cursor attached nothing is dropped, so events
                      appended before the first consumer arrives wait for it. A
                      cursor attached behind ``first_seq`` gets one ``Lagged``.
``Ring(capacity)``    keep the newest ``capacity`` events; a cursor overrun by the
                      producer gets one ``Lagged`` and resumes at ``first_seq``.
===================== ===========================================================

Derived values (final text, usage totals, tool calls) must be accumulated by their
owners as events pass, never recomputed from the log, so that they survive
retention.

Rule 6 (consumer checkpoints). trio's rule is "every async call checkpoints". Here a
cursor's ``receive``, ``receive_batch`` and ``aclose`` each checkpoint once per call
(``receive_batch`` returns many events per call, as a stream's ``receive_some``
returns many bytes). ``async for`` is the exception that keeps fan-out fast: the
cursor fetches up to ``BATCH_LIMIT`` events at once and serves them from a local
batch without a scheduler round trip per event; it checkpoints (or waits) once per
fetched batch, so at least every ``BATCH_LIMIT`` events. A consumer replaying a
million events therefore stays cancellable and lets other tasks run.

Rule 7 (cancellation). A cancelled ``receive``/``receive_batch``/``__anext__``
consumes nothing: the cursor is exactly where it was, and the next call goes on
from there.

Waking
------

Tasks that find nothing to read park in the log's current *generation* (a list of
tasks, in arrival order). News (an append, ``close``, a cursor closed under a
waiting task) swaps in a fresh generation and reschedules only the old
generation's first task. Every woken task, as its first act, reschedules its
children in the implicit ``_FANOUT``-ary tree laid over the generation list
(children of ``i`` are ``_FANOUT*i+1 .. _FANOUT*i+_FANOUT``), so waking K tasks
costs O(1) per task, spread over about log(K) scheduler passes, and the producer
does O(1) work.

While a wake-up is in flight (some rescheduled task has not run yet), news only
sets a flag: the last task of that wake-up to run starts the next one. So a
producer appending faster than a wake-up spreads reschedules nobody, and a
generation never waits longer than the wake-up in flight. A task cancelled while
parked leaves a tombstone, and whoever wakes that slot wakes its children instead.
A spurious wake-up is harmless: a woken cursor re-checks and parks again.

Storage
-------

Events live in one Python list (``list.__getitem__`` with a slice is the cheapest
batch read there is) with ``_base``, the seq of element 0. ``KeepAll`` never
drops anything. ``Ring`` and ``TrimBehindSlowest`` overwrite a dropped slot
with ``None`` on the next append, so a log never references events below
``first_seq`` for long. ``TrimBehindSlowest`` counts attached cursors per
position ("pins"); when the last cursor leaves the lowest pinned position,
``first_seq`` moves to the next pinned one. The dead prefix is deleted in bulk,
by ``append``/``extend`` only, once it is at least half the list (and at least
``_COMPACT_MIN`` long): O(1) amortized per event. Only the producer
restructures the list because ``Cursor.close`` may run from a finalizer (a stream
view's ``__del__``), and on CPython 3.11 the garbage collector runs finalizers
inside any allocation, such as the slice a cursor is taking. Events a cursor has
already fetched into its local ``async for`` batch are held by that cursor (at
most ``BATCH_LIMIT`` per cursor) whatever the policy.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Final, Generic, NoReturn, TypeAlias, TypeVar, final

import msgspec
import trio
from trio.lowlevel import (
    Abort,
    Task,
    current_task,
    enable_ki_protection,
    reschedule,
    wait_task_rescheduled,
)

from runtime._base.errors import ConfigurationError
from runtime._run.cursor import Cursor, Lagged
from runtime._run.retention import KEEP_ALL, KeepAll, Retention, Ring, TrimBehindSlowest

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from trio.lowlevel import RaiseCancelT

__all__ = ["EventLog", "EventLogStatistics"]

E = TypeVar("E")

# Each woken task wakes this many more (see "Waking"). 4 keeps a woken task's extra
# work tiny and needs 5 scheduler passes for 1,000 parked consumers.
_FANOUT: Final = 4
# Bulk deletion of a dead prefix waits until it is at least this long, so that
# short-lived logs and tiny rings never pay for it.
_COMPACT_MIN: Final = 256
# Up to this many distinct pinned positions, min() beats walking seq by seq.
_MIN_SCAN: Final = 16


class EventLogStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of an :class:`EventLog`'s state, from :meth:`EventLog.statistics`.

    Attributes:
        next_seq: the seq the next appended event will get (= events appended so far).
        first_seq: the seq of the oldest retained event.
        retained: how many events are retained (``next_seq - first_seq``).
        cursors_attached: cursors attached and not closed.
        slowest_cursor_lag: the largest ``next_seq - cursor.seq`` over attached
            cursors (0 when none is attached).
        tasks_waiting: tasks parked in a receive call on this log.
        closed: whether :meth:`EventLog.close` was called.
        retention: the policy's kind: ``"keep_all"``, ``"trim_behind_slowest"`` or
            ``"ring"``.
    """

    next_seq: int
    first_seq: int
    retained: int
    cursors_attached: int
    slowest_cursor_lag: int
    tasks_waiting: int
    closed: bool
    retention: str


class _Slot(enum.Enum):
    """What a generation slot holds once its task is no longer parked there."""

    WOKEN = "woken"  # rescheduled (it wakes its own children)
    CANCELLED = "cancelled"  # left by cancellation: its waker wakes its children


_WOKEN: Final = _Slot.WOKEN
_CANCELLED: Final = _Slot.CANCELLED

_Generation: TypeAlias = "list[Task | _Slot]"


@final
class EventLog(Generic[E]):
    """An append-only, seq-numbered event log with any number of cursors.

    One log per agent run. The producer calls :meth:`append` / :meth:`extend` (sync,
    O(1), never blocks) and finally :meth:`close`; each consumer reads through its
    own :meth:`cursor`. See the module docstring for the ordering, retention,
    checkpoint and wake-up rules.

    Args:
        retention: what to keep: :data:`KEEP_ALL` (default), ``TrimBehindSlowest()``
            or ``Ring(capacity)``.
        first_seq: the seq of the first event (0 by default); a log that mirrors
            another one from some point on (a run followed from Redis) starts there.

    Raises:
        ConfigurationError: ``retention`` is not a retention policy, or ``first_seq``
            is not an int >= 0.

    Example::

        log: EventLog[str] = EventLog()
        log.extend(["a", "b"])
        log.close()
        async with log.cursor() as cursor:
            async for event in cursor:
                print(event)  # a, b
    """

    __slots__ = (
        "_base",
        "_capacity",
        "_cleared",
        "_closed",
        "_cursors",
        "_dirty",
        "_error",
        "_error_tb",
        "_events",
        "_first",
        "_inflight",
        "_next",
        "_pins",
        "_retention",
        "_trims",
        "_waiters",
    )

    def __init__(self, retention: Retention = KEEP_ALL, *, first_seq: int = 0) -> None:
        if not isinstance(retention, KeepAll | TrimBehindSlowest | Ring):
            raise ConfigurationError(
                f"retention must be KeepAll(), TrimBehindSlowest() or Ring(capacity), "
                f"got {retention!r}."
            )
        if type(first_seq) is not int or first_seq < 0:
            raise ConfigurationError(f"first_seq must be an int >= 0, got {first_seq!r}.")
        self._retention: Retention = retention
        # list[E], except that Ring overwrites dropped slots with None (see "Storage").
        self._events: list[Any] = []
        self._base = first_seq  # seq of self._events[0]
        self._cleared = first_seq  # every slot below this seq is None (or deleted)
        self._first = first_seq  # seq of the oldest retained event
        self._next = first_seq  # seq of the next event
        self._capacity = retention.capacity if isinstance(retention, Ring) else 0
        # TrimBehindSlowest only: attached cursors per pinned position.
        self._pins: dict[int, int] | None = {} if isinstance(retention, TrimBehindSlowest) else None
        self._trims = not isinstance(retention, KeepAll)
        self._closed = False
        self._error: BaseException | None = None
        self._error_tb: TracebackType | None = None
        self._waiters: _Generation = []
        self._inflight = 0  # tasks rescheduled by a wake-up that have not run yet
        self._dirty = False  # news arrived while a wake-up was in flight
        self._cursors: set[Cursor[E]] = set()

    def __repr__(self) -> str:
        return (
            f"<EventLog next_seq={self._next!r} first_seq={self._first!r} "
            f"cursors={len(self._cursors)!r} closed={self._closed!r} "
            f"retention={self._retention!r}>"
        )

    # -- producer side ---------------------------------------------------------------

    @enable_ki_protection
    def append(self, event: E) -> int:
        """Append one event and wake the cursors waiting for it.

        Synchronous and O(1) whatever the number of cursors (Rule 2).

        Args:
            event: the event; stored as is (the log never copies or inspects it).

        Returns:
            The event's seq.

        Raises:
            trio.ClosedResourceError: the log was closed.
        """
        if self._closed:
            self._raise_closed()
        seq = self._next
        self._events.append(event)
        self._next = seq + 1
        if self._trims:
            self._retain()
        if self._waiters:
            self._notify()
        return seq

    @enable_ki_protection
    def extend(self, events: Iterable[E]) -> int:
        """Append several events with a single wake-up.

        The events get consecutive seqs. ``events`` is read completely before the
        log changes, so if iterating it raises, nothing is appended.

        Args:
            events: the events, in order.

        Returns:
            The log's ``next_seq`` afterwards: the batch took the seqs from the
            ``next_seq`` before the call up to (excluding) this value.

        Raises:
            trio.ClosedResourceError: the log was closed.
        """
        if self._closed:
            self._raise_closed()
        batch = events if isinstance(events, list) else list(events)
        if batch:
            self._events += batch
            self._next += len(batch)
            if self._trims:
                self._retain()
            if self._waiters:
                self._notify()
        return self._next

    @enable_ki_protection
    def close(self, error: BaseException | None = None) -> None:
        """End the log: no more appends; cursors drain, then see the outcome.

        Cursors first receive every retained event, then ``trio.EndOfChannel`` if
        ``error`` is ``None``, or ``error`` itself, re-raised on every later receive
        with its original traceback. Waiting cursors wake up. Closing an already
        closed log does nothing: the first outcome stands.

        Args:
            error: why the run failed, or ``None`` for a clean end.

        Raises:
            ConfigurationError: ``error`` is neither ``None`` nor an exception.
        """
        if error is not None and not isinstance(error, BaseException):
            raise ConfigurationError(f"error must be an exception or None, got {error!r}.")
        if self._closed:
            return
        self._closed = True
        if error is not None:
            self._error = error
            self._error_tb = error.__traceback__
        if self._waiters:
            self._notify()

    @enable_ki_protection
    def skip_to(self, seq: int) -> None:
        """Declare every event before ``seq`` gone: numbering goes on at ``seq``.

        For a log that mirrors another one (a run followed from Redis) whose
        source dropped events this log never received. Everything retained is
        dropped too, so a cursor still behind ``seq`` gets one :class:`Lagged`
        with the exact number of events it will never see, as if a ``Ring`` had
        overrun it. Synchronous; a no-op when ``seq`` is :attr:`next_seq`.

        Args:
            seq: the seq of the next event to append, at least :attr:`next_seq`.

        Raises:
            ConfigurationError: ``seq`` is below :attr:`next_seq`, or the log
                uses ``TrimBehindSlowest`` (whose cursors pin positions).
            trio.ClosedResourceError: the log was closed.
        """
        if self._closed:
            self._raise_closed()
        if type(seq) is not int or seq < self._next:
            raise ConfigurationError(
                f"seq must be an int >= next_seq ({self._next!r}), got {seq!r}."
            )
        if self._pins is not None:
            raise ConfigurationError("skip_to is not available under TrimBehindSlowest.")
        if seq == self._next:
            return
        self._events = []
        self._base = self._cleared = self._first = self._next = seq
        if self._waiters:
            self._notify()

    # -- reading ---------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """The seq the next appended event will get (the number of events appended)."""
        return self._next

    @property
    def first_seq(self) -> int:
        """The seq of the oldest retained event (``next_seq`` when none is retained)."""
        return self._first

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """The error the log was closed with, or ``None``."""
        return self._error

    @property
    def retention(self) -> Retention:
        """The log's retention policy."""
        return self._retention

    def cursor(self, from_seq: int = 0) -> Cursor[E]:
        """Attach a new cursor that reads from ``from_seq`` on.

        The default, 0, replays everything retained and then follows live; pass
        :attr:`next_seq` to follow live only. Attaching to a closed log is allowed
        (the cursor replays what is retained, then sees the log's outcome). If
        ``from_seq`` is below :attr:`first_seq`, the cursor's first receive raises
        :class:`Lagged`.

        The caller owns the cursor and must close it (``async with`` or
        :meth:`Cursor.close`): under ``TrimBehindSlowest`` an attached cursor holds
        back trimming.

        Args:
            from_seq: the seq of the first event to read, ``0 <= from_seq <= next_seq``.

        Returns:
            A new, independent cursor.

        Raises:
            ConfigurationError: ``from_seq`` is not an int in ``[0, next_seq]``.
        """
        return Cursor(self, from_seq)

    def snapshot(self, from_seq: int | None = None) -> list[E]:
        """Copy the retained events from ``from_seq`` (default: :attr:`first_seq`) on.

        For a reader that resyncs in bulk (the websocket feed) rather than through
        a cursor. Never blocks and never returns a silent gap.

        Args:
            from_seq: the seq of the first event wanted, at most :attr:`next_seq`.

        Returns:
            A new list of the events ``from_seq .. next_seq - 1``.

        Raises:
            Lagged: ``from_seq`` is below :attr:`first_seq`; ``resume_seq`` says
                where to snapshot from instead.
            ConfigurationError: ``from_seq`` is not an int in ``[0, next_seq]``.
        """
        if from_seq is None:
            from_seq = self._first
        elif type(from_seq) is not int or not 0 <= from_seq <= self._next:
            raise ConfigurationError(
                f"from_seq must be an int between 0 and next_seq ({self._next!r}), "
                f"got {from_seq!r}."
            )
        if from_seq < self._first:
            raise Lagged(self._first - from_seq, self._first)
        return self._events[from_seq - self._base : self._next - self._base]

    def statistics(self) -> EventLogStatistics:
        """Return a snapshot of the log's state (O(number of cursors))."""
        next_seq = self._next
        return EventLogStatistics(
            next_seq=next_seq,
            first_seq=self._first,
            retained=next_seq - self._first,
            cursors_attached=len(self._cursors),
            # Copies first: a finalizer may close a cursor while we iterate.
            slowest_cursor_lag=max([next_seq - c.seq for c in tuple(self._cursors)], default=0),
            tasks_waiting=sum([isinstance(slot, Task) for slot in tuple(self._waiters)]),
            closed=self._closed,
            retention=str(self._retention.__struct_config__.tag),
        )

    # -- internals -------------------------------------------------------------------

    def _raise_closed(self) -> NoReturn:
        raise trio.ClosedResourceError(
            f"Cannot append to a closed event log (next_seq={self._next!r})."
        )

    def _retain(self) -> None:
        # Producer side only (see "Storage"): apply Ring's window, then delete the
        # dead prefix in bulk once it is at least half the list.
        events = self._events
        base = self._base
        if self._capacity:
            first = self._next - self._capacity
            if first > self._first:
                self._first = first
        # Drop the references to events no cursor can read any more at once, for
        # Ring and TrimBehindSlowest alike, so memory follows first_seq and not
        # the (lazier) bulk deletion below.
        first = self._first
        cleared = self._cleared
        if first > cleared:
            if first == cleared + 1:
                events[cleared - base] = None
            else:
                events[cleared - base : first - base] = [None] * (first - cleared)
            self._cleared = first
        dead = first - base
        if dead >= _COMPACT_MIN and dead * 2 >= len(events):
            del events[:dead]
            self._base = self._first

    def _raise_floor(self, pins: dict[int, int]) -> None:
        # The lowest pinned position just emptied and another one is pinned.
        if len(pins) <= _MIN_SCAN:
            first = min(pins)
        else:
            # Each seq is stepped over at most once in the log's life: O(1) amortized.
            first = self._first + 1
            while first not in pins:
                first += 1
        self._first = first

    def _attach(self, cursor: Cursor[E], from_seq: int) -> None:
        self._cursors.add(cursor)
        pins = self._pins
        if pins is not None:
            if not pins and from_seq > self._first:
                # The only attached cursor has passed these events (Rule 5).
                self._first = from_seq
            position = max(from_seq, self._first)
            pins[position] = pins.get(position, 0) + 1

    def _detach(self, cursor: Cursor[E]) -> None:
        self._cursors.discard(cursor)
        pins = self._pins
        if pins is not None:
            position = max(cursor._pos, self._first)
            count = pins[position]
            if count == 1:
                del pins[position]
                if pins and position == self._first:
                    self._raise_floor(pins)
            else:
                pins[position] = count - 1

    def _move_pin(self, pins: dict[int, int], old: int, new: int) -> None:
        count = pins[old]
        if count == 1:
            del pins[old]
        else:
            pins[old] = count - 1
        pins[new] = pins.get(new, 0) + 1
        if count == 1 and old == self._first:
            self._raise_floor(pins)

    def _notify(self) -> None:
        # There is news and someone is parked (see "Waking").
        if self._inflight:
            self._dirty = True  # the last task of the running wake-up wakes them
        else:
            self._wake()

    def _wake(self) -> None:
        generation = self._waiters
        self._waiters = []
        self._dirty = False
        self._wake_slot(generation, 0)

    def _wake_slot(self, generation: _Generation, index: int) -> None:
        slot = generation[index]
        generation[index] = _WOKEN
        if slot is _CANCELLED:
            self._wake_children(generation, index)
        elif slot is not _WOKEN:
            self._inflight += 1
            reschedule(slot)

    def _wake_children(self, generation: _Generation, index: int) -> None:
        first = index * _FANOUT + 1
        for child in range(first, min(first + _FANOUT, len(generation))):
            self._wake_slot(generation, child)

    @enable_ki_protection
    async def _park(self) -> None:
        """Sleep until the next append/close (or a spurious wake-up)."""
        generation = self._waiters
        index = len(generation)
        generation.append(current_task())

        def abort(_: RaiseCancelT) -> Abort:
            generation[index] = _CANCELLED
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)
        # Woken: pass the wake-up on, first down the tree, then (if this task was
        # the last one in flight and news came meanwhile) to the next generation.
        self._wake_children(generation, index)
        self._inflight -= 1
        if self._dirty and not self._inflight:
            self._wake()  # _dirty implies the current generation is not empty
