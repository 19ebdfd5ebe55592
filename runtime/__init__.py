"""openrouter-trio: OpenRouter's callModel agent API on trio.

The public namespace. Everything here is re-exported from a private module;
code inside the project imports from the defining module instead. Public
classes and functions report this namespace in ``__module__`` (msgspec Structs
keep theirs: msgspec resolves their annotations in their defining module).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

from runtime._agent.context import (
    ContextUpdate,
)
from runtime._agent.outcomes import (
    FinalResult,
    ToolContext,
    ToolOutcome,
)
from runtime._agent.params import (
    TurnContext,
)
from runtime._agent.state import (
    CONVERSATION_STATE_VERSION,
    ConversationState,
    PartialResponse,
    UnsentToolResult,
    decode_state,
    encode_state,
    new_conversation_state,
)
from runtime._agent.stop import (
    DEFAULT_STOP,
    StepResult,
    StopContext,
    finish_reason_is,
    has_tool_call,
    max_cost,
    max_tokens_used,
    step_count_is,
)
from runtime._agent.store import (
    InterruptibleStateAccessor,
    StateAccessor,
)
from runtime._agent.tools import (
    Tool,
    function_tool,
    tool,
)
from runtime._base.errors import (
    AgentError,
    APIStatusError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    EdgeTimeoutError,
    EventTooLargeError,
    InternalServerError,
    InvalidStateError,
    MCPError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProviderOverloadedError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeoutError,
    ResponseFailedError,
    RunCancelled,
    RunError,
    RunTimeout,
    ServiceUnavailableError,
    StateConflictError,
    StateError,
    StructuredOutputError,
    ToolError,
    TransportError,
    TransportTimeout,
    UnprocessableEntityError,
    UnsupportedStateVersionError,
)
from runtime._base.publish import publish as _publish
from runtime._client.client import (
    OpenRouter,
)
from runtime._client.pool import (
    PoolStatistics,
    SessionPool,
    open_session_pool,
)
from runtime._client.result import (
    ModelResult,
    ResultStream,
)
from runtime._http.retry import (
    NO_RETRY,
    RetryConfig,
)
from runtime._mcp.protocol import MCPProgress
from runtime._protocol.convert_chat import (
    from_chat_messages,
    to_chat_message,
)
from runtime._protocol.convert_claude import (
    ClaudeContentBlockType,
    NonClaudeMessageRole,
    extract_unsupported_content,
    from_claude_messages,
    get_unsupported_content_summary,
    has_unsupported_content,
    is_claude_style_messages,
    to_claude_message,
)
from runtime._protocol.events import (
    ErrorEvent,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    ResponseCompleted,
    ResponseCreated,
    ResponseFailed,
    ResponseIncomplete,
    StreamEvent,
    ToolCallOutput,
    ToolPreliminaryResult,
    ToolResult,
    TurnEnd,
    TurnRetry,
    TurnStart,
    UnknownEvent,
)
from runtime._protocol.oauth import (
    CodeChallenge,
    create_authorization_url,
    create_sha256_code_challenge,
    generate_code_verifier,
)
from runtime._protocol.wire import (
    EasyInputMessage,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputFile,
    InputImage,
    InputText,
    OutputMessage,
    OutputText,
    ParsedToolCall,
    ReasoningItem,
    Response,
    ResponsesRequest,
    UnknownItem,
    Usage,
)
from runtime._redis.codec import RemoteRunError
from runtime._redis.registry import RedisRegistry, open_redis_registry
from runtime._redis.state import RedisStateStore
from runtime._redis.store import RedisStore, RunTakenOver, open_redis_store, open_run_reader
from runtime._redis.work import cancel_run, submit_run
from runtime._rest.chat import (
    Chat,
    ChatStream,
    Completions,
    CompletionStream,
    EventStream,
)
from runtime._rest.models import (
    Models,
    ModelsPager,
)
from runtime._rest.resources import (
    Analytics,
    ApiKeys,
    Beta,
    CreditsAPI,
    OAuth,
    Responses,
)
from runtime._rest.types import (
    ActivityItem,
    AuthCode,
    ChatAssistantMessage,
    ChatChoice,
    ChatDeveloperMessage,
    ChatMessage,
    ChatRequest,
    ChatResult,
    ChatStreamChoice,
    ChatStreamChunk,
    ChatStreamDelta,
    ChatStreamError,
    ChatStreamToolCall,
    ChatStreamToolCallFunction,
    ChatSystemMessage,
    ChatToolCall,
    ChatToolCallFunction,
    ChatToolMessage,
    ChatUsage,
    ChatUserMessage,
    CompletionRequest,
    CompletionTokensDetails,
    CreateAuthCodeRequest,
    CreatedKey,
    CreateKeyRequest,
    Credits,
    DefaultParameters,
    ExchangeAuthCodeRequest,
    ExchangedKey,
    KeyInfo,
    KeyMetadata,
    LegacyCompletion,
    LegacyCompletionChoice,
    LegacyCompletionUsage,
    LimitReset,
    Model,
    ModelAliasTarget,
    ModelArchitecture,
    ModelLinks,
    ModelPricing,
    ModelReasoning,
    ModelsPage,
    ModelsPageLinks,
    PerRequestLimits,
    PromptTokensDetails,
    RateLimit,
    TopProvider,
    UpdateKeyRequest,
)
from runtime._run.cursor import Cursor, Lagged
from runtime._run.eventlog import EventLog, EventLogStatistics
from runtime._run.registry import RegistryUpdate, SessionRegistry
from runtime._run.retention import KEEP_ALL, KeepAll, Retention, Ring, TrimBehindSlowest
from runtime._run.status import (
    DEFAULT_FINAL_RESPONSE_DIRECTIVE,
    RunSnapshot,
    RunUsage,
)
from runtime._state.stores import (
    JSONFileStateStore,
    MemoryStateStore,
)

if _typing.TYPE_CHECKING:
    from actors._feed.server import (
        DashboardAddress,
        EventFeed,
        FeedStatistics,
        serve_dashboard,
        serve_event_feed,
    )
    from actors._mcp import MCPServer

# Names defined in ``actors`` load on first use: ``actors`` imports ``runtime._*``
# modules, so importing it from here at import time would make a cycle.
_LAZY: dict[str, str] = {
    "DashboardAddress": "actors._feed.server",
    "EventFeed": "actors._feed.server",
    "FeedStatistics": "actors._feed.server",
    "serve_dashboard": "actors._feed.server",
    "serve_event_feed": "actors._feed.server",
    "MCPServer": "actors._mcp",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(_importlib.import_module(module), name)
    _publish(__name__, value)
    globals()[name] = value
    return value


__all__ = [
    "APIStatusError",
    "ActivityItem",
    "AgentError",
    "Analytics",
    "ApiKeys",
    "AuthCode",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "Beta",
    "CONVERSATION_STATE_VERSION",
    "Chat",
    "ChatAssistantMessage",
    "ChatChoice",
    "ChatDeveloperMessage",
    "ChatMessage",
    "ChatRequest",
    "ChatResult",
    "ChatStream",
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
    "ClaudeContentBlockType",
    "CodeChallenge",
    "CompletionRequest",
    "CompletionStream",
    "CompletionTokensDetails",
    "Completions",
    "ConfigurationError",
    "ConflictError",
    "ContextUpdate",
    "ConversationState",
    "CreateAuthCodeRequest",
    "CreateKeyRequest",
    "CreatedKey",
    "Credits",
    "CreditsAPI",
    "Cursor",
    "DEFAULT_FINAL_RESPONSE_DIRECTIVE",
    "DEFAULT_STOP",
    "DashboardAddress",
    "DefaultParameters",
    "EasyInputMessage",
    "EdgeTimeoutError",
    "ErrorEvent",
    "EventFeed",
    "EventLog",
    "EventLogStatistics",
    "EventStream",
    "EventTooLargeError",
    "ExchangeAuthCodeRequest",
    "ExchangedKey",
    "FeedStatistics",
    "FinalResult",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "InputFile",
    "InputImage",
    "InputText",
    "InternalServerError",
    "InterruptibleStateAccessor",
    "InvalidStateError",
    "JSONFileStateStore",
    "KEEP_ALL",
    "KeepAll",
    "KeyInfo",
    "KeyMetadata",
    "Lagged",
    "LegacyCompletion",
    "LegacyCompletionChoice",
    "LegacyCompletionUsage",
    "LimitReset",
    "MCPError",
    "MCPProgress",
    "MCPServer",
    "MemoryStateStore",
    "Model",
    "ModelAliasTarget",
    "ModelArchitecture",
    "ModelLinks",
    "ModelPricing",
    "ModelReasoning",
    "ModelResult",
    "Models",
    "ModelsPage",
    "ModelsPageLinks",
    "ModelsPager",
    "NO_RETRY",
    "NonClaudeMessageRole",
    "NotFoundError",
    "OAuth",
    "OpenRouter",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputMessage",
    "OutputText",
    "OutputTextDelta",
    "OutputTextDone",
    "ParsedToolCall",
    "PartialResponse",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PerRequestLimits",
    "PermissionDeniedError",
    "PoolStatistics",
    "PromptTokensDetails",
    "ProviderOverloadedError",
    "RateLimit",
    "RateLimitError",
    "ReasoningItem",
    "ReasoningSummaryTextDelta",
    "ReasoningTextDelta",
    "RedisRegistry",
    "RedisStateStore",
    "RedisStore",
    "RegistryUpdate",
    "RemoteProtocolError",
    "RemoteRunError",
    "RequestTimeoutError",
    "Response",
    "ResponseCompleted",
    "ResponseCreated",
    "ResponseFailed",
    "ResponseFailedError",
    "ResponseIncomplete",
    "Responses",
    "ResponsesRequest",
    "ResultStream",
    "Retention",
    "RetryConfig",
    "Ring",
    "RunCancelled",
    "RunError",
    "RunSnapshot",
    "RunTakenOver",
    "RunTimeout",
    "RunUsage",
    "ServiceUnavailableError",
    "SessionPool",
    "SessionRegistry",
    "StateAccessor",
    "StateConflictError",
    "StateError",
    "StepResult",
    "StopContext",
    "StreamEvent",
    "StructuredOutputError",
    "Tool",
    "ToolCallOutput",
    "ToolContext",
    "ToolError",
    "ToolOutcome",
    "ToolPreliminaryResult",
    "ToolResult",
    "TopProvider",
    "TransportError",
    "TransportTimeout",
    "TrimBehindSlowest",
    "TurnContext",
    "TurnEnd",
    "TurnRetry",
    "TurnStart",
    "UnknownEvent",
    "UnknownItem",
    "UnprocessableEntityError",
    "UnsentToolResult",
    "UnsupportedStateVersionError",
    "UpdateKeyRequest",
    "Usage",
    "cancel_run",
    "create_authorization_url",
    "create_sha256_code_challenge",
    "decode_state",
    "encode_state",
    "extract_unsupported_content",
    "finish_reason_is",
    "from_chat_messages",
    "from_claude_messages",
    "function_tool",
    "generate_code_verifier",
    "get_unsupported_content_summary",
    "has_tool_call",
    "has_unsupported_content",
    "is_claude_style_messages",
    "max_cost",
    "max_tokens_used",
    "new_conversation_state",
    "open_redis_registry",
    "open_redis_store",
    "open_run_reader",
    "open_session_pool",
    "serve_dashboard",
    "serve_event_feed",
    "step_count_is",
    "submit_run",
    "to_chat_message",
    "to_claude_message",
    "tool",
]


for _name in __all__:
    if _name in globals():
        _publish(__name__, globals()[_name])
del _name
