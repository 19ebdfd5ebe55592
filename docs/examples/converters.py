"""Bring chat or Claude conversations to ``call_model``, and take the answer back.

``call_model`` speaks the Responses API and never guesses a format: a chat-
or Claude-style message list is converted explicitly, and the response is
converted back into the format your application stores.

* Chat (OpenAI style): ``from_chat_messages`` turns the history, including
  assistant tool calls and tool results, into Responses input items;
  ``to_chat_message`` turns the response into the next assistant message.
* Claude (Anthropic style): ``is_claude_style_messages`` recognises the
  format, ``from_claude_messages`` converts it, ``to_claude_message`` converts
  the answer, and ``has_unsupported_content`` /
  ``get_unsupported_content_summary`` tell you what a Claude message cannot
  express.

The tools named in the histories are declared as *manual* tools
(``execute=False``): the model may see them, and if it calls one the run pauses
instead of running anything.

Run it::

    python docs/examples/converters.py                      # the local emulator
    OPENROUTER_API_KEY=sk-or-... python docs/examples/converters.py

Without ``OPENROUTER_API_KEY`` it uses the local OpenRouter emulator and its
``emulator/echo`` model, which answers with the last user message.
"""

from __future__ import annotations

import argparse
import json
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from runtime import (
    ConfigurationError,
    OpenRouter,
    from_chat_messages,
    from_claude_messages,
    get_unsupported_content_summary,
    has_unsupported_content,
    is_claude_style_messages,
    to_chat_message,
    to_claude_message,
    tool,
)
from runtime.emulator import open_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

EMULATOR_MODEL = "emulator/echo"
DEFAULT_MODEL = "openai/gpt-4o-mini"


class WeatherArgs(msgspec.Struct):
    city: str


class CalculatorArgs(msgspec.Struct):
    expression: str


get_weather = tool(
    name="get_weather",
    description="Current weather for a city.",
    input_schema=WeatherArgs,
    execute=False,
)
calculator = tool(
    name="calculator",
    description="Evaluate an arithmetic expression.",
    input_schema=CalculatorArgs,
    execute=False,
)

CHAT_HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21, "sky": "clear"}'},
    {"role": "user", "content": "Say it in one sentence."},
]

CLAUDE_HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "What is 6 times 7?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me compute that."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "calculator",
                "input": {"expression": "6 * 7"},
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
            {"type": "text", "text": "Answer with the number only."},
        ],
    },
]


def show(label: str, value: object) -> None:
    print(f"{label}:\n{json.dumps(value, indent=2)}")


async def chat_round_trip(client: OpenRouter, model: str) -> dict[str, Any]:
    print("== chat messages")
    items = from_chat_messages(CHAT_HISTORY)
    show("Responses input items", items)
    result = client.call_model(model=model, input=items, tools=[get_weather])
    reply = to_chat_message(await result.get_response())
    show("assistant chat message", reply)
    return reply


async def claude_round_trip(client: OpenRouter, model: str) -> dict[str, Any]:
    print("\n== Claude messages")
    print(f"Claude-style: {is_claude_style_messages(CLAUDE_HISTORY)}")
    print(f"chat history Claude-style: {is_claude_style_messages(CHAT_HISTORY)}")
    items = from_claude_messages(CLAUDE_HISTORY)
    show("Responses input items", items)
    result = client.call_model(model=model, input=items, tools=[calculator])
    message = to_claude_message(await result.get_response())
    show("Claude assistant message", message)
    print(f"lost anything: {has_unsupported_content(message)}")
    print(f"unsupported content by type: {get_unsupported_content_summary(message)}")
    return message


def refuse_unconverted(client: OpenRouter, model: str) -> None:
    print("\n== call_model does not guess formats")
    chat_parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    try:
        client.call_model(model=model, input=chat_parts)
    except ConfigurationError as exc:  # raised at once, before any request
        print(f"ConfigurationError: {exc}")


@asynccontextmanager
async def open_client(model: str | None) -> AsyncIterator[tuple[OpenRouter, str]]:
    """OpenRouter when ``OPENROUTER_API_KEY`` is set, else the embedded emulator."""
    if os.environ.get("OPENROUTER_API_KEY"):
        async with OpenRouter() as client:
            yield client, model or DEFAULT_MODEL
        return
    async with (
        open_emulator() as server,
        OpenRouter(server.inference_key, base_url=server.base_url) as client,
    ):
        yield client, model or EMULATOR_MODEL


async def main(argv: Sequence[str] | None = None) -> None:
    """Convert both histories, call the model with each, convert the answers back."""
    parser = argparse.ArgumentParser(description="Chat and Claude messages in and out.")
    parser.add_argument(
        "--model", default=None, help="default: an OpenRouter model or the emulator's"
    )
    args = parser.parse_args(argv)
    async with open_client(args.model) as (client, model):
        await chat_round_trip(client, model)
        await claude_round_trip(client, model)
        refuse_unconverted(client, model)


if __name__ == "__main__":
    trio.run(main)
