"""A run's conversation: load, resume with decisions, checkpoint, pause, interrupt, finish.

Used by the Session actor (``actors._session``) when ``call_model(state=...)``
is given; the rules of what a state *is* are in ``runtime._agent.state``, the
rules of when a run saves in ``runtime._agent.store``.

Invariants:

1. **Saved once per boundary.** A resume saves nothing until it has something
   consistent to say: either the first checkpoint of the resumed run (before
   its follow-up request) or, when calls stay pending, one save of the
   still-paused state. The SDK saved twice on resume, the first time with
   its decisions half applied.
2. **Tools run on resume emit their events** (``tool.result``,
   ``tool.call_output``) in the resumed run's log, in call order, before its
   first ``turn.start``, as a round's tools do.
3. **Interruption is checked only at safe points**, between awaits that could
   let another task in: after a response (before its calls run) and after a
   round (before the follow-up). Checking and acting happen with no
   checkpoint in between, so an interruption requested at any moment is
   honoured at the next safe point, never half-way. Every call of the
   response in hand is answered in the saved state (an ``{"error": ...}``
   output for the calls that never ran), so the next request is valid.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

import msgspec

from runtime._agent.outcomes import ToolOutcome, output_for_model
from runtime._agent.state import (
    ConversationState,
    PartialResponse,
    UnsentToolResult,
    check_known_ids,
    new_conversation_state,
    output_item,
    pending_answers,
    settle,
    touch,
)
from runtime._protocol.events import ToolCallOutput, ToolResult
from runtime._protocol.wire import FunctionCallOutputItem

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from runtime._agent.context import ContextStore
    from runtime._agent.params import TurnContext
    from runtime._agent.state import ConversationStatus, Decisions
    from runtime._agent.store import StateSession
    from runtime._protocol.wire import ParsedToolCall
    from runtime._run.eventlog import EventLog
    from runtime._run.status import RunState

__all__ = ["ConversationRun", "emit_outcome", "interrupted_message"]

_ENCODER: Final = msgspec.json.Encoder()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def interrupted_message(reason: str) -> str:
    """The error a call reads when the run was interrupted before it ran."""
    return f"The run was interrupted before this tool call ran ({reason})"


def emit_outcome(
    log: EventLog[Any], call_id: str, result: Any, output: str, preliminary: Sequence[Any] = ()
) -> dict[str, Any]:
    """Append ``tool.result`` and ``tool.call_output`` for one settled call; return the item."""
    item = FunctionCallOutputItem(call_id=call_id, output=output, id=f"output_{call_id}")
    log.append(
        ToolResult(
            tool_call_id=call_id,
            result=result,
            preliminary_results=list(preliminary) or msgspec.UNSET,
            timestamp=_now_ms(),
        )
    )
    log.append(ToolCallOutput(output=item, timestamp=_now_ms()))
    return output_item(call_id, output)


def unsent(outcome: ToolOutcome) -> UnsentToolResult:
    """A settled outcome held back in a paused state."""
    call = outcome.call
    return UnsentToolResult(
        call_id=call.id, name=call.name, output=output_for_model(outcome), error=outcome.error
    )


class ConversationRun:
    """One run's side of its conversation (the state it loaded, what it saves)."""

    __slots__ = ("_base_usage", "_log", "_run", "_session", "conversation")

    def __init__(self, session: StateSession, run: RunState, log: EventLog[Any]) -> None:
        self._session = session
        self._run = run
        self._log = log
        self.conversation: ConversationState = new_conversation_state()
        self._base_usage = self.conversation.usage

    @property
    def next_turn(self) -> int:
        """The number of the next request's turn (rule 5 of the state: numbers continue)."""
        return self.conversation.turn + 1

    async def load(self) -> ConversationState:
        """Load (or start) the conversation and forget a leftover interruption request."""
        loaded = await self._session.load()
        # A request left over from a run that had already ended is stale.
        await self._session.clear_interruption()
        if loaded is not None:
            self.conversation = loaded
            self._base_usage = loaded.usage
        self._publish()
        return self.conversation

    def _publish(self) -> None:
        conversation = self.conversation
        self._run.conversation = conversation
        self._run.pending_tool_calls = list(conversation.pending_tool_calls)

    async def _save(self, state: ConversationState) -> None:
        self.conversation = state
        await self._session.save(state)
        self._publish()

    async def resume(
        self,
        decisions: Decisions,
        new_input: Sequence[Any],
        ctx: TurnContext,
        *,
        contexts: ContextStore | None,
        run_round: Callable[[Sequence[ParsedToolCall], TurnContext], Awaitable[list[ToolOutcome]]],
    ) -> list[Any] | None:
        """Apply decisions and new input; the input history to send, or ``None`` if still paused.

        Raises:
            ConfigurationError: a decided id is not pending (naming it).
        """
        state = self.conversation
        check_known_ids(state, decisions)
        if not state.paused:
            if state.status == "interrupted" or state.partial_response is not None:
                state = touch(
                    state, status="in_progress", interrupted_by=None, partial_response=None
                )
            self.conversation = state
            return [*state.messages, *new_input]
        answers, rest = pending_answers(state, new_input)
        to_run = [c for c in state.pending_tool_calls if c.id in decisions.approve]
        outcomes: dict[str, ToolOutcome] = {}
        if to_run:
            outcomes = {o.call.id: o for o in await run_round(to_run, ctx)}
        settled: list[UnsentToolResult] = []
        for call in state.pending_tool_calls:  # rule 2: events in call order
            if call.id in outcomes:
                outcome = outcomes[call.id]
                result: Any = outcome.result if outcome.error is None else {"error": outcome.error}
                settled.append(unsent(outcome))
                emit_outcome(
                    self._log, call.id, result, settled[-1].output, outcome.preliminary_results
                )
            elif call.id in decisions.reject:
                reason = decisions.reject[call.id]
                output = _ENCODER.encode({"error": reason}).decode()
                settled.append(
                    UnsentToolResult(call_id=call.id, name=call.name, output=output, error=reason)
                )
                emit_outcome(self._log, call.id, {"error": reason}, output)
            elif call.id in answers:
                settled.append(
                    UnsentToolResult(call_id=call.id, name=call.name, output=answers[call.id])
                )
                emit_outcome(self._log, call.id, answers[call.id], answers[call.id])
        state = settle(state, settled, rest)
        if state.paused:  # partial decisions: still paused, saved once (not an error)
            await self._save(self._stamped(state, contexts))
            return None
        self.conversation = state
        self._publish()
        return list(state.messages)

    def _stamped(
        self, state: ConversationState, contexts: ContextStore | None
    ) -> ConversationState:
        changes: dict[str, Any] = {"usage": self._base_usage.combined(self._run.usage)}
        if contexts is not None:
            changes["context"] = contexts.snapshot()
        return touch(state, **changes)

    async def checkpoint(
        self,
        messages: list[Any],
        *,
        turn: int,
        response_id: str | None,
        contexts: ContextStore | None,
        status: ConversationStatus = "in_progress",
        **changes: Any,
    ) -> None:
        """Save the conversation at a turn boundary or at the end (every call answered)."""
        state = msgspec.structs.replace(
            self.conversation,
            status=status,
            messages=list(messages),
            turn=turn,
            previous_response_id=response_id or self.conversation.previous_response_id,
            pending_tool_calls=[],
            unsent_tool_results=[],
            queued_input=[],
            partial_response=None,
            interrupted_by=None,
        )
        await self._save(self._stamped(msgspec.structs.replace(state, **changes), contexts))

    async def pause(
        self,
        messages: list[Any],
        *,
        status: ConversationStatus,
        pending: list[ParsedToolCall],
        settled: Sequence[ToolOutcome],
        turn: int,
        response_id: str | None,
        contexts: ContextStore | None,
    ) -> None:
        """Save a paused round: its calls in ``messages``, outputs held back (state rule 3)."""
        await self.checkpoint(
            messages,
            turn=turn,
            response_id=response_id,
            contexts=contexts,
            status=status,
            pending_tool_calls=pending,
            unsent_tool_results=[unsent(o) for o in settled],
        )

    async def interruption(self) -> str | None:
        """A pending interruption request from the store's side channel, if any."""
        return await self._session.interruption()

    async def interrupted(
        self,
        messages: list[Any],
        *,
        reason: str,
        partial: PartialResponse,
        turn: int,
        response_id: str | None,
        contexts: ContextStore | None,
    ) -> None:
        """Save an honoured interruption, then clear the request that caused it."""
        await self.checkpoint(
            messages,
            turn=turn,
            response_id=response_id,
            contexts=contexts,
            status="interrupted",
            partial_response=partial,
            interrupted_by=reason,
        )
        await self._session.clear_interruption()
