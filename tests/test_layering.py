"""The import rules of DESIGN.md §1 / STYLE.md §3.2, read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SANS_IO = {
    "runtime/_sse.py",
    "runtime/_wire.py",
    "runtime/_events.py",
    "runtime/_feed_protocol.py",
    "runtime/_assembly.py",
    "runtime/_tools.py",
    "runtime/_stop.py",
    "runtime/_params.py",
    "runtime/_convert.py",
    "runtime/_oauth.py",
    "runtime/_inputs.py",
    "runtime/_errors.py",
    "runtime/_groups.py",
    "runtime/_rest_types.py",
    "runtime/_rest_checks.py",
}
STDLIB = frozenset(__import__("sys").stdlib_module_names)


def _modules() -> list[Path]:
    return sorted(p for pkg in ("runtime", "actors") for p in (REPO / pkg).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_every_listed_sans_io_module_exists() -> None:
    missing = [m for m in SANS_IO if not (REPO / m).exists()]
    assert missing == []


@pytest.mark.parametrize("module", sorted(SANS_IO))
def test_sans_io_core_imports_only_stdlib_msgspec_and_core(module: str) -> None:
    core_names = {m.removesuffix(".py").replace("/", ".") for m in SANS_IO}
    for name in _imports(REPO / module):
        top = name.split(".")[0]
        assert top in STDLIB or top == "msgspec" or name in core_names, (
            f"{module} imports {name!r}; the sans-io core may import only the stdlib, "
            "msgspec and other sans-io modules"
        )


def test_only_the_transport_imports_httpx() -> None:
    """The transport layer: ``runtime/_transport.py`` and its HTTP/1.1 engine."""
    offenders = [
        _rel(p)
        for p in _modules()
        if any(n.split(".")[0] == "httpx" for n in _imports(p))
        and not (_rel(p).startswith("runtime/_transport") and p.parent.name == "runtime")
    ]
    assert offenders == []


def test_only_the_feed_imports_trio_websocket() -> None:
    offenders = [
        _rel(p)
        for p in _modules()
        if any(n.split(".")[0] == "trio_websocket" for n in _imports(p))
        and _rel(p) != "actors/_feed.py"
    ]
    assert offenders == []


def test_actors_import_private_runtime_modules_only() -> None:
    for path in (REPO / "actors").rglob("*.py"):
        for name in _imports(path):
            assert name != "runtime", f"{_rel(path)} imports the runtime facade"
            assert name != "runtime._client", f"{_rel(path)} imports the composition root"


def test_only_the_composition_root_imports_actors() -> None:
    # Composition roots: the client, the facade, and the CLI's ``serve`` command.
    allowed = {"runtime/_client.py", "runtime/__init__.py", "runtime/_cli_serve.py"}
    offenders = [
        _rel(p)
        for p in (REPO / "runtime").rglob("*.py")
        if any(n.split(".")[0] == "actors" for n in _imports(p)) and _rel(p) not in allowed
    ]
    assert offenders == []


def test_project_code_never_imports_from_a_facade() -> None:
    for path in _modules():
        if path.name == "__init__.py":
            continue
        for name in _imports(path):
            assert name not in {"runtime", "actors"}, (
                f"{_rel(path)} imports the facade {name!r}; import the defining private module"
            )
