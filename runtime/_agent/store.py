"""The ``state=`` accessor protocol: how a run loads and saves its conversation.

Sans-io: the protocols, and :class:`StateSession`, the adapter a run uses. It
awaits what the user's methods return when that is awaitable, and nothing else
(like ``runtime._agent.params``); the stores that do real I/O live in
``runtime._state``.

Rules:

1. **Sync or async.** ``load()`` and ``save(state)`` (and the optional
   interruption methods) may be plain methods or coroutines. ``load()`` returns
   a :class:`ConversationState`, ``None`` (no conversation yet) or a document
   (JSON bytes or text, or a decoded mapping), read with ``decode_state``.
2. **When a run saves** (the checkpoint hook): once at every turn boundary,
   right before a follow-up request is sent (status ``in_progress``, every call
   answered), and once when the run ends: ``complete``, a pause
   (``awaiting_approval`` / ``awaiting_client_tools``) or ``interrupted``. A
   resume that leaves calls pending saves once. A failed or cancelled run saves
   nothing more: the last checkpoint stays valid. Every saved state is one the
   conversation can resume from, so a store that keeps each save (a stream,
   a history table) has a checkpoint per turn.
3. **Interruption is a side channel.** A store that also has
   ``interruption()`` (the pending request's reason, or ``None``) and
   ``clear_interruption()`` can be asked to stop a live run from anywhere that
   reaches the store. The request is kept apart from the saved document, so a
   save never overwrites it (the SDK's ``interruptedBy`` flag is lost that way).
   A run clears a request it honours, and a request left over from a run that
   had already ended is cleared when the next run starts.
4. **Failures are the run's.** A store that raises fails the run with a
   ``RunError`` (``Failed to load/persist conversation state: ...``; the
   store's exception is the ``__cause__``); a malformed document fails it with
   the ``StateError`` that says why.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from runtime._agent.state import ConversationState, decode_state
from runtime._base.errors import ConfigurationError, RunError, StateError

__all__ = [
    "InterruptibleStateAccessor",
    "StateAccessor",
    "StateSession",
    "check_state_accessor",
]


@runtime_checkable
class StateAccessor(Protocol):
    """Where a conversation lives between runs: ``call_model(state=...)``.

    Both methods may be sync or async.
    """

    def load(self) -> Any:
        """The saved conversation: a ``ConversationState``, a JSON document, or ``None``."""
        ...

    def save(self, state: ConversationState) -> Any:
        """Keep ``state``, replacing what was saved before."""
        ...


@runtime_checkable
class InterruptibleStateAccessor(StateAccessor, Protocol):
    """A store that can also carry an interruption request to a live run (rule 3)."""

    def interruption(self) -> Any:
        """The reason of a pending interruption request, or ``None``."""
        ...

    def clear_interruption(self) -> Any:
        """Forget the pending interruption request, if any."""
        ...


def check_state_accessor(value: Any) -> StateAccessor:
    """Check a ``state=`` argument before any I/O.

    Raises:
        ConfigurationError: ``value`` has no callable ``load`` and ``save``.
    """
    if not (callable(getattr(value, "load", None)) and callable(getattr(value, "save", None))):
        raise ConfigurationError(
            f"state must have load() and save() methods (sync or async), got {value!r}"
        )
    return value  # type: ignore[no-any-return]


async def _resolve(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class StateSession:
    """One run's view of its accessor: awaits as needed, wraps failures (rules 1 and 4)."""

    __slots__ = ("_accessor", "_interruptible", "saves")

    def __init__(self, accessor: StateAccessor) -> None:
        self._accessor = accessor
        self._interruptible = callable(getattr(accessor, "interruption", None)) and callable(
            getattr(accessor, "clear_interruption", None)
        )
        #: How many times this run saved (tests and the feed read it).
        self.saves = 0

    async def load(self) -> ConversationState | None:
        """The saved state, or ``None``.

        Raises:
            StateError: the document is malformed or of another version.
            RunError: the accessor raised.
        """
        try:
            loaded = await _resolve(self._accessor.load())
        except StateError:
            raise
        except Exception as exc:
            raise RunError(f"Failed to load conversation state: {exc}") from exc
        if loaded is None or isinstance(loaded, ConversationState):
            return loaded
        if isinstance(loaded, bytes | str | Mapping):
            return decode_state(loaded)
        raise RunError(
            f"state.load() returned {loaded!r}; expected a ConversationState, a JSON document "
            "or None"
        )

    async def save(self, state: ConversationState) -> None:
        """Save ``state``.

        Raises:
            RunError: the accessor raised.
        """
        try:
            await _resolve(self._accessor.save(state))
        except Exception as exc:
            raise RunError(f"Failed to persist conversation state: {exc}") from exc
        self.saves += 1

    async def interruption(self) -> str | None:
        """The pending interruption request's reason (``None`` without a side channel)."""
        if not self._interruptible:
            return None
        try:
            reason = await _resolve(self._accessor.interruption())  # type: ignore[attr-defined]
        except Exception as exc:
            raise RunError(f"Failed to read the interruption request: {exc}") from exc
        return None if reason is None else str(reason)

    async def clear_interruption(self) -> None:
        """Forget the pending interruption request (a no-op without a side channel)."""
        if not self._interruptible:
            return
        try:
            await _resolve(self._accessor.clear_interruption())  # type: ignore[attr-defined]
        except Exception as exc:
            raise RunError(f"Failed to clear the interruption request: {exc}") from exc
