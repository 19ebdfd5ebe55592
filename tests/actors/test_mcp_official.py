"""Interoperability: our MCP client against a server built with the official ``mcp``
Python SDK (``tests/official_mcp_server.py``, a real process over stdio)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio

from actors._mcp import MCPServer
from runtime._base.errors import ToolError
from runtime._client.client import OpenRouter
from runtime._protocol.events import ToolPreliminaryResult
from runtime.testing import FakeOpenRouter, text_turn, tool_call_turn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime._mcp.protocol import MCPProgress

BOUND = 30.0
OFFICIAL = [sys.executable, str(Path(__file__).resolve().parent.parent / "official_mcp_server.py")]


def _official() -> MCPServer:
    return MCPServer.stdio(OFFICIAL, stderr=subprocess.DEVNULL)


async def test_handshake_listing_calls_progress_and_errors() -> None:
    progress: list[MCPProgress] = []
    with trio.fail_after(BOUND):
        async with _official() as server:
            assert server.server_info is not None
            assert server.server_info.server_info is not None
            assert server.server_info.server_info.name == "official-test-server"
            infos = {i.name: i for i in await server.list_tool_infos()}
            assert set(infos) == {"add", "count", "fail"}
            assert infos["add"].input_schema["required"] == ["a", "b"]
            assert await server.call_tool("add", {"a": 2, "b": 3}) == {"result": 5}
            value = await server.call_tool("count", {"n": 2}, on_progress=progress.append)
            with pytest.raises(ToolError, match="fail"):
                await server.call_tool("fail", {"message": "boom"})
    assert value == {"result": "counted to 2"}
    assert [(p.progress, p.total, p.message) for p in progress] == [
        (1, 2, "step 1"),
        (2, 2, "step 2"),
    ]


@pytest.fixture
def fake() -> FakeOpenRouter:
    return FakeOpenRouter()


@pytest.fixture
async def client(fake: FakeOpenRouter) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as c:
        yield c


async def test_official_server_tools_in_a_run(fake: FakeOpenRouter, client: OpenRouter) -> None:
    fake.enqueue(
        tool_call_turn(
            ("count", {"n": 3}, "c1"),
            ("add", {"a": 1, "b": "2"}, "c2"),
            ("fail", {"message": "x"}, "c3"),
        ),
        text_turn("done"),
    )
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="x", tools=[_official()])
        events = [e async for e in result.get_tool_stream() if isinstance(e, ToolPreliminaryResult)]
        assert await result.get_text() == "done"
    assert [e.result.progress for e in events] == [1, 2, 3]
    outputs: dict[str, Any] = {
        i["call_id"]: msgspec.json.decode(i["output"])
        for i in fake.bodies()[1]["input"]
        if i.get("type") == "function_call_output"
    }
    assert outputs["c1"] == {"result": "counted to 3"}
    # Our validator stops a call the server's schema refuses before it is sent.
    assert "Expected `integer`, got `string` - at `$.b`" in outputs["c2"]["error"]
    assert "fail" in outputs["c3"]["error"]
