"""The whole exception tree of openrouter-trio.

One root, a shallow tree. Everything the runtime raises on purpose is an
:class:`AgentError`; trio's own resource errors (``trio.ClosedResourceError``,
``trio.EndOfChannel``, ...) are reused where they already say the right thing.
``Lagged`` lives in ``runtime._run.cursor`` because it also subclasses
``trio.TooSlowError`` and this module stays free of trio, so that the sans-io
core can import it.

::

    AgentError                          root; never raised directly
    ├── ConfigurationError              bad argument, detected before any I/O (also a ValueError)
    ├── TransportError                  could not talk to the server; __cause__ is the httpx error
    │   └── TransportTimeout            a connect/read/write/pool timeout of the HTTP client
    ├── APIStatusError                  non-2xx answer; status_code, code, message, metadata, retry_after
    │   ├── BadRequestError             400
    │   ├── AuthenticationError         401
    │   ├── PaymentRequiredError        402
    │   ├── PermissionDeniedError       403
    │   ├── NotFoundError               404
    │   ├── RequestTimeoutError         408
    │   ├── ConflictError               409
    │   ├── PayloadTooLargeError        413
    │   ├── UnprocessableEntityError    422
    │   ├── RateLimitError              429
    │   ├── InternalServerError         500
    │   ├── BadGatewayError             502
    │   ├── ServiceUnavailableError     503
    │   ├── EdgeTimeoutError            524
    │   └── ProviderOverloadedError     529
    ├── RemoteProtocolError             the server sent bytes we cannot interpret (bad SSE, broken
    │   │                               known event, stream ended without a terminal event)
    │   ├── ResponseFailedError         the server reported a failure in-band (response.failed, error)
    │   └── EventTooLargeError          one server-sent event grew past the decoder's max_event_size
    ├── ToolError                       a tool failed and the policy says to raise; tool_name, call_id
    ├── MCPError                        an MCP server refused a request or went away; code, data
    ├── StateError                      a saved conversation state cannot be used
    │   ├── InvalidStateError           the document is malformed (not JSON, wrong shape, bad context)
    │   └── UnsupportedStateVersionError  written by a version of the format this release cannot read
    └── RunError                        the agent loop cannot go on (dynamic parameter failed, ...)
        ├── RunCancelled                the run was cancelled before it produced a final response
        ├── RemoteRunError              a run followed from Redis failed in the process that ran it
        ├── RunTakenOver                another worker took the run over (its lease had expired)
        ├── StructuredOutputError       the final answer does not match output=, after retries
        └── RunTimeout                  the run's deadline (call_model(deadline=...)) passed
    Lagged (runtime._run.cursor)            a consumer fell off a bounded log (also trio.TooSlowError)

Local versus remote (the h11 rule): the caller's mistakes are
``ConfigurationError``; the server's bytes are ``RemoteProtocolError``.
Error messages are one plain sentence naming the offending value with ``!r``.
No message, repr or attribute of these errors ever contains an API key: the
transport redacts ``Authorization`` before it builds one.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIStatusError",
    "AgentError",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "EdgeTimeoutError",
    "EventTooLargeError",
    "InternalServerError",
    "InvalidStateError",
    "MCPError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "ProviderOverloadedError",
    "RateLimitError",
    "RemoteProtocolError",
    "RequestTimeoutError",
    "ResponseFailedError",
    "RunCancelled",
    "RunError",
    "RunTimeout",
    "ServiceUnavailableError",
    "StateConflictError",
    "StateError",
    "StructuredOutputError",
    "ToolError",
    "TransportError",
    "TransportTimeout",
    "UnprocessableEntityError",
    "UnsupportedStateVersionError",
    "status_error_class",
]


class AgentError(Exception):
    """Root of every error openrouter-trio raises on purpose."""


class ConfigurationError(AgentError, ValueError):
    """A bad argument or configuration, detected before any I/O."""


class TransportError(AgentError):
    """The HTTP exchange failed below the protocol level (connect, read, write).

    ``__cause__`` is the underlying ``httpx`` exception.
    """


class TransportTimeout(TransportError):
    """The HTTP client gave up waiting (connect, read, write or pool timeout)."""


class APIStatusError(AgentError):
    """The server answered with a non-2xx status.

    Attributes:
        status_code: the HTTP status.
        code: ``error.code`` from the body (an int for most errors, a string
            for some Responses-skin errors), or ``None``.
        message: ``error.message`` from the body, or a description of the body.
        metadata: ``error.metadata`` (an open mapping), or ``None``.
        error_type: the canonical error kind (``error.error_type`` →
            ``error.metadata.error_type`` → top-level ``error_type``), or ``None``.
        retry_after: seconds the server asked us to wait (``retry-after-ms`` or
            ``Retry-After``), or ``None``.
        body: the decoded JSON body (``None`` when the body was not JSON).
    """

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: int | str | None = None,
        metadata: dict[str, Any] | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        if status_code is not None:
            self.status_code = status_code
        self.message = message
        self.code = code
        self.metadata = metadata
        self.error_type = error_type
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, "
            f"code={self.code!r}, message={self.message!r})"
        )


class BadRequestError(APIStatusError):
    """400: bad or missing parameters, unknown model, ``store: true``, ..."""

    status_code = 400


class AuthenticationError(APIStatusError):
    """401: missing, invalid or disabled key; expired OAuth session."""

    status_code = 401


class PaymentRequiredError(APIStatusError):
    """402: insufficient credits, or the key's limit is exhausted."""

    status_code = 402


class PermissionDeniedError(APIStatusError):
    """403: not allowed (not a management key, guardrail, moderation, region)."""

    status_code = 403


class NotFoundError(APIStatusError):
    """404: unknown resource or model, or no routable endpoint."""

    status_code = 404


class RequestTimeoutError(APIStatusError):
    """408: the server timed the request out."""

    status_code = 408


class ConflictError(APIStatusError):
    """409: conflict (``/auth/keys/code``)."""

    status_code = 409


class PayloadTooLargeError(APIStatusError):
    """413: the request body is too large."""

    status_code = 413


class UnprocessableEntityError(APIStatusError):
    """422: semantically invalid request."""

    status_code = 422


class RateLimitError(APIStatusError):
    """429: rate limited; ``retry_after`` says how long the server asked to wait."""

    status_code = 429


class InternalServerError(APIStatusError):
    """500: internal error (the server masks the message)."""

    status_code = 500


class BadGatewayError(APIStatusError):
    """502: the provider is down or sent an invalid answer."""

    status_code = 502


class ServiceUnavailableError(APIStatusError):
    """503: no provider can serve the request right now."""

    status_code = 503


class EdgeTimeoutError(APIStatusError):
    """524: the edge (Cloudflare) timed out waiting for the origin."""

    status_code = 524


class ProviderOverloadedError(APIStatusError):
    """529: the provider is overloaded."""

    status_code = 529


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PaymentRequiredError,
        PermissionDeniedError,
        NotFoundError,
        RequestTimeoutError,
        ConflictError,
        PayloadTooLargeError,
        UnprocessableEntityError,
        RateLimitError,
        InternalServerError,
        BadGatewayError,
        ServiceUnavailableError,
        EdgeTimeoutError,
        ProviderOverloadedError,
    )
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The most specific error class for an HTTP status (``APIStatusError`` if none)."""
    return _STATUS_CLASSES.get(status_code, APIStatusError)


class RemoteProtocolError(AgentError):
    """The server sent something we cannot interpret.

    Malformed SSE, a known event type with a broken payload, a stream that ended
    without ``response.completed`` / ``response.incomplete`` / ``response.failed``.
    """


class ResponseFailedError(RemoteProtocolError):
    """The server reported a failure in-band, after the stream had started.

    Raised for ``response.failed``, ``error`` and ``response.error`` events.
    Keeps the server's detail: ``code``, ``message``, ``error_type`` and the
    failed ``response`` object when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | str | None = None,
        error_type: str | None = None,
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.error_type = error_type
        self.response = response


class EventTooLargeError(RemoteProtocolError):
    """One server-sent event (or one line of it) grew past the decoder's limit.

    Raised instead of buffering without bound. ``limit`` is the limit in bytes.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ToolError(AgentError):
    """A tool failed and the run's policy says to raise instead of telling the model.

    Raised by a run started with ``call_model(..., tool_errors="raise")`` once
    the round has settled; by default a failing tool is an error output the
    model reads. ``__cause__`` is the tool's own exception.
    """

    def __init__(self, message: str, *, tool_name: str, call_id: str) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.call_id = call_id


class StateError(AgentError):
    """A saved conversation state cannot be used (see ``ConversationState``)."""


class InvalidStateError(StateError):
    """A state document is malformed: not JSON, not the shape of a
    ``ConversationState``, or a saved tool context that does not match its type."""


class UnsupportedStateVersionError(StateError):
    """A state document was written in a version of the format this release cannot read.

    Attributes:
        version: the version found in the document.
    """

    def __init__(self, message: str, *, version: object) -> None:
        super().__init__(message)
        self.version = version


class StateConflictError(StateError):
    """A store refused to save a conversation because another run saved it since
    this run loaded it (``RedisStateStore``: one writer at a time); nothing was
    overwritten."""


class RunError(AgentError):
    """The agent loop cannot go on: a dynamic parameter, a stop condition,
    ``next_turn_params`` or a turn hook raised, or the final response is invalid.

    ``__cause__`` is the user's exception when there is one.
    """


class RunCancelled(RunError):
    """The run was cancelled (``ModelResult.cancel()``, or its scope was cancelled)
    before it produced the value asked for. Streams end cleanly instead."""


class StructuredOutputError(RunError):
    """The final answer did not match ``call_model(output=...)``, after every retry.

    Attributes:
        text: the last answer's text.
        reason: what was wrong with it (the validator's message, with its path).
    """

    def __init__(self, message: str, *, text: str, reason: str) -> None:
        super().__init__(message)
        self.text = text
        self.reason = reason


class MCPError(AgentError):
    """An MCP server refused a request (a JSON-RPC error), broke the protocol, or went away.

    Inside a run this becomes an error output the model reads, like any tool failure.

    Attributes:
        code: the JSON-RPC error code, or ``None`` for a connection failure.
        data: the error's ``data``, if the server sent one.
    """

    def __init__(self, message: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class RunTimeout(RunError):
    """The run's deadline passed before it ended (``call_model(deadline=...)``).

    Whatever was in flight (a model call, its retries, a tool round) was
    cancelled; the events received so far stay in the run's log.
    ``deadline`` is the budget in seconds the run had.
    """

    def __init__(self, message: str, *, deadline: float) -> None:
        super().__init__(message)
        self.deadline = deadline
