"""Websocket feed scaling: 1, 2, 4 feed processes behind one SO_REUSEPORT port, runs in Redis.

Starts a throwaway ``redis-server`` (``runtime._redis.server``). For each P in
``--processes``: ``openrouter-trio serve --redis URL --workers P`` (a parent and
P child processes sharing one feed port); M clients (``--clients``) in
``--client-processes`` separate processes (``bench_feed.py``'s raw RFC 6455
client) connect to that one port, so the kernel spreads them over the P
processes, and follow K runs (``--sessions``); this process writes the runs to
Redis as workers do (``RedisStore.append``, ``--rate`` events/s per run in ticks
of ``--tick`` seconds, each event stamped with the time it was due; ``--rate 0``:
flat out), then ends them. A measurement ends when every client has seen every
run end. Each P uses fresh runs, listed in Redis before serve starts.

Prints one JSON line per P: ``frames_per_s`` (event frames received by all
clients / wall time from the first write to the last client done), ``p50_ms`` /
``p99_ms`` (due time to receipt), ``delivered`` / ``expected`` / ``dropped``,
``feed_cpu_s`` (user + system CPU of the P feed processes during the
measurement), ``feed_cpu_s_per_1000_frames`` and ``cpu_s_per_process`` (how
evenly the kernel spread the work); then per P > 1 a ``ratio`` line against
P = 1 of the same run: ``frames_ratio`` and ``cpu_per_1000_frames_ratio``. On a
machine with C cores, wall throughput cannot scale past C processes (clients,
Redis and the writer share them too): CPU per 1000 frames is the measure that
shows whether adding processes costs extra work per frame.

Run: ``.venv/bin/python bench/bench_feed_scale.py --processes 1,2,4 --clients 50
--sessions 4 --events 3000 --rate 1000`` (``--quick``: a tiny smoke run).
Needs ``redis-server`` and the ``redis`` extra (``make test`` installs both), and
Linux (SO_REUSEPORT spreading).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import trio

from runtime._agent.usage import RunUsage
from runtime._protocol.events import OutputTextDelta
from runtime._redis.server import RedisServerMissing, find_redis_server, open_redis_server
from runtime._redis.store import RedisStore, open_redis_store
from runtime._redis.work import publish_snapshot
from runtime._run.status import RunSnapshot

TOKEN: Final = "bench-token"  # the token bench_feed.py's client sends
CLIENT: Final = Path(__file__).with_name("bench_feed.py")
_BANNER: Final = re.compile(rb"feed on port (\d+), served by \d+ processes \(pids ([\d, ]+)\)")


class _Lines:
    """Line reader over a process's stdout."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = b""

    async def line(self) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        while b"\n" not in self.buffer:
            chunk = await stdout.receive_some(1 << 16)
            if not chunk:
                raise SystemExit(f"a bench process died: {self.buffer[-500:]!r}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


async def _stop(process: trio.Process, sig: int = signal.SIGTERM) -> None:
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(sig)
            with trio.move_on_after(15):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(hist: dict[int, int], q: float) -> float | None:
    total = sum(hist.values())
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= q * total:
            return round(bucket / 10, 1)  # buckets of 0.1 ms
    return None


def _delta(due: float) -> OutputTextDelta:
    return OutputTextDelta(output_index=0, item_id="msg_bench", content_index=0, delta=f"{due:.9f}")


async def _write(store: RedisStore, run_id: str, args: argparse.Namespace) -> None:
    """Write one run's events as a worker would (one append per tick), then its end."""
    per_tick = max(1, round(args.rate * args.tick)) if args.rate > 0 else 64
    start = trio.current_time()
    due_origin = time.monotonic()
    seq = 0
    n = 0
    while seq < args.events:
        count = min(per_tick, args.events - seq)
        due = due_origin + n * args.tick if args.rate > 0 else time.monotonic()
        await store.append(run_id, seq, [_delta(due)] * count)
        seq += count
        n += 1
        if args.rate > 0:
            await trio.sleep_until(start + n * args.tick)
    await store.end(run_id, seq, "done")


async def _measure(
    args: argparse.Namespace, redis_url: str, store: RedisStore, processes: int
) -> dict[str, Any]:
    runs = [f"run_p{processes}_{i:03d}" for i in range(args.sessions)]
    for run_id in runs:  # listed before serve starts: every feed process knows them
        await publish_snapshot(
            store,
            RunSnapshot(
                id=run_id, model="bench/model", status="running", turn=0, usage=RunUsage(),
                tool_calls_executed=0, next_seq=0,
            ),
        )  # fmt: skip
    env = {**os.environ, "OPENROUTER_TRIO_FEED_TOKEN": TOKEN}
    serve = await trio.lowlevel.open_process(
        [sys.executable, "-m", "runtime", "serve", "--redis", redis_url,
         "--workers", str(processes), "--port", "0"],
        env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    clients: list[_Lines] = []
    try:
        banner = _Lines(serve)
        match = None
        while match is None:
            match = _BANNER.search(await banner.line())
        port = int(match.group(1))
        pids = [int(pid) for pid in match.group(2).split(b", ")]
        count = min(args.client_processes, args.clients)
        shares = [args.clients // count + (i < args.clients % count) for i in range(count)]
        for share in shares:
            process = await trio.lowlevel.open_process(
                [sys.executable, str(CLIENT), "--worker", str(port), str(share), ",".join(runs),
                 args.mode],
                env={**os.environ}, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            clients.append(_Lines(process))
        for client in clients:
            if await client.line() != b"ready":
                raise SystemExit("a client process failed to start")
        cpu_before = [_cpu_seconds(pid) for pid in pids]
        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            for run_id in runs:
                nursery.start_soon(_write, store, run_id, args)
        results = [json.loads(await client.line()) for client in clients]
        cpu = [
            after - before
            for after, before in zip(map(_cpu_seconds, pids), cpu_before, strict=True)
        ]
    finally:
        for client in clients:
            await _stop(client.process)
        await _stop(serve, signal.SIGINT)
    hist: dict[int, int] = {}
    for result in results:
        for bucket, n in result["hist"].items():
            hist[int(bucket)] = hist.get(int(bucket), 0) + n
    delivered = sum(r["received"] for r in results)
    elapsed = max(r["done_at"] for r in results) - started
    expected = args.sessions * args.events * args.clients
    return {
        "bench": "feed_scale",
        "processes": processes,
        "clients": args.clients,
        "client_processes": len(clients),
        "sessions": args.sessions,
        "events_per_session": args.events,
        "rate": args.rate,
        "mode": args.mode,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(delivered / elapsed, 1),
        "delivered": delivered,
        "expected": expected,
        "dropped": expected - delivered,
        "messages": sum(r["messages"] for r in results),
        "p50_ms": _percentile(hist, 0.50),
        "p99_ms": _percentile(hist, 0.99),
        "feed_cpu_s": round(sum(cpu), 3),
        "feed_cpu_s_per_1000_frames": round(sum(cpu) / max(delivered, 1) * 1000, 4),
        "cpu_s_per_process": [round(c, 3) for c in cpu],
    }


async def _run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            open_redis_server(Path(tmp)) as redis,
            open_redis_store(redis.url) as store,
        ):
            first: dict[str, Any] | None = None
            for processes in args.processes:
                with trio.fail_after(args.timeout):
                    line = await _measure(args, redis.url, store, processes)
                print(json.dumps(line), flush=True)
                if first is None:
                    first = line
                    continue
                base_cpu = first["feed_cpu_s_per_1000_frames"]
                print(
                    json.dumps(
                        {
                            "bench": "feed_scale",
                            "ratio": f"vs_{first['processes']}_process",
                            "processes": processes,
                            "frames_ratio": round(line["frames_per_s"] / first["frames_per_s"], 3),
                            "cpu_per_1000_frames_ratio": round(
                                line["feed_cpu_s_per_1000_frames"] / base_cpu, 3
                            )
                            if base_cpu
                            else None,
                        }
                    ),
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    numbers = lambda text: [int(x) for x in text.split(",")]  # noqa: E731
    parser.add_argument("--processes", type=numbers, default=[1, 2, 4], help="(1,2,4)")
    parser.add_argument("--clients", type=int, default=50, help="websocket clients (50)")
    parser.add_argument("--sessions", type=int, default=4, help="runs followed (4)")
    parser.add_argument("--events", type=int, default=3000, help="events per run (3000)")
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="events/s per run; 0: flat out (1000)"
    )
    parser.add_argument("--tick", type=float, default=0.01, help="seconds between writes (0.01)")
    parser.add_argument(
        "--mode",
        default="feed-batch",
        choices=("feed", "feed-batch", "feed-compact"),
        help="subscriptions: one message per event, batched, or batched compact (feed-batch)",
    )
    parser.add_argument("--client-processes", type=int, default=2, help="(2)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per P (600)")
    parser.add_argument("--quick", action="store_true", help="tiny N: checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.processes, args.clients, args.sessions, args.events = [1, 2], 4, 1, 200
        args.rate = 2000.0
    try:
        find_redis_server()
    except RedisServerMissing as exc:  # run_all.py goes on with the other benchmarks
        print(json.dumps({"bench": "feed_scale", "skipped": f"needs redis-server: {exc}"}))
        return
    trio.run(_run, args)


if __name__ == "__main__":
    main()
