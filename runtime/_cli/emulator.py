"""``openrouter-trio emulator``: serve the local OpenRouter emulator until Ctrl-C."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import trio

from runtime._cli.render import print_line
from runtime._cli.tools import DEMO_MODEL
from runtime.emulator._core import Emulator
from runtime.emulator._models import BUILTIN_MODELS
from runtime.emulator._server import serve_emulator

if TYPE_CHECKING:
    from rich.console import Console

    from runtime.emulator._server import EmulatorServer

__all__ = ["serve_emulator_command"]


async def serve_emulator_command(
    host: str,
    port: int,
    *,
    console: Console,
    inference_key: str | None = None,
    management_key: str | None = None,
    task_status: trio.TaskStatus[EmulatorServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the emulator until cancelled, printing its URLs and keys once it listens.

    Startable: ``server = await nursery.start(serve_emulator_command, host, 0, ...)``.
    The keys printed are the emulator's own loopback keys, never ``OPENROUTER_API_KEY``:
    generated, or the ones given (``--key``, ``--management-key`` or
    ``OPENROUTER_EMULATOR_KEY``, ``OPENROUTER_EMULATOR_MANAGEMENT_KEY``), so that
    a script can know them in advance. The "Try:" lines are a command that
    works as printed against this emulator.

    Raises:
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    async with trio.open_nursery() as nursery:
        server: EmulatorServer = await nursery.start(
            functools.partial(
                serve_emulator,
                host,
                port,
                emulator=Emulator(inference_key=inference_key, management_key=management_key),
            )
        )
        models = ", ".join(BUILTIN_MODELS)
        for text in (
            f"OpenRouter emulator listening on {server.url}",
            f"  base URL        {server.base_url}",
            f"  inference key   {server.inference_key}",
            f"  management key  {server.management_key}",
            f"  models          {models}",
            "Try:",
            f"  OPENROUTER_BASE_URL={server.base_url} \\",
            f"  OPENROUTER_API_KEY={server.inference_key} \\",
            f'  openrouter-trio run --model {DEMO_MODEL} --tools "What is the weather?"',
            "Press Ctrl-C to stop.",
        ):
            print_line(console, text)
        task_status.started(server)
