"""The layers of DESIGN.md §1, checked by folder from the source with ``ast``.

Every module of ``runtime`` and ``actors`` belongs to one layer, named by its folder
(``runtime/_protocol``, ``actors/_feed``, ...; ``actors`` alone is the agent actors beside
``actors/__init__.py``). A layer's rule says which third-party packages and which project
layers it may import; the rule of each folder is also written in its ``__init__`` docstring.
There is no per-file exemption: a module that needs another rule belongs in another folder.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STDLIB = frozenset(sys.stdlib_module_names)
MAX_LINES = 800


@dataclass(frozen=True)
class Rule:
    third_party: frozenset[str]
    layers: frozenset[str]
    deferred_only: frozenset[str] = frozenset()
    """Layers reachable only through a function-level (deferred) import: the seam."""


def _rule(third: str, layers: str, deferred: str = "") -> Rule:
    return Rule(frozenset(third.split()), frozenset(layers.split()), frozenset(deferred.split()))


BASE = "runtime._base"
PROTOCOL = f"{BASE} runtime._protocol"
AGENT = f"{PROTOCOL} runtime._agent"
RUN = f"{AGENT} runtime._run"
HTTP = f"{PROTOCOL} runtime._http"
TELEMETRY = "runtime._telemetry"

RULES: dict[str, Rule] = {
    "runtime/_base": _rule("msgspec", ""),
    "runtime/_protocol": _rule("msgspec", BASE),
    "runtime/_agent": _rule("msgspec", PROTOCOL),
    "runtime/_run": _rule("msgspec trio", AGENT),
    "runtime/_state": _rule("msgspec trio", AGENT),
    "runtime/_telemetry": _rule("opentelemetry", ""),
    "runtime/_http": _rule("msgspec trio httpx h11", f"{PROTOCOL} {TELEMETRY}"),
    "runtime/_rest": _rule("msgspec trio", HTTP),
    "runtime/_redis": _rule("msgspec trio coredis", f"{RUN} {TELEMETRY}"),
    "runtime/_mcp": _rule("msgspec", AGENT),
    "actors": _rule("msgspec trio", f"{RUN} runtime._http runtime._mcp {TELEMETRY} actors"),
    "actors/_feed": _rule("msgspec trio trio_websocket wsproto h11", f"{PROTOCOL} runtime._run"),
    "runtime/_client": _rule(
        "msgspec trio", f"{RUN} runtime._http runtime._rest {TELEMETRY}", deferred="actors"
    ),
    "runtime/_cli": _rule(
        "msgspec trio rich",
        f"{RUN} runtime._http runtime._rest runtime._redis runtime._client runtime._cli "
        f"{TELEMETRY} runtime.emulator actors actors._feed",
    ),
    "runtime/emulator": _rule("msgspec trio hypercorn", f"{PROTOCOL} runtime.emulator"),
    "runtime/testing": _rule(
        "msgspec trio trio_websocket", f"{RUN} runtime._http runtime.emulator"
    ),
}
SANS_IO = ("runtime/_base", "runtime/_protocol", "runtime/_agent")
FACADES = {"runtime/__init__.py", "runtime/__main__.py", "actors/__init__.py"}


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _modules() -> list[Path]:
    return sorted(p for pkg in ("runtime", "actors") for p in (REPO / pkg).rglob("*.py"))


def _layer_of(path: Path) -> str | None:
    rel = _rel(path)
    if rel in FACADES:
        return None
    parts = rel.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def _module_name(path: Path) -> str:
    rel = _rel(path).removesuffix(".py").removesuffix("/__init__")
    return rel.replace("/", ".")


@dataclass(frozen=True)
class Import:
    name: str
    line: int
    deferred: bool  # inside a function body
    type_only: bool  # under ``if TYPE_CHECKING:``


def _is_module(name: str) -> bool:
    path = REPO / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _imports(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, *, deferred: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(a.name, child.lineno, deferred, type_only) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                # ``from runtime._protocol import events`` imports the module ``events``.
                subs = [f"{child.module}.{a.name}" for a in child.names]
                subs = [s for s in subs if _is_module(s)]
                names = subs if len(subs) == len(child.names) else [child.module, *subs]
                found.extend(Import(n, child.lineno, deferred, type_only) for n in names)
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit(
                    ast.Module(body=child.body, type_ignores=[]), deferred=deferred, type_only=True
                )
                visit(
                    ast.Module(body=child.orelse, type_ignores=[]),
                    deferred=deferred,
                    type_only=type_only,
                )
            else:
                inner = deferred or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                visit(child, deferred=inner, type_only=type_only)

    visit(tree, deferred=False, type_only=False)
    return found


def _project_layer(name: str) -> str:
    parts = name.split(".")
    if parts[0] == "actors":
        return "actors._feed" if parts[1:2] == ["_feed"] else "actors"
    return ".".join(parts[:2])


def test_every_module_belongs_to_a_layer_with_a_rule() -> None:
    homeless = [_rel(p) for p in _modules() if _rel(p) not in FACADES and _layer_of(p) not in RULES]
    assert homeless == []


@pytest.mark.parametrize("layer", sorted(RULES))
def test_each_layer_states_its_rule_in_its_init_docstring(layer: str) -> None:
    init = REPO / layer / "__init__.py"
    if layer == "actors":
        init = REPO / "actors" / "__init__.py"
    docstring = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "Rule" in docstring or "supervis" in docstring, f"{_rel(init)} states no rule"


@pytest.mark.parametrize("layer", sorted(RULES))
def test_each_layer_imports_only_what_its_rule_allows(layer: str) -> None:
    rule = RULES[layer]
    problems: list[str] = []
    for path in _modules():
        if _layer_of(path) != layer:
            continue
        for imp in _imports(path):
            top = imp.name.split(".")[0]
            where = f"{_rel(path)}:{imp.line} imports {imp.name!r}"
            if top in STDLIB:
                continue
            if top in {"runtime", "actors"}:
                target = _project_layer(imp.name)
                own = layer.replace("/", ".")
                if target in rule.layers or target == own:
                    continue
                if target.split(".")[0] in rule.deferred_only and imp.deferred:
                    continue
                problems.append(f"{where}: layer {layer} may not import {target}")
            elif top not in rule.third_party:
                problems.append(f"{where}: layer {layer} may not import {top!r}")
    assert problems == []


@pytest.mark.parametrize("layer", SANS_IO)
def test_the_sans_io_layers_import_neither_trio_nor_httpx(layer: str) -> None:
    assert not {"trio", "httpx", "h11"} & RULES[layer].third_party


def test_only_the_http_layer_imports_httpx() -> None:
    assert [name for name, rule in RULES.items() if "httpx" in rule.third_party] == [
        "runtime/_http"
    ]


def test_only_the_feed_and_its_test_client_import_trio_websocket() -> None:
    assert [name for name, rule in RULES.items() if "trio_websocket" in rule.third_party] == [
        "actors/_feed",
        "runtime/testing",  # open_feed_client
    ]


def test_the_runtime_to_actors_seam_is_deferred_and_documented() -> None:
    """``runtime`` reaches ``actors`` at one place: a function-level import in the
    composition root, with a comment saying why (plus the facade's lazy names and the CLI)."""
    seams: list[str] = []
    for path in (REPO / "runtime").rglob("*.py"):
        layer = _layer_of(path)
        if layer == "runtime/_cli":
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for imp in _imports(path):
            if imp.name.split(".")[0] != "actors" or imp.type_only:
                continue
            assert imp.deferred, f"{_rel(path)}:{imp.line} imports actors at import time"
            above = lines[imp.line - 3 : imp.line - 1]
            assert any(line.strip().startswith("#") for line in above), (
                f"{_rel(path)}:{imp.line}: say in a comment why this import is deferred"
            )
            seams.append(_rel(path))
    assert seams == ["runtime/_client/client.py"]


def _module_graph() -> dict[str, set[str]]:
    names = {_module_name(p) for p in _modules()}
    graph: dict[str, set[str]] = {}
    for path in _modules():
        edges = {
            imp.name
            for imp in _imports(path)
            if not imp.deferred and not imp.type_only and imp.name in names
        }
        graph[_module_name(path)] = edges - {_module_name(path)}
    return graph


def test_no_import_cycle_among_modules() -> None:
    """Import-time edges only: a ``TYPE_CHECKING`` or function-level import runs no code
    when the module loads."""
    graph = _module_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_params_and_tools_do_not_import_each_other_at_import_time() -> None:
    graph = _module_graph()
    assert "runtime._agent.params" not in graph["runtime._agent.tools"] or (
        "runtime._agent.tools" not in graph["runtime._agent.params"]
    )


def test_tools_never_imports_params() -> None:
    """What both need (callback arity, the ``next_turn_params`` keys) lives below them in
    ``runtime._agent.callbacks``; only ``params`` names ``tools``, and only for typing."""
    names = {imp.name for imp in _imports(REPO / "runtime/_agent/tools.py")}
    assert "runtime._agent.params" not in names


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """Whatever a user imports first, it loads: no order-dependent cycle."""
    names = sorted(_module_name(p) for p in _modules() if _module_name(p) != "runtime.__main__")
    script = textwrap.dedent(
        """
        import importlib, sys
        failed = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m.split(".")[0] in ("runtime", "actors")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *names],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(names) > 50


def test_no_module_is_over_800_lines() -> None:
    long = {
        _rel(p): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_project_code_never_imports_from_a_facade() -> None:
    for path in _modules():
        if path.name == "__init__.py":
            continue
        for imp in _imports(path):
            assert imp.name not in {"runtime", "actors"}, (
                f"{_rel(path)} imports the facade {imp.name!r}; import the defining module"
            )
