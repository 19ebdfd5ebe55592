"""Property test for actors._feed.server: whatever a client sends, the server carries on.

Each example runs a fresh ``EventFeed`` over memory streams (the same server
code as on TCP, without sockets): an observer client follows a session, a
fuzzing client sends random text, JSON and bytes, and then the observer must
still get the session's next event and a pong, the fuzzer must end cleanly
(a pong or a close with a protocol close code), and nothing may have been
logged as an internal failure of a connection.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio
import trio.testing
from hypothesis import given, settings, strategies as st
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from actors._feed.server import EventFeed
from runtime._protocol.events import OutputTextDelta
from runtime.testing import MemoryRegistry

TOKEN = "fuzz-token-secret"
CLOSE_CODES = {1000, 1001, 1003, 1007, 1008, 1009}


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def delta(text: str) -> OutputTextDelta:
    return OutputTextDelta(output_index=0, item_id="m", content_index=0, delta=text)


async def client(
    nursery: trio.Nursery, feed: EventFeed, *, authenticated: bool
) -> WebSocketConnection:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(feed.serve_stream, server_stream)
    headers = [(b"authorization", f"Bearer {TOKEN}".encode())] if authenticated else []
    # trio-websocket annotates a socket stream but takes any trio.abc.Stream.
    return await wrap_client_stream(
        nursery,
        client_stream,  # type: ignore[arg-type]
        "feed.test",
        "/",
        extra_headers=headers,
    )


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    message = await ws.get_message()
    assert isinstance(message, str)
    frame: dict[str, Any] = json.loads(message)
    return frame


async def fuzz(fuzzer: WebSocketConnection, sent: list[str | bytes]) -> int | None:
    """Send everything, then a ping; return the close code, or None if it stayed open.

    A client that is still *sending* when the server closes may see 1006: its own
    write fails before its reader has seen the server's close frame. Then only
    the fact that it was closed is checked (returned as 1000).
    """
    try:
        for message in [*sent, '{"type": "ping", "id": "end"}']:
            await fuzzer.send_message(message)
    except ConnectionClosed:
        return 1000
    try:
        while True:
            frame = await recv(fuzzer)
            assert TOKEN not in json.dumps(frame)
            if frame["type"] == "feed.pong" and frame["data"] == {"id": "end"}:
                return None
    except ConnectionClosed as exc:
        reason = exc.reason
    assert reason is not None
    return reason.code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
commands = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["auth", "subscribe", "unsubscribe", "subscribe_index", "unsubscribe_index", "ping"]
        )
        | st.text(max_size=12)
    },
    optional={
        "session": st.sampled_from(["run_a", "run_b"]) | json_values,
        "after": st.integers(-3, 5) | json_values,
        "token": st.sampled_from([TOKEN, "nope"]) | json_values,
        "id": json_values,
    },
)
messages = st.one_of(
    commands.map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=300),
)


@settings(max_examples=150, deadline=None)
@given(sent=st.lists(messages, max_size=8), authenticated=st.booleans())
async def test_random_client_frames_never_crash_the_server_or_disturb_others(
    sent: list[str | bytes], authenticated: bool
) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.append(delta("before"))
    feed = EventFeed(
        registry, token=TOKEN, max_message_size=256, heartbeat_interval=None, close_timeout=0.05
    )
    failures = Failures()
    logger = logging.getLogger("actors.feed")
    logger.addHandler(failures)
    try:
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                observer = await client(nursery, feed, authenticated=True)
                assert (await recv(observer))["type"] == "feed.ready"
                await observer.send_message('{"type": "subscribe", "session": "run_a"}')
                assert (await recv(observer))["type"] == "session.subscribed"
                assert (await recv(observer))["sequence"] == 0

                fuzzer = await client(nursery, feed, authenticated=authenticated)
                code = await fuzz(fuzzer, sent)
                assert code is None or code in CLOSE_CODES, code

                log.append(delta("after"))
                frame = await recv(observer)
                assert (frame["sequence"], frame["data"]["delta"]) == (1, "after")
                await observer.send_message('{"type": "ping", "id": "ok"}')
                assert (await recv(observer))["data"] == {"id": "ok"}
                await observer.aclose()
                await fuzzer.aclose()
                nursery.cancel_scope.cancel()
    finally:
        logger.removeHandler(failures)
    assert [r.getMessage() for r in failures.records if r.levelno >= logging.WARNING] == []
