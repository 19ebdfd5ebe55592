"""Sessions/s with 1, 2, 4 worker processes on Redis, against the emulator on loopback.

Starts a throwaway ``redis-server`` (``runtime._redis.server``) and the emulator as
its own process (``openrouter-trio emulator --port 0``), then for each W in
``--workers``: W ``openrouter-trio worker`` processes (``--concurrency`` runs each,
the demo tools), ``--sessions`` runs of ``emulator/tool-caller`` submitted at once
(each a tool loop: model call, ``get_weather`` and ``scan_table`` in parallel, a
follow-up call; every event written to the run's Redis stream), timed from the
first submit until the registry reports every run finished. The same run first
measures the baseline: the same sessions in one process through a ``SessionPool``
(no Redis, no durability).

Prints one JSON line per measurement: ``sessions_per_s``, ``failed``, the CPU
time per session of the workers (all of them, from ``/proc``), of the emulator and
of ``redis-server`` (``*_cpu_ms_per_session``),
``ratio_to_in_process`` (W workers over the one-process pool) and ``efficiency``
(W workers over W times one worker: 1.0 is linear scaling).

Two regimes, chosen by ``--token-delay``:

* ``0`` (CPU-bound): the emulator answers at once, so every process competes for
  the machine's cores; on a 2-core machine W workers cannot go past 2 cores'
  worth, and the emulator (one process) is the ceiling.
* ``> 0`` (latency-bound, as real model calls are): the emulator streams each
  token after that many seconds (its ``slow`` fault), each worker runs at most
  ``--concurrency`` sessions at once, and the pool baseline gets the same cap.
  Here capacity is what a worker adds, and the figures show whether the queue,
  the leases and the Redis writes let W workers give W times the sessions/s. First, one line
``stream_write_and_follow``: one run's log (``--stream-events`` deltas appended
32 at a time, as a model-stream read appends them) written to Redis by the sink
while a reader follows the stream (``open_run_reader``), events/s end to end.

Run: ``.venv/bin/python bench/bench_scale_out.py --sessions 300 --workers 1,2,4``.
Needs ``redis-server`` and the ``redis`` extra (``make test`` installs both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import trio

from runtime._cli.tools import demo_tools
from runtime._client.client import OpenRouter
from runtime._client.pool import open_session_pool
from runtime._redis.server import open_redis_server
from runtime._redis.store import open_redis_store
from runtime._redis.work import submit_run
from runtime._run.registry import RegistryUpdate

MODEL = "emulator/tool-caller"
FINISHED = {"done", "failed", "cancelled"}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _read_until(stream: Any, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        chunk = await stream.receive_some()
        if not chunk:
            raise RuntimeError(f"the child process exited: {seen.decode(errors='replace')}")
        seen += chunk
    return seen


async def _in_process(
    base_url: str, key: str, sessions: int, concurrency: int, model: str
) -> dict[str, Any]:
    tools = demo_tools(5, 0.0)
    async with (
        OpenRouter(key, base_url=base_url) as client,
        open_session_pool(client, max_concurrent=concurrency, update_interval=None) as pool,
    ):
        started = time.perf_counter()
        for i in range(sessions):
            pool.start(model=model, input=f"Session {i}: weather and rows?", tools=tools)
        await pool.wait_idle()
        elapsed = time.perf_counter() - started
    stats = pool.statistics()
    return {"sessions_per_s": sessions / elapsed, "failed": stats.failed + stats.cancelled}


async def _workers(
    redis_url: str,
    base_url: str,
    key: str,
    workers: int,
    sessions: int,
    concurrency: int,
    model: str,
    others: dict[str, int],
) -> dict[str, Any]:
    prefix = f"bench{workers}x{os.getpid()}"
    env = {**os.environ, "OPENROUTER_API_KEY": key}
    processes = []
    try:
        for i in range(workers):
            argv = [
                sys.executable, "-m", "runtime", "worker", "--redis", redis_url,
                "--prefix", prefix, "--name", f"w{i}", "--base-url", base_url,
                "--concurrency", str(concurrency), "--tools", "demo",
            ]  # fmt: skip
            process = await trio.lowlevel.open_process(
                argv, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
            processes.append(process)
            await _read_until(process.stdout, b"ready")
        async with open_redis_store(redis_url, prefix=prefix) as store:
            cpu_before = {name: _cpu_seconds(pid) for name, pid in others.items()}
            workers_before = sum(_cpu_seconds(p.pid) for p in processes)  # after start-up
            started = time.perf_counter()
            for i in range(sessions):
                await submit_run(
                    store,
                    model=model,
                    input=f"Session {i}: weather and rows?",
                    tools=["get_weather", "scan_table"],
                )
            finished: dict[str, str] = {}
            last = "0-0"
            while len(finished) < sessions:
                reply = await store.client.xread({store.keys.registry: last}, block=5000)
                for entry in next(iter(reply.values())) if reply else ():
                    last = (
                        bytes(entry.identifier).decode()
                        if isinstance(entry.identifier, bytes)
                        else entry.identifier
                    )
                    update = msgspec.json.decode(entry.field_values[b"u"], type=RegistryUpdate)
                    if update.session.status in FINISHED:
                        finished[update.session.id] = update.session.status
            elapsed = time.perf_counter() - started
            worker_cpu = sum(_cpu_seconds(p.pid) for p in processes) - workers_before
            cpu = {name: _cpu_seconds(pid) - cpu_before[name] for name, pid in others.items()}
    finally:
        for process in processes:
            process.terminate()
            await process.wait()
    failed = sum(status != "done" for status in finished.values())
    per_session = {
        f"{name}_cpu_ms_per_session": round(1000 * c / sessions, 2) for name, c in cpu.items()
    }
    return {
        "sessions_per_s": sessions / elapsed,
        "failed": failed,
        "worker_cpu_ms_per_session": round(1000 * worker_cpu / sessions, 2),
        **per_session,
    }


async def _stream_rates(redis_url: str, events: int, batch: int) -> dict[str, Any]:
    """One run's log written to Redis by the sink while a reader follows it (one process)."""
    from runtime._protocol.events import OutputTextDelta
    from runtime._redis.store import open_run_reader
    from runtime._run.eventlog import EventLog

    log: EventLog[Any] = EventLog()
    delta = OutputTextDelta(item_id="msg_1", delta="token ", output_index=0, content_index=0)
    got = 0
    async with open_redis_store(redis_url, prefix=f"sink{os.getpid()}") as store:
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.sink, "r", log.cursor(0), lambda: "done")
            async with open_run_reader(store, "r") as cursor:
                for _ in range(0, events, batch):
                    log.extend([delta] * batch)  # one read of the model stream
                    await trio.lowlevel.checkpoint()
                log.close()
                async for _ in cursor:
                    got += 1
        elapsed = time.perf_counter() - started
    return {"events": got, "batch": batch, "events_per_s": got / elapsed}


async def main(args: argparse.Namespace) -> None:
    env = {**os.environ}
    with tempfile.TemporaryDirectory() as tmp:
        async with open_redis_server(Path(tmp)) as redis:
            if args.stream_events:
                rates = await _stream_rates(redis.url, args.stream_events, 32)
                print(json.dumps({"mode": "stream_write_and_follow", **rates}), flush=True)
            emulator = await trio.lowlevel.open_process(
                [sys.executable, "-m", "runtime", "emulator", "--port", "0"],
                env=env,
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            try:
                banner = (await _read_until(emulator.stdout, b"management key")).decode()
                lines = banner.splitlines()
                base_url = next(ln.split()[-1] for ln in lines if "base URL" in ln)
                key = next(ln.split()[-1] for ln in lines if "inference key" in ln)
                model = MODEL
                if args.token_delay:
                    model = f"{MODEL}:fault=slow={args.token_delay}"
                base = await _in_process(base_url, key, args.sessions, args.concurrency, model)
                regime = {"token_delay": args.token_delay, "concurrency": args.concurrency}
                print(
                    json.dumps(
                        {"mode": "in_process_pool", "sessions": args.sessions, **regime, **base}
                    ),
                    flush=True,
                )
                one: float | None = None
                for workers in args.workers:
                    sessions = args.sessions * (workers if args.scale_sessions else 1)
                    with trio.fail_after(900):  # a stuck run fails the benchmark
                        others = {"emulator": emulator.pid, "redis": redis.pid}
                        figures = await _workers(
                            redis.url, base_url, key, workers, sessions, args.concurrency, model,
                            others,
                        )  # fmt: skip
                    rate = figures["sessions_per_s"]
                    if workers == 1:
                        one = rate
                    print(
                        json.dumps(
                            {
                                "mode": "redis_workers",
                                "workers": workers,
                                "sessions": sessions,
                                **regime,
                                **figures,
                                "ratio_to_in_process": round(rate / base["sessions_per_s"], 3),
                                "efficiency": None
                                if one is None
                                else round(rate / workers / one, 3),
                            }
                        ),
                        flush=True,
                    )
            finally:
                emulator.terminate()
                await emulator.wait()


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument(
        "--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4]
    )
    parser.add_argument("--concurrency", type=int, default=32, help="runs per worker (32)")
    parser.add_argument(
        "--token-delay",
        type=float,
        default=0.0,
        help="seconds between streamed tokens (0: CPU-bound; > 0: latency-bound runs)",
    )
    parser.add_argument(
        "--scale-sessions",
        action="store_true",
        help="submit --sessions per worker (W workers get W times the sessions)",
    )
    parser.add_argument(
        "--stream-events",
        type=int,
        default=100_000,
        help="events of the one-run write-and-follow measurement (0: skip)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    trio.run(main, _parse())
