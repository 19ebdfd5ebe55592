"""Tests for runtime._agent.stop: stop conditions at the predicate level.

Scenario ids from spec/callmodel.md §8: L-05, L-06, L-07, L-08 (the loop-level
versions live with the session tests).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from runtime._agent.stop import (
    DEFAULT_STOP,
    StepResult,
    StopContext,
    derive_finish_reason,
    finish_reason_is,
    has_tool_call,
    is_stop_condition_met,
    max_cost,
    max_tokens_used,
    normalize_stop_when,
    step_count_is,
)
from runtime._base.errors import ConfigurationError
from runtime._protocol.wire import ParsedToolCall, Response, decode_response


def _response(
    *,
    status: str = "completed",
    calls: tuple[str, ...] = (),
    text: str = "",
    usage: dict[str, Any] | None = None,
    reason: str | None = None,
) -> Response:
    output: list[dict[str, Any]] = []
    if text:
        output.append(
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    output.extend(
        {"type": "function_call", "call_id": f"call_{i}", "name": name, "arguments": "{}"}
        for i, name in enumerate(calls)
    )
    body: dict[str, Any] = {"id": "resp_1", "status": status, "output": output}
    if usage is not None:
        body["usage"] = usage
    if reason is not None:
        body["incomplete_details"] = {"reason": reason}
    return decode_response(msgspec.json.encode(body))


def _step(
    *calls: str, cost: float | None = None, tokens: int | None = None, **kw: Any
) -> StepResult:
    usage: dict[str, Any] | None = None
    if cost is not None or tokens is not None:
        usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": tokens or 0}
        if cost is not None:
            usage["cost"] = cost
    response = _response(calls=calls, usage=usage, **kw)
    parsed = [ParsedToolCall(id=f"call_{i}", name=n, arguments={}) for i, n in enumerate(calls)]
    return StepResult.from_response(response, tool_calls=parsed, tool_results=[])


async def _met(stop_when: Any, steps: list[StepResult]) -> bool:
    return await is_stop_condition_met(stop_when, steps)


# --- built-ins ---------------------------------------------------------------------


async def test_step_count_is_zero_stops_before_any_round_l05() -> None:
    """L-05: step_count_is(0) stops at the first check, with no steps."""
    assert await _met(step_count_is(0), [])


async def test_step_count_is_one_allows_exactly_one_round_l05() -> None:
    """L-05: step_count_is(1) lets one round run, then stops."""
    assert not await _met(step_count_is(1), [])
    assert await _met(step_count_is(1), [_step("t")])


async def test_has_tool_call_fires_after_the_round_that_ran_the_tool_l06() -> None:
    """L-06: has_tool_call('finish') is false before the round, true after it."""
    condition = has_tool_call("finish")
    assert not await _met(condition, [])
    assert not await _met(condition, [_step("search")])
    assert await _met(condition, [_step("search"), _step("lookup", "finish")])


async def test_max_cost_stops_once_the_steps_cost_enough_l07() -> None:
    """L-07: cost 0.3 per response, max_cost(0.5): one step is 0.3, two are 0.6."""
    condition = max_cost(0.5)
    assert not await _met(condition, [_step("t", cost=0.3)])
    assert await _met(condition, [_step("t", cost=0.3), _step("t", cost=0.3)])


async def test_max_cost_counts_missing_cost_as_zero() -> None:
    steps = [_step("t"), _step("t", tokens=5), _step("t", cost=0.25)]
    assert not await _met(max_cost(0.3), steps)
    assert await _met(max_cost(0.25), steps)
    assert await _met(max_cost(0), [])


async def test_max_tokens_used_sums_total_tokens() -> None:
    steps = [_step("t", tokens=40), _step("t"), _step("t", tokens=60)]
    assert not await _met(max_tokens_used(101), steps)
    assert await _met(max_tokens_used(100), steps)


async def test_default_stop_is_five_rounds() -> None:
    assert repr(DEFAULT_STOP) == "step_count_is(5)"
    assert not await _met(None, [_step("t")] * 4)
    assert await _met(None, [_step("t")] * 5)


def test_built_ins_have_readable_reprs() -> None:
    assert repr(has_tool_call("finish")) == "has_tool_call('finish')"
    assert repr(max_cost(1)) == "max_cost(1.0)"
    assert repr(max_tokens_used(10)) == "max_tokens_used(10)"
    assert repr(finish_reason_is("length")) == "finish_reason_is('length')"


@pytest.mark.parametrize(
    ("factory", "value"),
    [
        (step_count_is, -1),
        (step_count_is, 1.5),
        (step_count_is, True),
        (max_tokens_used, -5),
        (max_tokens_used, "10"),
        (max_cost, -0.01),
        (max_cost, float("nan")),
        (max_cost, float("inf")),
        (max_cost, "1"),
        (has_tool_call, ""),
        (has_tool_call, None),
        (finish_reason_is, ""),
        (finish_reason_is, 3),
    ],
)
def test_built_ins_validate_their_argument(factory: Any, value: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        factory(value)
    assert repr(value) in str(info.value)


# --- combination: L-08 ----------------------------------------------------------------


async def test_a_list_is_any_of_l08() -> None:
    """L-08: [step_count_is(10), custom_false] behaves as any-of."""

    def never(ctx: StopContext) -> bool:
        return False

    assert not await _met([step_count_is(10), never], [_step("t")] * 9)
    assert await _met([step_count_is(10), never], [_step("t")] * 10)
    assert await _met([never, step_count_is(1)], [_step("t")])


async def test_a_truthy_non_bool_does_not_stop_l08() -> None:
    """L-08: a custom condition returning 1 does not stop (strict `is True`)."""
    for value in (1, "yes", [True], 1.0):
        assert not await _met(lambda ctx, v=value: v, [])


async def test_async_conditions_are_awaited() -> None:
    seen: list[int] = []

    async def stop_after_two(ctx: StopContext) -> bool:
        seen.append(len(ctx.steps))
        return len(ctx.steps) >= 2

    assert not await _met(stop_after_two, [_step("t")])
    assert await _met([stop_after_two], [_step("t"), _step("t")])
    assert seen == [1, 2]


async def test_conditions_run_in_order_and_stop_at_the_first_true() -> None:
    calls: list[str] = []

    def first(ctx: StopContext) -> bool:
        calls.append("first")
        return True

    def second(ctx: StopContext) -> bool:
        calls.append("second")
        raise AssertionError("not reached")

    assert await _met([first, second], [])
    assert calls == ["first"]


async def test_a_raising_condition_propagates() -> None:
    class Boom(Exception):
        pass

    def boom(ctx: StopContext) -> bool:
        raise Boom("condition failed")

    with pytest.raises(Boom, match="condition failed"):
        await _met([lambda ctx: False, boom], [])


async def test_an_empty_list_never_stops() -> None:
    assert not await _met([], [_step("t")] * 100)


def test_normalize_stop_when() -> None:
    one = step_count_is(2)
    assert normalize_stop_when(None) == (DEFAULT_STOP,)
    assert normalize_stop_when(one) == (one,)
    assert normalize_stop_when([one, DEFAULT_STOP]) == (one, DEFAULT_STOP)
    assert normalize_stop_when(()) == ()


@pytest.mark.parametrize("bad", [5, "step_count_is(5)", [step_count_is(1), 3]])
def test_normalize_stop_when_rejects_non_conditions(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="must be"):
        normalize_stop_when(bad)


# --- steps and finish reasons ----------------------------------------------------------


def test_step_from_response_derives_text_usage_and_finish_reason() -> None:
    response = _response(
        calls=("t",), text="Let me check.", usage={"total_tokens": 7, "cost": 0.01}
    )
    call = ParsedToolCall(id="call_0", name="t", arguments={})
    results = [{"tool_call_id": "call_0", "tool_name": "t", "result": {"ok": True}}]
    step = StepResult.from_response(response, tool_calls=[call], tool_results=results)
    assert step.step_type == "continue"
    assert step.text == "Let me check."
    assert step.tool_calls == [call]
    assert step.tool_results == results
    assert step.response is response
    assert step.usage is not None
    assert (step.usage.total_tokens, step.usage.cost) == (7, 0.01)
    assert step.finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"status": "completed", "calls": ("t",)}, "tool_calls"),
        ({"status": "completed", "text": "hi"}, "stop"),
        ({"status": "incomplete", "reason": "max_output_tokens"}, "length"),
        ({"status": "incomplete", "reason": "content_filter"}, "content_filter"),
        ({"status": "incomplete", "reason": "server_budget"}, "server_budget"),
        ({"status": "incomplete"}, "other"),
        ({"status": "failed"}, "error"),
        ({"status": "cancelled"}, "other"),
        ({"status": "in_progress"}, None),
        ({"status": "queued"}, None),
    ],
)
def test_finish_reason_is_derived_from_status(kwargs: dict[str, Any], expected: str | None) -> None:
    assert derive_finish_reason(_response(**kwargs)) == expected


async def test_finish_reason_is_fires_on_a_matching_step() -> None:
    """The SDK's finishReasonIs never fires; ours does (DESIGN §4.8)."""
    steps = [_step("t"), _step("t", status="incomplete", reason="max_output_tokens")]
    assert await _met(finish_reason_is("length"), steps)
    assert await _met(finish_reason_is("tool_calls"), steps)
    assert not await _met(finish_reason_is("content_filter"), steps)
