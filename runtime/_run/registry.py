"""What the websocket feed needs from a registry of runs, and the updates it publishes.

``SessionPool`` implements :class:`SessionRegistry`; the feed (``actors._feed``) depends on
this protocol, never on the pool, so the feed sits below the composition root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from runtime._run.status import RunSnapshot  # noqa: TC001 - msgspec resolves it at run time

if TYPE_CHECKING:
    from runtime._run.cursor import Cursor

__all__ = ["RegistryUpdate", "SessionRegistry"]


class RegistryUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One change of a session registry, as published to :meth:`SessionRegistry.watch`.

    Attributes:
        kind: ``"updated"`` (new, or its status, turn, usage or tool count
            changed) or ``"removed"`` (evicted from the registry).
        session: the run's snapshot at that moment (its last one, for ``removed``).
    """

    kind: Literal["updated", "removed"]
    session: RunSnapshot


class SessionRegistry(Protocol):
    """What the websocket feed needs from a registry of runs (``SessionPool`` is one).

    Every method is synchronous and cheap, so a caller can take a consistent view:
    attach :meth:`watch` and call :meth:`sessions` with no checkpoint in between,
    and no update falls in the gap.
    """

    def sessions(self) -> list[RunSnapshot]:
        """Snapshots of every listed run, oldest first."""
        ...

    def snapshot(self, run_id: str) -> RunSnapshot:
        """The snapshot of one run; ``KeyError`` if it is not listed."""
        ...

    def events(self, run_id: str, from_seq: int = 0) -> Cursor[Any]:
        """A new cursor on one run's event log; ``KeyError`` if it is not listed.

        The caller owns the cursor and must close it.
        """
        ...

    def watch(self) -> Cursor[RegistryUpdate]:
        """A new cursor over registry updates from now on (may raise ``Lagged``)."""
        ...
