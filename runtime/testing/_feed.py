"""A websocket client of the event feed, for tests of feeds and dashboards.

Rules
-----

Rule 1 (the client owns its socket). :func:`open_feed_client` opens the TCP
stream itself and closes it when the block ends, however the connection ended:
trio-websocket's own client leaves its socket to the garbage collector when the
*server* closes, rejects or dies (a feed process killed under a test), and an
unclosed socket is a ``ResourceWarning`` at best. The websocket is closed first,
within two seconds.

Rule 2 (frames as JSON). :func:`receive_frame` decodes one message (a frame, or
a list of frames for a batched subscription); :func:`send_command` encodes one
command. Both fail loudly on a binary message.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio
from trio_websocket import wrap_client_stream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from trio_websocket import WebSocketConnection

__all__ = ["open_feed_client", "receive_frame", "receive_until", "send_command"]


@asynccontextmanager
async def open_feed_client(
    port: int,
    *,
    token: str | None,
    host: str = "127.0.0.1",
    header: bool = True,
    **options: Any,
) -> AsyncIterator[WebSocketConnection]:
    """A websocket to the feed on ``host:port`` for the block (Rule 1).

    Args:
        port: the feed's port.
        token: the feed token, sent as an ``Authorization: Bearer`` header, or,
            with ``header=False``, as the first frame (``{"type": "auth"}``), as
            a browser does; ``None``: not authenticated.
        host: the feed's host.
        header: authenticate by header (``True``) or by the first frame.
        **options: for trio-websocket's client (``extra_headers``,
            ``max_message_size``, ``message_queue_size``, ...).
    """
    headers = list(options.pop("extra_headers", []))
    if token is not None and header:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    stream = await trio.open_tcp_stream(host, port)
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(
                nursery, stream, host, "/", extra_headers=headers, **options
            )
            if token is not None and not header:
                await send_command(ws, {"type": "auth", "token": token})
            try:
                yield ws
            finally:
                with trio.move_on_after(2):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()


async def send_command(ws: WebSocketConnection, command: Mapping[str, Any]) -> None:
    """Send one command as a JSON text message."""
    await ws.send_message(json.dumps(command))


async def receive_frame(ws: WebSocketConnection) -> Any:
    """The next message, decoded: a frame (a dict) or, batched, a list of frames."""
    message = await ws.get_message()
    if not isinstance(message, str):
        raise TypeError(f"the feed sent a binary message: {message[:40]!r}")
    return json.loads(message)


async def receive_until(ws: WebSocketConnection, frame_type: str) -> dict[str, Any]:
    """Read frames up to the first whose ``type`` is ``frame_type`` and return it
    (batches are looked into; frames after it in the same batch are dropped)."""
    while True:
        message = await receive_frame(ws)
        for frame in message if isinstance(message, list) else [message]:
            if frame.get("type") == frame_type:
                return frame  # type: ignore[no-any-return]
