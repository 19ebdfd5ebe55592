"""MCP over JSON-RPC 2.0, sans-io: the messages a client sends and how to read the answers.

Protocol facts this module follows (MCP revision 2025-06-18; the older
2025-03-26 and 2024-11-05 and the newer 2025-11-25 are accepted when a server
answers with them):

1. **Handshake:** the client sends ``initialize`` (``protocolVersion``,
   ``capabilities``, ``clientInfo``); the server answers with the version it
   speaks, its capabilities and ``serverInfo``; the client then sends the
   notification ``notifications/initialized``. A version we do not know fails
   the connection (:class:`MCPError`).
2. **Tools:** ``tools/list`` pages with ``cursor`` / ``nextCursor``;
   ``tools/call`` takes ``name`` and ``arguments`` and answers ``content``
   (text, image, ... parts), optionally ``structuredContent``, and ``isError``
   for a failure of the tool itself (as opposed to a JSON-RPC ``error``, a
   failure of the request).
3. **Progress:** a request carrying ``params._meta.progressToken`` may get
   ``notifications/progress`` (``progressToken``, ``progress``, optional
   ``total`` and ``message``) until its response arrives.
4. **Cancellation:** ``notifications/cancelled`` (``requestId``, ``reason``)
   asks the server to stop a request; no response follows it, and a late one
   is ignored. ``initialize`` is never cancelled.
5. **Server requests** (``ping``, ``sampling/createMessage``, ...): we
   declare no client capabilities, so we answer ``ping`` with ``{}`` and any
   other method with JSON-RPC error -32601.

What the model reads from a call (:func:`read_call_result`): the
``structuredContent`` when there is one; else the text when every content
part is text (one part: its text; several: joined by newlines); else the
content parts as they are. ``isError`` makes the text an error message.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from runtime._base.errors import MCPError

__all__ = [
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "InitializeResult",
    "MCPProgress",
    "MCPToolInfo",
    "Notification",
    "Request",
    "Response",
    "decode_message",
    "encode_error",
    "encode_notification",
    "encode_request",
    "encode_result",
    "initialize_params",
    "model_tool_name",
    "read_call_result",
    "read_initialize_result",
    "read_progress",
    "read_tools_page",
]

PROTOCOL_VERSION: Final = "2025-06-18"
"""The MCP revision this client asks for."""

SUPPORTED_VERSIONS: Final = ("2025-06-18", "2025-03-26", "2024-11-05", "2025-11-25")
"""Revisions whose tool features (all this client uses) are the same."""

METHOD_NOT_FOUND: Final = -32601

_ENCODER: Final = msgspec.json.Encoder()
_NAME_CHARS: Final = re.compile(r"[^A-Za-z0-9_-]")


class MCPProgress(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A progress notification of a running MCP tool call (a preliminary result).

    Attributes:
        progress: the progress so far (grows with each notification).
        total: the total, when the server knows it.
        message: what the server says it is doing.
    """

    progress: float
    total: float | None = None
    message: str | None = None


class MCPToolInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One tool a server lists (``tools/list``)."""

    name: str
    input_schema: dict[str, Any] = msgspec.field(name="inputSchema")
    description: str | None = None
    title: str | None = None
    output_schema: dict[str, Any] | None = msgspec.field(default=None, name="outputSchema")
    annotations: dict[str, Any] | None = None


class _ToolsPage(msgspec.Struct, frozen=True, kw_only=True):
    tools: list[MCPToolInfo]
    next_cursor: str | None = msgspec.field(default=None, name="nextCursor")


class _ServerInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str = ""


class InitializeResult(msgspec.Struct, frozen=True, kw_only=True):
    """What the server said about itself in the handshake."""

    protocol_version: str = msgspec.field(name="protocolVersion")
    capabilities: dict[str, Any] = msgspec.field(default_factory=dict)
    server_info: _ServerInfo | None = msgspec.field(default=None, name="serverInfo")
    instructions: str | None = None


class Response(msgspec.Struct, frozen=True):
    """A response to one of our requests: ``result`` or ``error``."""

    id: int | str
    result: Any = None
    error: MCPError | None = None


class Request(msgspec.Struct, frozen=True):
    """A request from the server to us."""

    id: int | str
    method: str
    params: dict[str, Any]


class Notification(msgspec.Struct, frozen=True):
    """A notification from the server."""

    method: str
    params: dict[str, Any]


def encode_request(request_id: int, method: str, params: dict[str, Any] | None) -> bytes:
    """A JSON-RPC request (one line of JSON, no newline)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return _ENCODER.encode(message)


def encode_notification(method: str, params: dict[str, Any] | None = None) -> bytes:
    """A JSON-RPC notification."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return _ENCODER.encode(message)


def encode_result(request_id: int | str, result: Any) -> bytes:
    """Our successful answer to a server request."""
    return _ENCODER.encode({"jsonrpc": "2.0", "id": request_id, "result": result})


def encode_error(request_id: int | str, code: int, message: str) -> bytes:
    """Our error answer to a server request."""
    error = {"code": code, "message": message}
    return _ENCODER.encode({"jsonrpc": "2.0", "id": request_id, "error": error})


def _error_of(raw: Any) -> MCPError:
    if not isinstance(raw, dict):
        return MCPError(f"MCP server sent a malformed error: {raw!r}")
    code = raw.get("code")
    message = raw.get("message")
    text = message if isinstance(message, str) and message else "unknown error"
    return MCPError(
        f"MCP error {code}: {text}",
        code=code if isinstance(code, int) else None,
        data=raw.get("data"),
    )


def decode_message(raw: bytes | str) -> list[Response | Request | Notification]:
    """Read one JSON-RPC message (or a batch) from the server.

    Raises:
        MCPError: not JSON, or not a JSON-RPC message.
    """
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        shown = raw[:200] if isinstance(raw, str) else raw[:200].decode("utf-8", "replace")
        raise MCPError(f"MCP server sent something that is not JSON: {shown!r}") from exc
    items = value if isinstance(value, list) else [value]
    return [_classify(item) for item in items]


def _classify(item: Any) -> Response | Request | Notification:
    if not isinstance(item, dict) or item.get("jsonrpc") != "2.0":
        raise MCPError(f"MCP server sent a message that is not JSON-RPC 2.0: {item!r}")
    method = item.get("method")
    params = item.get("params")
    if not isinstance(params, dict):
        params = {}
    request_id = item.get("id")
    if isinstance(method, str):
        if isinstance(request_id, int | str) and not isinstance(request_id, bool):
            return Request(request_id, method, params)
        return Notification(method, params)
    if not isinstance(request_id, int | str) or isinstance(request_id, bool):
        raise MCPError(f"MCP server sent a response without a usable id: {item!r}")
    if "error" in item:
        return Response(request_id, error=_error_of(item["error"]))
    if "result" not in item:
        raise MCPError(f"MCP server sent a response with neither result nor error: {item!r}")
    return Response(request_id, result=item["result"])


def initialize_params(client_name: str, client_version: str) -> dict[str, Any]:
    """The ``params`` of our ``initialize`` request (we declare no client capabilities)."""
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": client_name, "version": client_version},
    }


def read_initialize_result(result: Any) -> InitializeResult:
    """Check the server's ``initialize`` answer.

    Raises:
        MCPError: malformed, or a protocol version we do not speak.
    """
    try:
        info = msgspec.convert(result, InitializeResult)
    except msgspec.ValidationError as exc:
        raise MCPError(f"MCP server sent a malformed initialize result: {exc}") from exc
    if info.protocol_version not in SUPPORTED_VERSIONS:
        raise MCPError(
            f"MCP server speaks protocol version {info.protocol_version!r}; this client "
            f"speaks {', '.join(SUPPORTED_VERSIONS)}"
        )
    return info


def read_tools_page(result: Any) -> tuple[list[MCPToolInfo], str | None]:
    """The tools of one ``tools/list`` page and the cursor of the next (``None`` at the end).

    Raises:
        MCPError: the page is malformed.
    """
    try:
        page = msgspec.convert(result, _ToolsPage)
    except msgspec.ValidationError as exc:
        raise MCPError(f"MCP server sent a malformed tools/list result: {exc}") from exc
    return page.tools, page.next_cursor


def read_progress(params: dict[str, Any]) -> tuple[Any, MCPProgress] | None:
    """``(progressToken, progress)`` of a ``notifications/progress``, or ``None`` if malformed."""
    token = params.get("progressToken")
    progress = params.get("progress")
    if token is None or not isinstance(progress, int | float) or isinstance(progress, bool):
        return None
    total = params.get("total")
    message = params.get("message")
    return token, MCPProgress(
        progress=progress,
        total=total if isinstance(total, int | float) and not isinstance(total, bool) else None,
        message=message if isinstance(message, str) else None,
    )


def _text_of(content: list[Any]) -> list[str] | None:
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            return None
        text = part.get("text")
        texts.append(text if isinstance(text, str) else "")
    return texts


def read_call_result(result: Any) -> tuple[Any, str | None]:
    """``(value, error)`` of a ``tools/call`` answer: what the model reads (module docstring).

    ``error`` is the message of a tool that reported ``isError``, else ``None``.

    Raises:
        MCPError: the answer is not an object.
    """
    if not isinstance(result, dict):
        raise MCPError(f"MCP server sent a malformed tools/call result: {result!r}")
    content = result.get("content")
    content = content if isinstance(content, list) else []
    texts = _text_of(content)
    if result.get("isError") is True:
        message = "\n".join(texts) if texts else msgspec.json.encode(content).decode()
        return None, message or "the MCP tool reported an error without a message"
    if "structuredContent" in result and result["structuredContent"] is not None:
        return result["structuredContent"], None
    if texts is not None:
        return (texts[0] if len(texts) == 1 else "\n".join(texts)), None
    return content, None


def model_tool_name(name: str, prefix: str = "") -> str:
    """The function name the model gets for an MCP tool: ``prefix + name``, with
    characters outside ``[A-Za-z0-9_-]`` replaced by ``_``, cut to 64 characters."""
    return _NAME_CHARS.sub("_", prefix + name)[:64] or "_"
