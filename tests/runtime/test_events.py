"""Tests for runtime._protocol.events: decoding the recorded-style streams of
tests/data, the unknown-type and error fallbacks, the run-level events, and
the item snapshotter (getItemsStream handlers, spec §2.3)."""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin

import msgspec
import pytest

from runtime._base.errors import RemoteProtocolError
from runtime._protocol import wire as _wire
from runtime._protocol.assembly import ItemSnapshotter
from runtime._protocol.events import (
    TERMINAL_EVENTS,
    ContentPartAdded,
    ContentPartDone,
    ErrorEvent,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    ReasoningSummaryPartAdded,
    ReasoningSummaryPartDone,
    ReasoningSummaryTextDelta,
    ReasoningSummaryTextDone,
    ReasoningTextDelta,
    ReasoningTextDone,
    ResponseCompleted,
    ResponseCreated,
    ResponseErrorEvent,
    ResponseFailed,
    ResponseIncomplete,
    ResponseInProgress,
    RunEvent,
    ServerEvent,
    StreamEvent,
    ToolCallOutput,
    ToolPreliminaryResult,
    ToolResult,
    TurnEnd,
    TurnStart,
    UnknownEvent,
    WebSearchCallCompleted,
    WebSearchCallInProgress,
    WebSearchCallSearching,
    _TaggedServerEvent,
    decode_event,
)
from runtime._protocol.sse import SSEDecoder
from runtime._protocol.wire import (
    FunctionCallItem,
    FunctionCallOutputItem,
    OutputMessage,
    OutputText,
    ReasoningItem,
    ReasoningText,
    Response,
    SummaryText,
    UnknownItem,
    WebSearchCallItem,
)

if TYPE_CHECKING:
    from tests.conftest import OpenAPISchemas

DATA = Path(__file__).resolve().parent.parent / "data"


def payloads(name: str) -> list[bytes]:
    """The data payloads of a fixture, up to (not including) ``[DONE]``."""
    decoder = SSEDecoder()
    out: list[bytes] = []
    for sse in decoder.feed((DATA / name).read_bytes()) + decoder.close():
        if sse.is_done:
            break
        out.append(sse.data)
    return out


def events(name: str) -> list[ServerEvent]:
    return [decode_event(data) for data in payloads(name)]


def types_of(evs: list[Any]) -> list[type]:
    return [type(e) for e in evs]


# ---------------------------------------------------------------------------
# recorded-style fixtures
# ---------------------------------------------------------------------------


def test_text_answer_fixture_decodes_to_typed_events() -> None:
    evs = events("text_answer.sse")
    assert types_of(evs) == [
        ResponseCreated,
        ResponseInProgress,
        OutputItemAdded,
        ContentPartAdded,
        *[OutputTextDelta] * 4,
        OutputTextDone,
        ContentPartDone,
        OutputItemDone,
        ResponseCompleted,
    ]
    numbers = [e.sequence_number for e in evs if not isinstance(e, UnknownEvent)]
    assert numbers == list(range(len(evs)))
    text = "".join(e.delta for e in evs if isinstance(e, OutputTextDelta))
    assert text == "Bonjour ! Un café ☕ coûte 3 €. 👋"
    done = evs[-1]
    assert isinstance(done, ResponseCompleted)
    assert done.response.status == "completed"
    assert done.response.output_text == text
    assert done.response.usage is not None
    assert done.response.usage.total_tokens == 21


def test_text_answer_fixture_has_keep_alives_and_done() -> None:
    raw = (DATA / "text_answer.sse").read_bytes()
    assert raw.startswith(b": \n")
    assert raw.endswith(b"data: [DONE]\n\n")


def test_reasoning_fixture_decodes_reasoning_then_message() -> None:
    evs = events("reasoning_text.sse")
    assert types_of(evs)[:8] == [
        ResponseCreated,
        ResponseInProgress,
        OutputItemAdded,
        ReasoningTextDelta,
        ReasoningTextDelta,
        ReasoningTextDelta,
        ReasoningTextDone,
        OutputItemDone,
    ]
    reasoning = "".join(e.delta for e in evs if isinstance(e, ReasoningTextDelta))
    assert reasoning == "The user asks for 2+2. That is 4."
    final = evs[-1]
    assert isinstance(final, ResponseCompleted)
    item, message = final.response.output
    assert isinstance(item, ReasoningItem)
    assert item.content == [ReasoningText(text=reasoning)]
    assert item.signature == "EvcBCkgIChABGAIqQKkSDbRuVEQU"
    assert isinstance(message, OutputMessage)
    assert message.content == [OutputText(text="2 + 2 = 4")]


def test_function_call_fixture_keeps_the_reasoning_item_open_past_the_calls() -> None:
    evs = events("two_function_calls.sse")
    kinds = types_of(evs)
    assert kinds.count(FunctionCallArgumentsDelta) == 5
    assert kinds.count(FunctionCallArgumentsDone) == 2
    assert [ReasoningSummaryPartAdded, ReasoningSummaryTextDelta] == kinds[3:5]
    # The wire-protocol §3.6 quirk: the reasoning item is done after both calls.
    assert kinds[-6:] == [
        FunctionCallArgumentsDone,
        OutputItemDone,
        ReasoningSummaryTextDone,
        ReasoningSummaryPartDone,
        OutputItemDone,
        ResponseCompleted,
    ]
    final = evs[-1]
    assert isinstance(final, ResponseCompleted)
    assert [type(i) for i in final.response.output] == [
        ReasoningItem,
        FunctionCallItem,
        FunctionCallItem,
    ]


def test_failed_fixture_ends_with_response_failed_and_its_detail() -> None:
    evs = events("response_failed.sse")
    final = evs[-1]
    assert isinstance(final, ResponseFailed)
    assert isinstance(final, TERMINAL_EVENTS)
    assert final.response.status == "failed"
    assert final.response.error is not None
    assert final.response.error.code == "server_error"
    assert final.response.error.message == "Upstream provider returned an error"
    assert final.response.error_type == "provider_unavailable"
    assert not any(isinstance(e, ResponseCompleted) for e in evs)


def test_unknown_events_and_items_pass_through_between_known_ones() -> None:
    evs = events("unknown_events.sse")
    unknown = [e for e in evs if isinstance(e, UnknownEvent)]
    assert [e.type for e in unknown] == [
        "response.fusion_call.in_progress",
        "response.reticulating_splines.delta",
    ]
    assert json.loads(bytes(unknown[1].raw))["hint"] == {"nested": [1, 2, 3]}
    assert types_of(evs)[3:6] == [
        WebSearchCallInProgress,
        WebSearchCallSearching,
        WebSearchCallCompleted,
    ]
    final = evs[-1]
    assert isinstance(final, ResponseCompleted)
    search, datetime_item, message = final.response.output
    assert isinstance(search, WebSearchCallItem)
    assert isinstance(datetime_item, UnknownItem)
    assert datetime_item.type == "openrouter:datetime"
    assert datetime_item["timezone"] == "UTC"
    assert isinstance(message, OutputMessage)


FIXTURES = sorted(p.name for p in DATA.glob("*.sse"))
# The spec's ``OutputItems`` is an allOf of the base item union and its
# extension, so it rejects every OpenRouter server-tool item; events that
# carry one cannot be validated against ``StreamEvents``.
_SPEC_CANNOT_VALIDATE = {"openrouter:datetime"}


def _carries_server_tool_item(obj: dict[str, Any]) -> bool:
    items = [obj.get("item"), *((obj.get("response") or {}).get("output") or [])]
    return any(isinstance(i, dict) and i.get("type") in _SPEC_CANNOT_VALIDATE for i in items)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_payloads_validate_against_the_spec(name: str, openapi: OpenAPISchemas) -> None:
    mapping = openapi.document["components"]["schemas"]["StreamEvents"]["discriminator"]["mapping"]
    checked = 0
    for data in payloads(name):
        obj = json.loads(data)
        if obj["type"] not in mapping or _carries_server_tool_item(obj):
            continue
        openapi.validate("StreamEvents", obj)
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("name", FIXTURES)
def test_reencoded_events_validate_and_round_trip(name: str, openapi: OpenAPISchemas) -> None:
    for event in events(name):
        if isinstance(event, UnknownEvent):
            continue  # encodes as {"type", "raw"}: a pass-through, not a round trip
        encoded = msgspec.json.encode(event)
        assert decode_event(encoded) == event
        obj = json.loads(encoded)
        if _carries_server_tool_item(obj):
            continue
        if "response" in obj:
            # ``usage``/``error_type`` re-encode as null when absent, which the
            # spec's allOf rejects (the live server sends ``usage: null`` too).
            continue
        openapi.validate("StreamEvents", obj)


# ---------------------------------------------------------------------------
# decode_event fallbacks
# ---------------------------------------------------------------------------


def test_an_unknown_type_becomes_an_unknown_event_with_the_raw_payload() -> None:
    data = b'{"type":"response.brand_new.delta","x":{"y":[1,2]},"sequence_number":3}'
    event = decode_event(data)
    assert isinstance(event, UnknownEvent)
    assert event.type == "response.brand_new.delta"
    assert bytes(event.raw) == data


def test_a_known_type_with_a_broken_payload_is_a_protocol_error() -> None:
    with pytest.raises(
        RemoteProtocolError,
        match=r"^the server sent a 'response\.output_text\.delta' event that does not match "
        r"its schema \(Object missing required field `delta`\)$",
    ):
        decode_event(b'{"type":"response.output_text.delta","item_id":"m"}')


def test_a_known_item_type_with_a_broken_item_is_a_protocol_error() -> None:
    with pytest.raises(
        RemoteProtocolError, match=r"'response\.output_item\.added' event .*call_id"
    ):
        decode_event(b'{"type":"response.output_item.added","item":{"type":"function_call"}}')


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[DONE]", r"^the server sent an event payload that is not a JSON object: '\[DONE\]'$"),
        (b'{"type": "resp', r"^the server sent an event payload that is not JSON: "),
        (b"[1, 2]", r"^the server sent an event payload that is not a JSON object: '\[1, 2\]'$"),
        (b'{"delta":"x"}', r"^the server sent an event without a string 'type': "),
        (b'{"type":7}', r"^the server sent an event without a string 'type': "),
    ],
)
def test_payloads_that_are_not_events_are_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_event(data)


def test_the_error_message_preview_is_truncated() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_event(b"x" * 10_000)
    assert len(str(info.value)) < 300


def test_flat_error_event_decodes() -> None:
    event = decode_event(
        b'{"type":"error","code":"rate_limit_exceeded","message":"slow down",'
        b'"param":null,"sequence_number":2}'
    )
    assert isinstance(event, ErrorEvent)
    assert (event.error_code(), event.error_message()) == ("rate_limit_exceeded", "slow down")
    assert event.sequence_number == 2


def test_nested_error_event_decodes() -> None:
    event = decode_event(b'{"type":"error","error":{"code":"server_error","message":"boom"}}')
    assert isinstance(event, ErrorEvent)
    assert (event.error_code(), event.error_message()) == ("server_error", "boom")


def test_response_error_event_decodes() -> None:
    event = decode_event(b'{"type":"response.error","error":{"code":"x","message":"y"}}')
    assert isinstance(event, ResponseErrorEvent)
    assert (event.error_code(), event.error_message()) == ("x", "y")


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        (
            b'{"id":"gen-1","object":"chat.completion.chunk","error":{"code":429,'
            b'"message":"Rate limit exceeded","metadata":{"error_type":"rate_limit_exceeded"}},'
            b'"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}',
            429,
            "Rate limit exceeded",
        ),
        (b'{"error":"upstream went away"}', None, "upstream went away"),
        (b'{"error":{"code":[1],"message":2}}', None, '{"code":[1],"message":2}'),
    ],
)
def test_a_typeless_payload_with_an_error_key_is_an_error_event(
    data: bytes, code: int | None, message: str
) -> None:
    event = decode_event(data)
    assert isinstance(event, ErrorEvent)
    assert event.error_code() == code
    assert event.error_message() == message


def test_hand_written_events_without_bookkeeping_fields_decode() -> None:
    event = decode_event(b'{"type":"response.output_text.delta","item_id":"m","delta":"x"}')
    assert event == OutputTextDelta(item_id="m", delta="x")
    assert (event.sequence_number, event.output_index, event.content_index) == (-1, -1, -1)
    assert event.logprobs == ()


def test_unknown_fields_in_known_events_are_ignored() -> None:
    event = decode_event(
        b'{"type":"response.output_text.delta","item_id":"m","delta":"x","obfuscation":"abc"}'
    )
    assert event == OutputTextDelta(item_id="m", delta="x")


def test_content_part_with_reasoning_text_decodes() -> None:
    event = decode_event(
        b'{"type":"response.content_part.added","item_id":"rs","output_index":0,'
        b'"content_index":0,"part":{"type":"reasoning_text","text":""}}'
    )
    assert isinstance(event, ContentPartAdded)
    assert event.part == ReasoningText(text="")


def test_decoded_events_are_not_tracked_by_the_cycle_collector() -> None:
    event = decode_event(b'{"type":"response.output_text.delta","item_id":"m","delta":"x"}')
    assert not gc.is_tracked(event)


# ---------------------------------------------------------------------------
# the event types themselves
# ---------------------------------------------------------------------------

_TAGGED = sorted(get_args(_TaggedServerEvent) + get_args(RunEvent), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _TAGGED, ids=lambda c: c.__name__)
def test_type_property_is_the_wire_tag(cls: type[StreamEvent]) -> None:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    fields = {f.name: _placeholder(f.type) for f in msgspec.structs.fields(cls) if f.required}
    event = cls(**fields)
    assert event.type == tag
    assert json.loads(msgspec.json.encode(event))["type"] == tag


_PLACEHOLDERS: dict[Any, Any] = {
    str: "s",
    int: 1,
    Any: None,
    Response: Response(id="r", status="completed"),
    SummaryText: SummaryText(text="t"),
    FunctionCallOutputItem: FunctionCallOutputItem(call_id="c", output="o"),
    _wire.ResponseError: _wire.ResponseError(code="c", message="m"),
    _wire._ContentMarker: ReasoningText(text=""),
    _wire._ItemMarker: OutputMessage(id="m"),
}


def _placeholder(tp: Any) -> Any:
    return {} if get_origin(tp) is dict else _PLACEHOLDERS[tp]


def test_server_event_class_names_follow_the_wire_names() -> None:
    for cls in get_args(_TaggedServerEvent):
        tag = cls.__struct_config__.tag
        assert isinstance(tag, str)
        camel = "".join(word.capitalize() for word in re.split(r"[._]", tag))
        assert cls.__name__ in {camel, camel.removeprefix("Response"), camel + "Event"}


def test_terminal_events_are_completed_incomplete_and_failed() -> None:
    expected = (ResponseCompleted, ResponseIncomplete, ResponseFailed)
    assert expected == TERMINAL_EVENTS


def test_run_level_events_encode_like_stream_events() -> None:
    output = FunctionCallOutputItem(call_id="call_1", output="21C")
    encoded = [
        json.loads(msgspec.json.encode(e))
        for e in (
            TurnStart(turn_number=0, timestamp=1_700_000_000_000),
            ToolPreliminaryResult(tool_call_id="call_1", result={"p": 1}, timestamp=1),
            ToolResult(tool_call_id="call_1", result="21C", timestamp=2),
            ToolResult(tool_call_id="call_1", result="21C", preliminary_results=[1], timestamp=3),
            ToolCallOutput(output=output, timestamp=4),
            TurnEnd(turn_number=0, timestamp=5),
        )
    ]
    assert encoded == [
        {"type": "turn.start", "turn_number": 0, "timestamp": 1_700_000_000_000},
        {
            "type": "tool.preliminary_result",
            "tool_call_id": "call_1",
            "result": {"p": 1},
            "timestamp": 1,
        },
        {"type": "tool.result", "tool_call_id": "call_1", "result": "21C", "timestamp": 2},
        {
            "type": "tool.result",
            "tool_call_id": "call_1",
            "result": "21C",
            "timestamp": 3,
            "preliminary_results": [1],
        },
        {
            "type": "tool.call_output",
            "output": {"type": "function_call_output", "call_id": "call_1", "output": "21C"},
            "timestamp": 4,
        },
        {"type": "turn.end", "turn_number": 0, "timestamp": 5},
    ]


def test_run_level_types_from_the_server_are_unknown_events() -> None:
    event = decode_event(b'{"type":"turn.start","turn_number":0,"timestamp":1}')
    assert isinstance(event, UnknownEvent)


# ---------------------------------------------------------------------------
# ItemSnapshotter (getItemsStream item handlers)
# ---------------------------------------------------------------------------


def snapshots(evs: list[Any]) -> list[Any]:
    snapshotter = ItemSnapshotter()
    return [s for e in evs if (s := snapshotter.feed(e)) is not None]


def test_text_snapshots_accumulate_the_message_text() -> None:
    snaps = snapshots(events("text_answer.sse"))
    assert snaps[0] == OutputMessage(id="msg_tmp_htw7s2t5pnj", status="in_progress")
    texts = [s.content[0].text for s in snaps[1:-1]]
    assert texts == [
        "Bonjour",
        "Bonjour ! Un café",
        "Bonjour ! Un café ☕ coûte",
        "Bonjour ! Un café ☕ coûte 3 €. 👋",
    ]
    assert all(s.status == "in_progress" for s in snaps[:-1])
    assert snaps[-1].status == "completed"  # the output_item.done item, unchanged


def test_function_call_snapshots_accumulate_arguments_per_item() -> None:
    snaps = snapshots(events("two_function_calls.sse"))
    calls = [s for s in snaps if isinstance(s, FunctionCallItem)]
    weather = [c.arguments for c in calls if c.call_id == "call_weather"]
    time = [c.arguments for c in calls if c.call_id == "call_time"]
    assert weather == ["", '{"city":', '{"city":"Paris', '{"city":"Paris ☀"}', '{"city":"Paris ☀"}']
    assert time == ["", '{"tz":"Europe/', '{"tz":"Europe/Paris"}', '{"tz":"Europe/Paris"}']
    assert calls[2].id == "fc_item_100"  # differs from call_id, so it is kept


def test_function_call_snapshot_omits_an_id_equal_to_call_id() -> None:
    snapshotter = ItemSnapshotter()
    added = OutputItemAdded(item=FunctionCallItem(call_id="c1", name="f", arguments=""))
    assert snapshotter.feed(added) == FunctionCallItem(
        call_id="c1", name="f", arguments="", status="in_progress"
    )
    snap = snapshotter.feed(FunctionCallArgumentsDelta(item_id="c1", delta="{}"))
    assert snap == FunctionCallItem(call_id="c1", name="f", arguments="{}", status="in_progress")


def test_reasoning_snapshots_put_the_text_in_the_summary() -> None:
    snaps = snapshots(events("reasoning_text.sse"))
    reasoning = [s for s in snaps if isinstance(s, ReasoningItem)]
    assert reasoning[0] == ReasoningItem(id="rs_tmp_r1", status="in_progress")
    assert [r.summary for r in reasoning[1:4]] == [
        [SummaryText(text="The user asks")],
        [SummaryText(text="The user asks for 2+2.")],
        [SummaryText(text="The user asks for 2+2. That is 4.")],
    ]
    assert reasoning[-1].status == "completed"


def test_hosted_and_unknown_items_pass_through() -> None:
    snaps = snapshots(events("unknown_events.sse"))
    assert isinstance(snaps[0], WebSearchCallItem)
    assert snaps[0].status == "in_progress"
    assert isinstance(snaps[2], UnknownItem)


def test_tool_call_output_yields_its_item() -> None:
    output = FunctionCallOutputItem(call_id="c", output="ok")
    assert ItemSnapshotter().feed(ToolCallOutput(output=output, timestamp=0)) is output


def test_empty_deltas_and_unrelated_events_yield_nothing() -> None:
    snapshotter = ItemSnapshotter()
    snapshotter.feed(OutputItemAdded(item=OutputMessage(id="m")))
    assert snapshotter.feed(OutputTextDelta(item_id="m", delta="")) is None
    assert snapshotter.feed(OutputTextDone(item_id="m", text="")) is None
    assert snapshotter.feed(ReasoningTextDone(item_id="m", text="")) is None


def test_a_terminal_event_resets_the_items_in_progress() -> None:
    snapshotter = ItemSnapshotter()
    snapshotter.feed(OutputItemAdded(item=OutputMessage(id="m")))
    snapshotter.feed(OutputTextDelta(item_id="m", delta="turn one"))
    snapshotter.feed(ResponseIncomplete(response=Response(id="r", status="incomplete")))
    snap = snapshotter.feed(OutputTextDelta(item_id="m", delta="fresh"))
    assert isinstance(snap, OutputMessage)
    assert snap.content == [OutputText(text="fresh")]


def test_text_for_an_unseen_item_starts_a_message() -> None:
    snap = ItemSnapshotter().feed(OutputTextDelta(item_id="m9", delta="hi"))
    assert snap == OutputMessage(id="m9", status="in_progress", content=[OutputText(text="hi")])


def test_arguments_for_an_unseen_call_are_ignored() -> None:
    assert ItemSnapshotter().feed(FunctionCallArgumentsDelta(item_id="fc", delta="{")) is None
