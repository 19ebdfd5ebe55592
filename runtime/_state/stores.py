"""The built-in conversation stores: in memory, and one JSON file per conversation.

Both implement the ``state=`` accessor protocol (``runtime._agent.store``),
including its interruption side channel, and both keep exactly one document:
the last state saved. For a checkpoint per turn, keep every ``save`` in your
own store (a list, a table, a Redis stream); see the protocol's rule 2.

Rules:

1. **A reader never sees a torn document.** :class:`JSONFileStateStore` writes
   a temporary file in the same directory, flushes and fsyncs it, then
   ``os.replace``\\ s it over the document (atomic on POSIX and Windows), so a
   crash or a concurrent reader sees the old document or the new one, never a
   mix. File I/O runs in a worker thread (``trio.to_thread``), so a save never
   blocks the event loop. A cancelled save either never started (old document)
   or runs to its end (new document): the thread is never abandoned midway.
2. **Interruption requests sit beside the document**, never in it: the memory
   store keeps a separate attribute, the file store a ``<name>.interrupt``
   file. A save cannot overwrite a request, whichever runs first.
3. **One writer per conversation.** Two runs resuming the same conversation at
   once would each save their own history; the stores do not lock. Run one at
   a time per conversation (a pool, a queue, a lease), as with any document store.
4. **Copies, not aliases.** The memory store keeps the encoded document and
   decodes a fresh state on every ``load``, so nothing a caller does to a
   loaded state changes the stored one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Final, final

import msgspec
import trio

from runtime._agent.state import (
    DEFAULT_INTERRUPT_REASON,
    ConversationState,
    check_interrupt_reason,
    decode_state,
    encode_state,
)
from runtime._base.errors import ConfigurationError

__all__ = ["JSONFileStateStore", "MemoryStateStore"]

_REASON_ENCODER: Final = msgspec.json.Encoder()
_REASON_DECODER: Final = msgspec.json.Decoder(str)


@final
class MemoryStateStore:
    """A conversation kept in memory, for tests and single-process apps.

    Sync methods (the run accepts sync or async accessors). Pass the same store
    to each ``call_model(state=...)`` of the conversation.

    Args:
        state: a state to start from (a saved one, or a fresh one with a chosen id).
    """

    __slots__ = ("_document", "_interruption", "save_count")

    def __init__(self, state: ConversationState | None = None) -> None:
        self._document: bytes | None = None if state is None else encode_state(state)
        self._interruption: str | None = None
        #: How many times ``save`` was called.
        self.save_count = 0

    def __repr__(self) -> str:
        state = self.state
        status = None if state is None else state.status
        return f"<MemoryStateStore status={status!r} saves={self.save_count}>"

    @property
    def state(self) -> ConversationState | None:
        """The saved state (a fresh copy), or ``None``."""
        return None if self._document is None else decode_state(self._document)

    def load(self) -> ConversationState | None:
        """The saved state (a fresh copy), or ``None``. Not a checkpoint."""
        return self.state

    def save(self, state: ConversationState) -> None:
        """Replace the saved state. Not a checkpoint."""
        self._document = encode_state(state)
        self.save_count += 1

    def request_interrupt(self, reason: str = DEFAULT_INTERRUPT_REASON) -> None:
        """Ask the live run of this conversation to stop at its next safe point.

        Raises:
            ConfigurationError: ``reason`` is not a non-empty string.
        """
        self._interruption = check_interrupt_reason(reason)

    def interruption(self) -> str | None:
        """The pending interruption request's reason, or ``None``."""
        return self._interruption

    def clear_interruption(self) -> None:
        """Forget the pending interruption request."""
        self._interruption = None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    """Rule 1: temp file in the same directory, fsync, ``os.replace``."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@final
class JSONFileStateStore:
    """A conversation kept in one JSON file, written atomically (rule 1).

    Any process that can reach the file can resume the conversation, or ask
    its live run to stop (:meth:`request_interrupt`). The directory must exist.

    Args:
        path: the document's path, e.g. ``"conversations/conv_123.json"``.
    """

    __slots__ = ("_interrupt_path", "_path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise ConfigurationError(f"path must be a str or os.PathLike, got {path!r}")
        self._path = Path(path)
        self._interrupt_path = self._path.with_name(self._path.name + ".interrupt")

    def __repr__(self) -> str:
        return f"<JSONFileStateStore path={str(self._path)!r}>"

    @property
    def path(self) -> Path:
        """The document's path."""
        return self._path

    async def load(self) -> ConversationState | None:
        """Read the document (``None`` if the file does not exist). A checkpoint.

        Raises:
            InvalidStateError, UnsupportedStateVersionError: the file is not
                a readable state document.
            OSError: the file cannot be read.
        """
        data = await trio.to_thread.run_sync(_read, self._path)
        return None if data is None else decode_state(data)

    async def save(self, state: ConversationState) -> None:
        """Replace the document atomically. A checkpoint (see rule 1 for cancellation)."""
        data = encode_state(state)
        await trio.to_thread.run_sync(_write_atomically, self._path, data)

    async def request_interrupt(self, reason: str = DEFAULT_INTERRUPT_REASON) -> None:
        """Ask the live run of this conversation to stop at its next safe point.

        Writes ``<name>.interrupt`` beside the document (atomically). A checkpoint.

        Raises:
            ConfigurationError: ``reason`` is not a non-empty string.
        """
        data = _REASON_ENCODER.encode(check_interrupt_reason(reason))
        await trio.to_thread.run_sync(_write_atomically, self._interrupt_path, data)

    async def interruption(self) -> str | None:
        """The pending interruption request's reason, or ``None``. A checkpoint."""
        data = await trio.to_thread.run_sync(_read, self._interrupt_path)
        if data is None:
            return None
        try:
            return _REASON_DECODER.decode(data)
        except msgspec.DecodeError:
            return DEFAULT_INTERRUPT_REASON  # someone wrote the file by hand: still a request

    async def clear_interruption(self) -> None:
        """Remove the pending interruption request, if any. A checkpoint."""
        await trio.to_thread.run_sync(_unlink, self._interrupt_path)
