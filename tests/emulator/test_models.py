"""The built-in models, token counting, usage and arguments from JSON Schemas (no I/O)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pytest
from jsonschema import Draft202012Validator

from runtime.emulator import Pricing, ToolCall, Turn, TurnUsage, count_tokens, example_arguments
from runtime.emulator._models import (
    Conversation,
    ToolOutputSeen,
    ToolSpec,
    builtin_turn,
    chunk_words,
    compute_usage,
)


class Address(msgspec.Struct):
    street: str
    zip_code: str = msgspec.field(name="zip")


class Order(msgspec.Struct):
    item: str
    quantity: int
    unit: Literal["kg", "lb"]
    addresses: list[Address]
    express: bool = False
    note: str | None = None
    discount: float | None = None


SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 9, "multipleOf": 2}},
    },
    {"type": "object", "properties": {"x": {"type": "number", "exclusiveMinimum": 10}}},
    {"type": "object", "properties": {"x": {"type": "number", "exclusiveMaximum": 0.5}}},
    {"type": "object", "properties": {"x": {"type": "integer", "exclusiveMaximum": 1}}},
    {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 2}},
    },
    {"type": "object", "properties": {"none": {"type": "array", "maxItems": 0}}},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"}}},
    {"type": "object", "properties": {"code": {"type": "string", "minLength": 8, "maxLength": 10}}},
    {"type": "object", "properties": {"short": {"type": "string", "maxLength": 2}}},
    {"type": "object", "properties": {"mode": {"enum": ["fast", "slow"]}, "flag": {"const": True}}},
    {"type": "object", "properties": {"maybe": {"type": ["null", "integer"]}}},
    {
        "type": "object",
        "properties": {"either": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}},
    },
    {
        "type": "object",
        "properties": {
            "deep": {
                "type": "object",
                "properties": {
                    "deeper": {"type": "object", "properties": {"v": {"type": "number"}}}
                },
            }
        },
    },
    {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}},
            {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]
    },
    {"type": "object", "properties": {"d": {"type": "string", "default": "preset"}}},
    {"type": "object", "required": ["untyped"]},
    {"properties": {"implicit": {"items": {"type": "integer"}}}},
    msgspec.json.schema(Order),
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_example_arguments_satisfy_their_schema(schema: dict[str, Any]) -> None:
    arguments = example_arguments(schema)
    errors = [error.message for error in Draft202012Validator(schema).iter_errors(arguments)]
    assert errors == []


def test_example_arguments_decode_into_the_struct_they_came_from() -> None:
    arguments = example_arguments(msgspec.json.schema(Order))
    order = msgspec.convert(arguments, Order)
    assert order.unit == "kg"
    assert order.addresses == [Address(street="street", zip_code="zip")]
    assert (order.express, order.note) == (False, None)  # schema defaults are honoured


def test_example_arguments_pick_documented_values() -> None:
    assert example_arguments(SCHEMAS[0]) == {"city": "city"}
    assert example_arguments(SCHEMAS[1]) == {"n": 4}
    assert example_arguments(SCHEMAS[10]) == {"mode": "fast", "flag": True}
    assert example_arguments(SCHEMAS[15]) == {"d": "preset"}
    assert example_arguments(None) == {}
    assert example_arguments({}) == {}


def test_example_arguments_stop_on_recursive_schemas() -> None:
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
    }
    arguments = example_arguments(schema)
    depth = 0
    while isinstance(arguments, dict):
        arguments = arguments["next"]
        depth += 1
    assert arguments is None
    assert depth < 20


def test_tokens_are_four_characters_rounded_up() -> None:
    assert [count_tokens(text) for text in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_chunk_words_splits_on_words_and_joins_back() -> None:
    text = "  two  spaced\nwords "
    chunks = chunk_words(text)
    assert "".join(chunks) == text
    assert chunks == ("  two  ", "spaced\n", "words ")


def test_compute_usage_counts_text_reasoning_and_tool_calls() -> None:
    turn = Turn(
        text=("abcdefgh",),
        reasoning=("abcd",),
        tool_calls=(ToolCall(name="ab", arguments=("{}",)),),
    )
    usage = compute_usage(turn, prompt_tokens=10, pricing=Pricing(prompt="0.5", completion="1"))
    assert usage.reasoning_tokens == 1
    assert usage.output_tokens == 2 + 1 + 1
    assert usage.input_tokens == 10
    assert usage.total_tokens == 14
    assert (usage.input_cost, usage.output_cost, usage.cost) == (5.0, 4.0, 9.0)


def test_compute_usage_overrides_and_splits_a_fixed_cost() -> None:
    """L-07: a script can pin the cost of each response (here 0.3)."""
    turn = Turn(
        text=("x",), usage=TurnUsage(input_tokens=3, output_tokens=1, reasoning_tokens=0, cost=0.3)
    )
    usage = compute_usage(turn, prompt_tokens=99, pricing=Pricing())
    assert (usage.input_tokens, usage.output_tokens, usage.cost) == (3, 1, 0.3)
    assert usage.input_cost == pytest.approx(0.225)
    assert usage.input_cost + usage.output_cost == pytest.approx(0.3)


def test_echo_answers_the_last_user_text() -> None:
    turn = builtin_turn("emulator/echo", Conversation(last_user_text="say this"))
    assert turn.text == ("say ", "this")
    assert turn.status == "completed"


def test_tool_caller_respects_tool_choice_and_parallel_calls() -> None:
    tools = (ToolSpec(name="a", parameters={"type": "object"}), ToolSpec(name="b"))
    every = builtin_turn("emulator/tool-caller", Conversation(tools=tools))
    assert [call.name for call in every.tool_calls] == ["a", "b"]
    forced = builtin_turn(
        "emulator/tool-caller",
        Conversation(tools=tools, tool_choice="required", forced_tools=("b",)),
    )
    assert [call.name for call in forced.tool_calls] == ["b"]
    single = builtin_turn(
        "emulator/tool-caller", Conversation(tools=tools, parallel_tool_calls=False)
    )
    assert [call.name for call in single.tool_calls] == ["a"]
    none = builtin_turn(
        "emulator/tool-caller", Conversation(tools=tools, tool_choice="none", last_user_text="hi")
    )
    assert (none.tool_calls, none.full_text) == ((), "hi")
    summary = builtin_turn(
        "emulator/tool-caller",
        Conversation(
            tools=tools,
            results=(
                ToolOutputSeen(call_id="c1", name="a", output="42"),
                ToolOutputSeen(call_id="c2", name=None, output="x"),
            ),
        ),
    )
    assert summary.full_text == "a returned 42. c2 returned x."


def test_output_cap_marks_the_turn_incomplete() -> None:
    turn = builtin_turn(
        "emulator/reasoning", Conversation(last_user_text="a b c d e f g h", max_output_tokens=13)
    )
    reasoning_tokens = count_tokens(turn.full_reasoning)
    assert turn.status == "incomplete"
    assert turn.incomplete_reason == "max_output_tokens"
    assert count_tokens(turn.full_text) <= 13 - reasoning_tokens
