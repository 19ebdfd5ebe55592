"""Tests for runtime._protocol.wire: request encoding, response decoding, and the
``decode(encode(x)) == x`` round trip over every decodable wire type
(including the stream events of runtime._protocol.events, which are wire types too).
"""

from __future__ import annotations

import functools
import json
import logging
import types
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

import msgspec
import pytest
from hypothesis import given, settings, strategies as st
from msgspec import UNSET

from runtime._base.errors import ConfigurationError, RemoteProtocolError
from runtime._protocol import events as _events, wire as _wire
from runtime._protocol.events import StreamEvent, UnknownEvent, decode_event
from runtime._protocol.wire import (
    CacheControl,
    DebugConfig,
    EasyInputMessage,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    InputFile,
    InputImage,
    InputText,
    JsonSchemaFormat,
    OutputMessage,
    OutputText,
    ParsedToolCall,
    PromptCacheOptions,
    ReasoningConfig,
    ReasoningItem,
    Refusal,
    Response,
    ResponsesRequest,
    TextConfig,
    ToolChoiceFunction,
    UnknownContent,
    UnknownItem,
    Usage,
    decode_response,
    encode_request,
    parse_tool_calls,
    response_text,
)

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from tests.conftest import OpenAPISchemas


# ---------------------------------------------------------------------------
# request
# ---------------------------------------------------------------------------


def _every_field_request() -> ResponsesRequest:
    return ResponsesRequest(
        model="openai/gpt-5.2",
        models=["anthropic/claude-sonnet-4.5", "google/gemini-2.5-pro"],
        input=[
            EasyInputMessage(role="system", content="Be brief."),
            EasyInputMessage(
                role="user",
                content=[
                    InputText(text="What is in this image and this file?"),
                    InputImage(image_url="https://example.com/cat.png"),
                    InputFile(filename="a.pdf", file_data="data:application/pdf;base64,JVBERi0x"),
                ],
            ),
            FunctionCallItem(
                id="fc_1", call_id="call_1", name="get_weather", arguments='{"city":"Paris"}'
            ),
            FunctionCallOutputItem(call_id="call_1", output='{"temp_c":21}'),
            {"type": "message", "role": "user", "content": "and tomorrow?"},
        ],
        instructions="You are a weather bot.",
        stream=True,
        tools=[
            FunctionTool(
                name="get_weather",
                description="Current weather for a city.",
                parameters={
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
                strict=True,
            ),
            {"type": "function", "name": "noop", "parameters": None},
        ],
        tool_choice=ToolChoiceFunction(name="get_weather"),
        parallel_tool_calls=True,
        max_tool_calls=5,
        stop_server_tools_when=[{"type": "step_count_is", "step_count": 3}],
        max_output_tokens=512,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        top_logprobs=2,
        frequency_penalty=0.1,
        presence_penalty=0.0,
        reasoning=ReasoningConfig(effort="low", summary="auto", max_tokens=1024, enabled=True),
        include=["reasoning.encrypted_content"],
        text=TextConfig(
            format=JsonSchemaFormat(
                name="weather", schema={"type": "object"}, description="d", strict=True
            ),
            verbosity="low",
        ),
        modalities=["text"],
        image_config={"aspect_ratio": "16:9"},
        metadata={"run": "42"},
        user="user-1",
        safety_identifier="hash-1",
        session_id="session-1",
        prompt_cache_key="cache-1",
        prompt_cache_options=PromptCacheOptions(ttl="1h"),
        cache_control=CacheControl(ttl="5m"),
        prompt={"id": "prompt-1", "variables": {"name": "Ada"}},
        service_tier="auto",
        truncation="auto",
        provider={"allow_fallbacks": False, "order": ["openai"]},
        plugins=[{"id": "web", "max_results": 3}],
        route="fallback",
        trace={"trace_id": "t-1", "span_name": "turn"},
        debug=DebugConfig(echo_upstream_body=True),
        store=False,
        previous_response_id=None,
        background=False,
    )


def test_a_request_with_every_field_validates_against_the_spec(openapi: OpenAPISchemas) -> None:
    body = json.loads(encode_request(_every_field_request()))
    assert set(body) == set(ResponsesRequest.__struct_fields__)
    openapi.validate("ResponsesRequest", body)


def test_unset_request_fields_are_absent() -> None:
    assert encode_request(ResponsesRequest(model="m", input="hi")) == (
        b'{"model":"m","input":"hi"}'
    )


def test_an_explicit_none_is_sent_as_null() -> None:
    body = json.loads(encode_request(ResponsesRequest(instructions=None, reasoning=None)))
    assert body == {"instructions": None, "reasoning": None}


def test_nested_config_accepts_a_struct_or_a_plain_dict() -> None:
    typed = encode_request(ResponsesRequest(reasoning=ReasoningConfig(effort="high")))
    plain = encode_request(ResponsesRequest(reasoning={"effort": "high"}))
    assert typed == plain == b'{"reasoning":{"effort":"high"}}'


def test_input_items_encode_with_their_type_tag() -> None:
    body = json.loads(
        encode_request(
            ResponsesRequest(
                input=[
                    EasyInputMessage(role="user", content=[InputImage(image_url="u")]),
                    FunctionCallOutputItem(call_id="c", output="ok"),
                ]
            )
        )
    )
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_image", "image_url": "u", "detail": "auto"}],
        },
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
    ]


def test_input_structs_report_their_wire_type() -> None:
    assert EasyInputMessage(role="user", content="x").type == "message"
    assert FunctionCallOutputItem(call_id="c", output="").type == "function_call_output"
    assert InputText(text="t").type == "input_text"
    assert FunctionCallItem(call_id="c", name="n", arguments="").type == "function_call"


def test_a_request_that_cannot_be_encoded_is_a_configuration_error() -> None:
    with pytest.raises(
        ConfigurationError, match=r"^the request holds a value that cannot be sent as JSON \("
    ):
        encode_request(ResponsesRequest(input=[object()]))


# ---------------------------------------------------------------------------
# response
# ---------------------------------------------------------------------------

# wire-protocol.md §3.4, with the output items of a reasoning + tool-call turn.
_CAPTURE_RESPONSE = {
    "id": "gen-1787612977-3B6PXHIyVETuFLzBCzwW",
    "object": "response",
    "created_at": 1787612977,
    "completed_at": 1787612983,
    "model": "openai/gpt-5.6-sol",
    "status": "completed",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [],
            "encrypted_content": "gAAA",
            "format": "openai-responses-v1",
            "status": "completed",
        },
        {
            "type": "message",
            "id": "msg_tmp_1",
            "role": "assistant",
            "status": "completed",
            "phase": "commentary",
            "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_abc",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
        {"type": "openrouter:web_search", "id": "ws_tmp_1", "status": "completed"},
    ],
    "output_text": "",
    "error": None,
    "incomplete_details": None,
    "usage": {
        "input_tokens": 9175,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 9172},
        "output_tokens": 277,
        "output_tokens_details": {"reasoning_tokens": 135},
        "total_tokens": 9452,
        "cost": 0.025706,
        "is_byok": False,
        "cost_details": {
            "upstream_inference_cost": 0.025706,
            "upstream_inference_input_cost": 0.022936,
            "upstream_inference_output_cost": 0.00277,
        },
    },
    "instructions": None,
    "metadata": {},
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "top_logprobs": 0,
    "previous_response_id": None,
    "store": False,
    "background": False,
    "service_tier": "default",
    "truncation": "disabled",
    "text": {"format": {"type": "text"}},
    "reasoning": {"effort": "high"},
    "safety_identifier": None,
    "prompt_cache_key": None,
    "prompt_cache_options": None,
    "user": None,
}


def test_the_capture_shaped_response_decodes() -> None:
    response = decode_response(json.dumps(_CAPTURE_RESPONSE).encode())
    assert response.id == "gen-1787612977-3B6PXHIyVETuFLzBCzwW"
    assert response.status == "completed"
    assert [item.type for item in response.output] == [
        "reasoning",
        "message",
        "function_call",
        "openrouter:web_search",
    ]
    reasoning, message, call, server_tool = response.output
    assert isinstance(reasoning, ReasoningItem)
    assert reasoning.encrypted_content == "gAAA"
    assert isinstance(message, OutputMessage)
    assert message.phase == "commentary"
    assert isinstance(call, FunctionCallItem)
    assert (call.id, call.call_id) == ("fc_1", "call_abc")
    assert isinstance(server_tool, UnknownItem)
    assert server_tool.raw == _CAPTURE_RESPONSE["output"][3]  # type: ignore[index]
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (9175, 277, 9452)
    assert usage.input_tokens_details.cache_write_tokens == 9172
    assert usage.output_tokens_details.reasoning_tokens == 135
    assert usage.cost == pytest.approx(0.025706)


def test_the_capture_shaped_response_validates_after_reencoding(openapi: OpenAPISchemas) -> None:
    # Without the unknown server-tool item, which the spec's allOf cannot validate.
    body = dict(_CAPTURE_RESPONSE, output=_CAPTURE_RESPONSE["output"][:3])  # type: ignore[index]
    reencoded = json.loads(msgspec.json.encode(decode_response(json.dumps(body).encode())))
    # Deliberate gap: ``error_type`` is ``str | None`` for the callers' sake and
    # so re-encodes as null when absent, which the spec's enum does not allow.
    assert reencoded.pop("error_type") is None
    openapi.validate("OpenResponsesResult", reencoded)


def test_a_minimal_response_gets_the_spec_defaults() -> None:
    response = decode_response(b'{"id":"r","status":"in_progress","usage":null}')
    assert response.output == []
    assert response.usage is None
    assert response.error is None
    assert response.output_text == ""


def test_unknown_response_fields_are_ignored() -> None:
    response = decode_response(b'{"id":"r","status":"completed","brand_new":{"x":[1]}}')
    assert response.id == "r"


def test_unknown_items_and_parts_reencode_unchanged_for_replay() -> None:
    unknown_item = {"type": "openrouter:datetime", "datetime": "now", "timezone": "UTC", "n": [1]}
    unknown_part = {"type": "output_audio", "data": "AAAA"}
    body = {
        "id": "r",
        "status": "completed",
        "output": [
            unknown_item,
            {"type": "message", "id": "m", "content": [unknown_part]},
        ],
    }
    response = decode_response(json.dumps(body).encode())
    item, message = response.output
    assert isinstance(item, UnknownItem)
    assert item.type == "openrouter:datetime"
    assert isinstance(message, OutputMessage)
    assert isinstance(message.content[0], UnknownContent)
    assert message.content[0].type == "output_audio"
    request = json.loads(encode_request(ResponsesRequest(input=list(response.output))))
    assert request["input"][0] == unknown_item
    assert request["input"][1]["content"] == [unknown_part]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>", r"^the server sent a response body that is not valid \(JSON is malformed"),
        (
            b'{"status":"completed"}',
            r"^the server sent a response body .*missing required field `id`",
        ),
        (
            b'{"id":"r","status":"completed","output":[{"type":"function_call","name":"f"}]}',
            r"missing required field `call_id`.* \(in a 'function_call' object\)",
        ),
        (b'{"id":"r","status":"completed","output":[3]}', r"Expected `object`, got `int`"),
        (b'{"id":"r","status":"completed","output":[{"id":"x"}]}', r"required field `type`"),
    ],
)
def test_undecodable_response_bodies_blame_the_server(body: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_response(body)


# ---------------------------------------------------------------------------
# getText and tool-call parsing
# ---------------------------------------------------------------------------


def _message(*parts: Any, id: str = "m") -> OutputMessage:
    return OutputMessage(id=id, content=list(parts))


def test_response_text_prefers_a_non_empty_output_text() -> None:
    response = Response(
        id="r", status="completed", output_text="top", output=[_message(OutputText(text="x"))]
    )
    assert response_text(response) == "top"


def test_response_text_joins_the_first_messages_text_parts_without_refusals() -> None:
    response = Response(
        id="r",
        status="completed",
        output=[
            ReasoningItem(id="rs"),
            _message(OutputText(text="Hel"), Refusal(refusal="no"), OutputText(text="lo")),
            _message(OutputText(text="second message"), id="m2"),
        ],
    )
    assert response_text(response) == "Hello"


def test_response_text_without_a_message_is_empty() -> None:
    response = Response(
        id="r", status="completed", output=[FunctionCallItem(call_id="c", name="f", arguments="")]
    )
    assert response_text(response) == ""


def _call(call_id: str, arguments: str, name: str = "f") -> FunctionCallItem:
    return FunctionCallItem(id=f"fc_{call_id}", call_id=call_id, name=name, arguments=arguments)


def test_parse_tool_calls_uses_call_id_and_output_order() -> None:
    response = Response(
        id="r",
        status="completed",
        output=[_call("b", '{"x":1}', "g"), _message(), _call("a", " [1, 2] ")],
    )
    assert parse_tool_calls(response) == [
        ParsedToolCall(id="b", name="g", arguments={"x": 1}),
        ParsedToolCall(id="a", name="f", arguments=[1, 2]),
    ]


@pytest.mark.parametrize("arguments", ["", "   ", "\n\t"])
def test_empty_arguments_parse_as_an_empty_object(arguments: str) -> None:
    response = Response(id="r", status="completed", output=[_call("c", arguments)])
    assert parse_tool_calls(response)[0].arguments == {}


def test_invalid_arguments_stay_a_string_and_log_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = Response(id="r", status="completed", output=[_call("c1", "{bad", "get_x")])
    with caplog.at_level(logging.WARNING, logger="runtime"):
        [call] = parse_tool_calls(response)
    assert call.arguments == "{bad"
    [record] = caplog.records
    assert record.name == "runtime"
    assert "'c1'" in record.getMessage()
    assert "'get_x'" in record.getMessage()


# ---------------------------------------------------------------------------
# round trips: decode(encode(x)) == x for every decodable wire type
# ---------------------------------------------------------------------------

_INT64 = st.integers(-(2**63), 2**63 - 1)
_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
_TEXT = st.text(max_size=8)
_JSON: SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | _INT64 | _FLOAT | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)


def _unknown(cls: type[dict[str, Any]], known: dict[str, Any]) -> SearchStrategy[Any]:
    tags = _TEXT.filter(lambda t: t not in known)
    return st.builds(
        lambda tag, rest: cls({**rest, "type": tag}),
        tags,
        st.dictionaries(_TEXT.filter(lambda k: k != "type"), _JSON, max_size=3),
    )


@functools.cache
def strategy_for(tp: Any, *, top: bool = False) -> SearchStrategy[Any]:
    """A strategy for any type that appears in the wire Structs."""
    if tp is Any:
        return _JSON
    if tp is msgspec.UnsetType:
        return st.just(UNSET)
    if tp is type(None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _INT64
    if tp is float:
        return _FLOAT
    if tp is str:
        return _TEXT
    if tp is _wire._ItemMarker:
        typed = [strategy_for(cls) for cls in _wire._ITEM_TYPES.values()]
        return st.one_of(*typed, _unknown(UnknownItem, _wire._ITEM_TYPES))
    if tp is _wire._ContentMarker:
        typed = [strategy_for(cls) for cls in _wire._CONTENT_TYPES.values()]
        return st.one_of(*typed, _unknown(UnknownContent, _wire._CONTENT_TYPES))
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return st.one_of(*(strategy_for(arg) for arg in get_args(tp)))
    if origin is list:
        return st.lists(strategy_for(get_args(tp)[0]), max_size=3)
    if origin is tuple and get_args(tp)[1:] == (...,):
        return st.lists(strategy_for(get_args(tp)[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(_TEXT, strategy_for(get_args(tp)[1]), max_size=3)
    if tp is Response and not top:
        # Nested in events: vary what matters and keep the rest default (fast).
        return st.builds(
            Response,
            id=_TEXT,
            status=_TEXT,
            output=strategy_for(list[_wire._ItemMarker]),
            usage=st.none() | strategy_for(Usage),
            error=st.none() | strategy_for(_wire.ResponseError),
            error_type=st.none() | _TEXT,
        )
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        fields = {f.name: _deferred(f.type) for f in msgspec.structs.fields(tp)}
        return st.builds(tp, **fields)
    raise TypeError(f"no strategy for {tp!r}")


def _deferred(tp: Any) -> SearchStrategy[Any]:
    return st.deferred(lambda: strategy_for(tp))


_NOT_DECODABLE = {
    _wire.WireStruct,
    _wire.OutputItemBase,
    ResponsesRequest,  # Struct | dict unions: encode-only by design
    TextConfig,
    StreamEvent,
    UnknownEvent,  # built by decode_event, covered in test_events.py
}
_ROUND_TRIP_TYPES = sorted(
    {
        obj
        for module in (_wire, _events)
        for name in module.__all__
        if isinstance(obj := getattr(module, name), type)
        and issubclass(obj, msgspec.Struct)
        and obj not in _NOT_DECODABLE
    },
    key=lambda cls: cls.__name__,
)
_SERVER_EVENTS = set(get_args(_events._TaggedServerEvent))


def _decode(cls: type[msgspec.Struct], data: bytes) -> Any:
    if cls in _SERVER_EVENTS:
        return decode_event(data)
    return msgspec.json.decode(data, type=cls, dec_hook=_wire._dec_hook)


def test_the_round_trip_covers_every_output_item_and_event() -> None:
    covered = set(_ROUND_TRIP_TYPES)
    assert set(_wire._ITEM_TYPES.values()) <= covered
    assert covered >= _SERVER_EVENTS
    assert {Usage, Response, FunctionCallOutputItem, InputImage} <= covered


@pytest.mark.parametrize("cls", _ROUND_TRIP_TYPES, ids=lambda cls: cls.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_decode_of_encode_is_identity(cls: type[msgspec.Struct], data: st.DataObject) -> None:
    value = data.draw(strategy_for(cls, top=True), label=cls.__name__)
    assert _decode(cls, msgspec.json.encode(value)) == value
