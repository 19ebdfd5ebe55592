"""Tests for runtime._agent.params: dynamic parameters, next_turn_params, tool-choice relaxation.

Scenario ids from spec/callmodel.md §8: L-12, L-13, L-14 (at the helper level), A-02.
"""

from __future__ import annotations

from typing import Any

import pytest

from runtime._agent.callbacks import NEXT_TURN_PARAM_KEYS, positional_arity
from runtime._agent.params import (
    NextTurnContext,
    ToolChoiceRelaxer,
    TurnContext,
    apply_next_turn_params,
    apply_next_turn_params_to_request,
    compute_next_turn_params,
    has_dynamic_params,
    json_type_name,
    relax_tool_choice,
    resolve_dynamic_params,
)
from runtime._agent.tools import Tool, tool
from runtime._base.errors import ConfigurationError, RunError
from runtime._protocol.wire import ParsedToolCall


def _noop(args: Any) -> Any:
    return args


def _tool(name: str, **next_turn_params: Any) -> Tool:
    return tool(
        name=name,
        input_schema=dict[str, Any],
        execute=_noop,
        next_turn_params=next_turn_params or None,
    )


def _call(name: str, arguments: Any, call_id: str = "call_1") -> ParsedToolCall:
    return ParsedToolCall(id=call_id, name=name, arguments=arguments)


# --- dynamic parameters: L-14 -----------------------------------------------------------


async def test_dynamic_temperature_per_turn_l14() -> None:
    """L-14: temperature 0.7, 0.7, 0.3 for turn 0, round 1, round 2."""
    params = {
        "model": "m",
        "temperature": lambda ctx: 0.3 if ctx.number_of_turns > 1 else 0.7,
    }
    seen = [
        (await resolve_dynamic_params(params, TurnContext(number_of_turns=n)))["temperature"]
        for n in (0, 1, 2)
    ]
    assert seen == [0.7, 0.7, 0.3]


async def test_dynamic_params_may_be_async_or_take_no_argument() -> None:
    async def model(ctx: TurnContext) -> str:
        return f"model-{ctx.number_of_turns}"

    params = {"model": model, "top_p": lambda: 0.9, "input": "hi"}
    resolved = await resolve_dynamic_params(params, TurnContext(number_of_turns=4))
    assert resolved == {"model": "model-4", "top_p": 0.9, "input": "hi"}
    assert callable(params["top_p"])  # the input mapping is untouched


async def test_a_dynamic_param_returning_none_is_left_out() -> None:
    resolved = await resolve_dynamic_params(
        {"model": "m", "instructions": lambda ctx: None, "metadata": None},
        TurnContext(number_of_turns=0),
    )
    assert resolved == {"model": "m", "metadata": None}


async def test_a_failing_dynamic_param_fails_the_run_with_the_sdk_text_l14() -> None:
    """L-14: a throwing param fn → `Failed to resolve async function for field ...`."""

    def temperature(ctx: TurnContext) -> float:
        raise ValueError("no temperature today")

    with pytest.raises(RunError) as info:
        await resolve_dynamic_params({"temperature": temperature}, TurnContext(number_of_turns=0))
    assert str(info.value) == (
        'Failed to resolve async function for field "temperature": no temperature today'
    )
    assert isinstance(info.value.__cause__, ValueError)


async def test_an_exception_without_message_is_named_by_class() -> None:
    async def model(ctx: TurnContext) -> str:
        raise KeyError

    with pytest.raises(RunError, match=r'field "model": KeyError$'):
        await resolve_dynamic_params({"model": model}, TurnContext(number_of_turns=0))


def test_has_dynamic_params() -> None:
    assert not has_dynamic_params({"model": "m", "temperature": 0.1})
    assert has_dynamic_params({"model": "m", "temperature": lambda ctx: 0.1})


# --- next_turn_params: L-12 -------------------------------------------------------------


async def test_next_turn_params_set_instructions_and_temperature_l12() -> None:
    """L-12: load_skill edits instructions (from ctx) and temperature (zero-arg fn)."""
    load_skill = _tool(
        "load_skill",
        instructions=lambda p, ctx: f"{ctx.instructions}\n\n{p['skill']}",
        temperature=lambda: 0.2,
    )
    request = {"model": "m", "instructions": "Base.", "input": [{"role": "user", "content": "x"}]}
    out = await apply_next_turn_params(
        [load_skill], [_call("load_skill", {"skill": "Be brief."})], request
    )
    assert out == {**request, "instructions": "Base.\n\nBe brief.", "temperature": 0.2}
    assert request["instructions"] == "Base."  # not modified in place


async def test_two_calls_of_the_same_tool_compose_l12() -> None:
    """L-12: the second call sees the first call's edit."""
    load_skill = _tool("load_skill", instructions=lambda p, ctx: f"{ctx.instructions}+{p['skill']}")
    calls = [_call("load_skill", {"skill": "a"}, "c1"), _call("load_skill", {"skill": "b"}, "c2")]
    out = await apply_next_turn_params([load_skill], calls, {"instructions": "base"})
    assert out["instructions"] == "base+a+b"


async def test_none_removes_the_field_l12() -> None:
    """L-12: a None result removes the field from the request."""
    t = _tool("t", instructions=lambda p, ctx: None)
    out = await apply_next_turn_params([t], [_call("t", {})], {"model": "m", "instructions": "x"})
    assert out == {"model": "m"}


def test_unknown_next_turn_param_key_is_rejected_at_construction_l12() -> None:
    """L-12: the SDK warns and ignores unknown keys; we reject them when the tool is built."""
    with pytest.raises(ConfigurationError, match="key 'tool_choice' is not one of"):
        _tool("t", tool_choice=lambda p, ctx: "auto")


async def test_order_is_tools_then_calls_then_keys() -> None:
    """Declaration order of tools, then calls in response order, then mapping order."""
    log: list[str] = []

    def record(tag: str, key: str) -> Any:
        def fn(args: Any, ctx: NextTurnContext) -> Any:
            log.append(f"{tag}:{args['n']}:{key}")
            return f"{getattr(ctx, key)}|{tag}{args['n']}"

        return fn

    first = _tool(
        "first", model=record("first", "model"), instructions=record("first", "instructions")
    )
    second = _tool("second", model=record("second", "model"))
    calls = [
        _call("second", {"n": 1}, "c1"),
        _call("first", {"n": 2}, "c2"),
        _call("other", {"n": 3}, "c3"),
        _call("first", {"n": 4}, "c4"),
    ]
    computed = await compute_next_turn_params([first, second], calls, {"model": "m"})
    assert log == [
        "first:2:model",
        "first:2:instructions",
        "first:4:model",
        "first:4:instructions",
        "second:1:model",
    ]
    assert computed == {"model": "m|first2|first4|second1", "instructions": "None|first2|first4"}


async def test_functions_get_the_raw_arguments_and_the_working_context() -> None:
    seen: list[tuple[Any, NextTurnContext]] = []

    def fn(args: Any, ctx: NextTurnContext) -> Any:
        seen.append((args, ctx))
        return ctx.model

    raw = {"skill": "x", "extra": [1]}
    await compute_next_turn_params([_tool("t", model=fn)], [_call("t", raw)], {})
    args, ctx = seen[0]
    assert args is raw
    assert ctx == NextTurnContext(
        input=[],
        model="",
        models=[],
        temperature=None,
        max_output_tokens=None,
        top_p=None,
        top_k=None,
        instructions=None,
    )


async def test_working_context_starts_from_the_request() -> None:
    seen: list[NextTurnContext] = []

    async def fn(args: Any, ctx: NextTurnContext) -> Any:
        seen.append(ctx)
        return 5

    request = {
        "input": "hello",
        "model": "a/b",
        "models": ["c/d"],
        "temperature": 0.5,
        "max_output_tokens": 100,
        "top_p": 0.8,
        "top_k": 3,
        "instructions": "be nice",
        "tools": [],
    }
    computed = await compute_next_turn_params([_tool("t", top_k=fn)], [_call("t", {})], request)
    assert computed == {"top_k": 5}
    assert seen[0] == NextTurnContext(
        input="hello",
        model="a/b",
        models=["c/d"],
        temperature=0.5,
        max_output_tokens=100,
        top_p=0.8,
        top_k=3,
        instructions="be nice",
    )


@pytest.mark.parametrize(
    ("arguments", "type_name"),
    [("not json", "string"), ([1, 2], "array"), (3, "number"), (None, "null"), (True, "boolean")],
)
async def test_non_object_arguments_fail_the_run_l12(arguments: Any, type_name: str) -> None:
    """§3.8: `Tool call arguments for <tool> must be an object, got <type>`."""
    t = _tool("load_skill", model=lambda p, ctx: "x")
    with pytest.raises(RunError) as info:
        await apply_next_turn_params([t], [_call("load_skill", arguments)], {})
    assert (
        str(info.value) == f"Tool call arguments for load_skill must be an object, got {type_name}"
    )


async def test_non_object_arguments_of_tools_without_next_turn_params_are_ignored() -> None:
    t = _tool("t", model=lambda p, ctx: "x")
    out = await apply_next_turn_params([t, _tool("u")], [_call("u", "bad")], {"model": "m"})
    assert out == {"model": "m"}


async def test_a_raising_function_fails_the_run() -> None:
    def fn(args: Any, ctx: NextTurnContext) -> Any:
        raise ValueError("bad skill")

    with pytest.raises(RunError) as info:
        await apply_next_turn_params([_tool("t", model=fn)], [_call("t", {})], {})
    assert str(info.value) == (
        'next_turn_params function for field "model" of tool "t" failed: bad skill'
    )
    assert isinstance(info.value.__cause__, ValueError)


async def test_without_next_turn_params_the_request_is_copied() -> None:
    history = [{"role": "user", "content": "x"}]
    request = {"model": "m", "input": history}
    out = await apply_next_turn_params([_tool("t")], [_call("t", {})], request)
    assert out == request
    assert out is not request
    assert out["input"] is history


def test_next_turn_param_keys() -> None:
    assert NEXT_TURN_PARAM_KEYS == (
        "input",
        "model",
        "models",
        "temperature",
        "max_output_tokens",
        "top_p",
        "top_k",
        "instructions",
    )


# --- applying computed values: L-13 -----------------------------------------------------


def test_apply_to_request_replaces_removes_and_preserves_l13() -> None:
    """L-13: non-null replaces, null removes, untouched fields are preserved."""
    request = {"model": "a", "temperature": 0.5, "instructions": "x", "tools": [1]}
    out = apply_next_turn_params_to_request(request, {"model": "b", "instructions": None})
    assert out == {"model": "b", "temperature": 0.5, "tools": [1]}
    assert request == {"model": "a", "temperature": 0.5, "instructions": "x", "tools": [1]}


def test_apply_empty_map_leaves_the_request_equal_l13() -> None:
    """L-13: an empty map leaves the request equal."""
    request = {"model": "a", "temperature": 0.5}
    assert apply_next_turn_params_to_request(request, {}) == request


def test_apply_keeps_zero_and_empty_string_l13() -> None:
    """L-13: 0 and "" are real values, not removals."""
    out = apply_next_turn_params_to_request(
        {"temperature": 1, "instructions": "x"}, {"temperature": 0, "instructions": ""}
    )
    assert out == {"temperature": 0, "instructions": ""}


def test_apply_removing_an_absent_field_is_fine_l13() -> None:
    assert apply_next_turn_params_to_request({"model": "a"}, {"top_k": None}) == {"model": "a"}


# --- tool-choice relaxation: A-02 -------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "relaxed"),
    [
        ("required", "auto"),
        ({"type": "function", "name": "get_weather"}, "auto"),
        (
            {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "a"}],
            },
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "a"}]},
        ),
        (
            {"type": "allowed_tools", "mode": "auto", "tools": []},
            {"type": "allowed_tools", "mode": "auto", "tools": []},
        ),
        ("auto", "auto"),
        ("none", "none"),
        ({"type": "web_search_preview"}, {"type": "web_search_preview"}),
        (None, None),
    ],
)
def test_relax_tool_choice_a02(choice: Any, relaxed: Any) -> None:
    """A-02: required / a specific tool → auto; allowed_tools keeps its tools in auto mode."""
    assert relax_tool_choice(choice) == relaxed


def test_relax_does_not_modify_the_given_choice_a02() -> None:
    choice = {"type": "allowed_tools", "mode": "required", "tools": []}
    relax_tool_choice(choice)
    assert choice["mode"] == "required"


def test_relaxer_relaxes_after_rounds_and_rearms_on_change_a02() -> None:
    """A-02: a dynamic choice that changes value re-arms the forced choice once."""
    relaxer = ToolChoiceRelaxer()
    forced = {"type": "function", "name": "search"}
    assert relaxer.initial("required") == "required"
    assert relaxer.after_round("required") == "auto"
    assert relaxer.after_round("required") == "auto"
    assert relaxer.after_round(forced) == forced
    assert relaxer.after_round(forced) == "auto"
    assert relaxer.after_round("auto") == "auto"


def test_positional_arity() -> None:
    def two(a: int, b: int, c: int = 0) -> None: ...

    def star(*args: int) -> None: ...

    def keyword_only(a: int, *, b: int) -> None: ...

    assert positional_arity(two, 2) == 2
    assert positional_arity(star, 2) == 2
    assert positional_arity(keyword_only, 2) == 1
    assert positional_arity(lambda: None, 1) == 0


def test_json_type_name() -> None:
    class Opaque:
        pass

    assert json_type_name({"a": 1}) == "object"
    assert json_type_name((1,)) == "array"
    assert json_type_name(1.5) == "number"
    assert json_type_name(Opaque()) == "Opaque"
