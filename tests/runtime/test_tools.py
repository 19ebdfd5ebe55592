"""Tests for runtime._agent.tools, .schema and .outcomes: tool factory, schemas,
argument and output checks.

Scenario ids from spec/callmodel.md §8: F-01..F-04, Z-01, E-03, E-04.
Running tools (timeouts, generators, rounds) is tested in tests/actors/test_tool_call.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

import msgspec
import pytest
from jsonschema import Draft202012Validator

from runtime._agent.outcomes import (
    FinalResult,
    ToolContext,
    ToolOutcome,
    generator_without_values_message,
    invalid_json_arguments_message,
    output_for_model,
    unknown_tool_message,
)
from runtime._agent.schema import json_schema_for, sanitize_json_schema
from runtime._agent.tools import Tool, function_tool, tool
from runtime._base.errors import ConfigurationError, ToolError
from runtime._protocol.wire import ParsedToolCall

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Weather(msgspec.Struct):
    temperature: float
    conditions: str


class WeatherArgs(msgspec.Struct):
    """Where to look."""

    location: Annotated[str, msgspec.Meta(description="City name")]
    unit: Literal["c", "f"] = "c"


class Address(msgspec.Struct):
    """A postal address."""

    city: str
    zip: Annotated[str, msgspec.Meta(pattern=r"^\d{5}$")]


class Person(msgspec.Struct):
    name: Annotated[
        str,
        msgspec.Meta(description="Full name", extra_json_schema={"~standard": {"vendor": "zod"}}),
    ]
    age: Annotated[float, msgspec.Meta(ge=0)]
    home: Address
    work: Address | None = None


class TreeNode(msgspec.Struct):
    value: int
    children: list[TreeNode] = []


class Forest(msgspec.Struct):
    trees: list[TreeNode]


class Progress(msgspec.Struct):
    percent: int


class SearchResult(msgspec.Struct):
    results: list[str]


def _walk_keys(value: Any) -> list[str]:
    keys: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            keys.append(k)
            keys.extend(_walk_keys(v))
    elif isinstance(value, list):
        for v in value:
            keys.extend(_walk_keys(v))
    return keys


def _noop(args: Any) -> Any:
    return args


def _call(arguments: Any = None, name: str = "t", call_id: str = "call_1") -> ParsedToolCall:
    return ParsedToolCall(id=call_id, name=name, arguments={} if arguments is None else arguments)


# --- Z-01: schema sanitization ------------------------------------------------------


def test_sanitize_drops_tilde_keys_at_every_depth_z01() -> None:
    """Z-01: `~` keys go at every depth, inside arrays too; other keys stay."""
    schema = {
        "~standard": {"v": 1},
        "type": "object",
        "properties": {
            "a": {"type": "string", "~meta": 1, "description": "A"},
            "b": {"anyOf": [{"type": "integer", "~x": True}, {"type": "null"}]},
        },
        "items": [[{"~deep": 1, "keep": 2}]],
    }
    assert sanitize_json_schema(schema) == {
        "type": "object",
        "properties": {
            "a": {"type": "string", "description": "A"},
            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "items": [[{"keep": 2}]],
    }


@pytest.mark.parametrize("value", [None, 0, 1.5, "~text", True, {}, []])
def test_sanitize_passes_primitives_and_empty_containers_through_z01(value: Any) -> None:
    """Z-01: primitives, None, empty dict and list pass through unchanged."""
    assert sanitize_json_schema(value) == value


def test_converted_schema_has_object_properties_descriptions_and_no_tilde_z01() -> None:
    """Z-01: {name: str (described), age: number >= 0} converts cleanly."""
    schema = tool(name="person", input_schema=Person, execute=_noop).to_wire()["parameters"]
    assert schema["type"] == "object"
    assert schema["properties"]["name"]["description"] == "Full name"
    assert schema["properties"]["age"] == {"type": "number", "minimum": 0}
    assert not [k for k in _walk_keys(schema) if k.startswith("~")]


# --- JSON Schema inlining -----------------------------------------------------------


def test_defs_are_inlined_with_descriptions_kept() -> None:
    schema = json_schema_for(Person)
    assert "$ref" not in _walk_keys(schema)
    assert "$defs" not in schema
    home = schema["properties"]["home"]
    assert home["type"] == "object"
    assert home["description"] == "A postal address."
    assert home["properties"]["zip"]["pattern"] == r"^\d{5}$"
    work_variants = schema["properties"]["work"]["anyOf"]
    assert {"type": "null"} in work_variants
    assert any(v.get("description") == "A postal address." for v in work_variants)


def test_struct_docstring_becomes_schema_description() -> None:
    assert json_schema_for(WeatherArgs)["description"] == "Where to look."


def test_recursive_type_keeps_only_its_own_definition() -> None:
    schema = json_schema_for(Forest)
    node = schema["properties"]["trees"]["items"]
    assert node["properties"]["value"] == {"type": "integer"}
    assert node["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}
    assert list(schema["$defs"]) == ["TreeNode"]
    assert "Forest" not in schema["$defs"]
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"trees": [{"value": 1, "children": [{"value": 2}]}]})
    assert not validator.is_valid({"trees": [{"value": 1, "children": [{"value": "x"}]}]})


def test_inlined_schema_validates_like_the_type() -> None:
    validator = Draft202012Validator(json_schema_for(Person))
    good = {"name": "Ada", "age": 36, "home": {"city": "London", "zip": "12345"}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "home": {"city": "London", "zip": "12"}})


def test_typed_dict_and_dict_schemas_are_objects() -> None:
    class Query(TypedDict):
        q: str

    assert json_schema_for(Query)["properties"] == {"q": {"type": "string"}}
    assert tool(name="d", input_schema=dict[str, Any], execute=_noop).parameters == {
        "type": "object"
    }


# --- the wire form ----------------------------------------------------------------


def test_to_wire_matches_the_sdk_shape(openapi: Any) -> None:
    t = tool(name="get_weather", description="Get weather", input_schema=WeatherArgs, execute=_noop)
    wire = t.to_wire()
    assert wire["type"] == "function"
    assert wire["name"] == "get_weather"
    assert wire["description"] == "Get weather"
    assert wire["strict"] is None
    assert wire["parameters"]["required"] == ["location"]
    openapi.validate("FunctionTool", wire)


def test_to_wire_sends_null_description_when_missing(openapi: Any) -> None:
    wire = tool(name="t", input_schema=WeatherArgs, execute=_noop).to_wire()
    assert wire["description"] is None
    openapi.validate("FunctionTool", wire)


def test_to_wire_returns_a_fresh_copy() -> None:
    t = tool(name="t", input_schema=WeatherArgs, execute=_noop)
    first = t.to_wire()
    first["parameters"]["properties"].clear()
    assert t.to_wire()["parameters"]["properties"]


# --- the factory: F-01..F-04 ------------------------------------------------------


def test_regular_tool_keeps_its_config_and_accepts_sync_execute_f01() -> None:
    """F-01: name/description/input_schema kept; sync execute allowed."""

    def execute(args: WeatherArgs, ctx: ToolContext) -> Weather:
        return Weather(temperature=20, conditions=args.location)

    t = tool(
        name="get_weather",
        description="Get weather",
        input_schema=WeatherArgs,
        output_schema=Weather,
        execute=execute,
    )
    assert isinstance(t, Tool)
    assert (t.name, t.description, t.input_schema, t.output_schema) == (
        "get_weather",
        "Get weather",
        WeatherArgs,
        Weather,
    )
    assert t.kind == "regular"
    assert t.execute is execute
    assert t.event_schema is None
    assert t.to_wire()["type"] == "function"
    assert repr(t) == "<Tool 'get_weather' (regular)>"


def test_execute_receives_the_context_when_it_takes_two_arguments_f01() -> None:
    """F-01: the context is passed through."""
    seen: list[Any] = []
    t = tool(name="t", input_schema=dict[str, Any], execute=lambda a, c: seen.append((a, c)))
    ctx = ToolContext(number_of_turns=2, tool_call=_call())
    t.invoke({"x": 1}, ctx)
    assert seen == [({"x": 1}, ctx)]


def test_execute_may_take_only_the_input_or_nothing() -> None:
    one = tool(name="one", input_schema=dict[str, Any], execute=lambda a: ("one", a))
    none = tool(name="none", input_schema=dict[str, Any], execute=lambda: "none")
    ctx = ToolContext(number_of_turns=1, tool_call=_call())
    assert one.invoke({"k": 1}, ctx) == ("one", {"k": 1})
    assert none.invoke({}, ctx) == "none"


async def test_generator_tool_has_event_and_output_schema_f02() -> None:
    """F-02: generator config keeps eventSchema and outputSchema; execute yields the values."""

    async def execute(args: dict[str, Any], ctx: ToolContext) -> AsyncIterator[Any]:
        yield {"percent": 10}
        yield {"percent": 90}
        yield FinalResult({"results": ["a"]})

    t = tool(
        name="search",
        input_schema=dict[str, Any],
        event_schema=Progress,
        output_schema=SearchResult,
        execute=execute,
    )
    assert t.kind == "generator"
    assert (t.event_schema, t.output_schema) == (Progress, SearchResult)
    values = [v async for v in t.invoke({}, ToolContext(number_of_turns=1, tool_call=_call()))]
    assert values == [{"percent": 10}, {"percent": 90}, FinalResult({"results": ["a"]})]


def test_manual_tool_has_no_execute_f03() -> None:
    """F-03: execute=False makes a manual tool with no execute function."""
    t = tool(name="exec_command", input_schema=dict[str, Any], execute=False)
    assert t.kind == "manual"
    assert t.execute is None
    with pytest.raises(ConfigurationError, match="manual tool"):
        t.invoke({}, ToolContext(number_of_turns=1, tool_call=_call()))


def test_reserved_name_shared_is_rejected_f04() -> None:
    """F-04: the name `shared` is reserved; other names are fine."""
    for execute in (_noop, False):
        with pytest.raises(ConfigurationError) as info:
            tool(name="shared", input_schema=dict[str, Any], execute=execute)
        assert str(info.value) == (
            'Tool name "shared" is reserved for shared context. Choose a different name.'
        )
    assert tool(name="shared_data", input_schema=dict[str, Any], execute=_noop).name == (
        "shared_data"
    )


@pytest.mark.parametrize("name", ["", "has space", "dot.name", "x" * 65, "naïve", "a\n", 5])
def test_invalid_names_are_rejected_with_the_value(name: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        tool(name=name, input_schema=dict[str, Any], execute=_noop)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["a", "get_weather", "GET-weather-2", "x" * 64])
def test_valid_names_are_accepted(name: str) -> None:
    assert tool(name=name, input_schema=dict[str, Any], execute=_noop).name == name


async def _agen(args: Any) -> AsyncIterator[Any]:
    yield args


async def _async_fn(args: Any) -> Any:
    return args


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"execute": True}, "must be a function"),
        ({"execute": "run"}, "must be a function"),
        ({"execute": _agen}, "needs an event_schema"),
        ({"execute": _noop, "event_schema": Progress, "output_schema": Weather}, "async generator"),
        ({"execute": _agen, "event_schema": Progress}, "also needs an output_schema"),
        ({"execute": False, "event_schema": Progress}, "cannot have an event_schema"),
        ({"execute": _async_fn, "run_sync_in_thread": True}, "run_sync_in_thread"),
        ({"execute": _noop, "timeout": 0}, "timeout 0"),
        ({"execute": _noop, "timeout": -1.5}, "timeout -1.5"),
        ({"execute": _noop, "timeout": float("nan")}, "timeout nan"),
        ({"execute": _noop, "max_concurrency": 0}, "max_concurrency 0"),
        ({"execute": _noop, "max_concurrency": 1.5}, "max_concurrency 1.5"),
        ({"execute": _noop, "description": 5}, "description 5"),
        ({"execute": _noop, "next_turn_params": {"tools": _noop}}, "key 'tools'"),
        ({"execute": _noop, "next_turn_params": {"temperature": 0.2}}, "must be callable"),
        ({"execute": _noop, "next_turn_params": [("model", _noop)]}, "must be a mapping"),
        ({"execute": _noop, "input_schema": int}, "must describe a JSON object"),
        ({"execute": _noop, "input_schema": object}, "not a type msgspec can describe"),
        ({"execute": _noop, "output_schema": object}, "output_schema"),
    ],
)
def test_bad_configuration_is_a_configuration_error(kwargs: dict[str, Any], fragment: str) -> None:
    config: dict[str, Any] = {"name": "t", "input_schema": dict[str, Any], **kwargs}
    with pytest.raises(ConfigurationError, match=fragment):
        tool(**config)


def test_next_turn_params_are_kept_read_only() -> None:
    def fn(args: Any, ctx: Any) -> float:
        return 0.1

    t = tool(name="t", input_schema=dict[str, Any], execute=_noop, next_turn_params={"top_p": fn})
    assert t.next_turn_params is not None
    assert dict(t.next_turn_params) == {"top_p": fn}
    with pytest.raises(TypeError):
        t.next_turn_params["model"] = fn  # type: ignore[index]


# --- arguments, outputs, events -------------------------------------------------------


def test_parse_arguments_fills_defaults_and_drops_unknown_keys() -> None:
    t = tool(name="t", input_schema=WeatherArgs, execute=_noop)
    assert t.parse_arguments({"location": "Paris", "extra": 1}) == WeatherArgs(location="Paris")


def test_parse_arguments_is_strict_about_json_types() -> None:
    """Strict mode: "5" is not an int, but an int is a float."""

    class Args(msgspec.Struct):
        n: int
        x: float = 0.0

    t = tool(name="t", input_schema=Args, execute=_noop)
    assert t.parse_arguments({"n": 5, "x": 2}) == Args(n=5, x=2.0)
    with pytest.raises(ToolError) as info:
        t.parse_arguments({"n": "5"}, call_id="call_9")
    assert str(info.value) == 'Invalid arguments for tool "t": Expected `int`, got `str` - at `$.n`'
    assert (info.value.tool_name, info.value.call_id) == ("t", "call_9")
    assert isinstance(info.value.__cause__, msgspec.ValidationError)


def test_parse_arguments_reports_missing_fields_and_constraints() -> None:
    t = tool(name="p", input_schema=Person, execute=_noop)
    with pytest.raises(ToolError, match="missing required field `name`"):
        t.parse_arguments({"age": 1, "home": {"city": "x", "zip": "12345"}})
    with pytest.raises(ToolError, match=r"at `\$\.home\.zip`"):
        t.parse_arguments({"name": "n", "age": 1, "home": {"city": "x", "zip": "1"}})


def test_validate_output_converts_and_rejects() -> None:
    t = tool(name="t", input_schema=dict[str, Any], output_schema=Weather, execute=_noop)
    assert t.validate_output({"temperature": 1, "conditions": "sun", "x": 0}) == Weather(1.0, "sun")
    assert t.matches_output({"temperature": 1, "conditions": "sun"})
    assert not t.matches_output({"temperature": "hot"})
    with pytest.raises(ToolError, match=r'^Invalid output from tool "t": '):
        t.validate_output({"temperature": "hot", "conditions": "sun"})


def test_validate_output_accepts_objects_with_matching_attributes() -> None:
    class Reading:
        def __init__(self) -> None:
            self.temperature = 3.5
            self.conditions = "rain"

    t = tool(name="t", input_schema=dict[str, Any], output_schema=Weather, execute=_noop)
    assert t.validate_output(Reading()) == Weather(3.5, "rain")


def test_without_schemas_values_pass_unchecked() -> None:
    t = tool(name="t", input_schema=dict[str, Any], execute=_noop)
    marker = object()
    assert t.validate_output(marker) is marker
    assert t.validate_event(marker) is marker
    assert t.matches_output(marker)
    assert t.matches_event(marker)


def test_validate_event_checks_the_event_schema() -> None:
    t = tool(
        name="g",
        input_schema=dict[str, Any],
        event_schema=Progress,
        output_schema=SearchResult,
        execute=_agen,
    )
    assert t.validate_event({"percent": 5}) == Progress(5)
    assert t.matches_event({"percent": 5})
    assert not t.matches_event({"results": []})
    with pytest.raises(ToolError, match=r'^Invalid event from tool "g": '):
        t.validate_event({"percent": "five"})


# --- outcomes and the model-facing text: E-03, E-04 ------------------------------------


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ("ok", '"ok"'),
        ({"a": 1}, '{"a":1}'),
        (42, "42"),
        (None, "null"),
        ([1, "x"], '[1,"x"]'),
        (Weather(temperature=21.5, conditions="sun"), '{"temperature":21.5,"conditions":"sun"}'),
    ],
)
def test_output_for_model_is_the_json_of_the_result_e03(result: Any, expected: str) -> None:
    """E-03: strings become quoted JSON strings, objects JSON; None is "null"."""
    assert output_for_model(ToolOutcome(call=_call(), result=result)) == expected


def test_output_for_model_of_an_error_e03() -> None:
    """E-03: a failure reads as {"error": message}."""
    outcome = ToolOutcome(call=_call(), error="boom")
    assert output_for_model(outcome) == '{"error":"boom"}'


def test_invalid_json_message_is_verbatim_e04() -> None:
    """E-04: the SDK's parse-error text, and its JSON as the model sees it."""
    message = invalid_json_arguments_message("t", "not json")
    assert message == (
        'Failed to parse tool call arguments for "t": The model provided invalid JSON. '
        'Raw arguments received: "not json". Please provide valid JSON arguments for this '
        "tool call."
    )
    assert output_for_model(ToolOutcome(call=_call("not json"), error=message)) == (
        '{"error":"Failed to parse tool call arguments for \\"t\\": The model provided invalid '
        'JSON. Raw arguments received: \\"not json\\". Please provide valid JSON arguments for '
        'this tool call."}'
    )


def test_other_messages_are_verbatim() -> None:
    assert generator_without_values_message("g") == (
        'Generator tool "g" completed without emitting any values or returning a result'
    )
    assert unknown_tool_message("nope") == 'Tool "nope" not found in tool definitions'


# --- @function_tool ----------------------------------------------------------------


@function_tool
async def get_weather(
    location: str, unit: Literal["c", "f"] = "c", *, ctx: ToolContext, days: int = 1
) -> Weather:
    """Get the current weather for a place.

    Looks it up somewhere.

    Args:
        location: City and country,
            e.g. "Paris, FR".
        unit (str): Temperature unit.
        ctx: The tool context (not in the schema).

    Returns:
        The weather.
    """
    return Weather(temperature=float(days), conditions=f"{location}/{unit}/{ctx.number_of_turns}")


def test_function_tool_derives_schema_from_signature_and_docstring() -> None:
    t = get_weather
    assert isinstance(t, Tool)
    assert t.name == "get_weather"
    assert t.kind == "regular"
    assert t.description == "Get the current weather for a place."
    assert t.output_schema is Weather
    params = t.to_wire()["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["location"]
    assert set(params["properties"]) == {"location", "unit", "days"}
    assert params["properties"]["location"] == {
        "type": "string",
        "description": 'City and country, e.g. "Paris, FR".',
    }
    assert params["properties"]["unit"] == {
        "enum": ["c", "f"],
        "default": "c",
        "description": "Temperature unit.",
    }
    assert params["properties"]["days"] == {"type": "integer", "default": 1}


async def test_function_tool_calls_with_keywords_and_injects_the_context() -> None:
    ctx = ToolContext(number_of_turns=3, tool_call=_call(name="get_weather"))
    arguments = get_weather.parse_arguments({"location": "Oslo", "days": 2})
    assert await get_weather.invoke(arguments, ctx) == Weather(2.0, "Oslo/c/3")


def test_function_tool_with_options_and_local_types() -> None:
    class Point(msgspec.Struct):
        """A point."""

        x: int
        y: int = 0

    @function_tool(name="plot", description="Plot a point", timeout=5, max_concurrency=2)
    def draw(point: Point, tags: list[str] = ["a"]) -> None:  # noqa: B006 - copied per call
        """Ignored summary."""

    assert draw.name == "plot"
    assert draw.description == "Plot a point"
    assert (draw.timeout, draw.max_concurrency) == (5, 2)
    assert draw.output_schema is None
    params = draw.parameters
    assert params["properties"]["point"]["description"] == "A point."
    assert params["properties"]["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "default": ["a"],
    }
    first = draw.parse_arguments({"point": {"x": 1}})
    second = draw.parse_arguments({"point": {"x": 1}})
    assert first.tags == ["a"]
    assert first.tags is not second.tags


def test_function_tool_explicit_meta_description_wins_over_docstring() -> None:
    @function_tool
    def lookup(key: Annotated[str, msgspec.Meta(description="From Meta")]) -> str:
        """Look up.

        Args:
            key: From the docstring.
        """
        return key

    assert lookup.parameters["properties"]["key"]["description"] == "From Meta"
    assert lookup.output_schema is str


def test_function_tool_without_annotations_uses_any() -> None:
    @function_tool
    def echo(value):  # type: ignore[no-untyped-def]
        return value

    assert echo.parameters["properties"]["value"] == {}
    assert echo.output_schema is None


async def test_function_tool_generator_needs_schemas() -> None:
    with pytest.raises(ConfigurationError, match="needs event_schema"):

        @function_tool
        async def bare(query: str) -> AsyncIterator[Any]:
            yield query

    @function_tool(event_schema=Progress, output_schema=SearchResult)
    async def search(query: str) -> AsyncIterator[Any]:
        """Search."""
        yield {"percent": 50}
        yield FinalResult({"results": [query]})

    assert search.kind == "generator"
    ctx = ToolContext(number_of_turns=1, tool_call=_call(name="search"))
    values = [v async for v in search.invoke(search.parse_arguments({"query": "q"}), ctx)]
    assert values == [{"percent": 50}, FinalResult({"results": ["q"]})]


def test_function_tool_rejects_variadic_and_positional_only_parameters() -> None:
    with pytest.raises(ConfigurationError, match=r"parameter 'rest' .* is variadic"):

        @function_tool
        def star(*rest: int) -> None: ...

    with pytest.raises(ConfigurationError, match=r"parameter 'kw' .* is variadic"):

        @function_tool
        def kwargs(**kw: int) -> None: ...

    with pytest.raises(ConfigurationError, match=r"parameter 'a' .* is positional-only"):

        @function_tool
        def positional(a: int, /) -> None: ...


def test_function_tool_rejects_unresolvable_and_unsupported_annotations() -> None:
    with pytest.raises(ConfigurationError, match=r"parameter .a. of .* cannot be resolved"):

        @function_tool
        def missing(a: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    class Opaque:
        pass

    with pytest.raises(ConfigurationError, match="not a type msgspec can describe"):

        @function_tool
        def opaque(a: Opaque) -> None: ...


def test_function_tool_unresolvable_return_needs_an_explicit_output_schema() -> None:
    with pytest.raises(ConfigurationError, match=r"return annotation .* pass output_schema="):

        @function_tool
        def late() -> Later:  # type: ignore[name-defined]  # noqa: F821
            return None

    @function_tool(output_schema=dict[str, int])
    def explicit() -> Later:  # type: ignore[name-defined]  # noqa: F821
        return None

    assert explicit.output_schema == dict[str, int]


def test_function_tool_checks_the_name() -> None:
    with pytest.raises(ConfigurationError, match="reserved"):

        @function_tool
        def shared() -> None: ...

    with pytest.raises(ConfigurationError, match="'<lambda>'"):
        function_tool(lambda: None)


def test_field_description_wins_over_the_referenced_type_description() -> None:
    class Outer(msgspec.Struct):
        home: Annotated[Address, msgspec.Meta(description="Where they live")]

    home = json_schema_for(Outer)["properties"]["home"]
    assert home["description"] == "Where they live"
    assert home["properties"]["city"] == {"type": "string"}


def test_function_tool_keyword_only_required_after_optional() -> None:
    @function_tool
    def f(a: int = 1, *, b: str) -> None:
        """Do it.

        Args:
            a: First.

        Some text at column zero ends the section.
            b: Not an argument description.
        """

    assert f.parameters["required"] == ["b"]
    assert f.parameters["properties"]["a"]["description"] == "First."
    assert "description" not in f.parameters["properties"]["b"]
    assert f.parse_arguments({"b": "x"}) == f.input_schema(a=1, b="x")


def test_function_tool_accepts_evaluated_annotations() -> None:
    def plain(count, flag=False):  # type: ignore[no-untyped-def]
        return count

    plain.__annotations__ = {"count": int, "flag": bool, "return": int}
    t = function_tool(plain)
    assert t.parameters["properties"] == {
        "count": {"type": "integer"},
        "flag": {"type": "boolean", "default": False},
    }
    assert t.output_schema is int


def test_function_tool_needs_a_callable() -> None:
    with pytest.raises(ConfigurationError, match="needs a function, got 5"):
        function_tool(5)  # type: ignore[call-overload]


def test_object_inside_a_container_means_any_json_value() -> None:
    """``dict[str, object]`` is a common return annotation; it must describe any JSON map."""
    t = tool(
        name="t",
        input_schema=dict[str, object],
        output_schema=list[object],
        execute=_noop,
    )
    assert t.to_wire()["parameters"] == {"type": "object"}
