"""Stop conditions: when the tool loop stops asking the model for more.

Sans-io: stdlib, msgspec and other sans-io project modules only.

Rules (spec/callmodel.md §3.9, DESIGN.md §4.1 and §4.8):

1. A condition is a sync or async callable taking a :class:`StopContext` and
   returning ``True`` to stop. Only the object ``True`` stops: a truthy
   non-bool (``1``, ``"yes"``) does not (the SDK compares with ``=== true``).
2. ``stop_when`` is one condition or a sequence of them; a sequence means
   any-of. :func:`is_stop_condition_met` evaluates the conditions one at a
   time, in order, and stops at the first that returns ``True`` (so a later
   condition that would raise is not reached). A raising condition propagates
   its exception unchanged; the loop reports it as a ``RunError``. An empty
   sequence never stops.
3. ``steps`` holds one :class:`StepResult` per *executed* tool round; the
   first check happens before round 1 with no steps, so ``step_count_is(0)``
   stops before any tool runs. A step's ``usage`` is that of the response
   that asked for the round, so ``max_tokens_used`` and ``max_cost`` lag one
   response behind (SDK parity).
4. When ``stop_when`` is omitted the default is :data:`DEFAULT_STOP`,
   ``step_count_is(5)``: at most 5 tool rounds, 6 model responses.
5. ``finish_reason`` is derived from the step's response (the SDK never fills
   it, so ``finishReasonIs`` could not fire there):

   ===================================================  ====================
   response                                             ``finish_reason``
   ===================================================  ====================
   ``completed`` with a ``function_call`` item          ``"tool_calls"``
   ``completed`` without                                ``"stop"``
   ``incomplete``, reason ``max_output_tokens``         ``"length"``
   ``incomplete``, reason ``content_filter``            ``"content_filter"``
   ``incomplete``, another reason / none                that reason / ``"other"``
   ``failed``                                           ``"error"``
   ``cancelled``                                        ``"other"``
   anything else (``in_progress``, ``queued``)          ``None``
   ===================================================  ====================
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal, TypeAlias

import msgspec

from runtime._base.errors import ConfigurationError
from runtime._protocol.wire import (
    FunctionCallItem,
    ParsedToolCall,
    Response,
    Usage,
    response_text,
)

__all__ = [
    "DEFAULT_STOP",
    "StepResult",
    "StopCondition",
    "StopContext",
    "StopWhen",
    "derive_finish_reason",
    "finish_reason_is",
    "has_tool_call",
    "is_stop_condition_met",
    "max_cost",
    "max_tokens_used",
    "normalize_stop_when",
    "step_count_is",
]

_INCOMPLETE_REASONS: Final = {"max_output_tokens": "length", "content_filter": "content_filter"}


def derive_finish_reason(response: Response) -> str | None:
    """The finish reason of a response, per the table in the module docstring."""
    status = response.status
    if status == "completed":
        if any(isinstance(item, FunctionCallItem) for item in response.output):
            return "tool_calls"
        return "stop"
    if status == "incomplete":
        details = response.incomplete_details
        reason = details.reason if details is not None else None
        if not reason:
            return "other"
        return _INCOMPLETE_REASONS.get(reason, reason)
    if status == "failed":
        return "error"
    if status == "cancelled":
        return "other"
    return None


class StepResult(msgspec.Struct, frozen=True, kw_only=True):
    """One executed tool round, as stop conditions see it.

    Attributes:
        step_type: always ``"continue"`` (the SDK never reports ``"initial"``).
        text: the text of the response that asked for the round.
        tool_calls: the parsed calls of that response.
        tool_results: ``{"tool_call_id", "tool_name", "result"}`` per executed
            call, in call order; ``result`` is the JSON the model read, parsed
            (``{"error": message}`` for a failed call).
        response: the response that asked for the round.
        usage: that response's usage, or ``None``.
        finish_reason: derived from the response (see the module docstring).
    """

    step_type: Literal["initial", "continue"] = "continue"
    text: str = ""
    tool_calls: list[ParsedToolCall] = msgspec.field(default_factory=list)
    tool_results: list[dict[str, Any]] = msgspec.field(default_factory=list)
    response: Response | None = None
    usage: Usage | None = None
    finish_reason: str | None = None

    @classmethod
    def from_response(
        cls,
        response: Response,
        *,
        text: str | None = None,
        tool_calls: list[ParsedToolCall],
        tool_results: list[dict[str, Any]],
    ) -> StepResult:
        """The step of a round asked for by ``response``; usage and finish reason derived."""
        return cls(
            text=response_text(response) if text is None else text,
            tool_calls=tool_calls,
            tool_results=tool_results,
            response=response,
            usage=response.usage,
            finish_reason=derive_finish_reason(response),
        )


class StopContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a stop condition receives: the executed rounds so far."""

    steps: Sequence[StepResult]


StopCondition: TypeAlias = Callable[[StopContext], bool | Awaitable[bool]]
StopWhen: TypeAlias = StopCondition | Sequence[StopCondition]


class _Condition(msgspec.Struct, frozen=True):
    """Base of the built-in conditions: frozen values with a readable repr."""


class _StepCountIs(_Condition, frozen=True):
    n: int

    def __repr__(self) -> str:
        return f"step_count_is({self.n!r})"

    def __call__(self, context: StopContext) -> bool:
        return len(context.steps) >= self.n


class _HasToolCall(_Condition, frozen=True):
    name: str

    def __repr__(self) -> str:
        return f"has_tool_call({self.name!r})"

    def __call__(self, context: StopContext) -> bool:
        return any(call.name == self.name for step in context.steps for call in step.tool_calls)


class _MaxTokensUsed(_Condition, frozen=True):
    n: int

    def __repr__(self) -> str:
        return f"max_tokens_used({self.n!r})"

    def __call__(self, context: StopContext) -> bool:
        total = 0
        for step in context.steps:
            if step.usage is not None:
                total += step.usage.total_tokens or 0
        return total >= self.n


class _MaxCost(_Condition, frozen=True):
    usd: float

    def __repr__(self) -> str:
        return f"max_cost({self.usd!r})"

    def __call__(self, context: StopContext) -> bool:
        total = 0.0
        for step in context.steps:
            if step.usage is not None and step.usage.cost is not None:
                total += step.usage.cost
        return total >= self.usd


class _FinishReasonIs(_Condition, frozen=True):
    reason: str

    def __repr__(self) -> str:
        return f"finish_reason_is({self.reason!r})"

    def __call__(self, context: StopContext) -> bool:
        return any(step.finish_reason == self.reason for step in context.steps)


def _non_negative_int(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{what} {value!r} must be an integer >= 0")
    return value


def step_count_is(n: int) -> StopCondition:
    """Stop once ``n`` tool rounds have run (``len(steps) >= n``).

    Raises:
        ConfigurationError: ``n`` is not an integer >= 0.
    """
    return _StepCountIs(_non_negative_int("step_count_is: n", n))


def has_tool_call(name: str) -> StopCondition:
    """Stop once a round has run a call to tool ``name``.

    It fires one response later than "when the tool is called": the tool runs,
    the next response is fetched, and that response's calls are left unexecuted.

    Raises:
        ConfigurationError: ``name`` is not a non-empty string.
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"has_tool_call: name {name!r} must be a non-empty string")
    return _HasToolCall(name)


def max_tokens_used(n: int) -> StopCondition:
    """Stop once the steps' ``usage.total_tokens`` sum to at least ``n`` (missing → 0).

    Raises:
        ConfigurationError: ``n`` is not an integer >= 0.
    """
    return _MaxTokensUsed(_non_negative_int("max_tokens_used: n", n))


def max_cost(usd: float) -> StopCondition:
    """Stop once the steps' ``usage.cost`` sum to at least ``usd`` dollars (missing → 0).

    Cost is only known when the API reports ``usage.cost``.

    Raises:
        ConfigurationError: ``usd`` is not a finite number >= 0.
    """
    if (
        isinstance(usd, bool)
        or not isinstance(usd, int | float)
        or not math.isfinite(usd)
        or usd < 0
    ):
        raise ConfigurationError(f"max_cost: usd {usd!r} must be a finite number >= 0")
    return _MaxCost(float(usd))


def finish_reason_is(reason: str) -> StopCondition:
    """Stop once a step's derived ``finish_reason`` equals ``reason``.

    Reasons: ``"tool_calls"``, ``"stop"``, ``"length"``, ``"content_filter"``,
    ``"error"``, ``"other"`` or an unknown incomplete reason as sent.

    Raises:
        ConfigurationError: ``reason`` is not a non-empty string.
    """
    if not isinstance(reason, str) or not reason:
        raise ConfigurationError(f"finish_reason_is: reason {reason!r} must be a non-empty string")
    return _FinishReasonIs(reason)


DEFAULT_STOP: Final[StopCondition] = step_count_is(5)
"""The condition used when ``stop_when`` is omitted (SDK parity, DESIGN §4.1)."""


def normalize_stop_when(stop_when: StopWhen | None) -> tuple[StopCondition, ...]:
    """``stop_when`` as a tuple of conditions, checked before any I/O.

    ``None`` gives ``(DEFAULT_STOP,)``; one condition gives a 1-tuple; a list
    or tuple is copied (an empty one never stops).

    Raises:
        ConfigurationError: something in it is not callable.
    """
    if stop_when is None:
        return (DEFAULT_STOP,)
    value: object = stop_when
    conditions: tuple[Any, ...]
    if callable(value):
        conditions = (value,)
    elif isinstance(value, list | tuple):
        conditions = tuple(value)
    else:
        raise ConfigurationError(
            f"stop_when {stop_when!r} must be a stop condition or a list of them"
        )
    for condition in conditions:
        if not callable(condition):
            raise ConfigurationError(f"stop condition {condition!r} must be callable")
    return conditions


async def is_stop_condition_met(stop_when: StopWhen | None, steps: Sequence[StepResult]) -> bool:
    """Whether the loop should stop, given the executed rounds so far.

    Conditions are evaluated in order and the first one returning exactly
    ``True`` ends the evaluation (see the module rules). Not a checkpoint by
    itself; an async condition runs as the caller's task.

    Args:
        stop_when: one condition, a sequence (any-of), or ``None`` for
            :data:`DEFAULT_STOP`.
        steps: one :class:`StepResult` per executed round.

    Raises:
        ConfigurationError: ``stop_when`` is malformed.
        Exception: whatever a condition raised, unchanged.
    """
    context = StopContext(steps=steps)
    for condition in normalize_stop_when(stop_when):
        result = condition(context)
        if inspect.isawaitable(result):
            result = await result
        if result is True:
            return True
    return False
