"""Usage summed over the model calls of a run or of a whole conversation.

Sans-io: a value type shared by the run (``runtime._run.status``) and the
conversation state (``runtime._agent.state``), which persists it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from runtime._protocol.wire import Usage

__all__ = ["RunUsage"]


class RunUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Usage summed over every model call of a run (``ModelResult.get_usage()``).

    ``cost`` is ``None`` until some response reports a cost.
    """

    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None

    def plus(self, usage: Usage | None) -> RunUsage:
        """This total with one more model call's usage added."""
        if usage is None:
            return msgspec.structs.replace(self, model_calls=self.model_calls + 1)
        cost = self.cost
        if usage.cost is not None:
            cost = (cost or 0.0) + usage.cost
        return RunUsage(
            model_calls=self.model_calls + 1,
            input_tokens=self.input_tokens + usage.input_tokens,
            output_tokens=self.output_tokens + usage.output_tokens,
            total_tokens=self.total_tokens + usage.total_tokens,
            cached_tokens=self.cached_tokens + _cached(usage),
            reasoning_tokens=self.reasoning_tokens + _reasoning(usage),
            cost=cost,
        )

    def combined(self, other: RunUsage) -> RunUsage:
        """The sum of two totals (a saved conversation's usage plus a new run's)."""
        cost = self.cost
        if other.cost is not None:
            cost = (cost or 0.0) + other.cost
        return RunUsage(
            model_calls=self.model_calls + other.model_calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost=cost,
        )


def _cached(usage: Usage) -> int:
    details = usage.input_tokens_details
    return (details.cached_tokens or 0) if details is not None else 0


def _reasoning(usage: Usage) -> int:
    details = usage.output_tokens_details
    return (details.reasoning_tokens or 0) if details is not None else 0
