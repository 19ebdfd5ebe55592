"""Many sessions at once through a ``SessionPool``: sessions/s and memory per session.

For each N in ``--sessions``: open a client and a pool (``max_concurrent`` =
``--max-concurrent``, default N: every session admitted at once), start N runs of
``emulator/echo`` (each a distinct input), and wait until every one is done. The
backend is the emulator on loopback (``--backend emulator``, the default: real
HTTP/1.1 through hypercorn, server in the same process) or
``runtime.testing.FakeOpenRouter`` in-process (``--backend fake``: the runtime
and the HTTP client layer without sockets).

Prints one JSON line per N:

* ``sessions_per_s``: N / wall time from the first ``start`` to the last run done;
* ``peak_rss_mb``: the process's peak resident set size so far (``ru_maxrss``),
  so with several N in one process it only grows; run one N per process for
  clean peaks;
* ``rss_per_session_kb``: (resident set size with the N finished runs still
  referenced) - (before the first start), divided by N: what a finished run and
  its retained event log cost;
* ``events``: events in all N logs (each run's ``next_seq``).

Run: ``.venv/bin/python bench/bench_sessions.py --sessions 100,1000,10000``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import time
from typing import Any

import trio

from runtime._client.client import OpenRouter
from runtime._client.pool import open_session_pool
from runtime._http.retry import RetryConfig
from runtime.emulator import open_emulator
from runtime.testing import FakeOpenRouter

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes() -> int:
    """The current resident set size (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _measure(client: OpenRouter, n: int, max_concurrent: int, backend: str) -> dict[str, Any]:
    gc.collect()
    before = _rss_bytes()
    start = time.perf_counter()
    async with open_session_pool(
        client, max_concurrent=max_concurrent, history=n, update_interval=None
    ) as pool:
        results = [
            pool.start(model="emulator/echo", input=f"session {i} says hi") for i in range(n)
        ]
    elapsed = time.perf_counter() - start
    stats = pool.statistics()
    gc.collect()
    after = _rss_bytes()
    bad = [r.snapshot() for r in results if r.snapshot().status != "done"]
    if bad or stats.done != n:
        kinds = sorted({f"{s.status}: {s.error}" for s in bad})[:3]
        raise SystemExit(f"{len(bad)} of {n} sessions did not finish: {kinds}")
    text = await results[-1].get_text()
    if text != f"session {n - 1} says hi":
        raise SystemExit(f"wrong answer: {text!r}")
    return {
        "bench": "sessions",
        "backend": backend,
        "sessions": n,
        "max_concurrent": max_concurrent,
        "seconds": round(elapsed, 4),
        "sessions_per_s": round(n / elapsed, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_per_session_kb": round((after - before) / n / 1024, 2),
        "events": sum(r.snapshot().next_seq for r in results),
        "total_tokens": stats.total_tokens,
    }


async def _run(args: argparse.Namespace) -> None:
    # What a user would run with: a few quick retries of connection errors and 5xx
    # (10,000 sessions at once can overflow a loopback listener's accept queue).
    retry = RetryConfig(initial_interval=0.05, max_interval=1.0, max_retries=3)
    for n in args.sessions:
        max_concurrent = args.max_concurrent or n
        if args.backend == "fake":
            fake = FakeOpenRouter()
            async with OpenRouter(
                api_key=fake.inference_key,
                base_url=fake.base_url,
                http_transport=fake.http_transport(),
                retry=retry,
            ) as client:
                line = await _measure(client, n, max_concurrent, "fake")
        else:
            async with (
                open_emulator() as server,
                OpenRouter(
                    api_key=server.inference_key, base_url=server.base_url, retry=retry
                ) as client,
            ):
                line = await _measure(client, n, max_concurrent, "emulator")
        print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sessions",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[100, 1000, 10000],
        help="comma-separated session counts (default: 100,1000,10000)",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=0,
        help="admission limit of the pool (default: the session count)",
    )
    parser.add_argument(
        "--backend",
        choices=["fake", "emulator"],
        default="emulator",
        help="emulator: real loopback HTTP (default); fake: in-process, the runtime alone",
    )
    trio.run(_run, parser.parse_args())


if __name__ == "__main__":
    main()
