"""``openrouter-trio run``: stream one agent answer to the terminal.

Uses OpenRouter when ``OPENROUTER_API_KEY`` is set, and otherwise starts the
embedded emulator in the same trio run (Rule 5 of :mod:`runtime._cli.main`).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Final

from runtime._agent.stop import step_count_is
from runtime._cli.render import Transcript, print_line
from runtime._cli.tools import DEMO_MODEL, demo_tools
from runtime._client.client import OpenRouter
from runtime._http.retry import RetryConfig
from runtime.emulator._server import open_emulator

if TYPE_CHECKING:
    import argparse

    from rich.console import Console

__all__ = ["REMOTE_MODEL", "run_command"]

REMOTE_MODEL: Final = "openrouter/auto"
"""The model ``run`` asks real OpenRouter for when ``--model`` is not given."""


async def run_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    key = os.environ.get("OPENROUTER_API_KEY", "").strip() or None
    retry = RetryConfig(max_retries=args.retries, max_interval=10.0, max_elapsed_time=60.0)
    stop_when = None if args.max_turns is None else step_count_is(args.max_turns)
    tools = demo_tools(steps=3, delay=0.1) if args.tools else []
    async with contextlib.AsyncExitStack() as stack:
        base_url: str | None = args.base_url
        model: str = args.model or REMOTE_MODEL
        if key is None and base_url is None:
            server = await stack.enter_async_context(open_emulator())
            print_line(
                err, f"no OPENROUTER_API_KEY: using the embedded emulator at {server.base_url}"
            )
            key, base_url, model = server.inference_key, server.base_url, args.model or DEMO_MODEL
        client = await stack.enter_async_context(
            OpenRouter(api_key=key, base_url=base_url, retry=retry)
        )
        result = client.call_model(model=model, input=args.prompt, tools=tools, stop_when=stop_when)
        started = time.perf_counter()
        transcript = Transcript(out)
        try:
            async with result.get_full_responses_stream() as stream:
                async for event in stream:
                    transcript.feed(event)
        finally:
            transcript.end_line()
        usage = await result.get_usage()
        print_line(out, transcript.usage_line(usage, time.perf_counter() - started), style="dim")
    return 0
