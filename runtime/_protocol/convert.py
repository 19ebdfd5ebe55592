"""Convert between chat/Claude message formats and Responses API items: what both share.

The converters' one job: pure functions that translate OpenAI-chat messages and
Anthropic (Claude) messages into Responses ``input`` items, and a Responses
``response`` back into a chat message or a Claude message. Nothing here is
applied automatically by ``call_model``: callers wrap their inputs and outputs.

Everything is JSON-shaped: plain ``dict``/``list`` values in the wire's
snake_case spelling (``call_id``, ``image_url``, ``tool_use_id``, ...). A
response may also be a ``runtime._protocol.wire`` Struct; it is turned into the same
JSON shape first (through a JSON round trip, because ``msgspec.to_builtins``
cannot encode the ``msgspec.Raw`` values that unknown items are kept as).

Invariants:

1. Input is never mutated and output never aliases input containers: every
   dict or list returned is new (leaf strings and numbers are shared).
2. A ``function_call`` item is never emitted without the ``call_id`` the
   matching output will use, and no converter drops a tool result: a
   ``tool_result`` always yields a ``function_call_output``, even when empty.
3. Content we cannot express in the target format is reported, not silently
   dropped: on the way *in* (chat/Claude → Responses) it raises
   :class:`~runtime._base.errors.ConfigurationError` naming the part or block type;
   on the way *out* (response → Claude) it lands in ``unsupported_content``.

The converters live in :mod:`runtime._protocol.convert_chat` (chat ⇄ Responses)
and :mod:`runtime._protocol.convert_claude` (Claude ⇄ Responses, and telling a
Claude message list apart); this module holds the JSON helpers and checks they
both use, and the invariants both keep. Where the sources disagree, the
decisions are in each converter's docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from runtime._base.errors import ConfigurationError

__all__ = [
    "JSON_DECODER",
    "JSON_ENCODER",
    "as_json_dict",
    "json_text",
    "list_field",
    "require_mapping",
    "require_string",
    "sentence",
]

JSON_ENCODER: Final = msgspec.json.Encoder()
JSON_DECODER: Final = msgspec.json.Decoder()


def sentence(what: str, rest: str) -> str:
    """An error sentence about ``what`` (a lower-case noun phrase), capitalised."""
    return f"{what[:1].upper()}{what[1:]} {rest}"


def json_text(value: Any, what: str) -> str:
    """Compact JSON text of ``value`` (``JSON.stringify`` without spaces)."""
    try:
        return JSON_ENCODER.encode(value).decode("utf-8")
    except (TypeError, ValueError) as exc:
        message = sentence(what, f"cannot be encoded as JSON: {value!r}")
        raise ConfigurationError(message) from exc


def require_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(sentence(what, f"must be a mapping, got {value!r}"))
    return value


def require_string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(sentence(what, f"must be a string, got {value!r}"))
    return value


def as_json_dict(response: Any) -> Mapping[str, Any]:
    """The response as a JSON-shaped mapping (a ``runtime._protocol.wire`` Struct is re-decoded)."""
    if isinstance(response, msgspec.Struct):
        decoded = JSON_DECODER.decode(JSON_ENCODER.encode(response))
        return require_mapping(decoded, "response")
    return require_mapping(response, "response")


def list_field(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []
