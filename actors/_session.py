"""The Session actor: one agent run's turn loop.

It owns the run's EventLog as its only writer (tool tasks append their
preliminary results through it, which is the same single trio thread) and
drives this state machine::

    state         | on                                   | next
    --------------+--------------------------------------+---------------------------------
    start         | resolve params for turn 0, call      | responded(R0)
    responded(R)  | no tools, or R has no function call  | done(final = R)
    responded(R)  | a stop condition fires, and          |
                  |   allow_final_response is off        | done(final = R, calls unexecuted)
    responded(R)  | otherwise: run the round (parallel   |
                  |   ToolCall tasks, outputs in call    |
                  |   order)                             | ran(k)
    ran(k)        | some call named a manual tool        | paused(final = R, pending calls)
    ran(k)        | the stop condition had fired         | final call with tool_choice "none"
                  |                                      |   → done(final = R')
    ran(k)        | otherwise: next_turn_params, history | responded(Rk)
                  |   += R.output + outputs, call        |
    any           | an exception                         | failed (log closed with it)
    any           | cancellation                         | cancelled (log closed cleanly)

Every model call is framed by ``turn.start`` / ``turn.end`` in the log
(DESIGN §4.11); tool events of round k sit between ``turn.end(k-1)`` and
``turn.start(k)``. A follow-up request never contains a ``function_call``
without its ``function_call_output``: unknown tools get an error output, manual
tools pause the run before any follow-up is sent (DESIGN §4.6).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import msgspec
import trio

from actors._conversation import ConversationRun, emit_outcome, interrupted_message
from actors._model_call import TurnOutcome, stream_model_call
from actors._tool_call import run_tool_round
from runtime._agent.approvals import approvals_needed
from runtime._agent.context import SHARED_CONTEXT, ContextStore
from runtime._agent.inputs import ToolSource, check_request_body
from runtime._agent.outcomes import ToolOutcome, output_for_model
from runtime._agent.params import (
    TurnContext,
    apply_next_turn_params,
    relax_tool_choice,
    resolve_dynamic_params,
)
from runtime._agent.state import (
    ConversationState,
    Decisions,
    PartialResponse,
    new_conversation_state,
    touch,
)
from runtime._agent.stop import StepResult, is_stop_condition_met
from runtime._agent.store import StateSession
from runtime._agent.tools import Tool
from runtime._base.errors import RunError, RunTimeout, StructuredOutputError, ToolError
from runtime._protocol.events import (
    ToolPreliminaryResult,
    TurnEnd,
    TurnRetry,
    TurnStart,
)
from runtime._protocol.wire import (
    ParsedToolCall,
    Response,
    parse_tool_calls,
    response_text,
)
from runtime._run.status import DEFAULT_FINAL_RESPONSE_DIRECTIVE, TurnCheckpoint
from runtime._telemetry import run_span, trace_id_of, turn_span

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from runtime._http.retry import RetryConfig
    from runtime._http.transport import ApiTransport
    from runtime._run.eventlog import EventLog
    from runtime._run.status import RunSpec, RunState

__all__ = ["encode_turn_request", "run_session"]


_ENCODER: Final = msgspec.json.Encoder()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _as_items(value: Any) -> list[Any]:
    """``input`` in list form (a string is one user message), as the follow-ups send it."""
    if value is None or value is msgspec.UNSET:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value)


def encode_turn_request(request: Mapping[str, Any]) -> bytes:
    """Encode and validate one request body against ``ResponsesRequest``."""
    body = _ENCODER.encode(request)
    check_request_body(body)
    return body


async def run_session(
    spec: RunSpec,
    state: RunState,
    transport: ApiTransport,
    log: EventLog[Any],
) -> None:
    """Run the turn loop to its end, recording the outcome in ``state`` and ``log``.

    Never raises an ``Exception``: a failure is recorded in ``state.error`` and
    closes the log with it, so every consumer sees every event and then the
    error. Cancellation propagates (after closing the log cleanly).

    The run is one ``invoke_agent`` span (``runtime._telemetry``), whose trace
    id is kept in ``state.trace_id``; each turn is a child span. With
    ``spec.deadline`` the whole loop is bounded: past it whatever is in flight
    is cancelled and the run fails with :class:`RunTimeout`.
    """
    state.move_to("running")
    state.redact = transport.redact
    model = spec.request.get("model")
    try:
        with run_span(state.run_id, model if isinstance(model, str) else None) as span:
            state.trace_id = trace_id_of(span)
            try:
                await _bounded(spec, state, transport, log)
            finally:
                if span.is_recording():
                    span.set_attributes(_usage_attributes(state))
    except Exception as exc:
        state.error = exc
        state.move_to("failed")
        log.close(exc)
    else:
        state.move_to("done")
        log.close()
    finally:
        if not log.closed:  # cancelled
            state.move_to("cancelled")
            log.close()
        state.mark_done()


async def _open_tool_sources(spec: RunSpec, stack: contextlib.AsyncExitStack) -> RunSpec:
    """``spec`` with each tool source (an ``MCPServer``) replaced by its tools.

    A source is entered on ``stack``, in this run's task, for the whole run: an
    unopened MCP server gets a connection of the run's own (its subprocess in the
    run's nursery), closed when the run ends.
    """
    if not any(isinstance(t, ToolSource) for t in spec.tools):
        return spec
    expanded: list[Any] = []
    for t in spec.tools:
        if isinstance(t, ToolSource):
            expanded.extend(await stack.enter_async_context(t.tool_source()))
        else:
            expanded.append(t)
    return msgspec.structs.replace(spec, tools=tuple(expanded))


async def _bounded(
    spec: RunSpec, state: RunState, transport: ApiTransport, log: EventLog[Any]
) -> None:
    # The stack holds the current turn's span (see _loop) and ends it with the loop.
    with contextlib.ExitStack() as turns:
        deadline = spec.deadline
        if deadline is None:
            await _with_sources(spec, state, transport, log, turns)
            return
        with trio.move_on_after(deadline) as scope:
            await _with_sources(spec, state, transport, log, turns)
        if scope.cancelled_caught:
            raise RunTimeout(
                f"The run did not end within its deadline of {deadline:g} s "
                f"(it was in turn {state.turn}).",
                deadline=deadline,
            )


async def _with_sources(
    spec: RunSpec,
    state: RunState,
    transport: ApiTransport,
    log: EventLog[Any],
    turns: contextlib.ExitStack,
) -> None:
    """The loop with the run's tool sources open (within the deadline, if any)."""
    async with contextlib.AsyncExitStack() as sources:
        spec = await _open_tool_sources(spec, sources)
        await _loop(spec, state, transport, log, turns)


def _usage_attributes(state: RunState) -> dict[str, int | float]:
    usage = state.usage
    values: dict[str, int | float] = {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "openrouter.model_calls": usage.model_calls,
        "openrouter.tool_calls": state.tool_calls_executed,
    }
    if usage.cost is not None:
        values["openrouter.cost"] = usage.cost
    return values


async def _loop(
    spec: RunSpec,
    state: RunState,
    transport: ApiTransport,
    log: EventLog[Any],
    turns: contextlib.ExitStack,
) -> None:
    """The turn loop. ``turns`` holds the current turn's span: turn 0 is the
    first call, turn k its tool round and follow-up call (LIFO with the
    model-call spans inside it); the caller closes it."""
    tools = spec.tools
    client_tools = [t for t in tools if isinstance(t, Tool)]
    by_name: dict[str, Tool] = {}
    for t in tools:
        if isinstance(t, Tool):
            by_name.setdefault(t.name, t)
    dynamic = any(callable(v) for v in spec.request.values())
    retry: RetryConfig | None = spec.retry
    model = spec.request.get("model")

    async def call(turn: int, request: dict[str, Any]) -> TurnOutcome:
        state.turn = turn
        body = encode_turn_request(request)
        log.append(TurnStart(turn_number=turn, timestamp=_now_ms()))
        outcome = await stream_model_call(
            transport,
            body,
            log,
            headers=spec.headers,
            retry=retry,
            idle_timeout=spec.stream_idle_timeout,
            secret=transport.secret,
            model=model if isinstance(model, str) else None,
        )
        log.append(TurnEnd(turn_number=turn, timestamp=_now_ms()))
        state.usage = state.usage.plus(outcome.response.usage)
        return outcome

    def on_preliminary(call_id: str, value: Any) -> None:
        log.append(ToolPreliminaryResult(tool_call_id=call_id, result=value, timestamp=_now_ms()))

    conversation: ConversationRun | None = None
    turn = 0
    if spec.state is not None:
        conversation = ConversationRun(StateSession(spec.state), state, log)
        turn = (await conversation.load()).turn + 1
    contexts = build_contexts(client_tools, spec, conversation, state)

    async def run_round(calls: Sequence[ParsedToolCall], ctx: TurnContext) -> list[ToolOutcome]:
        state.move_to("in_tool")
        guard = spec.tool_guard
        settled: dict[str, ToolOutcome] = {}
        if guard is not None:
            # Each call id is claimed (recorded) before it runs: a call that was
            # claimed before, by this run in another process, is never run again.
            settled = await guard.claim(calls)
        fresh = await run_tool_round(
            by_name,
            [c for c in calls if c.id not in settled],
            ctx,
            on_preliminary=on_preliminary,
            round_limit=spec.tool_concurrency,
            default_timeout=spec.tool_timeout,
            contexts=contexts,
            on_settled=None if guard is None else guard.record,
        )
        if guard is not None:
            ran = iter(fresh)
            outcomes = [settled[c.id] if c.id in settled else next(ran) for c in calls]
        else:
            outcomes = fresh
        state.move_to("running")
        state.tool_calls_executed += len(outcomes)
        return outcomes

    resume = spec.resume
    # The durable run's conversation document (its id stays across takeovers).
    durable = resume.conversation if resume is not None else None
    rounds = 0
    if resume is None:
        static = {k: v for k, v in spec.request.items() if not callable(v)}
        ctx = TurnContext(number_of_turns=turn, turn_request=MappingProxyType(static))
        request = await resolve_dynamic_params(spec.request, ctx) if dynamic else dict(spec.request)
        if tools:
            request["tools"] = [t.to_wire() if isinstance(t, Tool) else t for t in tools]
        history = _as_items(request.get("input"))
        if conversation is not None:
            decisions = spec.decisions or Decisions()
            resumed = await conversation.resume(
                decisions, history, ctx, contexts=contexts, run_round=run_round
            )
            if resumed is None:  # still waiting for decisions: no request (not an error)
                return
            history = resumed
            request["input"] = history
        state.history = history
        if spec.resumed:
            log.append(TurnRetry(turn_number=turn, timestamp=_now_ms()))
        turns.enter_context(turn_span(turn))
        outcome = await call(turn, request)
        state.first_response = outcome.response
    else:
        # DESIGN §8: another process ran this run up to a checkpoint; go on from
        # there (the round of that response runs again, its tool calls guarded).
        history = resume.history
        request = dict(resume.request)
        request["input"] = history
        state.history = history
        state.usage = resume.conversation.usage
        state.steps = list(resume.steps)
        state.tool_calls_executed = resume.tool_calls_executed
        state.first_response = resume.first_response
        turn = resume.turn
        outcome = TurnOutcome(response=resume.response, raw_output=list(resume.raw_output))
        log.append(TurnRetry(turn_number=turn + 1, timestamp=_now_ms()))
        turns.enter_context(turn_span(turn))
    state.first_response_ready.set()
    while True:
        response = outcome.response
        calls = parse_tool_calls(response) if by_name else []
        if not calls:
            break
        reason = await _interruption(state, conversation)
        if reason is not None:
            # Safe point 1: the response is in, its calls never ran; answer them all.
            answered = [
                emit_outcome(log, c.id, {"error": m}, _error_output(m))
                for c in calls
                for m in (interrupted_message(reason),)
            ]
            history = history + outcome.raw_output + answered
            await _stop_interrupted(state, conversation, history, reason, response, turn, contexts)
            return
        if spec.checkpoint is not None:
            if durable is None:  # with call_model(state=...), that conversation's id
                durable = conversation.conversation if conversation else new_conversation_state()
            checkpoint = _turn_checkpoint(
                durable, state, request, history, outcome, calls, turn, contexts
            )
            durable = checkpoint.conversation
            await spec.checkpoint(checkpoint)
        try:
            stop = await is_stop_condition_met(spec.stop_when, state.steps)
        except Exception as exc:
            raise RunError(f"a stop condition raised: {exc!r}") from exc
        if stop and spec.allow_final_response is False:
            break
        ctx = TurnContext(number_of_turns=turn + 1, turn_request=MappingProxyType(request))
        manual = [c for c in calls if _is_manual(by_name.get(c.name))]
        gated: list[ParsedToolCall] = []
        if spec.require_approval is not False and (
            spec.require_approval is not None or any(t.require_approval for t in client_tools)
        ):
            needs = await approvals_needed(calls, by_name, spec.require_approval, ctx)
            gated = [c for c, needed in zip(calls, needs, strict=True) if needed]
        if gated:
            # Pause for approval: run the calls that need none (once, with their
            # events), hold their outputs back, save once, end cleanly.
            assert conversation is not None  # call_model refuses approval without a store
            auto = [c for c in calls if c not in gated and c not in manual]
            outcomes = await run_round(auto, ctx) if auto else []
            _emit_outcomes(log, outcomes)
            pending = [c for c in calls if c in gated or c in manual]
            state.pending_tool_calls = pending
            state.history = history + outcome.raw_output
            await conversation.pause(
                history + outcome.raw_output,
                status="awaiting_approval",
                pending=pending,
                settled=outcomes,
                turn=turn,
                response_id=response.id,
                contexts=contexts,
            )
            state.final_response = response
            return
        turn += 1
        rounds += 1
        turns.close()  # ends the previous turn's span
        turns.enter_context(turn_span(turn))
        if dynamic:
            fresh = await resolve_dynamic_params(spec.request, ctx)
            fresh["input"] = request["input"]
            if tools:
                fresh["tools"] = request["tools"]
            request = fresh
        await _hook("on_turn_start", spec.on_turn_start, ctx)
        runnable = [c for c in calls if c not in manual]
        outcomes = await run_round(runnable, ctx)
        if spec.tool_errors == "raise":
            _raise_first_tool_error(outcomes)
        outputs = _emit_outcomes(log, outcomes)
        state.steps.append(_step(response, calls, outcomes))
        if manual:
            # DESIGN §4.6: stop and expose the pending calls; never send a
            # function_call without its function_call_output.
            state.pending_tool_calls = manual
            state.history = history + outcome.raw_output + outputs
            if conversation is not None:
                await conversation.pause(
                    history + outcome.raw_output,
                    status="awaiting_client_tools",
                    pending=manual,
                    settled=outcomes,
                    turn=turn - 1,
                    response_id=response.id,
                    contexts=contexts,
                )
            state.final_response = response
            return
        previous_input = request.get("input")
        request = await apply_next_turn_params(client_tools, calls, request)
        base = history if request.get("input") is previous_input else _as_items(request["input"])
        history = base + outcome.raw_output + outputs
        state.history = history
        request["input"] = history
        reason = await _interruption(state, conversation)
        if reason is not None:
            # Safe point 2: the round ran and every call has its output.
            await _stop_interrupted(
                state, conversation, history, reason, response, turn - 1, contexts
            )
            return
        if conversation is not None:  # the checkpoint of this turn boundary
            await conversation.checkpoint(
                history, turn=turn - 1, response_id=response.id, contexts=contexts
            )
        if stop:
            # DESIGN §4.2: the stop fired with calls pending; they ran, now ask once
            # more for a final answer without tools.
            final_request = dict(request)
            final_request["tool_choice"] = "none"
            directive = spec.allow_final_response
            if directive is True:
                directive = DEFAULT_FINAL_RESPONSE_DIRECTIVE
            if directive:
                final_request["input"] = [*history, {"role": "user", "content": directive}]
            outcome = await call(turn, final_request)
            break
        if "tool_choice" in request:
            request["tool_choice"] = relax_tool_choice(request["tool_choice"])
        outcome = await call(turn, request)
        await _hook("on_turn_end", spec.on_turn_end, ctx, outcome.response)
    if rounds and not outcome.response.output:
        # spec L-20 (typescript-agent#63): an empty final answer after tool rounds
        # is asked for once more without tools, then accepted as it is.
        retry_request = dict(request)
        retry_request["tool_choice"] = "none"
        outcome = await call(turn, retry_request)
    if spec.output is not None and not state.pending_tool_calls:
        history, outcome = await _structured_output(spec, state, request, history, outcome, call)
    state.final_response = outcome.response
    state.history = history + outcome.raw_output
    if conversation is not None:
        await conversation.checkpoint(
            state.history,
            turn=state.turn,
            response_id=outcome.response.id,
            contexts=contexts,
            status="complete",
        )


def _in_trio(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in the trio thread: a tool in a worker thread writes its context there."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return trio.from_thread.run_sync(fn)
    return fn()


def build_contexts(
    tools: Sequence[Tool],
    spec: RunSpec,
    conversation: ConversationRun | None,
    state: RunState,
) -> ContextStore:
    """The run's tool contexts: the tools' own, the shared one, the saved ones."""
    schemas: dict[str, Any] = {t.name: t.context_schema for t in tools if t.context_schema}
    saved = conversation.conversation.context if conversation is not None else {}
    schemas[SHARED_CONTEXT] = spec.shared_context_schema
    store = ContextStore(schemas, on_update=state.context_updates.append, dispatch=_in_trio)
    store.seed_saved(saved)
    if spec.context:
        store.seed(spec.context)
    if spec.resume is not None:  # a run taken over: its contexts as they were checkpointed
        store.seed_saved(spec.resume.conversation.context)
    return store


def _turn_checkpoint(
    base: ConversationState,
    state: RunState,
    request: dict[str, Any],
    history: list[Any],
    outcome: TurnOutcome,
    calls: Sequence[ParsedToolCall],
    turn: int,
    contexts: ContextStore | None,
) -> TurnCheckpoint:
    """A durable run's checkpoint at a turn boundary (its calls about to run), ``base``
    brought up to date."""
    items = list(outcome.raw_output)
    conversation = touch(
        base,
        status="in_progress",
        messages=[*history, *items],
        turn=turn,
        previous_response_id=outcome.response.id,
        pending_tool_calls=list(calls),
        unsent_tool_results=[],
        queued_input=[],
        partial_response=None,
        interrupted_by=None,
        usage=state.usage,
        context=contexts.snapshot() if contexts is not None else {},
    )
    return TurnCheckpoint(
        conversation=conversation,
        request={k: v for k, v in request.items() if k != "input"},
        response=outcome.response,
        output_items=len(items),
        steps=list(state.steps),
        tool_calls_executed=state.tool_calls_executed,
        first_response=state.first_response,
    )


async def _interruption(state: RunState, conversation: ConversationRun | None) -> str | None:
    """An interruption request, from ``ModelResult.interrupt()`` or from the store."""
    if state.interrupt_reason is not None:
        return state.interrupt_reason
    if conversation is not None:
        return await conversation.interruption()
    return None


async def _stop_interrupted(
    state: RunState,
    conversation: ConversationRun | None,
    history: list[Any],
    reason: str,
    response: Response,
    turn: int,
    contexts: ContextStore | None,
) -> None:
    state.history = history
    state.final_response = response
    state.interrupted_by = reason
    if conversation is not None:
        partial = PartialResponse(
            text=response_text(response), tool_calls=parse_tool_calls(response)
        )
        await conversation.interrupted(
            history,
            reason=reason,
            partial=partial,
            turn=turn,
            response_id=response.id,
            contexts=contexts,
        )


def _error_output(message: str) -> str:
    return _ENCODER.encode({"error": message}).decode()


def _emit_outcomes(log: EventLog[Any], outcomes: Sequence[ToolOutcome]) -> list[Any]:
    """Append each outcome's ``tool.result`` and ``tool.call_output``, in call order."""
    return [
        emit_outcome(
            log,
            o.call.id,
            o.result if o.error is None else {"error": o.error},
            output_for_model(o),
            o.preliminary_results,
        )
        for o in outcomes
    ]


async def _structured_output(
    spec: RunSpec,
    state: RunState,
    request: dict[str, Any],
    history: list[Any],
    outcome: TurnOutcome,
    call: Callable[[int, dict[str, Any]], Awaitable[TurnOutcome]],
) -> tuple[list[Any], TurnOutcome]:
    """Judge the final answer against ``output=``; ask again with the error, boundedly.

    Each retry appends the answer and a user message naming what was wrong, and
    calls once more without tools (``tool_choice: "none"`` when tools are
    offered). Returns the history before the accepted answer, and its outcome.

    Raises:
        StructuredOutputError: still no match after ``spec.output.retries`` retries,
            or the final answer calls tools instead of answering.
    """
    output = spec.output
    assert output is not None
    attempt = 0
    while True:
        text = response_text(outcome.response)
        if parse_tool_calls(outcome.response):
            reason = "the final response calls tools instead of answering"
            raise StructuredOutputError(f"no structured output: {reason}", text=text, reason=reason)
        try:
            state.output = output.parse(text)
        except ValueError as exc:
            reason = str(exc)
        else:
            return history, outcome
        if attempt >= output.retries:
            raise StructuredOutputError(
                f"the final answer does not match output= after {attempt + 1} attempt(s): {reason}",
                text=text,
                reason=reason,
            )
        attempt += 1
        history = [
            *history,
            *outcome.raw_output,
            {"role": "user", "content": output.feedback(reason)},
        ]
        again = dict(request)
        again["input"] = history
        if spec.tools:
            again["tool_choice"] = "none"
        outcome = await call(state.turn, again)


async def _hook(name: str, fn: Callable[..., Any] | None, *args: Any) -> None:
    """Call a turn hook (sync or async); its failure fails the run as a ``RunError``."""
    if fn is None:
        return
    try:
        value = fn(*args)
        if inspect.isawaitable(value):
            await value
    except Exception as exc:
        raise RunError(f"{name} raised: {exc!r}") from exc


def _raise_first_tool_error(outcomes: Sequence[ToolOutcome]) -> None:
    """``tool_errors="raise"``: the first failed call (in call order) fails the run."""
    for outcome in outcomes:
        if outcome.error is not None:
            call = outcome.call
            raise ToolError(
                f"tool {call.name!r} failed on call {call.id!r}: {outcome.error}",
                tool_name=call.name,
                call_id=call.id,
            ) from outcome.exception


def _is_manual(found: Tool | None) -> bool:
    return found is not None and found.kind == "manual"


def _step(
    response: Response, calls: Sequence[ParsedToolCall], outcomes: Sequence[Any]
) -> StepResult:
    names = {c.id: c.name for c in calls}
    tool_results = [
        {
            "tool_call_id": o.call.id,
            "tool_name": names.get(o.call.id, ""),
            "result": o.result if o.error is None else {"error": o.error},
        }
        for o in outcomes
    ]
    return StepResult.from_response(
        response, text=response_text(response), tool_calls=list(calls), tool_results=tool_results
    )
