"""Websocket feed throughput and latency against a minimal broadcast server, same run.

For each M in ``--clients`` and each server in ``--servers``: K sessions
(``--sessions``) produce ``--events`` text deltas each at ``--rate`` events/s
(appended in ticks of ``--tick`` seconds, as a model stream's reader appends
what one read brought; ``--rate 0``: as fast as possible); M clients, run in
``--client-processes`` separate worker processes, follow every session; the
run ends when every client has seen every session end. Servers:

* ``baseline``: ``bench/feed_baseline.py``, a minimal ``websockets`` broadcast
  server in its own process (one message per event, built once, no
  subscriptions, no replay, drops frames for slow clients);
* ``feed``: ``serve_event_feed`` in this process, one message per event;
* ``feed-batch``: the same with ``"batch": true`` subscriptions (several events
  per message);
* ``feed-compact``: batched, with the compact envelope.

The clients are a small RFC 6455 client of this file (plain sockets and
``selectors``, not the server's libraries): they parse every frame, decode every
event with msgspec and take its latency from the ``time.monotonic()`` stamp the
producer wrote into its text (one system-wide clock on Linux). The stamp is the
time the event was *due* by the producer's schedule, not when it was built: a
server whose producer falls behind (the baseline's ``broadcast`` writes inside
the producer) is charged for the delay, instead of hiding it (coordinated
omission).

Prints one JSON line per (M, server): ``frames_per_s`` (event frames received
by all clients / wall time from the first append to the last client done),
``p50_ms``/``p99_ms`` (append to receipt), ``delivered``/``expected``,
``messages`` (websocket messages received), ``dropped`` (expected - delivered);
then, per M and feed server, a ``ratio`` line against the baseline:
``frames_ratio`` (≥ 1 is better) and ``p99_ratio`` (≤ 1 is better).

Run: ``.venv/bin/python bench/bench_feed.py --clients 50 --sessions 4 --events 2500
--rate 500``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import selectors
import socket
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from actors._feed.server import EventFeed, serve_event_feed
from runtime._protocol.events import OutputTextDelta
from runtime.testing import MemoryRegistry

if TYPE_CHECKING:
    from runtime._run.eventlog import EventLog

TOKEN = "bench-token"
BASELINE = Path(__file__).with_name("feed_baseline.py")
SERVERS = ("baseline", "feed", "feed-batch", "feed-compact")


def _delta(due: float) -> OutputTextDelta:
    return OutputTextDelta(output_index=0, item_id="msg_bench", content_index=0, delta=f"{due:.9f}")


async def _produce(log: EventLog[Any], events: int, rate: float, tick: float) -> None:
    """Append ``events`` deltas, ``rate * tick`` per tick, each stamped with when it was due."""
    per_tick = max(1, round(rate * tick)) if rate > 0 else 64
    start = trio.current_time()
    due_origin = time.monotonic()
    seq = 0
    n = 0
    while seq < events:
        count = min(per_tick, events - seq)
        due = due_origin + n * tick if rate > 0 else time.monotonic()
        log.extend([_delta(due) for _ in range(count)])
        seq += count
        n += 1
        if rate > 0:
            await trio.sleep_until(start + n * tick)
        else:
            await trio.lowlevel.checkpoint()
    log.close()


# -- the client worker (a separate process) -------------------------------------------


class _Data(msgspec.Struct):
    delta: str = ""


class _Frame(msgspec.Struct):
    type: str
    source: str = ""
    session: str = ""
    data: _Data | None = None


_ONE = msgspec.json.Decoder(_Frame)
_MANY = msgspec.json.Decoder(list[_Frame])


def _masked(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    header = bytes((0x81, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x81, 0xFE, n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class _Conn:
    """One raw websocket client connection: frame parsing and accounting."""

    def __init__(self, port: int, sessions: list[str], mode: str) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            ).encode()
        )
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("handshake failed")
            buffer += chunk
        head, _, self.buffer = buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"handshake refused: {head[:40]!r}")
        for session in sessions:
            command: dict[str, Any] = {"type": "subscribe", "session": session}
            if mode != "feed":
                command["batch"] = True
            if mode == "feed-compact":
                command["envelope"] = "compact"
            sock.sendall(_masked(json.dumps(command).encode()))
        sock.setblocking(False)
        self.sock = sock
        self.pending = set(sessions)
        self.received = 0
        self.messages = 0

    def feed(self, data: bytes, hist: dict[int, int]) -> None:
        buffer = self.buffer + data if self.buffer else data
        offset = 0
        end = len(buffer)
        clock = time.monotonic
        while end - offset >= 2:
            n = buffer[offset + 1] & 0x7F
            start = offset + 2
            if n == 126:
                if end - offset < 4:
                    break
                n = (buffer[offset + 2] << 8) | buffer[offset + 3]
                start = offset + 4
            elif n == 127:
                if end - offset < 10:
                    break
                n = struct.unpack_from("!Q", buffer, offset + 2)[0]
                start = offset + 10
            if end - start < n:
                break
            payload = buffer[start : start + n]
            opcode = buffer[offset] & 0x0F
            offset = start + n
            if opcode != 1:
                continue  # pings and the like
            self.messages += 1
            try:
                frames = _MANY.decode(payload) if payload[:1] == b"[" else [_ONE.decode(payload)]
            except msgspec.DecodeError:
                print(f"undecodable message: {payload[:80]!r}", file=sys.stderr, flush=True)
                raise
            now = clock()
            for frame in frames:
                if frame.type == "response.output_text.delta" and frame.data is not None:
                    self.received += 1
                    bucket = int((now - float(frame.data.delta)) * 10_000)
                    hist[bucket] = hist.get(bucket, 0) + 1
                elif frame.type == "session.end":
                    session = frame.source.removeprefix("/sessions/")
                    self.pending.discard(session)
        self.buffer = buffer[offset:]


def _worker(port: int, count: int, sessions: list[str], mode: str) -> None:
    conns = [_Conn(port, sessions, mode) for _ in range(count)]
    selector = selectors.DefaultSelector()
    for each in conns:
        selector.register(each.sock, selectors.EVENT_READ, each)
    print("ready", flush=True)
    hist: dict[int, int] = {}
    open_conns = len(conns)
    last_data = time.monotonic()
    while open_conns and time.monotonic() - last_data < 15:
        for key, _ in selector.select(timeout=1.0):
            conn: _Conn = key.data
            try:
                data = conn.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            last_data = time.monotonic()
            if not data:
                selector.unregister(conn.sock)
                open_conns -= 1
                continue
            conn.feed(data, hist)
            if not conn.pending:
                selector.unregister(conn.sock)
                open_conns -= 1
    done_at = time.monotonic()
    for each in conns:
        each.sock.close()
    result = {
        "received": sum(c.received for c in conns),
        "messages": sum(c.messages for c in conns),
        "done_at": done_at,
        "hist": hist,
    }
    print(json.dumps(result), flush=True)


# -- the parent -----------------------------------------------------------------------


class _Lines:
    """Line reader over a process's stdout."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def line(self) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        while b"\n" not in self._buffer:
            chunk = await stdout.receive_some(1 << 16)
            if not chunk:
                raise SystemExit("a bench process died")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


async def _spawn(command: list[str], *, stdin: bool = False) -> _Lines:
    process = await trio.lowlevel.open_process(
        command, stdout=-1, stdin=-1 if stdin else None, env={**os.environ}
    )
    return _Lines(process)


async def _reap(lines: _Lines) -> None:
    process = lines.process
    with trio.move_on_after(5):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()
    for pipe in (process.stdout, process.stdin):
        if pipe is not None:
            await pipe.aclose()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(hist: dict[int, int], q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    target = q * total
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= target:
            return round(bucket / 10, 1)
    return None


async def _run_clients(
    args: argparse.Namespace, port: int, sessions: list[str], clients: int, mode: str, go: Any
) -> tuple[float, list[dict[str, Any]]]:
    processes = min(args.client_processes, clients)
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    workers: list[_Lines] = []
    try:
        for share in shares:
            joined = ",".join(sessions)
            command = [sys.executable, __file__, "--worker", str(port), str(share), joined, mode]
            workers.append(await _spawn(command))
        for worker in workers:
            if (await worker.line()) != b"ready":
                raise SystemExit("a client worker failed to start")
        started = time.monotonic()
        await go()
        results = [json.loads(await worker.line()) for worker in workers]
        return started, results
    finally:
        for worker in workers:
            await _reap(worker)


async def _measure(args: argparse.Namespace, clients: int, server: str) -> dict[str, Any]:
    sessions = [f"run_{i:04d}" for i in range(args.sessions)]
    if server == "baseline":
        baseline = await _spawn(
            [sys.executable, str(BASELINE), str(args.sessions), str(args.events),
             str(args.rate), str(args.tick)],
            stdin=True,
        )  # fmt: skip
        try:
            port = int((await baseline.line()).split()[1])
            stdin = baseline.process.stdin
            assert stdin is not None

            async def go_baseline() -> None:
                await stdin.send_all(b"go\n")

            cpu_before = _cpu_seconds(baseline.process.pid)
            started, results = await _run_clients(
                args, port, sessions, clients, "feed", go_baseline
            )
            cpu = _cpu_seconds(baseline.process.pid) - cpu_before
            await stdin.send_all(b"stop\n")
        finally:
            await _reap(baseline)
    else:
        registry = MemoryRegistry(model="bench/model", update_buffer=64)
        for i in range(args.sessions):
            registry.add(f"run_{i:04d}")
        async with trio.open_nursery() as nursery:
            feed: EventFeed = await nursery.start(
                functools.partial(
                    serve_event_feed,
                    registry,
                    "127.0.0.1",
                    0,
                    token=TOKEN,
                    max_connections=clients + 1,
                    heartbeat_interval=None,
                    idle_timeout=None,
                )
            )

            async def go_feed() -> None:
                for log in registry.logs.values():
                    nursery.start_soon(_produce, log, args.events, args.rate, args.tick)

            cpu_before = time.process_time()
            started, results = await _run_clients(
                args, feed.port, sessions, clients, server, go_feed
            )
            cpu = time.process_time() - cpu_before
            nursery.cancel_scope.cancel()
    hist: dict[int, int] = {}
    for result in results:
        for bucket, count in result["hist"].items():
            hist[int(bucket)] = hist.get(int(bucket), 0) + count
    delivered = sum(r["received"] for r in results)
    elapsed = max(r["done_at"] for r in results) - started
    expected = args.sessions * args.events * clients
    return {
        "bench": "feed",
        "server": server,
        "clients": clients,
        "client_processes": min(args.client_processes, clients),
        "sessions": args.sessions,
        "events_per_session": args.events,
        "rate": args.rate,
        "seconds": round(elapsed, 3),
        "frames_per_s": round(delivered / elapsed, 1),
        "events_per_s": round(delivered / elapsed, 1),
        "delivered": delivered,
        "expected": expected,
        "dropped": expected - delivered,
        "messages": sum(r["messages"] for r in results),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_frame": round(cpu / max(delivered, 1) * 1e6, 2),
        "p50_ms": _percentile(hist, 0.50),
        "p99_ms": _percentile(hist, 0.99),
    }


async def _run(args: argparse.Namespace) -> None:
    for clients in args.clients:
        measured: dict[str, dict[str, Any]] = {}
        for server in args.servers:
            measured[server] = line = await _measure(args, clients, server)
            print(json.dumps(line), flush=True)
        base = measured.get("baseline")
        if base is None:
            continue
        for server, line in measured.items():
            if server == "baseline":
                continue
            p99, base_p99 = line["p99_ms"], base["p99_ms"]
            print(
                json.dumps(
                    {
                        "bench": "feed",
                        "ratio": "vs_baseline",
                        "server": server,
                        "clients": clients,
                        "frames_ratio": round(line["frames_per_s"] / base["frames_per_s"], 3)
                        if base["frames_per_s"]
                        else None,
                        "p99_ratio": round(p99 / base_p99, 3) if p99 and base_p99 else None,
                        "cpu_per_frame_ratio": round(
                            line["server_cpu_us_per_frame"] / base["server_cpu_us_per_frame"], 3
                        )
                        if base["server_cpu_us_per_frame"]
                        else None,
                    }
                ),
                flush=True,
            )


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        _, _, port, count, sessions, mode = sys.argv
        _worker(int(port), int(count), sessions.split(","), mode)
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument(
        "--clients",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[1, 10, 50],
        help="comma-separated client counts (default: 1,10,50)",
    )
    parser.add_argument("--sessions", type=int, default=4, help="busy sessions (default 4)")
    parser.add_argument("--events", type=int, default=2500, help="events per session (2500)")
    parser.add_argument(
        "--rate", type=float, default=500.0, help="events/s per session; 0: flat out (500)"
    )
    parser.add_argument("--tick", type=float, default=0.01, help="seconds between appends (0.01)")
    parser.add_argument(
        "--servers",
        type=lambda text: text.split(","),
        default=list(SERVERS),
        help=f"comma-separated, from {','.join(SERVERS)} (default: all)",
    )
    parser.add_argument(
        "--client-processes", type=int, default=2, help="client worker processes (2)"
    )
    args = parser.parse_args()
    unknown = [s for s in args.servers if s not in SERVERS]
    if unknown:
        parser.error(f"unknown servers {unknown!r}")
    trio.run(_run, args)


if __name__ == "__main__":
    main()
