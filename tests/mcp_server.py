"""A small MCP server of our own, for tests: stdio or streamable HTTP, run as a real process.

    python tests/mcp_server.py                 # stdio: JSON-RPC lines on stdin/stdout
    python tests/mcp_server.py --http          # prints "LISTENING <url>" then serves

It speaks protocol revision 2025-06-18 (and accepts the older ones a client
asks for), handles requests concurrently, and honours ``notifications/cancelled``
and ``_meta.progressToken``. It imports nothing from the project: it stands for
somebody else's server.

Tools: ``add`` (structured result), ``echo``, ``count`` (one progress
notification per step), ``fail`` (``isError``), ``wait_forever`` (one progress
notification, then waits until cancelled), ``cancelled_requests`` (the ids of the
requests this server was told to cancel), ``pid``, ``lookup`` (a schema with ``$defs``).
``tools/list`` pages two tools at a time. ``--page-size`` changes that.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

VERSIONS = ("2025-06-18", "2025-03-26", "2024-11-05", "2025-11-25")

TOOLS: list[dict[str, Any]] = [
    {
        "name": "add",
        "description": "Add two integers.",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {"sum": {"type": "integer"}},
            "required": ["sum"],
        },
    },
    {
        "name": "echo",
        "description": "Say the text back.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 1}},
            "required": ["text"],
        },
    },
    {
        "name": "count",
        "description": "Count to n, reporting progress.",
        "inputSchema": {
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 10}},
            "required": ["n"],
        },
    },
    {
        "name": "fail",
        "description": "Always fails with the given message.",
        "inputSchema": {
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
        },
    },
    {
        "name": "wait_forever",
        "description": "Reports that it started, then waits until cancelled.",
        "inputSchema": {"type": "object", "properties": {}},
    },
    {
        "name": "cancelled_requests",
        "description": "The ids of the requests this server was told to cancel.",
        "inputSchema": {"type": "object"},
    },
    {
        "name": "pid",
        "description": "The server's process id.",
        "inputSchema": {"type": "object"},
    },
    {
        "name": "lookup",
        "description": "Look a city up.",
        "inputSchema": {
            "type": "object",
            "properties": {"place": {"$ref": "#/$defs/Place"}},
            "required": ["place"],
            "$defs": {
                "Place": {
                    "type": "object",
                    "properties": {
                        "city": {"type": "string"},
                        "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
                    },
                    "required": ["city", "country"],
                }
            },
        },
    },
]

Send = Callable[[dict[str, Any]], Awaitable[None]]


class RPCError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Server:
    """The protocol, independent of the transport."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self.running: dict[Any, trio.CancelScope] = {}
        self.cancelled: list[Any] = []

    def cancel(self, params: dict[str, Any]) -> None:
        request_id = params.get("requestId")
        self.cancelled.append(request_id)
        scope = self.running.get(request_id)
        if scope is not None:
            scope.cancel()

    async def handle(self, message: dict[str, Any], send: Send) -> dict[str, Any] | None:
        """The response to one request (``None`` when it was cancelled)."""
        request_id = message.get("id")
        scope = self.running.setdefault(request_id, trio.CancelScope())
        try:
            with scope:
                result = await self.dispatch(
                    message.get("method"), message.get("params") or {}, send
                )
                return {"jsonrpc": "2.0", "id": request_id, "result": result}
            return None  # cancelled: no response, as the protocol says
        except RPCError as exc:
            error = {"code": exc.code, "message": exc.message}
            return {"jsonrpc": "2.0", "id": request_id, "error": error}
        finally:
            self.running.pop(request_id, None)

    async def dispatch(self, method: Any, params: dict[str, Any], send: Send) -> dict[str, Any]:
        if method == "initialize":
            asked = params.get("protocolVersion")
            return {
                "protocolVersion": asked if asked in VERSIONS else VERSIONS[0],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "test-mcp-server", "version": "1.0.0"},
            }
        if method == "ping":
            return {}
        if method == "tools/list":
            cursor = params.get("cursor")
            start = int(cursor) if cursor is not None else 0
            page: dict[str, Any] = {"tools": TOOLS[start : start + self.page_size]}
            if start + self.page_size < len(TOOLS):
                page["nextCursor"] = str(start + self.page_size)
            return page
        if method == "tools/call":
            return await self.call(params, send)
        raise RPCError(-32601, f"Method not found: {method}")

    async def call(self, params: dict[str, Any], send: Send) -> dict[str, Any]:
        name = params.get("name")
        args = params.get("arguments") or {}
        token = (params.get("_meta") or {}).get("progressToken")

        async def progress(value: float, total: float | None, message: str) -> None:
            if token is None:
                return
            note: dict[str, Any] = {"progressToken": token, "progress": value, "message": message}
            if total is not None:
                note["total"] = total
            await send({"jsonrpc": "2.0", "method": "notifications/progress", "params": note})

        if name == "add":
            total = args["a"] + args["b"]
            return {
                "content": [{"type": "text", "text": json.dumps({"sum": total})}],
                "structuredContent": {"sum": total},
            }
        if name == "echo":
            return {"content": [{"type": "text", "text": args["text"]}]}
        if name == "count":
            n = args["n"]
            for i in range(1, n + 1):
                await progress(i, n, f"step {i}")
            return {"content": [{"type": "text", "text": f"counted to {n}"}]}
        if name == "fail":
            return {"content": [{"type": "text", "text": args["message"]}], "isError": True}
        if name == "wait_forever":
            await progress(0, None, "started")
            await trio.sleep_forever()
        if name == "cancelled_requests":
            return {
                "content": [{"type": "text", "text": json.dumps(self.cancelled)}],
                "structuredContent": {"ids": self.cancelled},
            }
        if name == "pid":
            return {"content": [{"type": "text", "text": str(os.getpid())}]}
        if name == "lookup":
            place = args["place"]
            return {
                "content": [{"type": "text", "text": f"{place['city']} is in {place['country']}"}]
            }
        raise RPCError(-32602, f"Unknown tool: {name}")


# --- stdio ---------------------------------------------------------------------------


async def serve_stdio(server: Server) -> None:
    stdin = trio.lowlevel.FdStream(sys.stdin.fileno())
    stdout = trio.lowlevel.FdStream(sys.stdout.fileno())
    lock = trio.Lock()

    async def send(message: dict[str, Any]) -> None:
        async with lock:
            await stdout.send_all(json.dumps(message).encode() + b"\n")

    async def answer(message: dict[str, Any]) -> None:
        response = await server.handle(message, send)
        if response is not None:
            await send(response)

    buffer = b""
    async with trio.open_nursery() as nursery:
        while True:
            data = await stdin.receive_some()
            if not data:
                break
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                message = json.loads(line)
                if "method" not in message:
                    continue  # a response to a request of ours (we send none)
                if "id" not in message:
                    if message["method"] == "notifications/cancelled":
                        server.cancel(message.get("params") or {})
                    continue
                server.running.setdefault(message["id"], trio.CancelScope())
                nursery.start_soon(answer, message)
        nursery.cancel_scope.cancel()


# --- streamable HTTP -------------------------------------------------------------------


class HTTPApp:
    """Streamable HTTP on one endpoint, ``/mcp``: POST, and DELETE to end the session."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.sessions: set[str] = set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = await receive()
                await send({"type": event["type"] + ".complete"})
                if event["type"] == "lifespan.shutdown":
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] != "/mcp":
            await _reply(send, 404, b"not found")
            return
        session = headers.get("mcp-session-id")
        if scope["method"] == "DELETE":
            self.sessions.discard(session or "")
            await _reply(send, 200, b"")
            return
        if scope["method"] != "POST":
            await _reply(send, 405, b"method not allowed")
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        message = json.loads(body)
        accept = headers.get("accept", "")
        if "application/json" not in accept or "text/event-stream" not in accept:
            await _reply(send, 406, b"Accept must list application/json and text/event-stream")
            return
        if message.get("method") == "initialize":
            session = secrets.token_hex(8)
            self.sessions.add(session)
            response = await self.server.handle(message, _no_send)
            await _reply(send, 200, json.dumps(response).encode(), {"mcp-session-id": session})
            return
        if session not in self.sessions:
            await _reply(send, 404 if session else 400, b"unknown or missing session")
            return
        if "id" not in message or "method" not in message:
            if message.get("method") == "notifications/cancelled":
                self.server.cancel(message.get("params") or {})
            await _reply(send, 202, b"")
            return
        if message.get("method") != "tools/call":
            response = await self.server.handle(message, _no_send)
            await _reply(send, 200, json.dumps(response).encode())
            return
        # A tool call answers with an event stream: progress, then the response.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )

        async def stream_event(payload: dict[str, Any]) -> None:
            data = b"event: message\ndata: " + json.dumps(payload).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})

        self.server.running.setdefault(message["id"], trio.CancelScope())
        response = await self.server.handle(message, stream_event)
        if response is not None:
            await stream_event(response)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _no_send(message: dict[str, Any]) -> None:
    raise AssertionError("only tool calls send notifications")


async def _reply(send: Any, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
    headers = [(b"content-type", b"application/json" if body[:1] == b"{" else b"text/plain")]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def serve_http(server: Server, port: int) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 0
    config.keep_alive_timeout = math.inf
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, HTTPApp(server), config, mode="asgi"))  # type: ignore[arg-type]
        bound = binds[0].rsplit(":", 1)[1]
        print(f"LISTENING http://127.0.0.1:{bound}/mcp", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=2)
    args = parser.parse_args()
    server = Server(args.page_size)
    if args.http:
        trio.run(serve_http, server, args.port)
    else:
        trio.run(serve_stdio, server)


if __name__ == "__main__":
    main()
