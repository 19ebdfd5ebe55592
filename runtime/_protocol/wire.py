"""msgspec Structs for the bodies of ``POST /responses``: the request, its input
items, and the (non-streaming) response with its output items and usage.

The one job of this module is to give the JSON of wire-protocol.md §3.1 to §3.4 a
typed Python shape, and to turn it back into the same JSON.

Rules:

1. **One base.** Every wire type derives from :class:`WireStruct` (frozen,
   keyword-only). Wire names are field names: the Python side is snake_case
   because the wire is. Subclasses restate ``frozen=True, kw_only=True``:
   msgspec inherits them, but mypy's ``dataclass_transform`` does not.
2. **Requests omit what is unset.** Optional request fields are
   ``T | msgspec.UnsetType = msgspec.UNSET`` and are left out of the JSON; an
   explicit ``None`` is sent as ``null`` where the spec allows it.
3. **Inbound types tolerate growth.** Unknown fields are ignored; every field
   the server may leave out has a default. Inbound Structs encode their
   defaults too (``omit_defaults=False``), so re-encoding a decoded object
   gives every field the spec requires. Spec-required fields that carry
   identity (``id``, ``call_id``, ``status`` ...) stay required: a known item
   without them is a broken item, not a new one.
4. **Unknown item types never break decoding.** msgspec has no fallback
   variant for a tagged union, so output items (and message content parts)
   are declared with a private marker type that msgspec hands to
   :func:`_dec_hook` as plain JSON. The hook converts known ``type`` tags to
   their Struct and wraps any other object in :class:`UnknownItem` /
   :class:`UnknownContent`, which *are* the JSON object (``dict``
   subclasses), so they re-encode byte-for-byte and can be replayed to the
   server unchanged (wire-protocol.md §3.2: round-trip unknown items
   opaquely). The hook only runs for items, never for text deltas.
5. **Errors blame the right side.** Undecodable server bytes raise
   ``RemoteProtocolError``; a request that cannot be encoded raises
   ``ConfigurationError``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final, TypeAlias, cast

import msgspec
from msgspec import UNSET, UnsetType

from runtime._base.errors import ConfigurationError, RemoteProtocolError

__all__ = [
    "CacheControl",
    "CostDetails",
    "DebugConfig",
    "EasyInputMessage",
    "FileSearchCallItem",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "ImageGenerationCallItem",
    "IncompleteDetails",
    "InputFile",
    "InputImage",
    "InputText",
    "InputTokensDetails",
    "JsonSchemaFormat",
    "Logprob",
    "OutputContent",
    "OutputItem",
    "OutputItemBase",
    "OutputMessage",
    "OutputText",
    "OutputTokensDetails",
    "ParsedToolCall",
    "PromptCacheOptions",
    "ReasoningConfig",
    "ReasoningItem",
    "ReasoningText",
    "Refusal",
    "Response",
    "ResponseError",
    "ResponsesRequest",
    "SummaryText",
    "TextConfig",
    "ToolChoiceFunction",
    "TopLogprob",
    "UnknownContent",
    "UnknownItem",
    "Usage",
    "WebSearchCallItem",
    "WireStruct",
    "decode_response",
    "encode_request",
    "parse_arguments",
    "parse_tool_calls",
    "response_text",
]

logger = logging.getLogger("runtime")


class WireStruct(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every wire type: frozen, keyword-only, unset fields omitted."""


class _Inbound(WireStruct, frozen=True, kw_only=True, omit_defaults=False):
    """Base of what the server sends: defaults are written back out on encode."""


def _tag(struct: msgspec.Struct) -> str:
    # Every tag in this project is a string (the wire's ``type`` value).
    return cast("str", struct.__struct_config__.tag)


# ---------------------------------------------------------------------------
# Request side
# ---------------------------------------------------------------------------


class ReasoningConfig(WireStruct, frozen=True, kw_only=True):
    """``reasoning`` of a request (wire-protocol.md §3.1)."""

    effort: str | UnsetType | None = UNSET
    summary: str | UnsetType | None = UNSET
    enabled: bool | UnsetType | None = UNSET
    max_tokens: int | UnsetType | None = UNSET
    context: str | UnsetType | None = UNSET
    mode: str | UnsetType | None = UNSET


class JsonSchemaFormat(WireStruct, frozen=True, kw_only=True, tag_field="type", tag="json_schema"):
    """``text.format`` for structured output against a JSON Schema."""

    name: str
    schema: dict[str, Any]
    description: str | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET


class TextConfig(WireStruct, frozen=True, kw_only=True):
    """``text`` of a request: output format and verbosity."""

    format: JsonSchemaFormat | dict[str, Any] | UnsetType = UNSET
    verbosity: str | UnsetType | None = UNSET


class DebugConfig(WireStruct, frozen=True, kw_only=True):
    """``debug`` of a request (streaming only)."""

    echo_upstream_body: bool | UnsetType = UNSET


class CacheControl(WireStruct, frozen=True, kw_only=True, omit_defaults=False):
    """``cache_control``: automatic Anthropic-style prompt caching (``type`` always sent)."""

    type: str = "ephemeral"
    ttl: str | UnsetType = UNSET


class PromptCacheOptions(WireStruct, frozen=True, kw_only=True, omit_defaults=False):
    """``prompt_cache_options`` (newest OpenAI models only; ``mode`` always sent)."""

    mode: str = "explicit"
    ttl: str | UnsetType | None = UNSET


class ToolChoiceFunction(WireStruct, frozen=True, kw_only=True, tag_field="type", tag="function"):
    """``tool_choice`` forcing one function tool by name."""

    name: str


class FunctionTool(WireStruct, frozen=True, kw_only=True, tag_field="type", tag="function"):
    """A function tool of ``tools`` (flat, not nested under ``function``)."""

    name: str
    parameters: dict[str, Any] | None
    description: str | UnsetType | None = UNSET
    strict: bool | UnsetType | None = UNSET
    defer_loading: bool | UnsetType = UNSET


class _InputPart(WireStruct, frozen=True, kw_only=True, tag_field="type"):
    @property
    def type(self) -> str:
        """The wire ``type`` tag."""
        return _tag(self)


class InputText(_InputPart, frozen=True, kw_only=True, tag="input_text"):
    """A text content part of an input message."""

    text: str
    prompt_cache_breakpoint: dict[str, Any] | UnsetType | None = UNSET


class InputImage(_InputPart, frozen=True, kw_only=True, tag="input_image", omit_defaults=False):
    """An image content part; ``detail`` is required by the schema, so always sent."""

    image_url: str | UnsetType | None = UNSET
    detail: str = "auto"


class InputFile(_InputPart, frozen=True, kw_only=True, tag="input_file"):
    """A file content part (``file_data`` is a base64 ``data:`` URL)."""

    filename: str | UnsetType = UNSET
    file_data: str | UnsetType = UNSET
    file_url: str | UnsetType = UNSET
    file_id: str | UnsetType | None = UNSET


class EasyInputMessage(WireStruct, frozen=True, kw_only=True, tag_field="type", tag="message"):
    """A conversation message of ``input``: ``role`` plus text or content parts.

    Attributes:
        role: ``"user"``, ``"system"``, ``"developer"`` or ``"assistant"``.
        content: a string, a list of content parts (Structs or dicts), or ``None``.
        phase: ``"commentary"`` or ``"final_answer"`` on assistant messages.
    """

    role: str
    content: str | list[Any] | None
    phase: str | UnsetType | None = UNSET

    @property
    def type(self) -> str:
        """The wire ``type`` tag, ``"message"``."""
        return "message"


class FunctionCallOutputItem(
    WireStruct, frozen=True, kw_only=True, tag_field="type", tag="function_call_output"
):
    """A tool's result sent back to the model (pairs with a call by ``call_id``)."""

    call_id: str
    output: str | list[Any]
    id: str | UnsetType | None = UNSET
    status: str | UnsetType | None = UNSET

    @property
    def type(self) -> str:
        """The wire ``type`` tag, ``"function_call_output"``."""
        return "function_call_output"


class ResponsesRequest(WireStruct, frozen=True, kw_only=True):
    """The body of ``POST /responses``: every field of wire-protocol.md §3.1.

    Every field is optional and left out of the JSON unless set. Nested
    configuration accepts either the typed Struct or a plain dict. The type is
    meant for encoding (:func:`encode_request`); it is not decodable by msgspec
    because of the ``Struct | dict`` unions.
    """

    model: str | UnsetType = UNSET
    models: list[str] | UnsetType = UNSET
    input: str | list[Any] | UnsetType = UNSET
    instructions: str | UnsetType | None = UNSET
    stream: bool | UnsetType = UNSET
    tools: list[Any] | UnsetType = UNSET
    tool_choice: str | ToolChoiceFunction | dict[str, Any] | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType | None = UNSET
    max_tool_calls: int | UnsetType | None = UNSET
    stop_server_tools_when: list[dict[str, Any]] | UnsetType = UNSET
    max_output_tokens: int | UnsetType | None = UNSET
    temperature: float | UnsetType | None = UNSET
    top_p: float | UnsetType | None = UNSET
    top_k: int | UnsetType = UNSET
    top_logprobs: int | UnsetType | None = UNSET
    frequency_penalty: float | UnsetType | None = UNSET
    presence_penalty: float | UnsetType | None = UNSET
    reasoning: ReasoningConfig | dict[str, Any] | UnsetType | None = UNSET
    include: list[str] | UnsetType | None = UNSET
    text: TextConfig | dict[str, Any] | UnsetType = UNSET
    modalities: list[str] | UnsetType = UNSET
    image_config: dict[str, Any] | UnsetType = UNSET
    metadata: dict[str, str] | UnsetType | None = UNSET
    user: str | UnsetType = UNSET
    safety_identifier: str | UnsetType | None = UNSET
    session_id: str | UnsetType = UNSET
    prompt_cache_key: str | UnsetType | None = UNSET
    prompt_cache_options: PromptCacheOptions | dict[str, Any] | UnsetType | None = UNSET
    cache_control: CacheControl | dict[str, Any] | UnsetType = UNSET
    prompt: dict[str, Any] | UnsetType | None = UNSET
    service_tier: str | UnsetType | None = UNSET
    truncation: str | UnsetType | None = UNSET
    provider: dict[str, Any] | UnsetType | None = UNSET
    plugins: list[dict[str, Any]] | UnsetType = UNSET
    route: str | UnsetType | None = UNSET
    trace: dict[str, Any] | UnsetType = UNSET
    debug: DebugConfig | dict[str, Any] | UnsetType = UNSET
    store: bool | UnsetType = UNSET
    previous_response_id: str | UnsetType | None = UNSET
    background: bool | UnsetType | None = UNSET


_ENCODER: Final = msgspec.json.Encoder()


def encode_request(request: ResponsesRequest) -> bytes:
    """The JSON body for ``request``; unset fields are left out.

    Raises:
        ConfigurationError: the request holds a value JSON cannot represent.
    """
    try:
        return _ENCODER.encode(request)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigurationError(
            f"the request holds a value that cannot be sent as JSON ({exc})"
        ) from exc


# ---------------------------------------------------------------------------
# Response side: content parts and output items
# ---------------------------------------------------------------------------


class _ContentMarker:
    """Runtime declared type of content-part slots; see rule 4 of the module docstring."""

    __slots__ = ()


class _ItemMarker:
    """Runtime declared type of output-item slots; see rule 4 of the module docstring."""

    __slots__ = ()


class TopLogprob(_Inbound, frozen=True, kw_only=True):
    """One alternative token of a :class:`Logprob`."""

    token: str
    logprob: float
    bytes: list[int] | UnsetType = UNSET


class Logprob(_Inbound, frozen=True, kw_only=True):
    """Log probability of one output token."""

    token: str
    logprob: float
    bytes: list[int] | UnsetType = UNSET
    top_logprobs: list[TopLogprob] | UnsetType = UNSET


class _ContentBase(_Inbound, _ContentMarker, frozen=True, kw_only=True, tag_field="type"):
    @property
    def type(self) -> str:
        """The wire ``type`` tag."""
        return _tag(self)


class OutputText(_ContentBase, frozen=True, kw_only=True, tag="output_text"):
    """Text of an assistant message."""

    text: str
    annotations: list[dict[str, Any]] = []
    logprobs: list[Logprob] = []


class Refusal(_ContentBase, frozen=True, kw_only=True, tag="refusal"):
    """A refusal in place of text."""

    refusal: str


class ReasoningText(_ContentBase, frozen=True, kw_only=True, tag="reasoning_text"):
    """Raw reasoning text (a reasoning item's ``content`` part)."""

    text: str


class SummaryText(_Inbound, frozen=True, kw_only=True, tag_field="type", tag="summary_text"):
    """One block of a reasoning summary."""

    text: str

    @property
    def type(self) -> str:
        """The wire ``type`` tag, ``"summary_text"``."""
        return "summary_text"


class UnknownContent(dict[str, Any], _ContentMarker):
    """A content part of a type this version does not know, kept as its JSON object.

    It *is* the decoded object (a ``dict`` subclass), so it encodes back
    unchanged.
    """

    __slots__ = ()

    @property
    def type(self) -> str:
        """The part's wire ``type``."""
        return str(self.get("type", ""))

    @property
    def raw(self) -> dict[str, Any]:
        """The part as a plain dict."""
        return dict(self)


class OutputItemBase(_Inbound, _ItemMarker, frozen=True, kw_only=True, tag_field="type"):
    """Base of every typed output item; ``type`` is the wire tag."""

    @property
    def type(self) -> str:
        """The wire ``type`` tag."""
        return _tag(self)


class OutputMessage(OutputItemBase, frozen=True, kw_only=True, tag="message"):
    """An assistant message item."""

    id: str
    role: str = "assistant"
    content: list[_ContentSlot] = []
    status: str | UnsetType = UNSET
    phase: str | UnsetType | None = UNSET


class ReasoningItem(OutputItemBase, frozen=True, kw_only=True, tag="reasoning"):
    """A reasoning item; replay it unchanged (``encrypted_content``, ``signature``)."""

    id: str
    summary: list[SummaryText] = []
    content: list[ReasoningText] | UnsetType | None = UNSET
    encrypted_content: str | UnsetType | None = UNSET
    signature: str | UnsetType | None = UNSET
    format: str | UnsetType | None = UNSET
    status: str | UnsetType = UNSET


class FunctionCallItem(OutputItemBase, frozen=True, kw_only=True, tag="function_call"):
    """A function call requested by the model (also replayed as an input item).

    ``arguments`` is the raw JSON string; see :func:`parse_tool_calls`.
    ``call_id`` (not ``id``) is what a ``function_call_output`` echoes.
    """

    call_id: str
    name: str
    arguments: str
    id: str | UnsetType = UNSET
    status: str | UnsetType = UNSET
    namespace: str | UnsetType = UNSET
    subagent_id: str | UnsetType = UNSET
    subagent_items: list[dict[str, Any]] | UnsetType = UNSET


class WebSearchCallItem(OutputItemBase, frozen=True, kw_only=True, tag="web_search_call"):
    """A hosted web search call."""

    id: str
    status: str
    action: dict[str, Any] | UnsetType = UNSET


class FileSearchCallItem(OutputItemBase, frozen=True, kw_only=True, tag="file_search_call"):
    """A hosted file search call."""

    id: str
    status: str
    queries: list[str] = []
    results: list[dict[str, Any]] | UnsetType | None = UNSET


class ImageGenerationCallItem(
    OutputItemBase, frozen=True, kw_only=True, tag="image_generation_call"
):
    """A hosted image generation call; ``result`` is base64 image data."""

    id: str
    status: str
    result: str | UnsetType | None = UNSET


class UnknownItem(dict[str, Any], _ItemMarker):
    """An output item of a type this version does not know (server tools, ...).

    It *is* the decoded JSON object (a ``dict`` subclass), so it re-encodes
    unchanged and can be sent back in the next request's ``input`` as is.
    """

    __slots__ = ()

    @property
    def type(self) -> str:
        """The item's wire ``type`` (e.g. ``"openrouter:web_search"``)."""
        return str(self.get("type", ""))

    @property
    def raw(self) -> dict[str, Any]:
        """The item as a plain dict."""
        return dict(self)


OutputContent: TypeAlias = OutputText | Refusal | ReasoningText | UnknownContent
OutputItem: TypeAlias = (
    OutputMessage
    | ReasoningItem
    | FunctionCallItem
    | WebSearchCallItem
    | FileSearchCallItem
    | ImageGenerationCallItem
    | UnknownItem
)

# Rule 4: mypy sees the unions; msgspec (which resolves the annotation strings at
# runtime) sees the marker classes and calls _dec_hook with plain JSON.
if TYPE_CHECKING:
    _ContentSlot: TypeAlias = OutputContent
    _ItemSlot: TypeAlias = OutputItem
else:
    _ContentSlot = _ContentMarker
    _ItemSlot = _ItemMarker

_CONTENT_TYPES: Final[dict[str, type[msgspec.Struct]]] = {
    "output_text": OutputText,
    "refusal": Refusal,
    "reasoning_text": ReasoningText,
}
_ITEM_TYPES: Final[dict[str, type[msgspec.Struct]]] = {
    "message": OutputMessage,
    "reasoning": ReasoningItem,
    "function_call": FunctionCallItem,
    "web_search_call": WebSearchCallItem,
    "file_search_call": FileSearchCallItem,
    "image_generation_call": ImageGenerationCallItem,
}


def _convert_tagged(
    obj: Any,
    known: dict[str, type[msgspec.Struct]],
    marker: type,
    unknown: type[dict[str, Any]],
) -> Any:
    if isinstance(obj, marker):
        return obj
    if not isinstance(obj, dict):
        raise msgspec.ValidationError(f"Expected `object`, got `{type(obj).__name__}`")
    tag = obj.get("type")
    if not isinstance(tag, str):
        raise msgspec.ValidationError("Object missing required field `type` of type `str`")
    cls = known.get(tag)
    if cls is None:
        return unknown(obj)
    try:
        return msgspec.convert(obj, cls, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        # msgspec does not prefix a hook's error with its path; name the part.
        raise msgspec.ValidationError(f"{exc} (in a {tag!r} object)") from exc


def _dec_hook(tp: type, obj: Any) -> Any:
    """msgspec ``dec_hook`` resolving output-item and content-part slots (rule 4)."""
    if tp is _ItemMarker:
        return _convert_tagged(obj, _ITEM_TYPES, _ItemMarker, UnknownItem)
    if tp is _ContentMarker:
        return _convert_tagged(obj, _CONTENT_TYPES, _ContentMarker, UnknownContent)
    raise NotImplementedError(f"no decoder for type {tp!r}")


# ---------------------------------------------------------------------------
# Response side: the response object
# ---------------------------------------------------------------------------


class ResponseError(_Inbound, frozen=True, kw_only=True):
    """``error`` of a failed response or of an in-stream error event.

    ``code`` is a string for Responses errors and may be an integer in
    chat-style errors; ``metadata`` is an open mapping when present.
    """

    code: str | int | None = None
    message: str = ""
    metadata: dict[str, Any] | UnsetType | None = UNSET


class IncompleteDetails(_Inbound, frozen=True, kw_only=True):
    """Why a response stopped early: ``max_output_tokens`` or ``content_filter``."""

    reason: str | None = None


class InputTokensDetails(_Inbound, frozen=True, kw_only=True):
    """``usage.input_tokens_details``."""

    cached_tokens: int = 0
    cache_write_tokens: int | UnsetType = UNSET


class OutputTokensDetails(_Inbound, frozen=True, kw_only=True):
    """``usage.output_tokens_details``."""

    reasoning_tokens: int = 0


class CostDetails(_Inbound, frozen=True, kw_only=True):
    """``usage.cost_details`` (USD)."""

    upstream_inference_cost: float | None = None
    upstream_inference_input_cost: float = 0.0
    upstream_inference_output_cost: float = 0.0


class Usage(_Inbound, frozen=True, kw_only=True):
    """Token usage and cost of one model response (wire-protocol.md §3.4)."""

    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = msgspec.field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = msgspec.field(default_factory=OutputTokensDetails)
    total_tokens: int = 0
    cost: float | None = None
    is_byok: bool = False
    cost_details: CostDetails | UnsetType = UNSET
    server_tool_use_details: dict[str, Any] | UnsetType = UNSET


class Response(_Inbound, frozen=True, kw_only=True):
    """A Responses API result (``OpenResponsesResult``), streamed or not.

    Only ``id`` and ``status`` are required; everything else has the default
    the spec implies. ``output`` holds typed items, with :class:`UnknownItem`
    for types this version does not know.
    """

    id: str
    status: str
    object: str = "response"
    created_at: int = 0
    completed_at: int | None = None
    model: str = ""
    output: list[_ItemSlot] = []
    output_text: str = ""
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    usage: Usage | None = None
    error_type: str | None = None
    instructions: str | list[Any] | None = None
    metadata: dict[str, Any] | None = None
    tools: list[Any] = []
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = False
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    max_output_tokens: int | UnsetType | None = UNSET
    max_tool_calls: int | UnsetType | None = UNSET
    top_logprobs: int | UnsetType | None = UNSET
    previous_response_id: str | UnsetType | None = UNSET
    store: bool | UnsetType = UNSET
    background: bool | UnsetType | None = UNSET
    service_tier: str | UnsetType | None = UNSET
    truncation: str | UnsetType | None = UNSET
    text: dict[str, Any] | UnsetType = UNSET
    reasoning: dict[str, Any] | UnsetType | None = UNSET
    safety_identifier: str | UnsetType | None = UNSET
    prompt_cache_key: str | UnsetType | None = UNSET
    user: str | UnsetType | None = UNSET
    openrouter_metadata: dict[str, Any] | UnsetType | None = UNSET


class ParsedToolCall(WireStruct, frozen=True, kw_only=True):
    """A function call with its arguments parsed (spec §3.3).

    Attributes:
        id: the wire ``call_id`` (never the item id).
        name: the function name.
        arguments: the parsed JSON arguments; ``{}`` for empty arguments; the
            raw string when they are not valid JSON.
    """

    id: str
    name: str
    arguments: Any


_RESPONSE_DECODER: Final = msgspec.json.Decoder(Response, dec_hook=_dec_hook)
_ARGS_DECODER: Final = msgspec.json.Decoder()


def decode_response(data: bytes) -> Response:
    """Decode a non-streaming ``/responses`` JSON body.

    Raises:
        RemoteProtocolError: the body is not JSON or not a response object.
    """
    try:
        return _RESPONSE_DECODER.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise RemoteProtocolError(
            f"the server sent a response body that is not valid ({exc})"
        ) from exc


def response_text(response: Response) -> str:
    """The text of a response by the ``getText`` rules (spec §2.3).

    ``output_text`` if it is non-empty; else the ``output_text`` parts of the
    first message item joined without separator (refusals ignored); else ``""``.
    """
    if response.output_text:
        return response.output_text
    for item in response.output:
        if isinstance(item, OutputMessage):
            return "".join(part.text for part in item.content if isinstance(part, OutputText))
    return ""


def parse_arguments(raw: str, *, call_id: str = "", name: str = "") -> Any:
    """Parse a function call's JSON ``arguments`` string (spec §3.3).

    Surrounding whitespace is ignored; an empty string means ``{}``. Invalid
    JSON is returned as the raw string, with a warning on the ``runtime``
    logger (``call_id`` and ``name`` only label that warning).
    """
    text = raw.strip()
    if not text:
        return {}
    try:
        return _ARGS_DECODER.decode(text)
    except msgspec.DecodeError:
        logger.warning(
            "the arguments of tool call %r (%r) are not valid JSON; passing the raw string on",
            call_id,
            name,
        )
        return raw


def parse_tool_calls(response: Response) -> list[ParsedToolCall]:
    """Every ``function_call`` item of ``response``, in output order, parsed (spec §3.3)."""
    return [
        ParsedToolCall(
            id=item.call_id,
            name=item.name,
            arguments=parse_arguments(item.arguments, call_id=item.call_id, name=item.name),
        )
        for item in response.output
        if isinstance(item, FunctionCallItem)
    ]
