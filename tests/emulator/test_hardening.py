"""The emulator server holds no socket for ever, and deep JSON is a 400, not a crash.

* A client that connects and closes leaves no CLOSE_WAIT socket and no file
  descriptor behind (counted in ``/proc/self/fd`` and ``/proc/net/tcp``).
* A slowloris client (request head dribbled byte by byte), an idle keep-alive
  connection and a stalled request body are cut off after their timeouts.
* A body nested deeper than 128 levels gets OpenRouter's 400 error shape.

Real sockets on trio's real clock, every wait bounded by ``trio.fail_after``;
the server's timeouts are set small so that the bounds stay short.
"""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing

from runtime.emulator import EmulatorServer, serve_emulator
from runtime.emulator._http import MAX_JSON_DEPTH, nesting_exceeds

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BOUND = 10.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def close_wait_sockets(port: int) -> int:
    """Sockets of this machine in CLOSE_WAIT (state 08) on local port ``port``."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "08":
                        count += 1
        except FileNotFoundError:
            continue
    return count


@asynccontextmanager
async def emulator(**kwargs: Any) -> AsyncIterator[EmulatorServer]:
    async with trio.open_nursery() as nursery:
        server: EmulatorServer = await nursery.start(partial(serve_emulator, **kwargs))
        yield server
        nursery.cancel_scope.cancel()


async def settle_until(predicate: Any) -> None:
    """Let the server run until ``predicate()`` holds (bounded by the caller)."""
    while not predicate():
        await trio.testing.wait_all_tasks_blocked(cushion=0.01)


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything received until the server closes (a reset counts as a close:
    a server closing with our dribbled bytes unread sends RST)."""
    received = b""
    try:
        while chunk := await stream.receive_some(65536):
            received += chunk
    except trio.BrokenResourceError:
        pass
    return received


async def test_closed_connections_leave_no_socket_or_fd_behind() -> None:
    with trio.fail_after(BOUND):
        async with emulator(keep_alive_timeout=3600) as server:
            baseline = open_fds()
            for index in range(40):
                stream = await trio.open_tcp_stream(server.host, server.port)
                if index % 2:  # half of them complete a request first
                    await stream.send_all(b"GET /api/v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
                    assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 200")
                await stream.aclose()
            await settle_until(
                lambda: open_fds() <= baseline and close_wait_sockets(server.port) == 0
            )
            assert open_fds() == baseline
            assert close_wait_sockets(server.port) == 0


async def test_a_slowloris_request_head_is_cut_off() -> None:
    with trio.fail_after(BOUND):
        async with emulator(keep_alive_timeout=0.5) as server:
            stream = await trio.open_tcp_stream(server.host, server.port)
            started = trio.current_time()
            await stream.send_all(b"GET /api/v1/models HTTP/1.1\r\n")

            async def dribble() -> None:
                try:
                    for _ in range(100):
                        await trio.sleep(0.1)
                        await stream.send_all(b"x")
                except trio.BrokenResourceError:
                    pass  # the server hung up: what this test waits for

            async with stream, trio.open_nursery() as nursery:
                nursery.start_soon(dribble)
                received = await read_until_closed(stream)
                nursery.cancel_scope.cancel()
            elapsed = trio.current_time() - started
    assert received == b""  # closed without an answer
    assert 0.5 <= elapsed < 3.0


async def test_an_idle_keep_alive_connection_is_closed() -> None:
    with trio.fail_after(BOUND):
        async with (
            emulator(keep_alive_timeout=0.3) as server,
            await trio.open_tcp_stream(server.host, server.port) as stream,
        ):
            await stream.send_all(b"GET /api/v1/models HTTP/1.1\r\nhost: x\r\n\r\n")
            received = await read_until_closed(stream)  # the answer, then the close
    assert received.startswith(b"HTTP/1.1 200")


async def test_a_stalled_request_body_gets_a_408() -> None:
    with trio.fail_after(BOUND):
        async with (
            emulator(body_timeout=0.3) as server,
            await trio.open_tcp_stream(server.host, server.port) as stream,
        ):
            await stream.send_all(
                b"POST /api/v1/responses HTTP/1.1\r\nhost: x\r\n"
                b'content-type: application/json\r\ncontent-length: 100\r\n\r\n{"mo'
            )
            received = await read_until_closed(stream)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    error = json.loads(body)["error"]
    assert error["code"] == 408
    assert "did not arrive within 0.3 s" in error["message"]


def nested(depth: int) -> bytes:
    return b'{"model":"emulator/echo","input":' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 2000, 100_000])
async def test_deep_json_gets_openrouters_400(depth: int) -> None:
    with trio.fail_after(BOUND):
        async with emulator() as server, httpx.AsyncClient(base_url=server.base_url) as http:
            response = await http.post(
                "/responses",
                content=nested(depth),
                headers={
                    "authorization": f"Bearer {server.inference_key}",
                    "content-type": "application/json",
                },
            )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"code", "message", "metadata"}
    assert error["code"] == 400
    assert "nests more than 128 levels" in error["message"]


def test_nesting_is_measured_outside_strings() -> None:
    assert not nesting_exceeds(b"[" * 128 + b"]" * 128)
    assert nesting_exceeds(b"[" * 129 + b"]" * 129)
    assert not nesting_exceeds(b'{"a":"' + b"[" * 500 + b'"}')
    assert not nesting_exceeds(b'["\\"' + b"{" * 500 + b'"]')
    assert nesting_exceeds(b'{"a":"x\\\\",' + b'"b":' + b"[" * 200 + b"]" * 200 + b"}")
    assert not nesting_exceeds(b"[]" * 10_000)  # many brackets, never deep
