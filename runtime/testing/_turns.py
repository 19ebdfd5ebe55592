"""Terse builders for scripted turns, and SSE bytes for hand-made streams.

These are conveniences over :class:`runtime.emulator.Turn`; anything they
build can also be written out as a ``Turn(...)`` literal. Chunking rules:
``chunks=None`` splits text into words (as the built-in models stream it),
``chunks=n`` cuts it into ``n`` nearly equal pieces (each piece is one delta
event on the wire).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import msgspec

from runtime._base.errors import ConfigurationError
from runtime.emulator._models import chunk_words, compute_usage
from runtime.emulator._responses import ResponseMeta, resplit, response_events
from runtime.emulator._script import Fault, Pricing, ToolCall, Turn, TurnError, TurnUsage
from runtime.emulator._stream import DONE_FRAME, data_frame

__all__ = [
    "error_turn",
    "failed_turn",
    "incomplete_turn",
    "sse_bytes",
    "text_turn",
    "tool_call_turn",
    "turn_events",
]

_ENCODER: Final = msgspec.json.Encoder()
FAKE_EPOCH: Final = 1_700_000_000

CallSpec = ToolCall | tuple[str, Mapping[str, Any] | str] | tuple[str, Mapping[str, Any] | str, str]


def _chunks(text: str, chunks: int | None) -> tuple[str, ...]:
    if chunks is None:
        return chunk_words(text)
    if chunks < 1:
        raise ConfigurationError(f"chunks {chunks!r} is not positive")
    return resplit(text, chunks) if text else ()


def text_turn(
    text: str,
    *,
    chunks: int | None = None,
    reasoning: str | None = None,
    reasoning_chunks: int | None = None,
    usage: TurnUsage | None = None,
    model: str | None = None,
    fault: Fault | None = None,
) -> Turn:
    """A turn answering ``text`` (optionally after ``reasoning``).

    Example: ``text_turn("hello", chunks=3)`` streams ``"he"``, ``"ll"``, ``"o"``.
    """
    return Turn(
        text=_chunks(text, chunks),
        reasoning=_chunks(reasoning, reasoning_chunks) if reasoning else (),
        usage=usage,
        model=model,
        fault=fault,
    )


def _tool_call(spec: CallSpec, chunks: int) -> ToolCall:
    if isinstance(spec, ToolCall):
        return spec
    name, arguments, *rest = spec
    text = arguments if isinstance(arguments, str) else _ENCODER.encode(arguments).decode()
    return ToolCall(
        name=name,
        arguments=resplit(text, chunks) if text else ("",),
        call_id=rest[0] if rest else None,
    )


def tool_call_turn(
    *calls: CallSpec,
    text: str | None = None,
    chunks: int = 1,
    reasoning: str | None = None,
    usage: TurnUsage | None = None,
    model: str | None = None,
    fault: Fault | None = None,
) -> Turn:
    """A turn calling tools, each given as ``(name, arguments)`` or ``(name, arguments, call_id)``.

    ``arguments`` is a mapping (encoded as compact JSON) or a raw string (sent
    as is, so it may be invalid JSON); ``chunks`` is how many delta events
    each call's arguments stream in. A :class:`ToolCall` is taken as is.

    Example: ``tool_call_turn(("get_weather", {"city": "Paris"}), chunks=2)``.

    Raises:
        ConfigurationError: no call is given, or ``chunks`` is not positive.
    """
    if not calls:
        raise ConfigurationError("tool_call_turn needs at least one call")
    if chunks < 1:
        raise ConfigurationError(f"chunks {chunks!r} is not positive")
    return Turn(
        text=chunk_words(text) if text else (),
        reasoning=chunk_words(reasoning) if reasoning else (),
        tool_calls=tuple(_tool_call(call, chunks) for call in calls),
        usage=usage,
        model=model,
        fault=fault,
    )


def failed_turn(
    message: str = "The emulated provider failed while generating.",
    *,
    text: str | None = None,
    code: str = "server_error",
    error_type: str = "server",
    status_code: int = 502,
    usage: TurnUsage | None = None,
) -> Turn:
    """A turn that streams ``text`` (if any) and then fails in-band (``response.failed``)."""
    return Turn(
        text=chunk_words(text) if text else (),
        status="failed",
        error=TurnError(message=message, code=code, error_type=error_type, status_code=status_code),
        usage=usage,
    )


def incomplete_turn(
    text: str,
    *,
    reason: Literal["max_output_tokens", "content_filter"] = "max_output_tokens",
    chunks: int | None = None,
    usage: TurnUsage | None = None,
) -> Turn:
    """A turn cut short: ends with ``response.incomplete`` and ``incomplete_details.reason``."""
    return Turn(
        text=_chunks(text, chunks), status="incomplete", incomplete_reason=reason, usage=usage
    )


def error_turn(status: int, *, retry_after: float | None = None, times: int | None = None) -> Turn:
    """A turn that answers an HTTP error status instead of a model response.

    Without ``times`` every request gets the error (an outage: the turn stays
    at the head of the queue). With ``times=N`` the first N requests get it and
    the next turn in the queue answers the request after them, e.g.
    ``FakeOpenRouter(error_turn(503, times=2), text_turn("ok"))`` answers 503,
    503, then "ok".
    """
    return Turn(fault=Fault(status=status, retry_after=retry_after, times=times))


def turn_events(
    turn: Turn,
    *,
    model: str = "emulator/scripted",
    serial: str = "emu000001",
    created_at: int = FAKE_EPOCH,
    prompt_tokens: int = 1,
    pricing: Pricing | None = None,
) -> list[dict[str, Any]]:
    """The Responses stream events the emulator would send for ``turn``.

    Deterministic (fixed id and timestamp unless given); handy with
    :func:`sse_bytes` to build a stream by hand or to feed a decoder.
    """
    usage = compute_usage(turn, prompt_tokens, pricing or Pricing())
    meta = ResponseMeta(
        response_id=f"gen-{created_at}-{serial}", serial=serial, created_at=created_at, model=model
    )
    return response_events(turn, meta, usage, turn.fault or Fault())


def sse_bytes(events: Iterable[Any], *, done: bool = True, comments: int = 0) -> bytes:
    """Encode ``events`` as an SSE body exactly as the emulator writes one.

    Args:
        events: JSON-encodable values (dicts, msgspec Structs), one ``data:``
            event each; ``bytes`` are copied through as ready-made frames.
        done: end with ``data: [DONE]``.
        comments: keep-alive comment lines (``: ``) before the first event.
    """
    parts = [b": \n\n"] * comments
    parts.extend(event if isinstance(event, bytes) else data_frame(event) for event in events)
    if done:
        parts.append(DONE_FRAME)
    return b"".join(parts)
