"""Tests for runtime._protocol.sse: the sans-io SSE decoder.

Every example is decoded three ways (whole, one byte at a time, and at
hypothesis-chosen split points) and compared with a deliberately naive
reference decoder written from the WHATWG rules, so a fast-path shortcut in
the real decoder cannot hide a framing bug.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from runtime._base.errors import ConfigurationError, EventTooLargeError, RemoteProtocolError
from runtime._protocol.sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURES = sorted(DATA.glob("*.sse"))
_BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def reference_decode(stream: bytes) -> list[ServerSentEvent]:
    """The WHATWG algorithm, line by line, with the module's EOF rule (rule 6)."""
    if stream.startswith(_BOM):
        stream = stream[3:]
    *lines, tail = re.split(rb"\r\n|\r|\n", stream)
    if tail:
        lines.append(tail)
    events: list[ServerSentEvent] = []
    data: list[bytes] = []
    has_data = False
    event: str | None = None
    retry: int | None = None
    last_id: str | None = None

    def dispatch() -> None:
        if has_data:
            events.append(ServerSentEvent(b"\n".join(data), event, last_id, retry))

    for line in lines:
        if line == b"":
            dispatch()
            data, has_data, event, retry = [], False, None, None
            continue
        if line.startswith(b":"):
            continue
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
            has_data = True
        elif name == b"event":
            event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value and all(48 <= c <= 57 for c in value):
            retry = int(value)
    dispatch()
    return events


def feed_split(stream: bytes, cuts: list[int]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        events += decoder.feed(stream[start:cut])
        start = cut
    events += decoder.close()
    return events


def feed_whole(stream: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(stream) + decoder.close()


def feed_bytewise(stream: bytes) -> list[ServerSentEvent]:
    return feed_split(stream, list(range(len(stream))))


def decode_every_way(stream: bytes) -> list[ServerSentEvent]:
    """Decode whole and byte-at-a-time; assert both agree with the reference."""
    whole = feed_whole(stream)
    assert feed_bytewise(stream) == whole
    assert reference_decode(stream) == whole
    return whole


def ev(data: bytes, event: str | None = None, id: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(data, event, id)


# ---------------------------------------------------------------------------
# framing
# ---------------------------------------------------------------------------


def test_one_line_data_events_are_dispatched_at_the_blank_line() -> None:
    assert decode_every_way(b'data: {"a":1}\n\ndata: {"b":2}\n\n') == [
        ev(b'{"a":1}'),
        ev(b'{"b":2}'),
    ]


def test_an_event_is_not_returned_before_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == [ev(b"x")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_line_ending_frames_events(eol: bytes) -> None:
    stream = b"data: a" + eol + eol + b"data: b" + eol + b"data: c" + eol + eol
    assert decode_every_way(stream) == [ev(b"a"), ev(b"b\nc")]


def test_mixed_line_endings_in_one_stream() -> None:
    stream = b"data: a\r\n\ndata: b\r\r: c\n\ndata: d\n\r\n"
    assert decode_every_way(stream) == [ev(b"a"), ev(b"b"), ev(b"d")]


def test_crlf_split_across_chunks_is_one_line_break() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    # A CR then LF across chunks is one break, so this LF does not end the event.
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r\n") == [ev(b"a\nb")]


def test_cr_at_chunk_end_followed_by_cr_is_two_line_breaks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\rdata: b\r\r") == [ev(b"a"), ev(b"b")]


def test_comment_lines_are_skipped_anywhere() -> None:
    stream = b": \n: \n\ndata: a\n: keep-alive\ndata: b\n\n:\n\n: OPENROUTER PROCESSING\n\n"
    assert decode_every_way(stream) == [ev(b"a\nb")]


def test_only_comments_yield_nothing() -> None:
    assert decode_every_way(b": \n\n: \n\n") == []


def test_exactly_one_leading_space_is_stripped() -> None:
    assert decode_every_way(b"data:  two\n\ndata:none\n\ndata:\n\n") == [
        ev(b" two"),
        ev(b"none"),
        ev(b""),
    ]


def test_a_field_without_colon_has_an_empty_value() -> None:
    assert decode_every_way(b"data\ndata\n\n") == [ev(b"\n")]


def test_events_without_data_are_skipped() -> None:
    assert decode_every_way(b"event: ping\n\nretry: 5\n\nid: 1\n\ndata: x\n\n") == [
        ev(b"x", id="1")
    ]


def test_unknown_fields_are_ignored() -> None:
    assert decode_every_way(b"foo: bar\ndata: x\nDATA: y\n\n") == [ev(b"x")]


def test_event_field_names_the_event_and_resets_after_dispatch() -> None:
    assert decode_every_way(b"event: add\ndata: 1\n\ndata: 2\n\n") == [
        ev(b"1", event="add"),
        ev(b"2"),
    ]


def test_last_event_id_persists_until_changed() -> None:
    stream = b"id: 7\ndata: a\n\ndata: b\n\nid:\ndata: c\n\n"
    assert decode_every_way(stream) == [ev(b"a", id="7"), ev(b"b", id="7"), ev(b"c", id="")]


def test_id_containing_nul_is_ignored() -> None:
    assert decode_every_way(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        ev(b"a", id="1"),
        ev(b"b", id="1"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"1500", 1500), (b"0", 0), (b"15s", None), (b"", None), (b"-1", None), (b" 1", None)],
)
def test_retry_counts_only_when_all_digits(value: bytes, expected: int | None) -> None:
    # b" 1" arrives as "retry:  1": one space is stripped and " 1" is not all digits.
    [event] = decode_every_way(b"retry: " + value + b"\ndata: x\n\n")
    assert event.retry == expected


@pytest.mark.parametrize(
    "stream",
    [
        b"data: a\n\ndata: \n\ndata: b\n\n",
        b"data: a\n\n\ndata: b\n\ndata: c\n\n",
        b": c\n\ndata: a\n\ndata: b\n\n",
        b"data: a\n\nid: 5\ndata: b\n\ndata: c\n\ndata: d",
        b"data: a\n\ndata: b\ndata: c\n\ndata: d\n: x\n\ndata: e\n\ndata: ",
        b"data: a\n\ndata:b\n\ndata: c\n\nevent: e\n\ndata: d\n\n",
    ],
)
def test_chunks_mixing_one_line_and_other_blocks(stream: bytes) -> None:
    """The split fast path hands every piece that is not one payload back to the
    block reader; the result is the reference's, whatever the mix."""
    assert decode_every_way(stream) == reference_decode(stream)
    assert len(reference_decode(stream)) >= 2
    # Long enough to take the split path when fed whole.
    long = stream.removesuffix(b"data: ").removesuffix(b"data: d") * 60
    assert len(long) > 1024
    assert feed_whole(long) == reference_decode(long)


def test_blank_lines_between_events_dispatch_nothing() -> None:
    assert decode_every_way(b"\n\n\ndata: a\n\n\n\n\ndata: b\n\n\n") == [ev(b"a"), ev(b"b")]


def test_a_leading_utf8_bom_is_dropped_once() -> None:
    assert decode_every_way(_BOM + b"data: a\n\n") == [ev(b"a")]
    # Only at the very start of the stream.
    assert decode_every_way(b"data: a\n\n" + _BOM + b"data: b\n\n") == [ev(b"a")]


def test_bom_split_across_chunks_is_dropped() -> None:
    assert feed_split(_BOM + b"data: a\n\n", [1, 2]) == [ev(b"a")]


def test_payload_bytes_are_not_decoded() -> None:
    payload = "café ☕ 👋".encode() + b"\xff"
    assert decode_every_way(b"data: " + payload + b"\n\n") == [ev(payload)]


def test_done_sentinel_is_recognised() -> None:
    [done, other] = decode_every_way(b"data: [DONE]\n\ndata: [DONE] \n\n")
    assert done.is_done
    assert not other.is_done


def test_a_big_event_in_many_small_chunks_is_reassembled() -> None:
    payload = b"x" * 50_000 + b"\xe2\x98\x95"
    stream = b"data: " + payload + b"\r\n\r\ndata: tail\r\n\r\n"
    assert feed_split(stream, list(range(0, len(stream), 7))) == [ev(payload), ev(b"tail")]


def test_feed_accepts_bytearray_and_memoryview() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(bytearray(b"data: a\n\n")) + decoder.feed(memoryview(b"data: b\n\n"))
    assert events == [ev(b"a"), ev(b"b")]
    assert all(type(e.data) is bytes for e in events)


def test_empty_chunks_change_nothing() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n\n") == [ev(b"a")]


# ---------------------------------------------------------------------------
# end of input
# ---------------------------------------------------------------------------


def test_close_dispatches_an_unterminated_last_event_with_data() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: [DONE]") == [ev(b"a")]
    assert decoder.close() == [ev(b"[DONE]")]


def test_close_dispatches_a_last_event_missing_only_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\ndata: b\n") == []
    assert decoder.close() == [ev(b"a\nb")]


def test_close_drops_a_trailing_event_without_data() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\nevent: x\n: comment")
    assert decoder.close() == []


def test_close_with_nothing_buffered_returns_nothing_and_is_idempotent() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n")
    assert decoder.close() == []
    assert decoder.close() == []


def test_feed_after_close_is_a_caller_bug() -> None:
    decoder = SSEDecoder()
    decoder.close()
    with pytest.raises(RuntimeError, match=r"^SSEDecoder\.feed\(\) was called after close\(\)$"):
        decoder.feed(b"data: a\n\n")


# ---------------------------------------------------------------------------
# recorded-style fixtures and properties
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fixture_decodes_the_same_whole_and_byte_at_a_time(path: Path) -> None:
    events = decode_every_way(path.read_bytes())
    assert events
    assert all(e.data.startswith(b"{") or e.is_done for e in events)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_fixture_decodes_the_same_at_any_split_points(path: Path, data: st.DataObject) -> None:
    stream = path.read_bytes()
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=40), label="cuts")
    assert feed_split(stream, cuts) == feed_whole(stream)


_EOL = st.sampled_from([b"\n", b"\r\n", b"\r"])
_VALUE = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12
).map(lambda s: s.encode())
_LINE = st.one_of(
    _VALUE.map(lambda v: b"data: " + v),
    _VALUE.map(lambda v: b"data:" + v),
    st.just(b"data"),
    _VALUE.map(lambda v: b":" + v),
    _VALUE.map(lambda v: b"event: " + v),
    st.one_of(_VALUE, st.just(b"a\x00b")).map(lambda v: b"id: " + v),
    st.one_of(st.integers(0, 10**6).map(lambda i: str(i).encode()), _VALUE).map(
        lambda v: b"retry: " + v
    ),
    _VALUE.map(lambda v: b"x-unknown: " + v),
    st.just(b""),
)


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    """Streams mixing comments, multi-line data, every field and every line ending."""
    parts = [_BOM] if draw(st.booleans()) else []
    for line in draw(st.lists(_LINE, max_size=30)):
        parts += [line, draw(_EOL)]
    stream = b"".join(parts)
    if stream and draw(st.booleans()):
        # Past the decoder's split threshold, so that a whole-stream feed
        # takes the split fast path too.
        stream *= 1 + 1100 // len(stream)
    if draw(st.booleans()):
        stream += draw(_LINE)  # an unterminated last line
    return stream


@settings(max_examples=300, deadline=None)
@given(stream=sse_streams(), data=st.data())
def test_generated_streams_match_the_reference_at_any_split(
    stream: bytes, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=20), label="cuts")
    expected = reference_decode(stream)
    assert feed_whole(stream) == expected
    assert feed_split(stream, cuts) == expected
    assert feed_bytewise(stream) == expected


# ---------------------------------------------------------------------------
# the size limit (max_event_size)
# ---------------------------------------------------------------------------


def test_a_line_that_never_ends_raises_once_past_the_limit() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    decoder.feed(b"data: ")
    with pytest.raises(EventTooLargeError, match=r"1000 bytes \(max_event_size\)") as caught:
        for _ in range(100):
            decoder.feed(b"x" * 100)
    assert caught.value.limit == 1000
    assert isinstance(caught.value, RemoteProtocolError)
    assert len(decoder._buf) == 0  # nothing kept after the error
    with pytest.raises(RuntimeError):
        decoder.feed(b"\n\n")


def test_many_lines_without_a_blank_line_count_as_one_event() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    with pytest.raises(EventTooLargeError):
        for _ in range(200):
            decoder.feed(b"data: 0123456789\n")


def test_an_event_that_ends_in_a_later_chunk_past_the_limit_raises() -> None:
    decoder = SSEDecoder(max_event_size=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(EventTooLargeError):
        decoder.feed(b"y" * 20 + b"\n\n")


@pytest.mark.parametrize("split", [1, 7, 64, 4096])
def test_events_up_to_the_limit_pass_however_they_are_split(split: int) -> None:
    event = b"data: " + b"x" * 94 + b"\n\n"  # 100 bytes before the blank line
    stream = event * 20
    decoder = SSEDecoder(max_event_size=100)
    got = [e for i in range(0, len(stream), split) for e in decoder.feed(stream[i : i + split])]
    assert [e.data for e in got] == [b"x" * 94] * 20


def test_keep_alive_comments_never_accumulate() -> None:
    decoder = SSEDecoder(max_event_size=64)
    for _ in range(10_000):
        assert decoder.feed(b": OPENROUTER PROCESSING\n\n") == []
    assert decoder.feed(b'data: {"a":1}\n\n') == [ServerSentEvent(b'{"a":1}')]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1", True, None])
def test_max_event_size_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_event_size"):
        SSEDecoder(max_event_size=bad)  # type: ignore[arg-type]  # wrong on purpose


def test_the_default_limit_is_16_mib() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 16 * 1024 * 1024
    assert SSEDecoder()._limit == DEFAULT_MAX_EVENT_SIZE
