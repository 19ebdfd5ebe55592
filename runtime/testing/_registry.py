"""An in-memory session registry: what the websocket feed serves, without a pool.

For testing a dashboard or any other :class:`~runtime._run.registry.SessionRegistry`
reader: the test adds runs, appends their events to plain event logs and finishes them;
the registry publishes the updates a pool would.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from runtime._agent.usage import RunUsage
from runtime._run.eventlog import EventLog
from runtime._run.registry import RegistryUpdate
from runtime._run.retention import Ring
from runtime._run.status import RunSnapshot

if TYPE_CHECKING:
    from runtime._run.cursor import Cursor
    from runtime._run.retention import Retention
    from runtime._run.status import RunStatus

__all__ = ["MemoryRegistry"]


@final
class MemoryRegistry:
    """A ``SessionRegistry`` over plain event logs that the caller appends to.

    Example::

        registry = MemoryRegistry()
        log = registry.add("run_1")
        feed = await nursery.start(serve_event_feed, registry, "127.0.0.1", 0)
        log.append(event)             # every subscriber of run_1 sees it
        registry.finish("run_1")      # status "done", the log closed

    Args:
        model: the model every snapshot names.
        update_buffer: registry updates kept for watchers (a ``Ring``).
    """

    def __init__(self, *, model: str = "test/model", update_buffer: int = 1024) -> None:
        self.model = model
        self.logs: dict[str, EventLog[Any]] = {}
        self.status: dict[str, RunStatus] = {}
        self.updates: EventLog[RegistryUpdate] = EventLog(retention=Ring(update_buffer))

    def add(self, run_id: str, retention: Retention | None = None) -> EventLog[Any]:
        """List a running run and return its (new) event log."""
        log: EventLog[Any] = EventLog() if retention is None else EventLog(retention=retention)
        self.logs[run_id] = log
        self.status[run_id] = "running"
        self._updated(run_id)
        return log

    def finish(self, run_id: str, error: BaseException | None = None) -> None:
        """End a run: ``done`` (its log closed) or ``failed`` with ``error``."""
        self.status[run_id] = "done" if error is None else "failed"
        self.logs[run_id].close(error)
        self._updated(run_id)

    def remove(self, run_id: str) -> None:
        """Stop listing a run (watchers get a ``removed`` update)."""
        snap = self.snapshot(run_id)
        del self.logs[run_id]
        self.updates.append(RegistryUpdate(kind="removed", session=snap))

    def _updated(self, run_id: str) -> None:
        self.updates.append(RegistryUpdate(kind="updated", session=self.snapshot(run_id)))

    # --- SessionRegistry ---------------------------------------------------------

    def sessions(self) -> list[RunSnapshot]:
        return [self.snapshot(run_id) for run_id in self.logs]

    def snapshot(self, run_id: str) -> RunSnapshot:
        log = self.logs[run_id]  # KeyError for a run that is not listed
        error = log.error
        return RunSnapshot(
            id=run_id,
            model=self.model,
            status=self.status[run_id],
            turn=0,
            usage=RunUsage(total_tokens=log.next_seq),
            tool_calls_executed=0,
            next_seq=log.next_seq,
            error=None if error is None else repr(error),
        )

    def events(self, run_id: str, from_seq: int = 0) -> Cursor[Any]:
        return self.logs[run_id].cursor(from_seq)

    def watch(self) -> Cursor[RegistryUpdate]:
        return self.updates.cursor(self.updates.next_seq)
