"""Tests for actors._feed.server: the websocket event feed and the dashboard server.

Rules for this module:

* Clients are real trio-websocket clients. Most tests go over loopback
  (``serve_event_feed`` on ``127.0.0.1:0``, ``open_websocket_url``); tests about
  time (auth deadline, heartbeats, idle timeout) run the same server code over
  ``trio.testing.memory_stream_pair`` (``EventFeed.serve_stream``) with the
  autojump clock, so no test ever sleeps for real.
* Every test is bounded by ``trio.fail_after``.
* Sessions come from :class:`MemoryRegistry` (a ``SessionRegistry`` over plain
  EventLogs, so each test controls every event); one test runs a real
  ``SessionPool``.
"""

from __future__ import annotations

import functools
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
import trio
import trio.testing
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)

from actors._feed.server import (
    CLOSE_GOING_AWAY,
    CLOSE_INVALID_DATA,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNSUPPORTED_DATA,
    DashboardAddress,
    EventFeed,
    serve_dashboard,
    serve_event_feed,
)
from runtime._base.errors import ConfigurationError
from runtime._client.client import OpenRouter
from runtime._client.pool import open_session_pool
from runtime._http.retry import RetryConfig
from runtime._protocol.events import (
    OutputTextDelta,
    ToolPreliminaryResult,
    TurnStart,
    UnknownEvent,
)
from runtime._run.retention import Ring
from runtime.testing import FakeOpenRouter, MemoryRegistry, open_feed_client

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

TOKEN = "feed-token-7c1e-do-not-leak"
WRONG = "wrong-token-0000-do-not-leak"


def delta(text: str) -> OutputTextDelta:
    return OutputTextDelta(output_index=0, item_id="msg_1", content_index=0, delta=text)


async def start_feed(nursery: trio.Nursery, registry: Any, **options: Any) -> EventFeed:
    feed: EventFeed = await nursery.start(
        functools.partial(serve_event_feed, registry, "127.0.0.1", 0, token=TOKEN, **options)
    )
    return feed


def connect(
    feed: EventFeed, *, token: str | None = TOKEN, header: bool = True, **options: Any
) -> AbstractAsyncContextManager[WebSocketConnection]:
    """A loopback client; authenticated by header, or by first frame, or not at all."""
    return open_feed_client(feed.port, token=token, header=header, **options)


async def handshake_status(feed: EventFeed, headers: list[tuple[bytes, bytes]]) -> int:
    """The HTTP status of a handshake the server is expected to reject."""
    stream = await trio.open_tcp_stream("127.0.0.1", feed.port)
    try:
        with pytest.RaisesGroup(ConnectionRejected) as info:
            async with trio.open_nursery() as nursery:
                await wrap_client_stream(nursery, stream, "127.0.0.1", "/", extra_headers=headers)
    finally:
        await stream.aclose()
    rejection = info.value.exceptions[0]
    assert isinstance(rejection, ConnectionRejected)
    return rejection.status_code


async def send(ws: WebSocketConnection, command: dict[str, Any]) -> None:
    await ws.send_message(json.dumps(command))


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    message = await ws.get_message()
    assert isinstance(message, str)
    frame: dict[str, Any] = json.loads(message)
    return frame


async def recv_type(ws: WebSocketConnection, kind: str) -> dict[str, Any]:
    while True:
        frame = await recv(ws)
        if frame["type"] == kind:
            return frame


async def ready(ws: WebSocketConnection) -> dict[str, Any]:
    frame = await recv(ws)
    assert frame["type"] == "feed.ready", frame
    return frame


async def close_code(ws: WebSocketConnection) -> tuple[int, list[dict[str, Any]]]:
    """Read until the server closes; return the close code and the frames before it."""
    frames = []
    with pytest.raises(ConnectionClosed) as info:
        while True:
            frames.append(await recv(ws))
    reason = info.value.reason
    assert reason is not None
    return reason.code, frames


async def echo_ok(ws: WebSocketConnection) -> None:
    """The connection still works: a ping gets its pong."""
    await send(ws, {"type": "ping", "id": "alive"})
    frame = await recv_type(ws, "feed.pong")
    assert frame["data"] == {"id": "alive"}


# -- configuration -------------------------------------------------------------------


def test_bad_token_argument_is_rejected_without_showing_it() -> None:
    with pytest.raises(ConfigurationError, match=r"^token must be a non-empty string") as info:
        EventFeed(MemoryRegistry(), token="")
    assert "''" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "pattern"),
    [
        ("max_connections", 0, r"^max_connections must be a positive integer, got 0\.$"),
        ("send_buffer", 1, r"^send_buffer must be at least 2, got 1\.$"),
        ("idle_timeout", -1.0, r"^idle_timeout must be a positive number of seconds or None"),
        ("auth_timeout", None, r"^auth_timeout must be a positive number of seconds, got None"),
        ("heartbeat_interval", float("nan"), r"^heartbeat_interval must be a positive number"),
    ],
)
def test_bad_option_raises_configuration_error(name: str, value: Any, pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        EventFeed(MemoryRegistry(), token=TOKEN, **{name: value})


def test_port_before_listening_raises() -> None:
    with pytest.raises(RuntimeError, match=r"^The event feed is not listening on a port\.$"):
        _ = EventFeed(MemoryRegistry(), token=TOKEN).port


# -- auth ----------------------------------------------------------------------------


async def test_header_token_is_accepted_and_ready_frame_describes_the_feed(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry(), send_buffer=32)
        async with connect(feed) as ws:
            frame = await ready(ws)
    assert frame["specversion"] == "1.0"
    assert frame["source"] == "/feed"
    assert frame["datacontenttype"] == "application/json"
    assert frame["data"]["protocol"] == "openrouter-trio.feed/1"
    assert frame["data"]["send_buffer"] == 32


async def test_first_frame_token_is_accepted(nursery: trio.Nursery) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry())
        async with connect(feed, header=False) as ws:
            await ready(ws)
            await echo_ok(ws)


async def test_bad_header_token_is_rejected_401_while_others_carry_on(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry())
        async with connect(feed) as good:
            await ready(good)
            status = await handshake_status(feed, [(b"authorization", f"Bearer {WRONG}".encode())])
            assert status == 401
            await echo_ok(good)
        assert feed.statistics().rejected == 1


async def test_bad_first_frame_token_closes_1008_while_others_carry_on(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry())
        async with connect(feed) as good:
            await ready(good)
            async with connect(feed, token=WRONG, header=False) as bad:
                code, frames = await close_code(bad)
            assert code == CLOSE_POLICY_VIOLATION
            assert [f["data"]["code"] for f in frames] == ["unauthorized"]
            assert all(WRONG not in json.dumps(f) for f in frames)
            await echo_ok(good)


async def test_command_before_auth_closes_1008(nursery: trio.Nursery) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry())
        async with connect(feed, token=None) as ws:
            await send(ws, {"type": "subscribe_index"})
            code, frames = await close_code(ws)
    assert code == CLOSE_POLICY_VIOLATION
    assert frames[0]["data"]["code"] == "unauthenticated"


async def test_disallowed_origin_is_rejected_403_and_allowed_or_absent_origin_accepted(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry(), allowed_origins=["http://dash.local"])
        status = await handshake_status(feed, [(b"origin", b"http://evil.example")])
        assert status == 403
        async with connect(feed, extra_headers=[(b"origin", b"http://dash.local")]) as ws:
            await ready(ws)
        async with connect(feed) as ws:
            await ready(ws)


# -- session subscriptions -----------------------------------------------------------


async def test_subscribe_replays_the_log_then_follows_live(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.append(TurnStart(turn_number=0, timestamp=1))
    log.append(delta("Hel"))
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe", "session": "run_a"})
            subscribed = await recv(ws)
            replay = [await recv(ws), await recv(ws)]
            log.append(delta("lo"))
            live = await recv(ws)
            registry.finish("run_a")
            end = await recv(ws)
    assert subscribed["type"] == "session.subscribed"
    assert subscribed["data"]["after"] == -1
    assert subscribed["data"]["snapshot"]["next_seq"] == 2
    assert [f["type"] for f in replay] == ["turn.start", "response.output_text.delta"]
    assert [f["sequence"] for f in [*replay, live]] == [0, 1, 2]
    first = replay[0]
    assert first["id"] == "run_a:0"
    assert first["source"] == "/sessions/run_a"
    assert first["specversion"] == "1.0"
    assert first["datacontenttype"] == "application/json"
    assert first["time"].endswith("Z")
    assert first["data"] == {"type": "turn.start", "turn_number": 0, "timestamp": 1}
    assert live["data"]["delta"] == "lo"
    assert end["type"] == "session.end"
    assert end["sequence"] == 2
    assert end["data"]["status"] == "done"


async def test_resume_after_dropped_connection_has_no_gap_and_no_duplicate(
    nursery: trio.Nursery,
) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.extend(delta(str(i)) for i in range(5))
    seen: list[int] = []
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe", "session": "run_a", "after": -1})
            await recv_type(ws, "session.subscribed")
            for _ in range(3):
                seen.append((await recv(ws))["sequence"])
        # Dropped; the run goes on meanwhile.
        log.extend(delta(str(i)) for i in range(5, 9))
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe", "session": "run_a", "after": seen[-1]})
            subscribed = await recv_type(ws, "session.subscribed")
            assert subscribed["sequence"] == seen[-1]
            log.append(delta("9"))
            registry.finish("run_a")
            while (frame := await recv(ws))["type"] != "session.end":
                seen.append(frame["sequence"])
                assert frame["data"]["delta"] == str(frame["sequence"])
    assert seen == list(range(10))


async def test_unknown_session_and_bad_after_give_error_frames(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    registry.add("run_a").append(delta("x"))
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe", "session": "run_nope"})
            unknown = await recv(ws)
            await send(ws, {"type": "subscribe", "session": "run_a", "after": 5})
            bad_after = await recv(ws)
            await echo_ok(ws)
    assert unknown["type"] == "feed.error"
    assert unknown["data"]["code"] == "unknown_session"
    assert bad_after["data"]["code"] == "invalid_after"
    assert bad_after["data"]["message"] == (
        "after must be between -1 and 0 for session 'run_a', got 5."
    )


async def test_unsubscribe_stops_the_frames_of_that_session(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    log_a = registry.add("run_a")
    log_b = registry.add("run_b")
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe", "session": "run_a"})
            await send(ws, {"type": "subscribe", "session": "run_b"})
            await recv_type(ws, "session.subscribed")
            await recv_type(ws, "session.subscribed")
            await send(ws, {"type": "unsubscribe", "session": "run_a"})
            await echo_ok(ws)  # the unsubscribe has been handled
            log_a.append(delta("a"))
            log_b.append(delta("b"))
            frame = await recv(ws)
    assert frame["source"] == "/sessions/run_b"
    assert feed.statistics().subscriptions == 0


async def test_failed_run_ends_with_its_error_in_the_end_frame(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.append(delta("partial"))
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe", "session": "run_a"})
            await recv_type(ws, "session.subscribed")
            assert (await recv(ws))["data"]["delta"] == "partial"
            registry.finish("run_a", RuntimeError("model exploded"))
            end = await recv(ws)
    assert end["type"] == "session.end"
    assert end["data"]["status"] == "failed"
    assert end["data"]["error"] == "RuntimeError('model exploded')"


async def test_unknown_and_unencodable_events_are_passed_through(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.append(UnknownEvent(type="response.future.thing", raw=msgspec.Raw(b'{"type":"x","n":1}')))
    log.append(ToolPreliminaryResult(tool_call_id="c1", result=object(), timestamp=2))
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe", "session": "run_a"})
            await recv_type(ws, "session.subscribed")
            unknown, odd = await recv(ws), await recv(ws)
    assert unknown["type"] == "response.future.thing"
    assert unknown["data"] == {"type": "x", "n": 1}
    assert odd["type"] == "tool.preliminary_result"
    assert odd["data"]["result"] == "<unencodable object>"


async def test_lagged_subscriber_gets_resync_naming_the_dropped_events_then_the_rest(
    nursery: trio.Nursery,
) -> None:
    """Issue 16: a resync only for what retention dropped, then every retained event."""
    registry = MemoryRegistry()
    log = registry.add("run_a", retention=Ring(4))
    log.extend(delta(str(i)) for i in range(10))  # seqs 0-5 are gone
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe", "session": "run_a", "after": -1})
            subscribed = await recv_type(ws, "session.subscribed")
            resync = await recv(ws)
            kept = [await recv(ws) for _ in range(4)]
            log.append(delta("10"))
            live = await recv(ws)
    assert subscribed["data"]["recovered"] is False
    assert (subscribed["data"]["missed_from"], subscribed["data"]["missed_to"]) == (0, 5)
    assert resync["type"] == "resync"
    assert resync["sequence"] == 5
    assert resync["data"]["reason"] == "lagged"
    assert resync["data"]["next_seq"] == 6
    assert (resync["data"]["missed_from"], resync["data"]["missed_to"]) == (0, 5)
    assert resync["data"]["missed"] == 6
    assert resync["data"]["snapshot"]["next_seq"] == 10
    assert [f["sequence"] for f in kept] == [6, 7, 8, 9]
    assert live["sequence"] == 10


async def test_stalled_client_does_not_slow_the_session_and_loses_nothing(
    nursery: trio.Nursery,
) -> None:
    """A client that stops reading costs a cursor position, not the session's throughput.

    The producer's events/s is measured with one reading client, then again with
    a stalled client subscribed as well (after its socket buffers have filled:
    its cursor is thousands of events behind). When the stalled client reads
    again it gets every event, in order, without a resync (issue 16).
    """
    registry = MemoryRegistry()
    log = registry.add("busy")
    payload = "x" * 4096
    n = 600

    async def produce(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            log.append(delta(payload))
            await trio.lowlevel.checkpoint()
        return count / (time.perf_counter() - start)

    async def read_all(ws: WebSocketConnection, until: int) -> None:
        while (await recv(ws)).get("sequence", -1) < until - 1:
            pass

    with trio.fail_after(60):
        feed = await start_feed(nursery, registry, send_buffer=64, idle_timeout=None)
        async with connect(feed) as reader, connect(feed) as stalled:
            await ready(reader)
            await send(reader, {"type": "subscribe", "session": "busy", "after": -1})
            await recv_type(reader, "session.subscribed")
            async with trio.open_nursery() as inner:
                inner.start_soon(read_all, reader, n)
                alone = await produce(n)
            # Stall the second client: subscribe, never read, fill every buffer.
            await ready(stalled)
            start = log.next_seq - 1
            await send(stalled, {"type": "subscribe", "session": "busy", "after": start})
            async with trio.open_nursery() as inner:
                inner.start_soon(recv_type, reader, "session.end")
                while log.statistics().slowest_cursor_lag < 3000:
                    log.append(delta(payload))
                    await trio.lowlevel.checkpoint()
                with_stalled = await produce(n)
                registry.finish("busy")
            assert with_stalled > alone / 4, (alone, with_stalled)
            # The stalled client now reads: every event, consecutive.
            seqs = []
            while (frame := await recv(stalled))["type"] != "session.end":
                if frame["type"] != "session.subscribed":
                    assert frame["type"] == "response.output_text.delta", frame["type"]
                    seqs.append(frame["sequence"])
    assert seqs == list(range(start + 1, log.next_seq))
    assert feed.statistics().resyncs == 0


# -- the index -----------------------------------------------------------------------


async def test_subscribe_index_sends_a_snapshot_then_updates(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    registry.add("run_a")
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe_index"})
            snapshot = await recv(ws)
            registry.add("run_b")
            added = await recv(ws)
            registry.finish("run_a")
            finished = await recv(ws)
            registry.remove("run_a")
            removed = await recv(ws)
    assert snapshot["type"] == "sessions.snapshot"
    assert snapshot["data"]["reason"] == "subscribe"
    assert [s["id"] for s in snapshot["data"]["sessions"]] == ["run_a"]
    assert (added["type"], added["data"]["id"], added["data"]["status"]) == (
        "session.updated",
        "run_b",
        "running",
    )
    assert (finished["data"]["id"], finished["data"]["status"]) == ("run_a", "done")
    assert (removed["type"], removed["data"]["id"]) == ("session.removed", "run_a")
    assert [f["sequence"] for f in (snapshot, added, finished, removed)] == [0, 1, 2, 3]


async def test_index_watcher_that_lags_gets_a_fresh_snapshot(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry(update_buffer=2)
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "subscribe_index"})
            await recv_type(ws, "sessions.snapshot")
            for i in range(5):  # no checkpoint: the watcher falls off the ring
                registry.add(f"run_{i}")
            frame = await recv(ws)
    assert frame["type"] == "sessions.snapshot"
    assert frame["data"]["reason"] == "lagged"
    assert [s["id"] for s in frame["data"]["sessions"]] == [f"run_{i}" for i in range(5)]
    assert feed.statistics().resyncs == 1


# -- limits and bad input ------------------------------------------------------------


async def test_oversized_message_closes_1009(nursery: trio.Nursery) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry(), max_message_size=1024)
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "ping", "id": "x" * 2000})
            code, _ = await close_code(ws)
    assert code == CLOSE_TOO_BIG


async def test_binary_message_closes_1003_after_an_error_frame(nursery: trio.Nursery) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry())
        async with connect(feed) as ws:
            await ready(ws)
            await ws.send_message(b'{"type": "ping"}')
            code, frames = await close_code(ws)
    assert code == CLOSE_UNSUPPORTED_DATA
    assert [f["data"]["code"] for f in frames] == ["unsupported_data"]


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        '{"no_type": 1}',
        '{"type": "subscribe"}',
        '{"type": "auth", "token": 5}',
    ],
)
async def test_malformed_command_closes_1007_after_an_error_frame(
    nursery: trio.Nursery, message: str
) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry())
        async with connect(feed) as ws:
            await ready(ws)
            await ws.send_message(message)
            code, frames = await close_code(ws)
    assert code == CLOSE_INVALID_DATA
    assert [f["type"] for f in frames] == ["feed.error"]
    assert frames[0]["data"]["code"] == "invalid_command"


async def test_unknown_command_gets_an_error_frame_and_the_connection_stays_open(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry())
        async with connect(feed) as ws:
            await ready(ws)
            await send(ws, {"type": "teleport", "to": "mars"})
            frame = await recv(ws)
            await echo_ok(ws)
    assert frame["data"] == {
        "code": "unknown_command",
        "message": "Unknown command type 'teleport'.",
        "command": "teleport",
    }


async def test_connection_limit_closes_the_extra_connection_1013(nursery: trio.Nursery) -> None:
    with trio.fail_after(10):
        feed = await start_feed(nursery, MemoryRegistry(), max_connections=2)
        async with connect(feed) as one, connect(feed) as two:
            await ready(one)
            await ready(two)
            async with connect(feed) as three:
                code, _ = await close_code(three)
            assert code == CLOSE_TRY_AGAIN_LATER
            await echo_ok(one)
        async with connect(feed) as again:  # slots are given back
            await ready(again)


async def test_subscription_limit_gives_an_error_frame(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    for name in ("run_a", "run_b", "run_c"):
        registry.add(name)
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry, max_subscriptions=2)
        async with connect(feed) as ws:
            await ready(ws)
            for name in ("run_a", "run_b", "run_c"):
                await send(ws, {"type": "subscribe", "session": name})
            error = await recv_type(ws, "feed.error")
    assert error["data"]["code"] == "too_many_subscriptions"


async def test_raw_garbage_on_the_socket_does_not_disturb_the_server(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(15):
        feed = await start_feed(nursery, MemoryRegistry(), auth_timeout=2.0)
        async with connect(feed) as good:
            await ready(good)
            stream = await trio.open_tcp_stream("127.0.0.1", feed.port)
            await stream.send_all(b"\x00\xff garbage \r\n\r\n" * 10)
            with trio.move_on_after(5):
                while await stream.receive_some(4096):
                    pass
            await stream.aclose()
            await echo_ok(good)


async def test_no_secret_ever_appears_in_a_frame(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    log = registry.add("run_a")
    log.append(delta("hello"))
    frames: list[str] = []
    with trio.fail_after(10):
        feed = await start_feed(nursery, registry)
        async with connect(feed, header=False) as ws:  # first-frame auth
            for command in (
                {"type": "subscribe_index"},
                {"type": "subscribe", "session": "run_a"},
                {"type": "auth", "token": TOKEN},  # once more: an error frame
                {"type": "ping", "id": "last"},
            ):
                await send(ws, command)
            registry.finish("run_a")
            seen: set[str] = set()
            while not {"feed.pong", "session.end"} <= seen:
                message = await ws.get_message()
                assert isinstance(message, str)
                frames.append(message)
                seen.add(json.loads(message)["type"])
        async with connect(feed, token=WRONG, header=False) as ws:
            _, bad = await close_code(ws)
            frames.extend(json.dumps(f) for f in bad)
    kinds = {json.loads(f)["type"] for f in frames}
    assert {"feed.ready", "feed.error", "sessions.snapshot", "session.end"} <= kinds
    assert not [f for f in frames if TOKEN in f or WRONG in f]


# -- time: heartbeats, idle and auth timeouts (memory streams, autojump clock) -------


async def memory_client(
    nursery: trio.Nursery, feed: EventFeed, *, token: str | None = TOKEN
) -> WebSocketConnection:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(feed.serve_stream, server_stream)
    headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    # trio-websocket annotates a socket stream but takes any trio.abc.Stream
    # (wrap_server_stream is annotated so); its own tests use memory streams.
    return await wrap_client_stream(
        nursery,
        client_stream,  # type: ignore[arg-type]
        "feed.test",
        "/",
        extra_headers=headers,
    )


async def test_silent_client_is_closed_after_the_idle_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    feed = EventFeed(MemoryRegistry(), token=TOKEN, heartbeat_interval=None, idle_timeout=30)
    with trio.fail_after(100):
        ws = await memory_client(nursery, feed)
        await ready(ws)
        start = trio.current_time()
        code, _ = await close_code(ws)
    assert code == CLOSE_GOING_AWAY
    assert 30 <= trio.current_time() - start < 31


async def test_heartbeat_pongs_keep_a_silent_client_alive(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    feed = EventFeed(MemoryRegistry(), token=TOKEN, heartbeat_interval=5, idle_timeout=12)
    with trio.fail_after(200):
        ws = await memory_client(nursery, feed)
        await ready(ws)
        await trio.sleep(120)  # the client's reader answers every ping
        await echo_ok(ws)
    assert ws.closed is None


async def test_client_that_never_authenticates_is_closed_1008(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    feed = EventFeed(MemoryRegistry(), token=TOKEN, auth_timeout=7)
    with trio.fail_after(100):
        ws = await memory_client(nursery, feed, token=None)
        code, frames = await close_code(ws)
    assert code == CLOSE_POLICY_VIOLATION
    assert frames[0]["data"]["code"] == "auth_timeout"


async def test_shutdown_closes_every_connection_with_1001(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    registry.add("run_a")
    feed_scope = trio.CancelScope()

    async def run_feed(*, task_status: trio.TaskStatus[EventFeed]) -> None:
        with feed_scope:
            await serve_event_feed(registry, "127.0.0.1", 0, token=TOKEN, task_status=task_status)

    with trio.fail_after(10):
        feed: EventFeed = await nursery.start(run_feed)
        async with connect(feed) as one, connect(feed) as two:
            await ready(one)
            await ready(two)
            await send(one, {"type": "subscribe", "session": "run_a"})
            await recv_type(one, "session.subscribed")
            feed_scope.cancel()
            codes = [(await close_code(one))[0], (await close_code(two))[0]]
    assert codes == [CLOSE_GOING_AWAY, CLOSE_GOING_AWAY]
    assert feed.statistics().connections == 0


# -- with a real session pool -------------------------------------------------------


async def test_feed_serves_a_session_pool_end_to_end(nursery: trio.Nursery) -> None:
    fake = FakeOpenRouter()
    frames: list[dict[str, Any]] = []
    with trio.fail_after(30):
        async with (
            OpenRouter(
                api_key=fake.inference_key,
                base_url=fake.base_url,
                http_transport=fake.http_transport(),
                retry=RetryConfig(strategy="none"),
            ) as client,
            open_session_pool(client, max_concurrent=2) as pool,
        ):
            feed = await start_feed(nursery, pool)
            async with connect(feed) as ws:
                await ready(ws)
                await send(ws, {"type": "subscribe_index"})
                frames.append(await recv_type(ws, "sessions.snapshot"))
                result = pool.start(model="emulator/echo", input="hello from the pool")
                await send(ws, {"type": "subscribe", "session": result.id})
                while (frame := await recv(ws))["type"] != "session.end":
                    frames.append(frame)
                frames.append(frame)
    text = "".join(f["data"]["delta"] for f in frames if f["type"] == "response.output_text.delta")
    assert text == "hello from the pool"
    assert frames[-1]["data"]["status"] == "done"
    assert frames[-1]["data"]["snapshot"]["usage"]["total_tokens"] > 0
    index = [f["data"]["status"] for f in frames if f["type"] == "session.updated"]
    assert index[0] == "running"
    assert frames[0]["data"]["sessions"] == []
    assert not [f for f in frames if fake.inference_key in json.dumps(f)]


# -- the dashboard -------------------------------------------------------------------


async def test_serve_dashboard_serves_the_page_and_the_feed(nursery: trio.Nursery) -> None:
    registry = MemoryRegistry()
    registry.add("run_a")
    with trio.fail_after(10):
        address: DashboardAddress = await nursery.start(
            functools.partial(serve_dashboard, registry, "127.0.0.1", 0, token=TOKEN)
        )
        async with httpx.AsyncClient(base_url=address.url) as http:
            page = await http.get("/")
            script = await http.get("/app.js")
            style = await http.head("/style.css")
            config = await http.get("/config.json")
            missing = await http.get("/nope")
            post = await http.post("/")
        async with open_websocket_url(f"ws://127.0.0.1:{address.feed_port}/") as ws:
            await send(ws, {"type": "auth", "token": TOKEN})
            await ready(ws)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    for element_id in ('id="sessions"', 'id="text"', 'id="tools"', 'id="usage"'):
        assert element_id in page.text
    assert TOKEN not in page.text
    assert script.status_code == 200
    assert "subscribe_index" in script.text
    assert style.status_code == 200
    assert style.content == b""
    assert config.json() == {"feed_port": address.feed_port, "feed_path": "/"}
    assert missing.status_code == 404
    assert post.status_code == 405
    assert address.url == f"http://127.0.0.1:{address.http_port}/"


async def test_dashboard_page_server_answers_garbage_with_400_and_carries_on(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(10):
        address: DashboardAddress = await nursery.start(
            functools.partial(serve_dashboard, MemoryRegistry(), "127.0.0.1", 0, token=TOKEN)
        )
        stream = await trio.open_tcp_stream("127.0.0.1", address.http_port)
        await stream.send_all(b"\x00\x01 nonsense\r\n\r\n")
        answer = b""
        while chunk := await stream.receive_some(4096):
            answer += chunk
        await stream.aclose()
        async with httpx.AsyncClient(base_url=address.url) as http:
            page = await http.get("/index.html")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert page.status_code == 200
