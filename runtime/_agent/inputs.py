"""Input normalisation for ``call_model``: what ``input`` may hold, checked before any I/O.

Accepted (spec §4): a string (one user message), or a list whose elements are
messages (``{"role", "content"}`` with an optional ``"type": "message"``) or
typed items (``function_call``, ``function_call_output``, ``reasoning``, any
output item a response returned, replayed verbatim). Message content is a
string or a list of Responses content parts.

Rejected with a ``ConfigurationError`` naming the value, because the server
would reject them or silently misread them: role ``tool``, chat-style parts
(``{"type": "text"}``, ``{"type": "image_url"}``) and Claude-style parts
(``{"type": "image", "source": ...}``). The converters
(``from_chat_messages``, ``from_claude_messages``) turn those into input items
explicitly; ``call_model`` never guesses.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, Final

import msgspec

from runtime._agent.tools import Tool, tool
from runtime._base.errors import ConfigurationError
from runtime._protocol.wire import ResponsesRequest

if typing.TYPE_CHECKING:
    import contextlib
    from collections.abc import Sequence

__all__ = [
    "MAX_JSON_DEPTH",
    "ToolSource",
    "check_input",
    "check_model",
    "check_nesting",
    "check_request_body",
    "check_tools",
]

_CONTAINERS: Final = (dict, list, tuple)
MAX_JSON_DEPTH: Final = 128
"""How deeply a request value may nest (objects and arrays). Deeper ones are
refused before any I/O: msgspec would fail with ``RecursionError`` near 1,000
levels, and the server refuses them with a 400."""

_ROLES: Final = frozenset({"user", "system", "assistant", "developer"})
_INPUT_PARTS: Final = frozenset(
    {"input_text", "input_image", "input_file", "input_audio", "input_video"}
)
_ASSISTANT_PARTS: Final = frozenset({"output_text", "refusal"}) | _INPUT_PARTS
_CONVERTIBLE: Final = {
    "text": "from_chat_messages()",
    "image_url": "from_chat_messages()",
    "image": "from_claude_messages()",
    "tool_use": "from_claude_messages()",
    "tool_result": "from_claude_messages()",
}


def check_input(value: Any) -> Any:
    """Validate ``input`` and return it unchanged (Structs are kept as they are).

    Raises:
        ConfigurationError: ``value`` (or one of its items) is not valid input.
    """
    if value is msgspec.UNSET or value is None or isinstance(value, str):
        return value
    if callable(value):
        return value
    if not isinstance(value, list | tuple):
        raise ConfigurationError(
            f"input must be a string or a list of items, got {type(value).__name__} {value!r}"
        )
    for index, item in enumerate(value):
        _check_item(index, item)
    return list(value)


def _check_item(index: int, item: Any) -> None:
    if isinstance(item, msgspec.Struct):
        return
    if not isinstance(item, dict):
        raise ConfigurationError(
            f"input[{index}] must be a dict or an item Struct, got {type(item).__name__} {item!r}"
        )
    kind = item.get("type")
    if kind is not None and kind != "message":
        if not isinstance(kind, str):
            raise ConfigurationError(f"input[{index}] has a non-string type {kind!r}")
        return  # a typed item (function_call, reasoning, ...): replayed as given
    role = item.get("role")
    if role == "tool":
        raise ConfigurationError(
            f"input[{index}] has role 'tool', which the Responses API does not accept; "
            "send a function_call_output item, or convert with from_chat_messages()"
        )
    if role not in _ROLES:
        raise ConfigurationError(
            f"input[{index}] has role {role!r}; expected one of {sorted(_ROLES)}"
        )
    content = item.get("content")
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise ConfigurationError(
            f"input[{index}].content must be a string or a list of parts, got {content!r}"
        )
    allowed = _ASSISTANT_PARTS if role == "assistant" else _INPUT_PARTS
    for j, part in enumerate(content):
        if isinstance(part, msgspec.Struct):
            continue
        part_type = part.get("type") if isinstance(part, dict) else None
        if part_type in allowed:
            continue
        hint = _CONVERTIBLE.get(part_type) if isinstance(part_type, str) else None
        advice = f"; convert it with {hint}" if hint else ""
        raise ConfigurationError(
            f"input[{index}].content[{j}] has part type {part_type!r}, which a {role} "
            f"message of the Responses API does not accept{advice}"
        )


def _decodable(tp: Any) -> Any:
    """``tp`` with Struct members dropped from unions that also hold a dict.

    ``ResponsesRequest`` accepts ``ReasoningConfig | dict`` and the like, which
    msgspec can encode but not decode; for checking, the dict member is enough.
    """
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = typing.get_args(tp)
        if any(typing.get_origin(m) is dict for m in members):
            kept = [
                m for m in members if not (isinstance(m, type) and issubclass(m, msgspec.Struct))
            ]
            return functools.reduce(lambda a, b: a | b, kept)
    return tp


@functools.cache
def _request_decoder() -> msgspec.json.Decoder[Any]:
    hints = typing.get_type_hints(ResponsesRequest)
    fields = [
        (name, _decodable(hints[name]), msgspec.UNSET)
        for name in ResponsesRequest.__struct_fields__
    ]
    shape = msgspec.defstruct("ResponsesRequestCheck", fields, kw_only=True)
    return msgspec.json.Decoder(shape)


def check_request_body(body: bytes) -> None:
    """Check an encoded request body against the ``ResponsesRequest`` field types.

    Raises:
        ConfigurationError: a field has the wrong type; the message names its path.
    """
    try:
        _request_decoder().decode(body)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"invalid request parameter: {exc}") from exc


@typing.runtime_checkable
class ToolSource(typing.Protocol):
    """Something that supplies tools for a run (an ``MCPServer``).

    ``tool_source()`` is an async context manager entered in the run's task for
    the run's duration; it yields the tools. A source may open a connection of
    its own there (its subprocess then lives in the run's nursery) and close it
    when the run ends.
    """

    def tool_source(self) -> contextlib.AbstractAsyncContextManager[list[Tool]]: ...


def check_tools(tools: Sequence[Any]) -> tuple[Tool | dict[str, Any] | ToolSource, ...]:
    """Validate the ``tools`` argument eagerly (before any I/O).

    ``Tool`` objects are client tools; a dict with a string ``type`` is a server
    tool (``{"type": "openrouter:web_search"}``), sent verbatim. A function tool
    in the wire format (``{"type": "function", "name", "parameters", ...}``, or
    the Chat form with a nested ``"function"``) becomes a manual JSON-Schema
    :class:`Tool`: it has no function to run, so the run stops on its calls.
    A :class:`ToolSource` (an ``MCPServer``) is kept; the run asks it for its
    tools when it starts.
    """
    if isinstance(tools, str | bytes | dict) or not isinstance(tools, list | tuple):
        raise ConfigurationError(f"tools must be a list of tools, got {tools!r}")
    checked: list[Tool | dict[str, Any] | ToolSource] = []
    for t in tools:
        if isinstance(t, Tool | ToolSource):
            checked.append(t)
        elif isinstance(t, dict) and t.get("type") == "function":
            checked.append(_function_tool_dict(t))
        elif isinstance(t, dict) and isinstance(t.get("type"), str):
            checked.append(t)
        else:
            raise ConfigurationError(
                f"tools must hold Tool objects (tool() or @function_tool), function-tool "
                f"dicts or server-tool dicts, got {t!r}"
            )
    return tuple(checked)


def _function_tool_dict(spec: dict[str, Any]) -> Tool:
    body = spec.get("function") if isinstance(spec.get("function"), dict) else spec
    assert isinstance(body, dict)
    name: Any = body.get("name")
    parameters = body.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    try:
        return tool(
            name,
            description=body.get("description"),
            input_schema=parameters,
            execute=False,
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"tools: the function tool {name!r}: {exc}") from None


def check_nesting(name: str, value: object, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse a parameter whose JSON would nest deeper than ``limit`` levels.

    Iterative (no recursion, so it cannot itself overflow); linear in the
    number of containers.

    Raises:
        ConfigurationError: naming the parameter, its depth (at least) and the limit.
    """
    if not isinstance(value, dict | list | tuple):
        return
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            raise ConfigurationError(
                f"{name} nests more than {limit} levels deep (objects and arrays); "
                "such a request is refused before it is sent."
            )
        children: Any = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, _CONTAINERS))


def check_model(request: dict[str, Any]) -> None:
    """The model must be named: ``model`` (a non-blank string), ``models`` or ``prompt``.

    A function of the turn is resolved later and checked then by the server.

    Raises:
        ConfigurationError: ``model`` is missing, empty or not a string.
    """
    model = request.get("model")
    if model is None:
        if "models" in request or "prompt" in request:
            return
        raise ConfigurationError(
            "model is required: pass model='openai/gpt-5' (any model id), or models=[...] "
            "for a fallback list."
        )
    if callable(model):
        return
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"model must be a model id such as 'openai/gpt-5', not {model!r}.")
