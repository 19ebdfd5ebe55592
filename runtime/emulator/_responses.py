"""Render a :class:`Turn` as a Responses API answer: stream events or one JSON object.

Sans-io and deterministic: the same turn, meta and usage give the same events.
The event order is the one of wire protocol §3.6:

====  ======================================================================
seq   event
====  ======================================================================
0     ``response.created`` (status ``in_progress``, ``output: []``, no ``usage``)
1     ``response.in_progress``
…     per output item, in ``output_index`` order:
        reasoning — ``output_item.added``, ``reasoning_text.delta`` (n) (or the
        ``reasoning_summary_*`` family), ``…done``, ``output_item.done``;
        message — ``output_item.added``, ``content_part.added``,
        ``output_text.delta`` (n), ``output_text.done``, ``content_part.done``,
        ``output_item.done``;
        function call — ``output_item.added``,
        ``function_call_arguments.delta`` (n), ``…arguments.done``,
        ``output_item.done``
last  ``response.completed`` / ``response.incomplete`` / ``response.failed``
      (or an ``error`` event), carrying the full response with usage and cost
====  ======================================================================

``sequence_number`` runs 0…n without gaps. ``item_id`` is the item's ``id``
(``fc_…`` for function calls, never the ``call_id``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from runtime.emulator._script import Fault, ToolCall, Turn, TurnError

if TYPE_CHECKING:
    from runtime.emulator._models import UsageNumbers

__all__ = [
    "ResponseMeta",
    "broken_arguments",
    "call_id_for",
    "resplit",
    "response_events",
    "response_json",
    "response_object",
    "responses_usage",
]

_DEFAULT_ERROR: Final = TurnError()
_NO_FAULT: Final = Fault()
_ECHO_DEFAULTS: Final[dict[str, Any]] = {
    "instructions": None,
    "metadata": {},
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "temperature": 1.0,
    "top_p": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "top_logprobs": 0,
    "previous_response_id": None,
    "store": False,
    "background": False,
    "service_tier": "default",
    "truncation": "disabled",
    "text": {"format": {"type": "text"}},
    "reasoning": None,
    "safety_identifier": None,
    "prompt_cache_key": None,
    "user": None,
}
ECHOED_FIELDS: Final = tuple(
    name for name in _ECHO_DEFAULTS if name not in ("store", "background", "service_tier")
)


class ResponseMeta(msgspec.Struct, frozen=True, kw_only=True):
    """Identity of one response.

    Attributes:
        response_id: the ``id`` (``gen-…``), also sent as ``X-Generation-Id``.
        serial: the stem of the item ids (``msg_<serial>_<i>``, ``fc_…``, ``call_…``).
        created_at: unix seconds.
        model: the model reported.
        echo: request fields echoed in the response object (instructions, tools, …).
    """

    response_id: str
    serial: str
    created_at: int
    model: str
    echo: dict[str, Any] = {}


def responses_usage(usage: UsageNumbers) -> dict[str, Any]:
    """The ``usage`` object of a Responses answer."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
        "cost": usage.cost,
        "is_byok": False,
        "cost_details": {
            "upstream_inference_cost": usage.cost,
            "upstream_inference_input_cost": usage.input_cost,
            "upstream_inference_output_cost": usage.output_cost,
        },
    }


def response_object(
    meta: ResponseMeta,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: UsageNumbers | None,
    error: TurnError | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    """The full response object (``OpenResponsesResult``) in a given state."""
    finished = status != "in_progress"
    obj: dict[str, Any] = {
        "id": meta.response_id,
        "object": "response",
        "created_at": meta.created_at,
        "completed_at": meta.created_at if finished else None,
        "model": meta.model,
        "status": status,
        "output": output,
        "error": {"code": error.code, "message": error.message} if error is not None else None,
        "incomplete_details": (
            {"reason": incomplete_reason} if incomplete_reason is not None else None
        ),
    }
    if finished and usage is not None:
        # The capture shows `usage: null` on in-progress snapshots, but the
        # OpenAPI subset's BaseResponsesResult forbids null there; omitting the
        # (optional) field satisfies both readings.
        obj["usage"] = responses_usage(usage)
    if finished:
        obj["output_text"] = "".join(
            part["text"]
            for item in output
            if item["type"] == "message"
            for part in item["content"]
            if part["type"] == "output_text"
        )
    for name, default in _ECHO_DEFAULTS.items():
        obj[name] = meta.echo.get(name, default)
    if error is not None:
        obj["error_type"] = error.error_type
    return obj


def response_events(
    turn: Turn, meta: ResponseMeta, usage: UsageNumbers, fault: Fault = _NO_FAULT
) -> list[dict[str, Any]]:
    """Every data event of a streamed answer, terminal event included.

    ``fault.fail_after`` / ``fault.error_after`` cut the stream after that many
    events and end it with ``response.failed`` / an ``error`` event; a turn with
    ``status="failed"`` ends with ``response.failed`` after all its content.
    """
    builder = _Builder(turn, meta, fault.bad_tool_arguments)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": builder.snapshot("in_progress")},
        {"type": "response.in_progress", "response": builder.snapshot("in_progress")},
    ]
    done_at: list[tuple[int, dict[str, Any]]] = []  # (event index, final item)
    for index, item in enumerate(builder.items):
        events.extend(builder.item_events(index, item))
        done_at.append((len(events) - 1, item))
    total = len(events)
    fail_cut = min(fault.fail_after, total) if fault.fail_after is not None else None
    error_cut = min(fault.error_after, total) if fault.error_after is not None else None
    terminal: dict[str, Any]
    if error_cut is not None and (fail_cut is None or error_cut < fail_cut):
        del events[error_cut:]
        error = turn.error or _DEFAULT_ERROR
        terminal = {"type": "error", "code": error.code, "message": error.message, "param": None}
    elif fail_cut is not None:
        del events[fail_cut:]
        finished = [item for at, item in done_at if at < fail_cut]
        terminal = _failed(meta, finished, usage, turn.error)
    elif turn.status == "failed":
        terminal = _failed(meta, builder.items, usage, turn.error)
    elif turn.status == "incomplete":
        terminal = {
            "type": "response.incomplete",
            "response": response_object(
                meta,
                status="incomplete",
                output=builder.items,
                usage=usage,
                incomplete_reason=turn.incomplete_reason,
            ),
        }
    else:
        terminal = {
            "type": "response.completed",
            "response": response_object(
                meta, status="completed", output=builder.items, usage=usage
            ),
        }
    events.append(terminal)
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def response_json(
    turn: Turn, meta: ResponseMeta, usage: UsageNumbers, fault: Fault = _NO_FAULT
) -> dict[str, Any]:
    """The non-streaming answer: one ``OpenResponsesResult``.

    A failed turn gives ``status: "failed"`` with ``error`` and ``error_type``.
    """
    items = _Builder(turn, meta, fault.bad_tool_arguments).items
    if turn.status == "failed" or fault.fail_after is not None or fault.error_after is not None:
        return response_object(
            meta, status="failed", output=items, usage=usage, error=turn.error or _DEFAULT_ERROR
        )
    if turn.status == "incomplete":
        return response_object(
            meta,
            status="incomplete",
            output=items,
            usage=usage,
            incomplete_reason=turn.incomplete_reason,
        )
    return response_object(meta, status="completed", output=items, usage=usage)


def _failed(
    meta: ResponseMeta,
    output: list[dict[str, Any]],
    usage: UsageNumbers,
    error: TurnError | None,
) -> dict[str, Any]:
    return {
        "type": "response.failed",
        "response": response_object(
            meta, status="failed", output=output, usage=usage, error=error or _DEFAULT_ERROR
        ),
    }


def broken_arguments(arguments: str) -> str:
    """``arguments`` made into invalid JSON (cut short by one character)."""
    return arguments[:-1] if len(arguments) > 1 else "{"


def resplit(text: str, pieces: int) -> tuple[str, ...]:
    """``text`` cut into ``pieces`` nearly equal chunks (at least one)."""
    pieces = max(min(pieces, len(text)), 1)
    size, extra = divmod(len(text), pieces)
    chunks, start = [], 0
    for index in range(pieces):
        end = start + size + (1 if index < extra else 0)
        chunks.append(text[start:end])
        start = end
    return tuple(chunks)


def call_id_for(call: ToolCall, serial: str, index: int) -> str:
    """The ``call_id`` of a call: its own, or ``call_<serial>_<index>``."""
    return call.call_id if call.call_id is not None else f"call_{serial}_{index}"


class _Builder:
    """The output items of a turn, and the events that stream each of them."""

    def __init__(self, turn: Turn, meta: ResponseMeta, bad_arguments: bool) -> None:
        self._turn = turn
        self._meta = meta
        serial = meta.serial
        items: list[dict[str, Any]] = []
        self._chunks: list[tuple[str, ...]] = []
        if turn.reasoning:
            text = turn.full_reasoning
            item: dict[str, Any] = {"type": "reasoning", "id": f"rs_{serial}_{len(items)}"}
            if turn.reasoning_style == "summary":
                item["summary"] = [{"type": "summary_text", "text": text}]
            else:
                item["summary"] = []
                item["content"] = [{"type": "reasoning_text", "text": text}]
            item["status"] = "completed"
            items.append(item)
            self._chunks.append(turn.reasoning)
        if turn.has_message:
            item = {
                "type": "message",
                "id": f"msg_{serial}_{len(items)}",
                "role": "assistant",
                "status": "incomplete" if turn.status == "incomplete" else "completed",
                "content": [_output_text(turn.full_text)],
            }
            if turn.phase is not None:
                item["phase"] = turn.phase
            items.append(item)
            self._chunks.append(turn.text)
        for index, call in enumerate(turn.tool_calls):
            chunks = call.arguments
            if bad_arguments:
                chunks = resplit(broken_arguments(call.full_arguments), len(chunks))
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_{serial}_{len(items)}",
                    "call_id": call_id_for(call, serial, index),
                    "name": call.name,
                    "arguments": "".join(chunks),
                    "status": "completed",
                }
            )
            self._chunks.append(chunks)
        self.items = items

    def snapshot(self, status: str) -> dict[str, Any]:
        return response_object(self._meta, status=status, output=[], usage=None)

    def item_events(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        chunks = self._chunks[index]
        item_id = item["id"]
        where = {"output_index": index, "item_id": item_id}
        kind = item["type"]
        events: list[dict[str, Any]] = []
        if kind == "reasoning":
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {
                        "type": "reasoning",
                        "id": item_id,
                        "summary": [],
                        "status": "in_progress",
                    },
                }
            )
            text = self._turn.full_reasoning
            if self._turn.reasoning_style == "summary":
                at = {**where, "summary_index": 0}
                empty = {"type": "summary_text", "text": ""}
                events.append(
                    {"type": "response.reasoning_summary_part.added", **at, "part": empty}
                )
                events.extend(
                    {"type": "response.reasoning_summary_text.delta", **at, "delta": chunk}
                    for chunk in chunks
                )
                events.append({"type": "response.reasoning_summary_text.done", **at, "text": text})
                full = {"type": "summary_text", "text": text}
                events.append({"type": "response.reasoning_summary_part.done", **at, "part": full})
            else:
                at = {**where, "content_index": 0}
                events.extend(
                    {"type": "response.reasoning_text.delta", **at, "delta": chunk}
                    for chunk in chunks
                )
                events.append({"type": "response.reasoning_text.done", **at, "text": text})
        elif kind == "message":
            added = {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress"}
            if "phase" in item:
                added["phase"] = item["phase"]
            added["content"] = []
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": added}
            )
            at = {**where, "content_index": 0}
            events.append({"type": "response.content_part.added", **at, "part": _output_text("")})
            events.extend(
                {"type": "response.output_text.delta", **at, "delta": chunk, "logprobs": []}
                for chunk in chunks
            )
            text = self._turn.full_text
            events.append({"type": "response.output_text.done", **at, "text": text, "logprobs": []})
            events.append({"type": "response.content_part.done", **at, "part": _output_text(text)})
        else:
            added = {**item, "arguments": "", "status": "in_progress"}
            events.append(
                {"type": "response.output_item.added", "output_index": index, "item": added}
            )
            events.extend(
                {"type": "response.function_call_arguments.delta", **where, "delta": chunk}
                for chunk in chunks
            )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
        return events


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
