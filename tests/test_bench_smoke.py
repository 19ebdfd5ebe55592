"""Every benchmark in ``bench/`` still runs: each once with tiny N, as a subprocess.

These check that the scripts start, finish and print well-formed JSON lines
with the fields their readers (``bench/run_all.py``, ``docs/performance.md``)
rely on; they do not time anything. Each subprocess has a timeout. The
TypeScript SDK client runs only if ``bench/.scratch/ts`` already holds it (no
network installs from a test).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime._http.chunked import _ChunkedDecoder
from runtime._protocol.events import (
    FunctionCallArgumentsDelta,
    OutputTextDelta,
    ResponseCompleted,
    decode_event,
)
from runtime._protocol.sse import SSEDecoder
from runtime._redis.server import RedisServerMissing, find_redis_server

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
TS_INSTALLED = (BENCH / ".scratch" / "ts" / "node_modules" / "@openrouter" / "sdk").is_dir()

pytestmark = pytest.mark.slow


def run_bench(script: str, *args: str, timeout: float = 240) -> list[dict[str, Any]]:
    """Run ``bench/<script>`` with ``args``; its JSON lines (fails on a non-zero exit)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout[-2000:]
    return lines


def test_bench_sse_decode_runs() -> None:
    lines = run_bench("bench_sse_decode.py", "--n", "500", "--repeat", "1", "--big-kib", "16")
    assert {line["measure"] for line in lines} >= {"sse", "sse+event"}
    assert all(line["mb_per_s"] > 0 for line in lines)


def test_bench_transport_runs() -> None:
    lines = run_bench(
        "bench_transport.py", "--chunks", "300", "--loopback-chunks", "100", "--repeat", "1"
    )
    assert {line["case"] for line in lines} == {"mock", "loopback"}


def test_bench_fanout_runs() -> None:
    lines = run_bench("bench_fanout.py", "--events", "500", "--consumers", "1,3", "--repeat", "1")
    assert [line["consumers"] for line in lines if line["impl"] == "eventlog"] == [1, 3]


def test_bench_throughput_runs_every_client() -> None:
    clients = "runtime.typed_stream,runtime.get_full_responses_stream,httpx+msgspec"
    clients += ",httpx+msgspec/h11,httpx.chunks,openai-python"
    if TS_INSTALLED:
        clients += ",ts-sdk"
    lines = run_bench(
        "bench_throughput.py",
        "--n", "300", "--peer-n", "50", "--repeat", "1",
        "--framings", "event", "--clients", clients,
    )  # fmt: skip
    measured = [line for line in lines if "events_per_s" in line and "ratio" not in line]
    names = {(line["scenario"], line["client"]) for line in measured}
    assert ("text", "runtime.get_text_stream") in names
    assert ("tool", "runtime.get_tool_stream") in names
    assert ("text", "openai-python") in names
    assert ("text", "ts-sdk") in names or not TS_INSTALLED
    for line in measured:
        assert line["events_per_s"] > 0
        assert line["maxrss_mib"] > 0
    assert any(line.get("ratio") == "vs_floor" for line in lines)


def test_bench_throughput_runs_the_large_framing() -> None:
    lines = run_bench(
        "bench_throughput.py",
        "--n", "300", "--repeat", "1", "--scenarios", "text", "--framings", "large",
        "--clients", "runtime.typed_stream,httpx+msgspec",
    )  # fmt: skip
    assert {line["framing"] for line in lines} == {"large"}


def test_bench_retention_runs_each_policy_in_its_own_process() -> None:
    lines = run_bench("bench_retention.py", "--quick")
    assert {line["policy"] for line in lines} == {"keep_all", "trim_behind_slowest", "ring"}
    assert {line["slow"] for line in lines} == {"quarter-rate", "lag-1000"}
    for line in lines:
        assert line["slow_received"] + line["slow_missed"] == line["events"]
        assert line["retained_peak"] <= line["events"]


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("bench_tool_loop.py", ["--runs", "3", "--repeat", "1"]),
        ("bench_sessions.py", ["--sessions", "5"]),
        ("bench_feed.py", ["--clients", "1", "--sessions", "1", "--events", "50"]),
        ("bench_schemas.py", ["--n", "50", "--repeat", "1"]),
    ],
)
def test_other_benchmarks_run(script: str, args: list[str]) -> None:
    if not (BENCH / script).exists():  # pragma: no cover - written by another engineer
        pytest.skip(f"{script} does not exist yet")
    assert run_bench(script, *args)


def test_bench_feed_scale_runs_with_one_and_two_feed_processes() -> None:
    try:
        find_redis_server()
    except RedisServerMissing as exc:
        pytest.skip(f"needs a real Redis: {exc}")
    if not sys.platform.startswith("linux"):
        pytest.skip("SO_REUSEPORT spreads connections on Linux only")
    lines = run_bench("bench_feed_scale.py", "--quick")
    measured = [line for line in lines if "ratio" not in line]
    assert [line["processes"] for line in measured] == [1, 2]
    for line in measured:
        assert line["dropped"] == 0
        assert line["frames_per_s"] > 0
        assert line["p99_ms"] is not None
        assert len(line["cpu_s_per_process"]) == line["processes"]
    assert [line["ratio"] for line in lines if "ratio" in line] == ["vs_1_process"]


def test_run_all_runs_a_subset_and_prints_summaries() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--quick", "--only", "sse_decode,retention"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["suite"] == "machine"
    assert {line["suite"] for line in lines[1:]} == {"sse_decode", "retention"}
    assert "Retention: peak RSS" in done.stderr


def test_loopback_server_bodies_are_the_real_event_sequence() -> None:
    """The server's bodies decode, event by event, with the runtime's own decoders."""
    spec = importlib.util.spec_from_file_location("loopback_server", BENCH / "loopback_server.py")
    assert spec is not None
    assert spec.loader is not None
    loopback_server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loopback_server)

    for scenario, delta_type in (("text", OutputTextDelta), ("tool", FunctionCallArgumentsDelta)):
        for framing in ("large", "event"):
            body = loopback_server.frame(loopback_server.build_events(scenario, 50), framing)
            decoder = _ChunkedDecoder()
            payload = decoder.feed(body)
            assert decoder.done
            events = [
                decode_event(sse.data) for sse in SSEDecoder().feed(payload) if not sse.is_done
            ]
            assert sum(type(event) is delta_type for event in events) == 50
            assert type(events[-1]) is ResponseCompleted
            assert [getattr(e, "sequence_number", None) for e in events] == list(range(len(events)))
