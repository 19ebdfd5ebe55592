"""What a tool call gets and gives: its context, its final result, its outcome,
and the messages the model reads.

Sans-io: stdlib, msgspec and the wire types only. The ToolCall actor
(``actors/_tool_call.py``) produces these; :mod:`runtime._agent.tools` describes
the tools that run.

**What the model reads** (:func:`output_for_model`): the JSON encoding of the
result (a string ``"ok"`` becomes ``"\\"ok\\""``, ``None`` becomes ``"null"``),
or ``{"error": message}``.
"""

from __future__ import annotations

from collections.abc import Mapping  # noqa: TC003 - msgspec resolves Struct fields at runtime
from typing import Any, Final, Generic, TypeVar

import msgspec

from runtime._agent.context import SHARED_CONTEXT, ContextStore
from runtime._base.errors import ConfigurationError
from runtime._protocol.wire import ParsedToolCall  # noqa: TC001 - msgspec resolves Struct fields at runtime

__all__ = [
    "FinalResult",
    "ToolContext",
    "ToolOutcome",
    "generator_without_values_message",
    "invalid_json_arguments_message",
    "output_for_model",
    "unknown_tool_message",
]

T = TypeVar("T")

_ENCODER: Final = msgspec.json.Encoder()


# --- messages the model reads (spec §3.8; verbatim where the SDK has a text) ---


def invalid_json_arguments_message(tool_name: str, raw: str) -> str:
    """The error for a call whose arguments are not a JSON object or value (E-04)."""
    return (
        f'Failed to parse tool call arguments for "{tool_name}": The model provided invalid '
        f'JSON. Raw arguments received: "{raw}". Please provide valid JSON arguments for this '
        "tool call."
    )


def generator_without_values_message(tool_name: str) -> str:
    """The error for a generator tool that yielded nothing (G-05)."""
    return (
        f'Generator tool "{tool_name}" completed without emitting any values or returning a result'
    )


def unknown_tool_message(tool_name: str) -> str:
    """The error for a call naming no known tool (DESIGN §4.6)."""
    return f'Tool "{tool_name}" not found in tool definitions'


# --- context, results, outcomes ------------------------------------------------


class ToolContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a tool's ``execute`` receives besides its input.

    Attributes:
        number_of_turns: the turn of the round running the tool (1 for the
            first round of a new conversation; numbers go on when a saved
            conversation is resumed).
        tool_call: the call being executed (``id`` is the wire ``call_id``).
        turn_request: the request that produced the call, read-only, when known.
        contexts: the run's tool contexts (read them through :attr:`local`
            and :attr:`shared`), or ``None`` when the run has none.
    """

    number_of_turns: int
    tool_call: ParsedToolCall
    turn_request: Mapping[str, Any] | None = None
    contexts: ContextStore | None = None

    @property
    def local(self) -> Any:
        """This tool's context value (of its ``context_schema``), or ``None``."""
        return None if self.contexts is None else self.contexts.get(self.tool_call.name)

    @property
    def shared(self) -> Any:
        """The run's shared context value, or ``None``."""
        return None if self.contexts is None else self.contexts.get(SHARED_CONTEXT)

    def set_context(self, changes: Any = None, /, **fields: Any) -> Any:
        """Update this tool's context: ``ctx.set_context(count=2)`` or ``set_context(value)``.

        The changes are merged over the current value and validated against
        the tool's ``context_schema``; the new value is visible at once to
        every tool, saved with the conversation and streamed by
        ``ModelResult.get_context_updates()``.

        Returns:
            The new value.

        Raises:
            ConfigurationError: the tool has no ``context_schema``, or the
                result does not match it (nothing changes).
        """
        return self._set(self.tool_call.name, changes, fields)

    def set_shared_context(self, changes: Any = None, /, **fields: Any) -> Any:
        """Update the shared context, as :meth:`set_context` does for the tool's own."""
        return self._set(SHARED_CONTEXT, changes, fields)

    def _set(self, name: str, changes: Any, fields: dict[str, Any]) -> Any:
        if self.contexts is None:
            raise ConfigurationError(
                f"tool {self.tool_call.name!r} has no context store: give the tool a "
                "context_schema (or the run a shared_context_schema)"
            )
        patch: Any = fields if changes is None else changes
        if changes is not None and fields:
            patch = {**msgspec.to_builtins(changes), **fields}
        return self.contexts.set(name, patch, turn=self.number_of_turns, call_id=self.tool_call.id)


class FinalResult(msgspec.Struct, Generic[T], frozen=True):
    """Yield ``FinalResult(value)`` from a generator tool to end it with ``value`` as result.

    The counterpart of ``return value`` in a TypeScript generator tool: the
    generator is closed at once, and ``value`` is checked against
    ``output_schema``.
    """

    value: T


class ToolOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The settled outcome of one tool call.

    Attributes:
        call: the call.
        result: the checked result (``None`` when ``error`` is set).
        error: the error message the model will read, or ``None`` on success.
        preliminary_results: the generator events emitted, in order (they stay
            emitted when the tool fails later).
        exception: the exception behind ``error`` when there was one (for a
            run whose policy is to raise a :class:`ToolError` with it as cause).
            Never encoded.
    """

    call: ParsedToolCall
    result: Any = None
    error: str | None = None
    preliminary_results: list[Any] = msgspec.field(default_factory=list)
    exception: BaseException | None = None


def output_for_model(outcome: ToolOutcome) -> str:
    """The ``output`` string of the ``function_call_output`` item for an outcome.

    The JSON encoding of the result (``"ok"`` → ``"\\"ok\\""``, ``{"a": 1}`` →
    ``'{"a":1}'``, ``None`` → ``"null"``), or ``{"error": message}`` (E-03).

    Raises:
        msgspec.EncodeError, TypeError: the result cannot be encoded as JSON
            (the ToolCall actor checks this and turns it into an error outcome).
    """
    if outcome.error is not None:
        return _ENCODER.encode({"error": outcome.error}).decode()
    return _ENCODER.encode(outcome.result).decode()
