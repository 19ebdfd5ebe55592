"""Conversations in Redis: a ``state=`` store any process (and any worker) can use.

:class:`RedisStateStore` keeps one conversation (a ``ConversationState``, the
document of ``call_model(state=...)``) in Redis, so approvals, client tools and
resumable conversations work across processes: a run paused for approval on one
worker is resumed by a run on another, and ``request_interrupt`` reaches a live
run from anywhere. Durable runs submitted with ``submit_run(conversation=...)``
use it (``runtime._cli.worker``).

Rules
-----

Rule 1 (one hash per conversation). ``<prefix>:conv:{<id>}`` holds the fields
``doc`` (the JSON document), ``rev`` (its revision, raised by every save) and
``interrupt`` (a pending interruption's reason). A save never touches
``interrupt`` (the store protocol's rule 3: the request is a side channel).

Rule 2 (one writer at a time, checked). ``load`` remembers the revision it
read; ``save`` writes only if the stored revision is still that one (one Lua
script, atomic) and then remembers the new one. A save over a revision someone
else wrote raises :class:`~runtime.StateConflictError` (the run fails with
it as the cause, and nothing is overwritten): two runs of one conversation at
once cannot silently lose each other's turns. Use one store object per run.

Rule 3 (a fresh conversation has the store's id). ``load`` of a conversation
never saved returns a new, empty ``ConversationState`` whose ``id`` is the
store's, so the first save is found under that id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, final

from runtime._agent.state import (
    DEFAULT_INTERRUPT_REASON,
    ConversationState,
    check_interrupt_reason,
    decode_state,
    encode_state,
    new_conversation_state,
)
from runtime._base.errors import ConfigurationError, StateConflictError

if TYPE_CHECKING:
    from runtime._redis.store import RedisStore

__all__ = ["RedisStateStore", "check_conversation_id"]

_SAVE_SCRIPT: Final = """
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
if rev ~= ARGV[1] then return redis.error_reply('STATECONFLICT ' .. rev) end
redis.call('HSET', KEYS[1], 'doc', ARGV[2])
return redis.call('HINCRBY', KEYS[1], 'rev', 1)
"""


def check_conversation_id(conversation_id: object) -> str:
    """A conversation id usable in a key name, or a ``ConfigurationError`` naming it."""
    if (
        not isinstance(conversation_id, str)
        or not conversation_id
        or len(conversation_id) > 200
        or any(c in conversation_id for c in "{}") or any(c.isspace() for c in conversation_id)
    ):  # fmt: skip
        raise ConfigurationError(
            "conversation must be a non-empty string of at most 200 characters without "
            f"braces or spaces, got {conversation_id!r}."
        )
    return conversation_id


@final
class RedisStateStore:
    """One conversation kept in Redis (a ``state=`` store with interruption).

    Args:
        store: the Redis store (:func:`~runtime.open_redis_store`).
        conversation_id: the conversation's id (a fresh conversation takes it).

    Raises:
        ConfigurationError: the id is not a non-empty string of at most 200
            characters without braces or white space.
    """

    __slots__ = ("_key", "_rev", "_save", "_store", "conversation_id")

    def __init__(self, store: RedisStore, conversation_id: str) -> None:
        self.conversation_id = check_conversation_id(conversation_id)
        self._store = store
        self._key = f"{store.keys.prefix}:conv:{{{conversation_id}}}"
        self._rev = b"0"
        self._save = store.client.register_script(_SAVE_SCRIPT)

    def __repr__(self) -> str:
        return f"<RedisStateStore conversation={self.conversation_id!r}>"

    async def load(self) -> ConversationState:
        """The saved conversation, or a fresh one with this store's id (Rule 3).

        Raises:
            InvalidStateError, UnsupportedStateVersionError: the saved document is
                not a state this release reads.
        """
        doc, rev = await self._store.client.hmget(self._key, ["doc", "rev"])
        self._rev = rev if rev is not None else b"0"
        if doc is None:
            return new_conversation_state(self.conversation_id)
        return decode_state(doc)

    async def save(self, state: ConversationState) -> None:
        """Replace the saved conversation, unless someone saved since it was read.

        Raises:
            StateConflictError: another writer saved this conversation since this
                store's last ``load`` or ``save`` (Rule 2); nothing was written.
        """
        from runtime._redis.store import import_coredis

        try:
            rev: object = await self._save(keys=[self._key], args=[self._rev, encode_state(state)])
        except import_coredis().exceptions.ResponseError as exc:
            if "STATECONFLICT" not in str(exc):
                raise
            raise StateConflictError(
                f"conversation {self.conversation_id!r} was saved by another run since this "
                "one loaded it; nothing was overwritten"
            ) from None
        self._rev = str(rev).encode()

    async def request_interrupt(self, reason: str = DEFAULT_INTERRUPT_REASON) -> None:
        """Ask the live run of this conversation, in any process, to stop at a safe point."""
        await self._store.client.hset(self._key, {"interrupt": check_interrupt_reason(reason)})

    async def interruption(self) -> str | None:
        """The pending interruption's reason, or ``None``."""
        value = await self._store.client.hget(self._key, "interrupt")
        return None if value is None else value.decode()

    async def clear_interruption(self) -> None:
        """Forget a pending interruption request."""
        await self._store.client.hdel(self._key, ["interrupt"])

    async def delete(self) -> None:
        """Forget the conversation (its document, revision and any request)."""
        await self._store.client.delete([self._key])
