"""The MCP connection actor against a real MCP server process (``tests/mcp_server.py``),
over stdio and over streamable HTTP: handshake, paging, calls, progress, errors,
concurrent callers, cancellation reaching the server, a dying server."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
import trio

from actors._mcp import MCPServer
from runtime._base.errors import ConfigurationError, MCPError, ToolError
from runtime._mcp.protocol import PROTOCOL_VERSION, MCPProgress

BOUND = 30.0
KINDS = ["stdio", "http"]
OpenMCP = Callable[..., contextlib.AbstractAsyncContextManager[MCPServer]]


@pytest.mark.parametrize("kind", KINDS)
async def test_handshake_and_paged_tool_listing(kind: str, open_mcp: OpenMCP) -> None:
    with trio.fail_after(BOUND):
        async with open_mcp(kind) as server:
            assert server.is_open
            info = server.server_info
            assert info is not None
            assert info.protocol_version == PROTOCOL_VERSION
            assert info.server_info is not None
            assert info.server_info.name == "test-mcp-server"
            infos = await server.list_tool_infos()  # 8 tools, 2 per page
    assert [t.name for t in infos] == [
        "add",
        "echo",
        "count",
        "fail",
        "wait_forever",
        "cancelled_requests",
        "pid",
        "lookup",
    ]
    assert infos[0].input_schema["required"] == ["a", "b"]
    assert infos[0].output_schema == {
        "type": "object",
        "properties": {"sum": {"type": "integer"}},
        "required": ["sum"],
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_calls_structured_text_and_is_error(kind: str, open_mcp: OpenMCP) -> None:
    with trio.fail_after(BOUND):
        async with open_mcp(kind) as server:
            assert await server.call_tool("add", {"a": 2, "b": 3}) == {"sum": 5}
            assert await server.call_tool("echo", {"text": "hi"}) == "hi"
            with pytest.raises(ToolError, match=r"^it broke$"):
                await server.call_tool("fail", {"message": "it broke"})
            with pytest.raises(MCPError, match="Unknown tool: nope") as info:
                await server.call_tool("nope", {})
            assert info.value.code == -32602
            with pytest.raises(MCPError, match="Method not found") as info:
                await server.request("resources/list")
            assert info.value.code == -32601


@pytest.mark.parametrize("kind", KINDS)
async def test_progress_notifications_arrive_before_the_result(
    kind: str, open_mcp: OpenMCP
) -> None:
    seen: list[MCPProgress] = []
    with trio.fail_after(BOUND):
        async with open_mcp(kind) as server:
            value = await server.call_tool("count", {"n": 3}, on_progress=seen.append)
    assert value == "counted to 3"
    assert seen == [
        MCPProgress(progress=1, total=3, message="step 1"),
        MCPProgress(progress=2, total=3, message="step 2"),
        MCPProgress(progress=3, total=3, message="step 3"),
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_many_tasks_share_one_connection(kind: str, open_mcp: OpenMCP) -> None:
    results: dict[int, Any] = {}
    progress: dict[int, list[float]] = {}
    with trio.fail_after(BOUND):
        async with open_mcp(kind) as server:

            async def one(i: int) -> None:
                if i % 3 == 0:
                    progress[i] = []
                    results[i] = await server.call_tool(
                        "count",
                        {"n": 1 + i % 4},
                        on_progress=lambda p: progress[i].append(p.progress),
                    )
                elif i % 3 == 1:
                    results[i] = await server.call_tool("add", {"a": i, "b": 1000})
                else:
                    results[i] = await server.call_tool("echo", {"text": f"t{i}"})

            async with trio.open_nursery() as nursery:
                for i in range(30):
                    nursery.start_soon(one, i)
    for i in range(30):
        if i % 3 == 0:
            n = 1 + i % 4
            assert results[i] == f"counted to {n}"
            assert progress[i] == [float(k) for k in range(1, n + 1)]
        elif i % 3 == 1:
            assert results[i] == {"sum": i + 1000}
        else:
            assert results[i] == f"t{i}"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_cancelled_caller_cancels_the_request_on_the_server(
    kind: str, open_mcp: OpenMCP
) -> None:
    with trio.fail_after(BOUND):
        async with open_mcp(kind) as server:
            started = trio.Event()
            with trio.CancelScope() as scope:

                def on_progress(p: MCPProgress) -> None:
                    assert p.message == "started"
                    started.set()
                    scope.cancel()

                await server.call_tool("wait_forever", {}, on_progress=on_progress)
            assert scope.cancelled_caught
            assert started.is_set()
            # The connection still works, and the server was told which request to stop.
            cancelled = await server.call_tool("cancelled_requests", {})
            assert len(cancelled["ids"]) == 1
            assert isinstance(cancelled["ids"][0], int)
            assert await server.call_tool("echo", {"text": "still here"}) == "still here"


async def test_a_dying_server_fails_open_and_later_requests(mcp_command: list[str]) -> None:
    with trio.fail_after(BOUND):
        async with MCPServer.stdio(mcp_command) as server:
            started = trio.Event()
            failure: list[BaseException] = []

            async def wait() -> None:
                try:
                    await server.call_tool("wait_forever", {}, on_progress=lambda p: started.set())
                except MCPError as exc:
                    failure.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(wait)
                await started.wait()
                process = server._transport.process  # type: ignore[union-attr]
                assert process is not None
                process.kill()
            assert len(failure) == 1
            assert "closed its stdout" in str(failure[0])
            with pytest.raises(MCPError, match="closed its stdout"):
                await server.call_tool("echo", {"text": "x"})


async def test_a_program_that_is_not_there_fails_to_open() -> None:
    with trio.fail_after(BOUND):
        with pytest.raises(MCPError, match="cannot start MCP server"):
            async with MCPServer.stdio(["/nonexistent/mcp-server-binary"]):
                pass


async def test_a_server_that_is_not_mcp_fails_the_handshake(tmp_path: Any) -> None:
    script = tmp_path / "not_mcp.py"
    script.write_text("import sys\nsys.stdin.readline()\nprint('hello, I am not MCP')\n")
    with trio.fail_after(BOUND):
        with pytest.raises(MCPError, match="not JSON"):
            async with MCPServer.stdio([__import__("sys").executable, str(script)]):
                pass


async def test_an_unsupported_protocol_version_fails_the_handshake(tmp_path: Any) -> None:
    script = tmp_path / "future.py"
    answer = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"protocolVersion": "2099-01-01", "capabilities": {}},
    }
    script.write_text(
        f"import sys\nsys.stdin.readline()\nprint({json.dumps(json.dumps(answer))}, flush=True)\n"
        "sys.stdin.readline()\n"
    )
    with trio.fail_after(BOUND):
        with pytest.raises(MCPError, match="2099-01-01"):
            async with MCPServer.stdio([__import__("sys").executable, str(script)]):
                pass


async def test_using_a_connection_that_is_not_open_is_a_configuration_error(
    mcp_command: list[str],
) -> None:
    server = MCPServer.stdio(mcp_command)
    with pytest.raises(ConfigurationError, match="is not open"):
        await server.call_tool("echo", {"text": "x"})


def test_bad_arguments_are_refused_up_front() -> None:
    with pytest.raises(ConfigurationError, match="non-empty list"):
        MCPServer.stdio("python server.py")
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        MCPServer.http("ftp://example.com/mcp")
    with pytest.raises(ConfigurationError, match="close_timeout"):
        MCPServer.http("http://127.0.0.1:1/mcp", close_timeout=-1)


async def test_http_headers_are_sent_and_never_shown(mcp_http_url: Any) -> None:
    with trio.fail_after(BOUND):
        async with mcp_http_url() as url:
            server = MCPServer.http(url, headers={"authorization": "Bearer sk-secret-123"})
            async with server:
                assert "sk-secret" not in repr(server)
                assert await server.call_tool("echo", {"text": "ok"}) == "ok"
