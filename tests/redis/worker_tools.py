"""Tools for the worker processes of the scale-out tests.

Workers load them with ``--tools tests.redis.worker_tools:tools``.

``probe`` appends its call id to the file named by ``PROBE_LOG`` when it starts
(so the test can count executions across processes), then reports
``PROBE_STEPS`` progress events, ``PROBE_DELAY`` seconds apart.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from runtime._agent.outcomes import FinalResult
from runtime._agent.tools import Tool, tool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Probe(msgspec.Struct, frozen=True):
    target: str


class Step(msgspec.Struct, frozen=True):
    done: int


class Found(msgspec.Struct, frozen=True):
    target: str
    steps: int


def tools() -> list[Tool]:
    steps = int(os.environ.get("PROBE_STEPS", "3"))
    delay = float(os.environ.get("PROBE_DELAY", "0"))
    record = os.environ.get("PROBE_LOG")

    async def probe(arguments: Probe, context: Any) -> AsyncIterator[Step | FinalResult[Found]]:
        if record:
            with open(record, "a", encoding="utf-8") as file:  # noqa: ASYNC230 - one line
                file.write(f"{os.getpid()} {context.tool_call.id}\n")
        for done in range(1, steps + 1):
            yield Step(done=done)
            await trio.sleep(delay)
        yield FinalResult(Found(target=arguments.target, steps=steps))

    return [
        tool(
            name="probe",
            description="Probe a target.",
            input_schema=Probe,
            output_schema=Found,
            event_schema=Step,
            execute=probe,
        )
    ]
