"""``openrouter-trio demo``: many agent sessions with tools on the embedded emulator.

Every session runs a real tool loop with the demo tools
(:mod:`runtime._cli.tools`) in one session pool; progress is shown live on a
terminal (repainted by a trio task, never by rich's thread), as one line per
finished session otherwise, and the run is summed up in a :class:`DemoSummary`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final, Protocol

import msgspec
import trio
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column, Table

from runtime._base.errors import AgentError
from runtime._cli.render import clip, error_line, print_line
from runtime._cli.tools import DEMO_MODEL, demo_tools
from runtime._client.client import OpenRouter
from runtime._client.pool import SessionPool, open_session_pool
from runtime._protocol.events import ToolPreliminaryResult, ToolResult, TurnStart
from runtime._run.status import RunUsage
from runtime.emulator._core import Emulator
from runtime.emulator._server import open_emulator

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from runtime._client.result import ModelResult

__all__ = ["DemoOptions", "DemoSummary", "run_demo", "summary_table"]

DEMO_FAULT: Final = "fail-after=3"
"""The emulator fault of ``demo --fail-every``: ``response.failed`` after three events."""


MAX_SESSION_ROWS: Final = 8
"""Running sessions shown with their own progress bar (the rest count in the total)."""


REFRESH_INTERVAL: Final = 0.1
"""Seconds between two repaints of the live display."""


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
        print_line(self._console, _session_line(tally))


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
            print_line(console, clip(_session_line(tally), console.width), style="red")
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
        return f"{tally.label} FAILED  {error_line(tally.error).removeprefix('error: ')}"
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
                print_line(console, text)
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
