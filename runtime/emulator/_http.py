"""HTTP plumbing of the emulator core: requests in, responses and error bodies out.

No sockets here: :class:`EmulatorRequest` is what a front end (the ASGI app or
an in-process transport adapter) hands to the core, :class:`EmulatorResponse`
is what it gets back. Error bodies follow OpenRouter's shapes exactly:

* everything under ``/api/v1`` except ``/completions``:
  ``{"error": {"code": <status>, "message": ..., "metadata": ... | null}}``
  (the ``*Response`` schemas of the OpenAPI subset, §10.1 of the wire notes);
* legacy ``/completions``: ``{"error": {"code": <status>, "message": ...}}``
  (``LegacyCompletions_ChatError`` forbids any other key).

:class:`HTTPError` is internal control flow: handlers raise it, the core turns
it into a response, it never leaves :meth:`Emulator.handle`.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Final, final

import msgspec

__all__ = [
    "EmulatorRequest",
    "EmulatorResponse",
    "HTTPError",
    "error_body",
    "json_response",
    "nesting_exceeds",
]

MAX_JSON_DEPTH: Final = 128
"""How deeply a request body may nest (objects and arrays); deeper ones get a 400."""
_STRING: Final = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS: Final = frozenset(b"[{")

_ENCODER: Final = msgspec.json.Encoder()
JSON_HEADERS: Final = (("content-type", "application/json"),)
SSE_HEADERS: Final = (
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
)


@final
class EmulatorResponse:
    """A response from the emulator core.

    Attributes:
        status: the HTTP status code.
        headers: header pairs, names in lower case.
        body: the whole body as ``bytes``, or an async iterator of chunks for a
            streamed body. Each chunk the iterator yields is meant to be written
            as its own HTTP chunk. The iterator raises
            ``trio.BrokenResourceError`` where the connection is to be dropped
            abruptly (an in-process adapter should turn that into the same
            error a real dropped connection gives, e.g. an incomplete chunked
            read). It may also never end (the ``hang`` fault): whoever reads it
            must be prepared to cancel.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes | AsyncIterator[bytes],
    ) -> None:
        self.status = status
        self.headers: list[tuple[str, str]] = list(headers)
        self.body = body

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def __repr__(self) -> str:
        kind = f"{len(self.body)} bytes" if isinstance(self.body, bytes) else "streamed"
        return f"EmulatorResponse(status={self.status!r}, body=<{kind}>)"


@final
class EmulatorRequest:
    """A parsed request: method, path, query, lower-cased headers and raw body."""

    __slots__ = ("body", "headers", "method", "path", "query", "query_string")

    def __init__(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
    ) -> None:
        self.method = method.upper()
        path, _, query = target.partition("?")
        if "://" in path:  # an absolute URL: keep only its path
            path = urllib.parse.urlsplit(path).path
        self.path = path.rstrip("/") or "/"
        self.query_string = query
        self.query: dict[str, list[str]] = urllib.parse.parse_qs(query, keep_blank_values=True)
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self.headers: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self.headers[key] = f"{self.headers[key]}, {value}" if key in self.headers else value
        self.body = body

    def query_value(self, name: str) -> str | None:
        """The last value of query parameter ``name``, or ``None``."""
        values = self.query.get(name)
        return values[-1] if values else None


class HTTPError(Exception):
    """An error answer, raised inside the core and turned into a response there."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = dict(metadata) if metadata is not None else None
        self.retry_after = retry_after
        self.headers = list(headers)

    def response(self, *, legacy: bool = False) -> EmulatorResponse:
        """The error as a JSON response (``legacy`` for ``/completions``)."""
        headers = [*JSON_HEADERS, *self.headers]
        if self.retry_after is not None:
            headers.append(("retry-after", str(math.ceil(self.retry_after))))
        body = error_body(self.status, self.message, self.metadata, legacy=legacy)
        return EmulatorResponse(self.status, headers, _ENCODER.encode(body))


def error_body(
    status: int, message: str, metadata: Mapping[str, Any] | None = None, *, legacy: bool = False
) -> dict[str, Any]:
    """OpenRouter's error body for ``status`` (the legacy shape has no metadata)."""
    if legacy:
        return {"error": {"code": status, "message": message}}
    return {
        "error": {
            "code": status,
            "message": message,
            "metadata": dict(metadata) if metadata is not None else None,
        }
    }


def json_response(
    payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> EmulatorResponse:
    """``payload`` encoded as a JSON response."""
    return EmulatorResponse(status, [*JSON_HEADERS, *headers], _ENCODER.encode(payload))


def nesting_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests objects and arrays deeper than ``limit``.

    Decoding would fail with ``RecursionError`` near 1,000 levels; this check
    does not recurse. Strings are cut out first (a bracket inside a string is
    not nesting) with one C-level regex pass; only the brackets are walked,
    and a body with fewer brackets than ``limit`` is not walked at all.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
