"""Schemas from msgspec types, signatures and docstrings (the Zod part of the SDK).

Sans-io: stdlib and msgspec only.

* :func:`json_schema_for` turns a msgspec type into JSON Schema with
  ``msgspec.json.schema``, then inlines every ``$defs`` entry so no ``$ref`` is
  left (not every provider resolves references). A truly recursive type cannot
  be inlined: its definition stays under ``$defs`` at the root and is
  referenced from inside itself. Keys starting with ``~`` are dropped at every
  depth (typescript-sdk#131, Z-01). Descriptions from ``Meta(description=)``
  and Struct docstrings are kept.
* For ``@function_tool`` (:mod:`runtime._agent.tools`): a Google-style
  docstring's summary and ``Args:`` descriptions (:func:`parse_docstring`),
  annotations resolved one at a time (:func:`resolve_annotations`), and
  defaults msgspec accepts as Struct field defaults (:func:`field_default`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import operator
import re
import types
import typing
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "copy_json",
    "field_default",
    "has_description",
    "is_mutable_default",
    "json_schema_for",
    "parse_docstring",
    "resolve_annotations",
    "sanitize_json_schema",
]

_DEFS_PREFIX: Final = "#/$defs/"


# --- JSON Schema -------------------------------------------------------------


def sanitize_json_schema(value: Any) -> Any:
    """A copy of a JSON value without any key starting with ``~``, at every depth (Z-01).

    Lists are walked too; other values (strings, numbers, ``None``) are returned
    as they are.
    """
    if isinstance(value, dict):
        return {k: sanitize_json_schema(v) for k, v in value.items() if not k.startswith("~")}
    if isinstance(value, list):
        return [sanitize_json_schema(v) for v in value]
    return value


def _object_as_any(tp: Any) -> Any:
    """``tp`` with every ``object`` replaced by ``Any``: ``dict[str, object]`` is any JSON map."""
    if tp is object:
        return Any
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if not args or origin is None or origin is typing.Annotated or origin is typing.Literal:
        return tp
    new_args = tuple(_object_as_any(a) for a in args)
    if new_args == args:
        return tp
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, new_args)
    return origin[new_args]


def json_schema_for(schema_type: Any) -> dict[str, Any]:
    """JSON Schema of a msgspec type, with ``$defs`` inlined and ``~`` keys dropped.

    Noise is dropped too: the ``title`` msgspec gives every Struct (its class
    name) and an empty ``required: []``.

    Every ``{"$ref": "#/$defs/X"}`` is replaced by the definition of ``X``
    (sibling keys of the reference win over the definition's). A reference met
    while ``X`` itself is being expanded (a recursive type) stays a reference,
    and the definitions such references need are kept under ``$defs`` at the root.

    Raises:
        TypeError: msgspec cannot describe ``schema_type``.
    """
    # A bare ``object`` stays an error; ``object`` inside a container means any JSON value.
    raw = msgspec.json.schema(schema_type if schema_type is object else _object_as_any(schema_type))
    definitions: dict[str, Any] = raw.pop("$defs", {})
    recursive: list[str] = []

    def expand(node: Any, stack: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [expand(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
            name = ref[len(_DEFS_PREFIX) :]
            if name in stack:
                if name not in recursive:
                    recursive.append(name)
            else:
                inlined = expand(definitions[name], stack | {name})
                if inlined.get("title") == name:
                    del inlined["title"]  # msgspec's class name: noise for the model
                for key, value in node.items():
                    if key != "$ref" and not key.startswith("~"):
                        inlined[key] = expand(value, stack)
                return inlined
        return {
            k: expand(v, stack)
            for k, v in node.items()
            if not k.startswith("~") and not (k == "required" and v == [])
        }

    root: dict[str, Any] = expand(raw, frozenset())
    kept: dict[str, Any] = {}
    while len(kept) < len(recursive):
        for name in recursive[len(kept) :]:
            kept[name] = expand(definitions[name], frozenset({name}))
            if kept[name].get("title") == name:
                del kept[name]["title"]
    if kept:
        root["$defs"] = kept
    return root


def copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


# --- signatures and docstrings (for @function_tool) ----------------------------

_SECTION: Final = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
_ARG_LINE: Final = re.compile(r"^\*{0,2}(\w+)\s*(?:\(.*\))?\s*:\s*(.*)$")
_ARG_SECTIONS: Final = frozenset({"Args", "Arguments", "Parameters", "Params"})


def parse_docstring(doc: str | None) -> tuple[str | None, dict[str, str]]:
    """The summary paragraph and the ``Args:`` descriptions of a Google-style docstring."""
    if not doc:
        return None, {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line):
            break
        summary.append(line.strip())
    described: dict[str, str] = {}
    in_args = False
    entry_indent: int | None = None
    current: str | None = None
    for line in lines:
        section = _SECTION.match(line)
        if section:
            in_args = section.group(1) in _ARG_SECTIONS
            entry_indent = None
            current = None
            continue
        if not in_args or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:  # text after the section at column 0 ends it
            in_args = False
            continue
        if entry_indent is None:
            entry_indent = indent
        if indent <= entry_indent:
            match = _ARG_LINE.match(line.strip())
            if match:
                current = match.group(1)
                described[current] = match.group(2).strip()
                continue
        if current is not None:
            described[current] = f"{described[current]} {line.strip()}".strip()
    return (" ".join(summary) or None), described


def has_description(annotation: Any) -> bool:
    if typing.get_origin(annotation) is not Annotated:
        return False
    return any(
        isinstance(meta, msgspec.Meta) and meta.description is not None
        for meta in typing.get_args(annotation)[1:]
    )


def is_mutable_default(default: Any) -> bool:
    return isinstance(default, list | dict | set | bytearray) and bool(default)


def field_default(default: Any) -> Any:
    # msgspec refuses non-empty mutable defaults: give each instance its own copy.
    if is_mutable_default(default):
        return msgspec.field(default_factory=functools.partial(copy.deepcopy, default))
    return default


def resolve_annotations(
    fn: Callable[..., Any], localns: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each annotation of ``fn`` resolved on its own, and the ones that failed.

    Resolving one at a time (rather than ``typing.get_type_hints`` all at once)
    lets an annotation we do not need, such as a generator's return type
    imported under ``TYPE_CHECKING``, stay unresolved without harm.
    """
    raw = inspect.get_annotations(fn)
    globalns = dict(getattr(fn, "__globals__", {}))
    local = dict(localns or {})
    hints: dict[str, Any] = {}
    unresolved: dict[str, str] = {}
    for name, annotation in raw.items():
        if not isinstance(annotation, str):
            hints[name] = annotation
            continue
        try:
            hints[name] = eval(annotation, globalns, local)  # what get_type_hints does
        except Exception as exc:
            unresolved[name] = f"{type(exc).__name__}: {exc}"
    return hints, unresolved
