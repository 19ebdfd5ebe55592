"""The user documentation is true of the code: its examples run and its names exist.

* ``docs/examples/*.py`` run against the embedded emulator (in-process, over
  loopback) and against ``FakeOpenRouter`` with scripted turns; the research
  agent also runs as a script in a subprocess.
* Every ```python block in ``docs/**/*.md`` compiles; every ``runtime.X`` and
  ``from runtime... import X`` in the docs names something the facades export;
  no doc mentions a private module; relative links resolve.
* ``docs/reference/events.md`` shows every event type, and each JSON example
  decodes as the event it documents; ``docs/reference/api.md`` lists every
  public name.
* The complete test in ``docs/guides/testing.md`` is the one defined below
  (:func:`test_weather_agent_answers_from_the_tool`), verbatim.
* A few claims the guides make that no other test pins.

Loopback tests run on trio's real clock (the emulator's sockets would make an
autojump clock skip ahead) and are bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib.util
import inspect
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing

import runtime
import runtime.emulator
import runtime.testing
from runtime import (
    KEEP_ALL,
    Lagged,
    OpenRouter,
    Ring,
    RunCancelled,
    TrimBehindSlowest,
    function_tool,
    tool,
)
from runtime._protocol.events import RunEvent, ServerEvent, UnknownEvent, decode_event
from runtime.emulator import Fault, Turn
from runtime.testing import FakeOpenRouter, error_turn, text_turn, tool_call_turn

if TYPE_CHECKING:
    from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
EXAMPLES = DOCS / "examples"
MARKDOWN = sorted(DOCS.rglob("*.md"))
BOUND = 30.0  # seconds on trio's clock

# The files of this documentation set whose prose is also checked for calls of
# names that do not exist (the other docs get the checks every doc gets).
OWN_DOCS = (
    "index.md",
    "tutorial.md",
    "design.md",
    "contributing.md",
    "changelog.md",
    "guides/tools.md",
    "guides/mcp.md",
    "guides/streaming.md",
    "guides/cancellation.md",
    "guides/testing.md",
    "reference/api.md",
    "reference/events.md",
)

FACADES: dict[str, ModuleType] = {
    "runtime": runtime,
    "runtime.testing": runtime.testing,
    "runtime.emulator": runtime.emulator,
}


# --- reading Markdown -------------------------------------------------------------

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")


class Block(msgspec.Struct, frozen=True):
    """One fenced code block."""

    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str
    run: bool = False  # preceded by a `<!-- run -->` line: executed by the tests
    end: int = 0  # 1-based line of the closing fence


@functools.cache
def _blocks(path: Path) -> tuple[Block, ...]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening.group("fence")
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end])
            end += 1
        info = opening.group("info").strip().split(" ")[0].lower()
        before = [line.strip() for line in lines[:index] if line.strip()]
        run = bool(before) and before[-1] == "<!-- run -->"
        text = textwrap.dedent("\n".join(body)) + "\n"  # a block may sit in a list item
        found.append(Block(path, index + 1, info, text, run, end + 1))
        index = end + 1
    return tuple(found)


def _prose(path: Path) -> str:
    """The Markdown without its fenced blocks (inline code stays)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    keep: list[str] = []
    fence: str | None = None
    for line in lines:
        opening = _FENCE.match(line)
        if fence is None and opening is not None:
            fence = opening.group("fence")
            continue
        if fence is not None:
            if line.strip().startswith(fence):
                fence = None
            continue
        keep.append(line)
    return "\n".join(keep)


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name


def _python_blocks() -> list[Block]:
    return [b for p in MARKDOWN for b in _blocks(p) if b.info in ("python", "py", "python3")]


# --- names ---------------------------------------------------------------------------

_DOTTED = re.compile(r"(?<![\w./\\-])(?P<path>(?:runtime|actors)(?:\.\w+)+)")
_FROM_IMPORT = re.compile(
    r"from\s+(?P<module>(?:runtime|actors)(?:\.\w+)*)\s+import\s+(?P<names>[\w ,]+)"
)
_PRIVATE = re.compile(r"(?<![\w./\\-])(?:runtime|actors)(?:\.\w+)*\._\w+")


def _check_import(module: str, names: list[str], where: str) -> list[str]:
    facade = FACADES.get(module)
    if facade is None:
        return [f"{where}: imports from {module!r}, which is not a public facade"]
    exported = set(facade.__all__)
    return [
        f"{where}: {module} does not export {name!r}"
        for name in names
        if name != "*" and name not in exported
    ] + ([f"{where}: star import from {module}"] if "*" in names else [])


def _check_dotted(dotted: str, where: str) -> list[str]:
    parts = dotted.split(".")
    module = parts[0]
    rest = parts[1:]
    if rest and f"{module}.{rest[0]}" in FACADES:
        module = f"{module}.{rest[0]}"
        rest = rest[1:]
    facade = FACADES.get(module)
    if facade is None:
        return [f"{where}: {dotted!r} is not in a public facade"]
    if not rest:
        return []
    if rest[0] not in facade.__all__:
        return [f"{where}: {module} does not export {rest[0]!r} ({dotted!r})"]
    obj: Any = getattr(facade, rest[0])
    for attribute in rest[1:]:
        if not hasattr(obj, attribute):
            return [f"{where}: {dotted!r}: no attribute {attribute!r}"]
        obj = getattr(obj, attribute)
    return []


def _checked_text(path: Path) -> str:
    """The prose and the Python blocks; diagrams and other blocks are left alone."""
    python = [b.text for b in _blocks(path) if b.info in ("python", "py", "python3")]
    return "\n".join([_prose(path), *python])


def _name_problems(path: Path) -> list[str]:
    problems: list[str] = []
    for number, line in enumerate(_checked_text(path).splitlines(), start=1):
        where = f"{_rel(path)} (checked line {number})"
        for match in _PRIVATE.finditer(line):
            problems.append(f"{where}: mentions the private name {match.group(0)!r}")
        for match in _FROM_IMPORT.finditer(line):
            names = [n.strip() for n in match.group("names").split(",") if n.strip()]
            problems += _check_import(match.group("module"), names, where)
        for match in _DOTTED.finditer(line):
            if not _PRIVATE.fullmatch(match.group("path")):
                problems += _check_dotted(match.group("path").rstrip("."), where)
    for block in _blocks(path):
        if block.info not in ("python", "py", "python3"):
            continue
        tree = compile(
            block.text, str(path), "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                if top in ("runtime", "actors"):
                    where = f"{_rel(path)}:{block.line + node.lineno}"
                    problems += _check_import(node.module, [a.name for a in node.names], where)
    return problems


@pytest.mark.parametrize("block", _python_blocks(), ids=lambda b: f"{_rel(b.path)}:{b.line}")
def test_python_block_compiles(block: Block) -> None:
    """Every ```python block of the docs is valid Python (top-level ``await`` allowed)."""
    compile(block.text, f"{_rel(block.path)}:{block.line}", "exec", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("path", MARKDOWN, ids=_rel)
def test_runtime_names_in_the_docs_exist(path: Path) -> None:
    assert _name_problems(path) == []


def test_the_name_check_catches_what_it_should(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Use `runtime.NoSuchThing` and `runtime._client.client` and `from runtime import Nope`.\n"
        "```python\nfrom runtime.testing import FakeOpenRouter, Missing\n```\n",
        encoding="utf-8",
    )
    problems = "\n".join(_name_problems(page))
    assert "'NoSuchThing'" in problems
    assert "runtime._client.client" in problems
    assert "'Nope'" in problems
    assert "'Missing'" in problems
    assert "FakeOpenRouter'" not in problems


_CALL = re.compile(r"`(?P<name>[A-Za-z_][\w.]*)\((?P<args>[^`]*)\)`")
_RESOLVABLE_MODULES = ("trio", "msgspec", "httpx", "pytest", "inspect", "functools", "json")


@functools.cache
def _known_callables() -> frozenset[str]:
    """Names a doc may call without qualification: public names and their members."""
    known: set[str] = set(dir(builtins))
    owners: list[Any] = [
        trio.Nursery,
        trio.CancelScope,
        trio.testing.MockClock,
        trio.abc.ReceiveChannel,
    ]
    for facade in FACADES.values():
        for name in facade.__all__:
            known.add(name)
            owners.append(getattr(facade, name))
    for owner in owners:
        known.update(n for n in dir(owner) if not n.startswith("_"))
    return frozenset(known)


def _call_problems(path: Path) -> list[str]:
    problems: list[str] = []
    for number, line in enumerate(_prose(path).splitlines(), start=1):
        for match in _CALL.finditer(line):
            dotted = match.group("name")
            parts = dotted.split(".")
            if parts[0] in _RESOLVABLE_MODULES:
                obj: Any = importlib.import_module(parts[0])
                for part in parts[1:]:
                    if not hasattr(obj, part):
                        problems.append(f"{_rel(path)}: `{dotted}(...)` does not exist")
                        break
                    obj = getattr(obj, part)
            elif parts[0] not in ("runtime", "actors") and parts[-1] not in _known_callables():
                problems.append(f"{_rel(path)} (prose line {number}): `{dotted}(...)` is unknown")
    return problems


@pytest.mark.parametrize("name", OWN_DOCS)
def test_calls_named_in_the_prose_exist(name: str) -> None:
    """`get_text()`, `trio.fail_after(...)`: each is a public name or a member of one."""
    path = DOCS / name
    assert path.exists(), f"{name} is missing"
    assert _call_problems(path) == []


_LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


@pytest.mark.parametrize("path", MARKDOWN, ids=_rel)
def test_relative_links_resolve(path: Path) -> None:
    broken = []
    for match in _LINK.finditer(_prose(path)):
        target = match.group("target")
        if re.match(r"^(?:[a-z]+:|#)", target):
            continue
        file_part = target.split("#", 1)[0]
        if not (path.parent / file_part).exists():
            broken.append(target)
    assert broken == []


# --- pages whose programs run -------------------------------------------------------------


def _pages_with_programs() -> list[Path]:
    return [p for p in MARKDOWN if any(b.run for b in _blocks(p))]


def _matches(expected: str, got: str) -> bool:
    """Line by line; ``...`` in an expected line stands for any text."""
    want = expected.strip().splitlines()
    have = got.strip().splitlines()
    if len(want) != len(have):
        return False
    return all(
        re.fullmatch(".*".join(map(re.escape, w.split("..."))), h) is not None
        for w, h in zip(want, have, strict=True)
    )


def test_the_output_matcher() -> None:
    assert _matches("a\nRunUsage(model_calls=2, ...)\n", "a\nRunUsage(model_calls=2, x=1)")
    assert not _matches("a\nb", "a\nc")
    assert not _matches("a", "a\nb")


@pytest.mark.parametrize("path", _pages_with_programs(), ids=_rel)
async def test_the_programs_of_a_page_print_what_it_shows(
    path: Path, no_api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Blocks after ``<!-- run -->`` run in order, in one namespace per page.

    A block that defines ``main`` has it awaited (its ``trio.run(main)`` line is
    dropped); when a ```text block follows it directly, that is the output.
    """
    blocks = _blocks(path)
    lines = path.read_text(encoding="utf-8").splitlines()  # noqa: ASYNC240 - a small local file
    namespace: dict[str, Any] = {"__name__": f"docs_page_{path.stem}"}
    ran = 0
    for index, block in enumerate(blocks):
        if not block.run:
            continue
        code = "\n".join(
            line for line in block.text.splitlines() if line.strip() != "trio.run(main)"
        )
        tree = ast.parse(code)
        defines_main = any(
            isinstance(n, ast.AsyncFunctionDef) and n.name == "main" for n in tree.body
        )
        capsys.readouterr()
        exec(compile(code, f"{_rel(path)}:{block.line}", "exec"), namespace)
        if defines_main:
            with trio.fail_after(BOUND):
                await namespace["main"]()
        out = capsys.readouterr().out
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if (
            following is not None
            and following.info == "text"
            and not any(line.strip() for line in lines[block.end : following.line - 1])
        ):
            assert _matches(following.text, out), f"{_rel(path)}:{block.line} printed:\n{out}"
        ran += 1
    assert ran


def test_every_program_block_runs_as_it_is_copied() -> None:
    """A ``<!-- run -->`` block that defines ``main`` ends by running it (``trio.run(main)``),
    so that a reader who copies it runs what the suite ran; and every page with such a
    block is one the test above executes."""
    missing = [
        f"{_rel(block.path)}:{block.line}"
        for path in MARKDOWN
        for block in _blocks(path)
        if block.run
        and "async def main" in block.text
        and block.text.rstrip().splitlines()[-1] != "trio.run(main)"
    ]
    assert missing == []
    executed = set(_pages_with_programs())
    assert {b.path for p in MARKDOWN for b in _blocks(p) if b.run} <= executed


# --- the examples ----------------------------------------------------------------------


@functools.cache
def _example(name: str) -> ModuleType:
    """Import ``docs/examples/<name>.py`` once (registered, so msgspec can resolve it)."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples pick the embedded emulator when no key is set."""
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)


async def test_research_agent_runs_on_the_emulator(
    no_api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = _example("research_agent")
    with trio.fail_after(BOUND):
        await agent.main([])
    out = capsys.readouterr().out
    assert "model: emulator/tool-caller" in out
    # The typed tool ran with arguments made from its schema (the default limit=3).
    assert '-> search({"query":"query","limit":3})' in out
    assert "<- search: [" in out
    # The generator tool reported progress before its result, and both before turn 1.
    progress = out.index("reading 1/1: Nurseries")
    assert out.index("-> read_sources(") < progress < out.index("<- read_sources:")
    assert progress < out.index("[turn 1]")
    # The final answer streamed, then the usage of both model calls.
    assert "search returned [" in out[out.index("[turn 1]") :]
    assert "usage: 2 model calls" in out


async def test_research_agent_runs_as_a_script(no_api_key: None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, str(EXAMPLES / "research_agent.py"), "--question", "nursery"],
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert "reading 1/1: Nurseries" in out
    assert "usage: 2 model calls" in out


async def test_research_agent_with_scripted_turns(
    capsys: pytest.CaptureFixture[str],
    autojump_clock: trio.testing.MockClock,
    openapi: Any,
) -> None:
    """What a real model would do: search, read two results, answer (L-16 ordering)."""
    agent = _example("research_agent")
    fake = FakeOpenRouter(
        tool_call_turn(
            ("search", {"query": "nursery cancel", "limit": 2}, "call_search"),
            ("read_sources", {"ids": [1, 2]}, "call_read"),
        ),
        text_turn("Nurseries wait for every task [Nurseries].", chunks=4),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = await agent.run_research(client, "What do nurseries do?", model="m/x")
            text = await result.get_text()
    out = capsys.readouterr().out
    assert text == "Nurseries wait for every task [Nurseries]."
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert lines[:3] == [
        "[turn 0]",
        '-> search({"query":"nursery cancel","limit":2})',
        '-> read_sources({"ids":[1,2]})',
    ]
    assert lines[3:5] == ["reading 1/2: Nurseries", "reading 2/2: Cancel scopes"]
    assert lines[5].startswith('<- search: [{"id":1,')
    assert lines[6].startswith('<- read_sources: {"notes":["Nurseries: ')
    assert lines[7] == "[turn 1]"
    assert lines[8] == text
    assert lines[9].startswith("usage: 2 model calls")
    first, second = fake.bodies()
    for body in (first, second):
        openapi.validate("ResponsesRequest", body)
    search_schema = first["tools"][0]["parameters"]
    assert search_schema["properties"]["limit"]["default"] == 3
    assert search_schema["required"] == ["query"]
    outputs = {
        i["call_id"]: i["output"]
        for i in second["input"]
        if i.get("type") == "function_call_output"
    }
    assert [r["id"] for r in msgspec.json.decode(outputs["call_search"])] == [1, 2]
    assert msgspec.json.decode(outputs["call_read"])["notes"][1].startswith("Cancel scopes: ")


async def test_streaming_fanout_runs_on_the_emulator(
    no_api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fanout = _example("streaming_fanout")
    with trio.fail_after(BOUND):
        await fanout.main([])
    out = capsys.readouterr().out
    assert "Fan out: every consumer sees every event." in out
    assert "counter: 7 deltas" in out
    assert "reasoning: 9 deltas" in out
    assert "same as live: True" in out
    assert "same text for everyone: True" in out
    assert "model calls for all these consumers: 1" in out
    assert "run 0: Name one thing a nursery guarantees." in out
    assert "run 2: failed: BadRequestError: 400:" in out
    assert "run 3: Name one thing a nursery guarantees." in out


async def test_converters_run_on_the_emulator(
    no_api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    converters = _example("converters")
    with trio.fail_after(BOUND):
        await converters.main([])
    out = capsys.readouterr().out
    chat_part, claude_part = out.split("== Claude messages")
    assert '"type": "function_call_output"' in chat_part
    assert '"call_id": "call_1"' in chat_part
    assert '"content": "Say it in one sentence."' in chat_part.split("assistant chat message:")[1]
    assert "Claude-style: True" in claude_part
    assert "chat history Claude-style: False" in claude_part
    assert '"text": "Answer with the number only."' in claude_part
    assert '"stop_reason": "end_turn"' in claude_part
    assert "lost anything: False" in claude_part
    assert "ConfigurationError: input[0].content[0] has part type 'text'" in out


async def test_mcp_agent_runs_on_the_emulator(
    no_api_key: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The example starts its MCP server (``weather_mcp_server.py``) as a real process."""
    agent = _example("mcp_agent")
    with trio.fail_after(BOUND):
        await agent.main([])
    out = capsys.readouterr().out
    assert "tools: get_forecast" in out
    # The emulator called the tool with arguments made from the server's schema
    # (days defaults to 2): two progress notifications, then the structured result.
    assert out.index("progress: day 1 of 2") < out.index("progress: day 2 of 2")
    assert '"daily":[{"day":1,"sky":"sunny","high_c":19}' in out
    assert out.index("progress: day 2 of 2") < out.index("result: ")
    assert "answer: city: advice" in out


def test_every_example_is_executed_here() -> None:
    tested = {
        "research_agent",
        "streaming_fanout",
        "converters",
        "oauth_app",
        "mcp_agent",
        "weather_mcp_server",  # run by mcp_agent
    }
    assert {p.stem for p in EXAMPLES.glob("*.py")} <= tested


# --- docs/guides/testing.md: the complete test, executed here -------------------------------


@function_tool
def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city.

    Args:
        city: the city name.
    """
    return {"city": city, "temp_c": 21}


async def test_weather_agent_answers_from_the_tool(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeOpenRouter(
        error_turn(503, times=1),  # an outage: the client retries after Retry-After
        tool_call_turn(("get_weather", {"city": "Paris"})),
        text_turn("It is 21 degrees in Paris.", chunks=3),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(60):  # trio's clock: the retry's wait takes no real time
            result = client.call_model(
                model="openai/gpt-5", input="Weather in Paris?", tools=[get_weather]
            )
            deltas = [delta async for delta in result.get_text_stream()]
            usage = await result.get_usage()

    assert "".join(deltas) == "It is 21 degrees in Paris."
    assert len(deltas) == 3
    assert usage.model_calls == 2
    refused, first, follow_up = fake.bodies()
    assert refused == first  # the retry sent the same request again
    assert first["tools"][0]["name"] == "get_weather"
    call_output = follow_up["input"][-1]
    assert call_output["type"] == "function_call_output"
    assert call_output["output"] == '{"city":"Paris","temp_c":21}'


def test_the_testing_guide_shows_the_test_that_runs_here() -> None:
    guide = DOCS / "guides" / "testing.md"
    blocks = [b.text for b in _blocks(guide) if b.info == "python"]
    complete = [b for b in blocks if "async def test_weather_agent_answers_from_the_tool" in b]
    assert len(complete) == 1, "the guide must show the executed test once"
    shown = complete[0]
    for function in (get_weather.execute, test_weather_agent_answers_from_the_tool):
        assert function is not None
        assert inspect.getsource(function) in shown
    namespace: dict[str, Any] = {}
    exec(compile(shown, str(guide), "exec"), namespace)  # its imports resolve
    assert inspect.iscoroutinefunction(namespace["test_weather_agent_answers_from_the_tool"])


def test_every_test_shown_in_the_testing_guide_passes() -> None:
    """The guide's smaller examples run too (each in its own ``trio.run``)."""
    guide = DOCS / "guides" / "testing.md"
    namespace: dict[str, Any] = {"__name__": "docs_testing_guide"}
    names: list[str] = []
    for block in _blocks(guide):
        if block.info != "python":
            continue
        tree = ast.parse(block.text)
        names += [
            n.name
            for n in tree.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
        ]
        exec(compile(tree, f"{_rel(guide)}:{block.line}", "exec"), namespace)
    assert len(names) >= 4
    for name in names:
        function = namespace[name]
        if not inspect.iscoroutinefunction(function):
            function()
        elif "autojump_clock" in inspect.signature(function).parameters:
            clock = trio.testing.MockClock(autojump_threshold=0)
            trio.run(function, clock, clock=clock)
        else:
            trio.run(function)


# --- docs/reference: complete and decodable -------------------------------------------------


def _tags(union: Any) -> list[str]:
    return [
        cls.__struct_config__.tag
        for cls in getattr(union, "__args__", ())
        if cls is not UnknownEvent and isinstance(cls.__struct_config__.tag, str)
    ]


def test_the_event_catalogue_lists_every_event_type() -> None:
    text = (DOCS / "reference" / "events.md").read_text(encoding="utf-8")
    tags = _tags(ServerEvent) + _tags(RunEvent)
    assert len(tags) > 40
    missing = [tag for tag in tags if f"`{tag}`" not in text]
    assert missing == []
    assert "`UnknownEvent`" in text


def test_the_event_examples_decode_as_what_they_document() -> None:
    run_events = msgspec.json.Decoder(RunEvent)
    checked = 0
    for block in _blocks(DOCS / "reference" / "events.md"):
        if block.info != "json":
            continue
        data = block.text.strip().encode()
        value = msgspec.json.decode(data)
        if "specversion" in value:
            continue  # a websocket frame, checked below
        kind = value["type"]
        if kind.startswith(("turn.", "tool.")):
            event: Any = run_events.decode(data)
        else:
            event = decode_event(data)
        assert event.type == kind, block.line
        if kind.startswith("response.fusion_call"):
            assert type(event) is UnknownEvent
        else:
            assert type(event) is not UnknownEvent, f"events.md:{block.line} decodes as unknown"
        checked += 1
    assert checked >= 20


def test_the_websocket_frame_example_has_the_feed_s_fields() -> None:
    from actors._feed.protocol import event_frames
    from runtime import TurnStart

    frames = [
        msgspec.json.decode(b.text.strip())
        for b in _blocks(DOCS / "reference" / "events.md")
        if b.info == "json" and "specversion" in b.text
    ]
    assert len(frames) == 1
    real = msgspec.json.decode(
        event_frames("run_1", "src", [TurnStart(turn_number=0, timestamp=1)], 0)[0]
    )
    assert frames[0].keys() == real.keys()
    assert frames[0]["sequence"] == int(frames[0]["id"].rsplit(":", 1)[1])


def test_the_api_reference_lists_every_public_name() -> None:
    text = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    missing = [
        f"{module}.{name}"
        for module, facade in FACADES.items()
        for name in facade.__all__
        if f"`{name}`" not in text
    ]
    assert missing == []
    headings = re.findall(r"^#{3,4} `(\w+)`", text, flags=re.MULTILINE)
    exported = {name for facade in FACADES.values() for name in facade.__all__}
    assert headings
    assert [h for h in headings if h not in exported] == []


# --- claims of the guides ----------------------------------------------------------------------


async def test_a_lagged_stream_can_go_on_after_the_gap() -> None:
    """docs/guides/streaming.md: catch ``Lagged`` and keep reading the same stream."""
    fake = FakeOpenRouter(text_turn(" ".join(f"w{i}" for i in range(50))))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(model="m/x", input="Hi", retention=Ring(capacity=10))
            await result.wait_done()
            stream = result.get_text_stream()
            missed: list[int] = []
            got: list[str] = []
            while True:
                try:
                    async for delta in stream:
                        got.append(delta)
                    break
                except Lagged as lag:
                    missed.append(lag.missed)
            text = await result.get_text()
    assert missed == [50]  # everything before the newest 10 events
    assert got == ["w45 ", "w46 ", "w47 ", "w48 ", "w49"]
    assert text.startswith("w0 w1 ")  # derived values survive retention


async def test_retention_is_chosen_per_client_and_per_call() -> None:
    fake = FakeOpenRouter(text_turn("a b"), text_turn("c d"))
    async with OpenRouter(
        fake.inference_key, http_transport=fake.http_transport(), retention=TrimBehindSlowest()
    ) as client:
        with trio.fail_after(BOUND):
            trimmed = client.call_model(model="m/x", input="Hi")
            kept = client.call_model(model="m/x", input="Hi", retention=KEEP_ALL)
            async with trimmed.get_text_stream() as stream:
                assert [d async for d in stream] == ["a ", "b"]
            await kept.wait_done()
            with pytest.raises(Lagged):
                async for _ in trimmed.get_full_responses_stream():
                    pass
            assert [d async for d in kept.get_text_stream()] == ["c ", "d"]


async def test_cancelling_a_consumer_leaves_the_run_going_cancel_stops_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """docs/guides/cancellation.md: a consumer's deadline is not the run's."""
    fake = FakeOpenRouter(Turn(text=("slow ",) * 20, fault=Fault(slow=1.0)))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        result = client.call_model(model="m/x", input="Hi")
        with trio.move_on_after(10.5):  # the first deltas arrive after about 5 s
            await result.get_text()
        assert result.snapshot().status == "running"
        result.cancel()
        with trio.fail_after(BOUND), pytest.raises(RunCancelled):
            await result.get_text()
        assert [d async for d in result.get_text_stream()][:1] == ["slow "]
    assert result.snapshot().status == "cancelled"


async def test_the_approval_pattern_of_the_tools_guide(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """docs/guides/tools.md (L-09, A-06): a manual tool pauses the run; the caller goes on."""

    class Email(msgspec.Struct):
        to: str
        body: str

    send_email = tool(
        name="send_email", description="Send an email.", input_schema=Email, execute=False
    )
    fake = FakeOpenRouter(
        tool_call_turn(("send_email", {"to": "ana@example.com", "body": "Hi"}, "call_1")),
        text_turn("Sent."),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(model="m/x", input="Email Ana", tools=[send_email])
            pending = await result.get_pending_tool_calls()
            assert [(c.id, c.name) for c in pending] == [("call_1", "send_email")]
            history = await result.get_conversation()
            answers = [
                {"type": "function_call_output", "call_id": c.id, "output": '"sent"'}
                for c in pending
            ]
            resumed = client.call_model(model="m/x", input=[*history, *answers], tools=[send_email])
            assert await resumed.get_text() == "Sent."
    _, second = fake.bodies()
    assert [i.get("type") for i in second["input"]] == [
        None,
        "function_call",
        "function_call_output",
    ]
