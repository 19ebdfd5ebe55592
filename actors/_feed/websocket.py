"""One server-side websocket over a trio byte stream, on wsproto: handshake, frames, close.

The feed's connections need three things trio-websocket's connection does not
give them (issue 16), so this module speaks RFC 6455 itself, with wsproto for
the handshake and for parsing what the client sends:

* **Pre-framed writes.** The hot path sends event frames that were framed once
  for every client (:func:`text_frame`); many frames go out in one
  ``send_all``. Only the connection's writer task writes to the stream.
* **A close frame every time.** Whatever ends the connection from our side (a
  message too big, invalid UTF-8, a protocol error, a policy decision), the
  close frame is written, the write side is shut (FIN), and what the client
  still sends is read and dropped until it closes its side or ``close_timeout``
  passes. Closing a socket with unread input sends a TCP reset, which makes the
  client's kernel throw away our close frame; draining first avoids that.
* **permessage-deflate** (RFC 7692) through wsproto's extension, when the
  client offers it and the feed allows it: wsproto inflates what the client
  sends, :class:`Deflater` compresses what we send (per connection, since the
  compressor keeps context between messages).

Rules
-----

Rule 1 (one writer). :meth:`ServerWebSocket.send_all` is called by one task at
a time (the connection's writer; the handshake and the final close run before
and after it). Frames for control messages (pong, close) are built by
:meth:`ServerWebSocket.pong`/:meth:`ServerWebSocket.close_frame` and queued by
the caller, so their order with data frames is the caller's.

Rule 2 (input limits). A message longer than ``max_message_size`` characters
raises :class:`MessageTooBig` as soon as the part received so far exceeds it,
so a client cannot make the server buffer more than that plus one read.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Final, final

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from actors._feed.protocol import text_frame

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "BinaryMessage",
    "ClientClosed",
    "ConnectionBroken",
    "Deflater",
    "HandshakeFailed",
    "MessageTooBig",
    "ProtocolViolation",
    "ServerWebSocket",
]

# Bytes read per receive: small enough that one read inflated by permessage-deflate
# (at most ~1,000x) stays bounded, large enough for bulk commands.
RECEIVE_SIZE: Final = 16 * 1024


@final
class Deflater:
    """permessage-deflate for one connection's outgoing messages (RFC 7692 §7.2.1)."""

    __slots__ = ("_bits", "_compressor", "_reset")

    def __init__(self, extension: PerMessageDeflate) -> None:
        self._bits = int(extension.server_max_window_bits)
        self._reset = bool(extension.server_no_context_takeover)
        self._compressor: zlib._Compress | None = None

    def frame(self, payload: bytes) -> bytes:
        """``payload`` compressed into one text frame with RSV1 set."""
        compressor = self._compressor
        if compressor is None:
            compressor = zlib.compressobj(6, zlib.DEFLATED, -self._bits)
            if not self._reset:
                self._compressor = compressor
        data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return text_frame(data[:-4], rsv1=True)


class HandshakeFailed(Exception):
    """The client did not send a websocket handshake request (the stream is done)."""


class ConnectionBroken(Exception):
    """The byte stream ended or broke without a closing handshake."""


class ClientClosed(Exception):
    """The client sent a close frame; the reply is :meth:`ServerWebSocket.close_reply`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class ProtocolViolation(Exception):
    """The client broke RFC 6455 (e.g. invalid UTF-8: 1007); close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class MessageTooBig(Exception):
    """A client message is longer than the limit (close with 1009)."""


class BinaryMessage(Exception):
    """The client sent a binary message (the feed takes text only: 1003)."""


@final
class ServerWebSocket:
    """The server side of one websocket connection over ``stream`` (see the module rules).

    Args:
        stream: the byte stream; the caller owns it and closes it.
        max_message_size: the longest text message accepted, in characters.
        on_pong: called (synchronously) for every pong received.
        on_control: called (synchronously) with each frame owed to the client (the
            pong answering a ping); the caller queues it for its writer.
    """

    __slots__ = (
        "_deflater",
        "_failed",
        "_max",
        "_on_control",
        "_on_pong",
        "_parts",
        "_proto",
        "_size",
        "_stream",
        "broken",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        max_message_size: int,
        on_pong: Callable[[], None] | None = None,
        on_control: Callable[[bytes], None] | None = None,
    ) -> None:
        self._stream = stream
        self._proto = WSConnection(ConnectionType.SERVER)
        self._max = max_message_size
        self._on_pong = on_pong
        self._parts: list[str] = []
        self._size = 0
        self._deflater: Deflater | None = None
        self._on_control = on_control
        self._failed = False
        self.broken = False

    def set_handlers(
        self, on_pong: Callable[[], None] | None, on_control: Callable[[bytes], None] | None
    ) -> None:
        """Set the ``on_pong`` and ``on_control`` callbacks (see the class)."""
        self._on_pong = on_pong
        self._on_control = on_control

    @property
    def deflater(self) -> Deflater | None:
        """The compressor of outgoing messages, if permessage-deflate was negotiated."""
        return self._deflater

    @property
    def open(self) -> bool:
        """Whether data frames may still be sent (no close frame sent or received)."""
        return self._proto.state is ConnectionState.OPEN and not self.broken

    def frame(self, payload: bytes) -> bytes:
        """One text message, compressed if negotiated."""
        deflater = self._deflater
        return text_frame(payload) if deflater is None else deflater.frame(payload)

    # -- handshake ------------------------------------------------------------------

    async def read_request(self) -> Request:
        """Read the HTTP upgrade request.

        Raises:
            HandshakeFailed: the bytes are not a websocket handshake (a 400 was sent
                when HTTP could still answer), or the stream ended first.
        """
        proto = self._proto
        while True:
            data = await self._receive()
            if not data:
                raise HandshakeFailed("the stream ended during the handshake")
            try:
                proto.receive_data(data)
                for event in proto.events():
                    if isinstance(event, Request):
                        return event
            except RemoteProtocolError as exc:
                hint = exc.event_hint
                if isinstance(hint, RejectConnection):
                    await self.reject(400, b"Bad websocket handshake.\n")
                raise HandshakeFailed(str(exc)) from None

    def accept(self, *, deflate: bool, headers: list[tuple[bytes, bytes]]) -> bytes:
        """The 101 response bytes; negotiates permessage-deflate if ``deflate``."""
        extension = PerMessageDeflate()
        data = self._proto.send(
            AcceptConnection(extensions=[extension] if deflate else [], extra_headers=headers)
        )
        if deflate and extension.enabled():
            self._deflater = Deflater(extension)
        return data

    async def reject(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Refuse the handshake with an HTTP status (best effort)."""
        all_headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *(headers or []),
        ]
        try:
            data = self._proto.send(
                RejectConnection(status_code=status, headers=all_headers, has_body=True)
            )
            data += self._proto.send(RejectData(data=body))
        except LocalProtocolError:
            return
        await self.send_all(data)

    # -- reading --------------------------------------------------------------------

    async def _receive(self) -> bytes:
        try:
            return bytes(await self._stream.receive_some(RECEIVE_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.broken = True
            return b""

    async def receive(self) -> str:
        """The next complete text message from the client.

        Pings are answered through ``on_control``; pongs call ``on_pong``.

        Raises:
            ClientClosed: the client started the closing handshake.
            ProtocolViolation: the client broke the protocol (close with its code).
            MessageTooBig: a message exceeds ``max_message_size``.
            BinaryMessage: a binary message arrived.
            ConnectionBroken: the stream ended or broke, or we are closing.
        """
        proto = self._proto
        while True:
            for event in proto.events():
                if isinstance(event, TextMessage):
                    self._size += len(event.data)
                    if self._size > self._max:
                        raise MessageTooBig
                    if event.message_finished:
                        parts = self._parts
                        self._parts = []
                        self._size = 0
                        if not parts:
                            return event.data
                        parts.append(event.data)
                        return "".join(parts)
                    self._parts.append(event.data)
                elif isinstance(event, BytesMessage):
                    raise BinaryMessage
                elif isinstance(event, Ping):
                    if proto.state is ConnectionState.OPEN and self._on_control is not None:
                        self._on_control(proto.send(event.response()))
                elif isinstance(event, Pong):
                    if self._on_pong is not None:
                        self._on_pong()
                elif isinstance(event, CloseConnection):
                    if proto.state is ConnectionState.REMOTE_CLOSING:
                        raise ClientClosed(int(event.code), event.reason or "")
                    if proto.state is ConnectionState.OPEN:
                        # wsproto reports a frame it could not parse as a close
                        # event without changing state: the error is the client's,
                        # and the frame parser cannot go on.
                        self._failed = True
                        raise ProtocolViolation(int(event.code), event.reason or "")
                    raise ConnectionBroken  # the reply to our own close
            if proto.state is not ConnectionState.OPEN and proto.state is not (
                ConnectionState.LOCAL_CLOSING
            ):
                raise ConnectionBroken
            data = await self._receive()
            if not data:
                raise ConnectionBroken
            try:
                proto.receive_data(data)
            except RemoteProtocolError as exc:
                self._failed = True
                raise ProtocolViolation(1002, str(exc)) from None

    # -- writing --------------------------------------------------------------------

    async def send_all(self, data: bytes) -> None:
        """Write bytes (Rule 1). Raises :class:`ConnectionBroken` if the stream broke."""
        if self.broken:
            raise ConnectionBroken
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.broken = True
            raise ConnectionBroken from None

    def ping(self, payload: bytes) -> bytes:
        """A ping frame (``b""`` once closing)."""
        if self._proto.state is not ConnectionState.OPEN:
            return b""
        return self._proto.send(Ping(payload=payload))

    def close_frame(self, code: int, reason: str) -> bytes:
        """Our close frame (``b""`` if one was already sent or the connection is closed)."""
        if self._proto.state is not ConnectionState.OPEN:
            return b""
        return self._proto.send(CloseConnection(code=code, reason=reason[:120]))

    def close_reply(self, code: int) -> bytes:
        """The reply to the client's close frame (RFC 6455 §5.5.1: echo its code)."""
        if self._proto.state is not ConnectionState.REMOTE_CLOSING:
            return b""
        if code in (1005, 1006, 1015):
            code = 1000
        return self._proto.send(CloseConnection(code=code))

    def _closed(self) -> bool:
        return self._proto.state is ConnectionState.CLOSED

    async def finish(self) -> None:
        """Complete the closing handshake after our last frame was written.

        Reads (and drops) what the client still sends until its close frame
        arrives, then returns: the caller closes the stream, as RFC 6455 §7.1.1
        wants the server to. If the client's bytes can no longer be parsed (a
        protocol violation), shuts our write side and reads until the client
        closes its side instead. Either way no unread input is left to turn
        the close into a TCP reset. A checkpoint; the caller bounds it
        (``trio.move_on_after``).
        """
        if self.broken or self._closed():
            return
        if not self._failed:
            while True:
                for _ in self._proto.events():
                    pass
                if self._closed():
                    return
                data = await self._receive()
                if not data:
                    return
                try:
                    self._proto.receive_data(data)
                except RemoteProtocolError:
                    break
        stream = self._stream
        if isinstance(stream, trio.abc.HalfCloseableStream):
            try:
                await stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
        while await self._receive():
            pass
