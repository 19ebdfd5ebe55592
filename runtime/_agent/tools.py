"""Client tools: schemas for the model, argument parsing, output checks, outcomes.

Sans-io: stdlib, msgspec and other sans-io project modules only. Running a tool
(timeouts, threads, cancellation) is the ToolCall actor's job
(``actors/_tool_call.py``); this module only describes tools and judges values.

Schemas are msgspec types — a ``Struct`` class, or anything msgspec can convert
to (``dict[str, Any]``, ``TypedDict``, ``Literal``, ``Annotated[..., Meta]``) —
or plain JSON-Schema dicts (what MCP servers and existing agent code provide):
a dict is checked when the tool is made
(:func:`~runtime._agent.jsonschema.compile_schema`, an error names the bad
keyword), sent to the model as given, and values are validated against it
(never converted: ``execute`` gets the arguments as a dict). msgspec types play
the part Zod plays in the TypeScript SDK:

* **For the model**, :func:`~runtime._agent.schema.json_schema_for` turns the
  input type into JSON Schema with ``msgspec.json.schema``, then inlines every
  ``$defs`` entry so no ``$ref`` is left (not every provider resolves references). A truly recursive
  type cannot be inlined: its definition stays under ``$defs`` at the root and
  is referenced from inside itself. Keys starting with ``~`` are dropped at
  every depth (typescript-sdk#131, Z-01). Descriptions from ``Meta(description=)``
  and Struct docstrings are kept.
* **Arguments** are validated with ``msgspec.convert(raw, input_schema)`` in
  msgspec's *strict* mode, the counterpart of a plain Zod schema: JSON types
  must match what the schema advertises (``"5"`` is not an ``int``; an ``int``
  is accepted for a ``float``), defaults are filled in and unknown keys are
  dropped (unless the Struct forbids them). The model gets a readable error
  and can try again, which beats guessing what it meant.
* **Outputs and events** are checked the same way (``from_attributes=True``, so
  objects with matching attributes convert too); the converted value is what
  the model sees.

Three kinds of tool, decided by :func:`tool` as the seeds decide them:
``execute=False`` → ``"manual"`` (advertised, never run here); ``event_schema``
given → ``"generator"`` (``execute`` is an async generator function and
``output_schema`` is required); otherwise ``"regular"`` (a sync or async
function). ``execute`` receives ``(input, context)`` — or just ``(input)`` or
nothing, if that is all it declares.

**The final result of a generator tool** (Python generators cannot return a
value): the generator may ``yield FinalResult(value)``, which ends the tool at
once (the generator is closed) and makes ``value`` the result — the
counterpart of a TypeScript ``return``. Otherwise the first yield that matches
``output_schema`` but not ``event_schema`` is the result; otherwise the last
yield is (it is then both an event and the result). Every other yield must
match ``event_schema`` and becomes a preliminary result. Nothing yielded is an
error.

What a call gets and gives (:class:`~runtime._agent.outcomes.ToolContext`,
:class:`~runtime._agent.outcomes.FinalResult`,
:class:`~runtime._agent.outcomes.ToolOutcome`, what the model reads) is in
:mod:`runtime._agent.outcomes`; schemas from types, signatures and docstrings
are in :mod:`runtime._agent.schema`.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import typing
from typing import Annotated, Any, Final, Literal

import msgspec

from runtime._agent.approvals import check_require_approval
from runtime._agent.context import SHARED_CONTEXT, check_context_schema
from runtime._agent.jsonschema import JSONSchemaError, Validator, compile_schema
from runtime._agent.outcomes import ToolContext
from runtime._agent.schema import (
    copy_json,
    field_default,
    has_description,
    is_mutable_default,
    json_schema_for,
    parse_docstring,
    resolve_annotations,
)
from runtime._agent.tool_options import (
    ToolKind,
    check_name,
    check_options,
    is_async_gen_function,
    positional_invoker,
    tool_kind,
)
from runtime._base.errors import ConfigurationError, ToolError

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "RESERVED_TOOL_NAME",
    "Tool",
    "ToolKind",
    "function_tool",
    "tool",
]

RESERVED_TOOL_NAME: Final = SHARED_CONTEXT
"""The name kept for the shared context store of the SDK; no tool may use it."""


def _schema_or_error(tool_name: str, what: str, schema_type: Any) -> dict[str, Any]:
    try:
        return json_schema_for(schema_type)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"Tool {tool_name!r} {what} {schema_type!r} is not a type msgspec can describe: {exc}"
        ) from exc


def _validator_or_error(tool_name: str, what: str, schema: dict[str, Any]) -> Validator:
    """A JSON-Schema dict checked once (rule 1 of :mod:`runtime._agent.jsonschema`)."""
    try:
        return compile_schema(schema)
    except ConfigurationError as exc:
        raise ConfigurationError(f"Tool {tool_name!r} {what}: {exc}") from None


def _is_object_schema(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (isinstance(kind, list) and kind == ["object"])


# --- the Tool --------------------------------------------------------------------


@typing.final
class Tool:
    """A client tool: what the model is told, and how to run and check it.

    Build one with :func:`tool` or :func:`function_tool`; the constructor is
    private. Tools are immutable and may be shared by any number of runs.

    Attributes:
        name: the function name the model calls.
        description: what the model is told the tool does, or ``None``.
        input_schema: msgspec type of the arguments.
        output_schema: msgspec type of the result, or ``None`` (unchecked).
        event_schema: msgspec type of a generator tool's events, or ``None``.
        execute: the user's function, or ``None`` for a manual tool.
        next_turn_params: ``{field: fn(arguments, context)}`` or ``None``.
        kind: ``"regular"``, ``"generator"`` or ``"manual"``.
        run_sync_in_thread: run a sync ``execute`` in a worker thread.
        timeout: seconds one call may take, or ``None``.
        max_concurrency: how many calls of this tool may run at once, or ``None``.
        require_approval: ``False``, ``True`` or ``fn(call, context) -> bool``:
            whether a call waits for a human's decision (see the approvals guide).
        context_schema: msgspec type of the tool's own context, or ``None``.
    """

    __slots__ = (
        "_context_schema",
        "_description",
        "_event_schema",
        "_event_validator",
        "_execute",
        "_input_schema",
        "_input_validator",
        "_invoke",
        "_kind",
        "_max_concurrency",
        "_name",
        "_next_turn_params",
        "_output_schema",
        "_output_validator",
        "_parameters",
        "_require_approval",
        "_run_sync_in_thread",
        "_timeout",
    )

    def __init__(
        self,
        *,
        name: str,
        description: str | None,
        input_schema: Any,
        output_schema: Any,
        event_schema: Any,
        execute: Callable[..., Any] | None,
        invoke: Callable[[Any, ToolContext], Any] | None,
        next_turn_params: Mapping[str, Callable[..., Any]] | None,
        kind: ToolKind,
        run_sync_in_thread: bool,
        timeout: float | None,
        max_concurrency: int | None,
        require_approval: bool | Callable[..., Any] = False,
        context_schema: Any = None,
    ) -> None:
        self._name = name
        self._require_approval = check_require_approval(f"Tool {name!r}", require_approval)
        if self._require_approval is None:
            raise ConfigurationError(
                f"Tool {name!r} require_approval must be True, False or a function, got None"
            )
        self._context_schema = check_context_schema(f"Tool {name!r}", context_schema)
        self._description = description
        self._input_schema = input_schema
        self._output_schema = output_schema
        self._event_schema = event_schema
        self._execute = execute
        self._invoke = invoke
        self._next_turn_params = next_turn_params
        self._kind: ToolKind = kind
        self._run_sync_in_thread = run_sync_in_thread
        self._timeout = timeout
        self._max_concurrency = max_concurrency
        self._input_validator: Validator | None = None
        self._output_validator: Validator | None = None
        self._event_validator: Validator | None = None
        if isinstance(input_schema, dict):
            # A JSON-Schema dict: checked here, sent as given, arguments validated.
            self._input_validator = _validator_or_error(name, "input_schema", input_schema)
            parameters = copy_json(input_schema)
            if not _is_object_schema(parameters):
                raise ConfigurationError(
                    f"Tool {name!r} input_schema must describe a JSON object "
                    f'("type": "object"), got {input_schema!r}'
                )
        else:
            parameters = _schema_or_error(name, "input_schema", input_schema)
            if parameters.get("type") != "object":
                raise ConfigurationError(
                    f"Tool {name!r} input_schema {input_schema!r} must describe a JSON object, "
                    f"got the schema {parameters!r}"
                )
        self._parameters = parameters
        if isinstance(output_schema, dict):
            self._output_validator = _validator_or_error(name, "output_schema", output_schema)
        elif output_schema is not None:
            _schema_or_error(name, "output_schema", output_schema)
        if isinstance(event_schema, dict):
            self._event_validator = _validator_or_error(name, "event_schema", event_schema)
        elif event_schema is not None:
            _schema_or_error(name, "event_schema", event_schema)

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str | None:
        return self._description

    @property
    def input_schema(self) -> Any:
        return self._input_schema

    @property
    def output_schema(self) -> Any:
        return self._output_schema

    @property
    def event_schema(self) -> Any:
        return self._event_schema

    @property
    def execute(self) -> Callable[..., Any] | None:
        return self._execute

    @property
    def next_turn_params(self) -> Mapping[str, Callable[..., Any]] | None:
        return self._next_turn_params

    @property
    def kind(self) -> ToolKind:
        return self._kind

    @property
    def run_sync_in_thread(self) -> bool:
        return self._run_sync_in_thread

    @property
    def timeout(self) -> float | None:
        return self._timeout

    @property
    def max_concurrency(self) -> int | None:
        return self._max_concurrency

    @property
    def require_approval(self) -> bool | Callable[..., Any]:
        return self._require_approval  # type: ignore[no-any-return]

    @property
    def context_schema(self) -> Any:
        return self._context_schema

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON Schema the model gets for the arguments (a fresh copy)."""
        result: dict[str, Any] = copy_json(self._parameters)
        return result

    def __repr__(self) -> str:
        return f"<Tool {self._name!r} ({self._kind})>"

    def to_wire(self) -> dict[str, Any]:
        """The function tool as sent in a request's ``tools`` (a fresh dict).

        ``{"type": "function", "name", "description": str | None, "strict": None,
        "parameters": <JSON Schema>}``, as the SDK sends it.
        """
        return {
            "type": "function",
            "name": self._name,
            "description": self._description or None,
            "strict": None,
            "parameters": self.parameters,
        }

    def invoke(self, arguments: Any, context: ToolContext) -> Any:
        """Call ``execute`` with parsed arguments and return what it returns.

        A value, an awaitable or an async iterator, depending on the function;
        the ToolCall actor deals with each. Not for manual tools.

        Raises:
            ConfigurationError: the tool is manual.
        """
        if self._invoke is None:
            raise ConfigurationError(f"Tool {self._name!r} is a manual tool and cannot be invoked")
        return self._invoke(arguments, context)

    def parse_arguments(self, raw: Any, *, call_id: str = "") -> Any:
        """Validate a call's parsed JSON arguments and fill in defaults.

        Args:
            raw: the parsed JSON arguments (``{}`` for empty arguments).
            call_id: the call's id, recorded on the error.

        Returns:
            An instance of ``input_schema`` (or the converted value); for a
            JSON-Schema ``input_schema``, ``raw`` itself once it is valid (no
            defaults are filled in).

        Raises:
            ToolError: the arguments do not match the schema; the message is
                the validator's with the path, e.g. ``Invalid arguments for tool "t":
                Expected `int`, got `str` - at `$.n```.
        """
        if self._input_validator is not None:
            try:
                return self._input_validator.validate(raw)
            except JSONSchemaError as exc:
                raise ToolError(
                    f'Invalid arguments for tool "{self._name}": {exc}',
                    tool_name=self._name,
                    call_id=call_id,
                ) from exc
        try:
            return msgspec.convert(raw, self._input_schema)
        except msgspec.ValidationError as exc:
            raise ToolError(
                f'Invalid arguments for tool "{self._name}": {exc}',
                tool_name=self._name,
                call_id=call_id,
            ) from exc

    def validate_output(self, value: Any) -> Any:
        """Check a result against ``output_schema`` and return the converted value.

        Without an output schema the value is returned as it is.

        Raises:
            ToolError: the value does not match.
        """
        if self._output_validator is not None:
            return self._check_json(self._output_validator, value, "output")
        return self._check(self._output_schema, value, "output")

    def validate_event(self, value: Any) -> Any:
        """Check a generator event against ``event_schema`` and return the converted value.

        Without an event schema the value is returned as it is.

        Raises:
            ToolError: the value does not match.
        """
        if self._event_validator is not None:
            return self._check_json(self._event_validator, value, "event")
        return self._check(self._event_schema, value, "event")

    def _check(self, schema: Any, value: Any, what: str) -> Any:
        if schema is None:
            return value
        try:
            return msgspec.convert(value, schema, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise ToolError(
                f'Invalid {what} from tool "{self._name}": {exc}', tool_name=self._name, call_id=""
            ) from exc

    def _check_json(self, validator: Validator, value: Any, what: str) -> Any:
        try:
            return validator.validate(value)
        except JSONSchemaError as exc:
            raise ToolError(
                f'Invalid {what} from tool "{self._name}": {exc}', tool_name=self._name, call_id=""
            ) from exc

    def matches_output(self, value: Any) -> bool:
        """Whether ``value`` passes :meth:`validate_output` (never raises)."""
        try:
            self.validate_output(value)
        except ToolError:
            return False
        return True

    def matches_event(self, value: Any) -> bool:
        """Whether ``value`` passes :meth:`validate_event` (never raises)."""
        try:
            self.validate_event(value)
        except ToolError:
            return False
        return True


# --- building tools ------------------------------------------------------------


def tool(
    name: str,
    *,
    description: str | None = None,
    input_schema: Any,
    output_schema: Any = None,
    event_schema: Any = None,
    execute: Callable[..., Any] | Literal[False],
    next_turn_params: Mapping[str, Callable[..., Any]] | None = None,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    run_sync_in_thread: bool = False,
    require_approval: bool | Callable[..., Any] = False,
    context_schema: Any = None,
) -> Tool:
    """Create a tool, as the SDK's ``tool({...})`` does.

    ``execute=False`` makes a manual tool (advertised, run by the caller);
    an ``event_schema`` makes a generator tool (``execute`` must be an async
    generator function, ``output_schema`` is required); anything else is a
    regular tool whose ``execute`` may be sync or async. ``execute`` gets
    ``(input, context)`` — a function declaring fewer positional parameters
    gets fewer arguments.

    Args:
        name: the function name, 1-64 of ``[A-Za-z0-9_-]``; ``"shared"`` is reserved.
        description: what the model is told the tool does.
        input_schema: msgspec type of the arguments, or a JSON-Schema dict
            (checked here, sent to the model as given, arguments validated
            against it and passed to ``execute`` as a dict); must describe a
            JSON object.
        output_schema: msgspec type the result is checked and converted
            against, or a JSON-Schema dict it is validated against.
        event_schema: msgspec type (or JSON-Schema dict) of a generator tool's
            preliminary events.
        execute: the function, or ``False`` for a manual tool.
        next_turn_params: ``{field: fn(arguments, context)}`` applied after the
            round; fields from :data:`runtime._agent.callbacks.NEXT_TURN_PARAM_KEYS`.
        timeout: seconds one call may take; an overrun is an error output.
        max_concurrency: how many calls of this tool may run at once.
        run_sync_in_thread: run a sync ``execute`` in a worker thread instead
            of blocking the event loop.
        require_approval: ``True``, or ``fn(call, context) -> bool`` (sync or
            async), to make calls wait for a human's decision; needs
            ``call_model(state=...)``.
        context_schema: msgspec type (a Struct) of the tool's own context,
            read as ``context.local`` and written with ``context.set_context``.

    Returns:
        The :class:`Tool`.

    Raises:
        ConfigurationError: any argument is invalid; the message names it.
    """
    checked_name = check_name(name)
    if description is not None and not isinstance(description, str):
        raise ConfigurationError(
            f"Tool {checked_name!r} description {description!r} must be a string or None"
        )
    kind = tool_kind(checked_name, execute, output_schema, event_schema, run_sync_in_thread)
    functions = check_options(checked_name, timeout, max_concurrency, next_turn_params)
    fn = None if execute is False else execute
    return Tool(
        name=checked_name,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        event_schema=event_schema,
        execute=fn,
        invoke=None if fn is None else positional_invoker(fn),
        next_turn_params=functions,
        kind=kind,
        run_sync_in_thread=run_sync_in_thread,
        timeout=timeout,
        max_concurrency=max_concurrency,
        require_approval=require_approval,
        context_schema=context_schema,
    )


# --- @function_tool ------------------------------------------------------------


def _build_function_tool(
    fn: Callable[..., Any],
    localns: Mapping[str, Any] | None,
    *,
    name: str | None,
    description: str | None,
    output_schema: Any,
    event_schema: Any,
    next_turn_params: Mapping[str, Callable[..., Any]] | None,
    timeout: float | None,
    max_concurrency: int | None,
    run_sync_in_thread: bool,
    require_approval: bool | Callable[..., Any] = False,
    context_schema: Any = None,
) -> Tool:
    if not callable(fn):
        raise ConfigurationError(f"@function_tool needs a function, got {fn!r}")
    tool_name = check_name(name if name is not None else getattr(fn, "__name__", None))
    hints, unresolved = resolve_annotations(fn, localns)
    summary, arg_docs = parse_docstring(inspect.getdoc(fn))
    signature = inspect.signature(fn)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    context_parameter: str | None = None
    for parameter in signature.parameters.values():
        if parameter.name in unresolved:
            raise ConfigurationError(
                f"Tool {tool_name!r}: the annotation of parameter {parameter.name!r} of {fn!r} "
                f"cannot be resolved: {unresolved[parameter.name]}"
            )
        annotation = hints.get(parameter.name, Any)
        if annotation is ToolContext:
            context_parameter = parameter.name
            continue
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise ConfigurationError(
                f"Tool {tool_name!r}: parameter {parameter.name!r} of {fn!r} is variadic; "
                "a tool's parameters must be named"
            )
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise ConfigurationError(
                f"Tool {tool_name!r}: parameter {parameter.name!r} of {fn!r} is positional-only; "
                "tool arguments are passed by name"
            )
        doc = arg_docs.get(parameter.name)
        if doc and not has_description(annotation):
            annotation = Annotated[annotation, msgspec.Meta(description=doc)]
        if is_mutable_default(parameter.default):
            # A default_factory does not show in the schema; state the default.
            with contextlib.suppress(TypeError, ValueError):
                shown = msgspec.to_builtins(parameter.default)
                annotation = Annotated[
                    annotation, msgspec.Meta(extra_json_schema={"default": shown})
                ]
        if parameter.default is inspect.Parameter.empty:
            fields.append((parameter.name, annotation))
        else:
            fields.append((parameter.name, annotation, field_default(parameter.default)))
    # kw_only: `def f(a=1, *, b)` is fine in Python, and the function is
    # called with keyword arguments anyway.
    arguments_type = msgspec.defstruct(
        tool_name, fields, kw_only=True, module=getattr(fn, "__module__", None)
    )

    is_generator = is_async_gen_function(fn)
    if output_schema is None and not is_generator:
        if "return" in unresolved:
            raise ConfigurationError(
                f"Tool {tool_name!r}: the return annotation of {fn!r} cannot be resolved: "
                f"{unresolved['return']}; pass output_schema= explicitly"
            )
        returned = hints.get("return", Any)
        if returned is not Any and returned is not type(None) and returned is not None:
            output_schema = returned
    if is_generator and event_schema is None:
        raise ConfigurationError(
            f"Tool {tool_name!r}: {fn!r} is an async generator function, so @function_tool "
            "needs event_schema= and output_schema="
        )
    kind = tool_kind(tool_name, fn, output_schema, event_schema, run_sync_in_thread)
    functions = check_options(tool_name, timeout, max_concurrency, next_turn_params)

    def invoke(arguments: Any, context: ToolContext) -> Any:
        kwargs = msgspec.structs.asdict(arguments)
        if context_parameter is not None:
            kwargs[context_parameter] = context
        return fn(**kwargs)

    return Tool(
        name=tool_name,
        description=description if description is not None else summary,
        input_schema=arguments_type,
        output_schema=output_schema,
        event_schema=event_schema,
        execute=fn,
        invoke=invoke,
        next_turn_params=functions,
        kind=kind,
        run_sync_in_thread=run_sync_in_thread,
        timeout=timeout,
        max_concurrency=max_concurrency,
        require_approval=require_approval,
        context_schema=context_schema,
    )


@typing.overload
def function_tool(fn: Callable[..., Any], /) -> Tool: ...


@typing.overload
def function_tool(
    *,
    name: str | None = None,
    description: str | None = None,
    output_schema: Any = None,
    event_schema: Any = None,
    next_turn_params: Mapping[str, Callable[..., Any]] | None = None,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    run_sync_in_thread: bool = False,
    require_approval: bool | Callable[..., Any] = False,
    context_schema: Any = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def function_tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    output_schema: Any = None,
    event_schema: Any = None,
    next_turn_params: Mapping[str, Callable[..., Any]] | None = None,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    run_sync_in_thread: bool = False,
    require_approval: bool | Callable[..., Any] = False,
    context_schema: Any = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a tool from a typed function: ``@function_tool`` or ``@function_tool(...)``.

    The input schema is a Struct built from the parameters (annotations are the
    field types, defaults are kept; an unannotated parameter is ``Any``). A
    Google-style docstring supplies the tool description (its summary
    paragraph) and the parameter descriptions (its ``Args:`` section); an
    explicit ``Annotated[..., msgspec.Meta(description=...)]`` wins. The return
    annotation, unless it is missing, ``Any`` or ``None``, is the output schema.

    The function is called with keyword arguments. To get the
    :class:`ToolContext`, declare a parameter annotated ``ToolContext`` (any
    name); it is injected and left out of the schema. An async generator
    function makes a generator tool and needs ``event_schema=`` and
    ``output_schema=``.

    Annotations are resolved in the function's module and, for a function
    defined inside another function, in the enclosing function's locals at the
    point of decoration.

    Raises:
        ConfigurationError: as :func:`tool`, or the signature cannot be a
            schema (variadic or positional-only parameters, unresolvable or
            unsupported annotations).

    Example::

        @function_tool(timeout=10)
        async def get_weather(location: str, unit: Literal["c", "f"] = "c") -> Weather:
            \"\"\"Get the current weather.

            Args:
                location: City and country, e.g. "Paris, FR".
                unit: Temperature unit.
            \"\"\"
    """
    frame = sys._getframe(1)
    localns = frame.f_locals if frame.f_code.co_name != "<module>" else None
    del frame

    def decorate(function: Callable[..., Any]) -> Tool:
        return _build_function_tool(
            function,
            localns,
            name=name,
            description=description,
            output_schema=output_schema,
            event_schema=event_schema,
            next_turn_params=next_turn_params,
            timeout=timeout,
            max_concurrency=max_concurrency,
            run_sync_in_thread=run_sync_in_thread,
            require_approval=require_approval,
            context_schema=context_schema,
        )

    if fn is not None:
        return decorate(fn)
    return decorate
