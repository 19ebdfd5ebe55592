"""Tests for runtime._http.h11: the bulk-reading HTTP/1.1 transport for httpx.

The transport's subject is sockets, so these tests run a tiny scripted trio
server on 127.0.0.1 (``ScriptedServer``): each test says, per request, which
raw bytes the server answers with. The chunked decoder is also tested on its
own (sans-io), including a hypothesis property over split points. Every test
doing I/O is bounded by ``trio.fail_after``; timeout tests use ``autojump_clock``.
"""

from __future__ import annotations

import functools
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing
from hypothesis import given, settings, strategies as st

from runtime._base.errors import ConfigurationError, TransportError
from runtime._http.chunked import _ChunkedDecoder
from runtime._http.h11 import H11Transport
from runtime._http.retry import NO_RETRY
from runtime._http.transport import ApiTransport

if TYPE_CHECKING:
    from pathlib import Path

# A handler answers one request: it gets the server side of the connection,
# the request head and body, and the request's index on that connection.
# Returning False closes the connection after the answer.
Respond = Callable[[trio.SocketStream, bytes, bytes, int], Awaitable[bool]]

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def chunked(*parts: bytes) -> bytes:
    """``parts`` as HTTP chunks, then the terminating chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


async def read_request(stream: trio.SocketStream, buffer: bytearray) -> tuple[bytes, bytes] | None:
    """One request (head, body) from ``stream``; None at a clean EOF."""
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some(65536)
        if not data:
            return None
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    body = b""
    match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    if match:
        length = int(match.group(1))
        while len(buffer) < length:
            buffer += await stream.receive_some(65536)
        body, buffer[:] = bytes(buffer[:length]), buffer[length:]
    elif re.search(rb"(?i)\r\ntransfer-encoding: *chunked", head):
        while not buffer.endswith(b"0\r\n\r\n"):
            buffer += await stream.receive_some(65536)
        decoder = _ChunkedDecoder()
        body = decoder.feed(bytes(buffer))
        buffer.clear()
    return head, body


class ScriptedServer:
    """A loopback HTTP/1.1 server whose answers each test scripts with ``respond``."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.connections = 0
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.streams: list[trio.SocketStream] = []
        self.port = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        self.streams.append(stream)
        buffer = bytearray()
        index = 0
        try:
            while True:
                request = await read_request(stream, buffer)
                if request is None:
                    return
                head, body = request
                self.heads.append(head)
                self.bodies.append(body)
                if not await self.respond(stream, head, body, index):
                    return
                index += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the client went away, or the test closed this connection
        finally:
            await trio.aclose_forcefully(stream)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


async def start(nursery: trio.Nursery, respond: Respond) -> ScriptedServer:
    server = ScriptedServer(respond)
    listeners = await nursery.start(
        functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1")
    )
    server.port = listeners[0].socket.getsockname()[1]
    return server


def answer(payload: bytes, *, keep: bool = True) -> Respond:
    """Every request gets ``payload`` (a whole response); keep the connection or not."""

    async def respond(stream: trio.SocketStream, head: bytes, body: bytes, index: int) -> bool:
        await stream.send_all(payload)
        return keep

    return respond


def sse_answer(*events: bytes) -> bytes:
    return OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(*events)


async def read_all(client: httpx.AsyncClient, url: str, method: str = "GET") -> list[bytes]:
    chunks: list[bytes] = []
    async with client.stream(method, url) as response:
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
    return chunks


def client_for(transport: H11Transport, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, **kwargs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------- chunked decoder


def test_chunked_decoder_joins_every_chunk_of_one_feed() -> None:
    decoder = _ChunkedDecoder()
    out = decoder.feed(b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\nEXTRA")
    assert out == b"abcde"
    assert decoder.done
    assert decoder.extra == b"EXTRA"


def test_chunked_decoder_accepts_upper_case_hex_and_whitespace_before_extensions() -> None:
    decoder = _ChunkedDecoder()
    assert decoder.feed(b"A \t;name\r\n0123456789\r\n0\r\n\r\n") == b"0123456789"
    assert decoder.done


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (b"zz\r\nabc\r\n", r"^Malformed chunked body: bad chunk-size line b'zz'\.$"),
        (b"0x3\r\nabc\r\n", r"^Malformed chunked body: bad chunk-size line b'0x3'\.$"),
        (b"+3\r\nabc\r\n", r"^Malformed chunked body: bad chunk-size line b'\+3'\.$"),
        (b"3\r\nabcXY", r"^Malformed chunked body: expected CRLF after chunk data, got b'XY'\.$"),
        (b"1" * 5000, r"^Malformed chunked body: chunk-size line too long\.$"),
    ],
)
def test_chunked_decoder_rejects_broken_framing(body: bytes, pattern: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match=pattern):
        _ChunkedDecoder().feed(body)


def test_chunked_decoder_rejects_broken_framing_split_across_feeds() -> None:
    decoder = _ChunkedDecoder()
    assert decoder.feed(b"3\r\nab") == b"ab"
    assert decoder.feed(b"c") == b"c"
    with pytest.raises(httpx.RemoteProtocolError, match=r"expected CRLF after chunk data"):
        decoder.feed(b"!!")


def test_chunked_decoder_bounds_the_trailer_section() -> None:
    decoder = _ChunkedDecoder()
    decoder.feed(b"0\r\n")
    with pytest.raises(httpx.RemoteProtocolError, match=r"trailer section too long"):
        decoder.feed(b"x" * 70_000)


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=40), max_size=12),
    trailers=st.sampled_from([b"", b"X-A: 1\r\n", b"X-A: 1\r\nX-B: 2\r\n"]),
    extra=st.binary(max_size=5),
    data=st.data(),
)
def test_chunked_decoder_output_does_not_depend_on_split_points(
    payloads: list[bytes], trailers: bytes, extra: bytes, data: st.DataObject
) -> None:
    wire = (
        b"".join(b"%x;e=v\r\n%s\r\n" % (len(p), p) for p in payloads)
        + b"0\r\n"
        + trailers
        + b"\r\n"
        + extra
    )
    cuts = sorted(data.draw(st.sets(st.integers(0, len(wire)), max_size=10)))
    decoder = _ChunkedDecoder()
    out = b""
    previous = 0
    for cut in [*cuts, len(wire)]:
        out += decoder.feed(wire[previous:cut])
        previous = cut
    assert out == b"".join(payloads)
    assert decoder.done
    assert decoder.extra == extra


@settings(max_examples=100, deadline=None)
@given(
    payloads=st.lists(
        st.binary(min_size=1, max_size=300).map(lambda b: b.replace(b"!", b"\r\n")),
        min_size=5,
        max_size=60,
    ),
    upper=st.booleans(),
    data=st.data(),
)
def test_chunked_decoder_fast_path_matches_the_exact_loop(
    payloads: list[bytes], upper: bool, data: st.DataObject
) -> None:
    """Runs of whole chunks (>= 1 KiB) take the split fast path; CRLF in a payload,
    upper-case hex and any split points must not change the result."""
    size = b"%X" if upper else b"%x"
    wire = b"".join(size % len(p) + b"\r\n" + p + b"\r\n" for p in payloads) + b"0\r\n\r\n"
    cuts = sorted(data.draw(st.sets(st.integers(0, len(wire)), max_size=4)))
    decoder = _ChunkedDecoder()
    out = b""
    previous = 0
    for cut in [*cuts, len(wire)]:
        out += decoder.feed(wire[previous:cut])
        previous = cut
    assert out == b"".join(payloads)
    assert decoder.done


def test_chunked_decoder_fast_path_rejects_what_the_exact_loop_rejects() -> None:
    good = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in [b"x" * 100] * 20)
    with pytest.raises(httpx.RemoteProtocolError, match=r"bad chunk-size line b'\+64'"):
        _ChunkedDecoder().feed(good + b"+64\r\n" + b"y" * 100 + b"\r\n" + good)
    with pytest.raises(httpx.RemoteProtocolError, match=r"expected CRLF after chunk data"):
        _ChunkedDecoder().feed(good + b"64\r\n" + b"y" * 101 + b"\r\n" + good)


# --------------------------------------------------------------------------- bodies


async def test_many_small_chunks_arrive_as_few_large_ones() -> None:
    events = [b'data: {"n": %d}\n\n' % n for n in range(500)]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(sse_answer(*events)))
            async with client_for(H11Transport()) as client:
                chunks = await read_all(client, server.url())
            nursery.cancel_scope.cancel()
    assert b"".join(chunks) == b"".join(events)
    assert len(chunks) < 50  # one HTTP chunk per event, but not one body chunk per event


async def test_content_length_body_and_connection_reuse() -> None:
    payload = OK_HEAD + b"Content-Length: 5\r\n\r\nhello"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            transport = H11Transport()
            async with client_for(transport) as client:
                for _ in range(3):
                    response = await client.get(server.url())
                    assert response.content == b"hello"
                    assert response.http_version == "HTTP/1.1"
                    assert response.reason_phrase == "OK"
                stats = transport.statistics()
            nursery.cancel_scope.cancel()
    assert server.connections == 1
    assert stats.opened == 1
    assert stats.idle == 1
    assert stats.in_use == 0


async def test_chunked_body_with_trailers_releases_the_connection_for_reuse() -> None:
    payload = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            async with client_for(H11Transport()) as client:
                assert b"".join(await read_all(client, server.url())) == b"hello"
                assert b"".join(await read_all(client, server.url())) == b"hello"
            nursery.cancel_scope.cancel()
    assert server.connections == 1


async def test_body_until_close_is_read_to_eof_and_never_reused() -> None:
    payload = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload, keep=False))
            async with client_for(H11Transport()) as client:
                assert (await client.get(server.url())).content == b"all of it"
                assert (await client.get(server.url())).content == b"all of it"
            nursery.cancel_scope.cancel()
    assert server.connections == 2


@pytest.mark.parametrize(
    "payload",
    [
        OK_HEAD + b"Content-Length: 2\r\nConnection: close\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        OK_HEAD + b"Content-Length: 2\r\n\r\nokEXTRA",
    ],
    ids=["connection-close", "http-1.0", "bytes-after-the-body"],
)
async def test_connections_that_cannot_be_reused_are_not(payload: bytes) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            transport = H11Transport()
            async with client_for(transport) as client:
                assert (await client.get(server.url())).content == b"ok"
                assert (await client.get(server.url())).content == b"ok"
                assert transport.statistics().idle == 0
            nursery.cancel_scope.cancel()
    assert server.connections == 2


async def test_request_with_connection_close_is_not_reused() -> None:
    payload = OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            transport = H11Transport()
            async with client_for(transport) as client:
                await client.get(server.url(), headers={"Connection": "close"})
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("HEAD", OK_HEAD + b"Content-Length: 100\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"),
    ],
)
async def test_responses_without_a_body_keep_the_connection(method: str, payload: bytes) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            async with client_for(H11Transport()) as client:
                for _ in range(2):
                    response = await client.request(method, server.url())
                    assert response.content == b""
            nursery.cancel_scope.cancel()
    assert server.connections == 1


async def test_informational_responses_are_skipped() -> None:
    payload = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            async with client_for(H11Transport()) as client:
                response = await client.get(server.url())
            nursery.cancel_scope.cancel()
    assert (response.status_code, response.content) == (200, b"ok")


async def test_request_head_and_bodies_are_sent_as_given() -> None:
    async def gen() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    payload = OK_HEAD + b"Content-Length: 0\r\n\r\n"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            async with client_for(H11Transport()) as client:
                await client.post(
                    server.url("/a/b?q=1"), content=b'{"x": 1}', headers=[(b"X-T", "Café".encode())]
                )
                await client.post(server.url("/stream"), content=gen())
            nursery.cancel_scope.cancel()
    first, second = server.heads
    assert first.startswith(b"POST /a/b?q=1 HTTP/1.1\r\n")
    assert b"\r\nX-T: Caf\xc3\xa9" in first
    assert server.bodies == [b'{"x": 1}', b"part one, part two"]
    assert b"transfer-encoding: chunked" in second.lower()


async def test_a_large_request_body_is_sent_whole() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    payload = OK_HEAD + b"Content-Length: 0\r\n\r\n"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            async with client_for(H11Transport()) as client:
                await client.post(server.url(), content=big)
            nursery.cancel_scope.cancel()
    assert server.bodies == [big]


# --------------------------------------------------------------------------- early close, errors


async def test_closing_a_body_early_discards_the_connection_and_frees_the_slot() -> None:
    async def respond(stream: trio.SocketStream, head: bytes, body: bytes, index: int) -> bool:
        await stream.send_all(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, respond)
            transport = H11Transport(limits=httpx.Limits(max_connections=1))
            async with transport:
                for _ in range(2):
                    # The transport's own body: httpx's aiter_raw() generators,
                    # abandoned by a break, would be reported by trio's GC hook.
                    response = await transport.handle_async_request(
                        httpx.Request("GET", server.url())
                    )
                    assert isinstance(response.stream, httpx.AsyncByteStream)
                    async for chunk in response.stream:
                        assert chunk == b"first"
                        break
                    assert transport.statistics().in_use == 1
                    await response.aclose()
                    assert transport.statistics().connections == 0
                assert transport.statistics().opened == 2
            nursery.cancel_scope.cancel()


async def test_truncated_chunked_body_raises_after_the_chunks_before_it() -> None:
    payload = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n40\r\ntrunc"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload, keep=False))
            transport = H11Transport()
            async with client_for(transport) as client:
                received = b""
                with pytest.raises(
                    httpx.RemoteProtocolError,
                    match=r"^peer closed connection without sending complete message body: "
                    r"incomplete chunked read$",
                ):
                    async with client.stream("GET", server.url()) as response:
                        async for chunk in response.aiter_raw():
                            received += chunk
                assert received == b"firsttrunc"
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()


async def test_truncated_content_length_body_raises() -> None:
    payload = OK_HEAD + b"Content-Length: 10\r\n\r\nshort"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload, keep=False))
            async with client_for(H11Transport()) as client:
                with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete read$"):
                    await client.get(server.url())
            nursery.cancel_scope.cancel()


async def test_malformed_chunk_raises_remote_protocol_error_with_the_request() -> None:
    payload = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\nnope\r\n"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload, keep=False))
            async with client_for(H11Transport()) as client:
                with pytest.raises(httpx.RemoteProtocolError, match=r"bad chunk-size") as info:
                    await client.get(server.url())
            nursery.cancel_scope.cancel()
    assert info.value.request.url == server.url()


@pytest.mark.parametrize(
    ("payload", "pattern"),
    [
        (b"", r"^Server disconnected without sending a response\.$"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", r"peer unexpectedly closed|incomplete"),
        (b"NONSENSE\r\n\r\n", r"."),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", r"without a pending proposal"),
        (OK_HEAD + b"Transfer-Encoding: gzip\r\n\r\n", r"."),
    ],
    ids=["nothing", "half-a-head", "garbage", "upgrade", "unsupported-framing"],
)
async def test_broken_responses_raise_remote_protocol_error(payload: bytes, pattern: str) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload, keep=False))
            transport = H11Transport()
            async with client_for(transport) as client:
                with pytest.raises(httpx.RemoteProtocolError, match=pattern):
                    await client.get(server.url())
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()


async def test_a_requested_upgrade_is_refused() -> None:
    payload = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload, keep=False))
            transport = H11Transport()
            async with client_for(transport) as client:
                with pytest.raises(
                    httpx.RemoteProtocolError,
                    match=r"^The server switched protocols \(101\), "
                    r"which H11Transport does not do\.$",
                ):
                    await client.get(
                        server.url(), headers={"Connection": "Upgrade", "Upgrade": "x"}
                    )
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()


async def test_connection_refused_is_a_connect_error() -> None:
    port = closed_port()
    with trio.fail_after(10):
        transport = H11Transport()
        async with client_for(transport) as client:
            with pytest.raises(
                httpx.ConnectError, match=rf"^Could not connect to 127\.0\.0\.1:{port}"
            ):
                await client.get(f"http://127.0.0.1:{port}/")
        assert transport.statistics().connections == 0


async def test_unsupported_scheme_is_refused() -> None:
    transport = H11Transport()
    request = httpx.Request("GET", "ftp://example.invalid/")
    with pytest.raises(httpx.UnsupportedProtocol, match=r"not 'ftp'"):
        await transport.handle_async_request(request)


async def test_runtime_transport_maps_the_failures_to_its_error_tree() -> None:
    """The default ApiTransport rides on H11Transport; its mapping boundary still works."""
    port = closed_port()
    with trio.fail_after(10):
        async with ApiTransport(
            api_key="sk-or-v1-test", base_url=f"http://127.0.0.1:{port}/api/v1", retry=NO_RETRY
        ) as transport:
            with pytest.raises(TransportError, match=r"^GET '/api/v1/models' failed") as info:
                await transport.request("GET", "/models")
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_write_error_still_reads_an_early_answer() -> None:
    """A server may answer and hang up before reading a large body (413)."""

    async def respond(stream: trio.SocketStream, head: bytes, body: bytes, index: int) -> bool:
        raise AssertionError("unreachable")  # pragma: no cover

    async def early(stream: trio.SocketStream) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig")
        # Close with unread data: the client's next write fails with a reset.
        stream.socket.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        await stream.aclose()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, early, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            async with client_for(H11Transport()) as client:
                try:
                    response = await client.post(
                        f"http://127.0.0.1:{port}/", content=b"x" * (32 * 1024 * 1024)
                    )
                except httpx.ReadError:  # pragma: no cover - the reset beat the answer
                    pytest.skip("the kernel dropped the answer with the reset")
            nursery.cancel_scope.cancel()
    assert (response.status_code, response.content) == (413, b"big")


# --------------------------------------------------------------------------- keep-alive


async def test_server_closing_an_idle_connection_gets_a_new_one() -> None:
    payload = OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            transport = H11Transport()
            async with client_for(transport) as client:
                assert (await client.get(server.url())).content == b"ok"
                # The server hangs up on the idle keep-alive connection.
                await server.streams[0].aclose()
                await trio.testing.wait_all_tasks_blocked()
                assert (await client.get(server.url())).content == b"ok"
                assert transport.statistics().opened == 2
            nursery.cancel_scope.cancel()
    assert server.connections == 2


async def test_idle_connections_expire_after_keepalive_expiry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    payload = OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            transport = H11Transport(limits=httpx.Limits(keepalive_expiry=5.0))
            async with client_for(transport) as client:
                await client.get(server.url())
                await trio.sleep(4.0)
                await client.get(server.url())  # still fresh: reused
                await trio.sleep(6.0)
                await client.get(server.url())  # expired: a new connection
            nursery.cancel_scope.cancel()
    assert server.connections == 2


async def test_max_keepalive_zero_never_keeps_a_connection() -> None:
    payload = OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, answer(payload))
            transport = H11Transport(limits=httpx.Limits(max_keepalive_connections=0))
            async with client_for(transport) as client:
                await client.get(server.url())
                await client.get(server.url())
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()
    assert server.connections == 2


# --------------------------------------------------------------------------- pool limits


def held_answer(release: trio.Event) -> Respond:
    """Answer with a head and one chunk, then finish the body once ``release`` is set."""

    async def respond(stream: trio.SocketStream, head: bytes, body: bytes, index: int) -> bool:
        await stream.send_all(OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n")
        await release.wait()
        await stream.send_all(b"0\r\n\r\n")
        return True

    return respond


async def test_requests_wait_for_a_free_connection_and_reuse_it() -> None:
    release = trio.Event()
    order: list[str] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, held_answer(release))
            transport = H11Transport(limits=httpx.Limits(max_connections=1))
            async with client_for(transport) as client:

                async def fetch(name: str) -> None:
                    await read_all(client, server.url())
                    order.append(name)

                async with trio.open_nursery() as inner:
                    inner.start_soon(fetch, "first")
                    await trio.testing.wait_all_tasks_blocked()
                    inner.start_soon(fetch, "second")
                    await trio.testing.wait_all_tasks_blocked()
                    stats = transport.statistics()
                    assert (stats.connections, stats.in_use, stats.waiting) == (1, 1, 1)
                    release.set()
            nursery.cancel_scope.cancel()
    assert order == ["first", "second"]
    assert server.connections == 1


async def test_pool_timeout_raises_pool_timeout(autojump_clock: trio.testing.MockClock) -> None:
    release = trio.Event()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, held_answer(release))
            transport = H11Transport(limits=httpx.Limits(max_connections=1))
            async with client_for(transport, timeout=httpx.Timeout(30.0, pool=2.0)) as client:
                async with client.stream("GET", server.url()):
                    start_time = trio.current_time()
                    with pytest.raises(
                        httpx.PoolTimeout, match=r"^Timed out waiting for a free connection\.$"
                    ):
                        await client.get(server.url())
                    assert trio.current_time() - start_time == pytest.approx(2.0)
                    assert transport.statistics().waiting == 0
                release.set()
            nursery.cancel_scope.cancel()


async def test_a_waiter_for_another_origin_gets_the_freed_slot() -> None:
    release = trio.Event()
    payload = OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            first = await start(nursery, held_answer(release))
            second = await start(nursery, answer(payload))
            transport = H11Transport(limits=httpx.Limits(max_connections=1))
            async with client_for(transport) as client:
                results: list[bytes] = []

                async def other() -> None:
                    results.append((await client.get(second.url())).content)

                async with trio.open_nursery() as inner:
                    inner.start_soon(read_all, client, first.url())
                    await trio.testing.wait_all_tasks_blocked()
                    inner.start_soon(other)
                    await trio.testing.wait_all_tasks_blocked()
                    assert transport.statistics().waiting == 1
                    release.set()
                assert results == [b"ok"]
                assert transport.statistics().connections == 1
            nursery.cancel_scope.cancel()


async def test_an_idle_connection_to_another_origin_is_evicted_at_the_limit() -> None:
    payload = OK_HEAD + b"Content-Length: 2\r\n\r\nok"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            first = await start(nursery, answer(payload))
            second = await start(nursery, answer(payload))
            transport = H11Transport(limits=httpx.Limits(max_connections=1))
            async with client_for(transport) as client:
                await client.get(first.url())
                await client.get(second.url())
                stats = transport.statistics()
            nursery.cancel_scope.cancel()
    assert (stats.connections, stats.idle, stats.opened) == (1, 1, 2)


async def test_cancelled_waiter_leaves_the_pool_consistent() -> None:
    release = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, held_answer(release))
            transport = H11Transport(limits=httpx.Limits(max_connections=1))
            async with client_for(transport) as client:
                async with trio.open_nursery() as inner:
                    inner.start_soon(read_all, client, server.url())
                    await trio.testing.wait_all_tasks_blocked()
                    with trio.move_on_after(0.01):
                        await client.get(server.url())
                    assert transport.statistics().waiting == 0
                    release.set()
                assert (await client.get(server.url())).status_code == 200
                assert transport.statistics().connections == 1
            nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- timeouts


async def test_connect_timeout(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never(*args: object, **kwargs: object) -> trio.SocketStream:
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    monkeypatch.setattr(trio, "open_tcp_stream", never)
    transport = H11Transport()
    with trio.fail_after(100):
        async with client_for(transport, timeout=httpx.Timeout(30.0, connect=3.0)) as client:
            start_time = trio.current_time()
            with pytest.raises(
                httpx.ConnectTimeout, match=r"^Timed out connecting to example\.invalid:80\.$"
            ):
                await client.get("http://example.invalid/")
            assert trio.current_time() - start_time == pytest.approx(3.0)
    assert transport.statistics().connections == 0


async def test_read_timeout_waiting_for_the_head(autojump_clock: trio.testing.MockClock) -> None:
    async def silent(stream: trio.SocketStream, head: bytes, body: bytes, index: int) -> bool:
        await trio.sleep_forever()

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, silent)
            transport = H11Transport()
            async with client_for(transport, timeout=httpx.Timeout(30.0, read=4.0)) as client:
                with pytest.raises(httpx.ReadTimeout, match=r"waiting for the response"):
                    await client.get(server.url())
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()


async def test_read_timeout_mid_body_discards_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, held_answer(release))
            transport = H11Transport()
            async with client_for(transport, timeout=httpx.Timeout(30.0, read=4.0)) as client:
                received = b""
                with pytest.raises(httpx.ReadTimeout, match=r"reading the response body"):
                    async with client.stream("GET", server.url()) as response:
                        async for chunk in response.aiter_raw():
                            received += chunk
                assert received == b"hi"
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()


async def test_write_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def never_reads(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, never_reads, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            transport = H11Transport()
            async with client_for(transport, timeout=httpx.Timeout(30.0, write=5.0)) as client:
                with pytest.raises(httpx.WriteTimeout, match=r"sending the request"):
                    await client.post(
                        f"http://127.0.0.1:{port}/", content=b"x" * (64 * 1024 * 1024)
                    )
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()


async def test_cancelling_a_request_discards_its_connection() -> None:
    async def silent(stream: trio.SocketStream, head: bytes, body: bytes, index: int) -> bool:
        await trio.sleep_forever()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, silent)
            transport = H11Transport()
            async with client_for(transport) as client:
                with trio.move_on_after(0.05) as cancel_scope:
                    await client.get(server.url())
                assert cancel_scope.cancelled_caught
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- closing


async def test_closing_the_transport_fails_bodies_in_flight_and_later_requests() -> None:
    release = trio.Event()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await start(nursery, held_answer(release))
            transport = H11Transport()
            client = client_for(transport)
            async with client.stream("GET", server.url()) as response:
                iterator = response.aiter_raw()
                assert await iterator.__anext__() == b"hi"
                await transport.aclose()
                with pytest.raises(httpx.ReadError):
                    await iterator.__anext__()
            request = httpx.Request("GET", server.url())
            with pytest.raises(trio.ClosedResourceError, match=r"^This H11Transport is closed\.$"):
                await transport.handle_async_request(request)
            await transport.aclose()  # idempotent
            release.set()
            nursery.cancel_scope.cancel()
    assert repr(transport) == "<H11Transport closed>"


def test_bad_arguments_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"^limits must be an httpx\.Limits, not 3\.$"):
        H11Transport(limits=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"^ssl_context must be an ssl\.SSLContext"):
        H11Transport(ssl_context="yes")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:  # pragma: no cover
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_streams_over_tls(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    events = [b'data: {"n": %d}\n\n' % n for n in range(50)]
    payload = sse_answer(*events)

    async def handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
        received = b""
        for _ in range(2):
            while b"\r\n\r\n" not in received:
                received += await stream.receive_some(65536)
            received = received.partition(b"\r\n\r\n")[2]
            await stream.send_all(payload)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(
                    trio.serve_ssl_over_tcp, handle, 0, server_context, host="127.0.0.1"
                )
            )
            port = listeners[0].transport_listener.socket.getsockname()[1]
            transport = H11Transport(ssl_context=client_context)
            async with client_for(transport) as client:
                for _ in range(2):
                    chunks = await read_all(client, f"https://localhost:{port}/")
                    assert b"".join(chunks) == b"".join(events)
                assert transport.statistics().opened == 1
            nursery.cancel_scope.cancel()


async def test_tls_verification_failure_is_a_connect_error(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
        with pytest.raises(trio.BrokenResourceError):
            await stream.do_handshake()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(
                    trio.serve_ssl_over_tcp, handle, 0, server_context, host="127.0.0.1"
                )
            )
            port = listeners[0].transport_listener.socket.getsockname()[1]
            transport = H11Transport()  # the default roots do not trust our certificate
            async with client_for(transport) as client:
                with pytest.raises(httpx.ConnectError, match=r"^TLS handshake with localhost"):
                    await client.get(f"https://localhost:{port}/")
                assert transport.statistics().connections == 0
            nursery.cancel_scope.cancel()
