"""Websocket feed throughput and latency: M clients following K busy sessions over loopback.

For each M in ``--clients``: serve a registry of K sessions with
``serve_event_feed`` on 127.0.0.1, connect M trio-websocket clients, subscribe
each to every session, then run K producers that append ``--events`` text-delta
events each (``--rate`` events/s per session, or as fast as possible with a
checkpoint every ``--batch`` events when the rate is 0) and close their logs.
Each event carries its append time (``time.monotonic``, system-wide on Linux)
in its text, so a client in any process can measure its latency.

Clients run in the server's process and trio loop by default, so the numbers
include the clients' own work (trio-websocket parsing, one small msgspec decode
per frame); with ``--client-processes P`` they run in P worker processes and
the numbers are the server's.

Prints one JSON line per M:

* ``events_per_s``: event frames received by all clients / wall time (first
  append to the last client seeing every ``session.end``);
* ``p50_ms`` / ``p99_ms``: latency of an event frame, append to receipt;
* ``produced_per_s``: events appended per second of the producers' run time
  (the feed must not slow the sessions down; with ``--rate`` it should stay
  near ``K * rate``);
* ``dropped`` / ``resyncs``: frames dropped by full outboxes and ``resync``
  frames sent (a slow client is resynced rather than slowing anyone).

Run: ``.venv/bin/python bench/bench_feed.py --clients 1,10,50 --sessions 4 --events 1000
--rate 200 --client-processes 4``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from typing import TYPE_CHECKING, Any

import msgspec
import trio
from trio_websocket import open_websocket_url

from actors._feed.server import EventFeed, serve_event_feed
from runtime._protocol.events import OutputTextDelta
from runtime._run.eventlog import EventLog
from runtime._run.retention import Ring
from runtime._run.status import RunSnapshot, RunUsage

if TYPE_CHECKING:
    from runtime._run.registry import RegistryUpdate

TOKEN = "bench-token"


class _Registry:
    """K sessions over plain EventLogs."""

    def __init__(self, sessions: int) -> None:
        self.logs = {f"run_{i:04d}": EventLog[Any]() for i in range(sessions)}
        self.updates: EventLog[RegistryUpdate] = EventLog(retention=Ring(64))

    def sessions(self) -> list[RunSnapshot]:
        return [self.snapshot(name) for name in self.logs]

    def snapshot(self, run_id: str) -> RunSnapshot:
        log = self.logs[run_id]
        return RunSnapshot(
            id=run_id,
            model="bench/model",
            status="done" if log.closed else "running",
            turn=0,
            usage=RunUsage(),
            tool_calls_executed=0,
            next_seq=log.next_seq,
        )

    def events(self, run_id: str, from_seq: int = 0) -> Any:
        return self.logs[run_id].cursor(from_seq)

    def watch(self) -> Any:
        return self.updates.cursor(self.updates.next_seq)


class _Data(msgspec.Struct):
    delta: str = ""


class _Frame(msgspec.Struct):
    type: str
    source: str = ""
    data: _Data | None = None


_DECODER = msgspec.json.Decoder(_Frame)


async def _produce(log: EventLog[Any], events: int, rate: float, batch: int) -> float:
    clock = time.monotonic
    start = clock()
    schedule = trio.current_time()  # trio's clock has its own origin
    for i in range(events):
        if rate > 0:
            await trio.sleep_until(schedule + (i + 1) / rate)
        log.append(
            OutputTextDelta(
                output_index=0, item_id="msg_bench", content_index=0, delta=f"{clock():.9f}"
            )
        )
        if rate <= 0 and i % batch == batch - 1:
            await trio.lowlevel.checkpoint()
    elapsed = clock() - start
    log.close()
    return elapsed


async def _client(
    url: str, sessions: list[str], latencies: list[float], counts: list[int], ready: trio.Event
) -> None:
    clock = time.monotonic
    pending = set(sessions)
    received = 0
    subscriptions = 0
    async with open_websocket_url(
        url,
        extra_headers=[(b"authorization", f"Bearer {TOKEN}".encode())],
        message_queue_size=256,
    ) as ws:
        for run_id in sessions:
            await ws.send_message(json.dumps({"type": "subscribe", "session": run_id}))
        while pending:
            message = await ws.get_message()
            now = clock()
            frame = _DECODER.decode(message)
            kind = frame.type
            if kind == "response.output_text.delta" and frame.data is not None:
                received += 1
                latencies.append(now - float(frame.data.delta))
            elif kind == "session.subscribed":
                subscriptions += 1
                if subscriptions == len(sessions):
                    ready.set()
            elif kind == "session.end":
                pending.discard(frame.source.removeprefix("/sessions/"))
    counts.append(received)


async def _clients(
    url: str, sessions: list[str], count: int, on_ready: Any
) -> tuple[list[float], list[int]]:
    """Run ``count`` clients; call ``on_ready()`` once all are subscribed."""
    latencies: list[float] = []
    counts: list[int] = []
    readies = [trio.Event() for _ in range(count)]
    async with trio.open_nursery() as nursery:
        for ready in readies:
            nursery.start_soon(_client, url, sessions, latencies, counts, ready)
        for ready in readies:
            await ready.wait()
        await on_ready()
    return latencies, counts


class _Worker:
    """A client worker process: prints ``ready``, then one JSON line of results."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def line(self) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        while b"\n" not in self._buffer:
            chunk = await stdout.receive_some(1 << 16)
            if not chunk:
                raise SystemExit("a client worker process died")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


async def _worker_main(url: str, count: int, sessions: list[str]) -> None:
    async def announce() -> None:
        print("ready", flush=True)

    latencies, counts = await _clients(url, sessions, count, announce)
    print(json.dumps({"latencies": latencies, "received": sum(counts)}), flush=True)


async def _measure(args: argparse.Namespace, clients: int) -> dict[str, Any]:
    registry = _Registry(args.sessions)
    sessions = list(registry.logs)
    producer_times: list[float] = []
    timing: dict[str, float] = {}

    async def produce_all() -> None:
        async def one(log: EventLog[Any]) -> None:
            producer_times.append(await _produce(log, args.events, args.rate, args.batch))

        timing["start"] = time.perf_counter()
        async with trio.open_nursery() as producers:
            for log in registry.logs.values():
                producers.start_soon(one, log)

    async with trio.open_nursery() as nursery:
        feed: EventFeed = await nursery.start(
            functools.partial(
                serve_event_feed,
                registry,
                "127.0.0.1",
                0,
                token=TOKEN,
                max_connections=clients + 1,
                send_buffer=args.send_buffer,
                heartbeat_interval=None,
                idle_timeout=None,
            )
        )
        url = f"ws://127.0.0.1:{feed.port}/"
        if args.client_processes <= 0:
            latencies, counts = await _clients(url, sessions, clients, produce_all)
            delivered = sum(counts)
        else:
            delivered, latencies = await _external(args, url, sessions, clients, produce_all)
        elapsed = time.perf_counter() - timing["start"]
        stats = feed.statistics()
        nursery.cancel_scope.cancel()
    latencies.sort()
    produced = args.sessions * args.events

    def percentile(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

    return {
        "bench": "feed",
        "clients": clients,
        "client_processes": args.client_processes,
        "sessions": args.sessions,
        "events_per_session": args.events,
        "rate": args.rate,
        "seconds": round(elapsed, 4),
        "events_per_s": round(delivered / elapsed, 1),
        "delivered": delivered,
        "expected": produced * clients,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "produced_per_s": round(produced / max(producer_times), 1),
        "dropped": stats.frames_dropped,
        "resyncs": stats.resyncs,
    }


async def _external(
    args: argparse.Namespace, url: str, sessions: list[str], clients: int, produce_all: Any
) -> tuple[int, list[float]]:
    """Run the clients in worker processes; return (delivered, latencies)."""
    processes = min(args.client_processes, clients)
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    workers: list[_Worker] = []
    try:
        for share in shares:
            command = [sys.executable, __file__, "--worker", url, str(share), ",".join(sessions)]
            process = await trio.lowlevel.open_process(command, stdout=-1)
            workers.append(_Worker(process))
        for worker in workers:
            if (await worker.line()) != b"ready":
                raise SystemExit("a client worker process failed to start")
        await produce_all()
        delivered = 0
        latencies: list[float] = []
        for worker in workers:
            result = json.loads(await worker.line())
            delivered += result["received"]
            latencies += result["latencies"]
        return delivered, latencies
    finally:
        for worker in workers:
            with trio.move_on_after(5):
                await worker.process.wait()
            if worker.process.returncode is None:
                worker.process.kill()
                await worker.process.wait()
            if worker.process.stdout is not None:
                await worker.process.stdout.aclose()


async def _run(args: argparse.Namespace) -> None:
    for clients in args.clients:
        print(json.dumps(await _measure(args, clients)), flush=True)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        _, _, url, count, sessions = sys.argv
        trio.run(_worker_main, url, int(count), sessions.split(","))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--clients",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 10, 50],
        help="comma-separated client counts (default: 1,10,50)",
    )
    parser.add_argument("--sessions", type=int, default=4, help="busy sessions (default 4)")
    parser.add_argument("--events", type=int, default=1000, help="events per session")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="events/s per session; 0: as fast as possible"
    )
    parser.add_argument(
        "--batch", type=int, default=16, help="events per producer checkpoint when unpaced"
    )
    parser.add_argument("--send-buffer", type=int, default=1024, help="frames per connection")
    parser.add_argument(
        "--client-processes",
        type=int,
        default=0,
        help="run the clients in this many worker processes (default 0: in-process)",
    )
    trio.run(_run, parser.parse_args())


if __name__ == "__main__":
    main()
