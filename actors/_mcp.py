"""The MCP connection actor: one connection to an MCP server, shared by every run that uses it.

Rules:

1. **One connection, many callers.** Any number of tasks (runs of a pool,
   sessions, the user's own code) call through one :class:`MCPServer` at once.
   Each request gets a fresh integer id and its own unbounded memory channel;
   whatever reads from the server (one reader task for stdio, one task per
   POST for HTTP) *routes* each message by id: responses to their request,
   ``notifications/progress`` by token (the token is the request id) to the
   same channel. A late answer to a request nobody waits for is dropped.
2. **Structured.** ``async with MCPServer.stdio(...)`` (or ``.http(...)``)
   opens a nursery that owns the subprocess (``trio.run_process``), the
   reader and every per-request task; leaving the block closes the server's
   stdin, gives it ``close_timeout`` seconds to exit, then cancels what is
   left (``run_process`` then terminates the process). Nothing runs detached.
3. **Cancellation reaches the server.** A caller cancelled while its request
   is open (a cancelled run, a tool timeout) sends
   ``notifications/cancelled`` for it, shielded and bounded by
   ``close_timeout``, and then lets the cancellation propagate.
4. **Failures are typed.** A JSON-RPC error answer is an :class:`MCPError`
   with its code; a tool that reports ``isError`` is a :class:`ToolError`;
   a dead server (EOF on stdout, a non-JSON line, an HTTP failure) fails
   every open request with an :class:`MCPError` and every later one at once.
   Inside a run, each of these becomes an error output the model reads.
5. **Tools.** :meth:`MCPServer.list_tools` reads every ``tools/list`` page and
   returns JSON-Schema tools (``runtime.tool`` with the server's
   ``inputSchema``, sent to the model as given, arguments checked before the
   call). They are generator tools: each progress notification is a
   preliminary result (:class:`MCPProgress`), the answer is the result.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Self, final

import trio

from runtime._agent.outcomes import FinalResult
from runtime._agent.tools import Tool, tool
from runtime._base.errors import ConfigurationError, MCPError, ToolError
from runtime._base.groups import unwrap_lone_exception
from runtime._http.plain import PlainHTTP
from runtime._mcp.protocol import (
    METHOD_NOT_FOUND,
    InitializeResult,
    MCPProgress,
    MCPToolInfo,
    Notification,
    Request,
    Response,
    decode_message,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    initialize_params,
    model_tool_name,
    read_call_result,
    read_initialize_result,
    read_progress,
    read_tools_page,
)
from runtime._protocol.sse import SSEDecoder

if TYPE_CHECKING:
    from types import TracebackType

    from runtime._http.transport import HttpxTransport

__all__ = ["MCPServer"]

_CLIENT_NAME: Final = "openrouter-trio"
_CLIENT_VERSION: Final = "0.1.0"
_MAX_LINE: Final = 64 * 1024 * 1024

Route = Callable[[Response | Request | Notification], None]
Fail = Callable[[MCPError], None]


class _Stdio:
    """JSON-RPC lines over a subprocess's stdin and stdout."""

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str] | None, cwd: str | None, stderr: Any
    ) -> None:
        self.command = list(command)
        self.given_env = env
        self.env = None if env is None else {**os.environ, **env}
        self.cwd = cwd
        self.stderr = stderr
        self.process: trio.Process | None = None
        self.lock = trio.Lock()
        self.describe = f"stdio:{self.command[0]}"

    def fresh(self) -> _Stdio:
        """The same server, not started: for a connection of one run's own."""
        return _Stdio(self.command, self.given_env, self.cwd, self.stderr)

    async def start(self, nursery: trio.Nursery, route: Route, fail: Fail) -> None:
        run = partial(
            trio.run_process,
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            env=self.env,
            cwd=self.cwd,
            check=False,
        )
        try:
            self.process = await nursery.start(run)
        except OSError as exc:
            raise MCPError(f"cannot start MCP server {self.command!r}: {exc}") from exc
        nursery.start_soon(self._read, route, fail)

    async def _read(self, route: Route, fail: Fail) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        stdout = self.process.stdout
        buffer = bytearray()
        try:
            while True:
                data = await stdout.receive_some()
                if not data:
                    break
                buffer += data
                if len(buffer) > _MAX_LINE:
                    raise MCPError(f"MCP server sent a line longer than {_MAX_LINE} bytes")
                *lines, rest = bytes(buffer).split(b"\n")
                buffer = bytearray(rest)
                for line in lines:
                    if line.strip():
                        for message in decode_message(line):
                            route(message)
        except MCPError as exc:
            fail(exc)
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            fail(MCPError(f"lost the MCP server's stdout: {exc!r}"))
            return
        fail(MCPError(f"the MCP server {self.command!r} closed its stdout (it exited?)"))

    async def send(self, data: bytes) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        try:
            async with self.lock:
                await self.process.stdin.send_all(data + b"\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise MCPError(f"cannot write to the MCP server {self.command!r}: {exc!r}") from exc

    async def send_request(self, data: bytes, route: Route, fail: Fail, request_id: int) -> None:
        await self.send(data)

    def forget(self, request_id: int) -> None:
        pass

    async def close(self, grace: float) -> None:
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await process.stdin.aclose()
        with trio.move_on_after(grace):
            await process.wait()


class _HTTP:
    """Streamable HTTP: one POST per message; a response is JSON or an event stream."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        http_transport: HttpxTransport | None,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.http_transport = http_transport
        self.http = PlainHTTP(http_transport=http_transport)
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self.nursery: trio.Nursery | None = None
        self.scopes: dict[int, trio.CancelScope] = {}
        self.describe = url

    def fresh(self) -> _HTTP:
        """The same endpoint, not connected: for a connection of one run's own."""
        return _HTTP(self.url, self.headers, self.http_transport)

    def _headers(self) -> dict[str, str]:
        headers = {
            **self.headers,
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        }
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version is not None:
            headers["mcp-protocol-version"] = self.protocol_version
        return headers

    async def start(self, nursery: trio.Nursery, route: Route, fail: Fail) -> None:
        self.nursery = nursery

    async def _post(self, data: bytes, route: Route) -> None:
        async with self.http.stream("POST", self.url, headers=self._headers(), body=data) as reply:
            session = reply.headers.get("mcp-session-id")
            if session is not None:
                self.session_id = session
            if reply.status_code == 202:
                return
            if reply.status_code >= 400:
                text = (await reply.read())[:300].decode("utf-8", "replace")
                raise MCPError(f"MCP server answered HTTP {reply.status_code}: {text!r}")
            if reply.media_type == "text/event-stream":
                decoder = SSEDecoder()
                async for chunk in reply.iter_bytes():
                    for event in decoder.feed(chunk):
                        if event.data.strip():
                            for message in decode_message(event.data):
                                route(message)
                for event in decoder.close():
                    if event.data.strip():
                        for message in decode_message(event.data):
                            route(message)
            else:
                body = await reply.read()
                if body.strip():
                    for message in decode_message(body):
                        route(message)

    async def send(self, data: bytes) -> None:
        await self._post(data, _ignore)

    async def send_request(self, data: bytes, route: Route, fail: Fail, request_id: int) -> None:
        scope = self.scopes[request_id] = trio.CancelScope()

        async def post() -> None:
            try:
                with scope:
                    await self._post(data, route)
            except Exception as exc:
                error = exc if isinstance(exc, MCPError) else MCPError(f"MCP request failed: {exc}")
                route(Response(request_id, error=error))
            finally:
                self.scopes.pop(request_id, None)

        assert self.nursery is not None
        self.nursery.start_soon(post)

    def forget(self, request_id: int) -> None:
        scope = self.scopes.pop(request_id, None)
        if scope is not None:
            scope.cancel()

    async def close(self, grace: float) -> None:
        with trio.move_on_after(grace):
            if self.session_id is not None:
                with contextlib.suppress(Exception):
                    async with self.http.stream("DELETE", self.url, headers=self._headers()):
                        pass
        await self.http.aclose()


def _ignore(message: Response | Request | Notification) -> None:
    pass


@final
class MCPServer:
    """A connection to one MCP server; its tools can be given to any run.

    Make one with :meth:`stdio` or :meth:`http` and open it with ``async with``;
    it may then be shared by any number of runs and tasks at once::

        async with MCPServer.stdio(["python", "weather_server.py"]) as weather:
            tools = await weather.list_tools()
            result = client.call_model(model=..., input=..., tools=tools)

    Attributes:
        name: a label for errors and reprs (the command or the URL by default).
        tool_prefix: prepended to each tool's name for the model.
        close_timeout: seconds the server gets to exit on close, and the bound on
            sending ``notifications/cancelled``.
    """

    def __init__(
        self,
        transport: _Stdio | _HTTP,
        *,
        name: str | None,
        tool_prefix: str,
        close_timeout: float,
    ) -> None:
        if not isinstance(tool_prefix, str):
            raise ConfigurationError(f"tool_prefix {tool_prefix!r} must be a string")
        if not (isinstance(close_timeout, int | float) and close_timeout >= 0):
            raise ConfigurationError(f"close_timeout {close_timeout!r} must be seconds >= 0")
        self._transport = transport
        self.name = name if name is not None else transport.describe
        self.tool_prefix = tool_prefix
        self.close_timeout = float(close_timeout)
        self._ids = itertools.count(1)
        self._pending: dict[int, trio.MemorySendChannel[Any]] = {}
        self._broken: MCPError | None = None
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._info: InitializeResult | None = None
        self._closed = False

    @classmethod
    def stdio(
        cls,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stderr: Any = None,
        name: str | None = None,
        tool_prefix: str = "",
        close_timeout: float = 5.0,
    ) -> MCPServer:
        """A server run as a subprocess, speaking JSON-RPC lines on stdin/stdout.

        Args:
            command: the program and its arguments (no shell).
            env: variables added to this process's environment for the server.
            cwd: the server's working directory.
            stderr: where the server's stderr goes (``None``: inherited;
                ``subprocess.DEVNULL`` to drop it).
        """
        if isinstance(command, str | bytes) or not command:
            raise ConfigurationError(
                f"command {command!r} must be a non-empty list: the program and its arguments"
            )
        return cls(
            _Stdio(command, env, cwd, stderr),
            name=name,
            tool_prefix=tool_prefix,
            close_timeout=close_timeout,
        )

    @classmethod
    def http(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        tool_prefix: str = "",
        close_timeout: float = 5.0,
        http_transport: HttpxTransport | None = None,
    ) -> MCPServer:
        """A server at a streamable-HTTP endpoint (``https://host/mcp``).

        Args:
            url: the MCP endpoint.
            headers: sent with every request (e.g. ``Authorization``); never
                shown in errors or reprs.
            http_transport: an ``HttpxTransport`` to send through.
        """
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"url {url!r} must be an http:// or https:// URL")
        return cls(
            _HTTP(url, headers, http_transport),
            name=name,
            tool_prefix=tool_prefix,
            close_timeout=close_timeout,
        )

    def __repr__(self) -> str:
        state = "open" if self._nursery is not None else "closed"
        return f"<MCPServer {self.name!r} {state}>"

    @property
    def is_open(self) -> bool:
        """Whether the connection is open (handshake done, not closed)."""
        return self._nursery is not None and self._broken is None

    @property
    def server_info(self) -> InitializeResult | None:
        """What the server said in the handshake (``None`` before it)."""
        return self._info

    # --- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None or self._closed:
            raise ConfigurationError(f"{self!r} can be opened once")
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        nursery: trio.Nursery | None = None
        try:
            nursery = await stack.enter_async_context(trio.open_nursery())
            self._nursery = nursery
            self._stack = stack
            await self._transport.start(nursery, self._route, self._fail)
            params = initialize_params(_CLIENT_NAME, _CLIENT_VERSION)
            self._info = read_initialize_result(await self.request("initialize", params))
            if isinstance(self._transport, _HTTP):
                self._transport.protocol_version = self._info.protocol_version
            await self._transport.send(encode_notification("notifications/initialized"))
        except BaseException as exc:
            # The handshake failed: close what was started, then raise the failure itself.
            self._closed = True
            self._nursery = None
            self._stack = None
            with trio.CancelScope(shield=True):
                await self._transport.close(0)
            if nursery is not None:
                nursery.cancel_scope.cancel()
            with unwrap_lone_exception():
                await stack.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Close the server gracefully (stdin closed, ``close_timeout``), then cancel the rest."""
        stack, nursery = self._stack, self._nursery
        assert stack is not None
        assert nursery is not None
        self._closed = True
        self._fail(MCPError(f"the MCP connection {self.name!r} is closed"))
        with trio.CancelScope(shield=True):
            await self._transport.close(self.close_timeout)
        nursery.cancel_scope.cancel()
        self._stack = None
        self._nursery = None
        with unwrap_lone_exception():
            return await stack.__aexit__(exc_type, exc, tb)

    @contextlib.asynccontextmanager
    async def tool_source(self) -> AsyncIterator[list[Tool]]:
        """This server's tools for one run (``call_model(tools=[server])``).

        If this connection is open, the run shares it. Otherwise the run gets a
        connection of its own to the same server, opened in the run's task (a
        stdio server's subprocess lives in the run's nursery) and closed when
        the run ends; this object stays unopened and can serve any number of
        runs that way.
        """
        if self._nursery is not None:
            yield await self.list_tools()
            return
        own = MCPServer(
            self._transport.fresh(),
            name=self.name,
            tool_prefix=self.tool_prefix,
            close_timeout=self.close_timeout,
        )
        async with own:
            yield await own.list_tools()

    # --- routing ---------------------------------------------------------------

    def _route(self, message: Response | Request | Notification) -> None:
        if isinstance(message, Response):
            channel = self._pending.pop(message.id, None) if isinstance(message.id, int) else None
            if channel is not None:
                channel.send_nowait(message)
                channel.close()
        elif isinstance(message, Notification):
            if message.method == "notifications/progress":
                read = read_progress(message.params)
                if read is not None and isinstance(read[0], int):
                    channel = self._pending.get(read[0])
                    if channel is not None:
                        channel.send_nowait(read[1])
        elif self._nursery is not None:
            self._nursery.start_soon(self._answer, message)

    async def _answer(self, request: Request) -> None:
        if request.method == "ping":
            data = encode_result(request.id, {})
        else:
            data = encode_error(request.id, METHOD_NOT_FOUND, f"Method not found: {request.method}")
        with contextlib.suppress(MCPError):
            await self._transport.send(data)

    def _fail(self, error: MCPError) -> None:
        if self._broken is None:
            self._broken = error
        pending, self._pending = self._pending, {}
        for channel in pending.values():
            channel.send_nowait(error)
            channel.close()

    # --- requests ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _open_request(
        self, method: str, params: dict[str, Any] | None, *, progress: bool
    ) -> AsyncIterator[trio.MemoryReceiveChannel[Any]]:
        if self._nursery is None:
            raise ConfigurationError(
                f"{self!r} is not open: use `async with MCPServer...(...) as server:`"
            )
        if self._broken is not None:
            raise self._broken
        request_id = next(self._ids)
        if progress:
            params = dict(params or {})
            params["_meta"] = {**(params.get("_meta") or {}), "progressToken": request_id}
        send, receive = trio.open_memory_channel[Any](math.inf)
        self._pending[request_id] = send
        try:
            await self._transport.send_request(
                encode_request(request_id, method, params), self._route, self._fail, request_id
            )
            with receive:
                yield receive
        finally:
            if self._pending.pop(request_id, None) is not None and method != "initialize":
                await self._cancel_on_server(request_id)
            self._transport.forget(request_id)

    async def _cancel_on_server(self, request_id: int) -> None:
        """Tell the server to stop a request nobody waits for any more (shielded, bounded)."""
        if self._broken is not None:
            return
        data = encode_notification(
            "notifications/cancelled",
            {"requestId": request_id, "reason": "the caller was cancelled"},
        )
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(self.close_timeout),
            contextlib.suppress(Exception),
        ):
            await self._transport.send(data)

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send one request and return its ``result``.

        Raises:
            MCPError: the server answered with an error, or the connection failed.
            ConfigurationError: the connection is not open.
        """
        async with self._open_request(method, params, progress=False) as receive:
            async for message in receive:
                if isinstance(message, MCPError):
                    raise message
                if isinstance(message, Response):
                    if message.error is not None:
                        raise message.error
                    return message.result
        raise MCPError(f"the MCP connection {self.name!r} ended without an answer")

    async def list_tool_infos(self) -> list[MCPToolInfo]:
        """Every tool the server lists, following ``nextCursor`` page by page."""
        infos: list[MCPToolInfo] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            result = await self.request("tools/list", {"cursor": cursor} if cursor else None)
            page, cursor = read_tools_page(result)
            infos.extend(page)
            if cursor is None:
                return infos
            if cursor in seen:
                raise MCPError(f"MCP server repeated the tools/list cursor {cursor!r}")
            seen.add(cursor)

    async def list_tools(self) -> list[Tool]:
        """The server's tools as JSON-Schema tools for ``call_model(tools=...)``.

        Raises:
            MCPError: the listing failed.
            ConfigurationError: a tool's ``inputSchema`` is not a valid JSON
                Schema object (the message names the tool and the keyword).
        """
        return [self._tool(info) for info in await self.list_tool_infos()]

    def _tool(self, info: MCPToolInfo) -> Tool:
        name = model_tool_name(info.name, self.tool_prefix)
        server = self

        async def execute(arguments: Any) -> AsyncIterator[Any]:
            stream = server.call_tool_stream(info.name, arguments)
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                async for event in stream:
                    yield event if isinstance(event, MCPProgress) else FinalResult(event)

        try:
            return tool(
                name=name,
                description=info.description or info.title,
                input_schema=info.input_schema,
                event_schema=MCPProgress,
                output_schema=Any,
                execute=execute,
            )
        except ConfigurationError as exc:
            raise ConfigurationError(f"MCP server {self.name!r} tool {info.name!r}: {exc}") from exc

    async def call_tool_stream(
        self, name: str, arguments: Mapping[str, Any] | None = None
    ) -> AsyncIterator[Any]:
        """Call a tool: yields an :class:`MCPProgress` per progress notification, then the value.

        The value is what :func:`runtime._mcp.protocol.read_call_result` reads.
        Closing the iterator early (or cancelling its reader) cancels the call
        on the server.

        Raises:
            ToolError: the tool reported ``isError``; the message is its text.
            MCPError: the server refused the request or the connection failed.
        """
        params = {"name": name, "arguments": dict(arguments or {})}
        async with self._open_request("tools/call", params, progress=True) as receive:
            async for message in receive:
                if isinstance(message, MCPProgress):
                    yield message
                    continue
                if isinstance(message, MCPError):
                    raise message
                if message.error is not None:
                    raise message.error
                value, error = read_call_result(message.result)
                if error is not None:
                    raise ToolError(error, tool_name=name, call_id="")
                yield value
                return
        raise MCPError(f"the MCP connection {self.name!r} ended without an answer")

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        on_progress: Callable[[MCPProgress], Any] | None = None,
    ) -> Any:
        """Call a tool and return its value; ``on_progress`` gets each progress notification.

        Raises:
            ToolError, MCPError: as :meth:`call_tool_stream`.
        """
        stream = self.call_tool_stream(name, arguments)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for event in stream:
                if isinstance(event, MCPProgress):
                    if on_progress is not None:
                        on_progress(event)
                    continue
                return event
        raise MCPError(f"the MCP connection {self.name!r} ended without an answer")
