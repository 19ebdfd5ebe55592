"""``POST /chat/completions`` and legacy ``POST /completions`` over loopback HTTP."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from runtime.emulator import EmulatorServer, Fault, ToolCall, Turn, TurnError

if TYPE_CHECKING:
    import httpx

BOUND = 10.0


async def test_chat_json_answer_matches_chat_result(
    client: httpx.AsyncClient, openapi: Any
) -> None:
    body = {"model": "emulator/echo", "messages": [{"role": "user", "content": "hello chat"}]}
    openapi.validate("ChatRequest", body)
    with trio.fail_after(BOUND):
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200
    result = response.json()
    openapi.validate("ChatResult", result)
    choice = result["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello chat"}
    assert choice["finish_reason"] == "stop"
    assert result["usage"]["total_tokens"] == (
        result["usage"]["prompt_tokens"] + result["usage"]["completion_tokens"]
    )
    assert response.headers["x-generation-id"] == result["id"]


async def test_chat_stream_sends_usage_once_last_then_done(
    client: httpx.AsyncClient, openapi: Any, sse: Any
) -> None:
    body = {
        "model": "emulator/reasoning",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "one two"}],
        "stream": True,
    }
    openapi.validate("ChatRequest", body)
    with trio.fail_after(BOUND):
        response = await client.post("/chat/completions", json=body)
    assert response.headers["content-type"] == "text/event-stream"
    assert response.content.startswith(b": OPENROUTER PROCESSING\n\n")
    parsed = sse(response.content)
    assert parsed.done
    chunks = parsed.json()
    for chunk in chunks:
        openapi.validate("ChatStreamChunk", chunk)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    with_usage = [index for index, chunk in enumerate(chunks) if "usage" in chunk]
    assert with_usage == [len(chunks) - 1]
    assert chunks[-1]["choices"] == []
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning", "") for c in chunks[:-1])
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert reasoning == "The user wrote 2 words. I will repeat them."
    assert content == "one two"


async def test_chat_stream_tool_calls_arrive_as_fragments(
    server: EmulatorServer, client: httpx.AsyncClient, openapi: Any, sse: Any
) -> None:
    server.emulator.add_script(
        "test/chat-tools",
        [
            Turn(
                tool_calls=(
                    ToolCall(name="lookup", arguments=('{"q":', '"x"}')),
                    ToolCall(name="now"),
                )
            )
        ],
    )
    body = {
        "model": "test/chat-tools",
        "messages": [{"role": "user", "content": "go"}],
        "stream": True,
    }
    with trio.fail_after(BOUND):
        response = await client.post("/chat/completions", json=body)
    chunks = sse(response.content).json()
    for chunk in chunks:
        openapi.validate("ChatStreamChunk", chunk)
    fragments = [
        fragment
        for chunk in chunks
        for choice in chunk["choices"]
        for fragment in choice["delta"].get("tool_calls", [])
    ]
    first = [fragment for fragment in fragments if "id" in fragment]
    assert [(f["index"], f["function"]["name"]) for f in first] == [(0, "lookup"), (1, "now")]
    arguments = {0: "", 1: ""}
    for fragment in fragments:
        arguments[fragment["index"]] += fragment["function"].get("arguments", "")
    assert arguments == {0: '{"q":"x"}', 1: "{}"}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_chat_tool_caller_round_trip(client: httpx.AsyncClient, openapi: Any) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "add",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}, "b": {"type": "number", "minimum": 5}},
                    "required": ["a", "b"],
                },
            },
        }
    ]
    first = {
        "model": "emulator/tool-caller",
        "messages": [{"role": "user", "content": "add"}],
        "tools": tools,
    }
    openapi.validate("ChatRequest", first)
    with trio.fail_after(BOUND):
        result = (await client.post("/chat/completions", json=first)).json()
    openapi.validate("ChatResult", result)
    message = result["choices"][0]["message"]
    assert result["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    call = message["tool_calls"][0]
    assert call["function"] == {"name": "add", "arguments": '{"a":1,"b":5.0}'}
    follow_up = {
        **first,
        "messages": [
            *first["messages"],
            message,
            {"role": "tool", "tool_call_id": call["id"], "content": "6"},
        ],
    }
    openapi.validate("ChatRequest", follow_up)
    with trio.fail_after(BOUND):
        result = (await client.post("/chat/completions", json=follow_up)).json()
    assert result["choices"][0]["message"]["content"] == "add returned 6."


async def test_chat_midstream_error_chunk(
    server: EmulatorServer, client: httpx.AsyncClient, openapi: Any, sse: Any
) -> None:
    """§4.5: a failure after the stream started: a chunk with ``error``, finish_reason error."""
    server.emulator.add_script(
        "test/chat-fail",
        [
            Turn(
                text=("partial",),
                status="failed",
                error=TurnError(
                    message="Rate limit exceeded", error_type="rate_limit_exceeded", status_code=429
                ),
            )
        ],
    )
    body = {
        "model": "test/chat-fail",
        "messages": [{"role": "user", "content": "go"}],
        "stream": True,
    }
    with trio.fail_after(BOUND):
        response = await client.post("/chat/completions", json=body)
    parsed = sse(response.content)
    assert parsed.done
    chunks = parsed.json()
    for chunk in chunks:
        openapi.validate("ChatStreamChunk", chunk)
    last = chunks[-1]
    assert last["error"] == {
        "code": 429,
        "message": "Rate limit exceeded",
        "metadata": {"error_type": "rate_limit_exceeded"},
    }
    assert last["choices"][0]["finish_reason"] == "error"
    assert not any("usage" in chunk for chunk in chunks)


async def test_chat_json_failed_turn_is_a_200_with_error_choice(
    server: EmulatorServer, client: httpx.AsyncClient, openapi: Any
) -> None:
    server.emulator.add_script(
        "test/chat-json-fail", [Turn(text=("so far",), fault=Fault(fail_after=1))]
    )
    body = {"model": "test/chat-json-fail", "messages": [{"role": "user", "content": "go"}]}
    with trio.fail_after(BOUND):
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == 200
    result = response.json()
    openapi.validate("ChatResult", result)
    assert result["choices"][0]["finish_reason"] == "error"
    assert result["choices"][0]["error"]["metadata"] == {"error_type": "server"}


async def test_chat_needs_messages(client: httpx.AsyncClient, openapi: Any) -> None:
    with trio.fail_after(BOUND):
        missing = await client.post("/chat/completions", json={"model": "emulator/echo"})
        empty = await client.post(
            "/chat/completions", json={"model": "emulator/echo", "messages": []}
        )
    for response in (missing, empty):
        assert response.status_code == 400
        openapi.validate("BadRequestResponse", response.json())
    assert "messages" in missing.json()["error"]["message"]


async def test_legacy_completion_json(client: httpx.AsyncClient, openapi: Any) -> None:
    body = {"model": "emulator/echo", "prompt": "complete me"}
    openapi.validate("LegacyCompletions_CompletionCreateParams", body)
    with trio.fail_after(BOUND):
        response = await client.post("/completions", json=body)
    result = response.json()
    openapi.validate("LegacyCompletions_CompletionResponse", result)
    assert result["choices"][0]["text"] == "complete me"
    assert result["choices"][0]["finish_reason"] == "stop"


async def test_legacy_completion_stream(client: httpx.AsyncClient, sse: Any) -> None:
    body = {
        "model": "emulator/echo",
        "prompt": ["line one", "line two"],
        "stream": True,
        "max_tokens": 100,
    }
    with trio.fail_after(BOUND):
        response = await client.post("/completions", json=body)
    parsed = sse(response.content)
    assert parsed.done
    chunks = parsed.json()
    assert "".join(chunk["choices"][0]["text"] for chunk in chunks) == "line one\nline two"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert all(chunk["object"] == "text_completion" for chunk in chunks)


async def test_legacy_errors_use_the_legacy_shape(client: httpx.AsyncClient, openapi: Any) -> None:
    with trio.fail_after(BOUND):
        bad = await client.post("/completions", json={"model": "emulator/echo"})
        limited = await client.post(
            "/completions", json={"model": "emulator/echo:fault=429", "prompt": "x"}
        )
    assert bad.status_code == 400
    openapi.validate("LegacyCompletions_ChatError", bad.json())
    assert limited.status_code == 429
    openapi.validate("LegacyCompletions_ChatError", limited.json())
    assert limited.headers["retry-after"] == "1"
