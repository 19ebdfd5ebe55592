"""The shared state of one run: its spec (fixed at ``call_model``), its live state, its usage.

Written by the Session actor (``actors._session``), read by ``ModelResult`` and
by the session registry. Derived values are accumulated incrementally as the
run goes, so they survive any retention policy of the event log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import msgspec
import trio

from runtime._agent.state import (  # noqa: TC001 - msgspec resolves it at run time
    ConversationState,
)
from runtime._agent.stop import StepResult  # noqa: TC001 - msgspec resolves it at run time
from runtime._agent.usage import RunUsage
from runtime._protocol.wire import (  # noqa: TC001 - msgspec resolves them at run time
    ParsedToolCall,
    Response,
)
from runtime._run.eventlog import EventLog

if TYPE_CHECKING:
    from collections.abc import Callable

    from runtime._agent.context import ContextUpdate
    from runtime._agent.inputs import ToolSource
    from runtime._agent.output import OutputSpec
    from runtime._agent.state import Decisions
    from runtime._agent.tools import Tool

__all__ = [
    "CHECKPOINT_VERSION",
    "DEFAULT_FINAL_RESPONSE_DIRECTIVE",
    "FINISHED",
    "TRANSITIONS",
    "RunSnapshot",
    "RunSpec",
    "RunState",
    "RunStatus",
    "RunUsage",
    "TurnCheckpoint",
]

CHECKPOINT_VERSION: Final = 2
"""The version of :class:`TurnCheckpoint`'s encoding (2: the conversation is a
``ConversationState``, the format of ``call_model(state=...)``)."""

RunStatus: TypeAlias = Literal[
    "pending", "queued", "running", "in_tool", "done", "failed", "cancelled"
]
"""Where a run is: ``pending`` (not started), ``queued`` (waiting for a pool's admission),
``running`` (a model call), ``in_tool`` (a tool round), then one of the terminal
``done``, ``failed``, ``cancelled``."""

TRANSITIONS: Final[dict[RunStatus, frozenset[RunStatus]]] = {
    "pending": frozenset({"queued", "running", "failed", "cancelled"}),
    "queued": frozenset({"running", "failed", "cancelled"}),
    "running": frozenset({"in_tool", "done", "failed", "cancelled"}),
    "in_tool": frozenset({"running", "done", "failed", "cancelled"}),
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
"""The one table of allowed status changes; :meth:`RunState.move_to` enforces it."""

FINISHED: Final[frozenset[RunStatus]] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
"""The terminal statuses: no transition leaves them."""

DEFAULT_FINAL_RESPONSE_DIRECTIVE: Final = (
    "The tool-call budget for this conversation is used up. Using the information above, "
    "give your final answer now without calling any more tools."
)
"""The user message ``allow_final_response=True`` appends to ask for a final answer."""


class RunSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a run needs, fixed when ``call_model`` returns (no I/O yet)."""

    request: dict[str, Any]
    tools: tuple[Tool | dict[str, Any] | ToolSource, ...] = ()
    stop_when: tuple[Any, ...] = ()
    allow_final_response: bool | str = True
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    retry: Any = None
    tool_concurrency: int | None = None
    tool_timeout: float | None = None
    tool_errors: str = "model"
    on_turn_start: Any = None
    on_turn_end: Any = None
    deadline: float | None = None
    """Seconds the whole run may take from its start; ``None``: no limit."""
    stream_idle_timeout: float | None = None
    """Seconds a model call's stream may go without an event; ``None``: no limit."""
    checkpoint: Any = None
    """``async (TurnCheckpoint) -> None``, awaited at each turn boundary (DESIGN §8)."""
    resume: TurnCheckpoint | None = None
    """Go on from this checkpoint instead of starting with turn 0."""
    resumed: bool = False
    """The run was started before in a process that was lost (a ``turn.retry`` event
    marks where the new attempt begins, also when there is no checkpoint)."""
    tool_guard: Any = None
    """Claims each tool call id before it runs and records each outcome as it settles
    (``claim``, ``record``): a call id claimed before is never run again."""
    output: OutputSpec | None = None
    """What ``call_model(output=...)`` asked for (structured output), or ``None``."""
    state: Any = None
    """The ``StateAccessor`` of ``call_model(state=...)`` (approvals, resumable conversations)."""
    decisions: Decisions | None = None
    require_approval: Any = None
    context: dict[str, Any] | None = None
    shared_context_schema: Any = None


class TurnCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """Where a run can go on in another process: right after model turn ``turn``
    answered with tool calls, before the round runs them (DESIGN §8).

    The conversation part is a :class:`~runtime._agent.state.ConversationState`,
    the very document ``call_model(state=...)`` saves (approvals, resumable
    conversations): its ``messages`` end with the response's output items, its
    ``pending_tool_calls`` are the calls about to run, its ``context`` holds the
    tool contexts and its ``usage`` the run's usage so far. Around it, what only
    the turn loop needs: the request that was sent (without its ``input``, which
    is the messages before the response's items), the response itself, the
    steps stop conditions see and the number of tools run.
    """

    version: int = CHECKPOINT_VERSION
    conversation: ConversationState
    request: dict[str, Any]
    response: Response
    output_items: int
    """How many of ``conversation.messages`` (at the end) are the response's output items."""
    steps: list[StepResult]
    tool_calls_executed: int
    first_response: Response | None = None

    @property
    def turn(self) -> int:
        """The turn whose response this checkpoint holds."""
        return self.conversation.turn

    @property
    def history(self) -> list[Any]:
        """The input history the checkpointed turn's request sent."""
        messages = self.conversation.messages
        return messages[: len(messages) - self.output_items]

    @property
    def raw_output(self) -> list[Any]:
        """The response's output items, as the next request sends them back."""
        messages = self.conversation.messages
        return messages[len(messages) - self.output_items :]


class RunState:
    """What a run has learnt so far; written by the session, read by ``ModelResult``.

    Derived values are accumulated incrementally as the run goes, so they
    survive any retention policy of the log.
    """

    def __init__(self) -> None:
        self.run_id: str = ""
        self._status: RunStatus = "pending"
        self.turn: int = 0
        self.usage = RunUsage()
        self.first_response: Response | None = None
        self.first_response_ready = trio.Event()
        self.final_response: Response | None = None
        self.pending_tool_calls: list[ParsedToolCall] = []
        self.steps: list[StepResult] = []
        self.history: list[Any] = []
        self.tool_calls_executed: int = 0
        self.error: BaseException | None = None
        self.output: Any = None
        self.done = trio.Event()
        #: The conversation as last saved (``call_model(state=...)``), else ``None``.
        self.conversation: ConversationState | None = None
        #: Set by ``ModelResult.interrupt()``; honoured at the next safe point.
        self.interrupt_reason: str | None = None
        #: The reason of the interruption the run honoured, if it stopped on one.
        self.interrupted_by: str | None = None
        #: Every accepted tool-context write, for ``get_context_updates()``.
        self.context_updates: EventLog[ContextUpdate] = EventLog()
        #: The OpenTelemetry trace id of the run's span (32 hex digits), once
        #: it started under a recording tracer provider; ``None`` otherwise.
        self.trace_id: str | None = None
        #: Removes secrets (the API key) from text made for snapshots.
        self.redact: Callable[[str], str] = _same

    @property
    def status(self) -> RunStatus:
        return self._status

    def mark_done(self) -> None:
        """Wake every waiter: the run has ended (however it ended). Idempotent."""
        if not self.context_updates.closed:
            self.context_updates.close()
        self.first_response_ready.set()
        self.done.set()

    def move_to(self, status: RunStatus) -> None:
        """Change the status along :data:`TRANSITIONS`.

        Raises:
            RuntimeError: the change is not in the table (a bug in the runtime).
        """
        if status != self._status and status not in TRANSITIONS[self._status]:
            raise RuntimeError(f"a run cannot go from {self._status!r} to {status!r}")
        self._status = status


def _same(text: str) -> str:
    return text


class RunSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A point-in-time view of one run, for registries and dashboards.

    ``status`` is a :data:`RunStatus`. ``error`` is the repr of the failure,
    with the API key replaced by ``***``.
    With ``call_model(state=...)``, ``conversation_id`` and
    ``conversation_status`` say where the conversation stands (a run that
    paused for approval is ``done`` with ``conversation_status``
    ``"awaiting_approval"``), and ``pending_tool_calls`` lists the calls it
    waits for.
    ``trace_id`` is the OpenTelemetry trace id of the run (32 hex digits) when
    the application installed a tracer provider, else ``None``: feed frames
    carry it so a dashboard can link a session to its trace.
    """

    id: str
    model: str | None
    status: RunStatus
    turn: int
    usage: RunUsage
    tool_calls_executed: int
    next_seq: int
    error: str | None = None
    conversation_id: str | None = None
    conversation_status: str | None = None
    pending_tool_calls: list[ParsedToolCall] = msgspec.field(default_factory=list)
    trace_id: str | None = None
