"""The error tree in ``docs/reference/errors.md`` is the one drawn in ``runtime/_base/errors.py``,
and the tree matches the classes."""

from __future__ import annotations

import re
from pathlib import Path

import runtime
import runtime._base.errors

REPO = Path(__file__).resolve().parent.parent


def _tree(text: str) -> list[str]:
    """The lines of the drawn tree, with the block's own indentation removed."""
    all_lines = text.splitlines()
    first = next(i for i, line in enumerate(all_lines) if "AgentError       " in line)
    column = all_lines[first].index("AgentError")
    lines = []
    for line in all_lines[first:]:
        if not line.strip() or line.startswith("```"):
            break
        lines.append(line[column:].rstrip())
    return lines


def test_docs_tree_is_identical_to_the_module_docstring() -> None:
    doc = (REPO / "docs" / "reference" / "errors.md").read_text(encoding="utf-8")
    assert runtime._base.errors.__doc__ is not None
    assert _tree(doc) == _tree(runtime._base.errors.__doc__)


def test_the_drawn_tree_matches_the_class_hierarchy() -> None:
    assert runtime._base.errors.__doc__ is not None
    parents: list[str] = []
    for line in _tree(runtime._base.errors.__doc__):
        match = re.match(r"^([│ ]*)(?:[├└]── )?(\w+)", line)
        assert match is not None
        prefix, name = match.groups()
        if name == "Lagged" or not hasattr(runtime, name):
            continue
        depth = len(prefix) // 4 + (1 if "──" in line else 0)
        parents[depth:] = [name]
        cls = getattr(runtime, name)
        if depth:
            assert issubclass(cls, getattr(runtime, parents[depth - 1])), name
