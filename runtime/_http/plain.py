"""Plain HTTP for services other than OpenRouter (MCP servers): no auth, no retries.

The OpenRouter transport (``transport.py``) adds a bearer key, attribution
headers and retries to every request; none of that may reach a third-party
server. :class:`PlainHTTP` sends exactly the headers its caller gives, streams
response bodies, and turns httpx failures into :class:`TransportError` naming
the method and URL only (never a header: an MCP server's token stays out of
errors and logs).

Timeouts: connecting and writing are bounded (``connect_timeout``); reading is
not, because a streamed tool call may take as long as the tool does. Callers
bound a whole exchange with a cancel scope instead.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, final

import httpx

from runtime._base.errors import TransportError, TransportTimeout

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping
    from types import TracebackType

__all__ = ["PlainHTTP", "PlainResponse"]


@final
class PlainResponse:
    """A response whose body is read as it arrives.

    Attributes:
        status_code: the HTTP status.
        headers: the headers, names in lower case.
    """

    def __init__(self, response: httpx.Response, what: str) -> None:
        self._response = response
        self._what = what
        self.status_code = response.status_code
        self.headers: dict[str, str] = {k.lower(): v for k, v in response.headers.items()}

    @property
    def media_type(self) -> str:
        """The ``content-type`` without parameters, in lower case."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk."""
        with _translate(self._what):
            async for chunk in self._response.aiter_raw():
                yield chunk

    async def read(self) -> bytes:
        """The whole body."""
        with _translate(self._what):
            return await self._response.aread()


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransportTimeout(f"{what} timed out: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise TransportError(f"{what} failed: {type(exc).__name__}: {exc}") from exc


@final
class PlainHTTP:
    """An HTTP/1.1 client with its own connection pool; use it as an async context manager.

    Args:
        connect_timeout: seconds to connect (and to write a request).
        http_transport: an ``httpx.AsyncBaseTransport`` to send through (tests).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        timeout = httpx.Timeout(
            connect=connect_timeout, read=None, write=connect_timeout, pool=None
        )
        self._client = httpx.AsyncClient(timeout=timeout, transport=http_transport)

    async def __aenter__(self) -> PlainHTTP:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> AsyncIterator[PlainResponse]:
        """Send a request and yield its response, body unread; leaving closes it.

        Raises:
            TransportError: the request could not be sent or the body not read
                (``TransportTimeout`` for a timeout); the message names the
                method and URL only.
        """
        what = f"{method} {url}"
        request = self._client.build_request(method, url, headers=dict(headers), content=body)
        with _translate(what):
            response = await self._client.send(request, stream=True)
        try:
            yield PlainResponse(response, what)
        finally:
            await response.aclose()
