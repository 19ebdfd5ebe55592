"""ConversationState: the document, decisions, settling a paused round (C-01, C-02, C-10)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from runtime import (
    CONVERSATION_STATE_VERSION,
    ConfigurationError,
    ConversationState,
    InvalidStateError,
    ParsedToolCall,
    RunUsage,
    UnsentToolResult,
    UnsupportedStateVersionError,
    decode_state,
    encode_state,
    new_conversation_state,
)
from runtime._agent.state import (
    DEFAULT_REJECTION_REASON,
    check_decisions,
    check_known_ids,
    output_item,
    pending_answers,
    settle,
    touch,
)


def _call(call_id: str, name: str = "t") -> ParsedToolCall:
    return ParsedToolCall(id=call_id, name=name, arguments={})


def _fc(call_id: str, name: str = "t") -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": "{}"}


def _paused(*pending: str, unsent: tuple[str, ...] = ()) -> ConversationState:
    order = ["a", "b", "c"]
    return msgspec.structs.replace(
        new_conversation_state("conv_x"),
        status="awaiting_approval",
        messages=[{"role": "user", "content": "hi"}, *[_fc(i) for i in order]],
        pending_tool_calls=[_call(i) for i in pending],
        unsent_tool_results=[
            UnsentToolResult(call_id=i, name="t", output=f'"{i}"') for i in unsent
        ],
    )


def test_fresh_states_have_unique_conv_ids_and_timestamps() -> None:
    first, second = new_conversation_state(), new_conversation_state()
    assert first.id.startswith("conv_")
    assert first.id != second.id
    assert first.status == "in_progress"
    assert first.messages == []
    assert first.turn == -1
    assert first.created_at == first.updated_at > 0
    assert new_conversation_state("conv_mine").id == "conv_mine"


def test_touch_keeps_id_and_created_at_and_never_goes_back_in_time() -> None:
    state = msgspec.structs.replace(new_conversation_state(), updated_at=2**50)
    touched = touch(state, status="complete")
    assert touched.status == "complete"
    assert touched.id == state.id
    assert touched.created_at == state.created_at
    assert touched.updated_at == 2**50


def test_a_state_round_trips_with_its_version() -> None:
    state = msgspec.structs.replace(
        _paused("b", unsent=("a",)),
        context={"t": {"count": 2}, "shared": {"user": "ana"}},
        usage=RunUsage(model_calls=2, total_tokens=30, cost=0.5),
    )
    data = encode_state(state)
    assert msgspec.json.decode(data)["version"] == CONVERSATION_STATE_VERSION == 1
    assert decode_state(data) == state
    assert decode_state(data.decode()) == state
    assert decode_state(msgspec.json.decode(data)) == state


def test_a_document_without_version_is_read_as_version_1() -> None:
    raw = msgspec.to_builtins(new_conversation_state("conv_old"))
    del raw["version"]
    assert decode_state(raw).version == 1


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_another_version_is_refused_by_name(version: object) -> None:
    raw = {**msgspec.to_builtins(new_conversation_state()), "version": version}
    with pytest.raises(
        UnsupportedStateVersionError, match=rf"^conversation state version {version!r} "
    ) as info:
        decode_state(raw)
    assert info.value.version == version


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b'{"messages": []}', "malformed: Object missing required field `id`"),
        (b'{"id": "c", "status": "paused"}', r"Invalid enum value 'paused' - at `\$.status`"),
        (b'{"id": "c", "turn": "3"}', r"Expected `int`, got `str` - at `\$.turn`"),
    ],
)
def test_a_malformed_document_is_an_invalid_state_error(document: bytes, message: str) -> None:
    with pytest.raises(InvalidStateError, match=message):
        decode_state(document)


def test_decisions_accept_lists_and_reasons() -> None:
    decisions = check_decisions(["a", "b", "a"], {"c": "too risky", "d": None})
    assert decisions.approve == ("a", "b")
    assert decisions.reject == {"c": "too risky", "d": DEFAULT_REJECTION_REASON}
    assert check_decisions(None, ["x"]).reject == {"x": "Tool call rejected by user"}
    assert not check_decisions(None, None)


@pytest.mark.parametrize(
    ("approve", "reject", "message"),
    [
        ("abc", None, r"^approve must be a list of tool call ids, got 'abc'$"),
        ([1], None, r"^approve must hold tool call ids \(strings\), got 1$"),
        (None, {"a": 3}, r"^reject reason for 'a' must be a string, got 3$"),
        (["a"], ["a"], r"^tool call id 'a' is both approved and rejected$"),
    ],
)
def test_bad_decisions_are_configuration_errors(approve: Any, reject: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        check_decisions(approve, reject)


def test_an_unknown_id_is_named_with_the_pending_ones() -> None:
    state = _paused("b", unsent=("a",))
    check_known_ids(state, check_decisions(["b"], None))
    with pytest.raises(
        ConfigurationError,
        match=r"^reject names tool call id 'zz', which is not pending in conversation 'conv_x' "
        r"\(status 'awaiting_approval'; pending: \['b'\]\)$",
    ):
        check_known_ids(state, check_decisions(["b"], ["zz"]))


def test_partial_decisions_keep_the_state_paused_and_queue_input() -> None:
    state = _paused("b", "c", unsent=("a",))
    settled = settle(state, [UnsentToolResult(call_id="c", name="t", output='"c"')], ["more"])
    assert settled.status == "awaiting_approval"
    assert [c.id for c in settled.pending_tool_calls] == ["b"]
    assert [r.call_id for r in settled.unsent_tool_results] == ["a", "c"]
    assert settled.queued_input == ["more"]
    assert settled.messages == state.messages


def test_settling_the_last_call_sends_outputs_in_call_order_then_input() -> None:
    """Outputs follow the order of the calls, not the order they settled in (defect)."""
    state = _paused("a", "c", unsent=("b",))
    state = settle(state, [UnsentToolResult(call_id="c", name="t", output='"c"')], ["q1"])
    done = settle(state, [UnsentToolResult(call_id="a", name="t", output='"a"')], ["q2"])
    assert done.status == "in_progress"
    assert done.pending_tool_calls == []
    assert done.unsent_tool_results == []
    assert done.queued_input == []
    tail = done.messages[4:]
    assert tail == [
        output_item("a", '"a"'),
        output_item("b", '"b"'),
        output_item("c", '"c"'),
        "q1",
        "q2",
    ]
    assert output_item("a", "x") == {
        "type": "function_call_output",
        "call_id": "a",
        "output": "x",
        "id": "output_a",
    }


def test_outputs_in_new_input_answer_pending_calls() -> None:
    state = _paused("b", "c", unsent=("a",))
    answers, rest = pending_answers(
        state,
        [
            {"type": "function_call_output", "call_id": "b", "output": "ok"},
            {"type": "function_call_output", "call_id": "zz", "output": "other"},
            {"type": "function_call_output", "call_id": "c", "output": {"n": 1}},
            {"role": "user", "content": "thanks"},
        ],
    )
    assert answers == {"b": "ok", "c": '{"n":1}'}
    assert rest == [
        {"type": "function_call_output", "call_id": "zz", "output": "other"},
        {"role": "user", "content": "thanks"},
    ]


def test_usage_totals_combine() -> None:
    saved = RunUsage(model_calls=2, input_tokens=5, total_tokens=9, cost=None)
    run = RunUsage(model_calls=1, input_tokens=1, total_tokens=2, cached_tokens=1, cost=0.25)
    both = saved.combined(run)
    assert both == RunUsage(
        model_calls=3, input_tokens=6, total_tokens=11, cached_tokens=1, cost=0.25
    )
    assert run.combined(RunUsage()).cost == 0.25
