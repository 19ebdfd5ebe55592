"""Render a :class:`Turn` as a Chat Completions or legacy Completions answer.

Chat stream (wire protocol §4.4), one chunk per line below:

1. ``delta: {role: "assistant", content: ""}``
2. ``delta: {reasoning: …}`` per reasoning chunk
3. ``delta: {content: …}`` per text chunk
4. per tool call *i*: ``delta.tool_calls: [{index: i, id, type, function: {name, arguments: ""}}]``,
   then ``[{index: i, function: {arguments: <chunk>}}]`` per argument chunk
5. ``delta: {}`` with ``finish_reason`` (``stop`` / ``tool_calls`` / ``length`` /
   ``content_filter``)
6. ``choices: []`` with ``usage`` — exactly once, last

A failure (failed turn, ``fail_after`` / ``error_after``) replaces the tail
with the in-band error chunk of §4.5: top-level ``error`` and
``finish_reason: "error"``. Legacy completion chunks carry ``choices[].text``;
usage rides on the final chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from runtime.emulator._responses import broken_arguments, call_id_for, resplit
from runtime.emulator._script import Fault, Turn, TurnError

if TYPE_CHECKING:
    from runtime.emulator._models import UsageNumbers

__all__ = [
    "ChatMeta",
    "chat_chunks",
    "chat_json",
    "chat_usage",
    "completion_chunks",
    "completion_json",
]

_DEFAULT_ERROR: Final = TurnError()
_NO_FAULT: Final = Fault()
PROVIDER: Final = "Emulator"


class ChatMeta(msgspec.Struct, frozen=True, kw_only=True):
    """Identity of one chat or completion answer."""

    response_id: str
    serial: str
    created: int
    model: str


def chat_usage(usage: UsageNumbers) -> dict[str, Any]:
    """The ``usage`` object of a chat answer (``ChatUsage``)."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cost": usage.cost,
        "is_byok": False,
        "cost_details": {
            "upstream_inference_cost": usage.cost,
            "upstream_inference_prompt_cost": usage.input_cost,
            "upstream_inference_completions_cost": usage.output_cost,
        },
    }


def _finish_reason(turn: Turn) -> str:
    if turn.status == "failed":
        return "error"
    if turn.tool_calls:
        return "tool_calls"
    if turn.status == "incomplete":
        return "length" if turn.incomplete_reason == "max_output_tokens" else "content_filter"
    return "stop"


def _error_object(error: TurnError) -> dict[str, Any]:
    return {
        "code": error.status_code,
        "message": error.message,
        "metadata": {"error_type": error.error_type},
    }


def _tool_arguments(turn: Turn, fault: Fault) -> list[tuple[str, ...]]:
    if not fault.bad_tool_arguments:
        return [call.arguments for call in turn.tool_calls]
    return [
        resplit(broken_arguments(call.full_arguments), len(call.arguments))
        for call in turn.tool_calls
    ]


def chat_json(
    turn: Turn, meta: ChatMeta, usage: UsageNumbers, fault: Fault = _NO_FAULT
) -> dict[str, Any]:
    """The non-streaming answer: one ``ChatResult``.

    A failed turn is a 200 whose choice has ``finish_reason: "error"`` and an
    ``error`` object, as OpenRouter sends for a provider error after partial
    generation.
    """
    failed = (
        turn.status == "failed" or fault.fail_after is not None or fault.error_after is not None
    )
    message: dict[str, Any] = {
        "role": "assistant",
        "content": turn.full_text if turn.text or not turn.tool_calls else None,
    }
    if turn.reasoning:
        message["reasoning"] = turn.full_reasoning
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id_for(call, meta.serial, index),
                "type": "function",
                "function": {"name": call.name, "arguments": "".join(arguments)},
            }
            for index, (call, arguments) in enumerate(
                zip(turn.tool_calls, _tool_arguments(turn, fault), strict=True)
            )
        ]
    finish = "error" if failed else _finish_reason(turn)
    choice: dict[str, Any] = {
        "index": 0,
        "finish_reason": finish,
        "native_finish_reason": finish,
        "logprobs": None,
        "message": message,
    }
    if failed:
        choice["error"] = _error_object(turn.error or _DEFAULT_ERROR)
    return {
        "id": meta.response_id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "provider": PROVIDER,
        "system_fingerprint": None,
        "choices": [choice],
        "usage": chat_usage(usage),
    }


def chat_chunks(
    turn: Turn, meta: ChatMeta, usage: UsageNumbers, fault: Fault = _NO_FAULT
) -> list[dict[str, Any]]:
    """Every chunk of a streamed chat answer (see the module docstring)."""
    base = {
        "id": meta.response_id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "provider": PROVIDER,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {
            "index": 0,
            "delta": delta,
            "finish_reason": finish,
            "native_finish_reason": finish,
        }
        return {**base, "choices": [choice]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks.extend(chunk({"reasoning": piece}) for piece in turn.reasoning)
    chunks.extend(chunk({"content": piece}) for piece in turn.text)
    for index, (call, arguments) in enumerate(
        zip(turn.tool_calls, _tool_arguments(turn, fault), strict=True)
    ):
        first = {
            "index": index,
            "id": call_id_for(call, meta.serial, index),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [first]}))
        chunks.extend(
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in arguments
        )
    cuts = [n for n in (fault.fail_after, fault.error_after) if n is not None]
    if cuts or turn.status == "failed":
        del chunks[min(cuts) if cuts else len(chunks) :]
        error_chunk = chunk({"content": ""}, "error")
        error_chunk["error"] = _error_object(turn.error or _DEFAULT_ERROR)
        chunks.append(error_chunk)
        return chunks
    chunks.append(chunk({}, _finish_reason(turn)))
    chunks.append({**base, "choices": [], "usage": chat_usage(usage)})
    return chunks


def _legacy_usage(usage: UsageNumbers) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _legacy_finish(turn: Turn) -> str | None:
    reason = _finish_reason(turn)
    return reason if reason in ("stop", "length", "content_filter") else None


def completion_json(turn: Turn, meta: ChatMeta, usage: UsageNumbers) -> dict[str, Any]:
    """The non-streaming legacy answer (``LegacyCompletions_CompletionResponse``)."""
    return {
        "id": meta.response_id,
        "object": "text_completion",
        "created": meta.created,
        "model": meta.model,
        "provider": PROVIDER,
        "choices": [
            {
                "text": turn.full_text,
                "index": 0,
                "logprobs": None,
                "finish_reason": _legacy_finish(turn),
            }
        ],
        "usage": _legacy_usage(usage),
    }


def completion_chunks(
    turn: Turn, meta: ChatMeta, usage: UsageNumbers, fault: Fault = _NO_FAULT
) -> list[dict[str, Any]]:
    """Every chunk of a streamed legacy completion; usage rides on the last."""
    base = {
        "id": meta.response_id,
        "object": "text_completion",
        "created": meta.created,
        "model": meta.model,
        "provider": PROVIDER,
    }

    def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    chunks = [chunk(piece) for piece in turn.text]
    cuts = [n for n in (fault.fail_after, fault.error_after) if n is not None]
    if cuts or turn.status == "failed":
        del chunks[min(cuts) if cuts else len(chunks) :]
        error_chunk = chunk("")
        error_chunk["error"] = _error_object(turn.error or _DEFAULT_ERROR)
        chunks.append(error_chunk)
        return chunks
    last = chunk("", _legacy_finish(turn))
    last["usage"] = _legacy_usage(usage)
    chunks.append(last)
    return chunks
