"""Structured output: ``call_model(output=...)`` sets the response format, judges the
final answer, retries with the error (bounded), and streams partial values; the
emulator answers JSON when asked. Plus: functions where call_model wants values."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio

from runtime._agent.output import OutputSpec, strip_code_fence
from runtime._base.errors import ConfigurationError, StructuredOutputError
from runtime._client.client import OpenRouter
from runtime.emulator import open_emulator
from runtime.testing import FakeOpenRouter, text_turn, tool_call_turn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BOUND = 30.0


class Weather(msgspec.Struct):
    """The weather in one city."""

    city: str
    temperature: float
    tags: list[str] = []


SCHEMA = {
    "type": "object",
    "title": "weather report",
    "properties": {"city": {"type": "string"}, "temperature": {"type": "number"}},
    "required": ["city", "temperature"],
    "additionalProperties": False,
}


ROME = '{"city": "Rome", "temperature": 30, "tags": ["hot"]}'


@pytest.fixture
def fake() -> FakeOpenRouter:
    return FakeOpenRouter()


@pytest.fixture
async def client(fake: FakeOpenRouter) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as c:
        yield c


async def test_a_struct_output_sets_the_format_and_returns_the_typed_value(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn('{"city": "Paris", "temperature": 21.5}', chunks=4))
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="weather?", output=Weather)
        assert await result.get_output() == Weather(city="Paris", temperature=21.5)
    fmt = fake.bodies()[0]["text"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["name"] == "Weather"
    assert fmt["schema"]["required"] == ["city", "temperature"]
    assert "$ref" not in fmt["schema"]


async def test_a_json_schema_output_is_sent_as_given_and_validated(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn('{"city": "Oslo", "temperature": -3}'))
    with trio.fail_after(BOUND):
        result = client.call_model(
            model="m", input="weather?", output=SCHEMA, text={"verbosity": "low"}
        )
        assert await result.get_output() == {"city": "Oslo", "temperature": -3}
    text = fake.bodies()[0]["text"]
    assert text == {
        "verbosity": "low",
        "format": {"type": "json_schema", "name": "weather_report", "schema": SCHEMA},
    }


async def test_a_bad_answer_is_retried_with_the_error_fed_back(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(
        text_turn('{"city": "Paris", "temperature": "warm"}'),
        text_turn('```json\n{"city": "Paris", "temperature": 20}\n```'),
    )
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="weather?", output=Weather)
        assert await result.get_output() == Weather(city="Paris", temperature=20.0)
        conversation = await result.get_conversation()
    second = fake.bodies()[1]["input"]
    feedback = second[-1]
    assert feedback["role"] == "user"
    assert "Expected `float`, got `str` - at `$.temperature`" in feedback["content"]
    assert second[-2]["type"] == "message"  # the rejected answer is in the history
    assert conversation[-3:-1] == second[-2:]


async def test_retries_are_bounded_then_the_run_fails(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn("not json"), text_turn('{"city": 1, "temperature": 2}'), text_turn("{}"))
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="x", output=SCHEMA, output_retries=1)
        with pytest.raises(StructuredOutputError, match="after 2 attempt") as info:
            await result.get_output()
    assert info.value.text == '{"city": 1, "temperature": 2}'
    assert info.value.reason == "Expected `string`, got `integer` - at `$.city`"
    assert fake.pending_turns() == 1  # the third turn was never asked for


async def test_output_stream_yields_partial_values_and_restarts_per_turn(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(
        text_turn('{"city": 5}', chunks=2),
        text_turn(ROME, chunks=len(ROME)),
    )
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="x", output=Weather)
        seen = [value async for value in result.get_output_stream()]
        final = await result.get_output()
    assert seen[0] == {}
    assert {"city": 5} in seen
    restart = seen.index({"city": 5}) + 1
    assert seen[restart] == {}  # the retry starts over
    assert seen[restart:] == [
        {},
        {"city": ""},
        {"city": "R"},
        {"city": "Ro"},
        {"city": "Rom"},
        {"city": "Rome"},
        {"city": "Rome", "temperature": 30},
        {"city": "Rome", "temperature": 30, "tags": []},
        {"city": "Rome", "temperature": 30, "tags": [""]},
        {"city": "Rome", "temperature": 30, "tags": ["h"]},
        {"city": "Rome", "temperature": 30, "tags": ["ho"]},
        {"city": "Rome", "temperature": 30, "tags": ["hot"]},
    ]
    assert seen[-1] == {"city": "Rome", "temperature": 30, "tags": ["hot"]}
    assert final == Weather(city="Rome", temperature=30.0, tags=["hot"])


async def test_structured_output_after_a_tool_round(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    from runtime._agent.tools import function_tool

    @function_tool
    def lookup(city: str) -> float:
        """Temperature of a city."""
        return 12.5

    fake.enqueue(
        tool_call_turn(("lookup", {"city": "Bern"})),
        text_turn('{"city": "Bern", "temperature": 12.5}'),
    )
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="x", tools=[lookup], output=Weather)
        assert await result.get_output() == Weather(city="Bern", temperature=12.5)
    assert all(body["text"]["format"]["name"] == "Weather" for body in fake.bodies())


async def test_get_output_needs_output(fake: FakeOpenRouter, client: OpenRouter) -> None:
    fake.enqueue(text_turn("hi"))
    result = client.call_model(model="m", input="x")
    with pytest.raises(ConfigurationError, match=r"needs call_model\(output="):
        await result.get_output()
    with pytest.raises(ConfigurationError, match=r"needs call_model\(output="):
        result.get_output_stream()
    assert await result.get_text() == "hi"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output": 3}, "must be a msgspec type"),
        ({"output": {"type": "objekt"}}, "keyword 'type'"),
        ({"output": object()}, "not a type msgspec can describe"),
        ({"output": Weather, "output_retries": -1}, "output_retries -1"),
        ({"output": Weather, "text": {"format": {"type": "text"}}}, "both set"),
        ({"output": Weather, "text": lambda ctx: {}}, "cannot be combined"),
        ({"text": Weather}, "text cannot be a class.*use output="),
        ({"tool_timeout": lambda: 5}, "tool_timeout cannot be a function"),
        ({"retry": lambda: None}, "retry cannot be a function"),
        ({"headers": dict}, "headers cannot be a function"),
        ({"allow_final_response": lambda: True}, "allow_final_response cannot be a function"),
        ({"tool_errors": lambda: "raise"}, "tool_errors cannot be a function"),
        ({"output": Weather, "output_retries": lambda: 2}, "output_retries cannot be a function"),
        ({"deadline": lambda: 5}, "deadline cannot be a function"),
        ({"approve": lambda: ["c1"]}, "approve cannot be a function"),
    ],
)
async def test_bad_output_parameters_are_refused_at_call_model(
    client: OpenRouter, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        client.call_model(model="m", input="x", **kwargs)


def test_code_fences_are_tolerated() -> None:
    assert strip_code_fence('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert strip_code_fence("```\n[1]\n```\n") == "[1]"
    assert strip_code_fence('{"a": "```"}') == '{"a": "```"}'
    spec = OutputSpec.from_user(list[int])
    assert spec.parse("```json\n[1, 2]\n```") == [1, 2]
    assert spec.format["name"] == "output"


async def test_the_emulator_answers_json_matching_the_schema_over_loopback() -> None:
    with trio.fail_after(BOUND):
        async with (
            open_emulator() as server,
            OpenRouter(server.inference_key, base_url=server.base_url) as client,
        ):
            echoed = client.call_model(
                model="emulator/echo",
                input='{"city": "Lima", "temperature": 19}',
                output=Weather,
            )
            assert await echoed.get_output() == Weather(city="Lima", temperature=19.0)
            made_up = client.call_model(model="emulator/echo", input="hello", output=SCHEMA)
            value = await made_up.get_output()
            assert set(value) == {"city", "temperature"}
            streamed = client.call_model(model="emulator/reasoning", input="hi", output=Weather)
            partials = [v async for v in streamed.get_output_stream()]
            assert partials[-1] == msgspec.to_builtins(await streamed.get_output())


async def test_the_emulator_honours_chat_response_format() -> None:
    fake = FakeOpenRouter()
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}}}
    body = msgspec.json.encode(
        {
            "model": "emulator/echo",
            "messages": [{"role": "user", "content": "hello"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": schema},
            },
        }
    )
    headers = {"authorization": f"Bearer {fake.inference_key}", "content-type": "application/json"}
    with trio.fail_after(BOUND):
        response = await fake.handle("POST", "/api/v1/chat/completions", headers, body)
    assert response.status == 200
    assert isinstance(response.body, bytes)
    content = msgspec.json.decode(response.body)["choices"][0]["message"]["content"]
    assert msgspec.json.decode(content) == {"n": 3}
