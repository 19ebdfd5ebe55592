"""Decode inference request bodies and read a :class:`Conversation` out of them.

The body types below are deliberately loose: they type-check only the fields
the emulator uses (so ``"stream": "yes"`` is a 400 naming ``$.stream``) and
let every other field through untouched, as OpenRouter does with fields it
does not know. Malformed JSON, a non-object body, a wrong type or a missing
``model`` each become an :class:`HTTPError` 400 with msgspec's precise message.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

import msgspec

from runtime.emulator._http import HTTPError
from runtime.emulator._models import Conversation, ToolOutputSeen, ToolSpec, count_tokens

__all__ = [
    "ChatBody",
    "CompletionsBody",
    "ResponsesBody",
    "chat_conversation",
    "completions_conversation",
    "decode_body",
    "responses_conversation",
]


class _Body(msgspec.Struct, kw_only=True):
    model: str | None = None
    models: list[str] = []
    stream: bool | None = None


class ResponsesBody(_Body, kw_only=True):
    """The fields of a ``ResponsesRequest`` the emulator reads or echoes."""

    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    top_logprobs: int | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    text: dict[str, Any] | None = None


class ChatBody(_Body, kw_only=True):
    """The fields of a ``ChatRequest`` the emulator reads."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    response_format: dict[str, Any] | None = None


class CompletionsBody(_Body, kw_only=True):
    """The fields of a legacy ``CompletionCreateParams`` the emulator reads."""

    prompt: str | list[Any]
    max_tokens: int | None = None


_B = TypeVar("_B", bound=_Body)
_DECODERS: Final[dict[type[Any], msgspec.json.Decoder[Any]]] = {
    kind: msgspec.json.Decoder(kind) for kind in (ResponsesBody, ChatBody, CompletionsBody)
}


def decode_body(raw: bytes, kind: type[_B]) -> _B:
    """Decode and type-check a request body, or raise a 400 that says what is wrong."""
    if not raw.strip():
        raise HTTPError(400, "The request body is empty; a JSON object was expected.")
    try:
        body: _B = _DECODERS[kind].decode(raw)
    except msgspec.ValidationError as exc:
        raise HTTPError(400, f"Invalid request body: {exc}.") from None
    except msgspec.DecodeError as exc:
        raise HTTPError(400, f"The request body is not valid JSON: {exc}.") from None
    if body.model is None and not body.models:
        raise HTTPError(400, "The request body has no 'model' (and no 'models').")
    return body


def responses_conversation(body: ResponsesBody) -> Conversation:
    """What a built-in model reads from a Responses request."""
    texts: list[str] = [body.instructions or ""]
    items = [{"role": "user", "content": body.input}] if isinstance(body.input, str) else body.input
    last_user = ""
    names: dict[str, str] = {}
    results: list[ToolOutputSeen] = []
    earlier: list[ToolOutputSeen] = []
    called: list[str] = []
    answered: set[str] = set()
    for item in items or ():
        kind = item.get("type")
        if kind in (None, "message"):
            text = _content_text(item.get("content"))
            texts.append(text)
            if item.get("role") == "user":
                last_user = text
                if results:
                    earlier = list(results)
                results.clear()
        elif kind == "function_call":
            call_id, name = str(item.get("call_id", "")), str(item.get("name", ""))
            names[call_id] = name
            called.append(call_id)
            texts.append(name + str(item.get("arguments", "")))
        elif kind == "function_call_output":
            call_id = str(item.get("call_id", ""))
            answered.add(call_id)
            output = _content_text(item.get("output"))
            texts.append(output)
            results.append(ToolOutputSeen(call_id=call_id, name=names.get(call_id), output=output))
        elif kind == "reasoning":
            texts.append(_content_text(item.get("summary")) + _content_text(item.get("content")))
    for call_id in called:
        # As the providers behind OpenRouter do: a call without its output is a
        # broken conversation (the SDK sent such requests after a mixed round).
        if call_id not in answered:
            raise HTTPError(400, f"No tool output found for function call {call_id}.")
    tools = tuple(
        ToolSpec(name=str(tool["name"]), parameters=tool.get("parameters"))
        for tool in body.tools or ()
        if tool.get("type") == "function" and isinstance(tool.get("name"), str)
    )
    choice, forced = _tool_choice(body.tool_choice, nested=False)
    return Conversation(
        last_user_text=last_user,
        prompt_tokens=max(count_tokens("".join(texts)), 1),
        tools=tools,
        tool_choice=choice,
        forced_tools=forced,
        parallel_tool_calls=body.parallel_tool_calls is not False,
        results=tuple(results),
        earlier_results=tuple(earlier),
        max_output_tokens=body.max_output_tokens,
        output_schema=_output_schema((body.text or {}).get("format"), nested=False),
    )


def chat_conversation(body: ChatBody) -> Conversation:
    """What a built-in model reads from a Chat Completions request."""
    texts: list[str] = []
    last_user = ""
    names: dict[str, str] = {}
    results: list[ToolOutputSeen] = []
    for message in body.messages:
        role = message.get("role")
        text = _content_text(message.get("content"))
        texts.append(text)
        if role == "user":
            last_user = text
            results.clear()
        elif role == "assistant":
            for call in message.get("tool_calls") or ():
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    name = str(call["function"].get("name", ""))
                    names[str(call.get("id", ""))] = name
                    texts.append(name + str(call["function"].get("arguments", "")))
        elif role == "tool":
            call_id = str(message.get("tool_call_id", ""))
            results.append(ToolOutputSeen(call_id=call_id, name=names.get(call_id), output=text))
    tools = tuple(
        ToolSpec(name=str(tool["function"]["name"]), parameters=tool["function"].get("parameters"))
        for tool in body.tools or ()
        if tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    )
    choice, forced = _tool_choice(body.tool_choice, nested=True)
    cap = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    return Conversation(
        last_user_text=last_user,
        prompt_tokens=max(count_tokens("".join(texts)), 1),
        tools=tools,
        tool_choice=choice,
        forced_tools=forced,
        parallel_tool_calls=body.parallel_tool_calls is not False,
        results=tuple(results),
        max_output_tokens=cap,
        output_schema=_output_schema(body.response_format, nested=True),
    )


def completions_conversation(body: CompletionsBody) -> Conversation:
    """What a built-in model reads from a legacy Completions request."""
    if isinstance(body.prompt, str):
        prompt = body.prompt
    else:
        prompt = "\n".join(str(part) for part in body.prompt)
    return Conversation(
        last_user_text=prompt,
        prompt_tokens=max(count_tokens(prompt), 1),
        max_output_tokens=body.max_tokens,
    )


def _content_text(content: Any) -> str:
    """The text of a message content / tool output (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for part in content:
            if isinstance(part, dict):
                for key in ("text", "refusal"):
                    value = part.get(key)
                    if isinstance(value, str):
                        pieces.append(value)
            elif isinstance(part, str):
                pieces.append(part)
        return "".join(pieces)
    return ""


def _tool_choice(choice: Any, *, nested: bool) -> tuple[str, tuple[str, ...] | None]:
    """``(mode, forced names)`` from a ``tool_choice`` value of either API."""
    if isinstance(choice, str):
        return choice, None
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            holder = choice.get("function") if nested else choice
            name = holder.get("name") if isinstance(holder, dict) else None
            return "required", (str(name),) if name is not None else ()
        if choice.get("type") == "allowed_tools":
            names = tuple(
                str(tool.get("name"))
                for tool in choice.get("tools") or ()
                if isinstance(tool, dict) and tool.get("name") is not None
            )
            return str(choice.get("mode", "auto")), names
    return "auto", None


def _output_schema(fmt: Any, *, nested: bool) -> dict[str, Any] | None:
    """The JSON Schema a response format asks for (``{}`` for ``json_object``), or ``None``.

    Responses: ``text.format = {type: json_schema, name, schema}``; Chat:
    ``response_format = {type: json_schema, json_schema: {name, schema}}``.
    """
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        return {}
    if kind != "json_schema":
        return None
    holder = fmt.get("json_schema") if nested else fmt
    schema = holder.get("schema") if isinstance(holder, dict) else None
    return schema if isinstance(schema, dict) else {}
