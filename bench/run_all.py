"""Run every benchmark in ``bench/`` with one command; JSON lines out, summary tables at the end.

Each benchmark script runs as its own subprocess (``sys.executable``), in the
order below, with the arguments of the chosen size (``--quick``: tiny N, one
run each; the default: the sizes ``docs/performance.md`` reports). Scripts that
do not exist yet are skipped with a note. Every JSON line a script prints is
copied to stdout as it arrives, tagged with ``"suite": <name>``; the first
line describes the machine. When everything has run, summary tables (rich)
are printed on stderr, so ``run_all.py > results.jsonl`` keeps stdout pure
JSON, and the script exits non-zero if any benchmark failed.

Run: ``make bench`` or ``.venv/bin/python bench/run_all.py [--quick] [--only a,b]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from collections.abc import Callable

BENCH: Final = Path(__file__).resolve().parent

_FEED_SCALE: Final = [
    "--processes", "1,2,4", "--clients", "50", "--sessions", "4", "--events", "3000",
    "--rate", "1000",
]  # fmt: skip

# name -> (script, full-size arguments, quick arguments)
SUITES: Final[dict[str, tuple[str, list[str], list[str]]]] = {
    "sse_decode": (
        "bench_sse_decode.py",
        ["--n", "200000", "--repeat", "5"],
        ["--n", "2000", "--repeat", "1", "--big-kib", "64"],
    ),
    "transport": (
        "bench_transport.py",
        ["--chunks", "200000", "--loopback-chunks", "50000", "--repeat", "3"],
        ["--chunks", "2000", "--loopback-chunks", "500", "--repeat", "1"],
    ),
    "throughput": ("bench_throughput.py", ["--n", "200000", "--peer-n", "20000"], ["--quick"]),
    "fanout": (
        "bench_fanout.py",
        ["--events", "200000", "--consumers", "1,10,100,1000"],
        ["--events", "2000", "--consumers", "1,10", "--repeat", "1"],
    ),
    "retention": ("bench_retention.py", [], ["--quick"]),
    "tool_loop": ("bench_tool_loop.py", ["--runs", "200"], ["--runs", "5", "--repeat", "1"]),
    "sessions": (
        "bench_sessions.py",
        ["--sessions", "100,1000,10000"],
        ["--sessions", "10"],
    ),
    "feed": (
        "bench_feed.py",
        ["--clients", "1,10,50", "--sessions", "4", "--events", "3000", "--rate", "600"],
        ["--clients", "1,2", "--sessions", "1", "--events", "200"],
    ),
    "feed_scale": (
        "bench_feed_scale.py",
        _FEED_SCALE,
        ["--quick"],
    ),
}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "suite": "machine",
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m": round(load[0], 2),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run_suite(name: str, args: list[str], timeout: float) -> tuple[list[dict[str, Any]], str]:
    """Run one benchmark script; echo and return its JSON lines, and an error (or '')."""
    script = BENCH / SUITES[name][0]
    command = [sys.executable, str(script), *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH.parent)]))}
    lines: list[dict[str, Any]] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        watchdog = threading.Timer(timeout, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            for raw in process.stdout:
                if not raw.startswith("{"):
                    continue
                try:
                    line = {"suite": name, **json.loads(raw)}
                except json.JSONDecodeError:
                    continue
                lines.append(line)
                print(json.dumps(line), flush=True)
            stderr = process.stderr.read() if process.stderr is not None else ""
            process.wait()
        finally:
            watchdog.cancel()
        if process.returncode != 0:
            return lines, f"exit status {process.returncode}: {stderr.strip()[-1500:]}"
    return lines, ""


# --------------------------------------------------------------------------- summaries


def _fmt(value: object, digits: int = 0) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:,.{digits}f}"
    return "" if value is None else str(value)


def throughput_tables(lines: list[dict[str, Any]]) -> list[Table]:
    tables: list[Table] = []
    measured = [line for line in lines if "events_per_s" in line and "ratio" not in line]
    ratios = {
        (line["client"], line["scenario"], line["framing"]): line
        for line in lines
        if line.get("ratio") == "vs_floor"
    }
    cases = sorted({(line["scenario"], line["framing"]) for line in measured})
    for scenario, framing in cases:
        table = Table(title=f"Stream throughput: {scenario} deltas, framing {framing!r}")
        for column in (
            "client",
            "N",
            "events/s",
            "events/CPU-s",
            "MB/s",
            "x floor",
            "peak RSS MiB",
        ):
            table.add_column(column, justify="left" if column == "client" else "right")
        for line in measured:
            if (line["scenario"], line["framing"]) != (scenario, framing):
                continue
            ratio = ratios.get((line["client"], scenario, framing))
            table.add_row(
                line["client"],
                _fmt(line["events"]),
                _fmt(line["events_per_s"]),
                _fmt(line["events_per_cpu_s"]),
                _fmt(line["mb_per_s"], 1),
                "1.00 (floor)"
                if line["client"] == "httpx+msgspec"
                else (_fmt(ratio["events_per_s"], 2) if ratio else ""),
                _fmt(line["maxrss_mib"], 1),
            )
        tables.append(table)
    targets = target_table(measured)
    if targets is not None:
        tables.append(targets)
    return tables


def target_table(measured: list[dict[str, Any]]) -> Table | None:
    """The issue's targets, checked against the same run's figures (text scenario)."""
    rate = {
        (line["client"], line["framing"]): float(line["events_per_s"])
        for line in measured
        if line["scenario"] == "text"
    }
    ours = "runtime.get_text_stream"
    checks: list[tuple[str, str, str, float]] = []
    for framing in ("large", "event"):
        if (ours, framing) not in rate:
            continue
        mine = rate[ours, framing]
        for peer, label, minimum in (
            ("httpx+msgspec", "x the httpx+msgspec floor", 0.8),
            ("ts-sdk", "x the TypeScript SDK", 4.0),
            ("openai-python", "x openai-python", 30.0),
        ):
            if (peer, framing) in rate:
                checks.append((framing, label, f"≥ {minimum:g}", mine / rate[peer, framing]))
        if framing == "event":
            checks.append((framing, "events/s", "≥ 200,000", mine))
            if ("httpx.chunks", framing) in rate:
                checks.append(
                    (
                        framing,
                        "x plain httpx chunk iteration",
                        "≥ 4",
                        mine / rate["httpx.chunks", framing],
                    )
                )
    if not checks:
        return None
    table = Table(title="Targets (runtime.get_text_stream, same run)")
    for column in ("framing", "measure", "target", "measured", ""):
        table.add_column(column)
    for framing, label, goal, value in checks:
        threshold = float(goal.split()[-1].replace(",", ""))
        shown = _fmt(value) if value > 1000 else _fmt(value, 2)
        table.add_row(framing, label, goal, shown, "✓" if value >= threshold else "✗")
    return table


def fanout_table(lines: list[dict[str, Any]]) -> Table:
    table = Table(title="Fan-out: K consumers of one log")
    for column in ("K", "N", "deliveries/s", "producer events/s", "max lag", "x channels"):
        table.add_column(column, justify="right")
    ratios = {line["consumers"]: line for line in lines if line.get("impl") == "ratio"}
    for line in lines:
        if line.get("impl") != "eventlog":
            continue
        ratio = ratios.get(line["consumers"], {})
        table.add_row(
            _fmt(line["consumers"]),
            _fmt(line["events"]),
            _fmt(line["deliveries_per_s"]),
            _fmt(line["producer_events_per_s"]),
            _fmt(line["max_consumer_lag"]),
            _fmt(ratio.get("deliveries_vs_baseline"), 2),
        )
    return table


def retention_table(lines: list[dict[str, Any]]) -> Table:
    table = Table(title="Retention: peak RSS of one run (fast + slow consumer, fresh process)")
    for column in ("slow consumer", "N", "policy", "run MiB", "peak RSS MiB", "retained", "missed"):
        table.add_column(column, justify="right")
    for line in lines:
        table.add_row(
            line.get("slow", ""),
            _fmt(line["events"]),
            line["policy"] + (f"({line['ring_capacity']})" if line.get("ring_capacity") else ""),
            _fmt(line["run_mib"], 1),
            _fmt(line["maxrss_mib"], 1),
            _fmt(line["retained_peak"]),
            _fmt(line["slow_missed"]),
        )
    return table


def feed_scale_table(lines: list[dict[str, Any]]) -> Table:
    table = Table(title="Feed processes behind one SO_REUSEPORT port (runs in Redis)")
    columns = ("P", "clients", "frames/s", "p50 ms", "p99 ms", "dropped", "CPU-s / 1k frames")
    for column in (*columns, "x P=1 frames/s", "x P=1 CPU / frame"):
        table.add_column(column, justify="right")
    ratios = {line["processes"]: line for line in lines if "ratio" in line}
    for line in lines:
        if "ratio" in line or "skipped" in line:
            continue
        ratio = ratios.get(line["processes"], {})
        table.add_row(
            _fmt(line["processes"]),
            _fmt(line["clients"]),
            _fmt(line["frames_per_s"]),
            _fmt(line["p50_ms"], 1),
            _fmt(line["p99_ms"], 1),
            _fmt(line["dropped"]),
            _fmt(line["feed_cpu_s_per_1000_frames"], 4),
            _fmt(ratio.get("frames_ratio"), 2),
            _fmt(ratio.get("cpu_per_1000_frames_ratio"), 2),
        )
    return table


def generic_table(name: str, lines: list[dict[str, Any]]) -> Table:
    """Any other benchmark: its lines' keys as columns."""
    keys: list[str] = []
    for line in lines:
        keys.extend(key for key in line if key not in keys and key not in ("suite", "bench"))
    table = Table(title=name)
    for key in keys:
        table.add_column(key, justify="right")
    for line in lines:
        table.add_row(
            *(_fmt(line.get(key), 2 if isinstance(line.get(key), float) else 0) for key in keys)
        )
    return table


def summarize(results: dict[str, list[dict[str, Any]]], failures: dict[str, str]) -> None:
    console = Console(stderr=True, width=160)
    builders: dict[str, Callable[[list[dict[str, Any]]], list[Table]]] = {
        "throughput": throughput_tables,
        "fanout": lambda lines: [fanout_table(lines)],
        "retention": lambda lines: [retention_table(lines)],
        "feed_scale": lambda lines: [feed_scale_table(lines)],
    }
    for name, lines in results.items():
        if not lines:
            continue
        try:
            tables = builders[name](lines) if name in builders else [generic_table(name, lines)]
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            console.print(f"[yellow]{name}: no summary ({exc!r}); see its JSON lines[/yellow]")
            continue
        for table in tables:
            console.print(table)
    for name, error in failures.items():
        console.print(f"[red]{name} failed: {error}[/red]")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny N: checks that all run")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {list(SUITES)}")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    args = parser.parse_args(argv)

    names = [n for n in args.only.split(",") if n] or list(SUITES)
    unknown = sorted(set(names) - set(SUITES))
    if unknown:
        parser.error(f"unknown benchmarks {unknown!r}; choose from {list(SUITES)!r}")
    print(json.dumps(machine()), flush=True)
    results: dict[str, list[dict[str, Any]]] = {}
    failures: dict[str, str] = {}
    for name in names:
        script, full, quick = SUITES[name]
        if not (BENCH / script).exists():
            print(json.dumps({"suite": name, "skipped": f"{script} does not exist"}), flush=True)
            continue
        lines, error = run_suite(name, quick if args.quick else full, args.timeout)
        results[name] = lines
        if error:
            failures[name] = error
    summarize(results, failures)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
