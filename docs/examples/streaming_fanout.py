"""Fan-out: many consumers of one run, and many runs at once.

Part 1 starts one run and four consumers of it together, in one nursery: a
text stream printed live, a second text stream that only counts, a reasoning
stream and the full event stream. After the run has ended a fifth consumer
attaches and gets a full replay. One HTTP request serves all of them: the run
writes its events once, into its event log, and each consumer reads the log
through its own cursor, at its own pace.

Part 2 starts several runs side by side, one task each, and prints their
answers in order. One of them asks for a model that does not exist: that run
fails with a typed error and the others are not disturbed.

Run it::

    python docs/examples/streaming_fanout.py                  # the local emulator
    OPENROUTER_API_KEY=sk-or-... python docs/examples/streaming_fanout.py

Without ``OPENROUTER_API_KEY`` it uses the local OpenRouter emulator and its
``emulator/reasoning`` model (reasoning text, then the question echoed back).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from runtime import AgentError, ModelResult, OpenRouter
from runtime.emulator import open_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

EMULATOR_MODEL = "emulator/reasoning"
DEFAULT_MODEL = "openai/gpt-4o-mini"
MISSING_MODEL = "no-such-vendor/no-such-model"
QUESTIONS = (
    "Name one thing a nursery guarantees.",
    "What does a cancel scope do?",
    "Why are memory channels bounded?",
)


async def count_text(result: ModelResult, name: str, seen: dict[str, str]) -> None:
    """Consume the text stream quietly, keeping the text it saw."""
    parts = [delta async for delta in result.get_text_stream()]
    seen[name] = "".join(parts)
    print(f"  {name}: {len(parts)} deltas, {len(seen[name])} characters")


async def print_text(result: ModelResult, seen: dict[str, str]) -> None:
    """Print the text as it arrives."""
    parts: list[str] = []
    async with result.get_text_stream() as stream:  # detaches when the block ends
        async for delta in stream:
            parts.append(delta)
            print(delta, end="", flush=True)
    print()
    seen["printer"] = "".join(parts)


async def count_reasoning(result: ModelResult) -> None:
    parts = [delta async for delta in result.get_reasoning_stream()]
    print(f"  reasoning: {len(parts)} deltas: {''.join(parts)!r}")


async def count_events(result: ModelResult, types: Counter[str]) -> None:
    async for event in result.get_full_responses_stream():
        types[event.type] += 1


async def one_run_many_consumers(client: OpenRouter, model: str) -> None:
    print("== Part 1: one run, five consumers")
    result = client.call_model(model=model, input="Fan out: every consumer sees every event.")
    seen: dict[str, str] = {}
    live: Counter[str] = Counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(print_text, result, seen)
        nursery.start_soon(count_text, result, "counter", seen)
        nursery.start_soon(count_reasoning, result)
        nursery.start_soon(count_events, result, live)
    print(
        f"  events: {sum(live.values())} in all, {live['response.output_text.delta']} text deltas"
    )

    # The run is over; a new consumer still replays the log from seq 0.
    replay: Counter[str] = Counter()
    await count_events(result, replay)
    print(f"  late consumer replayed {sum(replay.values())} events, same as live: {replay == live}")
    print(
        f"  same text for everyone: {seen['printer'] == seen['counter'] == await result.get_text()}"
    )
    snapshot = result.snapshot()
    calls = snapshot.usage.model_calls
    print(f"  run {snapshot.status}; model calls for all these consumers: {calls}")


async def answer(client: OpenRouter, index: int, model: str, answers: list[str]) -> None:
    result = client.call_model(model=model, input=QUESTIONS[index % len(QUESTIONS)])
    try:
        answers[index] = await result.get_text()
    except AgentError as exc:  # this run's failure; the other runs go on
        answers[index] = f"failed: {type(exc).__name__}: {exc}"


async def many_runs(client: OpenRouter, model: str) -> None:
    print("\n== Part 2: many runs at once")
    models = [model, model, MISSING_MODEL, model]
    answers = [""] * len(models)
    async with trio.open_nursery() as nursery:
        for index, run_model in enumerate(models):
            nursery.start_soon(answer, client, index, run_model, answers)
    for index, text in enumerate(answers):
        print(f"  run {index}: {text}")


@asynccontextmanager
async def open_client(model: str | None) -> AsyncIterator[tuple[OpenRouter, str]]:
    """OpenRouter when ``OPENROUTER_API_KEY`` is set, else the embedded emulator."""
    if os.environ.get("OPENROUTER_API_KEY"):
        async with OpenRouter() as client:
            yield client, model or DEFAULT_MODEL
        return
    async with (
        open_emulator() as server,
        OpenRouter(server.inference_key, base_url=server.base_url) as client,
    ):
        yield client, model or EMULATOR_MODEL


async def main(argv: Sequence[str] | None = None) -> None:
    """Run both parts."""
    parser = argparse.ArgumentParser(description="Many consumers of one run, many runs at once.")
    parser.add_argument(
        "--model", default=None, help="default: an OpenRouter model or the emulator's"
    )
    args = parser.parse_args(argv)
    async with open_client(args.model) as (client, model):
        await one_run_many_consumers(client, model)
        await many_runs(client, model)


if __name__ == "__main__":
    trio.run(main)
