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
from typing import Any

import msgspec
from hypothesis import given, strategies as st

from actors._feed.protocol import (
    FrameCache,
    batch_payload,
    decode_command,
    text_frame,
    type_filter,
)
from runtime._protocol.events import OutputTextDelta, ToolResult, TurnStart, UnknownEvent

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
