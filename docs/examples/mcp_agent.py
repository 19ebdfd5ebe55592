"""An agent whose tools come from an MCP server, with a typed final answer.

The MCP server here is ``weather_mcp_server.py`` next to this file, started as
a subprocess and spoken to over stdio. Its tool is a JSON-Schema tool: the
model gets the server's schema as it is, and arguments are checked against it
before the call is forwarded. The server's progress notifications arrive as
preliminary results while the call runs. The answer is structured: the run
asks for JSON matching ``Summary`` and hands back a ``Summary`` instance.

Run it::

    python docs/examples/mcp_agent.py                  # the local emulator
    OPENROUTER_API_KEY=sk-or-... python docs/examples/mcp_agent.py

Without ``OPENROUTER_API_KEY`` it uses the local OpenRouter emulator and its
``emulator/tool-caller`` model, which calls every tool once with arguments
made from the tool's schema, then answers JSON made from the output schema.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import trio

from runtime import MCPServer, OpenRouter, ToolPreliminaryResult, ToolResult
from runtime.emulator import open_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

SERVER = Path(__file__).resolve().parent / "weather_mcp_server.py"
EMULATOR_MODEL = "emulator/tool-caller"
DEFAULT_MODEL = "openai/gpt-4o-mini"


class Summary(msgspec.Struct):
    """The answer we want back: typed, checked, retried if the model gets it wrong."""

    city: str
    advice: str


async def ask(client: OpenRouter, model: str, weather: MCPServer, question: str) -> Summary:
    """One run with the MCP server's tools; prints tool progress as it happens."""
    tools = await weather.list_tools()
    print("tools:", ", ".join(t.name for t in tools))
    result = client.call_model(model=model, input=question, tools=tools, output=Summary)
    async for event in result.get_full_responses_stream():
        if isinstance(event, ToolPreliminaryResult):
            print(f"  progress: {event.result.message}")
        elif isinstance(event, ToolResult):
            print(f"  result: {msgspec.json.encode(event.result).decode()}")
    summary: Summary = await result.get_output()
    return summary


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
    parser = argparse.ArgumentParser(description="An agent with tools from an MCP server.")
    parser.add_argument("--model", default=None)
    parser.add_argument("--question", default="Should I take an umbrella in Paris?")
    args = parser.parse_args(argv)
    async with (
        MCPServer.stdio([sys.executable, str(SERVER)]) as weather,
        open_client(args.model) as (client, model),
    ):
        summary = await ask(client, model, weather, args.question)
    print(f"answer: {summary.city}: {summary.advice}")


if __name__ == "__main__":
    trio.run(main)
