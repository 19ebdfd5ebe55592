"""Convert Anthropic (Claude) messages to Responses ``input`` items, a response back
to a Claude message, and tell a Claude message list apart.

The shared rules and invariants are in :mod:`runtime._protocol.convert`.

Decisions where the sources disagree (see ``spec/callmodel.md`` §5, §9.2):

* ``from_claude_messages`` follows @openrouter/agent: images keep their
  message's role. It also fixes §9.2 item 10: an empty or image-only
  ``tool_result`` still produces a ``function_call_output`` (images become
  ``input_image`` parts of the output instead of synthetic
  ``image_generation_call`` items), and block order is preserved where the
  Responses API allows it (rule in :func:`from_claude_messages`).
* ``to_claude_message`` reports cached input tokens as
  ``cache_read_input_tokens`` (they are cache *reads*; the SDK puts them in
  ``cache_creation_input_tokens``, §9.2 item 11) and fills
  ``cache_creation_input_tokens`` from OpenRouter's
  ``input_tokens_details.cache_write_tokens``. ``input_tokens`` stays the
  Responses figure, which (unlike Anthropic's) includes the cached tokens.
  Output items and message parts with no Claude equivalent are listed in
  ``unsupported_content`` rather than skipped.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from runtime._base.errors import ConfigurationError
from runtime._protocol.convert import (
    JSON_DECODER,
    as_json_dict,
    json_text,
    list_field,
    require_mapping,
    require_string,
)

__all__ = [
    "ClaudeContentBlockType",
    "NonClaudeMessageRole",
    "extract_unsupported_content",
    "from_claude_messages",
    "get_unsupported_content_summary",
    "has_unsupported_content",
    "is_claude_style_messages",
    "to_claude_message",
]


class ClaudeContentBlockType(enum.StrEnum):
    """The Claude content block types :func:`from_claude_messages` understands."""

    TEXT = "text"
    IMAGE = "image"
    TOOL_USE = "tool_use"
    TOOL_RESULT = "tool_result"


class NonClaudeMessageRole(enum.StrEnum):
    """Message roles that prove a list is *not* Claude-style (Claude has only user/assistant)."""

    SYSTEM = "system"
    DEVELOPER = "developer"
    TOOL = "tool"


_NON_CLAUDE_ROLES = frozenset(NonClaudeMessageRole)


# ---------------------------------------------------------------------------
# Claude → Responses


def _claude_image_url(block: Mapping[str, Any]) -> str:
    source = require_mapping(block.get("source"), "an image block's source")
    stype = source.get("type")
    if stype == "url":
        return require_string(source.get("url"), "an image source url")
    if stype == "base64":
        media_type = require_string(source.get("media_type"), "an image source media_type")
        data = require_string(source.get("data"), "an image source data")
        return f"data:{media_type};base64,{data}"
    raise ConfigurationError(f"Unsupported image source type: {stype!r}")


def _claude_image_part(block: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "input_image", "detail": "auto", "image_url": _claude_image_url(block)}


def _claude_tool_output(block: Mapping[str, Any]) -> dict[str, Any]:
    call_id = require_string(block.get("tool_use_id"), "a tool_result block's tool_use_id")
    content = block.get("content")
    output: str | list[dict[str, Any]]
    if content is None:
        output = ""
    elif isinstance(content, str):
        output = content
    elif isinstance(content, list):
        parts: list[dict[str, Any]] = []
        has_image = False
        for raw in content:
            inner = require_mapping(raw, f"a block of tool_result {call_id!r}")
            inner_type = inner.get("type")
            if inner_type == "text":
                text = require_string(inner.get("text"), "a text block's text")
                parts.append({"type": "input_text", "text": text})
            elif inner_type == "image":
                parts.append(_claude_image_part(inner))
                has_image = True
            else:
                raise ConfigurationError(f"Unhandled content block type: {inner_type!r}")
        output = parts if has_image else "".join(part["text"] for part in parts)
    else:
        raise ConfigurationError(f"Tool result content must be a string or a list, got {content!r}")
    # ``is_error`` and ``cache_control`` have no Responses counterpart.
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def _claude_tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    call_id = require_string(block.get("id"), "a tool_use block's id")
    name = require_string(block.get("name"), f"the name of tool_use {call_id!r}")
    arguments = json_text(block.get("input", {}), f"the input of tool_use {call_id!r}")
    return {
        "type": "function_call",
        "call_id": call_id,
        "id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def from_claude_messages(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Convert Claude (Anthropic Messages) messages into Responses ``input`` items.

    A message whose ``content`` is a string becomes ``{"role", "content"}``.
    A block list is converted block by block, keeping the original order except
    where the Responses API forbids it. Per message, the items come out as:

    1. one ``function_call_output`` per ``tool_result`` block, in block order
       (Claude requires tool results to open a user message, and a call's
       output must directly follow the call). String content is the output;
       a block list gives its text blocks concatenated, or, when it holds an
       image, a list of ``input_text``/``input_image`` parts in block order.
       Empty and image-only results still produce an output.
    2. the message's ``text``/``image`` blocks, in their order: text only →
       ``{"role", "content": <texts concatenated>}`` (omitted when empty); with
       an image → ``{"type": "message", "role", "content": [parts]}`` with the
       message's own role and images as ``input_image`` (``detail: "auto"``;
       base64 sources become ``data:`` URLs);
    3. one ``function_call`` per ``tool_use`` block, in block order
       (``arguments`` is the compact JSON of ``input``), last, so that the next
       message's results follow them directly.

    Args:
        messages: Claude messages, ``{"role": "user" | "assistant", "content"}``.

    Returns:
        A new list of JSON-shaped input items.

    Raises:
        ConfigurationError: a role other than user/assistant, a block type
            other than text, image, tool_use and tool_result
            (``Unhandled content block type: 'thinking'``), or an image source
            other than ``url``/``base64``.
    """
    items: list[dict[str, Any]] = []
    for index, raw in enumerate(messages):
        message = require_mapping(raw, f"Claude message {index}")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise ConfigurationError(f"Claude message role must be user or assistant, got {role!r}")
        content = message.get("content")
        if isinstance(content, str):
            items.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise ConfigurationError(
                f"Claude message content must be a string or a list, got {content!r}"
            )
        calls: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        has_image = False
        for raw_block in content:
            block = require_mapping(raw_block, f"a content block of Claude message {index}")
            block_type = block.get("type")
            if block_type == "text":
                text = require_string(block.get("text"), "a text block's text")
                parts.append({"type": "input_text", "text": text})
            elif block_type == "image":
                parts.append(_claude_image_part(block))
                has_image = True
            elif block_type == "tool_use":
                calls.append(_claude_tool_call(block))
            elif block_type == "tool_result":
                items.append(_claude_tool_output(block))
            else:
                raise ConfigurationError(f"Unhandled content block type: {block_type!r}")
        if has_image:
            items.append({"type": "message", "role": role, "content": parts})
        else:
            text = "".join(part["text"] for part in parts)
            if text:
                items.append({"role": role, "content": text})
        items.extend(calls)
    return items


# ---------------------------------------------------------------------------
# Responses → Claude


def _unsupported(original_type: str, data: Any, reason: str) -> dict[str, Any]:
    return {"original_type": original_type, "data": data, "reason": reason}


def _citation(annotation: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = annotation.get("type")
    if kind == "url_citation":
        return {
            "type": "web_search_result_location",
            "cited_text": annotation.get("content") or "",
            "title": annotation.get("title") or "",
            "url": annotation.get("url") or "",
            "encrypted_index": "",
        }
    if kind in ("file_citation", "file_path"):
        return {
            "type": "char_location",
            "cited_text": "",
            "document_index": annotation.get("index") or 0,
            "document_title": (annotation.get("filename") or "") if kind == "file_citation" else "",
            "file_id": annotation.get("file_id") or "",
            "start_char_index": 0,
            "end_char_index": 0,
        }
    return None


def _claude_input(arguments: Any) -> Any:
    """Parsed tool arguments; ``{}`` when empty, ``{"_raw_arguments": raw}`` if not an object."""
    if arguments is None or arguments == "":
        return {}
    if not isinstance(arguments, str):
        return {"_raw_arguments": copy.deepcopy(arguments)}
    try:
        parsed = JSON_DECODER.decode(arguments)
    except msgspec.DecodeError:
        return {"_raw_arguments": arguments}
    # Claude's ``input`` is an object; anything else is kept raw as well.
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def _claude_message_parts(
    item: Mapping[str, Any], content: list[dict[str, Any]], unsupported: list[dict[str, Any]]
) -> None:
    for part in list_field(item, "content"):
        if not isinstance(part, Mapping) or "type" not in part:
            unsupported.append(
                _unsupported(
                    "unknown_message_part", copy.deepcopy(part), "message content part has no type"
                )
            )
            continue
        part_type = part["type"]
        if part_type == "output_text":
            block: dict[str, Any] = {"type": "text", "text": part.get("text") or ""}
            citations = [
                c
                for a in list_field(part, "annotations")
                if isinstance(a, Mapping) and (c := _citation(a)) is not None
            ]
            if citations:
                block["citations"] = citations
            content.append(block)
        elif part_type == "refusal":
            unsupported.append(
                _unsupported(
                    "refusal",
                    {"refusal": part.get("refusal")},
                    "Claude messages have no refusal content block",
                )
            )
        else:
            unsupported.append(
                _unsupported(
                    str(part_type),
                    copy.deepcopy(dict(part)),
                    "message part type has no Claude equivalent",
                )
            )


def _claude_reasoning(
    item: Mapping[str, Any], content: list[dict[str, Any]], unsupported: list[dict[str, Any]]
) -> None:
    signature = item.get("signature") or ""
    content.extend(
        {"type": "thinking", "thinking": entry["text"], "signature": signature}
        for entry in list_field(item, "summary")
        if isinstance(entry, Mapping) and entry.get("type") == "summary_text" and entry.get("text")
    )
    if item.get("encrypted_content"):
        unsupported.append(
            _unsupported(
                "reasoning_encrypted",
                {"id": item.get("id"), "encrypted_content": item["encrypted_content"]},
                "encrypted reasoning cannot be shown as a Claude thinking block",
            )
        )


def _stop_reason(response: Mapping[str, Any], has_tool_use: bool) -> str:
    if has_tool_use:
        return "tool_use"
    details = response.get("incomplete_details")
    if (
        response.get("status") == "incomplete"
        and isinstance(details, Mapping)
        and details.get("reason") == "max_output_tokens"
    ):
        return "max_tokens"
    return "end_turn"


def _claude_usage(usage: Any) -> dict[str, int]:
    if not isinstance(usage, Mapping):
        usage = {}
    details = usage.get("input_tokens_details")
    if not isinstance(details, Mapping):
        details = {}
    return {
        "input_tokens": usage.get("input_tokens") or 0,
        "output_tokens": usage.get("output_tokens") or 0,
        "cache_creation_input_tokens": details.get("cache_write_tokens") or 0,
        "cache_read_input_tokens": details.get("cached_tokens") or 0,
    }


def to_claude_message(response: Any) -> dict[str, Any]:
    """Turn a response into a Claude (Anthropic Messages) assistant message.

    Output items are walked in order:

    * ``message``: ``output_text`` → ``text`` blocks (annotations → ``citations``:
      ``url_citation`` → ``web_search_result_location``, ``file_citation`` /
      ``file_path`` → ``char_location``); ``refusal`` → unsupported;
    * ``function_call`` → ``tool_use`` with the parsed arguments as ``input``
      (``{}`` when empty, ``{"_raw_arguments": raw}`` when not a JSON object);
    * ``reasoning`` → one ``thinking`` block per non-empty ``summary_text``
      (``signature`` from the item, else ``""``); ``encrypted_content`` →
      unsupported ``reasoning_encrypted``;
    * ``web_search_call`` → ``server_tool_use`` named ``web_search``;
      ``file_search_call`` → ``tool_use`` named ``file_search``;
    * anything else (``image_generation_call``, server-tool items, items
      without ``type``) → an ``unsupported_content`` entry
      ``{"original_type", "data", "reason"}``.

    ``stop_reason`` is ``"tool_use"`` when there is a function call, else
    ``"max_tokens"`` for an ``incomplete`` response cut by
    ``max_output_tokens``, else ``"end_turn"``. ``unsupported_content`` is
    present only when non-empty.

    Args:
        response: a ``runtime._protocol.wire`` response Struct or its JSON dict.

    Returns:
        The Claude message as a new dict.
    """
    resp = as_json_dict(response)
    content: list[dict[str, Any]] = []
    unsupported: list[dict[str, Any]] = []
    has_tool_use = False
    for item in list_field(resp, "output"):
        if not isinstance(item, Mapping) or "type" not in item:
            unsupported.append(
                _unsupported("unknown", copy.deepcopy(item), "output item has no type")
            )
            continue
        item_type = item["type"]
        if item_type == "message":
            _claude_message_parts(item, content, unsupported)
        elif item_type == "function_call":
            has_tool_use = True
            content.append(
                {
                    "type": "tool_use",
                    "id": item.get("call_id"),
                    "name": item.get("name"),
                    "input": _claude_input(item.get("arguments")),
                }
            )
        elif item_type == "reasoning":
            _claude_reasoning(item, content, unsupported)
        elif item_type == "web_search_call":
            content.append(
                {
                    "type": "server_tool_use",
                    "id": item.get("id"),
                    "name": "web_search",
                    "input": {"status": item.get("status")},
                }
            )
        elif item_type == "file_search_call":
            content.append(
                {
                    "type": "tool_use",
                    "id": item.get("id"),
                    "name": "file_search",
                    "input": {
                        "queries": copy.deepcopy(item.get("queries")),
                        "status": item.get("status"),
                    },
                }
            )
        elif item_type == "image_generation_call":
            unsupported.append(
                _unsupported(
                    "image_generation_call",
                    {
                        "id": item.get("id"),
                        "result": item.get("result"),
                        "status": item.get("status"),
                    },
                    "Claude messages cannot carry generated images",
                )
            )
        else:
            unsupported.append(
                _unsupported(
                    str(item_type),
                    copy.deepcopy(dict(item)),
                    "output item type has no Claude equivalent",
                )
            )
    claude: dict[str, Any] = {
        "id": resp.get("id"),
        "type": "message",
        "role": "assistant",
        "model": resp.get("model") or "unknown",
        "content": content,
        "stop_reason": _stop_reason(resp, has_tool_use),
        "stop_sequence": None,
        "usage": _claude_usage(resp.get("usage")),
    }
    if unsupported:
        claude["unsupported_content"] = unsupported
    return claude


# ---------------------------------------------------------------------------
# detection and unsupported-content helpers


def is_claude_style_messages(messages: object) -> bool:
    """Whether ``messages`` looks like a Claude message list rather than chat/Responses input.

    Scans records that have a ``role`` and no top-level ``type``: a
    ``system``/``developer``/``tool`` role means no at once; a content list
    holding a ``tool_result`` block, an ``image`` block whose ``source`` is an
    object, or a ``tool_use`` block with a string ``id`` means yes. Otherwise
    (including an empty list or a non-list) no.
    """
    if not isinstance(messages, list | tuple) or not messages:
        return False
    for message in messages:
        if not isinstance(message, Mapping) or "role" not in message or "type" in message:
            continue
        role = message["role"]
        if isinstance(role, str) and role in _NON_CLAUDE_ROLES:
            return False
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for block in content:
            if not isinstance(block, Mapping):
                continue
            block_type = block.get("type")
            if (
                block_type == "tool_result"
                or (block_type == "image" and isinstance(block.get("source"), Mapping))
                or (block_type == "tool_use" and isinstance(block.get("id"), str))
            ):
                return True
    return False


def extract_unsupported_content(message: Mapping[str, Any], original_type: str) -> list[Any]:
    """The ``unsupported_content`` entries of a Claude message with this ``original_type``."""
    return [
        entry
        for entry in list_field(message, "unsupported_content")
        if isinstance(entry, Mapping) and entry.get("original_type") == original_type
    ]


def has_unsupported_content(message: Mapping[str, Any]) -> bool:
    """Whether a Claude message from :func:`to_claude_message` lost anything."""
    return bool(list_field(message, "unsupported_content"))


def get_unsupported_content_summary(message: Mapping[str, Any]) -> dict[str, int]:
    """How many ``unsupported_content`` entries there are per ``original_type``."""
    summary: dict[str, int] = {}
    for entry in list_field(message, "unsupported_content"):
        if isinstance(entry, Mapping):
            key = str(entry.get("original_type"))
            summary[key] = summary.get(key, 0) + 1
    return summary
