"""openrouter-trio: OpenRouter's callModel agent API on trio.

The public namespace. Everything here is re-exported from a private module;
code inside the project imports from the defining module instead. Public
classes and functions report this namespace in ``__module__`` (msgspec Structs
keep theirs: msgspec resolves their annotations in their defining module).
"""

from __future__ import annotations

import msgspec

from actors._session import (
    DEFAULT_FINAL_RESPONSE_DIRECTIVE,
)
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
from runtime._result import (
    ModelResult,
    ResultStream,
)
from runtime._runstate import (
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

__all__ = [
    "APIStatusError",
    "AgentError",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "ClaudeContentBlockType",
    "CodeChallenge",
    "ConfigurationError",
    "ConflictError",
    "Cursor",
    "DEFAULT_FINAL_RESPONSE_DIRECTIVE",
    "DEFAULT_STOP",
    "EasyInputMessage",
    "EdgeTimeoutError",
    "ErrorEvent",
    "EventLog",
    "EventLogStatistics",
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
    "Lagged",
    "ModelResult",
    "NO_RETRY",
    "NonClaudeMessageRole",
    "NotFoundError",
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
    "PermissionDeniedError",
    "ProviderOverloadedError",
    "RateLimitError",
    "ReasoningItem",
    "ReasoningSummaryTextDelta",
    "ReasoningTextDelta",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "Response",
    "ResponseCompleted",
    "ResponseCreated",
    "ResponseFailed",
    "ResponseFailedError",
    "ResponseIncomplete",
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
    "TransportError",
    "TransportTimeout",
    "TrimBehindSlowest",
    "TurnContext",
    "TurnEnd",
    "TurnStart",
    "UnknownEvent",
    "UnknownItem",
    "UnprocessableEntityError",
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
    "step_count_is",
    "to_chat_message",
    "to_claude_message",
    "tool",
]

for _name in __all__:
    _object = globals()[_name]
    _module = getattr(_object, "__module__", "") or ""
    if (
        _module.startswith(("runtime._", "actors._"))
        and (isinstance(_object, type) or callable(_object))
        and not (isinstance(_object, type) and issubclass(_object, msgspec.Struct))
    ):
        try:
            _object.__module__ = __name__
        except (AttributeError, TypeError):  # pragma: no cover - builtins-like objects
            pass
del _name, _object, _module
