"""The ASGI app and the hypercorn server: binding, chunk flushing, drops, hangs, shutdown.

HTTP chunk boundaries are observed with a raw socket and an h11 client
connection (h11 marks where each chunk of a chunked body starts and ends).
"""

from __future__ import annotations

import json
from typing import Any

import h11
import pytest
import trio

from runtime.emulator import Emulator, EmulatorApp, EmulatorServer, open_emulator, serve_emulator

BOUND = 10.0


class RawExchange:
    """One request over a raw socket; the response's chunks exactly as framed."""

    def __init__(self) -> None:
        self.status = 0
        self.chunks: list[bytes] = []
        self.complete = False


async def raw_post(
    server: EmulatorServer,
    body: dict[str, Any],
    *,
    stop_when: bytes | None = None,
    path: str = "/api/v1/responses",
) -> tuple[RawExchange, trio.SocketStream]:
    """POST ``body`` and read the response until its end (or until ``stop_when`` shows up)."""
    stream = await trio.open_tcp_stream(server.host, server.port)
    connection = h11.Connection(h11.CLIENT)
    payload = json.dumps(body).encode()
    request = h11.Request(
        method="POST",
        target=path,
        headers=[
            ("host", f"{server.host}:{server.port}"),
            ("authorization", f"Bearer {server.inference_key}"),
            ("content-type", "application/json"),
            ("content-length", str(len(payload))),
        ],
    )
    await stream.send_all(
        connection.send(request)
        + connection.send(h11.Data(data=payload))
        + connection.send(h11.EndOfMessage())
    )
    exchange = RawExchange()
    current = bytearray()
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError:  # e.g. the peer closed mid-body
            return exchange, stream
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            connection.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            exchange.status = event.status_code
        elif isinstance(event, h11.Data):
            if event.chunk_start:
                current = bytearray()
            current += event.data
            if event.chunk_end:
                exchange.chunks.append(bytes(current))
                if stop_when is not None and stop_when in current:
                    return exchange, stream
        elif isinstance(event, h11.EndOfMessage):
            exchange.complete = True
            return exchange, stream
        elif isinstance(event, h11.ConnectionClosed):
            return exchange, stream


async def test_serve_emulator_reports_the_bound_port(connect: Any) -> None:
    with trio.fail_after(BOUND):
        async with trio.open_nursery() as nursery:
            server: EmulatorServer = await nursery.start(serve_emulator)
            assert server.port > 0
            assert server.url == f"http://127.0.0.1:{server.port}"
            assert server.base_url == f"{server.url}/api/v1"
            assert server.inference_key == server.emulator.inference_key
            assert server.inference_key not in repr(server)
            async with connect(server.base_url) as http:
                assert (await http.get("/models")).status_code == 200
            nursery.cancel_scope.cancel()


async def test_each_sse_event_is_flushed_as_its_own_http_chunk(server: EmulatorServer) -> None:
    with trio.fail_after(BOUND):
        exchange, stream = await raw_post(
            server, {"model": "emulator/echo", "input": "a b c", "stream": True}
        )
        await stream.aclose()
    assert exchange.status == 200
    assert exchange.complete
    assert len(exchange.chunks) == 3 + 11 + 1  # keep-alives, data events, [DONE]
    for chunk in exchange.chunks:
        assert chunk.endswith(b"\n\n")
        assert chunk.count(b"\n\n") == 1


async def test_coalesce_sends_the_whole_stream_in_one_chunk() -> None:
    with trio.fail_after(BOUND):
        async with open_emulator(emulator=Emulator(coalesce=True)) as server:
            exchange, stream = await raw_post(
                server, {"model": "emulator/echo", "input": "a b", "stream": True}
            )
            await stream.aclose()
    assert exchange.complete
    assert len(exchange.chunks) == 1
    assert exchange.chunks[0].endswith(b"data: [DONE]\n\n")


async def test_a_drop_closes_the_connection_without_ending_the_body(server: EmulatorServer) -> None:
    body = {"model": "emulator/echo:fault=drop-after=2", "input": "x", "stream": True}
    with trio.fail_after(BOUND):
        exchange, stream = await raw_post(server, body)
        await stream.aclose()
    assert exchange.status == 200
    assert not exchange.complete
    assert sum(chunk.startswith(b"data: ") for chunk in exchange.chunks) == 2


async def test_a_hanging_stream_stays_open_until_the_client_leaves(connect: Any) -> None:
    body = {"model": "emulator/echo:fault=hang", "input": "x", "stream": True}
    with trio.fail_after(BOUND):
        async with open_emulator() as server:
            exchange, stream = await raw_post(server, body, stop_when=b"response.completed")
            with trio.move_on_after(0.2):
                more = await stream.receive_some(65536)
                pytest.fail(f"the hanging stream sent more bytes or closed: {more!r}")
            await stream.aclose()
            # the server is still healthy for the next client
            async with connect(server.base_url) as http:
                assert (await http.get("/models")).status_code == 200
    assert not exchange.complete


async def test_unknown_paths_and_methods_get_json_errors(
    server: EmulatorServer, openapi: Any, connect: Any
) -> None:
    with trio.fail_after(BOUND):
        async with connect(server.url) as http:
            root = await http.get("/")
            unknown = await http.get("/api/v1/nothing")
            wrong = await http.get("/api/v1/responses")
            wrong_keys = await http.put("/api/v1/keys/abc")
    for response in (root, unknown):
        assert response.status_code == 404
        openapi.validate("NotFoundResponse", response.json())
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json()["error"]["code"] == 405
    assert wrong_keys.status_code == 405
    assert wrong_keys.headers["allow"] == "DELETE, GET, PATCH"


async def test_oversized_bodies_get_413(connect: Any) -> None:
    with trio.fail_after(BOUND):
        async with (
            open_emulator(emulator=Emulator(max_request_bytes=64)) as server,
            connect(server.base_url) as http,
        ):
            response = await http.post("/responses", content=b"x" * 1000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413


async def test_open_emulator_lets_a_lone_exception_through_unwrapped() -> None:
    with trio.fail_after(BOUND), pytest.raises(KeyError, match="boom"):
        async with open_emulator():
            raise KeyError("boom")


async def test_the_app_speaks_lifespan_and_refuses_websockets() -> None:
    app = EmulatorApp(Emulator())
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        await trio.lowlevel.checkpoint()
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    await app({"type": "websocket"}, receive, send)
    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
        "websocket.close",
    ]


async def test_browsers_may_call_from_any_origin(server: EmulatorServer, connect: Any) -> None:
    origin = {"Origin": "http://localhost:5173"}
    with trio.fail_after(BOUND):
        async with connect(server.base_url, server.inference_key) as http:
            preflight = await http.options(
                "/auth/keys", headers={**origin, "Access-Control-Request-Headers": "content-type"}
            )
            answer = await http.post(
                "/responses", json={"model": "emulator/echo", "input": "x"}, headers=origin
            )
            plain = await http.get("/models")
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert preflight.headers["access-control-allow-headers"] == "content-type"
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert answer.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "x-generation-id" in answer.headers["access-control-expose-headers"]
    assert "access-control-allow-origin" not in plain.headers
