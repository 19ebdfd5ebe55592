"""The agent loop's own overhead per turn and per tool call.

Everything runs in-process: the model's answers are SSE bytes rendered once by
``runtime.testing`` and served from memory through ``httpx.MockTransport``,
and the tools are no-ops, so what is measured is the runtime: request building
and validation, the HTTP client layer, the model-call actor, the event log,
the session's round bookkeeping and the ToolCall tasks. The baseline, measured in the same run, is
a bare model call (one turn, no tools) through the same client.

Per-turn overhead = time(run with one 1-call round) - 2 x time(bare call):
what a tool round adds beyond its two model calls. Per-call overhead =
(time(run with one 10-call round) - time(run with one 1-call round)) / 9.

Usage: ``python bench/bench_tool_loop.py --runs 300``; prints one JSON line
per measurement.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx
import trio

from runtime import OpenRouter, tool
from runtime.testing import sse_bytes, text_turn, tool_call_turn, turn_events


def _noop(args: dict[str, Any]) -> int:
    return 0


NOOP = tool(name="noop", input_schema=dict[str, Any], execute=_noop)


_ANSWER = sse_bytes(turn_events(text_turn("ok")))


def _transport(calls_per_round: int | None) -> httpx.MockTransport:
    """Serve the pre-rendered turns: a tool round (if any), then a text answer, per run."""
    script = [_ANSWER]
    if calls_per_round is not None:
        calls = [("noop", {"i": i}, f"call_{i}") for i in range(calls_per_round)]
        script.insert(0, sse_bytes(turn_events(tool_call_turn(*calls))))
    position = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal position
        body = script[position % len(script)]
        position += 1
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return httpx.MockTransport(handler)


async def _measure(runs: int, calls_per_round: int | None) -> float:
    """Seconds per run: a bare call (``None``) or one round of ``calls_per_round`` calls."""
    tools = [] if calls_per_round is None else [NOOP]
    async with OpenRouter("bench-key", http_transport=_transport(calls_per_round)) as client:
        start = time.perf_counter()
        for _ in range(runs):
            await client.call_model(model="m", input="go", tools=tools).get_text()
        return (time.perf_counter() - start) / runs


async def _main(runs: int, repeat: int) -> None:
    await _measure(max(runs // 10, 5), 1)  # warm-up (imports, caches)
    # Interleaved and best of ``repeat``: the three cases see the same machine noise.
    samples: dict[int | None, list[float]] = {None: [], 1: [], 10: []}
    for _ in range(repeat):
        for case, times in samples.items():
            times.append(await _measure(runs, case))
    bare, one, ten = (min(samples[case]) for case in (None, 1, 10))
    per_turn = one - 2 * bare
    per_call = (ten - one) / 9
    for name, seconds in (
        ("bare_model_call", bare),
        ("run_1_round_1_call", one),
        ("run_1_round_10_calls", ten),
        ("loop_overhead_per_turn", per_turn),
        ("loop_overhead_per_tool_call", per_call),
    ):
        print(json.dumps({"bench": "tool_loop", "measure": name, "us": round(seconds * 1e6, 1)}))
    print(
        json.dumps(
            {
                "bench": "tool_loop",
                "measure": "ratios_to_bare_call",
                "per_turn": round(per_turn / bare, 3),
                "per_tool_call": round(per_call / bare, 3),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="runs per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per case (best)")
    args = parser.parse_args()
    trio.run(_main, args.runs, args.repeat)


if __name__ == "__main__":
    main()
