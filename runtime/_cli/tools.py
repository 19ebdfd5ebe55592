"""The demo tools of the command line: a typed tool and a generator tool.

``run --tools``, ``demo`` and ``serve`` offer them; :data:`DEMO_MODEL`, the
emulator model that calls them, runs a real tool loop with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal

import msgspec
import trio

from runtime._agent.outcomes import FinalResult
from runtime._agent.tools import Tool, function_tool, tool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = [
    "DEMO_MODEL",
    "ScanInput",
    "ScanProgress",
    "ScanReport",
    "Weather",
    "demo_tools",
    "get_weather",
]

DEMO_MODEL: Final = "emulator/tool-caller"
"""The emulator model of ``demo`` (and of ``run`` without a key): a real tool loop."""


Unit = Literal["c", "f"]


class Weather(msgspec.Struct, frozen=True, kw_only=True):
    """What ``get_weather`` returns."""

    city: str
    temperature: int
    unit: Unit


class ScanInput(msgspec.Struct, frozen=True, kw_only=True):
    """The arguments of ``scan_table``."""

    table: str


class ScanProgress(msgspec.Struct, frozen=True, kw_only=True):
    """A progress event of ``scan_table`` (a ``tool.preliminary_result``)."""

    done: int
    total: int


class ScanReport(msgspec.Struct, frozen=True, kw_only=True):
    """The final result of ``scan_table``."""

    table: str
    rows: int


@function_tool
def get_weather(city: str, unit: Unit = "c") -> Weather:
    """Current weather for a city (deterministic: derived from the name).

    Args:
        city: the city name.
        unit: "c" for Celsius or "f" for Fahrenheit.
    """
    celsius = sum(map(ord, city)) % 35
    return Weather(
        city=city, temperature=celsius if unit == "c" else celsius * 9 // 5 + 32, unit=unit
    )


def demo_tools(steps: int, delay: float) -> list[Tool]:
    """The tools of ``demo`` and ``run --tools``: a typed tool and a generator tool.

    Args:
        steps: how many progress events ``scan_table`` reports per call.
        delay: seconds ``scan_table`` waits before each progress event (0: none).

    Returns:
        ``[get_weather, scan_table]``.
    """

    async def scan(arguments: ScanInput) -> AsyncIterator[ScanProgress | FinalResult[ScanReport]]:
        for done in range(1, steps + 1):
            if delay:
                await trio.sleep(delay)
            yield ScanProgress(done=done, total=steps)
        yield FinalResult(ScanReport(table=arguments.table, rows=1000 * steps))

    scan_table = tool(
        name="scan_table",
        description="Scan a table and count its rows, reporting progress as it goes.",
        input_schema=ScanInput,
        output_schema=ScanReport,
        event_schema=ScanProgress,
        execute=scan,
    )
    return [get_weather, scan_table]
