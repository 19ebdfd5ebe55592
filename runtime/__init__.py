"""openrouter-trio: OpenRouter's callModel agent API on trio.

The public namespace. Everything here is re-exported from a private module;
code inside the project imports from the defining module instead.
"""

from __future__ import annotations

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
    RunError,
    ServiceUnavailableError,
    ToolError,
    TransportError,
    TransportTimeout,
    UnprocessableEntityError,
)

__all__ = [
    "APIStatusError",
    "AgentError",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "EdgeTimeoutError",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "ProviderOverloadedError",
    "RateLimitError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "ResponseFailedError",
    "RunError",
    "ServiceUnavailableError",
    "ToolError",
    "TransportError",
    "TransportTimeout",
    "UnprocessableEntityError",
]
