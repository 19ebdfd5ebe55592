"""The ToolCall actor: run one tool call, or one round of them, to a settled outcome.

Rules:

1. **A tool failure is data, never an exception.** A raising tool, arguments
   that are not valid JSON or do not match the input schema, an output or event
   that does not match its schema, a generator that yields nothing, a result
   that cannot be encoded as JSON, an unknown tool name, a manual tool and a
   timeout all become a :class:`~runtime._agent.outcomes.ToolOutcome` with ``error``
   set, which the model reads as ``{"error": message}``.
2. **Cancellation is not a failure.** ``trio.Cancelled`` (and any other
   ``BaseException``) is never caught: the tool's ``finally`` blocks run, the
   generator of a generator tool is closed, and the cancellation propagates.
   A preliminary-result callback that raises propagates too: that is a bug of
   the caller, not of the tool.
3. **Timeouts are cancel scopes** (``trio.move_on_after``), measured on trio's
   clock: the tool's own ``timeout`` wins over the round's default. A timeout
   only interrupts a tool at a checkpoint, so a sync tool running inline
   cannot be interrupted. A sync tool with ``run_sync_in_thread`` runs in a
   worker thread that is *abandoned* on timeout or cancellation (Python cannot
   stop a thread): the call settles at once and the thread's eventual result
   is discarded.
4. **A round runs every call in its own task**, in parallel, and returns the
   outcomes in *call order* whatever the completion order. Under a limit, calls
   queue in call order: call ``i`` is running, or queued on its first limiter,
   before call ``i + 1`` starts, so ``round_limit=1`` runs them one by one in
   call order (with both kinds of limit, calls of different tools may still
   pass each other between the two limiters). Without any limit they all start
   at once, in whatever order trio schedules them. A call takes its tool's
   ``max_concurrency`` slot first, then a slot of the round limit, so a call
   waiting for its tool never holds a round slot; waiting for a slot does not
   count against the timeout. One failing call never cancels its siblings;
   cancelling the round cancels them all.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import trio

from runtime._agent.callbacks import describe_exception
from runtime._agent.outcomes import (
    FinalResult,
    ToolContext,
    ToolOutcome,
    generator_without_values_message,
    invalid_json_arguments_message,
    output_for_model,
    unknown_tool_message,
)
from runtime._base.errors import ConfigurationError, ToolError
from runtime._telemetry import mark_failed, tool_span

if TYPE_CHECKING:
    from runtime._agent.context import ContextStore
    from runtime._agent.params import TurnContext
    from runtime._agent.tools import Tool
    from runtime._protocol.wire import ParsedToolCall

__all__ = ["make_tool_limiters", "run_tool_call", "run_tool_round"]

_MISSING: Final = object()


class _CallbackFailed(Exception):
    """Carries an exception of the preliminary-result callback past the tool's handler."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _check_timeout(what: str, value: float | None) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
    ):
        raise ConfigurationError(f"{what} {value!r} must be a positive number of seconds or None")


async def _run_regular(tool: Tool, arguments: Any, context: ToolContext) -> Any:
    if tool.run_sync_in_thread:
        value = await trio.to_thread.run_sync(
            tool.invoke, arguments, context, abandon_on_cancel=True
        )
    else:
        value = tool.invoke(arguments, context)
    if inspect.isawaitable(value):
        value = await value
    return tool.validate_output(value)


async def _run_generator(
    tool: Tool,
    arguments: Any,
    context: ToolContext,
    preliminary: list[Any],
    emit: Callable[[Any], None] | None,
) -> Any:
    iterator = tool.invoke(arguments, context)
    if not isinstance(iterator, AsyncIterator):
        raise TypeError(
            f'Generator tool "{tool.name}" execute returned {iterator!r}, not an async iterator'
        )
    final: Any = _MISSING
    last: Any = _MISSING
    closing = (
        contextlib.aclosing(iterator)  # type: ignore[type-var]
        if hasattr(iterator, "aclose")
        else contextlib.nullcontext(iterator)
    )
    async with closing:
        async for value in iterator:
            if isinstance(value, FinalResult):
                # An explicit final result ends the tool, as `return` would.
                return tool.validate_output(value.value)
            last = value
            if final is _MISSING and tool.matches_output(value) and not tool.matches_event(value):
                final = tool.validate_output(value)
                continue
            event = tool.validate_event(value)
            preliminary.append(event)
            if emit is not None:
                try:
                    emit(event)
                except Exception as exc:
                    raise _CallbackFailed(exc) from exc
    if final is not _MISSING:
        return final
    if last is _MISSING:
        raise ToolError(
            generator_without_values_message(tool.name), tool_name=tool.name, call_id=""
        )
    return tool.validate_output(last)


async def _attempt(
    tool: Tool,
    call: ParsedToolCall,
    context: ToolContext,
    preliminary: list[Any],
    emit: Callable[[Any], None] | None,
) -> ToolOutcome:
    parsed = tool.parse_arguments(call.arguments, call_id=call.id)
    if tool.kind == "generator":
        result = await _run_generator(tool, parsed, context, preliminary, emit)
    else:
        result = await _run_regular(tool, parsed, context)
    outcome = ToolOutcome(call=call, result=result, preliminary_results=preliminary)
    try:
        output_for_model(outcome)
    except Exception as exc:
        raise ToolError(
            f'Tool "{tool.name}" returned a value that cannot be encoded as JSON: '
            f"{describe_exception(exc)}",
            tool_name=tool.name,
            call_id=call.id,
        ) from exc
    return outcome


async def run_tool_call(
    tool: Tool | None,
    call: ParsedToolCall,
    ctx: TurnContext,
    *,
    on_preliminary: Callable[[Any], None] | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - an overrun is an error outcome, not a cancellation
    contexts: ContextStore | None = None,
) -> ToolOutcome:
    """Run one tool call and return its outcome; a tool failure is never raised.

    Arguments that are a string (the model sent invalid JSON, or a JSON string)
    are reported with the SDK's parse-error text and the tool is not run.
    Generator events are checked against ``event_schema`` and handed to
    ``on_preliminary`` as they are yielded, before the tool goes on.

    Always a checkpoint. If cancelled, the tool is cancelled (its ``finally``
    blocks run, a generator is closed) and ``trio.Cancelled`` propagates; no
    outcome is produced. Nothing is buffered: events go to ``on_preliminary``
    synchronously.

    Args:
        tool: the tool the call names, or ``None`` when no tool has that name.
        call: the parsed call.
        ctx: the turn (its ``number_of_turns`` and ``turn_request`` reach the tool).
        on_preliminary: called with each checked generator event.
        timeout: seconds the call may take when the tool sets no ``timeout``.
        contexts: the run's tool contexts (``ctx.local``, ``ctx.set_context``...).

    Returns:
        The outcome: ``result`` or ``error``, and the preliminary events.

    Raises:
        Exception: only what ``on_preliminary`` raised.
    """
    if tool is None or tool.kind == "manual":
        await trio.lowlevel.checkpoint()
        message = (
            unknown_tool_message(call.name)
            if tool is None
            else f'Tool "{call.name}" is a manual tool; its calls are run by the caller'
        )
        return ToolOutcome(call=call, error=message)
    arguments = call.arguments
    if isinstance(arguments, str):
        await trio.lowlevel.checkpoint()
        return ToolOutcome(call=call, error=invalid_json_arguments_message(call.name, arguments))
    limit = tool.timeout if tool.timeout is not None else timeout
    request = ctx.turn_request
    if request is not None and not isinstance(request, MappingProxyType):
        request = MappingProxyType(request)  # the tool reads the request, never edits it
    context = ToolContext(
        number_of_turns=ctx.number_of_turns,
        tool_call=call,
        turn_request=request,
        contexts=contexts,
    )
    preliminary: list[Any] = []
    outcome: ToolOutcome
    try:
        if limit is None:
            outcome = await _attempt(tool, call, context, preliminary, on_preliminary)
        else:
            with trio.move_on_after(limit) as scope:
                outcome = await _attempt(tool, call, context, preliminary, on_preliminary)
            if scope.cancelled_caught:
                outcome = ToolOutcome(
                    call=call,
                    error=f'Tool "{tool.name}" timed out after {limit:g}s',
                    preliminary_results=preliminary,
                )
    except _CallbackFailed as failed:
        raise failed.error from None
    except Exception as exc:
        outcome = ToolOutcome(
            call=call,
            error=describe_exception(exc),
            preliminary_results=preliminary,
            exception=exc,
        )
    await trio.lowlevel.checkpoint()
    return outcome


def make_tool_limiters(tools: Iterable[Tool]) -> dict[str, trio.CapacityLimiter]:
    """One ``trio.CapacityLimiter`` per tool that sets ``max_concurrency``, by tool name.

    Pass the same mapping to several rounds (or runs) to share the limits.
    """
    return {
        t.name: trio.CapacityLimiter(t.max_concurrency)
        for t in tools
        if t.max_concurrency is not None
    }


async def run_tool_round(
    tools_by_name: Mapping[str, Tool],
    calls: Sequence[ParsedToolCall],
    ctx: TurnContext,
    *,
    on_preliminary: Callable[[str, Any], None] | None = None,
    round_limit: int | None = None,
    limiters: Mapping[str, trio.CapacityLimiter] | None = None,
    default_timeout: float | None = None,
    contexts: ContextStore | None = None,
    on_settled: Callable[[ToolOutcome], Awaitable[None]] | None = None,
) -> list[ToolOutcome]:
    """Run a round's calls in parallel and return their outcomes in call order.

    Always a checkpoint. If cancelled, every running call is cancelled and
    ``trio.Cancelled`` propagates once they have all finished; no task is left.

    Args:
        tools_by_name: the run's tools by name (a call naming none gets an
            error outcome).
        calls: the round's calls, in response order.
        ctx: the turn.
        on_preliminary: called with ``(call_id, event)`` for each generator event.
        round_limit: how many calls may run at once, or ``None`` for no limit.
        limiters: per-tool limiters by tool name; ``None`` makes fresh ones
            with :func:`make_tool_limiters` for this round.
        default_timeout: seconds a call may take when its tool sets no ``timeout``.
        contexts: the run's tool contexts, handed to every call.
        on_settled: awaited with each call's outcome as soon as it is settled (a
            durable run records it there), still inside the round.

    Returns:
        One outcome per call, in the order of ``calls``.

    Raises:
        ConfigurationError: ``round_limit`` or ``default_timeout`` is invalid.
        BaseExceptionGroup: ``on_preliminary`` raised (the round is cancelled).
    """
    if round_limit is not None and (
        isinstance(round_limit, bool) or not isinstance(round_limit, int) or round_limit < 1
    ):
        raise ConfigurationError(f"round_limit {round_limit!r} must be an integer >= 1 or None")
    _check_timeout("default_timeout", default_timeout)
    if limiters is None:
        limiters = make_tool_limiters(tools_by_name.values())
    round_limiter = trio.CapacityLimiter(round_limit) if round_limit is not None else None
    outcomes: list[ToolOutcome | None] = [None] * len(calls)

    async def run_one(index: int, call: ParsedToolCall, after: trio.Event | None) -> None:
        # Under a limit, each call waits until the previous one has started or
        # queued on its limiter, so calls queue in call order although trio
        # schedules newly spawned tasks in any order. That costs one scheduler
        # pass per call, so a round without limits skips it.
        gate = gates[index]
        if after is not None:
            await after.wait()
        tool = tools_by_name.get(call.name)
        tool_limiter = limiters.get(call.name) if tool is not None else None
        emit = None if on_preliminary is None else functools.partial(on_preliminary, call.id)
        # Setting the gate and entering the limiter happen with no checkpoint
        # between them, so the next call queues behind this one.
        gate.set()
        async with (
            tool_limiter or contextlib.nullcontext(),
            round_limiter or contextlib.nullcontext(),
        ):
            with tool_span(call.name, call.id) as span:
                outcome = await run_tool_call(
                    tool, call, ctx, on_preliminary=emit, timeout=default_timeout, contexts=contexts
                )
                if outcome.error is not None:
                    failure = outcome.exception
                    mark_failed(span, type(failure).__name__ if failure else "tool_error")
        if on_settled is not None:
            await on_settled(outcome)
        outcomes[index] = outcome

    ordered = round_limiter is not None or any(call.name in limiters for call in calls)
    gates = [trio.Event() for _ in calls]
    async with trio.open_nursery() as nursery:
        for index, call in enumerate(calls):
            after = gates[index - 1] if ordered and index else None
            nursery.start_soon(run_one, index, call, after)
    done: list[ToolOutcome] = []
    for outcome in outcomes:
        assert outcome is not None  # every task stored its outcome or the nursery raised
        done.append(outcome)
    return done
