"""1,000 concurrent sessions against the emulator over real loopback HTTP.

Every session completes with its own correct answer through one shared
connection pool, while two sessions fail on purpose (a tool that raises under
``tool_errors="raise"``, and a model answering 500 until the retries run out):
those end ``failed`` and every sibling still completes.
"""

from __future__ import annotations

from typing import Any

import trio

from runtime import (
    InternalServerError,
    OpenRouter,
    RetryConfig,
    ToolError,
    open_session_pool,
    tool,
)
from runtime.emulator import open_emulator

SESSIONS = 1000


def _explode(args: dict[str, Any]) -> Any:
    raise RuntimeError("this tool always fails")


exploding = tool(name="explode", input_schema=dict[str, Any], execute=_explode)


async def test_thousand_sessions_over_loopback_with_isolated_failures() -> None:
    with trio.fail_after(240):
        async with (
            open_emulator() as server,
            OpenRouter(server.inference_key, base_url=server.base_url) as client,
            open_session_pool(client, max_concurrent=200) as pool,
        ):
            results = [
                pool.start(model="emulator/echo", input=f"question {i}") for i in range(SESSIONS)
            ]
            tool_failure = pool.start(
                model="emulator/tool-caller",
                input="go",
                tools=[exploding],
                tool_errors="raise",
            )
            model_failure = pool.start(
                model="emulator/echo:fault=500",
                input="go",
                retry=RetryConfig(initial_interval=0.01, max_retries=2),
            )
        texts = [await result.get_text() for result in results]
        tool_error = await _error_of(tool_failure)
        model_error = await _error_of(model_failure)
    assert [f"question {i}" in text for i, text in enumerate(texts)] == [True] * SESSIONS
    assert isinstance(tool_error, ToolError)
    assert isinstance(model_error, InternalServerError)
    stats = pool.statistics()
    assert (stats.done, stats.failed, stats.cancelled) == (SESSIONS, 2, 0)
    assert {tool_failure.snapshot().status, model_failure.snapshot().status} == {"failed"}
    assert stats.model_calls == SESSIONS + 1  # completed model calls
    assert server.emulator.statistics().requests == SESSIONS + 1 + 3  # the 500 was tried 3 times


async def _error_of(result: Any) -> BaseException:
    try:
        await result.get_text()
    except Exception as exc:
        return exc
    raise AssertionError("the session was expected to fail")
