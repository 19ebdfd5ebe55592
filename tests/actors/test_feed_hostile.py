"""Property test: hostile websocket frames against a live feed server (issue 16).

Each example starts ``serve_event_feed`` on loopback, follows a session with an
observer, and sends a random sequence of raw RFC 6455 frames from a second
client that no library would send: any opcode, reserved bits, fragments, frames
that are unmasked, invalid UTF-8, too long, deeply nested JSON, commands. Then
the hostile client sends a ping command and reads. Whatever happened:

* it either gets its pong (the connection survived) or a *close frame* with
  one of the documented codes: a TCP close without a close frame never
  happens;
* the observer still gets the session's next event and its own pong;
* nothing is logged as a failure of the server.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import struct
from typing import Any

import pytest
import trio
from hypothesis import example, given, settings, strategies as st

from actors._feed.server import EventFeed, serve_event_feed
from runtime._protocol.events import OutputTextDelta
from runtime.testing import MemoryRegistry

TOKEN = "hostile-token-secret"
MAX_MESSAGE = 2048
CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009}


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def delta(text: str) -> OutputTextDelta:
    return OutputTextDelta(output_index=0, item_id="m", content_index=0, delta=text)


class Raw:
    """A raw websocket client: handshake, any frame out, server frames in."""

    def __init__(self, stream: trio.SocketStream, rest: bytes) -> None:
        self.stream = stream
        self.buffer = rest
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, port: int) -> Raw:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        await stream.send_all(
            (
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {TOKEN}\r\n\r\n"
            ).encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            assert chunk
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        return cls(stream, rest)

    async def send(self, frame: bytes) -> bool:
        try:
            await self.stream.send_all(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def _fill(self, n: int) -> bool:
        while len(self.buffer) < n:
            try:
                chunk = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
            if not chunk:
                return False
            self.buffer += chunk
        return True

    async def frame(self) -> tuple[int, bytes] | None:
        if not await self._fill(2):
            return None
        n, offset = self.buffer[1] & 0x7F, 2
        if n == 126:
            if not await self._fill(4):
                return None
            n, offset = struct.unpack("!H", self.buffer[2:4])[0], 4
        elif n == 127:
            if not await self._fill(10):
                return None
            n, offset = struct.unpack("!Q", self.buffer[2:10])[0], 10
        if not await self._fill(offset + n):
            return None
        opcode, payload = self.buffer[0] & 0x0F, self.buffer[offset : offset + n]
        self.buffer = self.buffer[offset + n :]
        return opcode, payload


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        header = bytes((first, bit | n))
    elif n < 65536:
        header = struct.pack("!BBH", first, bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, bit | 127, n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def nested(depth: int) -> bytes:
    return ('{"type": "ping", "x": ' + "[" * depth + "]" * depth + "}").encode()


payloads = st.one_of(
    st.sampled_from(
        [
            b'{"type": "ping", "id": 1}',
            b'{"type": "subscribe", "session": "run_a", "batch": true}',
            b'{"type": "subscribe_all", "types": ["turn.*"]}',
            b'{"type": "auth", "token": "x"}',
            b"\xff\xfe\xfd",
            b'{"type": "ping", "id": "\xc3\x28"}',
            b"\x03\xe8",
            b"\x03\xe8ok",
            b"\x00\x01",
        ]
    ),
    st.integers(1, 1500).map(nested),
    st.integers(MAX_MESSAGE - 10, MAX_MESSAGE + 3000).map(lambda n: b"a" * n),
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
frames = st.builds(
    encode_frame,
    opcode=st.sampled_from([0, 1, 1, 1, 2, 3, 8, 9, 10, 11]),
    payload=payloads,
    fin=st.booleans() | st.just(True),
    rsv=st.sampled_from([0, 0, 0, 1, 4]),
    mask=st.booleans() | st.just(True),
)


@settings(max_examples=60, deadline=None)
@given(sent=st.lists(frames, max_size=5))
@example(sent=[encode_frame(8, b"\x0c\x00")])  # found once: a 3072 close, echoed
async def test_hostile_frames_get_a_close_frame_or_an_answer_and_disturb_no_one(
    sent: list[bytes],
) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.append(delta("before"))
    failures = Failures()
    logger = logging.getLogger("actors.feed")
    logger.addHandler(failures)
    try:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                feed: EventFeed = await nursery.start(
                    functools.partial(
                        serve_event_feed,
                        registry,
                        "127.0.0.1",
                        0,
                        token=TOKEN,
                        max_message_size=MAX_MESSAGE,
                        heartbeat_interval=None,
                        close_timeout=1.0,
                    )
                )
                observer = await Raw.open(feed.port)
                await observer.send(encode_frame(1, b'{"type": "subscribe", "session": "run_a"}'))
                hostile = await Raw.open(feed.port)
                for frame in [*sent, encode_frame(1, b'{"type": "ping", "id": "end"}')]:
                    if not await hostile.send(frame):
                        break
                outcome = await read_outcome(hostile)
                # A close the client started is answered with its own code (RFC 6455
                # §5.5.1), which may be any valid one (3000-4999 included).
                echoed = {code for code in map(close_code_of, sent) if code is not None}
                assert outcome == "pong" or outcome in CLOSE_CODES | echoed, outcome

                log.append(delta("after"))
                await observer.send(encode_frame(1, b'{"type": "ping", "id": "ok"}'))
                await texts_until(observer, lambda f: f.get("data") == {"id": "ok"})
                after = await texts_until(observer, lambda f: f.get("sequence") == 1, seen=True)
                assert after[-1]["data"]["delta"] == "after"
                await hostile.stream.aclose()
                await observer.stream.aclose()
                nursery.cancel_scope.cancel()
    finally:
        logger.removeHandler(failures)
    assert [r.getMessage() for r in failures.records if r.levelno >= logging.WARNING] == []


def close_code_of(frame: bytes) -> int | None:
    """The status code a client close frame (as :func:`encode_frame` built it) carries."""
    if frame[0] & 0x0F != 8:
        return None
    masked, size, offset = frame[1] & 0x80, frame[1] & 0x7F, 2
    if size == 126:
        size, offset = struct.unpack("!H", frame[2:4])[0], 4
    elif size == 127:
        size, offset = struct.unpack("!Q", frame[2:10])[0], 10
    payload = frame[offset + (4 if masked else 0) :][:size]
    if masked:
        key = frame[offset : offset + 4]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else None


async def read_outcome(client: Raw) -> str | int:
    """``"pong"`` for the final ping's answer, or the code of the server's close frame."""
    while True:
        frame = await client.frame()
        assert frame is not None, "the server closed the TCP connection without a close frame"
        opcode, payload = frame
        if opcode == 8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        if opcode == 1:
            data = json.loads(payload)
            assert TOKEN not in payload.decode()
            if data.get("type") == "feed.pong" and data["data"] == {"id": "end"}:
                return "pong"


async def texts_until(client: Raw, done: Any, *, seen: bool = False) -> list[dict[str, Any]]:
    """Text frames up to the first that ``done`` accepts (``seen``: also those read before)."""
    if seen:
        for i, seen_frame in enumerate(client.seen):
            if done(seen_frame):
                found = client.seen[: i + 1]
                del client.seen[: i + 1]
                return found
    while True:
        frame = await client.frame()
        assert frame is not None
        opcode, payload = frame
        if opcode == 1:
            data = json.loads(payload)
            client.seen.append(data)
            if done(data):
                found = client.seen
                client.seen = []
                return found


@pytest.mark.parametrize("mask", [True, False])
def test_close_code_of_reads_the_code_a_close_frame_carries(mask: bool) -> None:
    assert close_code_of(encode_frame(8, b"\x0c\x00bye", mask=mask)) == 3072
    assert close_code_of(encode_frame(8, b"", mask=mask)) is None
    assert close_code_of(encode_frame(1, b"\x0c\x00", mask=mask)) is None
    assert close_code_of(encode_frame(8, b"\x03\xe8" + b"x" * 200, mask=mask)) == 1000
