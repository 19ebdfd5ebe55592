"""Turn parameters: dynamic request fields, ``next_turn_params`` and tool-choice relaxation.

Sans-io: stdlib, msgspec and other sans-io project modules only. The functions
here are ``async`` because the user's callables may be, but they never touch
trio: they await the user's coroutine and nothing else.

Rules (spec/callmodel.md §3.10, §3.11, §3.14.3):

1. A request field may be a plain value or a sync/async callable of the
   :class:`TurnContext`. :func:`resolve_dynamic_params` calls them in the
   mapping's order, one at a time; a callable whose result is ``None`` leaves
   the field out of the request (it is "not set", as ``undefined`` is in the
   TypeScript SDK). A failure becomes :class:`RunError` with the SDK's text
   ``Failed to resolve async function for field "<key>": <message>``.
2. ``next_turn_params`` run after a tool round, before the follow-up request,
   over tools in declaration order, then each tool's calls in response order,
   then the keys of its mapping in order. Each function gets the call's raw
   parsed arguments (not schema-validated) and the working
   :class:`NextTurnContext`; its result is written back into that context, so
   later functions see earlier edits. ``None`` removes the field.
3. Only the keys of :data:`~runtime._agent.callbacks.NEXT_TURN_PARAM_KEYS` may
   be set. The SDK skips other keys with a console warning; we reject them when
   the tool is built (``ConfigurationError``), which is earlier and louder.
4. After a tool round, a forced ``tool_choice`` is relaxed to ``"auto"`` so the
   model can answer (:func:`relax_tool_choice`); :class:`ToolChoiceRelaxer`
   re-arms it when a dynamic ``tool_choice`` resolves to a different value.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from runtime._agent.callbacks import NEXT_TURN_PARAM_KEYS, describe_exception, positional_arity
from runtime._base.errors import RunError
from runtime._protocol.wire import ParsedToolCall  # noqa: TC001 - msgspec resolves Struct fields at runtime

if TYPE_CHECKING:
    from runtime._agent.tools import Tool

__all__ = [
    "NextTurnContext",
    "ToolChoiceRelaxer",
    "TurnContext",
    "apply_next_turn_params",
    "apply_next_turn_params_to_request",
    "compute_next_turn_params",
    "has_dynamic_params",
    "relax_tool_choice",
    "resolve_dynamic_params",
]


class TurnContext(msgspec.Struct, frozen=True, kw_only=True):
    """What dynamic parameters, turn hooks and tools learn about the current turn.

    Attributes:
        number_of_turns: 0 for the initial request, k for the k-th tool round.
        tool_call: the call being executed, when the context is a tool's.
        turn_request: the request being built, as a read-only mapping, when known.
    """

    number_of_turns: int
    tool_call: ParsedToolCall | None = None
    turn_request: Mapping[str, Any] | None = None


class NextTurnContext(msgspec.Struct, frozen=True, kw_only=True):
    """The working view of the request that ``next_turn_params`` functions see.

    It starts from the current request (missing fields get the SDK's defaults:
    ``input=[]``, ``model=""``, ``models=[]``, the rest ``None``) and every
    function's result is written into it before the next function runs.
    """

    input: Any = msgspec.field(default_factory=list)
    model: str = ""
    models: list[str] = msgspec.field(default_factory=list)
    temperature: float | None = None
    max_output_tokens: int | None = None
    top_p: float | None = None
    top_k: int | None = None
    instructions: str | None = None


def json_type_name(value: Any) -> str:
    """The JSON type of a parsed JSON value (``"string"``, ``"array"``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


async def _call(fn: Callable[..., Any], arity: int, *args: Any) -> Any:
    result = fn(*args[:arity])
    if inspect.isawaitable(result):
        result = await result
    return result


def has_dynamic_params(params: Mapping[str, Any]) -> bool:
    """Whether any value of ``params`` is a callable to resolve per turn."""
    return any(callable(value) for value in params.values())


async def resolve_dynamic_params(params: Mapping[str, Any], ctx: TurnContext) -> dict[str, Any]:
    """Resolve every callable field of a request for one turn.

    Callables are called one at a time in the mapping's order, with ``ctx``
    (or with no argument when they take none); awaitable results are awaited.
    Plain values are copied as they are. A callable returning ``None`` leaves
    its field out.

    Args:
        params: the request fields, values or callables of :class:`TurnContext`.
        ctx: the turn being prepared.

    Returns:
        A new dict; ``params`` is not modified.

    Raises:
        RunError: a callable raised; ``__cause__`` is its exception.
    """
    resolved: dict[str, Any] = {}
    for key, value in params.items():
        if not callable(value):
            resolved[key] = value
            continue
        try:
            result = await _call(value, positional_arity(value, 1), ctx)
        except Exception as exc:
            raise RunError(
                f'Failed to resolve async function for field "{key}": {describe_exception(exc)}'
            ) from exc
        if result is not None:
            resolved[key] = result
    return resolved


def _working_context(request: Mapping[str, Any]) -> NextTurnContext:
    values = {}
    for key in NEXT_TURN_PARAM_KEYS:
        value = request.get(key)
        if value is not None and value is not msgspec.UNSET:
            values[key] = value
    return NextTurnContext(**values)


async def compute_next_turn_params(
    tools: Sequence[Tool], calls: Sequence[ParsedToolCall], request: Mapping[str, Any]
) -> dict[str, Any]:
    """Run the ``next_turn_params`` functions of a round and return what they set.

    See the module rules for the order and composition. Every parsed call of
    the round counts, whether its tool ran, failed or is manual.

    Args:
        tools: the run's tools, in declaration order.
        calls: the round's parsed calls, in response order.
        request: the request that produced the round's response.

    Returns:
        ``{field: value}`` in the order the fields were first set; ``None``
        means "remove the field".

    Raises:
        RunError: a call's arguments are not a JSON object (the SDK's text
            ``Tool call arguments for <tool> must be an object, got <type>``),
            or a function raised (``__cause__`` is its exception).
    """
    computed: dict[str, Any] = {}
    context: NextTurnContext | None = None
    for tool in tools:
        functions = tool.next_turn_params
        if not functions:
            continue
        for call in calls:
            if call.name != tool.name:
                continue
            arguments = call.arguments
            if not isinstance(arguments, Mapping):
                raise RunError(
                    f"Tool call arguments for {tool.name} must be an object, "
                    f"got {json_type_name(arguments)}"
                )
            if context is None:
                context = _working_context(request)
            for key, fn in functions.items():
                try:
                    value = await _call(fn, positional_arity(fn, 2), arguments, context)
                except Exception as exc:
                    raise RunError(
                        f'next_turn_params function for field "{key}" of tool "{tool.name}" '
                        f"failed: {describe_exception(exc)}"
                    ) from exc
                computed[key] = value
                context = msgspec.structs.replace(context, **{key: value})
    return computed


def apply_next_turn_params_to_request(
    request: Mapping[str, Any], computed: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge computed ``next_turn_params`` over a request.

    A non-``None`` value replaces the field (``0`` and ``""`` are real values);
    ``None`` removes it; fields not in ``computed`` are kept as they are.

    Returns:
        A new dict; ``request`` is not modified.
    """
    merged = dict(request)
    for key, value in computed.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def apply_next_turn_params(
    tools: Sequence[Tool], calls: Sequence[ParsedToolCall], request: Mapping[str, Any]
) -> dict[str, Any]:
    """Compute the round's ``next_turn_params`` and merge them over ``request``.

    Returns:
        A new dict (a shallow copy of ``request`` when no tool declares
        ``next_turn_params``), so unchanged values keep their identity.

    Raises:
        RunError: see :func:`compute_next_turn_params`.
    """
    if not any(tool.next_turn_params for tool in tools):
        return dict(request)
    computed = await compute_next_turn_params(tools, calls, request)
    return apply_next_turn_params_to_request(request, computed)


def relax_tool_choice(choice: Any) -> Any:
    """The ``tool_choice`` to send after a tool round (spec §3.14.3, A-02).

    ``"required"`` and a specific function (``{"type": "function", ...}``)
    become ``"auto"``; ``{"type": "allowed_tools", "mode": "required", ...}``
    keeps its tools with ``"mode": "auto"``; anything else (``"auto"``,
    ``"none"``, server-tool choices) is returned unchanged. Forcing a tool on
    every turn makes the model loop through tool calls until the budget runs
    out (typescript-agent#100).
    """
    if choice == "required":
        return "auto"
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if kind == "function":
            return "auto"
        if kind == "allowed_tools" and choice.get("mode") == "required":
            return {**choice, "mode": "auto"}
    return choice


class ToolChoiceRelaxer:
    """Relaxes a forced ``tool_choice`` after a round and re-arms it when it changes.

    Call :meth:`initial` with the resolved choice of the first request and
    :meth:`after_round` with the resolved choice of every follow-up. A
    follow-up gets the relaxed choice, unless the resolved choice differs from
    the one seen before (a dynamic ``tool_choice`` changed its mind): then the
    new choice is sent as is, once.
    """

    def __init__(self) -> None:
        self._seen: Any = msgspec.UNSET

    def initial(self, choice: Any) -> Any:
        """Remember the first request's choice and return it unchanged."""
        self._seen = choice
        return choice

    def after_round(self, choice: Any) -> Any:
        """The choice to send in a follow-up request after a tool round."""
        if choice != self._seen:
            self._seen = choice
            return choice
        return relax_tool_choice(choice)
