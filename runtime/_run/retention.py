"""The retention policies of an :class:`~runtime._run.eventlog.EventLog` (its Rule 5).

What a log keeps of its events: everything (:class:`KeepAll`, the default
:data:`KEEP_ALL`), what some attached cursor still needs (:class:`TrimBehindSlowest`)
or the newest ``capacity`` events (:class:`Ring`). Plain frozen msgspec Structs,
tagged on ``kind`` when encoded; the log applies them on its producer side
(``EventLog._retain``), so a policy costs nothing per event beyond that.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import msgspec

from runtime._base.errors import ConfigurationError

__all__ = ["KEEP_ALL", "KeepAll", "Retention", "Ring", "TrimBehindSlowest"]


class _RetentionPolicy(msgspec.Struct, frozen=True, tag_field="kind"):
    """Common base of the retention policies (tagged on ``kind`` when encoded)."""


class KeepAll(_RetentionPolicy, frozen=True, tag="keep_all"):
    """Keep every event for the lifetime of the log (the default).

    Memory grows with the run; every late consumer gets a full replay.
    """


class TrimBehindSlowest(_RetentionPolicy, frozen=True, tag="trim_behind_slowest"):
    """Drop the events that every attached cursor has already fetched.

    Memory stays near the lag of the slowest attached cursor. While no cursor is
    attached nothing is dropped. A cursor attached at a seq that was already dropped
    gets one :class:`Lagged` telling it how many events it missed.
    """


class Ring(_RetentionPolicy, frozen=True, tag="ring"):
    """Keep only the newest ``capacity`` events.

    Memory is bounded whatever the consumers do. A cursor that the producer
    overruns gets one :class:`Lagged` with the exact number of events it missed,
    then resumes at the oldest retained event.

    Args:
        capacity: how many events to keep, at least 1.

    Raises:
        ConfigurationError: ``capacity`` is not a positive integer.
    """

    capacity: int

    def __post_init__(self) -> None:
        if type(self.capacity) is not int or self.capacity < 1:
            raise ConfigurationError(
                f"Ring capacity must be a positive integer, got {self.capacity!r}."
            )


Retention: TypeAlias = KeepAll | TrimBehindSlowest | Ring
"""Any retention policy."""

KEEP_ALL: Final = KeepAll()
"""The default retention policy."""
