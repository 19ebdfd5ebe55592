"""Issue 16: lossless replay and resume, batching, envelopes, filters, ids, tokens, limits.

Rules for this module (as in ``test_feed.py``): real clients over loopback
(trio-websocket, the ``websockets`` library in a worker thread where an
independent client or permessage-deflate is needed, and a raw RFC 6455 client
for frames no library would send); sessions from a ``MemoryRegistry`` over plain
EventLogs; every test bounded by ``trio.fail_after``; no sleeps.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import struct
import time
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from actors._feed.server import EventFeed, serve_event_feed
from actors._feed.tokens import make_read_token
from runtime._protocol.events import OutputTextDelta, TurnStart
from runtime._run.retention import Ring
from runtime.testing import MemoryRegistry, open_feed_client

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from runtime._run.status import RunSnapshot

TOKEN = "resume-token-5f0a-do-not-leak"


def delta(text: str) -> OutputTextDelta:
    return OutputTextDelta(output_index=0, item_id="msg_1", content_index=0, delta=text)


async def start_feed(nursery: trio.Nursery, registry: Any, **options: Any) -> EventFeed:
    feed: EventFeed = await nursery.start(
        functools.partial(serve_event_feed, registry, "127.0.0.1", 0, token=TOKEN, **options)
    )
    return feed


def connect(
    feed: EventFeed, *, token: str | None = TOKEN, header: bool = True
) -> AbstractAsyncContextManager[WebSocketConnection]:
    return open_feed_client(feed.port, token=token, header=header, max_message_size=1 << 24)


async def send(ws: WebSocketConnection, command: dict[str, Any]) -> None:
    await ws.send_message(json.dumps(command))


async def recv(ws: WebSocketConnection) -> Any:
    message = await ws.get_message()
    assert isinstance(message, str)
    return json.loads(message)


async def recv_type(ws: WebSocketConnection, kind: str) -> dict[str, Any]:
    while True:
        frame = await recv(ws)
        if isinstance(frame, dict) and frame["type"] == kind:
            return frame


async def follow_to_end(ws: WebSocketConnection) -> list[dict[str, Any]]:
    """Every frame up to and including ``session.end`` (batches flattened)."""
    frames: list[dict[str, Any]] = []
    while True:
        message = await recv(ws)
        for frame in message if isinstance(message, list) else [message]:
            frames.append(frame)
            if frame["type"] == "session.end":
                return frames


def event_seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["sequence"] for f in frames if f["type"] == "response.output_text.delta"]


# -- lossless replay and resume ------------------------------------------------------


async def test_a_10000_event_replay_of_a_finished_session_is_complete(
    nursery: trio.Nursery,
) -> None:
    """Issue 16: ``after=-1`` on a finished 10,000-event session gives all of them."""
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.extend(delta(f"{i} ") for i in range(10_000))
    registry.finish("run_a")
    with trio.fail_after(60):
        feed = await start_feed(nursery, registry, send_buffer=64)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "run_a", "after": -1})
            frames = await follow_to_end(ws)
    subscribed = next(f for f in frames if f["type"] == "session.subscribed")
    assert subscribed["data"]["recovered"] is True
    assert event_seqs(frames) == list(range(10_000))
    assert not [f for f in frames if f["type"] == "resync"]
    assert feed.statistics().resyncs == 0


async def test_resuming_far_behind_a_busy_session_misses_nothing(nursery: trio.Nursery) -> None:
    """Issue 16: resume 3,000 events behind while the session keeps producing."""
    registry = MemoryRegistry()
    log = registry.add("busy")
    log.extend(delta("x" * 200) for _ in range(3_000))

    async def produce() -> None:
        for _ in range(2_000):
            log.append(delta("y" * 200))
            await trio.lowlevel.checkpoint()
        registry.finish("busy")

    with trio.fail_after(60):
        feed = await start_feed(nursery, registry, send_buffer=128)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "busy", "after": 99})
            nursery.start_soon(produce)
            frames = await follow_to_end(ws)
    assert event_seqs(frames) == list(range(100, 5_000))


async def test_an_event_larger_than_every_buffer_arrives_whole(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    big = "z" * (3 * 1024 * 1024)
    log.extend([delta("a"), delta(big), delta("b")])
    registry.finish("run_a")
    with trio.fail_after(30):
        feed = await start_feed(nursery, registry, send_buffer=2)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "run_a"})
            frames = await follow_to_end(ws)
    texts = [f["data"]["delta"] for f in frames if f["type"] == "response.output_text.delta"]
    assert texts == ["a", big, "b"]


async def test_a_replay_longer_than_the_ring_gets_one_exact_resync_then_every_kept_event(
    nursery: trio.Nursery,
) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a", retention=Ring(500))
    log.extend(delta(str(i)) for i in range(2_000))
    registry.finish("run_a")
    with trio.fail_after(30):
        feed = await start_feed(nursery, registry, send_buffer=64)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "run_a", "after": 10})
            frames = await follow_to_end(ws)
    resyncs = [f for f in frames if f["type"] == "resync"]
    assert len(resyncs) == 1
    data = resyncs[0]["data"]
    assert (data["missed_from"], data["missed_to"], data["missed"]) == (11, 1_499, 1_489)
    assert event_seqs(frames) == list(range(1_500, 2_000))


async def test_a_ring_that_overruns_a_stalled_client_is_reported_exactly(
    nursery: trio.Nursery,
) -> None:
    """A client that stops reading while a Ring moves on: one resync naming the gap."""
    registry = MemoryRegistry()
    log = registry.add("run_a", retention=Ring(64))
    with trio.fail_after(30):
        feed = await start_feed(nursery, registry, send_buffer=8)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "run_a"})
            await recv_type(ws, "session.subscribed")
            while log.statistics().slowest_cursor_lag < 64 or log.first_seq < 20_000:
                log.append(delta("p" * 1000))
                await trio.lowlevel.checkpoint()
            registry.finish("run_a")
            frames = await follow_to_end(ws)
    seqs = [f["sequence"] for f in frames if f["type"] != "session.end"]
    resyncs = [f for f in frames if f["type"] == "resync"]
    assert resyncs
    # Every event seq is either delivered or inside exactly one reported gap, in order.
    covered: list[int] = []
    for frame in frames:
        if frame["type"] == "resync":
            covered += range(frame["data"]["missed_from"], frame["data"]["missed_to"] + 1)
        elif frame["type"] == "response.output_text.delta":
            covered.append(frame["sequence"])
    assert covered == list(range(log.next_seq))
    assert seqs == sorted(seqs)


# -- batching, envelopes, filters, correlation ids ---------------------------------


async def test_batched_subscription_sends_arrays_of_frames_in_order(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.extend(delta(str(i)) for i in range(3_000))
    registry.finish("run_a")
    with trio.fail_after(30):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "run_a", "batch": True})
            messages = []
            while True:
                message = await recv(ws)
                messages.append(message)
                if isinstance(message, dict) and message["type"] == "session.end":
                    break
    batches = [m for m in messages if isinstance(m, list)]
    assert len(batches) < 100
    seqs = [f["sequence"] for batch in batches for f in batch]
    assert seqs == list(range(3_000))
    assert feed.statistics().messages_sent < feed.statistics().frames_sent


async def test_compact_envelope_carries_session_sequence_type_and_data(
    nursery: trio.Nursery,
) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.append(delta("hi"))
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "run_a", "envelope": "compact"})
            await recv_type(ws, "session.subscribed")
            frame = await recv(ws)
    assert frame == {
        "session": "run_a",
        "sequence": 0,
        "type": "response.output_text.delta",
        "data": json.loads(json.dumps(frame["data"])),
    }
    assert frame["data"]["delta"] == "hi"


async def test_type_filter_and_subscribe_all_follow_new_sessions_too(
    nursery: trio.Nursery,
) -> None:
    registry = MemoryRegistry()
    one = registry.add("run_1")
    one.extend([TurnStart(turn_number=0, timestamp=1), delta("skipped")])
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await send(
                ws, {"type": "subscribe_all", "types": ["turn.*"], "replay": True, "id": "all-1"}
            )
            listed = await recv_type(ws, "sessions.subscribed")
            first = await recv(ws)
            two = registry.add("run_2")
            two.extend([delta("skipped too"), TurnStart(turn_number=0, timestamp=2)])
            second = await recv(ws)
            await send(ws, {"type": "unsubscribe_all", "id": 9})
            ack = await recv_type(ws, "feed.ack")
    assert listed["correlationid"] == "all-1"
    assert listed["data"]["sessions"] == ["run_1"]
    assert (first["source"], first["type"], first["sequence"]) == (
        "/sessions/run_1",
        "turn.start",
        0,
    )
    assert (second["source"], second["type"], second["sequence"]) == (
        "/sessions/run_2",
        "turn.start",
        1,
    )
    assert ack["correlationid"] == 9


async def test_command_ids_are_echoed_in_replies(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    registry.add("run_a")
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "run_a", "id": "s-1"})
            subscribed = await recv_type(ws, "session.subscribed")
            await send(ws, {"type": "subscribe", "session": "nope", "id": 2})
            error = await recv_type(ws, "feed.error")
            await send(ws, {"type": "ping", "id": "p"})
            pong = await recv_type(ws, "feed.pong")
            await send(ws, {"type": "subscribe_index", "id": "i"})
            index = await recv_type(ws, "sessions.snapshot")
    assert subscribed["correlationid"] == "s-1"
    assert error["correlationid"] == 2
    assert error["data"]["code"] == "unknown_session"
    assert pong["correlationid"] == "p"
    assert pong["data"] == {"id": "p"}
    assert index["correlationid"] == "i"


# -- an independent client with permessage-deflate ---------------------------------


def _websockets_follow(port: int, session: str) -> tuple[str | None, list[int]]:
    """The ``websockets`` library's sync client: replay a session (it offers deflate)."""
    from websockets.sync.client import connect as ws_connect

    with ws_connect(
        f"ws://127.0.0.1:{port}/",
        additional_headers={"Authorization": f"Bearer {TOKEN}"},
        max_size=None,
        proxy=None,
    ) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions") if ws.response else None
        ws.send(json.dumps({"type": "subscribe", "session": session, "batch": True}))
        seqs: list[int] = []
        while True:
            message = json.loads(ws.recv(timeout=30))
            for frame in message if isinstance(message, list) else [message]:
                if frame["type"] == "session.end":
                    return extensions, seqs
                if frame["type"] == "response.output_text.delta":
                    seqs.append(frame["sequence"])


async def test_permessage_deflate_with_an_independent_client(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.extend(delta("compress me " * 10) for _ in range(2_000))
    registry.finish("run_a")
    with trio.fail_after(60):
        feed = await start_feed(nursery, registry)
        extensions, seqs = await trio.to_thread.run_sync(_websockets_follow, feed.port, "run_a")
    assert extensions is not None
    assert extensions.startswith("permessage-deflate")
    assert seqs == list(range(2_000))


# -- credentials and budgets -------------------------------------------------------


async def test_a_read_token_follows_its_session_only_until_it_expires(
    nursery: trio.Nursery,
) -> None:
    registry = MemoryRegistry()
    registry.add("run_a").append(delta("mine"))
    registry.add("run_b")
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        token = feed.read_token("run_a", ttl=60)
        async with connect(feed, token=token, header=False) as ws:
            ready = await recv_type(ws, "feed.ready")
            await send(ws, {"type": "subscribe", "session": "run_b", "id": 1})
            forbidden = await recv_type(ws, "feed.error")
            await send(ws, {"type": "subscribe_index", "id": 2})
            forbidden_index = await recv_type(ws, "feed.error")
            await send(ws, {"type": "subscribe", "session": "run_a"})
            await recv_type(ws, "session.subscribed")
            event = await recv(ws)
        expired = make_read_token(TOKEN.encode(), "run_a", time.time() - 1)
        forged = make_read_token(b"another secret", "run_a", time.time() + 60)
        codes = []
        for bad in (expired, forged):
            async with connect(feed, token=bad, header=False) as ws:
                with pytest.raises(ConnectionClosed) as info:
                    while True:
                        await recv(ws)
                assert info.value.reason is not None
                codes.append(info.value.reason.code)
    assert ready["data"]["scope"] == {"session": "run_a"}
    assert (forbidden["data"]["code"], forbidden["correlationid"]) == ("forbidden", 1)
    assert forbidden_index["data"]["code"] == "forbidden"
    assert event["data"]["delta"] == "mine"
    assert codes == [1008, 1008]
    assert token not in json.dumps([ready, forbidden, event])


async def test_unauthenticated_clients_never_lock_out_one_with_a_token(
    nursery: trio.Nursery,
) -> None:
    """Issue 15: a separate, small budget for connections that have not authenticated."""
    registry = MemoryRegistry()
    with trio.fail_after(20):
        feed = await start_feed(
            nursery, registry, max_connections=2, max_unauthenticated=3, auth_timeout=30
        )
        async with (
            connect(feed, token=None) as a,
            connect(feed, token=None) as b,
            connect(feed, token=None) as c,
            connect(feed, token=None) as extra,
        ):
            del a, b, c
            with pytest.raises(ConnectionClosed) as info:
                await recv(extra)
            async with connect(feed) as good:
                ready = await recv_type(good, "feed.ready")
            assert feed.statistics().unauthenticated == 3
    assert info.value.reason is not None
    assert info.value.reason.code == 1013
    assert ready["data"]["protocol"].startswith("openrouter-trio.feed/")


# -- hostile frames (a raw RFC 6455 client) ----------------------------------------


class RawClient:
    """Just enough of a websocket client to send what no library sends."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def open(cls, port: int, *, token: str | None = TOKEN) -> RawClient:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        await stream.send_all(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{auth}\r\n"
            ).encode()
        )
        client = cls(stream)
        while b"\r\n\r\n" not in client.buffer:
            chunk = await stream.receive_some(65536)
            assert chunk, "the server closed during the handshake"
            client.buffer += chunk
        head, _, client.buffer = client.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return client

    async def send_frame(
        self, opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0
    ) -> None:
        mask = os.urandom(4)
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        if n < 126:
            header = bytes((first, 0x80 | n))
        elif n < 65536:
            header = struct.pack("!BBH", first, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        try:
            await self.stream.send_all(header + mask + masked)
        except trio.BrokenResourceError:
            pass

    async def _fill(self, n: int) -> bool:
        while len(self.buffer) < n:
            try:
                chunk = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                return False
            if not chunk:
                return False
            self.buffer += chunk
        return True

    async def read_frame(self) -> tuple[int, bytes] | None:
        """The next server frame (opcode, payload), or ``None`` at EOF."""
        if not await self._fill(2):
            return None
        n = self.buffer[1] & 0x7F
        offset = 2
        if n == 126:
            if not await self._fill(4):
                return None
            n = struct.unpack("!H", self.buffer[2:4])[0]
            offset = 4
        elif n == 127:
            if not await self._fill(10):
                return None
            n = struct.unpack("!Q", self.buffer[2:10])[0]
            offset = 10
        if not await self._fill(offset + n):
            return None
        opcode = self.buffer[0] & 0x0F
        payload = self.buffer[offset : offset + n]
        self.buffer = self.buffer[offset + n :]
        return opcode, payload

    async def close_code(self, *, reply: bool = True) -> tuple[int | None, list[dict[str, Any]]]:
        """Read to the server's close frame: its code and the text frames before it."""
        frames: list[dict[str, Any]] = []
        while True:
            frame = await self.read_frame()
            if frame is None:
                return None, frames
            opcode, payload = frame
            if opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                if reply:
                    await self.send_frame(8, payload[:2])
                return code, frames
            if opcode == 1:
                frames.append(json.loads(payload))

    async def aclose(self) -> None:
        await self.stream.aclose()


async def test_deeply_nested_json_gets_an_error_frame_and_1007_even_before_auth(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    registry = MemoryRegistry()
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        results = []
        for token in (TOKEN, None):
            client = await RawClient.open(feed.port, token=token)
            nested = '{"type": "ping", "x": ' + "[" * 1000 + "]" * 1000 + "}"
            await client.send_frame(1, nested.encode())
            results.append(await client.close_code())
            await client.aclose()
    for code, frames in results:
        assert code == 1007
        assert frames[-1]["type"] == "feed.error"
        assert frames[-1]["data"]["code"] == "too_deep"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_invalid_utf8_closes_1007_with_a_close_frame(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        client = await RawClient.open(feed.port)
        await client.send_frame(1, b'{"type": "ping", "id": "\xff\xfe"}')
        code, frames = await client.close_code()
        await client.aclose()
    assert code == 1007
    assert frames[-1]["data"]["code"] == "invalid_utf8"


async def test_an_oversized_message_closes_1009_with_a_close_frame_every_time(
    nursery: trio.Nursery,
) -> None:
    """Issue 16: 1.1 MiB messages, sent whole while the server closes, ten times over."""
    registry = MemoryRegistry()
    payload = b'{"type": "ping", "id": "' + b"a" * (1100 * 1024) + b'"}'
    with trio.fail_after(60):
        feed = await start_feed(nursery, registry)
        codes = []

        async def one() -> None:
            client = await RawClient.open(feed.port)
            try:
                async with trio.open_nursery() as inner:
                    inner.start_soon(client.send_frame, 1, payload)
                    code, _ = await client.close_code(reply=False)
                await client.send_frame(8, struct.pack("!H", 1009))  # the reply, after the data
                assert await client.read_frame() is None  # then the server closes the TCP
                codes.append(code)
            finally:
                await client.aclose()

        async with trio.open_nursery() as clients:
            for _ in range(10):
                clients.start_soon(one)
    assert codes == [1009] * 10


async def test_event_frames_carry_the_run_s_trace_id(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    registry.add("run_a").append(delta("traced"))
    plain = registry.snapshot

    def traced(run_id: str) -> RunSnapshot:
        # RunSnapshot.trace_id: the run's OpenTelemetry trace id (issue 15).
        return msgspec.structs.replace(plain(run_id), trace_id="4bf92f3577b34da6a3ce929d0e0e4736")

    registry.snapshot = traced  # type: ignore[method-assign]
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await send(ws, {"type": "subscribe", "session": "run_a"})
            subscribed = await recv_type(ws, "session.subscribed")
            event = await recv(ws)
    assert event["traceid"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert subscribed["data"]["snapshot"]["trace_id"] == event["traceid"]


async def test_serve_dashboard_lets_in_its_own_page_only(nursery: trio.Nursery) -> None:
    """Issue 15: the dashboard's feed accepts browsers from the page's origin only."""
    from actors._feed.server import serve_dashboard

    registry = MemoryRegistry()
    with trio.fail_after(10):
        address = await nursery.start(
            functools.partial(serve_dashboard, registry, "127.0.0.1", 0, token=TOKEN)
        )
        statuses = [
            await RawClientWithOrigin.open(address.feed_port, origin)
            for origin in (
                f"http://127.0.0.1:{address.http_port}",
                f"http://localhost:{address.http_port}",
                "http://evil.example",
                None,
            )
        ]
    assert statuses == [101, 101, 403, 101]


class RawClientWithOrigin:
    @staticmethod
    async def open(port: int, origin: str | None) -> int:
        """The HTTP status of a handshake with this ``Origin`` (and a good token)."""
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            extra = f"Origin: {origin}\r\n" if origin else ""
            await stream.send_all(
                (
                    f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n{extra}\r\n"
                ).encode()
            )
            head = b""
            while b"\r\n" not in head:
                chunk = await stream.receive_some(4096)
                assert chunk
                head += chunk
            return int(head.split(b" ", 2)[1])
        finally:
            await stream.aclose()
