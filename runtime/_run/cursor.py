"""A consumer's side of an :class:`~runtime._run.eventlog.EventLog`: :class:`Cursor`.

One :class:`Cursor` per consumer, a trio ``ReceiveChannel`` over the log's storage
(the log's module docstring states the rules: order, replay, end of log, consumer
checkpoints, cancellation). :class:`Lagged` is what a cursor raises, once, when it
fell behind the log's retention; ``BATCH_LIMIT`` bounds one fetch. The hot path is
``async for``: a local batch served with no scheduler round trip per event, and one
slice of the log's list per fetch.
"""

from __future__ import annotations

from itertools import islice
from operator import length_hint
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar, final

import trio
from trio.abc import ReceiveChannel
from trio.lowlevel import checkpoint, enable_ki_protection

from runtime._base.errors import AgentError, ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from runtime._run.eventlog import EventLog

__all__ = ["BATCH_LIMIT", "Cursor", "Lagged"]

E = TypeVar("E")

BATCH_LIMIT: Final = 512
"""Most events one ``async for`` fetch (and one default ``receive_batch``) returns."""


class Lagged(AgentError, trio.TooSlowError):
    """A cursor fell behind the log's retention and missed events.

    Raised once, by the receive call that would have returned the first missed
    event. The cursor has then already moved to ``resume_seq`` (the oldest retained
    event), so a consumer may catch it and keep receiving, as with a broadcast
    channel. Also a ``trio.TooSlowError``.

    Attributes:
        missed: how many events the cursor will never see.
        resume_seq: the seq of the next event the cursor returns.
    """

    def __init__(self, missed: int, resume_seq: int) -> None:
        super().__init__(missed, resume_seq)
        self.missed = missed
        self.resume_seq = resume_seq

    def __str__(self) -> str:
        return (
            f"The cursor missed {self.missed!r} events that the log's retention had "
            f"dropped, and resumes at seq {self.resume_seq!r}."
        )


_NOTHING: Final[Iterator[Any]] = iter(())


@final
class Cursor(ReceiveChannel[E]):
    """One consumer's position in an :class:`EventLog`, as a trio ``ReceiveChannel``.

    Get one from :meth:`EventLog.cursor`. ``async for event in cursor`` is the fast
    path (Rule 6); ``receive_batch`` is the fast path for code that handles events
    in groups. A cursor is meant for one consuming task; several tasks may share
    one, and then each event goes to exactly one of them, as with a memory channel.

    Ownership: the caller owns the cursor. ``close()`` / ``aclose()`` (or leaving
    ``async with cursor:``) detaches it; later receives raise
    ``trio.ClosedResourceError``. Closing is idempotent, and a task waiting on the
    cursor at that moment also gets ``trio.ClosedResourceError``.

    Buffering: none of its own beyond the log (and, during ``async for``, a local
    batch of at most ``BATCH_LIMIT`` already-fetched events). The producer never
    waits for a cursor; a cursor that falls behind a ``Ring`` gets :class:`Lagged`.

    Args:
        log: the log to read.
        from_seq: the seq of the first event to read (see :meth:`EventLog.cursor`).

    Raises:
        ConfigurationError: ``from_seq`` is not an int in ``[0, log.next_seq]``.
    """

    __slots__ = ("_closed", "_it", "_log", "_pos", "_waiting")

    def __init__(self, log: EventLog[E], from_seq: int = 0) -> None:
        if type(from_seq) is not int or not 0 <= from_seq <= log._next:
            raise ConfigurationError(
                f"from_seq must be an int between 0 and next_seq ({log._next!r}), got {from_seq!r}."
            )
        self._log = log
        self._pos = from_seq  # the seq of the next event to fetch from the log
        self._it: Iterator[E] = _NOTHING  # fetched, not yet returned (async for)
        self._closed = False
        self._waiting = 0  # tasks of this cursor parked in the log
        log._attach(self, from_seq)

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<Cursor seq={self.seq!r}{state} of {self._log!r}>"

    @property
    def seq(self) -> int:
        """The seq of the next event this cursor will return."""
        return self._pos - length_hint(self._it)

    @property
    def closed(self) -> bool:
        """Whether the cursor was closed (detached)."""
        return self._closed

    # -- synchronous API -------------------------------------------------------------

    def receive_nowait(self) -> E:
        """Return the next event if there is one, without blocking.

        Returns:
            The event at :attr:`seq`.

        Raises:
            trio.WouldBlock: no event yet and the log is open.
            trio.EndOfChannel: the log was closed cleanly and everything was read.
            Lagged: the cursor fell behind retention (raised once; then it resumes).
            trio.ClosedResourceError: this cursor was closed.
            BaseException: the error the log was closed with, once everything was read.
        """
        if self._closed:
            self._raise_cursor_closed()
        for event in self._it:
            return event
        log = self._log
        pos = self._pos
        if log._first <= pos < log._next:
            event = log._events[pos - log._base]
            self._pos = pos + 1
            if log._pins is not None:
                log._move_pin(log._pins, pos, pos + 1)
            return event
        self._raise_empty()

    def receive_batch_nowait(self, max_events: int = BATCH_LIMIT) -> list[E]:
        """Return every available event, up to ``max_events``, without blocking.

        Args:
            max_events: the most events to return, at least 1.

        Returns:
            A new, non-empty list of consecutive events starting at :attr:`seq`.

        Raises:
            ConfigurationError: ``max_events`` is below 1.
            trio.WouldBlock, trio.EndOfChannel, Lagged, trio.ClosedResourceError, or the
                log's error: as :meth:`receive_nowait`, only when no event is available.
        """
        if self._closed:
            self._raise_cursor_closed()
        if type(max_events) is not int or max_events < 1:
            raise ConfigurationError(f"max_events must be a positive int, got {max_events!r}.")
        if length_hint(self._it):
            batch = list(islice(self._it, max_events))
            if len(batch) < max_events:
                batch += self._fetch(max_events - len(batch))
            return batch
        batch = self._fetch(max_events)
        if batch:
            return batch
        self._raise_empty()

    @enable_ki_protection
    def close(self) -> None:
        """Detach from the log; idempotent. Later receives raise ``ClosedResourceError``.

        Events fetched but not yet returned are dropped with the cursor.
        """
        if self._closed:
            return
        self._closed = True
        self._it = _NOTHING
        log = self._log
        log._detach(self)
        if self._waiting and log._waiters:
            log._notify()  # our waiting task must see the close; others re-park

    # -- async API -------------------------------------------------------------------

    async def receive(self) -> E:
        """Wait for the next event and return it.

        A checkpoint: exactly one scheduler round trip per call (the wait itself,
        or ``trio.lowlevel.checkpoint()`` when an event is already there). If
        cancelled, nothing was consumed. For throughput use ``async for`` or
        :meth:`receive_batch`.

        Returns:
            The event at :attr:`seq`.

        Raises:
            trio.EndOfChannel: the log was closed cleanly and everything was read.
            Lagged: the cursor fell behind retention (raised once; then it resumes).
            trio.ClosedResourceError: this cursor was closed (also while waiting).
            BaseException: the error the log was closed with, once everything was read.
        """
        await self._ready()
        while True:
            try:
                return self.receive_nowait()
            except trio.WouldBlock:  # another task sharing this cursor got there first
                await self._wait()

    async def receive_batch(self, max_events: int = BATCH_LIMIT) -> list[E]:
        """Wait until at least one event is available, then return up to ``max_events``.

        The fast path for consumers that handle events in groups: one checkpoint
        per call however many events it returns. If cancelled, nothing was
        consumed.

        Args:
            max_events: the most events to return, at least 1.

        Returns:
            A new, non-empty list of consecutive events starting at :attr:`seq`.

        Raises:
            ConfigurationError: ``max_events`` is below 1.
            trio.EndOfChannel, Lagged, trio.ClosedResourceError, or the log's error: as
                :meth:`receive`.
        """
        if type(max_events) is not int or max_events < 1:
            raise ConfigurationError(f"max_events must be a positive int, got {max_events!r}.")
        await self._ready()
        while True:
            try:
                return self.receive_batch_nowait(max_events)
            except trio.WouldBlock:  # another task sharing this cursor got there first
                await self._wait()

    async def aclose(self) -> None:
        """Close the cursor (see :meth:`close`); a checkpoint."""
        self.close()
        await checkpoint()

    async def __anext__(self) -> E:
        # The hot path: serve the local batch with no scheduler round trip (Rule 6).
        for event in self._it:
            return event
        return await self._next_batch()

    async def _next_batch(self) -> E:
        await self._ready()
        while True:
            for event in self._it:  # another task sharing this cursor refilled it
                return event
            if self._closed:
                self._raise_cursor_closed()
            batch = self._fetch(BATCH_LIMIT)
            if batch:
                it = iter(batch)
                self._it = it
                return next(it)
            try:
                self._raise_empty()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
            except trio.WouldBlock:  # another task sharing this cursor got there first
                await self._wait()

    # -- internals -------------------------------------------------------------------

    async def _ready(self) -> None:
        """Checkpoint once, by waiting if there is nothing to report yet."""
        log = self._log
        if self._pos < log._next or log._closed or self._closed or length_hint(self._it):
            await checkpoint()
        else:
            await self._wait()

    async def _wait(self) -> None:
        log = self._log
        self._waiting += 1
        try:
            while (
                self._pos >= log._next
                and not log._closed
                and not self._closed
                and not length_hint(self._it)
            ):
                await log._park()
        finally:
            self._waiting -= 1

    def _fetch(self, limit: int) -> list[E]:
        """Take up to ``limit`` events from the log; ``[]`` if none can be taken."""
        log = self._log
        pos = self._pos
        end = log._next
        if pos >= end or pos < log._first:
            return []
        if end - pos > limit:
            end = pos + limit
        base = log._base
        batch = log._events[pos - base : end - base]
        self._pos = end
        if log._pins is not None:
            log._move_pin(log._pins, pos, end)
        return batch

    def _raise_empty(self) -> NoReturn:
        """Raise why nothing can be returned now."""
        log = self._log
        first = log._first
        pos = self._pos
        if pos < first:
            self._pos = first  # under TrimBehindSlowest the pin is already at first
            raise Lagged(first - pos, first)
        if log._closed and pos >= log._next:
            error = log._error
            if error is None:
                raise trio.EndOfChannel
            raise error.with_traceback(log._error_tb)
        raise trio.WouldBlock

    def _raise_cursor_closed(self) -> NoReturn:
        raise trio.ClosedResourceError(f"The cursor at seq {self.seq!r} was closed.")
