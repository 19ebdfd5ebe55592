"""Stream events of ``POST /responses`` as msgspec Structs, and the run-level
events the runtime adds.

The one job of this module is to turn one SSE ``data`` payload into one typed
event (:func:`decode_event`). Folding events into tool calls and item
snapshots lives in :mod:`runtime._protocol.assembly`.

Rules:

1. **A tagged union on the exact wire string.** Every event type of
   wire-protocol.md §3.5 is a :class:`StreamEvent` subclass tagged with its
   ``type`` and named after it (``"response.output_text.delta"`` →
   :class:`OutputTextDelta`). Dispatch with ``match`` or ``type(event) is``.
2. **One parse on the fast path.** :func:`decode_event` runs one module-level
   union decoder. Only when that fails does it look at the ``type`` tag: an
   unknown tag (new server events, ``response.fusion_call.*``) becomes an
   :class:`UnknownEvent` carrying the raw payload; a known tag whose payload
   breaks its schema, a payload without ``type``, or one that is not JSON,
   raises ``RemoteProtocolError``: the server broke a schema we understand.
   A payload with no ``type`` but an ``error`` key is an :class:`ErrorEvent`.
3. **Hand-written streams decode.** Bookkeeping fields default to ``-1``
   ("not sent"): ``sequence_number`` and the ``*_index`` fields.
   ``logprobs`` defaults to ``()``. Payload fields (``delta``, ``item_id``,
   ``item``, ``response`` ...) are required.
4. **Events encode like the wire.** Defaults are encoded too
   (``omit_defaults=False``), so an encoded event has every field the spec
   requires; run-level events use the same base and the same ``type`` tag
   field, so the websocket feed encodes every event of a run one way.
5. **No GC tracking on the hot path.** Event Structs are created per token and
   retained by the event log; they are built from acyclic JSON, so they opt
   out of the cyclic garbage collector (``gc=False``), and the per-token
   ``logprobs`` field is a tuple (``[]`` decodes to the shared empty tuple)
   rather than a list. A text delta therefore allocates no GC-tracked object:
   decoding does not trigger collections and full collections stay cheap
   however long the log grows (measured: decode time per retained delta
   roughly halved, a full collection over 200k deltas 5x faster).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast, get_args

import msgspec
from msgspec import UNSET, UnsetType

from runtime._base.errors import RemoteProtocolError
from runtime._protocol.wire import (
    FunctionCallOutputItem,
    Logprob,
    OutputItem,
    Response,
    ResponseError,
    SummaryText,
    WireStruct,
    _dec_hook,
)

if TYPE_CHECKING:
    from runtime._protocol.wire import OutputContent

    _ContentSlot: TypeAlias = OutputContent
    _ItemSlot: TypeAlias = OutputItem
else:
    from runtime._protocol.wire import _ContentSlot, _ItemSlot

__all__ = [
    "TERMINAL_EVENTS",
    "AnyEvent",
    "ApplyPatchCallOperationDiffDelta",
    "ApplyPatchCallOperationDiffDone",
    "CodeInterpreterCallCodeDelta",
    "CodeInterpreterCallCodeDone",
    "CodeInterpreterCallCompleted",
    "CodeInterpreterCallInProgress",
    "CodeInterpreterCallInterpreting",
    "ContentPartAdded",
    "ContentPartDone",
    "CustomToolCallInputDelta",
    "CustomToolCallInputDone",
    "ErrorEvent",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "ImageGenerationCallCompleted",
    "ImageGenerationCallGenerating",
    "ImageGenerationCallInProgress",
    "ImageGenerationCallPartialImage",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputTextAnnotationAdded",
    "OutputTextDelta",
    "OutputTextDone",
    "ReasoningSummaryPartAdded",
    "ReasoningSummaryPartDone",
    "ReasoningSummaryTextDelta",
    "ReasoningSummaryTextDone",
    "ReasoningTextDelta",
    "ReasoningTextDone",
    "RefusalDelta",
    "RefusalDone",
    "ResponseCompleted",
    "ResponseCreated",
    "ResponseDebug",
    "ResponseErrorEvent",
    "ResponseFailed",
    "ResponseInProgress",
    "ResponseIncomplete",
    "RunEvent",
    "ServerEvent",
    "StreamEvent",
    "ToolCallOutput",
    "ToolPreliminaryResult",
    "ToolResult",
    "TurnEnd",
    "TurnRetry",
    "TurnStart",
    "UnknownEvent",
    "WebSearchCallCompleted",
    "WebSearchCallInProgress",
    "WebSearchCallSearching",
    "decode_event",
]


class StreamEvent(
    WireStruct, frozen=True, kw_only=True, tag_field="type", omit_defaults=False, gc=False
):
    """Base of every event: the server's stream events and the run-level ones."""

    @property
    def type(self) -> str:
        """The wire ``type`` tag, e.g. ``"response.output_text.delta"``."""
        return cast("str", self.__struct_config__.tag)


# ---------------------------------------------------------------------------
# Response lifecycle (the ``response`` object is the whole response so far)
# ---------------------------------------------------------------------------


class ResponseCreated(StreamEvent, frozen=True, kw_only=True, tag="response.created"):
    """``response.created``: the first event; ``response.status`` is ``in_progress``."""

    response: Response
    sequence_number: int = -1


class ResponseInProgress(StreamEvent, frozen=True, kw_only=True, tag="response.in_progress"):
    """``response.in_progress``."""

    response: Response
    sequence_number: int = -1


class ResponseCompleted(StreamEvent, frozen=True, kw_only=True, tag="response.completed"):
    """``response.completed`` (terminal): final ``output`` and ``usage``."""

    response: Response
    sequence_number: int = -1


class ResponseIncomplete(StreamEvent, frozen=True, kw_only=True, tag="response.incomplete"):
    """``response.incomplete`` (terminal): stopped early, see ``incomplete_details``."""

    response: Response
    sequence_number: int = -1


class ResponseFailed(StreamEvent, frozen=True, kw_only=True, tag="response.failed"):
    """``response.failed`` (terminal): ``response.error`` and ``response.error_type``."""

    response: Response
    sequence_number: int = -1


class ErrorEvent(StreamEvent, frozen=True, kw_only=True, tag="error"):
    """``error``: an in-stream failure, fatal for the turn.

    Two shapes exist (wire-protocol.md §3.7): the spec's flat ``code`` /
    ``message`` / ``param``, and the docs' nested ``error: {code, message}``.
    Both decode; :meth:`error_code` and :meth:`error_message` read either.
    """

    code: str | int | None = None
    message: str = ""
    param: str | None = None
    error: ResponseError | UnsetType = UNSET
    sequence_number: int = -1

    def error_code(self) -> str | int | None:
        """The error code, from the flat or the nested shape."""
        if self.code is None and isinstance(self.error, ResponseError):
            return self.error.code
        return self.code

    def error_message(self) -> str:
        """The error message, from the flat or the nested shape."""
        if not self.message and isinstance(self.error, ResponseError):
            return self.error.message
        return self.message


class ResponseErrorEvent(StreamEvent, frozen=True, kw_only=True, tag="response.error"):
    """``response.error`` (documented, absent from the spec): fatal for the turn."""

    error: ResponseError
    sequence_number: int = -1

    def error_code(self) -> str | int | None:
        """The error code."""
        return self.error.code

    def error_message(self) -> str:
        """The error message."""
        return self.error.message


# ---------------------------------------------------------------------------
# Output items and content parts
# ---------------------------------------------------------------------------


class OutputItemAdded(StreamEvent, frozen=True, kw_only=True, tag="response.output_item.added"):
    """``response.output_item.added``: the initial item at ``output_index``."""

    item: _ItemSlot
    output_index: int = -1
    sequence_number: int = -1


class OutputItemDone(StreamEvent, frozen=True, kw_only=True, tag="response.output_item.done"):
    """``response.output_item.done``: the final item (authoritative)."""

    item: _ItemSlot
    output_index: int = -1
    sequence_number: int = -1


class ContentPartAdded(StreamEvent, frozen=True, kw_only=True, tag="response.content_part.added"):
    """``response.content_part.added``: an empty part of a message or reasoning item."""

    item_id: str
    part: _ContentSlot
    output_index: int = -1
    content_index: int = -1
    sequence_number: int = -1


class ContentPartDone(StreamEvent, frozen=True, kw_only=True, tag="response.content_part.done"):
    """``response.content_part.done``: the complete part."""

    item_id: str
    part: _ContentSlot
    output_index: int = -1
    content_index: int = -1
    sequence_number: int = -1


class OutputTextDelta(StreamEvent, frozen=True, kw_only=True, tag="response.output_text.delta"):
    """``response.output_text.delta``: the next piece of a message's text (hot path)."""

    item_id: str
    delta: str
    output_index: int = -1
    content_index: int = -1
    logprobs: tuple[Logprob, ...] = ()
    sequence_number: int = -1


class OutputTextDone(StreamEvent, frozen=True, kw_only=True, tag="response.output_text.done"):
    """``response.output_text.done``: the full text of the part."""

    item_id: str
    text: str
    output_index: int = -1
    content_index: int = -1
    logprobs: tuple[Logprob, ...] = ()
    sequence_number: int = -1


class OutputTextAnnotationAdded(
    StreamEvent, frozen=True, kw_only=True, tag="response.output_text.annotation.added"
):
    """``response.output_text.annotation.added`` (e.g. a web-search citation)."""

    item_id: str
    annotation: dict[str, Any]
    output_index: int = -1
    content_index: int = -1
    annotation_index: int = -1
    sequence_number: int = -1


class RefusalDelta(StreamEvent, frozen=True, kw_only=True, tag="response.refusal.delta"):
    """``response.refusal.delta``."""

    item_id: str
    delta: str
    output_index: int = -1
    content_index: int = -1
    sequence_number: int = -1


class RefusalDone(StreamEvent, frozen=True, kw_only=True, tag="response.refusal.done"):
    """``response.refusal.done``."""

    item_id: str
    refusal: str
    output_index: int = -1
    content_index: int = -1
    sequence_number: int = -1


class FunctionCallArgumentsDelta(
    StreamEvent, frozen=True, kw_only=True, tag="response.function_call_arguments.delta"
):
    """``response.function_call_arguments.delta``; ``item_id`` is the item id, not ``call_id``."""

    item_id: str
    delta: str
    output_index: int = -1
    sequence_number: int = -1


class FunctionCallArgumentsDone(
    StreamEvent, frozen=True, kw_only=True, tag="response.function_call_arguments.done"
):
    """``response.function_call_arguments.done``: the full arguments JSON string."""

    item_id: str
    arguments: str
    name: str = ""
    output_index: int = -1
    sequence_number: int = -1


class ReasoningTextDelta(
    StreamEvent, frozen=True, kw_only=True, tag="response.reasoning_text.delta"
):
    """``response.reasoning_text.delta``: raw reasoning text."""

    item_id: str
    delta: str
    output_index: int = -1
    content_index: int = -1
    sequence_number: int = -1


class ReasoningTextDone(StreamEvent, frozen=True, kw_only=True, tag="response.reasoning_text.done"):
    """``response.reasoning_text.done``."""

    item_id: str
    text: str
    output_index: int = -1
    content_index: int = -1
    sequence_number: int = -1


class ReasoningSummaryPartAdded(
    StreamEvent, frozen=True, kw_only=True, tag="response.reasoning_summary_part.added"
):
    """``response.reasoning_summary_part.added``."""

    item_id: str
    part: SummaryText
    output_index: int = -1
    summary_index: int = -1
    sequence_number: int = -1


class ReasoningSummaryPartDone(
    StreamEvent, frozen=True, kw_only=True, tag="response.reasoning_summary_part.done"
):
    """``response.reasoning_summary_part.done``."""

    item_id: str
    part: SummaryText
    output_index: int = -1
    summary_index: int = -1
    sequence_number: int = -1


class ReasoningSummaryTextDelta(
    StreamEvent, frozen=True, kw_only=True, tag="response.reasoning_summary_text.delta"
):
    """``response.reasoning_summary_text.delta``."""

    item_id: str
    delta: str
    output_index: int = -1
    summary_index: int = -1
    sequence_number: int = -1


class ReasoningSummaryTextDone(
    StreamEvent, frozen=True, kw_only=True, tag="response.reasoning_summary_text.done"
):
    """``response.reasoning_summary_text.done``."""

    item_id: str
    text: str
    output_index: int = -1
    summary_index: int = -1
    sequence_number: int = -1


class CustomToolCallInputDelta(
    StreamEvent, frozen=True, kw_only=True, tag="response.custom_tool_call_input.delta"
):
    """``response.custom_tool_call_input.delta``."""

    item_id: str
    delta: str
    output_index: int = -1
    sequence_number: int = -1


class CustomToolCallInputDone(
    StreamEvent, frozen=True, kw_only=True, tag="response.custom_tool_call_input.done"
):
    """``response.custom_tool_call_input.done``."""

    item_id: str
    input: str
    output_index: int = -1
    sequence_number: int = -1


# ---------------------------------------------------------------------------
# Hosted-tool progress
# ---------------------------------------------------------------------------


class WebSearchCallInProgress(
    StreamEvent, frozen=True, kw_only=True, tag="response.web_search_call.in_progress"
):
    """``response.web_search_call.in_progress``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class WebSearchCallSearching(
    StreamEvent, frozen=True, kw_only=True, tag="response.web_search_call.searching"
):
    """``response.web_search_call.searching``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class WebSearchCallCompleted(
    StreamEvent, frozen=True, kw_only=True, tag="response.web_search_call.completed"
):
    """``response.web_search_call.completed``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class ImageGenerationCallInProgress(
    StreamEvent, frozen=True, kw_only=True, tag="response.image_generation_call.in_progress"
):
    """``response.image_generation_call.in_progress``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class ImageGenerationCallGenerating(
    StreamEvent, frozen=True, kw_only=True, tag="response.image_generation_call.generating"
):
    """``response.image_generation_call.generating``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class ImageGenerationCallPartialImage(
    StreamEvent, frozen=True, kw_only=True, tag="response.image_generation_call.partial_image"
):
    """``response.image_generation_call.partial_image``: a base64 preview."""

    item_id: str
    partial_image_b64: str
    partial_image_index: int = -1
    output_index: int = -1
    sequence_number: int = -1


class ImageGenerationCallCompleted(
    StreamEvent, frozen=True, kw_only=True, tag="response.image_generation_call.completed"
):
    """``response.image_generation_call.completed``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class CodeInterpreterCallInProgress(
    StreamEvent, frozen=True, kw_only=True, tag="response.code_interpreter_call.in_progress"
):
    """``response.code_interpreter_call.in_progress``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class CodeInterpreterCallInterpreting(
    StreamEvent, frozen=True, kw_only=True, tag="response.code_interpreter_call.interpreting"
):
    """``response.code_interpreter_call.interpreting``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class CodeInterpreterCallCompleted(
    StreamEvent, frozen=True, kw_only=True, tag="response.code_interpreter_call.completed"
):
    """``response.code_interpreter_call.completed``."""

    item_id: str
    output_index: int = -1
    sequence_number: int = -1


class CodeInterpreterCallCodeDelta(
    StreamEvent, frozen=True, kw_only=True, tag="response.code_interpreter_call_code.delta"
):
    """``response.code_interpreter_call_code.delta``."""

    item_id: str
    delta: str
    output_index: int = -1
    sequence_number: int = -1


class CodeInterpreterCallCodeDone(
    StreamEvent, frozen=True, kw_only=True, tag="response.code_interpreter_call_code.done"
):
    """``response.code_interpreter_call_code.done``."""

    item_id: str
    code: str
    output_index: int = -1
    sequence_number: int = -1


class ApplyPatchCallOperationDiffDelta(
    StreamEvent, frozen=True, kw_only=True, tag="response.apply_patch_call_operation_diff.delta"
):
    """``response.apply_patch_call_operation_diff.delta``."""

    item_id: str
    delta: str
    output_index: int = -1
    sequence_number: int = -1


class ApplyPatchCallOperationDiffDone(
    StreamEvent, frozen=True, kw_only=True, tag="response.apply_patch_call_operation_diff.done"
):
    """``response.apply_patch_call_operation_diff.done``."""

    item_id: str
    diff: str
    output_index: int = -1
    sequence_number: int = -1


class ResponseDebug(StreamEvent, frozen=True, kw_only=True, tag="response.debug"):
    """``response.debug`` (only with ``debug.echo_upstream_body``)."""

    debug: dict[str, Any]
    sequence_number: int = -1


class UnknownEvent(StreamEvent, frozen=True, kw_only=True, tag=False):
    """An event of a type this version does not know; passed through, never fatal.

    It encodes as ``{"type": ..., "raw": <the payload>}``; send ``raw`` on
    where the original bytes are wanted.

    Attributes:
        type: the event's ``type`` string.
        raw: the whole JSON payload, undecoded.
    """

    type: str
    raw: msgspec.Raw


# ---------------------------------------------------------------------------
# Run-level (synthetic) events, written by the runtime, never sent by the server
# ---------------------------------------------------------------------------


class TurnStart(StreamEvent, frozen=True, kw_only=True, tag="turn.start"):
    """Opens turn ``turn_number`` (0 = the initial request). ``timestamp`` is epoch ms."""

    turn_number: int
    timestamp: int


class TurnEnd(StreamEvent, frozen=True, kw_only=True, tag="turn.end"):
    """Closes turn ``turn_number``. ``timestamp`` is epoch ms."""

    turn_number: int
    timestamp: int


class TurnRetry(StreamEvent, frozen=True, kw_only=True, tag="turn.retry"):
    """The run resumed in another process (its worker was lost): turn ``turn_number``
    runs again from the run's last checkpoint. Events before this one come from the
    interrupted attempt; those after it from the new one. ``timestamp`` is epoch ms."""

    turn_number: int
    timestamp: int


class ToolPreliminaryResult(StreamEvent, frozen=True, kw_only=True, tag="tool.preliminary_result"):
    """A value a generator tool yielded while running."""

    tool_call_id: str
    result: Any
    timestamp: int


class ToolResult(StreamEvent, frozen=True, kw_only=True, tag="tool.result"):
    """A tool's final result (its validated output, or ``{"error": message}``)."""

    tool_call_id: str
    result: Any
    timestamp: int
    preliminary_results: list[Any] | UnsetType = UNSET


class ToolCallOutput(StreamEvent, frozen=True, kw_only=True, tag="tool.call_output"):
    """The ``function_call_output`` item exactly as it is sent back to the model."""

    output: FunctionCallOutputItem
    timestamp: int


_TaggedServerEvent: TypeAlias = (
    ResponseCreated
    | ResponseInProgress
    | ResponseCompleted
    | ResponseIncomplete
    | ResponseFailed
    | ErrorEvent
    | ResponseErrorEvent
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | OutputTextAnnotationAdded
    | RefusalDelta
    | RefusalDone
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | ReasoningTextDelta
    | ReasoningTextDone
    | ReasoningSummaryPartAdded
    | ReasoningSummaryPartDone
    | ReasoningSummaryTextDelta
    | ReasoningSummaryTextDone
    | CustomToolCallInputDelta
    | CustomToolCallInputDone
    | WebSearchCallInProgress
    | WebSearchCallSearching
    | WebSearchCallCompleted
    | ImageGenerationCallInProgress
    | ImageGenerationCallGenerating
    | ImageGenerationCallPartialImage
    | ImageGenerationCallCompleted
    | CodeInterpreterCallInProgress
    | CodeInterpreterCallInterpreting
    | CodeInterpreterCallCompleted
    | CodeInterpreterCallCodeDelta
    | CodeInterpreterCallCodeDone
    | ApplyPatchCallOperationDiffDelta
    | ApplyPatchCallOperationDiffDone
    | ResponseDebug
)

ServerEvent: TypeAlias = _TaggedServerEvent | UnknownEvent
"""Every event :func:`decode_event` can return."""

RunEvent: TypeAlias = (
    TurnStart | TurnEnd | TurnRetry | ToolPreliminaryResult | ToolResult | ToolCallOutput
)
"""The run-level events the runtime writes into a run's log."""

AnyEvent: TypeAlias = ServerEvent | RunEvent
"""Anything a run's event log holds."""

TERMINAL_EVENTS: Final = (ResponseCompleted, ResponseIncomplete, ResponseFailed)
"""The events that end a model response; use with ``isinstance``."""


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

_KNOWN_TYPES: Final[frozenset[str]] = frozenset(
    cast("str", cls.__struct_config__.tag) for cls in get_args(_TaggedServerEvent)
)
_DECODER: Final[msgspec.json.Decoder[_TaggedServerEvent]] = msgspec.json.Decoder(
    _TaggedServerEvent, dec_hook=_dec_hook
)


class _Probe(msgspec.Struct):
    """What is left to look at when the union decoder rejected a payload."""

    type: Any = None
    error: Any = None


_PROBE_DECODER: Final = msgspec.json.Decoder(_Probe)
_PREVIEW: Final = 120


def _preview(data: bytes) -> str:
    text = data[:_PREVIEW].decode("utf-8", "replace")
    return text + "..." if len(data) > _PREVIEW else text


def decode_event(data: bytes) -> ServerEvent:
    """Decode one SSE ``data`` payload of a ``/responses`` stream.

    One parse when the payload is a known, well-formed event. Check for the
    ``[DONE]`` sentinel before calling this: it is not JSON.

    Args:
        data: the payload bytes (``ServerSentEvent.data``).

    Returns:
        The typed event; :class:`UnknownEvent` for a ``type`` this version
        does not know; :class:`ErrorEvent` for a payload without ``type``
        that has an ``error`` key.

    Raises:
        RemoteProtocolError: the payload is not JSON, not an object, has no
            usable ``type``, or is a known event type that breaks its schema.
    """
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        return _decode_fallback(data, exc)
    except msgspec.DecodeError as exc:
        raise RemoteProtocolError(
            f"the server sent an event payload that is not JSON: {_preview(data)!r}"
        ) from exc


def _decode_fallback(data: bytes, exc: msgspec.ValidationError) -> ServerEvent:
    try:
        probe = _PROBE_DECODER.decode(data)
    except msgspec.DecodeError:
        raise RemoteProtocolError(
            f"the server sent an event payload that is not a JSON object: {_preview(data)!r}"
        ) from exc
    kind = probe.type
    if isinstance(kind, str):
        if kind in _KNOWN_TYPES:
            raise RemoteProtocolError(
                f"the server sent a {kind!r} event that does not match its schema ({exc})"
            ) from exc
        return UnknownEvent(type=kind, raw=msgspec.Raw(data))
    if kind is None and probe.error is not None:
        return _typeless_error(probe.error)
    raise RemoteProtocolError(
        f"the server sent an event without a string 'type': {_preview(data)!r}"
    ) from exc


def _typeless_error(error: Any) -> ErrorEvent:
    """A chat-style ``{"error": ...}`` payload as an :class:`ErrorEvent`, keeping its detail."""
    if isinstance(error, dict):
        try:
            return ErrorEvent(error=msgspec.convert(error, ResponseError))
        except msgspec.ValidationError:
            pass
    if isinstance(error, str):
        return ErrorEvent(message=error)
    return ErrorEvent(message=msgspec.json.encode(error).decode())
