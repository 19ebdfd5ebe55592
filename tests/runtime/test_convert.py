"""Tests for runtime._protocol.convert_chat and convert_claude: chat/Claude ⇄ Responses
converters (spec §5, V-01..V-04).

The spec's scenarios are adapted to the fixed behaviours documented in the
module: assistant tool calls are kept, chat part lists are converted instead of
stringified, Claude tool results never dangle, cached tokens are cache reads.
Produced input items are validated against the OpenAPI ``ResponsesRequest``.
"""

from __future__ import annotations

import copy
import string
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from runtime._base.errors import ConfigurationError
from runtime._protocol.convert_chat import from_chat_messages, to_chat_message
from runtime._protocol.convert_claude import (
    ClaudeContentBlockType,
    NonClaudeMessageRole,
    extract_unsupported_content,
    from_claude_messages,
    get_unsupported_content_summary,
    has_unsupported_content,
    is_claude_style_messages,
    to_claude_message,
)

if TYPE_CHECKING:
    from collections.abc import Callable


def _request(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": "openai/gpt-5", "input": items}


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _fc(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "call_id": call_id,
        "id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def _response(*output: Any, **fields: Any) -> dict[str, Any]:
    return {"id": "gen-1", "model": "openai/gpt-5", "status": "completed", "output": list(output)}


def _message(*parts: Any) -> dict[str, Any]:
    return {"type": "message", "id": "msg_1", "role": "assistant", "content": list(parts)}


def _text(text: str, annotations: list[Any] | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "output_text", "text": text}
    if annotations is not None:
        part["annotations"] = annotations
    return part


# ---------------------------------------------------------------------------
# from_chat_messages (V-01)


def test_v01_string_messages_map_to_role_and_content() -> None:
    """V-01: user/assistant/system/developer string messages map to {role, content}."""
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "use tools"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    assert from_chat_messages(messages) == [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "use tools"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]


def test_v01_tool_message_becomes_function_call_output() -> None:
    """V-01: a tool message becomes a function_call_output (no id)."""
    items = from_chat_messages([{"role": "tool", "tool_call_id": "call_1", "content": "72F"}])
    assert items == [{"type": "function_call_output", "call_id": "call_1", "output": "72F"}]


def test_v01_tool_message_accepts_camel_case_call_id() -> None:
    items = from_chat_messages([{"role": "tool", "toolCallId": "call_1", "content": "ok"}])
    assert items[0]["call_id"] == "call_1"


def test_v01_tool_object_content_is_json_stringified() -> None:
    """V-01: object content of a tool message is JSON-stringified compactly."""
    content = {"temp": 21, "city": "Zürich", "tags": [1, None]}
    items = from_chat_messages([{"role": "tool", "tool_call_id": "c", "content": content}])
    assert items[0]["output"] == '{"temp":21,"city":"Zürich","tags":[1,null]}'


def test_v01_assistant_null_content_becomes_empty_string() -> None:
    """V-01: assistant null content → ''."""
    assert from_chat_messages([{"role": "assistant", "content": None}]) == [
        {"role": "assistant", "content": ""}
    ]


def test_v01_missing_or_null_content_becomes_empty_string() -> None:
    assert from_chat_messages([{"role": "user"}, {"role": "system", "content": None}]) == [
        {"role": "user", "content": ""},
        {"role": "system", "content": ""},
    ]


def test_v01_empty_list_gives_empty_list() -> None:
    """V-01: [] → []."""
    assert from_chat_messages([]) == []


def test_v01_array_content_is_converted_not_stringified() -> None:
    """V-01 (decision): array content becomes Responses parts instead of a JSON string."""
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    assert from_chat_messages([{"role": "user", "content": content}]) == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "detail": "high", "image_url": "https://x.test/a.png"},
                {
                    "type": "input_image",
                    "detail": "auto",
                    "image_url": "data:image/png;base64,AAAA",
                },
            ],
        }
    ]


def test_assistant_tool_calls_become_function_calls_after_the_text() -> None:
    """Fixed behaviour (agent PR #93 + #123): text first, then one function_call per call."""
    messages: list[dict[str, Any]] = [
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                _call("call_1", "weather", '{"city": "Paris"}'),
                _call("call_2", "t", ""),
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
    ]
    assert from_chat_messages(messages) == [
        {"role": "assistant", "content": "Let me check."},
        _fc("call_1", "weather", '{"city": "Paris"}'),
        _fc("call_2", "t", ""),
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": "12:00"},
    ]


@pytest.mark.parametrize("content", [None, ""])
def test_assistant_without_text_but_with_calls_is_omitted(content: str | None) -> None:
    messages = [{"role": "assistant", "content": content, "tool_calls": [_call("c", "f", "{}")]}]
    assert from_chat_messages(messages) == [_fc("c", "f", "{}")]


def test_assistant_camel_case_tool_calls_are_accepted() -> None:
    messages = [{"role": "assistant", "content": None, "toolCalls": [_call("c", "f", "{}")]}]
    assert from_chat_messages(messages) == [_fc("c", "f", "{}")]


def test_assistant_with_empty_tool_calls_keeps_its_message() -> None:
    assert from_chat_messages([{"role": "assistant", "content": None, "tool_calls": []}]) == [
        {"role": "assistant", "content": ""}
    ]


def test_assistant_text_parts_become_one_string() -> None:
    content = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]
    assert from_chat_messages([{"role": "assistant", "content": content}]) == [
        {"role": "assistant", "content": "Hello, world"}
    ]


def test_assistant_image_part_is_refused() -> None:
    content = [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]
    with pytest.raises(
        ConfigurationError, match=r"^Assistant content part type 'image_url' has no Responses"
    ):
        from_chat_messages([{"role": "assistant", "content": content}])


def test_chat_file_audio_and_video_parts_are_converted() -> None:
    content = [
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"},
        },
        {"type": "file", "file": {"file_data": "https://x.test/b.pdf"}},
        {"type": "file", "file": {"file_id": "file-1"}},
        {"type": "input_audio", "input_audio": {"data": "SGk=", "format": "wav"}},
        {"type": "video_url", "video_url": {"url": "https://x.test/v.mp4"}},
        {"type": "input_video", "video_url": {"url": "https://x.test/w.mp4"}},
    ]
    parts = from_chat_messages([{"role": "user", "content": content}])[0]["content"]
    assert parts == [
        {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AA"},
        {"type": "input_file", "file_url": "https://x.test/b.pdf"},
        {"type": "input_file", "file_id": "file-1"},
        {"type": "input_audio", "input_audio": {"data": "SGk=", "format": "wav"}},
        {"type": "input_video", "video_url": "https://x.test/v.mp4"},
        {"type": "input_video", "video_url": "https://x.test/w.mp4"},
    ]


def test_chat_image_url_may_be_a_bare_string() -> None:
    content = [{"type": "image_url", "image_url": "https://x.test/a.png"}]
    parts = from_chat_messages([{"role": "user", "content": content}])[0]["content"]
    assert parts == [{"type": "input_image", "detail": "auto", "image_url": "https://x.test/a.png"}]


def test_chat_image_detail_outside_the_enum_is_refused() -> None:
    content = [{"type": "image_url", "image_url": {"url": "u", "detail": "medium"}}]
    with pytest.raises(ConfigurationError, match=r"^Image detail 'medium' is not auto"):
        from_chat_messages([{"role": "user", "content": content}])


def test_chat_cache_markers_become_prompt_cache_breakpoints() -> None:
    content = [
        {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "b", "prompt_cache_breakpoint": {"mode": "explicit"}},
        {"type": "text", "text": "c"},
    ]
    parts = from_chat_messages([{"role": "system", "content": content}])[0]["content"]
    assert parts == [
        {"type": "input_text", "text": "a", "prompt_cache_breakpoint": {"mode": "explicit"}},
        {"type": "input_text", "text": "b", "prompt_cache_breakpoint": {"mode": "explicit"}},
        {"type": "input_text", "text": "c"},
    ]


def test_responses_native_parts_pass_through_as_copies() -> None:
    part = {"type": "input_audio", "input_audio": {"data": "SGk=", "format": "mp3"}}
    parts = from_chat_messages([{"role": "user", "content": [part]}])[0]["content"]
    assert parts == [part]
    assert parts[0] is not part
    assert parts[0]["input_audio"] is not part["input_audio"]


@pytest.mark.parametrize("ptype", ["refusal", "audio_url", None])
def test_unmappable_chat_part_is_reported(ptype: str | None) -> None:
    with pytest.raises(ConfigurationError, match=rf"^Chat content part type {ptype!r} has no"):
        from_chat_messages([{"role": "user", "content": [{"type": ptype}]}])


def test_tool_list_content_becomes_output_parts() -> None:
    content = [
        {"type": "text", "text": "see image"},
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
    ]
    items = from_chat_messages([{"role": "tool", "tool_call_id": "c", "content": content}])
    assert items[0]["output"] == [
        {"type": "input_text", "text": "see image"},
        {"type": "input_image", "detail": "auto", "image_url": "https://x.test/a.png"},
    ]


def test_tool_audio_content_is_refused() -> None:
    content = [{"type": "input_audio", "input_audio": {"data": "SGk=", "format": "mp3"}}]
    with pytest.raises(ConfigurationError, match=r"^Content part type 'input_audio' cannot be a"):
        from_chat_messages([{"role": "tool", "tool_call_id": "c", "content": content}])


def test_unknown_chat_role_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"^Unknown chat message role: 'function'$"):
        from_chat_messages([{"role": "function", "content": "x"}])


def test_tool_message_without_call_id_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^The tool_call_id of chat message 0 must be"):
        from_chat_messages([{"role": "tool", "content": "x"}])


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        ({"id": "c", "type": "custom", "custom": {}}, r"^Tool call type 'custom' is not supported"),
        ({"type": "function", "function": {"name": "f", "arguments": "{}"}}, r"^A tool call's id"),
        (_call("c", "f", {"a": 1}), r"^The arguments of tool call 'c' must be a string"),  # type: ignore[arg-type]
        ({"id": "c", "function": {"arguments": "{}"}}, r"^The name of tool call 'c' must be"),
        ("c", r"^A tool call must be a mapping, got 'c'$"),
    ],
)
def test_malformed_tool_call_is_refused(call: Any, pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        from_chat_messages([{"role": "assistant", "content": None, "tool_calls": [call]}])


def test_tool_calls_must_be_a_list() -> None:
    with pytest.raises(ConfigurationError, match=r"^Assistant tool_calls must be a list, got"):
        from_chat_messages([{"role": "assistant", "tool_calls": _call("c", "f", "{}")}])


def test_non_mapping_chat_message_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^Chat message 1 must be a mapping, got 'hi'$"):
        from_chat_messages([{"role": "user", "content": "a"}, "hi"])  # type: ignore[list-item]


def test_unencodable_content_is_refused() -> None:
    with pytest.raises(
        ConfigurationError, match=r"^Tool message content cannot be encoded as JSON"
    ):
        from_chat_messages([{"role": "tool", "tool_call_id": "c", "content": {"k": object()}}])


def test_from_chat_messages_does_not_mutate_or_alias_its_input() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "a"}]},
        {"role": "assistant", "content": "x", "tool_calls": [_call("c", "f", "{}")]},
        {"role": "tool", "tool_call_id": "c", "content": {"k": [1]}},
    ]
    before = copy.deepcopy(messages)
    items = from_chat_messages(messages)
    items[0]["content"][0]["text"] = "changed"
    assert messages == before


def test_chat_items_validate_against_the_openapi_schema(openapi: Any) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "s"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "q"},
                {"type": "image_url", "image_url": {"url": "u"}},
            ],
        },
        {"role": "assistant", "content": "let me see", "tool_calls": [_call("c1", "f", "{}")]},
        {"role": "tool", "tool_call_id": "c1", "content": {"ok": True}},
        {"role": "assistant", "content": None, "tool_calls": [_call("c2", "g", "{}")]},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "done"}]},
        {"role": "assistant", "content": "bye"},
    ]
    openapi.validate("ResponsesRequest", _request(from_chat_messages(messages)))


# ---------------------------------------------------------------------------
# to_chat_message (V-02)


def test_v02_output_text_parts_are_concatenated() -> None:
    """V-02: "Hello, " + "world!" → "Hello, world!"."""
    response = _response(_message(_text("Hello, "), _text("world!")))
    assert to_chat_message(response) == {"role": "assistant", "content": "Hello, world!"}


def test_v02_message_without_text_gives_null_content() -> None:
    """V-02: a message without text parts → content None."""
    assert to_chat_message(_response(_message())) == {"role": "assistant", "content": None}


def test_v02_no_message_raises() -> None:
    """V-02: no message item → ``No message found in response output``."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    with pytest.raises(ConfigurationError, match=r"^No message found in response output$"):
        to_chat_message(_response(reasoning))


def test_to_chat_message_uses_the_first_message_only() -> None:
    response = _response(_message(_text("first")), _message(_text("second")))
    assert to_chat_message(response)["content"] == "first"


def test_to_chat_message_ignores_reasoning_and_other_parts() -> None:
    response = _response(
        {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "hmm"}]},
        _message({"type": "weird"}, "junk", _text("ok")),
    )
    assert to_chat_message(response) == {"role": "assistant", "content": "ok"}


def test_to_chat_message_adds_tool_calls() -> None:
    """PY Δ: function_call items become chat ``tool_calls``."""
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "f",
        "arguments": "{}",
    }
    response = _response(_message(_text("checking")), call)
    assert to_chat_message(response) == {
        "role": "assistant",
        "content": "checking",
        "tool_calls": [_call("call_1", "f", "{}")],
    }


def test_to_chat_message_accepts_a_tool_call_only_response() -> None:
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'}
    assert to_chat_message(_response(call)) == {
        "role": "assistant",
        "content": None,
        "tool_calls": [_call("call_1", "f", '{"a":1}')],
    }


def test_to_chat_message_reports_refusals() -> None:
    response = _response(_message({"type": "refusal", "refusal": "I can't."}))
    assert to_chat_message(response) == {
        "role": "assistant",
        "content": None,
        "refusal": "I can't.",
    }


def test_to_chat_message_refuses_a_non_response() -> None:
    with pytest.raises(ConfigurationError, match=r"^Response must be a mapping, got 42$"):
        to_chat_message(42)


class _FakeOutputMessage(msgspec.Struct, kw_only=True, tag_field="type", tag="message"):
    id: str
    role: str
    content: list[dict[str, Any]]


class _FakeResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    model: str
    status: str
    output: list[Any]
    usage: Any = msgspec.UNSET


def test_converters_accept_response_structs_with_raw_items() -> None:
    """A ``runtime._protocol.wire``-like Struct (``msgspec.Raw`` items) converts like its dict."""
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    struct = _FakeResponse(
        id="gen-1",
        model="m",
        status="completed",
        output=[
            _FakeOutputMessage(id="msg_1", role="assistant", content=[_text("hi")]),
            msgspec.Raw(msgspec.json.encode(call)),
        ],
    )
    as_dict = msgspec.json.decode(msgspec.json.encode(struct))
    assert to_chat_message(struct) == to_chat_message(as_dict)
    assert to_chat_message(struct)["tool_calls"] == [_call("c", "f", "{}")]
    assert to_claude_message(struct) == to_claude_message(as_dict)


# ---------------------------------------------------------------------------
# from_claude_messages (V-03)


def test_v03_string_content() -> None:
    assert from_claude_messages([{"role": "user", "content": "Hello"}]) == [
        {"role": "user", "content": "Hello"}
    ]


def test_v03_text_blocks_are_concatenated() -> None:
    content = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]
    assert from_claude_messages([{"role": "assistant", "content": content}]) == [
        {"role": "assistant", "content": "Hello, world"}
    ]


def test_v03_tool_result_with_string_content() -> None:
    content = [{"type": "tool_result", "tool_use_id": "tu_1", "content": "42"}]
    assert from_claude_messages([{"role": "user", "content": content}]) == [
        {"type": "function_call_output", "call_id": "tu_1", "output": "42"}
    ]


def test_v03_tool_result_with_text_blocks() -> None:
    blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    content = [{"type": "tool_result", "tool_use_id": "tu_1", "content": blocks, "is_error": True}]
    assert from_claude_messages([{"role": "user", "content": content}]) == [
        {"type": "function_call_output", "call_id": "tu_1", "output": "ab"}
    ]


def test_v03_spec_vector_mixed_text_and_tool_result() -> None:
    """V-03: the §5.3 test vector."""
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Here is some context. "},
            {"type": "tool_result", "tool_use_id": "tool_789", "content": "Tool output"},
            {"type": "text", "text": "And some more text."},
        ],
    }
    assert from_claude_messages([message]) == [
        {"type": "function_call_output", "call_id": "tool_789", "output": "Tool output"},
        {"role": "user", "content": "Here is some context. And some more text."},
    ]


def test_v03_tool_use_becomes_function_call_with_json_arguments() -> None:
    content = [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "tu_1", "name": "weather", "input": {"city": "Paris", "n": 2}},
    ]
    assert from_claude_messages([{"role": "assistant", "content": content}]) == [
        {"role": "assistant", "content": "Checking."},
        _fc("tu_1", "weather", '{"city":"Paris","n":2}'),
    ]


def test_tool_use_without_input_has_empty_object_arguments() -> None:
    content = [{"type": "tool_use", "id": "tu_1", "name": "now"}]
    assert from_claude_messages([{"role": "assistant", "content": content}]) == [
        _fc("tu_1", "now", "{}")
    ]


def test_v03_user_image_becomes_structured_message() -> None:
    """V-03: base64 image → data URI, ``detail: auto``, role kept."""
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
    ]
    assert from_claude_messages([{"role": "user", "content": content}]) == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {
                    "type": "input_image",
                    "detail": "auto",
                    "image_url": "data:image/png;base64,iVBO",
                },
            ],
        }
    ]


def test_v03_assistant_image_keeps_assistant_role() -> None:
    """V-03 (AG): an assistant message with an image keeps role ``assistant``."""
    content = [{"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]
    items = from_claude_messages([{"role": "assistant", "content": content}])
    assert items == [
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "input_image", "detail": "auto", "image_url": "https://x.test/a.png"}
            ],
        }
    ]


def test_image_and_text_interleaving_is_preserved() -> None:
    content = [
        {"type": "text", "text": "before"},
        {"type": "image", "source": {"type": "url", "url": "u"}},
        {"type": "text", "text": "after"},
    ]
    parts = from_claude_messages([{"role": "user", "content": content}])[0]["content"]
    assert [p["type"] for p in parts] == ["input_text", "input_image", "input_text"]
    assert [p.get("text") for p in parts] == ["before", None, "after"]


def test_tool_calls_come_after_the_text_even_if_text_follows_them() -> None:
    """Calls go last so the next message's outputs follow them directly."""
    content = [
        {"type": "tool_use", "id": "a", "name": "f", "input": {}},
        {"type": "text", "text": "and"},
        {"type": "tool_use", "id": "b", "name": "g", "input": {}},
    ]
    assert from_claude_messages([{"role": "assistant", "content": content}]) == [
        {"role": "assistant", "content": "and"},
        _fc("a", "f", "{}"),
        _fc("b", "g", "{}"),
    ]


def test_v03_empty_edge_cases() -> None:
    """V-03: empty list, empty string, empty block list."""
    assert from_claude_messages([]) == []
    assert from_claude_messages([{"role": "user", "content": ""}]) == [
        {"role": "user", "content": ""}
    ]
    assert from_claude_messages([{"role": "user", "content": []}]) == []
    assert from_claude_messages([{"role": "user", "content": [{"type": "text", "text": ""}]}]) == []


@pytest.mark.parametrize("content", [None, "", []])
def test_empty_tool_result_still_produces_an_output(content: Any) -> None:
    """§9.2 item 10: an empty tool_result no longer leaves the call dangling."""
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": "tu_1"}
    if content is not None:
        block["content"] = content
    assert from_claude_messages([{"role": "user", "content": [block]}]) == [
        {"type": "function_call_output", "call_id": "tu_1", "output": ""}
    ]


def test_image_tool_result_produces_output_parts() -> None:
    """§9.2 item 10: image-only / mixed tool results become input parts of the output."""
    blocks = [
        {"type": "text", "text": "chart:"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j"}},
    ]
    content = [{"type": "tool_result", "tool_use_id": "tu_1", "content": blocks}]
    assert from_claude_messages([{"role": "user", "content": content}]) == [
        {
            "type": "function_call_output",
            "call_id": "tu_1",
            "output": [
                {"type": "input_text", "text": "chart:"},
                {
                    "type": "input_image",
                    "detail": "auto",
                    "image_url": "data:image/jpeg;base64,/9j",
                },
            ],
        }
    ]


@pytest.mark.parametrize("block_type", ["thinking", "document", "redacted_thinking", None])
def test_unhandled_block_type_is_named(block_type: str | None) -> None:
    block = {"type": block_type, "thinking": "..."}
    with pytest.raises(
        ConfigurationError, match=rf"^Unhandled content block type: {block_type!r}$"
    ):
        from_claude_messages([{"role": "assistant", "content": [block]}])


def test_unhandled_block_inside_tool_result_is_named() -> None:
    inner = [{"type": "document", "source": {}}]
    content = [{"type": "tool_result", "tool_use_id": "t", "content": inner}]
    with pytest.raises(ConfigurationError, match=r"^Unhandled content block type: 'document'$"):
        from_claude_messages([{"role": "user", "content": content}])


def test_unsupported_image_source_is_refused() -> None:
    content = [{"type": "image", "source": {"type": "file", "file_id": "f"}}]
    with pytest.raises(ConfigurationError, match=r"^Unsupported image source type: 'file'$"):
        from_claude_messages([{"role": "user", "content": content}])


@pytest.mark.parametrize("role", ["system", "tool", None])
def test_non_claude_role_is_refused(role: str | None) -> None:
    with pytest.raises(
        ConfigurationError, match=rf"^Claude message role must be .*, got {role!r}$"
    ):
        from_claude_messages([{"role": role, "content": "x"}])


def test_claude_content_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^Claude message content must be a string or"):
        from_claude_messages([{"role": "user", "content": None}])


def test_claude_items_validate_against_the_openapi_schema(openapi: Any) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "weather and a chart?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": "a", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "b", "name": "chart", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "a", "content": "cold"},
                {
                    "type": "tool_result",
                    "tool_use_id": "b",
                    "content": [
                        {"type": "image", "source": {"type": "url", "url": "https://x.test/c.png"}}
                    ],
                },
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "image", "source": {"type": "url", "url": "u"}}],
        },
    ]
    openapi.validate("ResponsesRequest", _request(from_claude_messages(messages)))


# ---------------------------------------------------------------------------
# to_claude_message (V-04)


def test_v04_text_message() -> None:
    claude = to_claude_message(_response(_message(_text("Hello"))))
    assert claude == {
        "id": "gen-1",
        "type": "message",
        "role": "assistant",
        "model": "openai/gpt-5",
        "content": [{"type": "text", "text": "Hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def test_v04_function_call_becomes_tool_use_with_parsed_input() -> None:
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"x": [1]}'}
    claude = to_claude_message(_response(call))
    assert claude["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": [1]}}
    ]
    assert claude["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", {}),
        (None, {}),
        ("{not json", {"_raw_arguments": "{not json"}),
        ("[1, 2]", {"_raw_arguments": "[1, 2]"}),
    ],
)
def test_tool_use_input_edge_cases(arguments: Any, expected: Any) -> None:
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": arguments}
    assert to_claude_message(_response(call))["content"][0]["input"] == expected


def test_v04_reasoning_summary_becomes_thinking() -> None:
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [
            {"type": "summary_text", "text": "step 1"},
            {"type": "summary_text", "text": ""},
            {"type": "summary_text", "text": "step 2"},
        ],
    }
    claude = to_claude_message(_response(reasoning, _message(_text("answer"))))
    assert claude["content"] == [
        {"type": "thinking", "thinking": "step 1", "signature": ""},
        {"type": "thinking", "thinking": "step 2", "signature": ""},
        {"type": "text", "text": "answer"},
    ]
    assert "unsupported_content" not in claude


def test_reasoning_signature_is_carried_over() -> None:
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "signature": "sig==",
        "summary": [{"type": "summary_text", "text": "think"}],
    }
    content = to_claude_message(_response(reasoning))["content"]
    assert content == [{"type": "thinking", "thinking": "think", "signature": "sig=="}]


def test_encrypted_reasoning_is_reported_unsupported() -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"}
    claude = to_claude_message(_response(reasoning))
    assert claude["content"] == []
    [entry] = claude["unsupported_content"]
    assert entry["original_type"] == "reasoning_encrypted"
    assert entry["data"] == {"id": "rs_1", "encrypted_content": "gAAA"}
    assert isinstance(entry["reason"], str)
    assert entry["reason"]


@pytest.mark.parametrize(
    ("status", "details", "expected"),
    [
        ("completed", None, "end_turn"),
        ("incomplete", {"reason": "max_output_tokens"}, "max_tokens"),
        ("incomplete", {"reason": "content_filter"}, "end_turn"),
        ("incomplete", None, "end_turn"),
        ("failed", None, "end_turn"),
    ],
)
def test_v04_stop_reasons(status: str, details: Any, expected: str) -> None:
    response = _response(_message(_text("x")))
    response["status"] = status
    response["incomplete_details"] = details
    assert to_claude_message(response)["stop_reason"] == expected


def test_tool_use_stop_reason_wins_over_max_tokens() -> None:
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    response = _response(call)
    response["status"] = "incomplete"
    response["incomplete_details"] = {"reason": "max_output_tokens"}
    assert to_claude_message(response)["stop_reason"] == "tool_use"


def test_v04_usage_cached_tokens_are_cache_reads() -> None:
    """V-04 (fixed, §9.2 item 11): cached_tokens 80 → cache_read_input_tokens 80."""
    response = _response(_message(_text("x")))
    response["usage"] = {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 80},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 150,
    }
    assert to_claude_message(response)["usage"] == {
        "input_tokens": 100,
        "output_tokens": 50,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 80,
    }


def test_usage_cache_write_tokens_are_cache_creation() -> None:
    response = _response()
    response["usage"] = {
        "input_tokens": 9175,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 9172},
        "output_tokens": 277,
    }
    usage = to_claude_message(response)["usage"]
    assert usage["cache_creation_input_tokens"] == 9172
    assert usage["cache_read_input_tokens"] == 0


def test_missing_model_is_unknown() -> None:
    response = _response()
    del response["model"]
    assert to_claude_message(response)["model"] == "unknown"


def test_annotations_become_citations() -> None:
    annotations = [
        {
            "type": "url_citation",
            "url": "https://a.test",
            "title": "A",
            "start_index": 0,
            "end_index": 3,
        },
        {"type": "file_citation", "file_id": "file-1", "filename": "r.pdf", "index": 2},
        {"type": "file_path", "file_id": "file-2", "index": 5},
        {"type": "container_file_citation", "file_id": "x"},
    ]
    [block] = to_claude_message(_response(_message(_text("t", annotations))))["content"]
    assert block["citations"] == [
        {
            "type": "web_search_result_location",
            "cited_text": "",
            "title": "A",
            "url": "https://a.test",
            "encrypted_index": "",
        },
        {
            "type": "char_location",
            "cited_text": "",
            "document_index": 2,
            "document_title": "r.pdf",
            "file_id": "file-1",
            "start_char_index": 0,
            "end_char_index": 0,
        },
        {
            "type": "char_location",
            "cited_text": "",
            "document_index": 5,
            "document_title": "",
            "file_id": "file-2",
            "start_char_index": 0,
            "end_char_index": 0,
        },
    ]


def test_url_citation_content_becomes_cited_text() -> None:
    annotation = {"type": "url_citation", "url": "u", "title": "T", "content": "quoted"}
    [block] = to_claude_message(_response(_message(_text("t", [annotation]))))["content"]
    assert block["citations"][0]["cited_text"] == "quoted"


def test_no_citations_key_without_mapped_annotations() -> None:
    part = _text("t", [{"type": "container_file_citation"}])
    [block] = to_claude_message(_response(_message(part)))["content"]
    assert block == {"type": "text", "text": "t"}


def test_hosted_tool_calls_are_mapped() -> None:
    web = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    files = {"type": "file_search_call", "id": "fs_1", "queries": ["q"], "status": "completed"}
    claude = to_claude_message(_response(web, files))
    assert claude["content"] == [
        {
            "type": "server_tool_use",
            "id": "ws_1",
            "name": "web_search",
            "input": {"status": "completed"},
        },
        {
            "type": "tool_use",
            "id": "fs_1",
            "name": "file_search",
            "input": {"queries": ["q"], "status": "completed"},
        },
    ]
    assert claude["stop_reason"] == "end_turn"


def test_unsupported_items_and_parts_are_reported() -> None:
    response = _response(
        _message({"type": "refusal", "refusal": "no"}, {"text": "typeless"}, _text("ok")),
        {"type": "image_generation_call", "id": "ig_1", "result": "b64", "status": "completed"},
        {"id": "typeless"},
        {"type": "openrouter:datetime", "id": "dt_1", "datetime": "2026-01-01"},
    )
    claude = to_claude_message(response)
    assert claude["content"] == [{"type": "text", "text": "ok"}]
    entries = claude["unsupported_content"]
    assert [e["original_type"] for e in entries] == [
        "refusal",
        "unknown_message_part",
        "image_generation_call",
        "unknown",
        "openrouter:datetime",
    ]
    assert entries[0]["data"] == {"refusal": "no"}
    assert entries[2]["data"] == {"id": "ig_1", "result": "b64", "status": "completed"}
    assert all(isinstance(e["reason"], str) and e["reason"] for e in entries)


def test_unsupported_content_helpers() -> None:
    response = _response(
        _message({"type": "refusal", "refusal": "a"}, {"type": "refusal", "refusal": "b"}),
        {"type": "reasoning", "id": "rs", "summary": [], "encrypted_content": "e"},
    )
    claude = to_claude_message(response)
    assert has_unsupported_content(claude)
    assert [e["data"] for e in extract_unsupported_content(claude, "refusal")] == [
        {"refusal": "a"},
        {"refusal": "b"},
    ]
    assert extract_unsupported_content(claude, "image_generation_call") == []
    assert get_unsupported_content_summary(claude) == {"refusal": 2, "reasoning_encrypted": 1}
    plain = to_claude_message(_response(_message(_text("x"))))
    assert not has_unsupported_content(plain)
    assert get_unsupported_content_summary(plain) == {}


def test_to_claude_message_does_not_alias_the_response() -> None:
    files = {"type": "file_search_call", "id": "fs", "queries": ["q"], "status": "completed"}
    other = {"type": "openrouter:x", "nested": {"a": 1}}
    response = _response(files, other)
    before = copy.deepcopy(response)
    claude = to_claude_message(response)
    claude["content"][0]["input"]["queries"].append("changed")
    claude["unsupported_content"][0]["data"]["nested"]["a"] = 2
    assert response == before


# ---------------------------------------------------------------------------
# is_claude_style_messages and the enums


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([], False),
        ("not a list", False),
        ([{"role": "user", "content": "hi"}], False),
        ([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}], True),
        ([{"role": "user", "content": [{"type": "image", "source": {"type": "url"}}]}], True),
        ([{"role": "user", "content": [{"type": "image", "source": "u"}]}], False),
        ([{"role": "assistant", "content": [{"type": "tool_use", "id": "t"}]}], True),
        ([{"role": "assistant", "content": [{"type": "tool_use", "id": 1}]}], False),
        (
            [
                {"role": "system", "content": "s"},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            ],
            False,
        ),
        (
            [
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
                {"role": "tool", "content": "x"},
            ],
            True,
        ),
        ([{"type": "message", "role": "user", "content": [{"type": "tool_result"}]}], False),
        ([{"role": ["odd"], "content": "x"}, {"content": "no role"}], False),
    ],
)
def test_is_claude_style_messages(messages: Any, expected: bool) -> None:
    assert is_claude_style_messages(messages) is expected


def test_enums_are_the_wire_strings() -> None:
    assert list(ClaudeContentBlockType) == ["text", "image", "tool_use", "tool_result"]
    assert list(NonClaudeMessageRole) == ["system", "developer", "tool"]
    assert f"{ClaudeContentBlockType.TOOL_USE}" == "tool_use"


# ---------------------------------------------------------------------------
# property tests


_IDS = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)
_TEXT = st.text(max_size=12)
_ARGS = st.sampled_from(["{}", '{"a": 1}', '{"city":"Paris"}', "", "not json"])


def _user_content(draw: Callable[[Any], Any]) -> Any:
    kind = draw(st.sampled_from(["str", "none", "parts"]))
    if kind == "str":
        return draw(_TEXT)
    if kind == "none":
        return None
    return [{"type": "text", "text": t} for t in draw(st.lists(_TEXT, max_size=3))]


@st.composite
def _conversations(draw: Callable[[Any], Any]) -> list[dict[str, Any]]:
    """Chat conversations in natural order: [system], then turns of user, tool steps, answer."""
    messages: list[dict[str, Any]] = []
    counter = 0
    if draw(st.booleans()):
        role = draw(st.sampled_from(["system", "developer"]))
        messages.append({"role": role, "content": _user_content(draw)})
    for _ in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": _user_content(draw)})
        for _ in range(draw(st.integers(0, 2))):
            calls = []
            for _ in range(draw(st.integers(1, 3))):
                counter += 1
                calls.append(_call(f"{draw(_IDS)}-{counter}", draw(_IDS), draw(_ARGS)))
            key = draw(st.sampled_from(["tool_calls", "toolCalls"]))
            content = draw(st.one_of(st.none(), st.just(""), _TEXT))
            messages.append({"role": "assistant", "content": content, key: calls})
            for call in calls:
                id_key = draw(st.sampled_from(["tool_call_id", "toolCallId"]))
                messages.append({"role": "tool", id_key: call["id"], "content": draw(_TEXT)})
        answer: dict[str, Any] = {"role": "assistant", "content": draw(st.one_of(st.none(), _TEXT))}
        if draw(st.booleans()):
            answer["tool_calls"] = []
        messages.append(answer)
    return messages


def _normalise(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What survives the round trip: canonical keys, None text as '' or None."""
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            call_id = message.get("tool_call_id", message.get("toolCallId"))
            out.append({"role": "tool", "tool_call_id": call_id, "content": message["content"]})
        elif role == "assistant":
            calls = message.get("tool_calls", message.get("toolCalls")) or []
            if calls:
                out.append(
                    {
                        "role": "assistant",
                        "content": message["content"] or None,
                        "tool_calls": calls,
                    }
                )
            else:
                out.append({"role": "assistant", "content": message["content"] or ""})
        else:
            content = message["content"]
            out.append({"role": role, "content": "" if content is None else content})
    return out


def _to_chat_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The test's inverse of ``from_chat_messages``: input items back to chat messages."""
    out: list[dict[str, Any]] = []
    for item in items:
        item_type = item.get("type")
        if item_type == "function_call":
            call = _call(item["call_id"], item["name"], item["arguments"])
            previous = out[-1] if out else None
            if previous is not None and previous["role"] == "assistant":
                previous["content"] = previous["content"] or None
                previous.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif item_type == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        else:
            content = item["content"]
            if isinstance(content, list):
                content = [{"type": "text", "text": part["text"]} for part in content]
            out.append({"role": item["role"], "content": content})
    return out


@given(_conversations())
def test_chat_round_trip_keeps_roles_text_and_tool_calls(messages: list[dict[str, Any]]) -> None:
    assert _to_chat_messages(from_chat_messages(messages)) == _normalise(messages)


@settings(max_examples=40)
@given(messages=_conversations())
def test_chat_conversion_is_always_schema_valid(
    openapi: Any, messages: list[dict[str, Any]]
) -> None:
    items = from_chat_messages(messages)
    openapi.validate("ResponsesRequest", _request(items))
    calls = [item["call_id"] for item in items if item.get("type") == "function_call"]
    outputs = [item["call_id"] for item in items if item.get("type") == "function_call_output"]
    assert calls == outputs


_BLOCK_TEXT = st.builds(lambda t: {"type": "text", "text": t}, _TEXT)
_BLOCK_IMAGE = st.builds(
    lambda data: {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": data},
    },
    st.text(alphabet=string.ascii_letters + "+/=", max_size=8),
)


@st.composite
def _claude_conversations(draw: Callable[[Any], Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    counter = 0
    for _ in range(draw(st.integers(1, 3))):
        messages.append(
            {
                "role": "user",
                "content": draw(
                    st.one_of(_TEXT, st.lists(st.one_of(_BLOCK_TEXT, _BLOCK_IMAGE), max_size=3))
                ),
            }
        )
        ids = []
        blocks: list[dict[str, Any]] = draw(st.lists(_BLOCK_TEXT, max_size=2))
        for _ in range(draw(st.integers(0, 3))):
            counter += 1
            ids.append(f"tu_{counter}")
            blocks.append(
                {"type": "tool_use", "id": ids[-1], "name": draw(_IDS), "input": {"n": counter}}
            )
        messages.append({"role": "assistant", "content": blocks})
        if ids:
            results: list[dict[str, Any]] = []
            for call_id in ids:
                kind = draw(st.sampled_from(["str", "none", "blocks"]))
                result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
                if kind == "str":
                    result["content"] = draw(_TEXT)
                elif kind == "blocks":
                    result["content"] = draw(
                        st.lists(st.one_of(_BLOCK_TEXT, _BLOCK_IMAGE), max_size=3)
                    )
                results.append(result)
            messages.append(
                {"role": "user", "content": results + draw(st.lists(_BLOCK_TEXT, max_size=2))}
            )
    return messages


@settings(max_examples=40)
@given(messages=_claude_conversations())
def test_claude_conversion_never_leaves_a_call_dangling(
    openapi: Any, messages: list[dict[str, Any]]
) -> None:
    """Every function_call is answered by exactly one output, directly after its calls."""
    items = from_claude_messages(messages)
    openapi.validate("ResponsesRequest", _request(items))
    calls = [item["call_id"] for item in items if item.get("type") == "function_call"]
    outputs = [item["call_id"] for item in items if item.get("type") == "function_call_output"]
    assert calls == outputs
    for i, item in enumerate(items):
        if item.get("type") == "function_call" and items[i + 1].get("type") != "function_call":
            assert items[i + 1]["type"] == "function_call_output"
