"""Sans-io Server-Sent Events decoder: bytes in, :class:`ServerSentEvent` out.

The one job of this module is to cut an ``text/event-stream`` body into events,
following the WHATWG "event stream interpretation" rules, without doing any I/O
and without looking inside the ``data`` payload (that is JSON for
``runtime._protocol.events`` to decode).

Rules (WHATWG HTML §9.2.6, as OpenRouter uses them; see wire-protocol.md §2):

1. Lines end in CR, LF or CRLF. A CR at the end of one chunk followed by an LF
   at the start of the next is *one* line break. CR and LF never occur inside a
   multi-byte UTF-8 sequence, so the decoder splits raw bytes and never decodes
   the payload.
2. A blank line ends an event. Lines starting with ``:`` are comments
   (OpenRouter's keep-alives) and are skipped wherever they appear.
3. ``field:value`` with exactly one leading space stripped from the value; a
   line without a colon is a field with an empty value; unknown fields are
   ignored. ``data`` values are joined with LF. ``event`` names the event.
   ``id`` sets the last event id, which persists across events as the standard
   says (an ``id`` containing NUL is ignored). ``retry`` counts only if it is
   all ASCII digits.
4. An event without any ``data`` field is not dispatched.
5. A UTF-8 byte order mark at the very start of the stream is dropped.
6. End of input (:meth:`SSEDecoder.close`) ends the last line and the last
   event: an unterminated final event is dispatched if it has data. (The
   standard discards it; we keep it so that a server which omits the final
   blank line still delivers its last event. A stream cut in the middle of a
   payload then yields a truncated payload, which the JSON decoder rejects, so
   nothing broken is silently accepted.)

7. One event may hold at most ``max_event_size`` bytes (16 MiB by default): a
   server that sends a longer line or event, or never ends one, gets
   :class:`~runtime._base.errors.EventTooLargeError` instead of unbounded
   memory. Only bytes the decoder has to keep count: the check costs nothing
   on the fast path, where every event ends in the chunk it started in (and a
   chunk is bounded by the transport's read size).

Performance invariants (the SSE decode is on the hot path of every token):

* CR-free input, which is what OpenRouter sends, is only scanned by C-level
  ``bytes`` methods; CRs are rewritten to LF once per chunk (a C-level
  ``replace``) so that every later step sees LF-only input.
* A chunk of common blocks, ``data: <payload>\\n\\n``, is cut with one
  C-level ``split`` on ``\\n\\ndata: ``; each payload then costs one
  ``in`` test and the event's construction: no per-line Python work.
* Buffered input is never rescanned: an event that arrives in many small
  chunks is appended to a ``bytearray`` and the search for its end resumes
  where the last one stopped, so decoding is linear in the input size.
"""

from __future__ import annotations

from typing import Final, NoReturn

import msgspec

from runtime._base.errors import ConfigurationError, EventTooLargeError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_SIZE: Final = 16 * 1024 * 1024
"""Bytes one event (all its lines) may take before :class:`SSEDecoder` gives up."""

_BOM: Final = b"\xef\xbb\xbf"
_LF: Final = 0x0A
_DATA_PREFIX: Final = b"data: "
_SEPARATOR: Final = b"\n\ndata: "
# Below this size a chunk holds one or two events and splitting it costs more
# than reading it block by block.
_SPLIT_THRESHOLD: Final = 1024
_DONE: Final = b"[DONE]"


class ServerSentEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched server-sent event.

    Attributes:
        data: the ``data`` lines joined with ``b"\\n"``, as raw bytes (a JSON
            document for OpenRouter, or the ``[DONE]`` sentinel).
        event: the ``event`` field of this event, or ``None`` if it had none.
        id: the last event id seen so far in the stream, or ``None``.
        retry: the ``retry`` field of this event (milliseconds), or ``None``.
    """

    data: bytes
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    @property
    def is_done(self) -> bool:
        """Whether this is OpenRouter's end-of-stream sentinel, ``data: [DONE]``."""
        return self.data == _DONE


class SSEDecoder:
    """Incremental decoder for one ``text/event-stream`` body.

    Feed it the body's chunks as they arrive, split anywhere; it returns each
    event as soon as its terminating blank line has been seen. Call
    :meth:`close` at the end of the body to flush an unterminated last event.

    The decoder is synchronous, does no I/O and keeps only the bytes of the
    event in progress, at most ``max_event_size`` of them. It is not
    thread-safe and is meant for one body.

    Args:
        max_event_size: bytes one event may hold (its lines and line breaks);
            a longer one raises :class:`EventTooLargeError`.

    Raises:
        ConfigurationError: ``max_event_size`` is not a positive int.

    Example::

        decoder = SSEDecoder()
        for chunk in body_chunks:
            for sse in decoder.feed(chunk):
                if sse.is_done:
                    break
                handle(sse.data)
        leftover = decoder.close()
    """

    __slots__ = ("_bom_pending", "_buf", "_closed", "_cr_pending", "_last_id", "_limit", "_scan")

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if type(max_event_size) is not int or max_event_size < 1:
            raise ConfigurationError(
                f"max_event_size must be a positive int (bytes), not {max_event_size!r}."
            )
        self._limit = max_event_size
        self._buf = bytearray()
        # Where the search for the end of the buffered event resumes: no blank
        # line starts before this offset of ``_buf``.
        self._scan = 0
        self._cr_pending = False
        self._bom_pending = True
        self._closed = False
        self._last_id: str | None = None

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        """Add the next chunk of the body; return the events it completed, in order.

        Args:
            chunk: the next bytes of the body, of any length, split anywhere
                (inside a line, a CRLF pair or a UTF-8 character). A
                ``bytearray`` or ``memoryview`` is copied to ``bytes`` first.

        Returns:
            Every event whose terminating blank line is in ``chunk`` (possibly
            none). The list is new and owned by the caller.

        Raises:
            EventTooLargeError: the event in progress grew past
                ``max_event_size``; the decoder is closed.
            RuntimeError: the decoder was already closed. This is a bug in the
                caller, not a problem with the server's bytes.
        """
        if self._closed:
            raise RuntimeError("SSEDecoder.feed() was called after close()")
        if type(chunk) is not bytes:
            chunk = bytes(chunk)
        if not chunk:
            return []
        if self._cr_pending:
            self._cr_pending = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._cr_pending = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._bom_pending:
            chunk = self._strip_bom(chunk)
        if not chunk:
            return []

        buf = self._buf
        events: list[ServerSentEvent] = []
        if buf:
            # Finish the buffered event first, searching only the new bytes
            # (plus one byte, for a blank line split across the chunks).
            buf += chunk
            end = buf.find(b"\n\n", self._scan)
            if end == -1:
                if len(buf) > self._limit + 1:  # one LF may be half a blank line
                    self._too_large(len(buf))
                self._scan = len(buf) - 1
                return events
            if end > self._limit:
                self._too_large(end)
            with memoryview(buf) as view:
                first = self._parse_block(bytes(view[:end]))
                chunk = bytes(view[end + 2 :])
            buf.clear()
            if first is not None:
                events.append(first)
        if len(chunk) > _SPLIT_THRESHOLD:
            pos = self._scan_chunk(chunk, events)
        else:
            pos = self._scan_blocks(chunk, 0, events)
        if pos < len(chunk):
            buf += memoryview(chunk)[pos:]
            if len(buf) > self._limit + 1:
                self._too_large(len(buf))
            self._scan = len(buf) - 1
        else:
            self._scan = 0
        return events

    @property
    def buffered(self) -> int:
        """Bytes kept from earlier chunks: the start of an event still in progress."""
        return len(self._buf)

    def close(self) -> list[ServerSentEvent]:
        """Mark the end of the body; return the unterminated last event, if any.

        End of input ends the last line and the last event (rule 6 of the
        module docstring): a final event that has data is dispatched even
        without its blank line. Calling ``close()`` again returns ``[]``.
        """
        if self._closed:
            return []
        self._closed = True
        if not self._buf:
            return []
        block = bytes(self._buf)
        self._buf.clear()
        if self._bom_pending:
            self._bom_pending = False
            if block.startswith(_BOM):
                block = block[3:]
        event = self._parse_block(block.lstrip(b"\n"))
        return [] if event is None else [event]

    def _too_large(self, size: int) -> NoReturn:
        self._buf.clear()
        self._closed = True
        raise EventTooLargeError(
            f"A server-sent event grew to {size} bytes without ending, past the limit of "
            f"{self._limit} bytes (max_event_size).",
            limit=self._limit,
        )

    def _strip_bom(self, chunk: bytes) -> bytes:
        # Only reached while the first bytes of the stream are still unknown;
        # the buffer holds nothing but a partial BOM then.
        pending = bytes(self._buf) + chunk
        if len(pending) < len(_BOM) and _BOM.startswith(pending):
            self._buf[:] = pending
            return b""
        self._buf.clear()
        self._bom_pending = False
        return pending[3:] if pending.startswith(_BOM) else pending

    def _scan_chunk(self, data: bytes, events: list[ServerSentEvent]) -> int:
        """Dispatch every complete event of ``data`` (which starts at a line
        start and contains no CR); return the offset of the first unused byte.

        The hot path: a chunk full of ``data: ...\n\n`` events is cut with one
        C-level ``split`` on the separator ``\n\ndata: ``. Every middle piece
        without an LF is exactly one event's payload; any other piece is put
        back together and read by :meth:`_scan_blocks`.
        """
        if data.find(_SEPARATOR) == -1:
            return self._scan_blocks(data, 0, events)
        pieces = data.split(_SEPARATOR)
        last = pieces.pop()
        append = events.append
        first = pieces[0]
        if first.startswith(_DATA_PREFIX) and b"\n" not in first:
            append(ServerSentEvent(first[6:], None, self._last_id))
        else:
            self._scan_blocks(first + b"\n\n", 0, events)
        last_id = self._last_id
        # Each separator holds two LFs: if that is every LF before ``last``,
        # no piece has a line of its own and all are plain payloads (one
        # C-level count instead of an ``in`` test per piece).
        if data.count(b"\n", 0, len(data) - len(last)) == 2 * len(pieces):
            events.extend([ServerSentEvent(piece, None, last_id) for piece in pieces[1:]])
            return self._scan_blocks(data, len(data) - len(last) - 6, events)
        for index in range(1, len(pieces)):
            piece = pieces[index]
            if b"\n" in piece:
                self._scan_blocks(_DATA_PREFIX + piece + b"\n\n", 0, events)
                last_id = self._last_id
            else:
                append(ServerSentEvent(piece, None, last_id))
        # The last piece holds the end of the chunk: complete events, if any,
        # then the start of an incomplete one.
        return self._scan_blocks(data, len(data) - len(last) - 6, events)

    def _scan_blocks(self, data: bytes, pos: int, events: list[ServerSentEvent]) -> int:
        """Dispatch the complete events of ``data`` from offset ``pos`` (a line
        start; no CR) one block at a time; return the offset of the first
        unused byte."""
        append = events.append
        find = data.find
        startswith = data.startswith
        last_id = self._last_id
        n = len(data)
        while pos < n:
            if startswith(_DATA_PREFIX, pos):
                nl = find(b"\n", pos + 6)
                if nl == -1 or nl + 1 == n:
                    break
                if data[nl + 1] == _LF:
                    # A one-line ``data: ...`` event.
                    append(ServerSentEvent(data[pos + 6 : nl], None, last_id))
                    pos = nl + 2
                    continue
                end = find(b"\n\n", nl + 1)
            elif data[pos] == _LF:
                # A blank line between events dispatches nothing.
                pos += 1
                continue
            else:
                end = find(b"\n\n", pos)
            if end == -1:
                break
            event = self._parse_block(data[pos:end])
            if event is not None:
                append(event)
            last_id = self._last_id
            pos = end + 2
        return pos

    def _parse_block(self, block: bytes) -> ServerSentEvent | None:
        """Interpret the LF-separated lines of one event (no blank line inside
        except leading ones); return the event, or ``None`` if it has no data."""
        if block.startswith(_DATA_PREFIX) and b"\n" not in block:
            return ServerSentEvent(block[6:], None, self._last_id)
        data: list[bytes] = []
        event: str | None = None
        retry: int | None = None
        for line in block.split(b"\n"):
            if not line or line[0] == 0x3A:  # blank, or a ":" comment
                continue
            colon = line.find(b":")
            if colon == -1:
                name, value = line, b""
            else:
                name = line[:colon]
                value = (
                    line[colon + 2 :] if line[colon + 1 : colon + 2] == b" " else line[colon + 1 :]
                )
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value.decode("utf-8", "replace")
            elif name == b"id":
                if b"\x00" not in value:
                    self._last_id = value.decode("utf-8", "replace")
            elif name == b"retry" and value.isdigit():
                retry = int(value)
        if not data:
            return None
        payload = data[0] if len(data) == 1 else b"\n".join(data)
        return ServerSentEvent(payload, event, self._last_id, retry)
