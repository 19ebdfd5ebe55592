"""Who answers a model call: the consumption state of scripts, and built-in models.

:class:`ScriptQueue` is one script's (or the default queue's) position and the
rule that decides, from the head turn's own fault, whether a turn is served,
repeated or consumed (:meth:`ScriptQueue.take`). :class:`Source` is what
:class:`runtime.emulator._core.Emulator` resolves a requested model to: a queue,
or a built-in model with its pricing. No I/O, no HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import msgspec

if TYPE_CHECKING:
    from runtime.emulator._script import Fault, Pricing, Script, Turn

__all__ = ["ScriptQueue", "Source"]


@final
class ScriptQueue:
    """Consumption state of one script (or of the default queue)."""

    __slots__ = ("head_hits", "position", "script")

    def __init__(self, script: Script) -> None:
        self.script = script
        self.position = 0
        self.head_hits = 0

    @property
    def remaining(self) -> int:
        return len(self.script.turns) - self.position

    def take(self) -> tuple[Turn, Fault | None] | None:
        """The turn that answers the next request and the fault to apply to it.

        The rules of the class docstring of :class:`Fault` (``times``):

        =====================  ============================================
        fault of the head turn  what happens
        =====================  ============================================
        none                    served, consumed
        status, no ``times``    error answered, turn stays (an outage)
        status, ``times=N``     error N times, then the turn is served and
                                consumed (a turn with no content of its own
                                is dropped and the next turn answers)
        other, no ``times``     served damaged once, consumed
        other, ``times=N``      served damaged N times, then clean, consumed
        =====================  ============================================
        """
        for _ in range(len(self.script.turns) + 1):
            turns = self.script.turns
            if self.position >= len(turns):
                if not (self.script.loop and turns):
                    return None
                self.position = 0
            turn = turns[self.position]
            fault = turn.fault
            if fault is None:
                self._advance()
                return turn, None
            if fault.times is None:
                if fault.status is None:
                    self._advance()
                return turn, fault
            if self.head_hits < fault.times:
                self.head_hits += 1
                return turn, fault
            self._advance()
            if _has_content(turn):
                return turn, None
        return None

    def _advance(self) -> None:
        self.position += 1
        self.head_hits = 0


def _has_content(turn: Turn) -> bool:
    """Whether a turn says anything beyond its fault (text, reasoning, calls, a status)."""
    return bool(turn.text or turn.reasoning or turn.tool_calls) or turn.status != "completed"


class Source(msgspec.Struct, frozen=True):
    """Who answers a model call: a script queue or a built-in model."""

    model: str
    pricing: Pricing
    queue: ScriptQueue | None = None
