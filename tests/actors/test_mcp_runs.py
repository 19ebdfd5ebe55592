"""MCP tools inside runs, against the real test MCP server (stdio and HTTP): progress as
preliminary results, errors as tool errors, arguments checked before the server sees
them, run cancellation reaching the server, one connection shared by many runs."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
import trio

from actors._mcp import MCPServer
from runtime._client.client import OpenRouter
from runtime._mcp.protocol import MCPProgress
from runtime._protocol.events import ToolPreliminaryResult
from runtime.testing import FakeOpenRouter, text_turn, tool_call_turn

BOUND = 30.0
KINDS = ["stdio", "http"]
OpenMCP = Callable[..., contextlib.AbstractAsyncContextManager[MCPServer]]


@pytest.fixture
def fake() -> FakeOpenRouter:
    return FakeOpenRouter()


@pytest.fixture
async def client(fake: FakeOpenRouter) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as c:
        yield c


def _outputs(body: dict[str, Any]) -> dict[str, Any]:
    return {
        i["call_id"]: msgspec.json.decode(i["output"])
        for i in body["input"]
        if i.get("type") == "function_call_output"
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_mcp_tools_in_a_run(
    kind: str, open_mcp: OpenMCP, fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(
        tool_call_turn(
            ("srv_count", {"n": 2}, "c1"),
            ("srv_fail", {"message": "the disk is full"}, "c2"),
            ("srv_add", {"a": "x", "b": 1}, "c3"),
            ("srv_lookup", {"place": {"city": "Oslo", "country": "NO"}}, "c4"),
            ("srv_add", {"a": 2, "b": 3}, "c5"),
        ),
        text_turn("done"),
    )
    with trio.fail_after(BOUND):
        async with open_mcp(kind, tool_prefix="srv_") as server:
            tools = await server.list_tools()
            renamed = {t.name[4:]: t for t in tools}
            result = client.call_model(
                model="m",
                input="x",
                tools=[renamed[n] for n in ("count", "fail", "add", "lookup")],
            )
            progress = [
                e async for e in result.get_tool_stream() if isinstance(e, ToolPreliminaryResult)
            ]
            assert await result.get_text() == "done"
    first, second = fake.bodies()
    assert [t["name"] for t in first["tools"]] == ["srv_count", "srv_fail", "srv_add", "srv_lookup"]
    assert first["tools"][2]["parameters"]["required"] == ["a", "b"]
    assert [(p.tool_call_id, p.result) for p in progress] == [
        ("c1", MCPProgress(progress=1, total=2, message="step 1")),
        ("c1", MCPProgress(progress=2, total=2, message="step 2")),
    ]
    outputs = _outputs(second)
    assert outputs["c1"] == "counted to 2"
    assert outputs["c2"] == {"error": "the disk is full"}
    assert "Expected `integer`, got `string` - at `$.a`" in outputs["c3"]["error"]
    assert outputs["c4"] == "Oslo is in NO"
    assert outputs["c5"] == {"sum": 5}


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelling_a_run_cancels_its_mcp_request(
    kind: str, open_mcp: OpenMCP, fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("wait_forever", {}, "c1")), text_turn("never"))
    with trio.fail_after(BOUND):
        async with open_mcp(kind) as server:
            tools = await server.list_tools()
            result = client.call_model(model="m", input="x", tools=tools)
            async for event in result.get_tool_stream():
                if isinstance(event, ToolPreliminaryResult):
                    assert event.result.message == "started"
                    result.cancel()
            await result.wait_done()
            assert result.snapshot().status == "cancelled"
            cancelled = await server.call_tool("cancelled_requests", {})
            assert len(cancelled["ids"]) == 1
    assert fake.pending_turns() == 1  # no follow-up request was made


@pytest.mark.parametrize("kind", KINDS)
async def test_one_connection_serves_many_concurrent_runs(
    kind: str, open_mcp: OpenMCP, client: OpenRouter
) -> None:
    texts: dict[int, str] = {}
    with trio.fail_after(BOUND):
        async with open_mcp(kind) as server:
            add = next(t for t in await server.list_tools() if t.name == "add")

            async def run(i: int) -> None:
                result = client.call_model(
                    model="emulator/tool-caller", input=f"question {i}", tools=[add]
                )
                texts[i] = await result.get_text()

            async with trio.open_nursery() as nursery:
                for i in range(12):
                    nursery.start_soon(run, i)
    # The tool-caller calls add with arguments made from the schema (1 and 1).
    assert texts == dict.fromkeys(range(12), 'add returned {"sum":2}.')


async def test_an_unopened_server_in_tools_gets_a_connection_of_the_run_s_own(
    mcp_command: list[str], fake: FakeOpenRouter, client: OpenRouter
) -> None:
    server = MCPServer.stdio(mcp_command)
    fake.enqueue(
        tool_call_turn(("pid", {}, "c1"), ("add", {"a": 1, "b": 2}, "c2")), text_turn("ok")
    )
    with trio.fail_after(BOUND):
        result = client.call_model(model="m", input="x", tools=[server])
        assert await result.get_text() == "ok"
    outputs = _outputs(fake.bodies()[1])
    assert outputs["c2"] == {"sum": 3}
    assert [t["name"] for t in fake.bodies()[0]["tools"]][:2] == ["add", "echo"]
    # The run's own server process ended with the run (it was waited for, so the
    # pid is gone), and the object itself was never opened.
    with pytest.raises(ProcessLookupError):
        os.kill(int(outputs["c1"]), 0)
    assert not server.is_open


async def test_an_open_server_in_tools_is_shared(
    open_mcp: OpenMCP, fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("pid", {}, "c1")), text_turn("one"))
    fake.enqueue(tool_call_turn(("pid", {}, "c2")), text_turn("two"))
    with trio.fail_after(BOUND):
        async with open_mcp("stdio") as server:
            first = client.call_model(model="m", input="x", tools=[server])
            assert await first.get_text() == "one"
            second = client.call_model(model="m", input="x", tools=[server])
            assert await second.get_text() == "two"
            pid = await server.call_tool("pid", {})
    bodies = fake.bodies()
    assert _outputs(bodies[1])["c1"] == _outputs(bodies[3])["c2"] == pid


async def test_a_server_that_cannot_start_fails_the_run(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    from runtime._base.errors import MCPError

    fake.enqueue(text_turn("never"))
    with trio.fail_after(BOUND):
        result = client.call_model(
            model="m", input="x", tools=[MCPServer.stdio(["/nonexistent/mcp-server"])]
        )
        with pytest.raises(MCPError, match="cannot start MCP server"):
            await result.get_text()
    assert fake.bodies() == []
