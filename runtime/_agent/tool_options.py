"""Checks and helpers for building a tool: its name, options, kind and call shape.

Sans-io: stdlib and the layers below. Split out of ``runtime._agent.tools``
(which keeps the ``Tool`` class and the two factories) to keep that module
under the size rule; every function here raises :class:`ConfigurationError`
naming the tool and the bad value, when the tool is made.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from runtime._agent.callbacks import NEXT_TURN_PARAM_KEYS, positional_arity
from runtime._agent.context import SHARED_CONTEXT
from runtime._base.errors import ConfigurationError

if TYPE_CHECKING:
    from runtime._agent.outcomes import ToolContext

__all__ = [
    "ToolKind",
    "check_name",
    "check_options",
    "is_async_gen_function",
    "is_coroutine_function",
    "positional_invoker",
    "tool_kind",
]

ToolKind = Literal["regular", "generator", "manual"]

_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_name(name: object) -> str:
    if not isinstance(name, str) or _NAME_PATTERN.fullmatch(name) is None:
        raise ConfigurationError(
            f"Tool name {name!r} must be 1 to 64 letters, digits, underscores or hyphens"
        )
    if name == SHARED_CONTEXT:
        raise ConfigurationError(
            'Tool name "shared" is reserved for shared context. Choose a different name.'
        )
    return name


def check_options(
    name: str,
    timeout: float | None,
    max_concurrency: int | None,
    next_turn_params: Mapping[str, Callable[..., Any]] | None,
) -> Mapping[str, Callable[..., Any]] | None:
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not timeout > 0
        or timeout != timeout
    ):
        raise ConfigurationError(
            f"Tool {name!r} timeout {timeout!r} must be a positive number of seconds or None"
        )
    if max_concurrency is not None and (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or max_concurrency < 1
    ):
        raise ConfigurationError(
            f"Tool {name!r} max_concurrency {max_concurrency!r} must be an integer >= 1 or None"
        )
    if next_turn_params is None:
        return None
    if not isinstance(next_turn_params, Mapping):
        raise ConfigurationError(
            f"Tool {name!r} next_turn_params {next_turn_params!r} must be a mapping of "
            "field names to functions"
        )
    for key, fn in next_turn_params.items():
        if key not in NEXT_TURN_PARAM_KEYS:
            raise ConfigurationError(
                f"Tool {name!r} next_turn_params key {key!r} is not one of "
                f"{', '.join(NEXT_TURN_PARAM_KEYS)}"
            )
        if not callable(fn):
            raise ConfigurationError(
                f"Tool {name!r} next_turn_params value for {key!r} must be callable, got {fn!r}"
            )
    return MappingProxyType(dict(next_turn_params))


def is_async_gen_function(fn: Callable[..., Any]) -> bool:
    return inspect.isasyncgenfunction(fn) or inspect.isasyncgenfunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects
    )


def is_coroutine_function(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects
    )


def positional_invoker(fn: Callable[..., Any]) -> Callable[[Any, ToolContext], Any]:
    arity = positional_arity(fn, 2)
    if arity == 2:
        return fn
    if arity == 1:
        return lambda arguments, context: fn(arguments)
    return lambda arguments, context: fn()


def tool_kind(
    name: str,
    execute: object,
    output_schema: Any,
    event_schema: Any,
    run_sync_in_thread: bool,
) -> ToolKind:
    if execute is False:
        if event_schema is not None:
            raise ConfigurationError(
                f"Tool {name!r} is manual (execute=False) and cannot have an event_schema"
            )
        return "manual"
    if execute is True or not callable(execute):
        raise ConfigurationError(
            f"Tool {name!r} execute {execute!r} must be a function, or False for a manual tool"
        )
    if event_schema is not None:
        if not is_async_gen_function(execute):
            raise ConfigurationError(
                f"Tool {name!r} has an event_schema, so execute {execute!r} must be an async "
                "generator function"
            )
        if output_schema is None:
            raise ConfigurationError(
                f"Tool {name!r} has an event_schema, so it also needs an output_schema"
            )
        if run_sync_in_thread:
            raise ConfigurationError(
                f"Tool {name!r} is a generator tool and cannot use run_sync_in_thread"
            )
        return "generator"
    if is_async_gen_function(execute):
        raise ConfigurationError(
            f"Tool {name!r} execute {execute!r} is an async generator function, "
            "which needs an event_schema"
        )
    if run_sync_in_thread and is_coroutine_function(execute):
        raise ConfigurationError(
            f"Tool {name!r} execute {execute!r} is async, so run_sync_in_thread must be False"
        )
    return "regular"
