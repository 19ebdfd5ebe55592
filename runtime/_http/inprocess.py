"""An httpx transport over an in-process handler, no sockets (what ``runtime.testing`` plugs in).

:class:`InProcessTransport` answers each request by calling an
:class:`InProcessHandler` (``FakeOpenRouter.handle`` and the like); a streamed
answer's dropped connection reads as httpx's own ``RemoteProtocolError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import httpx
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["InProcessHandler", "InProcessTransport"]


class InProcessHandler(Protocol):
    """What :class:`InProcessTransport` calls: ``FakeOpenRouter.handle`` and the like."""

    async def __call__(
        self, method: str, url_path: str, headers: list[tuple[str, str]], body: bytes
    ) -> Any: ...


class _InProcessBody(httpx.AsyncByteStream):
    """A streamed in-process body; a dropped connection reads as httpx's own error."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                yield chunk
        except trio.BrokenResourceError as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            ) from exc

    async def aclose(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class InProcessTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that answers from an in-process handler, no sockets.

    The handler gets the method, the path with its query, the header pairs and
    the body, and returns an object with ``status``, ``headers`` (pairs) and
    ``body`` (bytes, or an async iterator of chunks). ``runtime.testing``'s
    ``FakeOpenRouter`` is such a handler: ``OpenRouter(http_transport=
    fake.http_transport())``.
    """

    def __init__(self, handler: InProcessHandler) -> None:
        self._handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        target = request.url.raw_path.decode("ascii")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        answer = await self._handler(request.method, target, headers, body)
        content = answer.body
        stream: httpx.AsyncByteStream | None = None
        if not isinstance(content, bytes):
            stream = _InProcessBody(content)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            content=content if stream is None else None,
            stream=stream,
            request=request,
        )
