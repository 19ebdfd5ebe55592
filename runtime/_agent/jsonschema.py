"""A small JSON Schema validator: the draft 2020-12 subset tool schemas use.

Sans-io, stdlib only. MCP servers and existing agent code describe tool
arguments (and structured outputs) as plain JSON-Schema dicts; this module
checks such a schema once, when the tool is made, and then validates
JSON values against it.

Rules:

1. **Checked once, up front** (:func:`compile_schema`). A keyword this module
   understands must have a well-formed value, every ``$ref`` must resolve, and
   every ``pattern`` must compile; otherwise :class:`ConfigurationError` names
   the keyword and where it sits (``at $.properties.n.minimum``).
2. **Keywords validated:** ``type`` (a name or a list), ``enum``, ``const``,
   ``properties``, ``required``, ``additionalProperties``,
   ``patternProperties``, ``propertyNames``, ``minProperties``,
   ``maxProperties``, ``dependentRequired``, ``items``, ``prefixItems``,
   ``contains`` / ``minContains`` / ``maxContains``, ``minItems``,
   ``maxItems``, ``uniqueItems``, ``minimum``, ``maximum``,
   ``exclusiveMinimum``, ``exclusiveMaximum`` (numbers; draft-04 booleans are
   refused), ``multipleOf``, ``minLength``, ``maxLength``, ``pattern``
   (Python ``re.search``), ``allOf``, ``anyOf``, ``oneOf``, ``not``,
   ``if``/``then``/``else``, and ``$ref`` to a local JSON pointer (``#``,
   ``#/$defs/X``, ``#/definitions/X`` of draft-07 schemas). Boolean schemas
   (``true``/``false``) work anywhere a schema does.
3. **Ignored:** ``format`` (an annotation, as 2020-12 says by default),
   annotations (``title``, ``description``, ``default``, ``examples``, ...)
   and any keyword not listed above (vendor extensions, ``unevaluated*``):
   an ignored keyword never rejects a value. The server that owns the tool
   still checks what it receives.
4. **JSON semantics:** ``true`` is not a number, ``1.0`` is an integer,
   ``1 == 1.0`` in ``enum``/``const``/``uniqueItems`` but ``true != 1``.
5. **One error, with its path** (:meth:`Validator.validate`): the first
   failure found, phrased like msgspec's (``Expected `integer`, got `string`
   - at `$.n```), so a model reading a tool error can fix its call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from runtime._base.errors import ConfigurationError

__all__ = ["JSONSchemaError", "Validator", "compile_schema", "json_equal"]

_TYPES: Final = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})
_SCHEMA_MAPS: Final = ("properties", "patternProperties", "$defs", "definitions")
_SCHEMA_LISTS: Final = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE: Final = (
    "additionalProperties",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
)
_NUMBERS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_COUNTS: Final = (
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minContains",
    "maxContains",
)


class JSONSchemaError(ValueError):
    """A value does not match a JSON Schema.

    Attributes:
        message: what is wrong, without the location.
        path: where, as ``$``, ``$.a``, ``$.items[2]``.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(f"{message} - at `{path}`")
        self.message = message
        self.path = path


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON values: ``1 == 1.0``, ``True != 1``, deep for containers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _has_type(value: Any, name: str) -> bool:
    exact = _EXACT.get(type(value))
    if exact is not None and name in exact:
        return True
    if name == "object":
        return isinstance(value, Mapping)
    if name == "array":
        return isinstance(value, list | tuple)
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return _is_number(value)
    if name == "boolean":
        return isinstance(value, bool)
    return value is None  # "null"


# Fast answers for the built-in JSON types (subclasses and Mappings take the slow path).
_EXACT: Final[dict[type, frozenset[str]]] = {
    dict: frozenset({"object"}),
    list: frozenset({"array"}),
    str: frozenset({"string"}),
    int: frozenset({"integer", "number"}),
    bool: frozenset({"boolean"}),
    type(None): frozenset({"null"}),
}


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{key!r}]"


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class _Checker:
    """Walks a schema once at compile time: well-formed values, refs, patterns."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.patterns: dict[str, re.Pattern[str]] = {}
        self.plans: dict[int, tuple[_Check, ...]] = {}
        self.refs: dict[str, Any] = {}

    def fail(self, where: str, keyword: str, problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"invalid JSON Schema: keyword {keyword!r} {problem} (at {_child(where, keyword)})"
        )

    def resolve(self, ref: str, where: str = "$") -> Any:
        found = self.refs.get(ref)
        if found is not None:
            return found
        found = self._resolve(ref, where)
        self.refs[ref] = found
        return found

    def _resolve(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise self.fail(
                where, "$ref", f"{ref!r} is not a local reference (only '#...' is supported)"
            )
        node: Any = self.root
        pointer = ref[1:]
        if pointer and not pointer.startswith("/"):
            raise self.fail(where, "$ref", f"{ref!r} is not a JSON pointer ('#/$defs/Name')")
        for raw in pointer.split("/")[1:]:
            key = _unescape(raw)
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise self.fail(where, "$ref", f"{ref!r} does not resolve in this schema")
        if not isinstance(node, Mapping | bool):
            raise self.fail(where, "$ref", f"{ref!r} points at {node!r}, which is not a schema")
        return node

    def check(self, schema: Any, where: str) -> None:
        if isinstance(schema, bool):
            return
        if not isinstance(schema, Mapping):
            raise ConfigurationError(
                f"invalid JSON Schema: {schema!r} at {where} is not a schema (a dict or a bool)"
            )
        for key in schema:
            if not isinstance(key, str):
                raise ConfigurationError(f"invalid JSON Schema: key {key!r} at {where} is not text")
        self.plans[id(schema)] = _plan(schema)
        kind = schema.get("type")
        if kind is not None:
            names = kind if isinstance(kind, list) else [kind]
            if not names or any(not isinstance(n, str) or n not in _TYPES for n in names):
                raise self.fail(
                    where, "type", f"is {kind!r}; expected one or a list of {sorted(_TYPES)}"
                )
        if "enum" in schema and not isinstance(schema["enum"], list):
            raise self.fail(where, "enum", f"is {schema['enum']!r}; expected a list")
        required = schema.get("required")
        if required is not None and (
            not isinstance(required, list) or not all(isinstance(r, str) for r in required)
        ):
            raise self.fail(where, "required", f"is {required!r}; expected a list of names")
        dependent = schema.get("dependentRequired")
        if dependent is not None and (
            not isinstance(dependent, Mapping)
            or not all(
                isinstance(v, list) and all(isinstance(n, str) for n in v)
                for v in dependent.values()
            )
        ):
            raise self.fail(
                where, "dependentRequired", f"is {dependent!r}; expected names to lists of names"
            )
        for keyword in _NUMBERS:
            if keyword in schema and not _is_number(schema[keyword]):
                raise self.fail(where, keyword, f"is {schema[keyword]!r}; expected a number")
        if "multipleOf" in schema and not (
            _is_number(schema["multipleOf"]) and schema["multipleOf"] > 0
        ):
            raise self.fail(
                where, "multipleOf", f"is {schema['multipleOf']!r}; expected a number > 0"
            )
        for keyword in _COUNTS:
            if keyword in schema and not _is_count(schema[keyword]):
                raise self.fail(where, keyword, f"is {schema[keyword]!r}; expected an integer >= 0")
        if "uniqueItems" in schema and not isinstance(schema["uniqueItems"], bool):
            raise self.fail(where, "uniqueItems", f"is {schema['uniqueItems']!r}; expected a bool")
        pattern = schema.get("pattern")
        if pattern is not None:
            self.compile_pattern(where, "pattern", pattern)
        for keyword in _SCHEMA_ONE:
            if keyword in schema:
                self.check(schema[keyword], _child(where, keyword))
        for keyword in _SCHEMA_MAPS:
            if keyword not in schema:
                continue
            value = schema[keyword]
            if not isinstance(value, Mapping):
                raise self.fail(where, keyword, f"is {value!r}; expected a map of schemas")
            for name, sub in value.items():
                if keyword == "patternProperties":
                    self.compile_pattern(where, keyword, name)
                self.check(sub, _child(_child(where, keyword), str(name)))
        for keyword in _SCHEMA_LISTS:
            if keyword not in schema:
                continue
            value = schema[keyword]
            if not isinstance(value, list) or (keyword != "prefixItems" and not value):
                raise self.fail(where, keyword, f"is {value!r}; expected a non-empty list")
            for i, sub in enumerate(value):
                self.check(sub, _child(_child(where, keyword), i))
        ref = schema.get("$ref")
        if ref is not None:
            if not isinstance(ref, str):
                raise self.fail(where, "$ref", f"is {ref!r}; expected a string")
            self.resolve(ref, where)

    def regex(self, pattern: str) -> re.Pattern[str]:
        found = self.patterns.get(pattern)
        if found is None:
            found = self.patterns[pattern] = re.compile(pattern)
        return found

    def compile_pattern(self, where: str, keyword: str, pattern: Any) -> None:
        if not isinstance(pattern, str):
            raise self.fail(where, keyword, f"has {pattern!r}; expected a regular expression")
        if pattern not in self.patterns:
            try:
                self.patterns[pattern] = re.compile(pattern)
            except re.error as exc:
                raise self.fail(
                    where, keyword, f"has {pattern!r}, which does not compile: {exc}"
                ) from None


class Validator:
    """A checked JSON Schema, ready to validate values; build with :func:`compile_schema`.

    Immutable after construction and safe to share. ``schema`` is the dict as
    given (not copied); do not mutate it afterwards.
    """

    __slots__ = ("_checker", "_schema")

    def __init__(self, schema: Any, checker: _Checker) -> None:
        self._schema = schema
        self._checker = checker

    @property
    def schema(self) -> Any:
        """The schema as given."""
        return self._schema

    def is_valid(self, value: Any) -> bool:
        """Whether ``value`` matches (never raises for a JSON value)."""
        return self._first_error(self._schema, value, "$") is None

    def validate(self, value: Any) -> Any:
        """Return ``value`` unchanged if it matches.

        Raises:
            JSONSchemaError: the first mismatch found, with its path.
        """
        error = self._first_error(self._schema, value, "$")
        if error is not None:
            raise error
        return value

    def _first_error(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        if schema is True:
            return None
        if schema is False:
            return JSONSchemaError("No value is allowed here (the schema is `false`)", path)
        plan = self._checker.plans.get(id(schema))
        if plan is None:
            plan = _plan(schema)
        for check in plan:
            error = check(self, schema, value, path)
            if error is not None:
                return error
        return None

    # --- keyword checks -------------------------------------------------------

    def _ref(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        return self._first_error(self._checker.resolve(schema["$ref"]), value, path)

    def _type(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        kind = schema["type"]
        if type(kind) is str:
            if _has_type(value, kind):
                return None
            names: Any = (kind,)
        else:
            names = kind
            for name in names:
                if _has_type(value, name):
                    return None
        wanted = " | ".join(f"`{n}`" for n in names)
        return JSONSchemaError(f"Expected {wanted}, got `{_type_name(value)}`", path)

    def _enum(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        options = schema["enum"]
        if any(json_equal(value, option) for option in options):
            return None
        return JSONSchemaError(f"Expected one of {options!r}, got {value!r}", path)

    def _const(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        if json_equal(value, schema["const"]):
            return None
        return JSONSchemaError(f"Expected {schema['const']!r}, got {value!r}", path)

    def _numeric(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        if not _is_number(value):
            return None
        low = schema.get("minimum")
        if low is not None and value < low:
            return JSONSchemaError(f"Expected a number >= {low!r}, got {value!r}", path)
        high = schema.get("maximum")
        if high is not None and value > high:
            return JSONSchemaError(f"Expected a number <= {high!r}, got {value!r}", path)
        xlow = schema.get("exclusiveMinimum")
        if xlow is not None and value <= xlow:
            return JSONSchemaError(f"Expected a number > {xlow!r}, got {value!r}", path)
        xhigh = schema.get("exclusiveMaximum")
        if xhigh is not None and value >= xhigh:
            return JSONSchemaError(f"Expected a number < {xhigh!r}, got {value!r}", path)
        step = schema.get("multipleOf")
        if step is not None and not _is_multiple(value, step):
            return JSONSchemaError(f"Expected a multiple of {step!r}, got {value!r}", path)
        return None

    def _string(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        if not isinstance(value, str):
            return None
        shortest = schema.get("minLength")
        if shortest is not None and len(value) < shortest:
            return JSONSchemaError(f"Expected `str` of length >= {shortest}", path)
        longest = schema.get("maxLength")
        if longest is not None and len(value) > longest:
            return JSONSchemaError(f"Expected `str` of length <= {longest}", path)
        pattern = schema.get("pattern")
        if pattern is not None and not self._checker.regex(pattern).search(value):
            return JSONSchemaError(f"Expected `str` matching regex {pattern!r}", path)
        return None

    def _array(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        if not isinstance(value, list | tuple):
            return None
        fewest = schema.get("minItems")
        if fewest is not None and len(value) < fewest:
            return JSONSchemaError(f"Expected `array` of length >= {fewest}", path)
        most = schema.get("maxItems")
        if most is not None and len(value) > most:
            return JSONSchemaError(f"Expected `array` of length <= {most}", path)
        prefix = schema.get("prefixItems") or ()
        for i, (sub, item) in enumerate(zip(prefix, value, strict=False)):
            error = self._first_error(sub, item, _child(path, i))
            if error is not None:
                return error
        if "items" in schema:
            items = schema["items"]
            for i in range(len(prefix), len(value)):
                error = self._first_error(items, value[i], _child(path, i))
                if error is not None:
                    return error
        if "contains" in schema:
            matching = sum(1 for item in value if self.is_valid_at(schema["contains"], item))
            least = schema.get("minContains", 1)
            if matching < least:
                return JSONSchemaError(
                    f"Expected at least {least} item(s) matching `contains`, got {matching}", path
                )
            most_matching = schema.get("maxContains")
            if most_matching is not None and matching > most_matching:
                return JSONSchemaError(
                    f"Expected at most {most_matching} item(s) matching `contains`, got {matching}",
                    path,
                )
        if schema.get("uniqueItems"):
            for i in range(1, len(value)):
                for j in range(i):
                    if json_equal(value[i], value[j]):
                        return JSONSchemaError(
                            f"Expected unique items; items {j} and {i} are equal", path
                        )
        return None

    def is_valid_at(self, schema: Any, value: Any) -> bool:
        return self._first_error(schema, value, "$") is None

    def _object(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        if type(value) is not dict and not isinstance(value, Mapping):
            return None
        for name in schema.get("required", ()):
            if name not in value:
                return JSONSchemaError(f"Object missing required field `{name}`", path)
        dependent = schema.get("dependentRequired")
        if dependent:
            for name, needs in dependent.items():
                if name in value:
                    for other in needs:
                        if other not in value:
                            return JSONSchemaError(
                                f"Object has `{name}`, so it needs field `{other}`", path
                            )
        fewest = schema.get("minProperties")
        if fewest is not None and len(value) < fewest:
            return JSONSchemaError(f"Expected `object` of length >= {fewest}", path)
        most = schema.get("maxProperties")
        if most is not None and len(value) > most:
            return JSONSchemaError(f"Expected `object` of length <= {most}", path)
        properties = schema.get("properties") or {}
        patterns = schema.get("patternProperties") or {}
        additional = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, item in value.items():
            where = _child(path, key) if isinstance(key, str) else f"{path}[{key!r}]"
            if names is not None:
                error = self._first_error(names, key, path)
                if error is not None:
                    return JSONSchemaError(f"Property name {key!r}: {error.message}", path)
            matched = False
            if key in properties:
                matched = True
                error = self._first_error(properties[key], item, where)
                if error is not None:
                    return error
            for pattern, sub in patterns.items():
                if isinstance(key, str) and self._checker.regex(pattern).search(key):
                    matched = True
                    error = self._first_error(sub, item, where)
                    if error is not None:
                        return error
            if not matched and additional is not True:
                if additional is False:
                    return JSONSchemaError(f"Object contains unknown field `{key}`", path)
                error = self._first_error(additional, item, where)
                if error is not None:
                    return error
        return None

    def _all_of(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        for sub in schema["allOf"]:
            error = self._first_error(sub, value, path)
            if error is not None:
                return error
        return None

    def _any_of(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        errors = []
        for sub in schema["anyOf"]:
            error = self._first_error(sub, value, path)
            if error is None:
                return None
            errors.append(error)
        return _no_branch("anyOf", errors, path)

    def _one_of(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        errors = []
        matched: list[int] = []
        for i, sub in enumerate(schema["oneOf"]):
            error = self._first_error(sub, value, path)
            if error is None:
                matched.append(i)
            else:
                errors.append(error)
        if len(matched) == 1:
            return None
        if not matched:
            return _no_branch("oneOf", errors, path)
        return JSONSchemaError(
            f"Expected exactly one `oneOf` branch to match, but branches {matched} all do", path
        )

    def _not(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        if self._first_error(schema["not"], value, path) is None:
            return JSONSchemaError("Value matches the `not` schema, so it is not allowed", path)
        return None

    def _if(self, schema: Any, value: Any, path: str) -> JSONSchemaError | None:
        branch = "then" if self._first_error(schema["if"], value, path) is None else "else"
        if branch in schema:
            return self._first_error(schema[branch], value, path)
        return None


def _no_branch(keyword: str, errors: list[JSONSchemaError], path: str) -> JSONSchemaError:
    # The deepest error is usually the one that explains the mismatch best.
    deepest = max(errors, key=lambda e: len(e.path))
    if deepest.path != path:
        return deepest
    reasons = "; ".join(e.message for e in errors)
    return JSONSchemaError(
        f"Expected a value matching one of the `{keyword}` branches: {reasons}", path
    )


def _is_multiple(value: float, step: float) -> bool:
    if isinstance(value, int) and isinstance(step, int):
        return value % step == 0
    if isinstance(value, float) and not math.isfinite(value):
        return False
    quotient = value / step
    if not math.isfinite(quotient):
        return False
    return bool(quotient == int(quotient)) or math.isclose(
        quotient, round(quotient), rel_tol=0, abs_tol=1e-9
    )


_Check = Callable[["Validator", Any, Any, str], "JSONSchemaError | None"]

_NUMERIC_KEYWORDS: Final = frozenset({*_NUMBERS, "multipleOf"})
_STRING_KEYWORDS: Final = frozenset({"minLength", "maxLength", "pattern"})
_ARRAY_KEYWORDS: Final = frozenset(
    {"items", "prefixItems", "contains", "minItems", "maxItems", "uniqueItems"}
)
_OBJECT_KEYWORDS: Final = frozenset(
    {
        "required",
        "properties",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "dependentRequired",
    }
)


def _plan(schema: Mapping[str, Any]) -> tuple[_Check, ...]:
    """The checks a schema node needs, in a fixed order (cheap ones first)."""
    keys = schema.keys()
    checks: list[_Check] = []
    for keyword, check in (
        ("$ref", Validator._ref),
        ("type", Validator._type),
        ("enum", Validator._enum),
        ("const", Validator._const),
    ):
        if keyword in keys:
            checks.append(check)
    for group, check in (
        (_NUMERIC_KEYWORDS, Validator._numeric),
        (_STRING_KEYWORDS, Validator._string),
        (_ARRAY_KEYWORDS, Validator._array),
        (_OBJECT_KEYWORDS, Validator._object),
    ):
        if not group.isdisjoint(keys):
            checks.append(check)
    for keyword, check in (
        ("allOf", Validator._all_of),
        ("anyOf", Validator._any_of),
        ("oneOf", Validator._one_of),
        ("not", Validator._not),
        ("if", Validator._if),
    ):
        if keyword in keys:
            checks.append(check)
    return tuple(checks)


def compile_schema(schema: Any) -> Validator:
    """Check a JSON Schema and return its :class:`Validator`.

    Raises:
        ConfigurationError: the schema is malformed; the message names the
            keyword and its location.
    """
    checker = _Checker(schema)
    checker.check(schema, "$")
    return Validator(schema, checker)
