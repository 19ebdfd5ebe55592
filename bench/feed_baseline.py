"""A minimal websocket broadcast server: the baseline of ``bench_feed.py``.

What a hand-written feed would be: the ``websockets`` library (asyncio), every
connected client gets every event of every session as one message, built once
and sent with ``websockets.broadcast``. No authentication, no subscriptions, no
replay, no pacing (``broadcast`` skips a client whose buffer is full, so a slow
client loses frames). It produces the same events, with the same JSON, at the
same rate as the feed under test, so ``bench_feed.py`` can report ratios.

Protocol with the parent (``bench_feed.py``): prints ``port N``; waits for a
``go`` line on stdin; produces; prints one JSON line of counters; exits.
Not part of the package: benchmark code only (asyncio is what ``websockets``
runs on; the project itself never uses asyncio).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection, broadcast, serve

from actors._feed.protocol import FrameCache
from runtime._protocol.events import OutputTextDelta

CLIENTS: set[ServerConnection] = set()


async def _handler(ws: ServerConnection) -> None:
    CLIENTS.add(ws)
    try:
        async for _ in ws:  # the feed's clients send subscribe commands: ignored here
            pass
    except websockets.ConnectionClosed:
        pass
    finally:
        CLIENTS.discard(ws)


async def _produce(session: str, events: int, rate: float, tick: float) -> None:
    cache = FrameCache(session)
    loop = asyncio.get_running_loop()
    start = loop.time()
    per_tick = max(1, round(rate * tick)) if rate > 0 else 64
    due_origin = time.monotonic()
    seq = 0
    n = 0
    while seq < events:
        due = due_origin + n * tick if rate > 0 else time.monotonic()
        batch = [
            OutputTextDelta(
                output_index=0, item_id="msg_bench", content_index=0, delta=f"{due:.9f}"
            )
            for _ in range(min(per_tick, events - seq))
        ]
        for payload in cache.encode(batch, seq):
            broadcast(CLIENTS, payload.decode())
        seq += len(batch)
        n += 1
        if rate > 0:
            delay = start + n * tick - loop.time()
            await asyncio.sleep(max(delay, 0))
        else:
            await asyncio.sleep(0)
    end = json.dumps({"type": "session.end", "source": f"/sessions/{session}"})
    broadcast(CLIENTS, end)


async def main(sessions: int, events: int, rate: float, tick: float) -> None:
    async with serve(_handler, "127.0.0.1", 0, compression=None, max_queue=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"port {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        started = time.perf_counter()
        await asyncio.gather(
            *(_produce(f"run_{i:04d}", events, rate, tick) for i in range(sessions))
        )
        counters: dict[str, Any] = {"produce_seconds": time.perf_counter() - started}
        print(json.dumps(counters), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # the parent says when to stop


if __name__ == "__main__":
    _, sessions, events, rate, tick = sys.argv
    asyncio.run(main(int(sessions), int(events), float(rate), float(tick)))
