"""Fan-out cost of the EventLog against the number of consumers.

For each K in ``--consumers``: one producer appends N small events in batches of
``--batch`` (``EventLog.extend``, then a checkpoint, like a stream decoder fed one
HTTP chunk at a time; each batch is built just before it is appended, as a decoder
would) while K consumer tasks each run ``async for event in cursor``. The same run
then measures the naive baseline: one ``trio.open_memory_channel(inf)`` per
consumer, the producer sending every event to every channel.

Prints one JSON line per measurement (the best of ``--repeat`` runs per metric):

* ``deliveries_per_s``: N * K / wall time (first append until every consumer is done),
  and ``deliveries_per_cpu_s`` over process CPU time (steadier on a shared machine);
* ``producer_events_per_s``: N / time spent inside the producer's append calls only
  (``extend`` for the log; the ``send_nowait`` loop for the baseline), i.e. what
  appending costs the producer as K grows. Each timed call includes two
  ``perf_counter`` calls;
* ``max_consumer_lag``: the largest ``next_seq - cursor.seq`` (baseline: the largest
  channel backlog), sampled every ``--sample-every`` producer batches;

then, per K, a ``ratio`` line: EventLog deliveries/s over the baseline's (by wall
and by CPU time), and the producer append rate at this K over the rate at the first
K measured. ``empty_timed_region_ns`` (an empty region timed just before each
append) shows how much colder the producer's caches get as K grows: it is part of
what ``producer_ns_per_append`` costs, and no implementation can avoid it.

Run from the checkout: ``PYTHONPATH=. .venv/bin/python bench/bench_fanout.py
--events 200000 --consumers 1,10,100,1000``. ``--max-deliveries`` (and
``--baseline-max-deliveries`` for the much slower baseline) cap N * K so that large
K stay quick; the N actually used is in each line.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import time
from typing import Any

import msgspec
import trio
import trio.testing

from runtime._run.eventlog import EventLog


class Delta(msgspec.Struct, frozen=True):
    """A small event, shaped like a text delta."""

    seq: int
    delta: str


def _make_batch(start: int, size: int) -> list[Delta]:
    return [Delta(seq, "x") for seq in range(start, start + size)]


async def _run_eventlog(
    n_events: int, batch_size: int, consumers: int, sample_every: int
) -> dict[str, Any]:
    log: EventLog[Delta] = EventLog()
    counts = [0] * consumers
    max_lag = 0
    producer_time = 0.0
    empty_time = 0.0

    async def consume(index: int) -> None:
        n = 0
        async with log.cursor() as cursor:
            async for _event in cursor:
                n += 1
        counts[index] = n

    async def produce() -> None:
        nonlocal producer_time, empty_time, max_lag
        clock = time.perf_counter
        extend = log.extend
        checkpoint = trio.lowlevel.checkpoint
        for i, start in enumerate(range(0, n_events, batch_size)):
            batch = _make_batch(start, min(batch_size, n_events - start))
            t_empty = clock()
            t0 = clock()
            extend(batch)
            t1 = clock()
            producer_time += t1 - t0
            empty_time += t0 - t_empty
            if i % sample_every == 0:
                max_lag = max(max_lag, log.statistics().slowest_cursor_lag)
            await checkpoint()
        log.close()

    async with trio.open_nursery() as nursery:
        for index in range(consumers):
            nursery.start_soon(consume, index)
        await trio.testing.wait_all_tasks_blocked()
        start = time.perf_counter()
        cpu_start = time.process_time()
        nursery.start_soon(produce)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    if counts != [n_events] * consumers:
        raise AssertionError(f"a consumer missed events: {sorted(set(counts))!r}")
    n_batches = -(-n_events // batch_size)
    return {
        "wall_s": wall,
        "deliveries_per_s": n_events * consumers / wall,
        "deliveries_per_cpu_s": n_events * consumers / cpu,
        "producer_events_per_s": n_events / producer_time,
        "producer_ns_per_append": producer_time / n_batches * 1e9,
        "empty_timed_region_ns": empty_time / n_batches * 1e9,
        "max_consumer_lag": max_lag,
    }


async def _run_channels(
    n_events: int, batch_size: int, consumers: int, sample_every: int
) -> dict[str, Any]:
    channels = [trio.open_memory_channel[Delta](math.inf) for _ in range(consumers)]
    counts = [0] * consumers
    max_lag = 0
    producer_time = 0.0

    async def consume(index: int, receive: trio.MemoryReceiveChannel[Delta]) -> None:
        n = 0
        async with receive:
            async for _event in receive:
                n += 1
        counts[index] = n

    async def produce() -> None:
        nonlocal producer_time, max_lag
        clock = time.perf_counter
        sends = [send for send, _ in channels]
        checkpoint = trio.lowlevel.checkpoint
        for i, start in enumerate(range(0, n_events, batch_size)):
            batch = _make_batch(start, min(batch_size, n_events - start))
            t0 = clock()
            for send in sends:
                send_nowait = send.send_nowait
                for event in batch:
                    send_nowait(event)
            producer_time += clock() - t0
            if i % sample_every == 0:
                backlog = max(s.statistics().current_buffer_used for s in sends)
                max_lag = max(max_lag, backlog)
            await checkpoint()
        for send in sends:
            send.close()

    async with trio.open_nursery() as nursery:
        for index, (_, receive) in enumerate(channels):
            nursery.start_soon(consume, index, receive)
        await trio.testing.wait_all_tasks_blocked()
        start = time.perf_counter()
        cpu_start = time.process_time()
        nursery.start_soon(produce)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    if counts != [n_events] * consumers:
        raise AssertionError(f"a consumer missed events: {sorted(set(counts))!r}")
    return {
        "wall_s": wall,
        "deliveries_per_s": n_events * consumers / wall,
        "deliveries_per_cpu_s": n_events * consumers / cpu,
        "producer_events_per_s": n_events / producer_time,
        "max_consumer_lag": max_lag,
    }


def _best_of(repeat: int, run: Any, *args: Any) -> dict[str, Any]:
    results = []
    for _ in range(repeat):
        gc.collect()
        results.append(trio.run(run, *args))
    best: dict[str, Any] = {}
    for key in results[0]:
        lower_is_better = key == "wall_s" or key.endswith(("_ns", "_per_append"))
        best[key] = (min if lower_is_better else max)(r[key] for r in results)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000, help="events per run (N)")
    parser.add_argument(
        "--consumers", default="1,10,100,1000", help="comma-separated consumer counts (K)"
    )
    parser.add_argument("--batch", type=int, default=32, help="events per producer append")
    parser.add_argument(
        "--max-deliveries", type=int, default=20_000_000, help="cap on N * K (EventLog)"
    )
    parser.add_argument(
        "--baseline-max-deliveries",
        type=int,
        default=2_000_000,
        help="cap on N * K for the memory-channel baseline",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument(
        "--sample-every", type=int, default=32, help="sample consumer lag every this many batches"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the memory-channel runs")
    args = parser.parse_args()

    first_producer_rate: float | None = None
    for consumers in (int(k) for k in args.consumers.split(",")):
        n_events = max(args.batch, min(args.events, args.max_deliveries // consumers))
        common = {"consumers": consumers, "batch": args.batch}
        ours = _best_of(
            args.repeat, _run_eventlog, n_events, args.batch, consumers, args.sample_every
        )
        print(json.dumps({"impl": "eventlog", "events": n_events, **common, **ours}), flush=True)
        if first_producer_rate is None:
            first_producer_rate = ours["producer_events_per_s"]
        ratio: dict[str, Any] = {
            "impl": "ratio",
            "consumers": consumers,
            "producer_rate_vs_first_k": ours["producer_events_per_s"] / first_producer_rate,
        }
        if not args.no_baseline:
            n_base = max(args.batch, min(args.events, args.baseline_max_deliveries // consumers))
            base = _best_of(
                args.repeat, _run_channels, n_base, args.batch, consumers, args.sample_every
            )
            line = {"impl": "memory_channel_per_consumer", "events": n_base, **common, **base}
            print(json.dumps(line), flush=True)
            ratio["deliveries_vs_baseline"] = ours["deliveries_per_s"] / base["deliveries_per_s"]
            ratio["deliveries_per_cpu_vs_baseline"] = (
                ours["deliveries_per_cpu_s"] / base["deliveries_per_cpu_s"]
            )
        print(json.dumps(ratio), flush=True)


if __name__ == "__main__":
    main()
