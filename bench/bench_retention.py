"""Peak memory of one run's EventLog under each retention policy, one fresh process per case.

Each case runs in its own child process (``resource.getrusage`` reports a
process's peak RSS, which never goes down, so cases cannot share a process):
a producer decodes N real ``response.output_text.delta`` payloads (the wire
bytes the server sends) with ``decode_event`` and appends them with
``EventLog.extend`` in batches of ``--batch``, one checkpoint per batch, as the
model-call actor does per HTTP chunk. Two consumers read the log:

* a **fast** one, ``async for event in cursor`` (keeps up);
* a **slow** one, in one of two shapes (``--slow``, both by default):

  * ``rate``: ``receive_batch(--slow-batch)`` once per scheduler round, so it
    reads ``slow-batch`` events while the producer appends ``batch`` (a
    quarter of the rate by default): it falls further behind all the time;
  * ``lag``: it stays ``--slow-lag`` events behind the head (reading only
    what is older than that), like a dashboard a few seconds late.

  Either way it catches ``Lagged`` under ``Ring`` (counting what it missed)
  and drains what is left after the producer closes the log.

Policies: ``KeepAll()``, ``TrimBehindSlowest()``, ``Ring(--ring)``. Each line:
``maxrss_mib`` (peak RSS of the child), ``baseline_mib`` (its RSS after the
imports, before the run), ``run_mib`` (the difference: what the run cost),
``retained_peak`` (most events held by the log at a sample point),
``slow_received`` and ``slow_missed``, ``seconds``.

Run: ``.venv/bin/python bench/bench_retention.py [--events 10000,100000,1000000]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import trio

from runtime._protocol.events import decode_event
from runtime._run.cursor import Lagged
from runtime._run.eventlog import EventLog
from runtime._run.retention import KeepAll, Retention, Ring, TrimBehindSlowest

POLICIES: Final = ("keep_all", "trim_behind_slowest", "ring")
_PAYLOAD: Final = (
    b'{"type":"response.output_text.delta","output_index":0,"item_id":"msg_bench_0001",'
    b'"content_index":0,"delta":"tok ","logprobs":[],"sequence_number":%d}'
)


def _policy(name: str, ring: int) -> Retention:
    if name == "keep_all":
        return KeepAll()
    if name == "trim_behind_slowest":
        return TrimBehindSlowest()
    return Ring(capacity=ring)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _run(
    n: int,
    policy: Retention,
    batch_size: int,
    slow_mode: str,
    slow_batch: int,
    slow_lag: int,
    sample_every: int,
) -> dict[str, Any]:
    log: EventLog[Any] = EventLog(retention=policy)
    fast_count = 0
    slow_count = 0
    slow_missed = 0
    retained_peak = 0

    async def fast(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal fast_count
        async with log.cursor() as cursor:
            task_status.started()
            async for _event in cursor:
                fast_count += 1

    async def slow(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal slow_count, slow_missed
        checkpoint = trio.lowlevel.checkpoint
        async with log.cursor() as cursor:
            task_status.started()
            while True:
                limit = slow_batch
                if slow_mode == "lag" and not log.closed:
                    limit = log.next_seq - cursor.seq - slow_lag
                    if limit <= 0:
                        await checkpoint()
                        continue
                try:
                    slow_count += len(await cursor.receive_batch(limit))
                except Lagged as lagged:
                    slow_missed += lagged.missed
                except trio.EndOfChannel:
                    return

    async def produce() -> None:
        nonlocal retained_peak
        checkpoint = trio.lowlevel.checkpoint
        for i, start in enumerate(range(0, n, batch_size)):
            stop = min(n, start + batch_size)
            log.extend([decode_event(_PAYLOAD % seq) for seq in range(start, stop)])
            if i % sample_every == 0:
                retained_peak = max(retained_peak, log.next_seq - log.first_seq)
            await checkpoint()
        retained_peak = max(retained_peak, log.next_seq - log.first_seq)
        log.close()

    async with trio.open_nursery() as nursery:
        await nursery.start(fast)
        await nursery.start(slow)
        nursery.start_soon(produce)
    if fast_count != n or slow_count + slow_missed != n:
        raise AssertionError(f"lost events: fast={fast_count} slow={slow_count}+{slow_missed}")
    return {"retained_peak": retained_peak, "slow_received": slow_count, "slow_missed": slow_missed}


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    decode_event(_PAYLOAD % 0)
    baseline = _rss_mib()
    start = time.perf_counter()
    result = trio.run(
        _run,
        args.child_events,
        _policy(args.child, args.ring),
        args.batch,
        args.slow,
        args.slow_batch,
        args.slow_lag,
        args.sample_every,
    )
    seconds = time.perf_counter() - start
    peak = _rss_mib()
    return {
        "bench": "retention",
        "policy": args.child,
        "events": args.child_events,
        "ring_capacity": args.ring if args.child == "ring" else None,
        "slow": "quarter-rate" if args.slow == "rate" else f"lag-{args.slow_lag}",
        "maxrss_mib": round(peak, 1),
        "baseline_mib": round(baseline, 1),
        "run_mib": round(peak - baseline, 1),
        **result,
        "seconds": round(seconds, 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--events", default="10000,100000,1000000", help="comma-separated run lengths (N)"
    )
    parser.add_argument("--policies", default=",".join(POLICIES), help="policies to run")
    parser.add_argument("--ring", type=int, default=4096, help="Ring capacity")
    parser.add_argument("--batch", type=int, default=32, help="events per producer append")
    parser.add_argument("--slow", default="rate,lag", help="slow consumer shapes: rate,lag")
    parser.add_argument("--slow-batch", type=int, default=8, help="events per slow receive")
    parser.add_argument("--slow-lag", type=int, default=10_000, help="lag of the 'lag' shape")
    parser.add_argument("--sample-every", type=int, default=16, help="batches between samples")
    parser.add_argument("--quick", action="store_true", help="tiny N")
    parser.add_argument("--child", choices=POLICIES, help=argparse.SUPPRESS)
    parser.add_argument("--child-events", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_child(args)), flush=True)
        return
    sizes = [1000, 5000] if args.quick else [int(n) for n in args.events.split(",")]
    slow_lag = 1000 if args.quick else args.slow_lag
    cases = [
        (slow, n, policy)
        for slow in args.slow.split(",")
        for n in sizes
        for policy in args.policies.split(",")
    ]
    for slow, n, policy in cases:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", policy]
        command += ["--child-events", str(n), "--ring", str(args.ring), "--slow", slow]
        command += ["--batch", str(args.batch), "--slow-batch", str(args.slow_batch)]
        command += ["--slow-lag", str(slow_lag), "--sample-every", str(args.sample_every)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{policy} with {n} events failed:\n{done.stderr[-2000:]}")
        print(done.stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
