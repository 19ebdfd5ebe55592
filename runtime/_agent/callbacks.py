"""What the agent layer knows about the user's callbacks before it calls them.

Sans-io: stdlib only. Shared by :mod:`runtime._agent.tools` (which checks a
tool's ``execute`` and ``next_turn_params`` when the tool is built) and
:mod:`runtime._agent.params` (which calls them per turn), so neither needs the
other at import time: how many positional arguments a callback takes, how its
failure reads, and which request fields a ``next_turn_params`` callback may set.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["NEXT_TURN_PARAM_KEYS", "describe_exception", "positional_arity"]

NEXT_TURN_PARAM_KEYS: Final[tuple[str, ...]] = (
    "input",
    "model",
    "models",
    "temperature",
    "max_output_tokens",
    "top_p",
    "top_k",
    "instructions",
)
"""The request fields ``next_turn_params`` may set, in the SDK's order (snake_case)."""


def positional_arity(fn: Callable[..., Any], limit: int) -> int:
    """How many positional arguments (at most ``limit``) ``fn`` accepts.

    User callbacks may leave out trailing arguments they do not need
    (``temperature=lambda: 0.2``), as JavaScript callers can; we look once,
    when the callback is registered, and pass only what it takes.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: assume they take all
        return limit
    count = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return limit
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            count += 1
    return min(count, limit)


def describe_exception(exc: BaseException) -> str:
    """The message of an exception, or its class name when the message is empty."""
    return str(exc) or type(exc).__name__
