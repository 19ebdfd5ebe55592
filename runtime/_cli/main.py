"""The ``openrouter-trio`` command line: ``run``, ``emulator`` and ``demo``.

One job: turn a command line into one trio run of the public pieces (the
``OpenRouter`` client, the session pool, the emulator) and report it on a
terminal or in a log.

Rules
-----

Rule 1 (one run). :func:`main` parses the arguments and calls ``trio.run``
once; :func:`run_cli` is the same thing inside a trio run that already exists
(tests use it). Every task belongs to a nursery of that run. The live display
does not use rich's refresh thread: a trio task repaints it.

Rule 2 (exit codes). 0 on success; 1 for an expected failure, reported as one
line ``error: <Type>: <message>`` on stderr and never as a traceback (any
``AgentError``, and ``OSError`` such as a port already in use); 1 as well when
a demo session failed; 2 for a usage error (argparse); 130 after Ctrl-C, except
for ``emulator``, where Ctrl-C is the normal way to stop (0). An exception of
any other kind is a bug and keeps its traceback.

Rule 3 (streams). stdout carries the product: the answer transcript of
``run``, the banner of ``emulator``, the progress and summary of ``demo``.
stderr carries notices (which server is used) and errors.

Rule 4 (keys). ``OPENROUTER_API_KEY`` goes to the client and nowhere else: no
message of this module contains it. The only keys ever printed are the
embedded emulator's own loopback keys, by ``emulator``, because clients need
them to talk to it.

Rule 5 (no network by default). Without ``OPENROUTER_API_KEY`` (and without
``--base-url``) ``run`` starts the embedded emulator in the same trio run and
says so on stderr. ``demo`` always uses the embedded emulator, so ``make demo``
works offline on a fresh clone.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import os
import time
from typing import TYPE_CHECKING, Final, Literal, Protocol

import msgspec
import trio
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column, Table
from rich.text import Text

from runtime._agent.outcomes import FinalResult
from runtime._agent.stop import step_count_is
from runtime._agent.tools import Tool, function_tool, tool
from runtime._base.errors import AgentError, AuthenticationError, TransportError
from runtime._base.groups import leaves
from runtime._client.client import OpenRouter
from runtime._client.pool import SessionPool, open_session_pool
from runtime._http.retry import RetryConfig
from runtime._protocol.events import (
    OutputItemDone,
    OutputTextDelta,
    ReasoningSummaryTextDelta,
    ReasoningTextDelta,
    ToolPreliminaryResult,
    ToolResult,
    TurnEnd,
    TurnStart,
)
from runtime._protocol.wire import FunctionCallItem
from runtime._run.status import RunUsage
from runtime.emulator._core import Emulator
from runtime.emulator._models import BUILTIN_MODELS
from runtime.emulator._server import open_emulator, serve_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from typing import TextIO

    from rich.progress import TaskID

    from runtime._client.result import ModelResult
    from runtime.emulator._server import EmulatorServer

__all__ = [
    "DEMO_MODEL",
    "REMOTE_MODEL",
    "DemoOptions",
    "DemoSummary",
    "build_parser",
    "demo_tools",
    "main",
    "run_cli",
    "run_demo",
    "serve_emulator_command",
    "summary_table",
]

DEMO_MODEL: Final = "emulator/tool-caller"
"""The emulator model of ``demo`` (and of ``run`` without a key): a real tool loop."""

REMOTE_MODEL: Final = "openrouter/auto"
"""The model ``run`` asks real OpenRouter for when ``--model`` is not given."""

DEMO_FAULT: Final = "fail-after=3"
"""The emulator fault of ``demo --fail-every``: ``response.failed`` after three events."""

MAX_SESSION_ROWS: Final = 8
"""Running sessions shown with their own progress bar (the rest count in the total)."""

REFRESH_INTERVAL: Final = 0.1
"""Seconds between two repaints of the live display."""

_EXIT_ERROR: Final = 1
_EXIT_INTERRUPTED: Final = 130
_ENCODER: Final = msgspec.json.Encoder()
_HINTS: Final[tuple[tuple[type[AgentError], str], ...]] = (
    (AuthenticationError, " Check OPENROUTER_API_KEY."),
    (TransportError, " Check the base URL and the network."),
)


# --- the demo tools ----------------------------------------------------------------

Unit = Literal["c", "f"]


class Weather(msgspec.Struct, frozen=True, kw_only=True):
    """What ``get_weather`` returns."""

    city: str
    temperature: int
    unit: Unit


class ScanInput(msgspec.Struct, frozen=True, kw_only=True):
    """The arguments of ``scan_table``."""

    table: str


class ScanProgress(msgspec.Struct, frozen=True, kw_only=True):
    """A progress event of ``scan_table`` (a ``tool.preliminary_result``)."""

    done: int
    total: int


class ScanReport(msgspec.Struct, frozen=True, kw_only=True):
    """The final result of ``scan_table``."""

    table: str
    rows: int


@function_tool
def get_weather(city: str, unit: Unit = "c") -> Weather:
    """Current weather for a city (deterministic: derived from the name).

    Args:
        city: the city name.
        unit: "c" for Celsius or "f" for Fahrenheit.
    """
    celsius = sum(map(ord, city)) % 35
    return Weather(
        city=city, temperature=celsius if unit == "c" else celsius * 9 // 5 + 32, unit=unit
    )


def demo_tools(steps: int, delay: float) -> list[Tool]:
    """The tools of ``demo`` and ``run --tools``: a typed tool and a generator tool.

    Args:
        steps: how many progress events ``scan_table`` reports per call.
        delay: seconds ``scan_table`` waits before each progress event (0: none).

    Returns:
        ``[get_weather, scan_table]``.
    """

    async def scan(arguments: ScanInput) -> AsyncIterator[ScanProgress | FinalResult[ScanReport]]:
        for done in range(1, steps + 1):
            if delay:
                await trio.sleep(delay)
            yield ScanProgress(done=done, total=steps)
        yield FinalResult(ScanReport(table=arguments.table, rows=1000 * steps))

    scan_table = tool(
        name="scan_table",
        description="Scan a table and count its rows, reporting progress as it goes.",
        input_schema=ScanInput,
        output_schema=ScanReport,
        event_schema=ScanProgress,
        execute=scan,
    )
    return [get_weather, scan_table]


# --- argument parsing ----------------------------------------------------------------


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {minimum}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``openrouter-trio`` (one sub-command per job)."""
    try:
        version = importlib.metadata.version("openrouter-trio")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        version = "unknown"
    parser = argparse.ArgumentParser(
        prog="openrouter-trio",
        description="OpenRouter's callModel agent API on trio: run agents, serve the "
        "local emulator, or watch many sessions at once.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="stream one agent answer to the terminal",
        description="Stream one agent answer: text as it arrives, reasoning dimmed, tool "
        "calls and results compactly, then a usage line. Uses OpenRouter when "
        "OPENROUTER_API_KEY is set, the embedded emulator otherwise.",
    )
    run.add_argument("prompt", help="what to ask")
    run.add_argument(
        "--model",
        help=f"model id (default: {REMOTE_MODEL} on OpenRouter, {DEMO_MODEL} on the emulator)",
    )
    run.add_argument(
        "--tools", action="store_true", help="offer the demo tools get_weather and scan_table"
    )
    run.add_argument(
        "--base-url", help="API root to use instead of OPENROUTER_BASE_URL / openrouter.ai"
    )
    run.add_argument(
        "--max-turns",
        type=_int_at_least(0),
        metavar="N",
        help="stop after N tool rounds, then ask for a final answer (default: 5)",
    )
    run.add_argument(
        "--retries",
        type=_int_at_least(0),
        default=2,
        metavar="N",
        help="retries of a failed connection or 5xx answer per request (default: 2)",
    )

    emulator = commands.add_parser(
        "emulator",
        help="serve the local OpenRouter emulator until Ctrl-C",
        description="Serve the OpenRouter emulator over HTTP on loopback until Ctrl-C.",
    )
    emulator.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    emulator.add_argument(
        "--port", type=_int_at_least(0), default=8080, help="port to bind; 0 picks one (8080)"
    )

    demo = commands.add_parser(
        "demo",
        help="many agent sessions with tools on the embedded emulator, live",
        description="Run many agent sessions with a typed tool and a progress-reporting "
        "generator tool against the embedded emulator, with live progress and a summary.",
    )
    demo.add_argument("--sessions", type=_int_at_least(1), default=24, help="sessions (24)")
    demo.add_argument(
        "--concurrency", type=_int_at_least(1), default=8, help="sessions at a time (8)"
    )
    demo.add_argument(
        "--events-per-session",
        type=_int_at_least(1),
        default=20,
        metavar="N",
        help="progress events scan_table reports in each session (20)",
    )
    demo.add_argument(
        "--step-delay",
        type=_seconds,
        default=0.02,
        metavar="SECONDS",
        help="pause before each progress event; 0 runs flat out (0.02)",
    )
    demo.add_argument(
        "--fail-every",
        type=_int_at_least(0),
        default=0,
        metavar="N",
        help="make every Nth session fail mid-stream, to show isolation (0: none)",
    )
    demo.add_argument(
        "--json", action="store_true", help="print the summary as one JSON line, nothing else"
    )
    serve = commands.add_parser(
        "serve",
        help="demo sessions, the websocket feed and the dashboard page",
        description="Keep running agent sessions (on the embedded emulator, or OpenRouter "
        "when OPENROUTER_API_KEY is set) and serve the live dashboard and its websocket "
        "feed; prints the URL to open.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument(
        "--port", type=_int_at_least(0), default=8000, help="dashboard port; 0 picks one (8000)"
    )
    serve.add_argument("--token", help="the feed's token (default: a random one)")
    serve.add_argument(
        "--sessions", type=_int_at_least(0), default=0, help="sessions in all; 0 never stops (0)"
    )
    serve.add_argument(
        "--concurrency", type=_int_at_least(1), default=4, help="sessions at a time (4)"
    )
    serve.add_argument(
        "--interval", type=_seconds, default=1.0, metavar="SECONDS", help="between starts (1)"
    )
    return parser


# --- entry points ----------------------------------------------------------------------


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``openrouter-trio`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Starts one trio run. See the module docstring for the exit codes.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error: argparse said why
        return exc.code if isinstance(exc.code, int) else _EXIT_ERROR
    err = _console(stderr, stderr=True)
    interrupted = False
    code = _EXIT_ERROR
    try:
        code = trio.run(functools.partial(_dispatch, args, _console(stdout), err))
    except* KeyboardInterrupt:
        interrupted = True
    if interrupted:
        if args.command in ("emulator", "serve"):
            _line(err, f"{args.command} stopped")
            return 0
        _line(err, "interrupted")
        return _EXIT_INTERRUPTED
    return code


async def run_cli(
    argv: Sequence[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """:func:`main` inside a running trio program: parse, run, return the exit code.

    A checkpoint. Cancelling it cancels the command (``emulator`` runs until then).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        await trio.lowlevel.checkpoint()
        return exc.code if isinstance(exc.code, int) else _EXIT_ERROR
    return await _dispatch(args, _console(stdout), _console(stderr, stderr=True))


def _console(file: TextIO | None, *, stderr: bool = False) -> Console:
    if file is None:
        return Console(stderr=stderr, highlight=False)
    return Console(file=file, highlight=False)


def _line(console: Console, text: str | Text, style: str | None = None) -> None:
    """Print one line as it is: no markup, no highlighting, no wrapping."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


async def _dispatch(args: argparse.Namespace, out: Console, err: Console) -> int:
    try:
        if args.command == "run":
            return await _run_command(args, out, err)
        if args.command == "emulator":
            await serve_emulator_command(args.host, args.port, console=out)
            return 0  # pragma: no cover - serves until cancelled
        if args.command == "serve":
            await _serve_command(args, out)
            return 0  # pragma: no cover - serves until cancelled
        return await _demo_command(args, out)
    except (AgentError, OSError, BaseExceptionGroup) as exc:
        expected = _expected(exc)
        if expected is None:
            raise
        _line(err, _error_line(expected))
        return _EXIT_ERROR


def _expected(exc: BaseException) -> Exception | None:
    """The error to report in one line, or ``None`` if ``exc`` is a bug (Rule 2)."""
    if isinstance(exc, BaseExceptionGroup):
        found = leaves(exc)
        errors = [leaf for leaf in found if isinstance(leaf, AgentError | OSError)]
        return errors[0] if errors and len(errors) == len(found) else None
    if isinstance(exc, AgentError | OSError):
        return exc
    return None


def _error_line(exc: Exception) -> str:
    message = " ".join(str(exc).split()) or "no details"
    for kind, hint in _HINTS:
        if isinstance(exc, kind):
            message += hint
            break
    return f"error: {type(exc).__name__}: {message}"


# --- run -----------------------------------------------------------------------------


async def _run_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    key = os.environ.get("OPENROUTER_API_KEY", "").strip() or None
    retry = RetryConfig(max_retries=args.retries, max_interval=10.0, max_elapsed_time=60.0)
    stop_when = None if args.max_turns is None else step_count_is(args.max_turns)
    tools = demo_tools(steps=3, delay=0.1) if args.tools else []
    async with contextlib.AsyncExitStack() as stack:
        base_url: str | None = args.base_url
        model: str = args.model or REMOTE_MODEL
        if key is None and base_url is None:
            server = await stack.enter_async_context(open_emulator())
            _line(err, f"no OPENROUTER_API_KEY: using the embedded emulator at {server.base_url}")
            key, base_url, model = server.inference_key, server.base_url, args.model or DEMO_MODEL
        client = await stack.enter_async_context(
            OpenRouter(api_key=key, base_url=base_url, retry=retry)
        )
        result = client.call_model(model=model, input=args.prompt, tools=tools, stop_when=stop_when)
        started = time.perf_counter()
        transcript = _Transcript(out)
        try:
            async with result.get_full_responses_stream() as stream:
                async for event in stream:
                    transcript.feed(event)
        finally:
            transcript.end_line()
        usage = await result.get_usage()
        _line(out, transcript.usage_line(usage, time.perf_counter() - started), style="dim")
    return 0


class _Transcript:
    """Renders one run's events as a compact transcript: text, reasoning, tool traffic.

    Text deltas are written as they arrive; reasoning is dimmed; each tool call,
    progress event and result gets one clipped line of its own.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._mode = ""  # what the open line holds: "", "text" or "reasoning"
        self._names: dict[str, str] = {}
        utf = console.encoding.lower().startswith("utf")
        self._call, self._progress, self._result, self._dot = (
            ("→", "⋯", "←", "·") if utf else ("->", "..", "<-", "|")
        )

    def feed(self, event: object) -> None:
        """Show one event of the run's full stream (others are ignored)."""
        if isinstance(event, OutputTextDelta):
            self._write(event.delta, "text", None)
        elif isinstance(event, ReasoningTextDelta | ReasoningSummaryTextDelta):
            self._write(event.delta, "reasoning", "dim italic")
        elif isinstance(event, OutputItemDone) and isinstance(event.item, FunctionCallItem):
            item = event.item
            self._names[item.call_id] = item.name
            self._note(f"{self._call} {item.name} {item.arguments}", "cyan")
        elif isinstance(event, ToolPreliminaryResult):
            name = self._names.get(event.tool_call_id, event.tool_call_id)
            self._note(f"  {self._progress} {name} {_json(event.result)}", "dim")
        elif isinstance(event, ToolResult):
            name = self._names.get(event.tool_call_id, event.tool_call_id)
            self._note(f"{self._result} {name} {_json(event.result)}", "green")
        elif isinstance(event, TurnEnd):
            self.end_line()

    def end_line(self) -> None:
        """End the line being written, if any."""
        if self._mode:
            self._console.print()
            self._mode = ""

    def usage_line(self, usage: RunUsage, seconds: float) -> str:
        """The closing line: model calls, tokens, cost and time."""
        dot = self._dot
        calls = usage.model_calls
        cost = "cost n/a" if usage.cost is None else f"${usage.cost:.6f}"
        return (
            f"{calls} model call{'s' if calls != 1 else ''} {dot} "
            f"{usage.total_tokens} tokens ({usage.input_tokens} in, {usage.output_tokens} out) "
            f"{dot} {cost} {dot} {seconds:.2f}s"
        )

    def _write(self, delta: str, mode: str, style: str | None) -> None:
        if not delta:
            return
        if self._mode != mode:
            self.end_line()
            self._mode = mode
        self._console.print(
            Text(delta, style=style or ""), end="", markup=False, highlight=False, soft_wrap=True
        )
        if delta.endswith("\n"):
            self._mode = ""

    def _note(self, text: str, style: str) -> None:
        self.end_line()
        _line(self._console, _clip(text, self._console.width), style=style)


def _clip(text: str, width: int) -> str:
    width = max(20, width)
    return text if len(text) <= width else text[: width - 3] + "..."


def _json(value: object) -> str:
    try:
        return _ENCODER.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)


# --- emulator ----------------------------------------------------------------------------


async def serve_emulator_command(
    host: str,
    port: int,
    *,
    console: Console,
    task_status: trio.TaskStatus[EmulatorServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the emulator until cancelled, printing its URLs and keys once it listens.

    Startable: ``server = await nursery.start(serve_emulator_command, host, 0, ...)``.
    The keys printed are the emulator's own loopback keys, never ``OPENROUTER_API_KEY``.

    Raises:
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    async with trio.open_nursery() as nursery:
        server: EmulatorServer = await nursery.start(
            functools.partial(serve_emulator, host, port, emulator=Emulator())
        )
        models = ", ".join(BUILTIN_MODELS)
        for text in (
            f"OpenRouter emulator listening on {server.url}",
            f"  base URL        {server.base_url}",
            f"  inference key   {server.inference_key}",
            f"  management key  {server.management_key}",
            f"  models          {models}",
            "Try:",
            f"  OPENROUTER_BASE_URL={server.base_url} \\",
            f"  OPENROUTER_API_KEY={server.inference_key} \\",
            '  openrouter-trio run --tools "What is the weather?"',
            "Press Ctrl-C to stop.",
        ):
            _line(console, text)
        task_status.started(server)


# --- demo ----------------------------------------------------------------------------------


class DemoOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What ``demo`` runs (the command-line options, checked by the parser).

    Attributes:
        sessions: how many agent sessions.
        concurrency: how many run at once (the session pool's limit).
        events_per_session: progress events ``scan_table`` reports per session.
        step_delay: seconds before each progress event (0: flat out).
        fail_every: every Nth session fails mid-stream (0: none).
        model: the emulator model; it must call the tools it is given.
    """

    sessions: int = 24
    concurrency: int = 8
    events_per_session: int = 20
    step_delay: float = 0.02
    fail_every: int = 0
    model: str = DEMO_MODEL


class DemoSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The figures of one ``demo`` (also its ``--json`` output).

    Attributes:
        sessions: sessions started.
        ok: sessions that ended normally.
        failed: sessions that ended with an error (or were cancelled).
        turns: model calls over every session.
        tool_calls: tool results over every session.
        progress_events: ``tool.preliminary_result`` events over every session.
        input_tokens, output_tokens, total_tokens: usage over every session.
        cost: cost in USD over every session.
        events: events read from the sessions' logs (every event of every run).
        wall_time: seconds from the first session's start to the last one's end.
        events_per_second: ``events / wall_time``.
    """

    sessions: int
    ok: int
    failed: int
    turns: int
    tool_calls: int
    progress_events: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: float
    events: int
    wall_time: float
    events_per_second: float


class _SessionTally:
    """What the demo has seen of one session so far (written by its watcher only)."""

    __slots__ = (
        "error",
        "events",
        "index",
        "label",
        "progress",
        "seconds",
        "tool_calls",
        "turns",
        "usage",
    )

    def __init__(self, index: int, label: str) -> None:
        self.index = index
        self.label = label
        self.turns = 0
        self.tool_calls = 0
        self.progress = 0
        self.events = 0
        self.seconds = 0.0
        self.usage = RunUsage()
        self.error: Exception | None = None


class _View(Protocol):
    def follow(self, pool: SessionPool) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def turn(self, tally: _SessionTally, turn_number: int) -> None: ...
    def progress(self, tally: _SessionTally) -> None: ...
    def finished(self, tally: _SessionTally) -> None: ...


class _QuietView:
    """Shows nothing (``--json``)."""

    def follow(self, pool: SessionPool) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def turn(self, tally: _SessionTally, turn_number: int) -> None:
        pass

    def progress(self, tally: _SessionTally) -> None:
        pass

    def finished(self, tally: _SessionTally) -> None:
        pass


class _LogView(_QuietView):
    """One plain line per finished session: for logs, pipes and dumb terminals."""

    def __init__(self, console: Console) -> None:
        self._console = console

    def finished(self, tally: _SessionTally) -> None:
        _line(self._console, _session_line(tally))


class _LiveView(_QuietView):
    """Live rich progress: a bar for all sessions, and one per running session (up to 8).

    Repainted by :meth:`refresh_forever` (a trio task), never by rich's thread;
    each repaint also reads the pool's counts (O(running sessions)). Fits 80
    columns. A failed session also gets a line above the bars.
    """

    def __init__(self, console: Console, sessions: int, steps: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", markup=False, table_column=Column(width=10)),
            BarColumn(bar_width=26),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}", markup=False, table_column=Column(width=20)),
            TextColumn("{task.elapsed:5.1f}s", markup=False),
            console=console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._overall = self._progress.add_task("sessions", total=sessions, note="queued")
        self._steps = steps
        self._rows: dict[int, TaskID] = {}
        self._pool: SessionPool | None = None

    def follow(self, pool: SessionPool) -> None:
        """Show the running and failed counts of ``pool`` on the overall bar."""
        self._pool = pool

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._repaint()
        self._progress.stop()

    async def refresh_forever(self) -> None:
        """Repaint every ``REFRESH_INTERVAL`` seconds until cancelled."""
        while True:
            self._repaint()
            await trio.sleep(REFRESH_INTERVAL)

    def turn(self, tally: _SessionTally, turn_number: int) -> None:
        row = self._rows.get(tally.index)
        note = f"model {turn_number}"
        if row is not None:
            self._progress.update(row, note=note)
        elif turn_number == 0 and len(self._rows) < MAX_SESSION_ROWS:
            self._rows[tally.index] = self._progress.add_task(
                f"  {tally.label}", total=self._steps, note=note
            )

    def progress(self, tally: _SessionTally) -> None:
        row = self._rows.get(tally.index)
        if row is not None:
            self._progress.update(row, completed=tally.progress, note="tools")

    def finished(self, tally: _SessionTally) -> None:
        row = self._rows.pop(tally.index, None)
        if row is not None:
            self._progress.remove_task(row)
        if tally.error is not None:
            console = self._progress.console
            _line(console, _clip(_session_line(tally), console.width), style="red")
        self._progress.advance(self._overall)

    def _repaint(self) -> None:
        if self._pool is not None:
            stats = self._pool.statistics()
            note = f"{stats.running} running"
            if stats.failed:
                note += f", {stats.failed} failed"
            self._progress.update(self._overall, note=note)
        self._progress.refresh()


def _session_line(tally: _SessionTally) -> str:
    if tally.error is not None:
        return f"{tally.label} FAILED  {_error_line(tally.error).removeprefix('error: ')}"
    return (
        f"{tally.label} ok  turns {tally.turns}  tool calls {tally.tool_calls}  "
        f"progress {tally.progress}  events {tally.events}  {tally.seconds:.2f}s"
    )


def _demo_prompt(index: int) -> str:
    return f"Session {index}: what is the weather, and how many rows does table {index} have?"


async def _watch(result: ModelResult, tally: _SessionTally, view: _View) -> None:
    """Follow one session's full event stream to its end, updating its tally and the view.

    The demo's hot loop: an identity test on the event's type, and a counter bump,
    per event; the view is only called for turn starts and progress events.
    """
    started = 0.0
    events = 0
    try:
        async with result.get_full_responses_stream() as stream:
            async for event in stream:
                events += 1
                kind = type(event)
                if kind is ToolPreliminaryResult:
                    tally.progress += 1
                    view.progress(tally)
                elif kind is ToolResult:
                    tally.tool_calls += 1
                elif kind is TurnStart:
                    if not tally.turns:
                        started = time.perf_counter()  # admitted by the pool
                    tally.turns += 1
                    view.turn(tally, event.turn_number)
    except AgentError as exc:
        tally.error = exc
    finally:
        tally.events = events
        tally.seconds = time.perf_counter() - started if started else 0.0
    tally.usage = await result.get_usage()
    view.finished(tally)


async def run_demo(options: DemoOptions, *, console: Console, quiet: bool = False) -> DemoSummary:
    """Run ``options.sessions`` agent sessions on the embedded emulator and sum them up.

    Starts an emulator on a free loopback port, an ``OpenRouter`` client on it and a
    session pool of ``options.concurrency``; every session uses ``options.model``
    with the tools of :func:`demo_tools`, so it runs a real tool loop (model call,
    both tools in parallel, follow-up call). Progress is shown live when ``console``
    is a terminal, as one line per finished session otherwise, and not at all when
    ``quiet``. A failing session never affects the others. A checkpoint; cancelling
    it cancels every session and stops the emulator.

    Returns:
        The figures of the run (printing them is the caller's business).
    """
    tools = demo_tools(options.events_per_session, options.step_delay)
    digits = len(str(options.sessions))
    tallies = [_SessionTally(i, f"s{i:0{digits}d}") for i in range(1, options.sessions + 1)]
    view: _View
    live: _LiveView | None = None
    if quiet:
        view = _QuietView()
    elif console.is_terminal and not console.is_dumb_terminal:
        view = live = _LiveView(console, options.sessions, options.events_per_session)
    else:
        view = _LogView(console)
    async with open_emulator(emulator=Emulator(seed="openrouter-trio-demo")) as server:
        if not quiet:
            for text in (
                f"embedded emulator at {server.base_url}",
                f"{options.sessions} sessions, {options.concurrency} at a time, on {options.model}",
                f"tools get_weather and scan_table ({options.events_per_session} progress events)",
            ):
                _line(console, text)
        started = time.perf_counter()
        async with trio.open_nursery() as painter:
            if live is not None:
                painter.start_soon(live.refresh_forever)
            view.start()
            try:
                async with (
                    OpenRouter(api_key=server.inference_key, base_url=server.base_url) as client,
                    open_session_pool(
                        client, max_concurrent=options.concurrency, update_interval=None
                    ) as pool,
                    trio.open_nursery() as watchers,
                ):
                    view.follow(pool)
                    for tally in tallies:
                        failing = bool(options.fail_every) and tally.index % options.fail_every == 0
                        result = pool.start(
                            model=f"{options.model}:fault={DEMO_FAULT}"
                            if failing
                            else options.model,
                            input=_demo_prompt(tally.index),
                            tools=tools,
                        )
                        watchers.start_soon(_watch, result, tally, view, name=tally.label)
            finally:
                painter.cancel_scope.cancel()
                view.stop()
        wall_time = time.perf_counter() - started
    stats = pool.statistics()
    usages = [t.usage for t in tallies]
    events = sum(t.events for t in tallies)
    return DemoSummary(
        sessions=options.sessions,
        ok=stats.done,
        failed=stats.failed + stats.cancelled,
        turns=sum(t.turns for t in tallies),
        tool_calls=sum(t.tool_calls for t in tallies),
        progress_events=sum(t.progress for t in tallies),
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        total_tokens=stats.total_tokens,
        cost=round(stats.cost, 9),
        events=events,
        wall_time=wall_time,
        events_per_second=events / wall_time if wall_time > 0 else 0.0,
    )


def summary_table(summary: DemoSummary) -> Table:
    """The summary of a demo as a two-column rich table (a row per figure)."""
    table = Table(
        Column("figure", style="bold"),
        Column("value", justify="right"),
        title="demo summary",
        show_header=False,
        box=box.ROUNDED,
    )
    rows = (
        ("sessions", str(summary.sessions)),
        ("ok", str(summary.ok)),
        ("failed", str(summary.failed)),
        ("turns", str(summary.turns)),
        ("tool calls", str(summary.tool_calls)),
        ("progress events", str(summary.progress_events)),
        (
            "tokens",
            f"{summary.total_tokens} ({summary.input_tokens} in, {summary.output_tokens} out)",
        ),
        ("cost", f"${summary.cost:.6f}"),
        ("wall time", f"{summary.wall_time:.2f}s"),
        ("events", str(summary.events)),
        ("events/s", f"{summary.events_per_second:.0f}"),
    )
    for name, value in rows:
        table.add_row(name, value, style="red" if name == "failed" and summary.failed else None)
    return table


async def _demo_command(args: argparse.Namespace, out: Console) -> int:
    options = DemoOptions(
        sessions=args.sessions,
        concurrency=args.concurrency,
        events_per_session=args.events_per_session,
        step_delay=args.step_delay,
        fail_every=args.fail_every,
    )
    summary = await run_demo(options, console=out, quiet=args.json)
    if args.json:
        _line(out, _ENCODER.encode(summary).decode())
    else:
        out.print(summary_table(summary))
    return 0 if summary.failed == 0 else _EXIT_ERROR


async def _serve_command(args: argparse.Namespace, out: Console) -> None:
    """``serve``: run sessions and the dashboard until cancelled (Ctrl-C)."""
    from runtime._cli.serve import ServeOptions, serve_sessions

    options = ServeOptions(
        host=args.host,
        port=args.port,
        token=args.token,
        sessions=args.sessions,
        concurrency=args.concurrency,
        interval=args.interval,
    )
    async with trio.open_nursery() as nursery:
        served = await nursery.start(serve_sessions, options, demo_tools(20, 0.1))
        _line(out, f"sessions on the {served.backend}")
        _line(out, f"websocket feed on port {served.address.feed_port}")
        _line(out, f"open the dashboard: {served.open_url}")
