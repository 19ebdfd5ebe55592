"""openrouter-trio: OpenRouter's callModel agent API on trio.

The public namespace. Everything here is re-exported from a private module;
code inside the project imports from the defining module instead. Public
classes and functions report this namespace in ``__module__`` (msgspec Structs
keep theirs: msgspec resolves their annotations in their defining module).
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

import msgspec as _msgspec

from runtime._client import (
    OpenRouter,
)
from runtime._convert import (
    ClaudeContentBlockType,
    NonClaudeMessageRole,
    extract_unsupported_content,
    from_chat_messages,
    from_claude_messages,
    get_unsupported_content_summary,
    has_unsupported_content,
    is_claude_style_messages,
    to_chat_message,
    to_claude_message,
)
from runtime._errors import (
    AgentError,
    APIStatusError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    EdgeTimeoutError,
    InternalServerError,
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
    ServiceUnavailableError,
    ToolError,
    TransportError,
    TransportTimeout,
    UnprocessableEntityError,
)
from runtime._eventlog import (
    KEEP_ALL,
    Cursor,
    EventLog,
    EventLogStatistics,
    KeepAll,
    Lagged,
    Retention,
    Ring,
    TrimBehindSlowest,
)
from runtime._events import (
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
    TurnStart,
    UnknownEvent,
)
from runtime._oauth import (
    CodeChallenge,
    create_authorization_url,
    create_sha256_code_challenge,
    generate_code_verifier,
)
from runtime._params import (
    TurnContext,
)
from runtime._pool import (
    PoolStatistics,
    RegistryUpdate,
    SessionPool,
    SessionRegistry,
    open_session_pool,
)
from runtime._rest import (
    Analytics,
    ApiKeys,
    Beta,
    CreditsAPI,
    OAuth,
    Responses,
)
from runtime._rest_chat import (
    Chat,
    ChatStream,
    Completions,
    CompletionStream,
    EventStream,
)
from runtime._rest_models import (
    Models,
    ModelsPager,
)
from runtime._rest_types import (
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
from runtime._result import (
    ModelResult,
    ResultStream,
)
from runtime._runstate import (
    DEFAULT_FINAL_RESPONSE_DIRECTIVE,
    RunSnapshot,
    RunUsage,
)
from runtime._stop import (
    DEFAULT_STOP,
    StepResult,
    StopContext,
    finish_reason_is,
    has_tool_call,
    max_cost,
    max_tokens_used,
    step_count_is,
)
from runtime._tools import (
    FinalResult,
    Tool,
    ToolContext,
    ToolOutcome,
    function_tool,
    tool,
)
from runtime._transport import (
    NO_RETRY,
    RetryConfig,
)
from runtime._wire import (
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

if _typing.TYPE_CHECKING:
    from actors._feed import (
        DashboardAddress,
        EventFeed,
        FeedStatistics,
        serve_dashboard,
        serve_event_feed,
    )

# Names defined in ``actors`` load on first use: ``actors`` imports ``runtime._*``
# modules, so importing it from here at import time would make a cycle.
_LAZY: dict[str, str] = {
    "DashboardAddress": "actors._feed",
    "EventFeed": "actors._feed",
    "FeedStatistics": "actors._feed",
    "serve_dashboard": "actors._feed",
    "serve_event_feed": "actors._feed",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(_importlib.import_module(module), name)
    _publish(name, value)
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
    "KEEP_ALL",
    "KeepAll",
    "KeyInfo",
    "KeyMetadata",
    "Lagged",
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
    "RegistryUpdate",
    "RemoteProtocolError",
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
    "RunUsage",
    "ServiceUnavailableError",
    "SessionPool",
    "SessionRegistry",
    "StepResult",
    "StopContext",
    "StreamEvent",
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
    "TurnStart",
    "UnknownEvent",
    "UnknownItem",
    "UnprocessableEntityError",
    "UpdateKeyRequest",
    "Usage",
    "create_authorization_url",
    "create_sha256_code_challenge",
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
    "open_session_pool",
    "serve_dashboard",
    "serve_event_feed",
    "step_count_is",
    "to_chat_message",
    "to_claude_message",
    "tool",
]


def _publish(name: str, value: object) -> None:
    """Report the public namespace in ``__module__`` (not for msgspec Structs)."""
    module = getattr(value, "__module__", "") or ""
    if (
        module.startswith(("runtime._", "actors._"))
        and (isinstance(value, type) or callable(value))
        and not (isinstance(value, type) and issubclass(value, _msgspec.Struct))
    ):
        try:
            value.__module__ = __name__
        except (AttributeError, TypeError):  # pragma: no cover - builtins-like objects
            pass


for _name in __all__:
    if _name in globals():
        _publish(_name, globals()[_name])
del _name
