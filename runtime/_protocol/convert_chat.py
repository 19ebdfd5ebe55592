"""Convert OpenAI-chat messages to Responses ``input`` items, and a response back.

The shared rules and invariants are in :mod:`runtime._protocol.convert`.

Decisions where the sources disagree (see ``spec/callmodel.md`` §5, §9.2):

* ``from_chat_messages`` keeps assistant tool calls (typescript-agent PR #93
  plus community PR #123): non-empty assistant text first, then one
  ``function_call`` per call; an assistant message that has calls and no text
  is omitted. ``tool_calls``/``toolCalls`` and ``tool_call_id``/``toolCallId``
  are both accepted.
* Chat multimodal content lists are converted part by part (``text`` →
  ``input_text``, ``image_url`` → ``input_image`` and so on) instead of being
  JSON-stringified as the TypeScript SDK does; a part with no Responses
  equivalent raises. Responses-native parts (``input_text`` ...) pass through.
  An assistant message's list content must be text only and becomes a plain
  string, because assistant history items cannot carry ``input_*`` parts on
  every provider. Other non-string content (e.g. a tool's dict result) is
  JSON-encoded compactly, as ``JSON.stringify`` would.
* ``to_chat_message`` adds ``tool_calls`` (python-agent) and ``refusal`` when
  the response has them. A response with neither a message nor a function call
  raises ``ConfigurationError("No message found in response output")``: the
  server did nothing wrong (a reasoning-only response is valid), the caller
  asked for a conversion the value cannot support.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from runtime._base.errors import ConfigurationError
from runtime._protocol.convert import (
    as_json_dict,
    json_text,
    list_field,
    require_mapping,
    require_string,
)

__all__ = ["from_chat_messages", "to_chat_message"]

_NO_MESSAGE = "No message found in response output"


# Responses content parts that chat messages may already use verbatim.
_RESPONSES_PARTS = frozenset({"input_text", "input_image", "input_file", "input_audio"})
# What a ``function_call_output`` may hold besides a string (OpenAPI
# ``FunctionCallOutputItem.output``).
_TOOL_OUTPUT_PARTS = frozenset({"input_text", "input_image", "input_file"})
_IMAGE_DETAILS = frozenset({"auto", "low", "high", "original"})


# ---------------------------------------------------------------------------
# chat → Responses


def _chat_part(part: Any, role: str, index: int) -> dict[str, Any]:
    """One chat content part as a Responses content part."""
    what = f"content part {index} of a {role} message"
    part = require_mapping(part, what)
    ptype = part.get("type")
    if ptype == "text":
        out: dict[str, Any] = {"type": "input_text", "text": require_string(part.get("text"), what)}
        breakpoint_ = part.get("prompt_cache_breakpoint")
        if breakpoint_ is not None:
            out["prompt_cache_breakpoint"] = dict(require_mapping(breakpoint_, what))
        elif part.get("cache_control") is not None:
            # Anthropic-style marker; OpenRouter treats the two as interchangeable.
            out["prompt_cache_breakpoint"] = {"mode": "explicit"}
        return out
    if ptype == "image_url":
        image = part.get("image_url")
        if isinstance(image, str):
            return {"type": "input_image", "detail": "auto", "image_url": image}
        image = require_mapping(image, what)
        detail = image.get("detail")
        if detail is None:
            detail = "auto"
        elif detail not in _IMAGE_DETAILS:
            raise ConfigurationError(f"Image detail {detail!r} is not auto, low, high or original")
        return {
            "type": "input_image",
            "detail": detail,
            "image_url": require_string(image.get("url"), what),
        }
    if ptype == "file":
        file = require_mapping(part.get("file"), what)
        out = {"type": "input_file"}
        if "filename" in file:
            out["filename"] = require_string(file["filename"], what)
        if "file_id" in file:
            out["file_id"] = require_string(file["file_id"], what)
        if "file_data" in file:
            data = require_string(file["file_data"], what)
            # Chat's ``file_data`` may be a URL; Responses has a field for that.
            is_url = data.startswith(("http://", "https://"))
            out["file_url" if is_url else "file_data"] = data
        return out
    if ptype in ("video_url", "input_video"):
        video = part.get("video_url")
        url = video if isinstance(video, str) else require_mapping(video, what).get("url")
        return {"type": "input_video", "video_url": require_string(url, what)}
    if ptype in _RESPONSES_PARTS:
        copied: dict[str, Any] = copy.deepcopy(dict(part))
        return copied
    raise ConfigurationError(f"Chat content part type {ptype!r} has no Responses equivalent")


def _chat_content(content: Any, role: str) -> str | list[dict[str, Any]]:
    """The ``content`` of a system/user/developer/tool message, converted."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        parts = [_chat_part(part, role, i) for i, part in enumerate(content)]
        if role == "tool":
            for part in parts:
                if part["type"] not in _TOOL_OUTPUT_PARTS:
                    raise ConfigurationError(
                        f"Content part type {part['type']!r} cannot be a tool result"
                    )
        return parts
    return json_text(content, f"{role} message content")


def _chat_assistant_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            part = require_mapping(part, f"content part {i} of an assistant message")
            ptype = part.get("type")
            if ptype not in ("text", "output_text", "input_text"):
                raise ConfigurationError(
                    f"Assistant content part type {ptype!r} has no Responses equivalent"
                )
            texts.append(
                require_string(part.get("text"), f"content part {i} of an assistant message")
            )
        return "".join(texts)
    return json_text(content, "assistant message content")


def _chat_tool_call(call: Any) -> dict[str, Any]:
    call = require_mapping(call, "a tool call")
    call_type = call.get("type", "function")
    if call_type != "function":
        raise ConfigurationError(f"Tool call type {call_type!r} is not supported, only 'function'")
    call_id = require_string(call.get("id"), "a tool call's id")
    function = require_mapping(call.get("function"), f"the function of tool call {call_id!r}")
    name = require_string(function.get("name"), f"the name of tool call {call_id!r}")
    arguments = require_string(function.get("arguments"), f"the arguments of tool call {call_id!r}")
    return {
        "type": "function_call",
        "call_id": call_id,
        "id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def from_chat_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Convert OpenAI-chat messages into Responses ``input`` items.

    Roles map as follows, in order (spec §5.1 with the agent's tool-call fix):

    * ``system`` / ``user`` / ``developer`` → ``{"role", "content"}``;
    * ``assistant`` → ``{"role": "assistant", "content": text}`` when it has
      text or no tool calls, followed by one ``function_call`` item per entry
      of ``tool_calls`` (or ``toolCalls``); ``arguments`` is kept as the JSON
      string given;
    * ``tool`` → ``{"type": "function_call_output", "call_id", "output"}``
      from ``tool_call_id`` (or ``toolCallId``).

    Content: a string is kept, ``None`` becomes ``""``, a list of chat parts is
    converted part by part (``text`` → ``input_text``, ``image_url`` →
    ``input_image`` with ``detail`` defaulting to ``"auto"``, ``file`` →
    ``input_file``, ``input_audio`` kept, ``video_url`` → ``input_video``),
    any other value (e.g. a dict a tool returned) is JSON-encoded.

    Args:
        messages: chat messages as mappings.

    Returns:
        A new list of JSON-shaped input items.

    Raises:
        ConfigurationError: unknown role, a content part with no Responses
            equivalent, a malformed tool call, or a tool message without a
            call id.
    """
    items: list[dict[str, Any]] = []
    for index, raw in enumerate(messages):
        message = require_mapping(raw, f"chat message {index}")
        role = message.get("role")
        if role in ("system", "user", "developer"):
            items.append({"role": role, "content": _chat_content(message.get("content"), role)})
        elif role == "assistant":
            calls = message.get("tool_calls")
            if calls is None:
                calls = message.get("toolCalls")
            if calls is not None and not isinstance(calls, list):
                raise ConfigurationError(f"Assistant tool_calls must be a list, got {calls!r}")
            text = _chat_assistant_text(message.get("content"))
            if text or not calls:
                items.append({"role": "assistant", "content": text})
            if calls:
                items.extend(_chat_tool_call(call) for call in calls)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if call_id is None:
                call_id = message.get("toolCallId")
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": require_string(call_id, f"the tool_call_id of chat message {index}"),
                    "output": _chat_content(message.get("content"), "tool"),
                }
            )
        else:
            raise ConfigurationError(f"Unknown chat message role: {role!r}")
    return items


# ---------------------------------------------------------------------------
# Responses → chat


def to_chat_message(response: Any) -> dict[str, Any]:
    """Turn a response into one assistant chat message.

    ``content`` is the concatenation of the first ``message`` item's
    ``output_text`` parts, or ``None`` when that is empty (or there is no
    message). Every ``function_call`` item becomes an entry of ``tool_calls``
    (``{"id": call_id, "type": "function", "function": {"name", "arguments"}}``);
    refusal parts of that message become ``refusal``. Reasoning is ignored.

    Args:
        response: a ``runtime._protocol.wire`` response Struct or its JSON dict.

    Returns:
        ``{"role": "assistant", "content": ..., "tool_calls"?: [...], "refusal"?: ...}``.

    Raises:
        ConfigurationError: ``"No message found in response output"`` when the
            output has neither a message nor a function call.
    """
    output = list_field(as_json_dict(response), "output")
    message: Mapping[str, Any] | None = None
    tool_calls: list[dict[str, Any]] = []
    for item in output:
        if not isinstance(item, Mapping):
            continue
        item_type = item.get("type")
        if item_type == "message" and message is None:
            message = item
        elif item_type == "function_call":
            tool_calls.append(
                {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {"name": item.get("name"), "arguments": item.get("arguments")},
                }
            )
    if message is None and not tool_calls:
        raise ConfigurationError(_NO_MESSAGE)
    texts: list[str] = []
    refusals: list[str] = []
    if message is not None:
        message_content = message.get("content")
        if isinstance(message_content, str):
            texts.append(message_content)
        for part in list_field(message, "content"):
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                refusals.append(part["refusal"])
    chat: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if tool_calls:
        chat["tool_calls"] = tool_calls
    if refusals:
        chat["refusal"] = "".join(refusals)
    return chat
