"""A research agent: a typed tool, a generator tool that reports progress, live output.

What it shows:

* ``@function_tool`` turning a typed function, ``search(query: str, limit: int = 3)
  -> list[Result]``, into a tool: the model gets a JSON Schema made from the
  signature and the docstring, the arguments are validated against it, and the
  result is checked against the return type.
* A *generator* tool, ``read_sources``: every ``yield Progress(...)`` becomes a
  ``tool.preliminary_result`` event while the tool runs, and ``yield
  FinalResult(notes)`` ends it with the value the model reads.
* One consumer of ``get_full_responses_stream()`` that prints the answer as it
  streams, each tool call, its progress and its result, turn by turn.
* A stop condition (any of: 4 tool rounds, or 25 cents spent) and the usage of
  the whole run at the end.

Run it::

    python docs/examples/research_agent.py
    OPENROUTER_API_KEY=sk-or-... python docs/examples/research_agent.py \\
        --model openai/gpt-4o-mini --question "How does trio cancel work?"

Without ``OPENROUTER_API_KEY`` it starts the local OpenRouter emulator on
127.0.0.1 and uses its ``emulator/tool-caller`` model, which calls every tool
once (with arguments made from each tool's JSON Schema) and then sums up what
the tools returned. With a key it talks to OpenRouter.

The "web" here is a small built-in corpus, so the example needs no search API.
"""

from __future__ import annotations

import argparse
import os
import re
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import msgspec
import trio

from runtime import (
    FinalResult,
    FunctionCallItem,
    ModelResult,
    OpenRouter,
    OutputItemDone,
    OutputTextDelta,
    ToolPreliminaryResult,
    ToolResult,
    TurnStart,
    function_tool,
    max_cost,
    step_count_is,
)
from runtime.emulator import open_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

EMULATOR_MODEL = "emulator/tool-caller"
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_QUESTION = "How does trio make sure that no task is left running?"
INSTRUCTIONS = (
    "You are a research assistant. Use `search` to find sources about the question, "
    "then `read_sources` with the ids of the most relevant results, then answer in two "
    "or three sentences that name the sources you used."
)
READ_DELAY = 0.05  # seconds; stands in for downloading a page


class Source(msgspec.Struct, frozen=True):
    """One document of the corpus."""

    id: int
    title: str
    url: str
    text: str


class Result(msgspec.Struct, frozen=True):
    """A search hit, as the model sees it."""

    id: int
    title: str
    url: str
    snippet: str


class Progress(msgspec.Struct, frozen=True):
    """A progress event of ``read_sources`` (a ``tool.preliminary_result``)."""

    read: int
    total: int
    title: str


class Notes(msgspec.Struct, frozen=True):
    """What ``read_sources`` returns to the model."""

    notes: list[str]


CORPUS = (
    Source(
        id=1,
        title="Nurseries",
        url="https://trio.readthedocs.io/en/stable/reference-core.html#nurseries",
        text=(
            "A nursery owns the tasks started in it: the async with block does not exit "
            "until every task has finished, and an exception in one task cancels the others."
        ),
    ),
    Source(
        id=2,
        title="Cancel scopes",
        url="https://trio.readthedocs.io/en/stable/reference-core.html#cancellation",
        text=(
            "move_on_after and fail_after open a cancel scope; at the deadline everything "
            "inside it is cancelled, at its next checkpoint."
        ),
    ),
    Source(
        id=3,
        title="Checkpoints",
        url="https://trio.readthedocs.io/en/stable/reference-core.html#checkpoints",
        text=(
            "Every async function of trio is a checkpoint: a point where the task may be "
            "cancelled and where other tasks get to run."
        ),
    ),
    Source(
        id=4,
        title="Memory channels",
        url="https://trio.readthedocs.io/en/stable/reference-core.html#channels",
        text=(
            "open_memory_channel gives a send and a receive end with a bounded buffer; a "
            "full buffer makes send wait, which pushes back on fast producers."
        ),
    ),
)
SOURCES_BY_ID = {source.id: source for source in CORPUS}
_WORD = re.compile(r"[a-z]{3,}")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


@function_tool
def search(query: str, limit: int = 3) -> list[Result]:
    """Search the documentation and return the best matches.

    Args:
        query: what to look for, in a few words.
        limit: how many results to return.
    """
    wanted = _words(query)
    ranked = sorted(CORPUS, key=lambda s: -len(wanted & _words(f"{s.title} {s.text}")))
    return [Result(id=s.id, title=s.title, url=s.url, snippet=s.text[:80]) for s in ranked[:limit]]


@function_tool(event_schema=Progress, output_schema=Notes)
async def read_sources(ids: list[int]) -> AsyncIterator[Progress | FinalResult[Notes]]:
    """Read search results in full and take notes.

    Args:
        ids: the ``id`` of each search result to read.
    """
    notes: list[str] = []
    for done, source_id in enumerate(ids, start=1):
        await trio.sleep(READ_DELAY)
        source = SOURCES_BY_ID.get(source_id)
        if source is None:
            title = f"#{source_id} (no such result)"
        else:
            title = source.title
            notes.append(f"{source.title}: {source.text}")
        yield Progress(read=done, total=len(ids), title=title)
    yield FinalResult(Notes(notes=notes))


def _short(value: object, width: int = 100) -> str:
    text = msgspec.json.encode(value).decode()
    return text if len(text) <= width else text[: width - 3] + "..."


async def run_research(client: OpenRouter, question: str, *, model: str) -> ModelResult:
    """Run the agent on ``question``, printing everything as it happens.

    Returns:
        The finished run (its text, response and usage stay available).
    """
    result = client.call_model(
        model=model,
        instructions=INSTRUCTIONS,
        input=question,
        tools=[search, read_sources],
        stop_when=[step_count_is(4), max_cost(0.25)],
    )
    names: dict[str, str] = {}  # call_id -> tool name
    async for event in result.get_full_responses_stream():
        match event:
            case TurnStart(turn_number=turn):
                print(f"\n[turn {turn}]")
            case OutputTextDelta(delta=delta):
                print(delta, end="", flush=True)
            case OutputItemDone(item=FunctionCallItem(call_id=call_id, name=name) as call):
                names[call_id] = name
                print(f"  -> {name}({call.arguments})")
            case ToolPreliminaryResult(result=Progress(read=read, total=total, title=title)):
                print(f"     reading {read}/{total}: {title}")
            case ToolResult(tool_call_id=call_id, result=value):
                print(f"  <- {names.get(call_id, call_id)}: {_short(value)}")
    usage = await result.get_usage()
    cost = "unknown" if usage.cost is None else f"${usage.cost:.6f}"
    print(
        f"\n\nusage: {usage.model_calls} model calls, {usage.input_tokens} input + "
        f"{usage.output_tokens} output tokens, cost {cost}"
    )
    return result


@asynccontextmanager
async def open_client(model: str | None) -> AsyncIterator[tuple[OpenRouter, str]]:
    """OpenRouter when ``OPENROUTER_API_KEY`` is set, else the embedded emulator."""
    if os.environ.get("OPENROUTER_API_KEY"):
        async with OpenRouter(app_title="openrouter-trio research example") as client:
            yield client, model or DEFAULT_MODEL
        return
    async with (
        open_emulator() as server,
        OpenRouter(server.inference_key, base_url=server.base_url) as client,
    ):
        print(f"(no OPENROUTER_API_KEY: using the local emulator at {server.base_url})")
        yield client, model or EMULATOR_MODEL


async def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and run the agent once."""
    parser = argparse.ArgumentParser(description="A research agent with tools, streamed live.")
    parser.add_argument("--question", default=DEFAULT_QUESTION)
    parser.add_argument(
        "--model", default=None, help="default: an OpenRouter model or the emulator's"
    )
    args = parser.parse_args(argv)
    async with open_client(args.model) as (client, model):
        print(f"question: {args.question}\nmodel: {model}")
        await run_research(client, args.question, model=model)


if __name__ == "__main__":
    trio.run(main)
