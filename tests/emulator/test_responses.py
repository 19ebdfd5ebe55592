"""``POST /api/v1/responses`` over real loopback HTTP.

Every served event is validated against ``StreamEvents`` and every terminal
response against ``OpenResponsesResult``; the request bodies the tests send are
validated against ``ResponsesRequest``. Each test is bounded by ``fail_after``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import trio

from runtime.emulator import EmulatorServer, Script, ToolCall, Turn, TurnUsage, count_tokens

if TYPE_CHECKING:
    import httpx

BOUND = 10.0


async def post_stream(
    client: httpx.AsyncClient, openapi: Any, body: dict[str, Any]
) -> httpx.Response:
    openapi.validate("ResponsesRequest", body)
    response = await client.post("/responses", json={**body, "stream": True})
    await response.aread()
    return response


def events_of(response: httpx.Response, sse: Any, stream_event: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    parsed = sse(response.content)
    assert parsed.done, "the stream must end with data: [DONE]"
    events: list[dict[str, Any]] = parsed.json()
    for event in events:
        stream_event(event)
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    return events


async def test_echo_stream_follows_the_event_order_of_the_wire_notes(
    client: httpx.AsyncClient, openapi: Any, sse: Any, stream_event: Any
) -> None:
    with trio.fail_after(BOUND):
        response = await post_stream(
            client, openapi, {"model": "emulator/echo", "input": "hello there"}
        )
    events = events_of(response, sse, stream_event)
    for event in events:  # once through the whole oneOf, not only the discriminated branch
        openapi.validate("StreamEvents", event)
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [event["delta"] for event in events if event["type"] == "response.output_text.delta"]
    assert deltas == ["hello ", "there"]
    message_id = events[2]["item"]["id"]
    assert all(event["item_id"] == message_id for event in events[3:8])
    assert all(event["output_index"] == 0 for event in events[2:9])
    assert "usage" not in events[0]["response"]
    assert response.headers["x-generation-id"] == events[0]["response"]["id"]


async def test_keepalive_comments_come_before_the_first_event(
    client: httpx.AsyncClient, openapi: Any, sse: Any
) -> None:
    with trio.fail_after(BOUND):
        response = await post_stream(client, openapi, {"model": "emulator/echo", "input": "hi"})
    assert response.content.startswith(b": \n\n: \n\n: \n\ndata: ")
    assert sse(response.content).comments == 3


async def test_completed_event_carries_usage_and_cost(
    client: httpx.AsyncClient, openapi: Any, sse: Any, stream_event: Any
) -> None:
    text = "count these words please"
    with trio.fail_after(BOUND):
        response = await post_stream(client, openapi, {"model": "emulator/echo", "input": text})
    completed = events_of(response, sse, stream_event)[-1]["response"]
    openapi.validate("OpenResponsesResult", completed)
    usage = completed["usage"]
    tokens = count_tokens(text)
    assert usage["input_tokens"] == tokens
    assert usage["output_tokens"] == tokens
    assert usage["total_tokens"] == 2 * tokens
    # emulator/echo costs 1e-6 per prompt token and 2e-6 per completion token
    assert usage["cost"] == round(tokens * 1e-6 + tokens * 2e-6, 12)
    details = usage["cost_details"]
    assert (
        details["upstream_inference_input_cost"] + details["upstream_inference_output_cost"]
        == (usage["cost"])
    )
    assert completed["output_text"] == text


async def test_json_answer_when_stream_is_absent(client: httpx.AsyncClient, openapi: Any) -> None:
    body = {"model": "emulator/echo", "input": "plain json", "instructions": "be brief"}
    openapi.validate("ResponsesRequest", body)
    with trio.fail_after(BOUND):
        response = await client.post("/responses", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    result = response.json()
    openapi.validate("OpenResponsesResult", result)
    assert result["status"] == "completed"
    assert result["output_text"] == "plain json"
    assert result["instructions"] == "be brief"


async def test_tool_caller_calls_every_tool_with_schema_arguments(
    client: httpx.AsyncClient, openapi: Any, sse: Any, stream_event: Any
) -> None:
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7},
                },
                "required": ["city"],
            },
            "strict": None,
        },
        {"type": "function", "name": "get_time", "parameters": None},
    ]
    with trio.fail_after(BOUND):
        response = await post_stream(
            client, openapi, {"model": "emulator/tool-caller", "input": "weather?", "tools": tools}
        )
    events = events_of(response, sse, stream_event)
    done = [event for event in events if event["type"] == "response.function_call_arguments.done"]
    assert [event["name"] for event in done] == ["get_weather", "get_time"]
    assert msgspec.json.decode(done[0]["arguments"]) == {
        "city": "city",
        "unit": "celsius",
        "days": 1,
    }
    assert msgspec.json.decode(done[1]["arguments"]) == {}
    added = [event for event in events if event["type"] == "response.output_item.added"]
    for event, finished in zip(added, done, strict=True):
        assert finished["item_id"] == event["item"]["id"]
        assert event["item"]["id"] != event["item"]["call_id"]
        deltas = [
            e["delta"]
            for e in events
            if e["type"] == "response.function_call_arguments.delta"
            and e["item_id"] == finished["item_id"]
        ]
        assert "".join(deltas) == finished["arguments"]
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == ["function_call", "function_call"]


async def test_tool_caller_summarises_the_tool_results_of_the_follow_up(
    client: httpx.AsyncClient, openapi: Any
) -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    body: dict[str, Any] = {
        "model": "emulator/tool-caller",
        "tools": tools,
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Weather?"}],
            },
            {
                "type": "function_call",
                "call_id": "call_abc",
                "name": "get_weather",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "call_abc", "output": '{"temp_c":21}'},
        ],
    }
    openapi.validate("ResponsesRequest", body)
    with trio.fail_after(BOUND):
        response = await client.post("/responses", json=body)
    result = response.json()
    openapi.validate("OpenResponsesResult", result)
    assert result["output_text"] == 'get_weather returned {"temp_c":21}.'


async def test_reasoning_model_streams_reasoning_text_before_the_answer(
    client: httpx.AsyncClient, openapi: Any, sse: Any, stream_event: Any
) -> None:
    with trio.fail_after(BOUND):
        response = await post_stream(
            client, openapi, {"model": "emulator/reasoning", "input": "two words"}
        )
    events = events_of(response, sse, stream_event)
    kinds = [event["type"] for event in events]
    first_text = kinds.index("response.output_text.delta")
    assert (
        kinds.index("response.reasoning_text.delta")
        < kinds.index("response.reasoning_text.done")
        < first_text
    )
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message"]
    reasoning = final["output"][0]
    assert reasoning["content"][0]["text"] == "The user wrote 2 words. I will repeat them."
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == count_tokens(
        reasoning["content"][0]["text"]
    )
    assert final["output_text"] == "two words"


async def test_scripted_turn_streams_exactly_its_chunks(
    server: EmulatorServer, client: httpx.AsyncClient, openapi: Any, sse: Any, stream_event: Any
) -> None:
    """B-01: argument deltas arrive exactly as scripted, keyed by the item id."""
    server.emulator.add_script(
        "test/script",
        Script(
            turns=(
                Turn(
                    reasoning=("sum", "mary"),
                    reasoning_style="summary",
                    text=("Let me ", "check."),
                    phase="commentary",
                    tool_calls=(
                        ToolCall(
                            name="get_weather",
                            arguments=('{"location":', '"NYC"}'),
                            call_id="call_abc",
                        ),
                    ),
                    usage=TurnUsage(cost=0.3),
                ),
            )
        ),
    )
    with trio.fail_after(BOUND):
        response = await post_stream(client, openapi, {"model": "test/script", "input": "go"})
    events = events_of(response, sse, stream_event)
    kinds = [event["type"] for event in events]
    assert "response.reasoning_summary_part.added" in kinds
    summary = [e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta"]
    assert summary == ["sum", "mary"]
    argument_deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert [e["delta"] for e in argument_deltas] == ['{"location":', '"NYC"}']
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][1]["phase"] == "commentary"
    call = final["output"][2]
    assert call["call_id"] == "call_abc"
    assert {e["item_id"] for e in argument_deltas} == {call["id"]}
    assert final["usage"]["cost"] == 0.3
    assert server.emulator.pending_turns("test/script") == 0


async def test_request_fields_are_echoed_in_the_response(
    client: httpx.AsyncClient, openapi: Any
) -> None:
    body = {
        "model": "emulator/echo",
        "input": "x",
        "temperature": 0.2,
        "max_output_tokens": 50,
        "metadata": {"run": "7"},
        "tool_choice": "none",
    }
    openapi.validate("ResponsesRequest", body)
    with trio.fail_after(BOUND):
        result = (await client.post("/responses", json=body)).json()
    openapi.validate("OpenResponsesResult", result)
    assert result["temperature"] == 0.2
    assert result["max_output_tokens"] == 50
    assert result["metadata"] == {"run": "7"}
    assert result["tool_choice"] == "none"


async def test_max_output_tokens_cuts_a_builtin_answer_to_incomplete(
    client: httpx.AsyncClient, openapi: Any, sse: Any, stream_event: Any
) -> None:
    text = "a fairly long sentence that needs more than two tokens"
    with trio.fail_after(BOUND):
        response = await post_stream(
            client, openapi, {"model": "emulator/echo", "input": text, "max_output_tokens": 2}
        )
    events = events_of(response, sse, stream_event)
    terminal = events[-1]
    assert terminal["type"] == "response.incomplete"
    assert terminal["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert terminal["response"]["output_text"] == text[:8]


async def test_a_function_call_without_its_output_is_a_400(
    client: httpx.AsyncClient, openapi: Any
) -> None:
    """Providers refuse a conversation with an unanswered call; so does the emulator."""
    call = {"type": "function_call", "call_id": "call_1", "name": "t", "arguments": "{}"}
    answer = {"type": "function_call_output", "call_id": "call_1", "output": "1"}
    body = {"model": "emulator/echo", "input": [{"role": "user", "content": "hi"}, call]}
    with trio.fail_after(BOUND):
        refused = await post_stream(client, openapi, body)
        accepted = await post_stream(client, openapi, {**body, "input": [*body["input"], answer]})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "No tool output found for function call call_1."
    assert accepted.status_code == 200
