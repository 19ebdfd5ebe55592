"""Tool context: typed, per-tool values a run keeps for its tools, plus a shared one.

Sans-io: stdlib and msgspec. The SDK's ``contextSchema`` / ``context`` /
``setContext`` (spec/callmodel.md §3.12), typed with msgspec.

Rules:

1. **One value per tool, one shared.** A tool built with ``context_schema=T``
   (a msgspec Struct, or any type msgspec converts a JSON object to) owns a
   value of type ``T``; the run's shared value sits under the reserved name
   ``"shared"``, typed by ``call_model(shared_context_schema=...)`` or, without
   one, a plain JSON object.
2. **Seeded once, in this order:** the type's defaults (when every field has
   one), then the saved conversation's context, then ``call_model(context=...)``
   (explicit wins: rotate a key without editing the saved state).
3. **Every write is validated.** ``set(name, changes)`` merges ``changes`` over
   the current value and converts the result to the type; a mismatch raises
   :class:`ConfigurationError` naming the tool and the field, and nothing
   changes. Reads return the current value (replace, never mutate it: use
   frozen Structs).
4. **Every write is observable and persisted.** Each accepted write calls the
   ``on_update`` callback with a :class:`ContextUpdate` (the run streams them
   from ``ModelResult.get_context_updates()``), and :meth:`ContextStore.snapshot`
   (the JSON form) goes into every saved ``ConversationState``. Context values
   never go to the event log, so the websocket feed never shows them (they
   may hold secrets).
5. Writes from parallel tools are applied in the order they happen (one trio
   thread: no write is lost); a tool sees its own and other tools' writes at
   once. A tool running in a worker thread (``run_sync_in_thread``) writes
   through ``dispatch``, which the run sets to hop back to the trio thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from runtime._base.errors import ConfigurationError, InvalidStateError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["SHARED_CONTEXT", "ContextStore", "ContextUpdate", "check_context_schema"]

SHARED_CONTEXT: Final = "shared"
"""The name the shared context goes by (no tool may use it)."""


class ContextUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One accepted write to a tool's (or the shared) context.

    Attributes:
        name: the tool's name, or ``"shared"``.
        value: the whole new value (an instance of the context type).
        turn: the turn whose tool round wrote it.
        call_id: the call that wrote it.
    """

    name: str
    value: Any
    turn: int
    call_id: str = ""


def check_context_schema(owner: str, schema: Any) -> Any:
    """Check a context type when a tool (or a run) is made.

    Raises:
        ConfigurationError: msgspec cannot describe ``schema`` as a JSON object.
    """
    if schema is None:
        return None
    try:
        info = msgspec.json.schema(schema)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{owner} context_schema {schema!r} is not a type msgspec can describe: {exc}"
        ) from exc
    definitions = info.get("$defs", {})
    ref = info.get("$ref", "")
    root = definitions.get(ref.rsplit("/", 1)[-1], info) if ref else info
    if root.get("type") != "object":
        raise ConfigurationError(f"{owner} context_schema {schema!r} must describe a JSON object")
    return schema


def _as_object(value: Any) -> dict[str, Any]:
    built = msgspec.to_builtins(value)
    if not isinstance(built, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return built


class ContextStore:
    """The live contexts of one run (rules above).

    Args:
        schemas: the context type by tool name (``"shared"`` included; ``None``
            means a plain JSON object).
        on_update: called with every accepted write.
    """

    __slots__ = ("_dispatch", "_on_update", "_schemas", "_values")

    def __init__(
        self,
        schemas: Mapping[str, Any],
        *,
        on_update: Callable[[ContextUpdate], object] | None = None,
        dispatch: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self._schemas = dict(schemas)
        self._values: dict[str, Any] = {}
        self._on_update = on_update
        self._dispatch = dispatch
        for name, schema in self._schemas.items():
            if schema is None:
                continue
            try:
                self._values[name] = msgspec.convert({}, schema)
            except msgspec.ValidationError:
                pass  # no default: unset until seeded or set

    def __repr__(self) -> str:  # never the values: they may hold secrets
        return f"<ContextStore names={sorted(self._schemas)!r}>"

    @property
    def names(self) -> list[str]:
        """The tools (and ``"shared"``) that have a context."""
        return list(self._schemas)

    def _convert(self, name: str, value: Any) -> Any:
        schema = self._schemas[name]
        if schema is None:
            return _as_object(value)
        if isinstance(schema, type) and isinstance(value, schema):
            return value
        return msgspec.convert(_as_object(value), schema, from_attributes=True)

    def seed_saved(self, saved: Mapping[str, Any]) -> None:
        """Load the contexts of a saved conversation (names without a context are kept aside).

        Raises:
            InvalidStateError: a saved value does not match its type.
        """
        for name, value in saved.items():
            if name not in self._schemas:
                self._schemas[name] = None  # kept as saved, for the next run that knows it
            try:
                self._values[name] = self._convert(name, value)
            except (msgspec.ValidationError, TypeError) as exc:
                raise InvalidStateError(
                    f"the saved context of {name!r} does not match its type: {exc}"
                ) from None

    def seed(self, given: Mapping[str, Any]) -> None:
        """Load ``call_model(context=...)`` values (they win over saved ones).

        Raises:
            ConfigurationError: a name has no context, or a value does not match.
        """
        for name, value in given.items():
            if name not in self._schemas:
                raise ConfigurationError(
                    f"context names {name!r}, which is neither a tool with a context_schema "
                    f"nor 'shared'; known: {sorted(self._schemas)!r}"
                )
            try:
                self._values[name] = self._convert(name, value)
            except (msgspec.ValidationError, TypeError) as exc:
                raise ConfigurationError(f"context for {name!r} is invalid: {exc}") from None

    def get(self, name: str) -> Any:
        """The current value for ``name``, or ``None`` if it has none yet."""
        return self._values.get(name)

    def set(self, name: str, changes: Any, *, turn: int, call_id: str = "") -> Any:
        """Merge ``changes`` (a mapping or a Struct) over the value of ``name``, validated.

        Returns:
            The new value.

        Raises:
            ConfigurationError: ``name`` has no context, or the merged value
                does not match its type (the value is left unchanged).
        """
        if self._dispatch is not None:
            return self._dispatch(lambda: self._set(name, changes, turn, call_id))
        return self._set(name, changes, turn, call_id)

    def _set(self, name: str, changes: Any, turn: int, call_id: str) -> Any:
        if name not in self._schemas:
            raise ConfigurationError(
                f"{name!r} has no context: give the tool a context_schema "
                "(or the run a shared_context_schema)"
            )
        try:
            patch = _as_object(changes)
            current = self._values.get(name)
            merged = {**(_as_object(current) if current is not None else {}), **patch}
            value = self._convert(name, merged)
        except (msgspec.ValidationError, TypeError) as exc:
            raise ConfigurationError(f"context for {name!r} is invalid: {exc}") from None
        self._values[name] = value
        if self._on_update is not None:
            self._on_update(ContextUpdate(name=name, value=value, turn=turn, call_id=call_id))
        return value

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every value as a JSON object, by name (what a saved state holds)."""
        return {name: _as_object(value) for name, value in self._values.items()}
