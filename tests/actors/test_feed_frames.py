"""Property tests of the frames the feed sends (issues 15 and 16), without I/O.

For any events (text deltas with any text, tool results with any JSON value,
events of unknown types), in both envelopes, one by one or batched:

* decoding a frame gives back the event exactly as ``runtime`` encodes it
  (``decode(encode(x)) == x``), with its type and seq;
* frames come in log order, ``sequence`` growing by one (or, with a type
  filter, only the accepted events, still in order);
* the same bytes are produced for every subscriber (encoded once);
* no frame carries a secret: the feed's token and an API key given to the
  client never appear.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import msgspec
import trio
import trio.testing
from hypothesis import given, settings, strategies as st
from trio_websocket import wrap_client_stream

from actors._feed.protocol import (
    FrameCache,
    batch_payload,
    decode_command,
    text_frame,
    type_filter,
)
from actors._feed.server import EventFeed
from runtime._protocol.events import OutputTextDelta, ToolResult, TurnStart, UnknownEvent
from runtime._run.eventlog import EventLog
from runtime._run.retention import Ring
from runtime._run.status import RunSnapshot, RunUsage

if TYPE_CHECKING:
    from runtime._run.registry import RegistryUpdate

SECRETS = ("sk-or-v1-secret-api-key-0000", "feed-token-secret-1111")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
events = st.one_of(
    st.text(max_size=40).map(
        lambda t: OutputTextDelta(output_index=0, item_id="msg_1", content_index=0, delta=t)
    ),
    st.builds(
        lambda v, ts: ToolResult(tool_call_id="call_1", result=v, timestamp=ts),
        json_values,
        st.integers(0, 2**40),
    ),
    st.integers(0, 9).map(lambda n: TurnStart(turn_number=n, timestamp=n)),
    json_values.map(
        lambda v: UnknownEvent(
            type="vendor.custom",
            raw=msgspec.Raw(msgspec.json.encode({"type": "vendor.custom", "v": v})),
        )
    ),
)


def expected_data(event: Any) -> Any:
    if isinstance(event, UnknownEvent):
        return json.loads(bytes(event.raw))
    return json.loads(msgspec.json.encode(event))


@given(
    batch=st.lists(events, min_size=1, max_size=30),
    first=st.integers(0, 10_000),
    session=st.text(min_size=1, max_size=20),
    compact=st.booleans(),
)
def test_frames_decode_to_the_events_in_log_order(
    batch: list[Any], first: int, session: str, compact: bool
) -> None:
    cache = FrameCache(session)
    payloads = cache.encode(batch, first, compact=compact)
    again = FrameCache(session).encode(batch, first, compact=compact)
    frames = [json.loads(p) for p in payloads]
    assert [f["sequence"] for f in frames] == list(range(first, first + len(batch)))
    for frame, event in zip(frames, batch, strict=True):
        assert frame["data"] == expected_data(event)
        assert frame["type"] == event.type
        if compact:
            assert frame["session"] == session
        else:
            assert frame["source"] == f"/sessions/{session}"
            assert frame["id"] == f"{session}:{frame['sequence']}"
            assert frame["specversion"] == "1.0"
    # Cached: a second subscriber gets the very same bytes (up to the time stamp).
    assert cache.encode(batch, first, compact=compact) == payloads
    if compact:
        assert again == payloads
    # Batched: one JSON array of the same frames.
    assert json.loads(batch_payload(payloads)) == frames
    # Framed: an unmasked final text frame around the same payload.
    for payload in payloads[:3]:
        framed = text_frame(payload)
        assert framed[0] == 0x81
        assert framed.endswith(payload)
    text = b"".join(payloads).decode()
    assert not [s for s in SECRETS if s in text]


@given(
    batch=st.lists(events, min_size=1, max_size=30),
    types=st.lists(
        st.sampled_from(["turn.*", "tool.result", "response.output_text.delta", "vendor.*"]),
        min_size=1,
        max_size=3,
    ),
)
def test_a_type_filter_keeps_the_accepted_events_in_order(
    batch: list[Any], types: list[str]
) -> None:
    accept = type_filter(types)
    assert accept is not None
    frames = [json.loads(p) for p in FrameCache("s").encode(batch, 0, accept=accept)]
    kept = [i for i, e in enumerate(batch) if accept(e.type)]
    assert [f["sequence"] for f in frames] == kept


@given(token=st.text(min_size=1, max_size=40).map(lambda t: "tok-" + t))
def test_a_bad_auth_command_never_quotes_its_token(token: str) -> None:
    for message in (
        json.dumps({"type": "auth", "token": [token, SECRETS[1]]}),
        json.dumps({"type": "auth", "token": {"t": token}}),
        json.dumps({"type": "auth", "token": token, "id": [token]}),
    ):
        error = decode_command(message)
        shown = repr(error)
        assert SECRETS[1] not in shown
        assert token not in shown


class OneSession:
    """A ``SessionRegistry`` with one session, whose log the test fills."""

    def __init__(self) -> None:
        self.log: EventLog[Any] = EventLog()
        self.updates: EventLog[RegistryUpdate] = EventLog(retention=Ring(16))

    def sessions(self) -> list[RunSnapshot]:
        return [self.snapshot("run_p")]

    def snapshot(self, run_id: str) -> RunSnapshot:
        if run_id != "run_p":
            raise KeyError(run_id)
        return RunSnapshot(
            id=run_id,
            model="m",
            status="done" if self.log.closed else "running",
            turn=0,
            usage=RunUsage(),
            tool_calls_executed=0,
            next_seq=self.log.next_seq,
            error=None,
        )

    def events(self, run_id: str, from_seq: int = 0) -> Any:
        self.snapshot(run_id)
        return self.log.cursor(from_seq)

    def watch(self) -> Any:
        return self.updates.cursor(self.updates.next_seq)


@settings(max_examples=40, deadline=None)
@given(
    batch=st.lists(events, min_size=1, max_size=40),
    options=st.fixed_dictionaries(
        {},
        optional={
            "batch": st.booleans(),
            "envelope": st.sampled_from(["cloudevents", "compact"]),
            "types": st.sampled_from([["turn.*"], ["tool.result", "vendor.custom"]]),
            "after": st.integers(-1, 5),
        },
    ),
    split=st.integers(0, 40),
)
async def test_the_frames_a_live_server_sends_decode_to_the_log_in_order(
    batch: list[Any], options: dict[str, Any], split: int
) -> None:
    """Issue 15: decode(encode(x)) == x, log order, no secret, through a real connection.

    Part of the events is in the log before the client subscribes (replay), the
    rest arrives while it follows (live).
    """
    registry = OneSession()
    registry.log.extend(batch[:split])
    feed = EventFeed(registry, token=SECRETS[1], heartbeat_interval=None)
    after = min(options.get("after", -1), registry.log.next_seq - 1)
    accept = type_filter(options.get("types"))
    messages: list[str] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            client_stream, server_stream = trio.testing.memory_stream_pair()
            nursery.start_soon(feed.serve_stream, server_stream)
            ws = await wrap_client_stream(
                nursery,
                client_stream,  # type: ignore[arg-type]  # any trio.abc.Stream works
                "feed.test",
                "/",
                extra_headers=[(b"authorization", f"Bearer {SECRETS[1]}".encode())],
            )
            command = {"type": "subscribe", "session": "run_p", **options, "after": after}
            await ws.send_message(json.dumps(command))
            registry.log.extend(batch[split:])
            registry.log.close()
            while True:
                message = await ws.get_message()
                assert isinstance(message, str)
                messages.append(message)
                if json.loads(message) and '"session.end"' in message:
                    break
            await ws.aclose()
            nursery.cancel_scope.cancel()
    frames: list[dict[str, Any]] = []
    for message in messages:
        decoded = json.loads(message)
        frames += decoded if isinstance(decoded, list) else [decoded]
    evented = [f for f in frames if "data" in f and f.get("type") not in CONTROL]
    wanted = [
        (seq, e)
        for seq, e in enumerate(batch)
        if seq > after and (accept is None or accept(e.type))
    ]
    assert [f["sequence"] for f in evented] == [seq for seq, _ in wanted]
    for frame, (_, event) in zip(evented, wanted, strict=True):
        assert frame["type"] == event.type
        assert frame["data"] == expected_data(event)
    assert frames[-1]["type"] == "session.end"
    assert not [m for m in messages for s in SECRETS if s in m]


CONTROL = frozenset({"feed.ready", "session.subscribed", "session.end", "resync", "feed.error"})
