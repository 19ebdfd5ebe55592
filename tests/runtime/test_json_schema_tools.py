"""JSON-Schema tools: checked when made, sent as given, arguments validated before
``execute``; wire-format function-tool dicts; msgspec schemas without noise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio

from runtime._agent.inputs import check_tools
from runtime._agent.tools import Tool, function_tool, tool
from runtime._base.errors import ConfigurationError, ToolError
from runtime._client.client import OpenRouter
from runtime.testing import FakeOpenRouter, text_turn, tool_call_turn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BOUND = 30.0

ORDER = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^ord_[0-9]+$"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "maxItems": 3},
    },
    "required": ["order_id"],
    "additionalProperties": False,
    "$defs": {"Item": {"type": "object", "properties": {"sku": {"type": "string"}}}},
    "x-vendor": {"~kept": True},
}


def test_the_schema_is_sent_exactly_as_given() -> None:
    t = tool("lookup", input_schema=ORDER, execute=lambda args: args)
    assert t.parameters == ORDER
    assert t.parameters is not ORDER  # a copy: the caller's dict is not shared
    assert t.to_wire()["parameters"] == ORDER


def test_valid_arguments_reach_execute_as_the_dict() -> None:
    t = tool("lookup", input_schema=ORDER, execute=lambda args: args)
    raw = {"order_id": "ord_12", "items": [{"sku": "a"}]}
    assert t.parse_arguments(raw) == raw


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "Object missing required field `order_id` - at `$`"),
        ({"order_id": "x"}, "Expected `str` matching regex '^ord_[0-9]+$' - at `$.order_id`"),
        ({"order_id": "ord_1", "extra": 1}, "Object contains unknown field `extra` - at `$`"),
        ({"order_id": "ord_1", "items": [{"sku": 5}]}, "got `integer` - at `$.items[0].sku`"),
    ],
)
def test_invalid_arguments_are_a_tool_error_naming_the_field(
    arguments: dict[str, Any], message: str
) -> None:
    t = tool("lookup", input_schema=ORDER, execute=lambda args: args)
    with pytest.raises(ToolError, match=r'^Invalid arguments for tool "lookup": ') as info:
        t.parse_arguments(arguments, call_id="c1")
    assert message in str(info.value)
    assert info.value.call_id == "c1"


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "object", "properties": {"n": {"type": "int"}}}, "keyword 'type'"),
        ({"type": "object", "required": "n"}, "keyword 'required'"),
        ({"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}}}, "does not resolve"),
        ({"type": "string"}, "must describe a JSON object"),
        ({"properties": {}}, "must describe a JSON object"),
    ],
)
def test_a_bad_schema_is_refused_when_the_tool_is_made(schema: Any, named: str) -> None:
    with pytest.raises(ConfigurationError, match="Tool 'bad' input_schema") as info:
        tool("bad", input_schema=schema, execute=lambda: None)
    assert named in str(info.value)


def test_json_schema_output_and_event_schemas_validate() -> None:
    async def run(args: Any) -> AsyncIterator[Any]:
        yield {"step": 1}

    t = tool(
        "gen",
        input_schema={"type": "object"},
        output_schema={"type": "object", "required": ["done"]},
        event_schema={"type": "object", "required": ["step"]},
        execute=run,
    )
    assert t.validate_event({"step": 1}) == {"step": 1}
    assert t.matches_output({"done": True})
    assert not t.matches_output({"step": 1})
    with pytest.raises(ToolError, match='Invalid event from tool "gen"'):
        t.validate_event({})


def test_wire_format_function_dicts_become_manual_tools() -> None:
    flat = {
        "type": "function",
        "name": "ask_user",
        "description": "Ask the user.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    nested = {"type": "function", "function": {"name": "confirm"}}
    server = {"type": "openrouter:web_search"}
    first, second, third = check_tools([flat, nested, server])
    assert isinstance(first, Tool)
    assert first.kind == "manual"
    assert first.to_wire()["parameters"] == flat["parameters"]
    assert first.description == "Ask the user."
    assert isinstance(second, Tool)
    assert second.parameters == {"type": "object", "properties": {}}
    assert third is server
    with pytest.raises(ConfigurationError, match="the function tool 'x y'"):
        check_tools([{"type": "function", "name": "x y"}])


class Inner(msgspec.Struct):
    """A nested thing."""

    a: int = 0


class Outer(msgspec.Struct):
    inner: Inner
    tags: list[str] = []


def test_msgspec_schemas_drop_title_noise_and_empty_required() -> None:
    t = tool("outer", input_schema=Outer, execute=lambda args: None)
    assert "title" not in t.parameters
    assert "title" not in t.parameters["properties"]["inner"]
    assert "required" not in t.parameters["properties"]["inner"]  # was []
    assert t.parameters["properties"]["inner"]["description"] == "A nested thing."

    @function_tool
    def search(query: str, limit: int = 3) -> list[str]:
        """Search."""
        return []

    assert search.parameters == {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "default": 3}},
        "required": ["query"],
    }


@pytest.fixture
def fake() -> FakeOpenRouter:
    return FakeOpenRouter()


@pytest.fixture
async def client(fake: FakeOpenRouter) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as c:
        yield c


async def test_a_run_validates_arguments_before_execute(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    seen: list[Any] = []

    def look(args: Any) -> Any:
        seen.append(args)
        return {"status": "shipped"}

    lookup = tool("lookup", input_schema=ORDER, execute=look)
    fake.enqueue(
        tool_call_turn(
            ("lookup", {"order_id": "nope"}, "c1"), ("lookup", {"order_id": "ord_7"}, "c2")
        ),
        text_turn("done"),
    )
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="x", tools=[lookup])
        assert await result.get_text() == "done"
    assert seen == [{"order_id": "ord_7"}]
    first, second = fake.bodies()
    assert first["tools"][0]["parameters"] == ORDER
    outputs = {
        i["call_id"]: i["output"]
        for i in second["input"]
        if i.get("type") == "function_call_output"
    }
    assert outputs["c2"] == '{"status":"shipped"}'
    assert "Expected `str` matching regex" in msgspec.json.decode(outputs["c1"])["error"]


async def test_a_wire_dict_tool_pauses_the_run(fake: FakeOpenRouter, client: OpenRouter) -> None:
    fake.enqueue(tool_call_turn(("ask_user", {"q": "ok?"}, "c1")))
    spec = {"type": "function", "name": "ask_user", "parameters": {"type": "object"}}
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="x", tools=[spec])
        pending = await result.get_pending_tool_calls()
    assert [c.name for c in pending] == ["ask_user"]
