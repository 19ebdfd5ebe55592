"""A third-party client, unchanged, against the emulator: openai-python (sync, in a thread).

The async openai client runs on asyncio, so the sync client runs in a worker
thread (``trio.to_thread.run_sync``); its own ``timeout`` bounds the thread
(a thread cannot be cancelled), ``fail_after`` bounds the test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import trio

if TYPE_CHECKING:
    from runtime.emulator import EmulatorServer

BOUND = 20.0
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": False,
    }
]


def client_for(server: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url, api_key=server.inference_key, timeout=5.0, max_retries=0
    )


async def test_responses_stream_parses_every_event(server: EmulatorServer, openapi: Any) -> None:
    def run() -> tuple[list[str], str, Any]:
        with client_for(server) as client:
            stream = client.responses.create(
                model="emulator/reasoning", input="hello from openai", stream=True
            )
            kinds: list[str] = []
            text, final = "", None
            for event in stream:
                kinds.append(event.type)
                if event.type == "response.output_text.delta":
                    text += event.delta
                elif event.type == "response.completed":
                    final = event.response
            return kinds, text, final

    with trio.fail_after(BOUND):
        kinds, text, final = await trio.to_thread.run_sync(run)
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert "response.reasoning_text.delta" in kinds
    assert text == "hello from openai"
    assert final.output_text == "hello from openai"
    assert final.usage.output_tokens_details.reasoning_tokens > 0
    sent = server.emulator.requests[-1].json
    openapi.validate("ResponsesRequest", sent)
    assert sent["stream"] is True


async def test_responses_stream_with_function_calls(server: EmulatorServer, openapi: Any) -> None:
    def run() -> tuple[list[Any], Any]:
        with client_for(server) as client:
            calls = []
            final = None
            for event in client.responses.create(
                model="emulator/tool-caller", input="weather?", tools=TOOLS, stream=True
            ):
                if event.type == "response.function_call_arguments.done":
                    calls.append(event)
                elif event.type == "response.completed":
                    final = event.response
            return calls, final

    with trio.fail_after(BOUND):
        calls, final = await trio.to_thread.run_sync(run)
    assert [(call.name, call.arguments) for call in calls] == [("get_weather", '{"city":"city"}')]
    assert final.output[0].type == "function_call"
    assert final.output[0].call_id.startswith("call_")
    openapi.validate("ResponsesRequest", server.emulator.requests[-1].json)


async def test_responses_json(server: EmulatorServer) -> None:
    def run() -> Any:
        with client_for(server) as client:
            return client.responses.create(model="emulator/echo", input="plain", instructions="x")

    with trio.fail_after(BOUND):
        response = await trio.to_thread.run_sync(run)
    assert response.output_text == "plain"
    assert response.status == "completed"


async def test_chat_completions_json_and_stream(server: EmulatorServer, openapi: Any) -> None:
    def run() -> tuple[str | None, str, Any]:
        with client_for(server) as client:
            messages: list[Any] = [{"role": "user", "content": "hi chat"}]
            result = client.chat.completions.create(model="emulator/echo", messages=messages)
            text, usage = "", None
            for chunk in client.chat.completions.create(
                model="emulator/echo", messages=messages, stream=True
            ):
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                if chunk.usage is not None:
                    usage = chunk.usage
            return result.choices[0].message.content, text, usage

    with trio.fail_after(BOUND):
        content, streamed, usage = await trio.to_thread.run_sync(run)
    assert content == "hi chat"
    assert streamed == "hi chat"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    openapi.validate("ChatRequest", server.emulator.requests[-1].json)


async def test_errors_reach_the_client_as_its_typed_errors(server: EmulatorServer) -> None:
    def run() -> tuple[type[BaseException], int, str | None]:
        with client_for(server) as client:
            try:
                client.responses.create(model="emulator/echo:fault=429,retry-after=7", input="x")
            except openai.RateLimitError as error:
                return type(error), error.status_code, error.response.headers.get("retry-after")
            raise AssertionError("no error raised")

    with trio.fail_after(BOUND):
        kind, status, retry_after = await trio.to_thread.run_sync(run)
    assert (kind, status, retry_after) == (openai.RateLimitError, 429, "7")
