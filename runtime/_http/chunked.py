"""The sans-io decoder of ``Transfer-Encoding: chunked`` response bodies (for ``h11.py``).

Bulk in, bulk out: every chunk payload found in one read comes out joined into
one ``bytes`` (``bytes.find`` plus one regex match per chunk, or one ``split``
for a run of whole chunks), so a server that flushes every token costs well
under a microsecond per HTTP chunk.
"""

from __future__ import annotations

import re
from itertools import repeat
from typing import Final, final

import httpx

__all__: list[str] = []
# Package-internal: _ChunkedDecoder (runtime._http.connection).

_MAX_SIZE_LINE: Final = 4096  # longest chunk-size line (with extensions) accepted
_MAX_TRAILERS: Final = 65536  # longest trailer section accepted
_CRLF: Final = b"\r\n"
_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"
_FAST_PATH_MIN: Final = 1024  # bytes of whole chunks worth one split (see _feed_whole_chunks)
# RFC 9112 §7.1: chunk-size [ chunk-ext ]. 16 hex digits is more than any body.
_SIZE_LINE: Final = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")

# Body-reader states of _ChunkedDecoder beyond "n bytes of chunk data left".
_SIZE: Final = 0  # expecting a chunk-size line
_DATA_END: Final = -1  # expecting the CRLF after a chunk's data
_TRAILERS: Final = -2  # inside the trailer section after the last chunk
_DONE: Final = -3  # the body is complete


@final
class _ChunkedDecoder:
    """Sans-io decoder of a ``Transfer-Encoding: chunked`` body (RFC 9112 §7.1).

    :meth:`feed` takes the next bytes, split anywhere, and returns the chunk
    payloads they completed or continued, joined into one ``bytes``. After the
    last chunk and the trailer section, :attr:`done` is true and
    :attr:`extra` holds whatever followed the body.
    """

    __slots__ = ("_state", "_tail", "extra")

    def __init__(self) -> None:
        # > 0: bytes of chunk data still to come; else one of the states above.
        self._state = _SIZE
        self._tail = b""  # an incomplete size line, CRLF or trailer section
        self.extra = b""

    @property
    def done(self) -> bool:
        """Whether the terminating chunk and the trailers have been read."""
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """Decode the next bytes of the body; return the payload bytes they carried.

        Raises:
            httpx.RemoteProtocolError: the framing is broken (no ``request`` set;
                the caller attaches it).
        """
        state = self._state
        if state == _DONE:
            self.extra += data
            return b""
        if self._tail:
            data = self._tail + data
            self._tail = b""
        parts: list[bytes] = []
        append = parts.append
        find = data.find
        n = len(data)
        pos = 0
        while pos < n:
            if state > 0:  # inside a chunk's data
                end = pos + state
                if end > n:
                    append(data[pos:] if pos else data)
                    state = end - n
                    pos = n
                    break
                append(data[pos:end])
                pos = end
                state = _DATA_END
            if state == _DATA_END:
                if n - pos < 2:
                    break
                if not data.startswith(_CRLF, pos):
                    raise httpx.RemoteProtocolError(
                        f"Malformed chunked body: expected CRLF after chunk data, "
                        f"got {data[pos : pos + 2]!r}."
                    )
                pos += 2
                state = _SIZE
            if state == _SIZE:
                if n - pos >= _FAST_PATH_MIN:
                    data = self._feed_whole_chunks(data[pos:] if pos else data, parts)
                    find = data.find
                    n = len(data)
                    pos = 0
                # The exact loop: whole chunks in the buffer, one find and one
                # regex match each.
                while True:
                    eol = find(_CRLF, pos)
                    if eol == -1:
                        if n - pos > _MAX_SIZE_LINE:
                            raise httpx.RemoteProtocolError(
                                "Malformed chunked body: chunk-size line too long."
                            )
                        self._tail = data[pos:]
                        self._state = state
                        return b"".join(parts)
                    match = _SIZE_LINE.fullmatch(data, pos, eol)
                    if match is None:
                        raise httpx.RemoteProtocolError(
                            f"Malformed chunked body: bad chunk-size line {data[pos:eol][:40]!r}."
                        )
                    size = int(match[1], 16)
                    start = eol + 2
                    if size == 0:
                        pos = start
                        state = _TRAILERS
                        break
                    end = start + size
                    if end + 2 > n:  # this chunk continues in the next read
                        pos = start
                        state = size
                        break
                    if not data.startswith(_CRLF, end):
                        raise httpx.RemoteProtocolError(
                            f"Malformed chunked body: expected CRLF after chunk data, "
                            f"got {data[end : end + 2]!r}."
                        )
                    append(data[start:end])
                    pos = end + 2
                    if pos == n:
                        break
            if state == _TRAILERS:
                # Trailer fields are read and dropped; an empty line ends them.
                while True:
                    eol = find(_CRLF, pos)
                    if eol == -1:
                        if n - pos > _MAX_TRAILERS:
                            raise httpx.RemoteProtocolError(
                                "Malformed chunked body: trailer section too long."
                            )
                        self._tail = data[pos:]
                        self._state = state
                        return b"".join(parts)
                    if eol == pos:
                        self._state = _DONE
                        self.extra = data[eol + 2 :]
                        return b"".join(parts)
                    pos = eol + 2
        self._state = state
        if pos < n:
            self._tail = data[pos:]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    @staticmethod
    def _feed_whole_chunks(data: bytes, parts: list[bytes]) -> bytes:
        """The fast path: decode the run of whole chunks ``data`` starts with at C speed.

        One ``split`` on CRLF gives size line, payload, size line, payload...;
        the pairs followed by more input are accepted only if every size line
        is 1-16 hex digits, no size is 0 (the last chunk) and every payload has
        exactly its announced length (a payload containing CRLF fails that).
        Then their payloads are joined into ``parts`` and the rest of ``data``
        is returned for the exact loop; otherwise ``data`` is returned whole.
        """
        pieces = data.split(_CRLF)
        pairs = (len(pieces) - 2) // 2
        if pairs < 2:
            return data
        sizes = pieces[0 : 2 * pairs : 2]
        payloads = pieces[1 : 2 * pairs : 2]
        size_bytes = b"".join(sizes)
        lengths = list(map(len, payloads))
        if (
            size_bytes.translate(None, _HEX_DIGITS)
            or not 0 < min(map(len, sizes)) <= max(map(len, sizes)) <= 16
            or 0 in lengths
            or list(map(int, sizes, repeat(16))) != lengths
        ):
            return data
        parts.append(b"".join(payloads))
        return data[4 * pairs + len(size_bytes) + sum(lengths) :]
