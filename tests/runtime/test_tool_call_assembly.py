"""Tool-call stream assembly (runtime._protocol.assembly.ToolCallAssembler): spec §2.3
``getToolCallsStream`` and acceptance scenarios B-01..B-07 of spec §8."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from runtime._protocol.assembly import ToolCallAssembler
from runtime._protocol.events import (
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ResponseCompleted,
    decode_event,
)
from runtime._protocol.sse import SSEDecoder
from runtime._protocol.wire import FunctionCallItem, OutputMessage, ParsedToolCall, Response

if TYPE_CHECKING:
    import pytest


def added(call_id: str, name: str, item_id: str | None = None) -> OutputItemAdded:
    item = FunctionCallItem(
        call_id=call_id,
        name=name,
        arguments="",
        status="in_progress",
        id=msgspec.UNSET if item_id is None else item_id,
    )
    return OutputItemAdded(item=item)


def delta(item_id: str, text: str) -> FunctionCallArgumentsDelta:
    return FunctionCallArgumentsDelta(item_id=item_id, delta=text)


def done(item_id: str, name: str, arguments: str) -> FunctionCallArgumentsDone:
    return FunctionCallArgumentsDone(item_id=item_id, name=name, arguments=arguments)


def item_done(
    call_id: str, name: str, arguments: str, item_id: str | None = None
) -> OutputItemDone:
    item = FunctionCallItem(
        call_id=call_id,
        name=name,
        arguments=arguments,
        status="completed",
        id=msgspec.UNSET if item_id is None else item_id,
    )
    return OutputItemDone(item=item)


def assemble(events: list[Any]) -> list[ParsedToolCall]:
    assembler = ToolCallAssembler()
    return [call for e in events if (call := assembler.feed(e)) is not None]


def test_b01_deltas_keyed_by_item_id_assemble_one_call() -> None:
    """B-01: added (call_abc / item_1), two deltas, arguments.done → exactly one call."""
    calls = assemble(
        [
            added("call_abc", "get_weather", "item_1"),
            delta("item_1", '{"location":'),
            delta("item_1", '"NYC"}'),
            done("item_1", "get_weather", '{"location":"NYC"}'),
            item_done("call_abc", "get_weather", '{"location":"NYC"}', "item_1"),
        ]
    )
    assert calls == [
        ParsedToolCall(id="call_abc", name="get_weather", arguments={"location": "NYC"})
    ]


def test_b02_the_yielded_id_is_the_call_id_never_the_item_id() -> None:
    """B-02."""
    [call] = assemble([added("call_xyz", "f", "fc_item_9"), done("fc_item_9", "f", "{}")])
    assert call.id == "call_xyz"


def test_b03_two_interleaved_calls_come_out_in_done_order() -> None:
    """B-03: call_weather/item_100 and call_time/item_200 with interleaved deltas."""
    calls = assemble(
        [
            added("call_weather", "get_weather", "item_100"),
            added("call_time", "get_time", "item_200"),
            delta("item_100", '{"city":'),
            delta("item_200", '{"tz":'),
            delta("item_100", '"Paris"}'),
            delta("item_200", '"UTC"}'),
            done("item_200", "get_time", '{"tz":"UTC"}'),
            done("item_100", "get_weather", '{"city":"Paris"}'),
        ]
    )
    assert calls == [
        ParsedToolCall(id="call_time", name="get_time", arguments={"tz": "UTC"}),
        ParsedToolCall(id="call_weather", name="get_weather", arguments={"city": "Paris"}),
    ]


def test_b03_on_the_recorded_style_stream() -> None:
    """B-03 over tests/data/two_function_calls.sse, decoded from bytes."""
    decoder = SSEDecoder()
    raw = (Path(__file__).resolve().parent.parent / "data" / "two_function_calls.sse").read_bytes()
    events = [decode_event(s.data) for s in decoder.feed(raw) + decoder.close() if not s.is_done]
    assert assemble(events) == [
        ParsedToolCall(id="call_time", name="get_time", arguments={"tz": "Europe/Paris"}),
        ParsedToolCall(id="call_weather", name="get_weather", arguments={"city": "Paris ☀"}),
    ]


def test_b04_an_item_id_equal_to_the_call_id_still_works() -> None:
    """B-04."""
    calls = assemble(
        [
            added("call_1", "f", "call_1"),
            delta("call_1", '{"a":'),
            delta("call_1", "1}"),
            done("call_1", "f", '{"a":1}'),
        ]
    )
    assert calls == [ParsedToolCall(id="call_1", name="f", arguments={"a": 1})]


def test_b05_an_item_without_id_is_keyed_by_call_id() -> None:
    """B-05: deltas whose item_id equals the call_id are applied."""
    assembler = ToolCallAssembler()
    assert assembler.feed(added("call_7", "f")) is None
    assert assembler.feed(delta("call_7", '{"b":')) is None
    assert assembler.feed(delta("call_7", "2}")) is None
    assert assembler.partial_arguments("call_7") == '{"b":2}'
    assert assembler.feed(done("call_7", "f", '{"b":2}')) == ParsedToolCall(
        id="call_7", name="f", arguments={"b": 2}
    )
    assert assembler.partial_arguments("call_7") is None


def test_b06_empty_arguments_are_an_empty_object() -> None:
    """B-06 (first half): arguments "" on done → {}."""
    [call] = assemble([added("c", "noargs", "i"), done("i", "noargs", "")])
    assert call.arguments == {}


def test_b06_invalid_arguments_stay_raw_and_log_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """B-06 (second half): "{bad" → the raw string, and a warning is logged."""
    with caplog.at_level(logging.WARNING, logger="runtime"):
        [call] = assemble([added("c", "f", "i"), done("i", "f", "{bad")])
    assert call.arguments == "{bad"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "'c'" in caplog.records[0].getMessage()


def test_b07_output_item_done_without_arguments_done_yields_once() -> None:
    """B-07: no arguments.done; output_item.done for a tracked call yields from the item."""
    calls = assemble(
        [
            added("call_q", "lookup", "item_q"),
            delta("item_q", '{"q":"x"}'),
            item_done("call_q", "lookup", ' {"q":"x"} ', "item_q"),
            item_done("call_q", "lookup", '{"q":"x"}', "item_q"),
        ]
    )
    assert calls == [ParsedToolCall(id="call_q", name="lookup", arguments={"q": "x"})]


def test_the_done_events_arguments_win_over_the_deltas() -> None:
    [call] = assemble(
        [added("c", "f", "i"), delta("i", '{"partial'), done("i", "f", '{"full":true}')]
    )
    assert call.arguments == {"full": True}


def test_the_done_events_name_is_used_and_a_missing_one_falls_back() -> None:
    calls = assemble(
        [
            added("c1", "old_name", "i1"),
            done("i1", "new_name", "{}"),
            added("c2", "kept_name", "i2"),
            done("i2", "", "{}"),
        ]
    )
    assert [c.name for c in calls] == ["new_name", "kept_name"]


def test_untracked_calls_and_other_events_yield_nothing() -> None:
    calls = assemble(
        [
            OutputItemAdded(item=OutputMessage(id="m")),
            OutputTextDelta(item_id="m", delta="hi"),
            delta("nobody", "{}"),
            done("nobody", "f", "{}"),
            item_done("c", "f", "{}", "never_added"),
            ResponseCompleted(response=Response(id="r", status="completed")),
        ]
    )
    assert calls == []


def test_assembly_does_not_stop_at_response_completed() -> None:
    calls = assemble(
        [
            ResponseCompleted(response=Response(id="r0", status="completed")),
            added("c", "f", "i"),
            done("i", "f", "[1]"),
        ]
    )
    assert calls == [ParsedToolCall(id="c", name="f", arguments=[1])]
