"""msgspec Structs for OpenRouter's REST endpoints other than ``/responses``.

The one job of this module is to give the JSON of wire-protocol.md §4-§9
(chat completions, legacy completions, models, key, keys, credits, activity,
OAuth) a typed Python shape. It does no I/O; :mod:`runtime._rest.resources` sends the
requests and decodes the answers with the decoders defined here.

Rules:

1. **Wire names are field names.** Every field is named exactly as on the wire
   (snake_case), so ``msgspec.json.encode`` of a Struct is its JSON.
2. **Requests omit what is unset.** Outbound types derive from
   :class:`~runtime._protocol.wire.WireStruct`; optional fields default to
   ``msgspec.UNSET`` and are left out of the body. ``None`` is sent as
   ``null`` where the OpenAPI subset allows it (``limit: None`` removes a limit).
3. **Inbound types tolerate growth.** Unknown fields are ignored, and every
   field the server may leave out has a default. Fields that carry identity
   (a key's ``hash``, a model's ``id``, a created key's ``key``) stay
   required: an object without them is broken, not new. Inbound Structs
   encode their defaults too (``omit_defaults=False``), as in ``runtime._protocol.wire``.
4. **Chat messages go both ways.** The assistant message of a ``ChatResult``
   is meant to be appended to the next request's ``messages``, so the chat
   message types omit their defaults when encoded: a decoded message
   re-encodes to a valid ``ChatMessages`` object.
5. **Prices are decimals.** Model prices are decimal strings of USD per
   token on the wire; they decode to :class:`decimal.Decimal` (never float)
   and encode back to the same strings.
6. **Secrets stay out of reprs.** :class:`CreatedKey` and
   :class:`ExchangedKey` carry a plaintext API key; their ``repr`` and
   ``__rich_repr__`` show a redacted form. Read ``.key`` to use it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, TypeAlias

import msgspec
from msgspec import UNSET, UnsetType

from runtime._protocol.wire import WireStruct

__all__ = [
    "ActivityItem",
    "AuthCode",
    "ChatAssistantMessage",
    "ChatChoice",
    "ChatDeveloperMessage",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ChatStreamChoice",
    "ChatStreamChunk",
    "ChatStreamDelta",
    "ChatStreamError",
    "ChatStreamToolCall",
    "ChatStreamToolCallFunction",
    "ChatSystemMessage",
    "ChatToolCall",
    "ChatToolCallFunction",
    "ChatToolMessage",
    "ChatUsage",
    "ChatUserMessage",
    "CompletionRequest",
    "CompletionTokensDetails",
    "CreateAuthCodeRequest",
    "CreateKeyRequest",
    "CreatedKey",
    "Credits",
    "DefaultParameters",
    "ExchangeAuthCodeRequest",
    "ExchangedKey",
    "KeyInfo",
    "KeyMetadata",
    "LegacyCompletion",
    "LegacyCompletionChoice",
    "LegacyCompletionUsage",
    "LimitReset",
    "Model",
    "ModelAliasTarget",
    "ModelArchitecture",
    "ModelLinks",
    "ModelPricing",
    "ModelReasoning",
    "ModelsPage",
    "ModelsPageLinks",
    "PerRequestLimits",
    "PromptTokensDetails",
    "RateLimit",
    "TopProvider",
    "UpdateKeyRequest",
    "redact_key",
]

LimitReset: TypeAlias = Literal["daily", "weekly", "monthly"]
"""How often a key's spending limit resets."""


def redact_key(key: str) -> str:
    """A form of an API key that is safe to show: ``sk-or-v1-…c96`` or ``***``.

    Keeps the public prefix and the last three characters (what OpenRouter's
    own ``label`` shows) only when the key is long enough that they reveal
    nothing useful.
    """
    if key.startswith("sk-or-") and len(key) >= 24:
        prefix = key[: key.find("-", 6) + 1] if key.find("-", 6) > 0 else "sk-or-"
        return f"{prefix}…{key[-3:]}"
    return "***"


class _Inbound(msgspec.Struct, frozen=True, kw_only=True):
    """Base of what the server sends: unknown fields ignored, defaults encoded."""


class _Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag_field="role"):
    """Base of the chat messages: tagged by ``role``, defaults omitted both ways."""


# --------------------------------------------------------------------------- keys


class KeyInfo(_Inbound, frozen=True, kw_only=True):
    """An API key as ``/keys`` endpoints describe it (never the secret itself).

    Amounts are USD. ``hash`` is the SHA-256 hex of the key string and is what
    :meth:`ApiKeys.get`, ``update`` and ``delete`` take.
    """

    hash: str
    name: str = ""
    label: str = ""
    disabled: bool = False
    limit: float | None = None
    limit_remaining: float | None = None
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    usage: float = 0.0
    usage_daily: float = 0.0
    usage_weekly: float = 0.0
    usage_monthly: float = 0.0
    byok_usage: float = 0.0
    byok_usage_daily: float = 0.0
    byok_usage_weekly: float = 0.0
    byok_usage_monthly: float = 0.0
    created_at: str = ""
    updated_at: str | None = None
    creator_user_id: str | None = None
    workspace_id: str | None = None
    expires_at: str | None = None


class RateLimit(_Inbound, frozen=True, kw_only=True):
    """Deprecated rate-limit block of ``GET /key`` (the server sends ``-1``)."""

    requests: int = -1
    interval: str = ""
    note: str = ""


class KeyMetadata(_Inbound, frozen=True, kw_only=True):
    """What ``GET /key`` says about the key that made the request.

    ``label`` is the masked key (``sk-or-v1-abc...xyz``). Use
    ``limit_remaining`` to avoid 402s. Amounts are USD.
    """

    label: str
    limit: float | None = None
    limit_remaining: float | None = None
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    usage: float = 0.0
    usage_daily: float = 0.0
    usage_weekly: float = 0.0
    usage_monthly: float = 0.0
    byok_usage: float = 0.0
    byok_usage_daily: float = 0.0
    byok_usage_weekly: float = 0.0
    byok_usage_monthly: float = 0.0
    is_free_tier: bool = False
    is_management_key: bool = False
    is_provisioning_key: bool = False
    creator_user_id: str | None = None
    expires_at: str | None = None
    rate_limit: RateLimit | None = None


class CreatedKey(_Inbound, frozen=True, kw_only=True):
    """The answer of ``POST /keys``: the new key's info and, only here, its secret.

    The ``repr`` redacts ``key``; read the attribute to store it.
    """

    data: KeyInfo
    key: str

    @property
    def hash(self) -> str:
        """The new key's ``hash`` (for ``get`` / ``update`` / ``delete``)."""
        return self.data.hash

    def __repr__(self) -> str:
        return f"CreatedKey(data={self.data!r}, key={redact_key(self.key)!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("data", self.data), ("key", redact_key(self.key))]


class CreateKeyRequest(WireStruct, frozen=True, kw_only=True):
    """The body of ``POST /keys``."""

    name: str
    limit: float | UnsetType | None = UNSET
    limit_reset: LimitReset | UnsetType | None = UNSET
    include_byok_in_limit: bool | UnsetType = UNSET
    expires_at: str | UnsetType | None = UNSET
    creator_user_id: str | UnsetType | None = UNSET
    workspace_id: str | UnsetType = UNSET


class UpdateKeyRequest(WireStruct, frozen=True, kw_only=True):
    """The body of ``PATCH /keys/{hash}``: only the fields to change."""

    name: str | UnsetType = UNSET
    disabled: bool | UnsetType = UNSET
    limit: float | UnsetType | None = UNSET
    limit_reset: LimitReset | UnsetType | None = UNSET
    include_byok_in_limit: bool | UnsetType = UNSET


class Credits(_Inbound, frozen=True, kw_only=True):
    """The account's credits (``GET /credits``), USD."""

    total_credits: float
    total_usage: float

    @property
    def balance(self) -> float:
        """What is left: ``total_credits - total_usage``."""
        return self.total_credits - self.total_usage


class ActivityItem(_Inbound, frozen=True, kw_only=True):
    """One row of ``GET /activity``: a day, a model (and a workspace if grouped)."""

    date: str
    model: str
    model_permaslug: str = ""
    endpoint_id: str = ""
    provider_name: str = ""
    usage: float = 0.0
    byok_usage_inference: float = 0.0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    workspace_id: str | None = None


# --------------------------------------------------------------------------- OAuth


class AuthCode(_Inbound, frozen=True, kw_only=True):
    """A code registered with ``POST /auth/keys/code``; exchange ``id`` as ``code``."""

    id: str
    app_id: int | None = None
    created_at: str = ""


class ExchangedKey(_Inbound, frozen=True, kw_only=True):
    """The answer of ``POST /auth/keys``: a user's new API key.

    The ``repr`` redacts ``key``; read the attribute to use it.
    """

    key: str
    user_id: str | None = None

    def __repr__(self) -> str:
        return f"ExchangedKey(key={redact_key(self.key)!r}, user_id={self.user_id!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("key", redact_key(self.key)), ("user_id", self.user_id)]


class CreateAuthCodeRequest(WireStruct, frozen=True, kw_only=True):
    """The body of ``POST /auth/keys/code``."""

    callback_url: str
    code_challenge: str | UnsetType = UNSET
    code_challenge_method: Literal["S256", "plain"] | UnsetType = UNSET
    expires_at: str | UnsetType | None = UNSET
    key_label: str | UnsetType = UNSET
    limit: float | UnsetType = UNSET
    usage_limit_type: LimitReset | UnsetType = UNSET
    workspace_id: str | UnsetType = UNSET


class ExchangeAuthCodeRequest(WireStruct, frozen=True, kw_only=True):
    """The body of ``POST /auth/keys``."""

    code: str
    code_verifier: str | UnsetType = UNSET
    code_challenge_method: Literal["S256", "plain"] | UnsetType | None = UNSET


# --------------------------------------------------------------------------- models


class ModelArchitecture(_Inbound, frozen=True, kw_only=True):
    """What a model reads and writes (``"text+image->text"`` ...)."""

    modality: str | None = None
    input_modalities: list[str] = []
    output_modalities: list[str] = []
    tokenizer: str | None = None
    instruct_type: str | None = None


class ModelPricing(_Inbound, frozen=True, kw_only=True):
    """Prices in USD per single token (per request / image / search for those keys).

    Decimal, never float: multiply by 1,000,000 for the usual per-million figure.
    """

    prompt: Decimal = Decimal(0)
    completion: Decimal = Decimal(0)
    request: Decimal | None = None
    image: Decimal | None = None
    image_token: Decimal | None = None
    image_output: Decimal | None = None
    audio: Decimal | None = None
    audio_output: Decimal | None = None
    input_audio_cache: Decimal | None = None
    web_search: Decimal | None = None
    internal_reasoning: Decimal | None = None
    input_cache_read: Decimal | None = None
    input_cache_write: Decimal | None = None
    input_cache_write_1h: Decimal | None = None
    discount: float | None = None
    overrides: list[dict[str, Any]] = []


class TopProvider(_Inbound, frozen=True, kw_only=True):
    """Limits of the model's top provider."""

    context_length: int | None = None
    max_completion_tokens: int | None = None
    is_moderated: bool = False


class PerRequestLimits(_Inbound, frozen=True, kw_only=True):
    """Token limits per request, when the model has any."""

    prompt_tokens: float = 0
    completion_tokens: float = 0


class DefaultParameters(_Inbound, frozen=True, kw_only=True):
    """Sampling defaults the model runs with unless a request says otherwise."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None


class ModelLinks(_Inbound, frozen=True, kw_only=True):
    """Related API paths (``details``: the model's endpoints)."""

    details: str = ""


class ModelReasoning(_Inbound, frozen=True, kw_only=True):
    """Reasoning support (absent for models that do not reason)."""

    mandatory: bool = False
    supported_efforts: list[str] | None = None
    default_effort: str | None = None
    default_enabled: bool | None = None
    supports_max_tokens: bool | None = None


class ModelAliasTarget(_Inbound, frozen=True, kw_only=True):
    """The model an alias slug currently points at."""

    slug: str = ""
    name: str = ""


class Model(_Inbound, frozen=True, kw_only=True):
    """One entry of ``GET /models``."""

    id: str
    canonical_slug: str = ""
    name: str = ""
    created: int = 0
    description: str = ""
    context_length: int | None = None
    architecture: ModelArchitecture = msgspec.field(default_factory=ModelArchitecture)
    pricing: ModelPricing = msgspec.field(default_factory=ModelPricing)
    top_provider: TopProvider = msgspec.field(default_factory=TopProvider)
    per_request_limits: PerRequestLimits | None = None
    supported_parameters: list[str] = []
    default_parameters: DefaultParameters | None = None
    supported_voices: list[str] | None = None
    links: ModelLinks | None = None
    hugging_face_id: str | None = None
    expiration_date: str | None = None
    knowledge_cutoff: str | None = None
    reasoning: ModelReasoning | None = None
    benchmarks: dict[str, Any] | None = None
    alias_target: ModelAliasTarget | None = None


class ModelsPageLinks(_Inbound, frozen=True, kw_only=True):
    """Pagination links of a models page (``next`` is ``None`` on the last page)."""

    next: str | None = None


class ModelsPage(_Inbound, frozen=True, kw_only=True):
    """One page of ``GET /models``."""

    data: list[Model]
    total_count: int | None = None
    links: ModelsPageLinks | None = None


# --------------------------------------------------------------------------- chat


class ChatToolCallFunction(msgspec.Struct, frozen=True, kw_only=True):
    """The function half of a tool call: its name and JSON-encoded arguments."""

    name: str
    arguments: str = ""


class ChatToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """A complete tool call on an assistant message."""

    id: str
    function: ChatToolCallFunction
    type: Literal["function"] = "function"


class ChatSystemMessage(_Message, frozen=True, kw_only=True, tag="system"):
    """``{"role": "system", "content": ...}``."""

    content: str | list[dict[str, Any]]
    name: str | UnsetType = UNSET


class ChatDeveloperMessage(_Message, frozen=True, kw_only=True, tag="developer"):
    """``{"role": "developer", "content": ...}``."""

    content: str | list[dict[str, Any]]
    name: str | UnsetType = UNSET


class ChatUserMessage(_Message, frozen=True, kw_only=True, tag="user"):
    """``{"role": "user", "content": ...}``; content parts are plain dicts."""

    content: str | list[dict[str, Any]]
    name: str | UnsetType = UNSET


class ChatAssistantMessage(_Message, frozen=True, kw_only=True, tag="assistant"):
    """An assistant message: the answer of a ``ChatResult`` choice, or history.

    Send it back unchanged in the next request's ``messages`` (reasoning
    details included: some providers need their signatures).
    """

    content: str | list[dict[str, Any]] | None = None
    name: str | UnsetType = UNSET
    tool_calls: list[ChatToolCall] | UnsetType = UNSET
    reasoning: str | None = None
    reasoning_details: list[dict[str, Any]] | UnsetType = UNSET
    refusal: str | None = None
    images: list[dict[str, Any]] | UnsetType = UNSET
    audio: dict[str, Any] | UnsetType = UNSET
    annotations: list[dict[str, Any]] | UnsetType = UNSET


class ChatToolMessage(_Message, frozen=True, kw_only=True, tag="tool"):
    """A tool result: ``{"role": "tool", "tool_call_id": ..., "content": ...}``."""

    tool_call_id: str
    content: str | list[dict[str, Any]]


ChatMessage: TypeAlias = (
    ChatSystemMessage
    | ChatDeveloperMessage
    | ChatUserMessage
    | ChatAssistantMessage
    | ChatToolMessage
)
"""Any chat message (a tagged union on ``role``)."""


class PromptTokensDetails(_Inbound, frozen=True, kw_only=True):
    """Breakdown of the prompt tokens."""

    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    audio_tokens: int | None = None
    video_tokens: int | None = None


class CompletionTokensDetails(_Inbound, frozen=True, kw_only=True):
    """Breakdown of the completion tokens."""

    reasoning_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class ChatUsage(_Inbound, frozen=True, kw_only=True):
    """Token counts and cost (USD) of a chat answer."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    cost: float | None = None
    is_byok: bool | None = None
    cost_details: dict[str, Any] | None = None
    server_tool_use_details: dict[str, Any] | None = None


class ChatChoice(_Inbound, frozen=True, kw_only=True):
    """One choice of a ``ChatResult``.

    ``finish_reason`` is normalized (``stop``, ``tool_calls``, ``length``,
    ``content_filter``, ``error``; treat it as open); the provider's own value
    is ``native_finish_reason``. With ``finish_reason == "error"`` the
    provider failed after a partial answer and ``error`` says why.
    """

    index: int = 0
    message: ChatAssistantMessage = msgspec.field(default_factory=ChatAssistantMessage)
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class ChatResult(_Inbound, frozen=True, kw_only=True):
    """A non-streaming ``POST /chat/completions`` answer."""

    id: str
    choices: list[ChatChoice] = []
    created: int = 0
    model: str = ""
    object: str = "chat.completion"
    system_fingerprint: str | None = None
    usage: ChatUsage | None = None
    service_tier: str | None = None
    provider: str | None = None
    openrouter_metadata: dict[str, Any] | None = None


class ChatStreamToolCallFunction(_Inbound, frozen=True, kw_only=True):
    """A fragment of a streamed tool call's function (name first, then arguments)."""

    name: str | None = None
    arguments: str | None = None


class ChatStreamToolCall(_Inbound, frozen=True, kw_only=True):
    """A fragment of a streamed tool call; concatenate ``arguments`` per ``index``."""

    index: int = 0
    id: str | None = None
    type: str | None = None
    function: ChatStreamToolCallFunction | None = None


class ChatStreamDelta(_Inbound, frozen=True, kw_only=True):
    """What one chunk adds to a choice."""

    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    refusal: str | None = None
    tool_calls: list[ChatStreamToolCall] | None = None
    audio: dict[str, Any] | None = None


class ChatStreamChoice(_Inbound, frozen=True, kw_only=True):
    """One choice of a stream chunk."""

    index: int = 0
    delta: ChatStreamDelta = msgspec.field(default_factory=ChatStreamDelta)
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatStreamError(_Inbound, frozen=True, kw_only=True):
    """An in-band error of a stream (wire-protocol §4.5).

    ``code`` is HTTP-like (an int), or a string in older servers.
    """

    code: int | str | None = None
    message: str = ""
    metadata: dict[str, Any] | None = None


class ChatStreamChunk(_Inbound, frozen=True, kw_only=True):
    """One ``data:`` event of a streamed chat answer.

    ``usage`` arrives once, on the last chunk (whose ``choices`` is empty);
    don't expect ``choices[0]`` on every chunk.
    """

    id: str = ""
    choices: list[ChatStreamChoice] = []
    created: int = 0
    model: str = ""
    object: str = "chat.completion.chunk"
    provider: str | None = None
    system_fingerprint: str | None = None
    usage: ChatUsage | None = None
    error: ChatStreamError | None = None
    service_tier: str | None = None
    openrouter_metadata: dict[str, Any] | None = None


class ChatRequest(WireStruct, frozen=True, kw_only=True):
    """The body of ``POST /chat/completions`` (wire-protocol §4.1).

    Scalars are typed so that a wrong type is refused before any I/O; nested
    configuration (``provider``, ``response_format``, ``tools`` ...) is passed
    through as given (dicts, or Structs msgspec can encode).
    """

    messages: list[Any]
    model: str | UnsetType = UNSET
    models: list[str] | UnsetType = UNSET
    stream: bool | UnsetType = UNSET
    stream_options: dict[str, Any] | UnsetType = UNSET
    max_completion_tokens: int | UnsetType | None = UNSET
    max_tokens: int | UnsetType | None = UNSET
    temperature: float | UnsetType | None = UNSET
    top_p: float | UnsetType | None = UNSET
    top_k: int | UnsetType | None = UNSET
    min_p: float | UnsetType | None = UNSET
    top_a: float | UnsetType | None = UNSET
    frequency_penalty: float | UnsetType | None = UNSET
    presence_penalty: float | UnsetType | None = UNSET
    repetition_penalty: float | UnsetType | None = UNSET
    seed: int | UnsetType | None = UNSET
    stop: str | list[str] | UnsetType | None = UNSET
    logit_bias: dict[str, float] | UnsetType | None = UNSET
    logprobs: bool | UnsetType | None = UNSET
    top_logprobs: int | UnsetType | None = UNSET
    response_format: Any | UnsetType = UNSET
    tools: list[Any] | UnsetType = UNSET
    tool_choice: Any | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType | None = UNSET
    reasoning: Any | UnsetType = UNSET
    reasoning_effort: str | UnsetType | None = UNSET
    modalities: list[str] | UnsetType = UNSET
    image_config: Any | UnsetType = UNSET
    prediction: Any | UnsetType = UNSET
    provider: Any | UnsetType = UNSET
    plugins: list[Any] | UnsetType = UNSET
    route: str | UnsetType | None = UNSET
    session_id: str | UnsetType = UNSET
    trace: Any | UnsetType = UNSET
    debug: Any | UnsetType = UNSET
    metadata: dict[str, str] | UnsetType = UNSET
    user: str | UnsetType = UNSET
    service_tier: str | UnsetType | None = UNSET
    prompt_cache_key: str | UnsetType | None = UNSET
    prompt_cache_options: Any | UnsetType = UNSET
    cache_control: Any | UnsetType = UNSET
    stop_server_tools_when: Any | UnsetType = UNSET


# --------------------------------------------------------------------------- legacy completions


class LegacyCompletionChoice(_Inbound, frozen=True, kw_only=True):
    """One choice of a legacy completion (a whole answer, or a streamed piece)."""

    text: str = ""
    index: int = 0
    logprobs: dict[str, Any] | None = None
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    reasoning: str | None = None


class LegacyCompletionUsage(_Inbound, frozen=True, kw_only=True):
    """Token counts of a legacy completion."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class LegacyCompletion(_Inbound, frozen=True, kw_only=True):
    """A ``POST /completions`` answer, or one chunk of a streamed one.

    ``error`` is set only on an in-band error chunk of a stream.
    """

    id: str = ""
    choices: list[LegacyCompletionChoice] = []
    created: float = 0
    model: str = ""
    object: str = "text_completion"
    provider: str | None = None
    system_fingerprint: str | None = None
    usage: LegacyCompletionUsage | None = None
    error: ChatStreamError | None = None


class CompletionRequest(WireStruct, frozen=True, kw_only=True):
    """The body of the legacy ``POST /completions`` (wire-protocol §5)."""

    prompt: str | list[Any]
    model: str | UnsetType = UNSET
    models: list[str] | UnsetType = UNSET
    stream: bool | UnsetType = UNSET
    stream_options: dict[str, Any] | UnsetType | None = UNSET
    best_of: int | UnsetType | None = UNSET
    echo: bool | UnsetType | None = UNSET
    frequency_penalty: float | UnsetType | None = UNSET
    presence_penalty: float | UnsetType | None = UNSET
    logit_bias: dict[str, float] | UnsetType | None = UNSET
    logprobs: int | UnsetType | None = UNSET
    max_tokens: int | UnsetType | None = UNSET
    n: int | UnsetType | None = UNSET
    seed: int | UnsetType | None = UNSET
    stop: str | list[str] | UnsetType | None = UNSET
    suffix: str | UnsetType | None = UNSET
    temperature: float | UnsetType | None = UNSET
    top_p: float | UnsetType | None = UNSET
    user: str | UnsetType = UNSET
    metadata: dict[str, str] | UnsetType | None = UNSET
    response_format: Any | UnsetType = UNSET
