"""An MCP server built with the official ``mcp`` Python SDK (a test dependency), for
interoperability tests of our client: ``python tests/official_mcp_server.py`` (stdio)."""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("official-test-server")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def count(n: int, ctx: Context) -> str:
    """Count to n, reporting progress."""
    for i in range(1, n + 1):
        await ctx.report_progress(i, n, f"step {i}")
    return f"counted to {n}"


@server.tool()
def fail(message: str) -> str:
    """Always fails."""
    raise ValueError(message)


if __name__ == "__main__":
    server.run("stdio")
