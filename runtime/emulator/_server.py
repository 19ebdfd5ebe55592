"""Serve the emulator over real HTTP: an ASGI app on hypercorn, on trio.

:class:`EmulatorApp` is a plain ASGI 3 application over an :class:`Emulator`;
:func:`serve_emulator` runs it with hypercorn (startable with
``nursery.start``) and :func:`open_emulator` wraps that in an async context
manager.

Streaming rules of the app:

1. Each chunk the core's body yields is sent as its own ASGI body message, so
   hypercorn writes it as its own HTTP/1.1 chunk (one SSE event per chunk by
   default; ``Emulator(coalesce=True)`` or a fault changes the chunking).
2. A dropped connection (the body raises ``trio.BrokenResourceError``) ends
   the app *without* the final body message: hypercorn then closes the socket
   with the chunked body unfinished, which is what a client sees when a real
   connection dies mid-stream.
3. While streaming, a second task waits for ``http.disconnect``; when the
   client goes away the stream is cancelled, so slow and hanging streams never
   outlive their client.

Connection limits (every one finite, so that no client holds a socket or a
file descriptor for ever):

4. A connection must deliver a complete request head within
   ``keep_alive_timeout`` seconds of opening (or of its previous response):
   hypercorn's idle timer runs until the head is in, so a slowloris client
   that dribbles header bytes is cut off, and so is an idle keep-alive
   connection. The head itself is capped at 16 KiB (h11's limit).
5. A request body must arrive within ``body_timeout`` seconds; a slower one
   is answered 408 and the connection closed.
6. When the client closes its side, the server closes the socket at once
   (hypercorn alone keeps it in CLOSE_WAIT until its keep-alive timer ends).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Final, final

import trio
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import wrap_app

from runtime._base.groups import unwrap_lone_exception
from runtime.emulator._core import Emulator
from runtime.emulator._http import EmulatorResponse, HTTPError

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

__all__ = ["EmulatorApp", "EmulatorServer", "open_emulator", "serve_emulator"]

_LOG: Final = logging.getLogger("runtime.emulator")
KEEP_ALIVE_TIMEOUT: Final = 5.0
"""Seconds an idle connection (or one still sending its request head) is kept."""
BODY_TIMEOUT: Final = 30.0
"""Seconds a request body may take to arrive."""
_Receive = Callable[[], Awaitable[Mapping[str, Any]]]
_Send = Callable[[dict[str, Any]], Awaitable[None]]


@final
class EmulatorApp:
    """An ASGI 3 application answering every HTTP request with an :class:`Emulator`.

    It also speaks the ``lifespan`` protocol and refuses websockets. Request
    bodies larger than ``emulator.max_request_bytes`` are answered 413 without
    being read to the end.
    """

    def __init__(self, emulator: Emulator, *, body_timeout: float = BODY_TIMEOUT) -> None:
        self.emulator = emulator
        self.body_timeout = body_timeout

    async def __call__(self, scope: Mapping[str, Any], receive: _Receive, send: _Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _http(self, scope: Mapping[str, Any], receive: _Receive, send: _Send) -> None:
        body: bytes | None = None
        with trio.move_on_after(self.body_timeout) as timer:
            body = await _read_body(receive, self.emulator.max_request_bytes)
        if body is None and not timer.cancelled_caught:
            response = HTTPError(413, "The request body is too large.").response()
        elif body is None:  # the client did not send its body in time
            response = HTTPError(
                408, f"The request body did not arrive within {self.body_timeout:g} s."
            ).response()
            response.headers.append(("connection", "close"))
        else:
            query = scope.get("query_string", b"")
            target = scope["path"] + ("?" + query.decode("latin-1") if query else "")
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            response = await self.emulator.handle(scope["method"], target, headers, body)
        await _send_response(response, receive, send)


async def _lifespan(receive: _Receive, send: _Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: _Receive, limit: int) -> bytes | None:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(parts)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _send_response(response: EmulatorResponse, receive: _Receive, send: _Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    body = response.body
    if isinstance(body, bytes):
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    finished = False
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
            try:
                async for chunk in body:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except trio.BrokenResourceError:
                pass  # a `drop` fault: leave the body unfinished (rule 2)
            else:
                finished = True
            nursery.cancel_scope.cancel()
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            with trio.CancelScope(shield=True):
                await aclose()
    if finished:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _cancel_on_disconnect(receive: _Receive, cancel_scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    cancel_scope.cancel()


@final
class EmulatorServer:
    """A running emulator server (what :func:`serve_emulator` reports).

    Attributes:
        emulator: the core answering the requests (scripts, keys, records).
        host: the bound host.
        port: the bound port (the real one when 0 was asked for).
        url: the site root, e.g. ``http://127.0.0.1:54321``.
        base_url: the API root, e.g. ``http://127.0.0.1:54321/api/v1``.
    """

    def __init__(self, emulator: Emulator, host: str, port: int) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.url = f"http://{netloc}"
        self.base_url = f"{self.url}/api/v1"

    @property
    def inference_key(self) -> str:
        """The emulator's inference key."""
        return self.emulator.inference_key

    @property
    def management_key(self) -> str:
        """The emulator's management key."""
        return self.emulator.management_key

    def __repr__(self) -> str:
        return f"<EmulatorServer {self.base_url}>"


async def serve_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    emulator: Emulator | None = None,
    keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    task_status: trio.TaskStatus[EmulatorServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an emulator over HTTP/1.1 until cancelled.

    Start it with ``server = await nursery.start(serve_emulator)``: once the
    socket is bound and listening it reports an :class:`EmulatorServer` with
    the real port (pass ``port=0`` for any free one). Cancelling the task
    closes the listener and every open connection at once; the emulator's
    state is left as it was.

    Args:
        host: the address to bind.
        port: the port to bind; 0 picks a free one.
        emulator: the core to serve; a fresh :class:`Emulator` if ``None``.
        keep_alive_timeout: seconds an idle connection, or one still sending
            its request head, is kept open (5).
        body_timeout: seconds a request body may take to arrive (30); a
            slower one gets a 408.
        task_status: for ``nursery.start``.
    """
    emulator = emulator if emulator is not None else Emulator()
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = _LOG
    config.graceful_timeout = 0
    config.keep_alive_timeout = keep_alive_timeout
    app: ASGIFramework = EmulatorApp(emulator, body_timeout=body_timeout)  # type: ignore[assignment]  # ASGI dicts vs TypedDicts
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    context = WorkerContext(None)
    sockets = config.create_sockets()
    listeners = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
    bound_port = int(sockets.insecure_sockets[0].getsockname()[1])
    handler = partial(_ClosingTCPServer, wrapped, config, context, ConnectionState({}))
    async with trio.open_nursery() as connections:
        try:
            task_status.started(EmulatorServer(emulator, host, bound_port))
            await trio.serve_listeners(handler, listeners, handler_nursery=connections)
        finally:
            connections.cancel_scope.cancel()


class _ClosingTCPServer(TCPServer):
    """hypercorn's connection handler, closing the socket as soon as the client closed.

    hypercorn ends its read loop when the peer closes, but its keep-alive timer
    keeps the connection's task group (and so the socket) alive until it runs
    out: a CLOSE_WAIT socket and a file descriptor per closed connection.
    Stopping the timer once reading is over lets the connection end now.
    """

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()


@asynccontextmanager
async def open_emulator(
    host: str = "127.0.0.1", port: int = 0, *, emulator: Emulator | None = None
) -> AsyncIterator[EmulatorServer]:
    """Run an emulator server for the duration of an ``async with`` block.

    Example::

        async with open_emulator() as server:
            client = httpx.AsyncClient(base_url=server.base_url)
            ...

    Leaving the block cancels the server (open connections are closed). An
    exception raised in the block propagates as itself, not wrapped in an
    exception group.
    """
    with unwrap_lone_exception():
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_emulator, host, port, emulator=emulator))
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
