"""``openrouter-trio serve``: demo sessions, the websocket feed and the dashboard page.

A composition root like the CLI itself (it wires the emulator, the client, a
session pool and the feed together), so it may import ``actors``.

What runs, all in one trio nursery (with ``workers``, in each of N child
processes instead: ``runtime._cli.serve_workers``): an emulator on loopback (or real
OpenRouter when ``OPENROUTER_API_KEY`` is set), an ``OpenRouter`` client on it,
a session pool that keeps starting agent sessions with the demo tools, and
``serve_dashboard`` (the page plus the feed). The sessions stream slowly on
purpose (the emulator's ``slow`` fault) so that a person can watch the text
and the tool progress arrive.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from typing import TYPE_CHECKING, Final

import msgspec
import trio

from actors._feed.server import DashboardAddress, serve_dashboard
from runtime._base.errors import ConfigurationError
from runtime._client.client import OpenRouter
from runtime._client.pool import open_session_pool
from runtime._redis.registry import open_redis_registry
from runtime._redis.store import open_redis_store
from runtime._redis.work import submit_run
from runtime.emulator._core import Emulator
from runtime.emulator._server import open_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from runtime._agent.tools import Tool

__all__ = ["ServeOptions", "ServedDashboard", "serve_sessions"]

EMULATOR_MODEL: Final = "emulator/tool-caller"


TOKEN_ENV: Final = "OPENROUTER_TRIO_FEED_TOKEN"
"""The environment variable ``serve`` reads the feed's token from."""


def resolve_token(options: ServeOptions, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The feed's token and whether it was generated (see ``ServeOptions.token``).

    Raises:
        ConfigurationError: the token file cannot be read or is empty (the message
            names the file, never its content).
    """
    if options.token:
        return options.token, False
    if options.token_file is not None:
        try:
            with open(options.token_file, encoding="utf-8") as file:
                token = file.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"Cannot read the feed token file {options.token_file!r}: {type(exc).__name__}."
            ) from None
        if not token:
            raise ConfigurationError(f"The feed token file {options.token_file!r} is empty.")
        return token, False
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        return token, False
    return secrets.token_urlsafe(18), True


class ServeOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What ``serve`` runs.

    Attributes:
        host: the interface the page and the feed bind.
        port: the page's port (0: any free one).
        feed_port: the websocket feed's port (0: any free one).
        reuse_port: bind both ports with ``SO_REUSEPORT``, so that several
            ``serve`` processes share them (Linux spreads connections).
        token: the feed's token; when ``None``, read from ``token_file``, else from
            the ``OPENROUTER_TRIO_FEED_TOKEN`` environment variable, else a random
            one (the only case in which it is printed).
        token_file: a file holding the feed's token (surrounding blanks ignored).
        sessions: how many sessions to run in all (0: keep starting new ones).
        concurrency: sessions running at once.
        interval: seconds between two session starts.
        token_delay: seconds the emulator waits before each streamed event.
        model: the model (default: the emulator's tool caller, or OpenRouter's
            ``openai/gpt-4o-mini`` with a key).
        redis: serve every run in this Redis instead of local sessions.
        workers: with ``redis``, serve from this many child processes sharing
            both ports (0: from this process).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    feed_port: int = 0
    reuse_port: bool = False
    token: str | None = None
    token_file: str | None = None
    sessions: int = 0
    concurrency: int = 4
    interval: float = 1.0
    token_delay: float = 0.05
    model: str | None = None
    redis: str | None = None
    workers: int = 0


class ServedDashboard(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`serve_sessions` reports once everything listens.

    ``open_url`` carries the token in its fragment (never sent to the server)
    only when ``serve`` generated it; a token the user gave is never echoed, and
    ``open_url`` is then the bare page URL (add ``#token=...`` yourself).
    ``pids`` are the serving child processes (empty: this process serves).
    """

    address: DashboardAddress
    token: str
    open_url: str
    backend: str
    pids: tuple[int, ...] = ()

    def __repr__(self) -> str:  # never show the token (nor the URL that may carry it)
        return f"ServedDashboard(address={self.address!r}, backend={self.backend!r})"

    @classmethod
    def of(
        cls,
        address: DashboardAddress,
        token: str,
        *,
        generated: bool,
        backend: str,
        pids: tuple[int, ...] = (),
    ) -> ServedDashboard:
        """The report for ``address``: its URL carries the token only if ``generated``."""
        open_url = f"{address.url}#token={token}" if generated else address.url
        return cls(address=address, token=token, open_url=open_url, backend=backend, pids=pids)


async def serve_sessions(
    options: ServeOptions,
    tools: list[Tool],
    *,
    task_status: trio.TaskStatus[ServedDashboard] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run demo sessions and serve them on the dashboard until cancelled.

    Startable: ``served = await nursery.start(serve_sessions, options, tools)``.
    Cancelling it cancels the sessions and closes the servers (and stops the
    child processes of ``workers``).

    Raises:
        ConfigurationError: ``workers`` without ``redis``, a bad token file, or
            ``reuse_port``/``workers`` on a platform without ``SO_REUSEPORT``.
        ChildProcessError: with ``workers``, a child process exited.
    """
    if options.workers and options.redis is None:
        raise ConfigurationError(
            f"--workers {options.workers!r} needs --redis URL: each serve process would "
            "only see its own sessions; with Redis every process follows every run."
        )
    token, generated = resolve_token(options, os.environ)
    if options.workers:
        from runtime._cli.serve_workers import serve_processes

        async with trio.open_nursery() as nursery:
            shared, pids = await nursery.start(serve_processes, options, token, os.environ)
            task_status.started(
                ServedDashboard.of(
                    shared, token, generated=generated, backend="Redis workers", pids=pids
                )
            )
        return
    if options.redis is not None:
        await _serve_redis(options, token, generated, task_status)
        return
    key = os.environ.get("OPENROUTER_API_KEY")
    async with _backend(key) as (client, backend):
        model = options.model or (EMULATOR_MODEL if key is None else "openai/gpt-4o-mini")
        if key is None and options.token_delay > 0:
            model = f"{model}:fault=slow={options.token_delay}"
        async with (
            open_session_pool(client, max_concurrent=options.concurrency) as pool,
            trio.open_nursery() as nursery,
        ):
            address: DashboardAddress = await nursery.start(_dashboard, pool, options, token)
            task_status.started(
                ServedDashboard.of(address, token, generated=generated, backend=backend)
            )
            started = 0
            while options.sessions == 0 or started < options.sessions:
                started += 1
                pool.start(
                    model=model,
                    input=f"Session {started}: weather in Paris, then scan the table.",
                    tools=tools,
                )
                await trio.sleep(options.interval)
            await trio.sleep_forever()


async def _serve_redis(
    options: ServeOptions,
    token: str,
    generated: bool,
    task_status: trio.TaskStatus[ServedDashboard],
) -> None:
    """``serve --redis``: the dashboard and feed over every run in Redis (run by workers);
    with ``sessions`` > 0, also submit that many demo sessions for the workers."""
    assert options.redis is not None
    async with (
        open_redis_store(options.redis) as store,
        open_redis_registry(store) as registry,
        trio.open_nursery() as nursery,
    ):
        address: DashboardAddress = await nursery.start(_dashboard, registry, options, token)
        task_status.started(
            ServedDashboard.of(address, token, generated=generated, backend="Redis workers")
        )
        model = options.model or EMULATOR_MODEL
        if options.token_delay > 0 and model.startswith("emulator/"):
            model = f"{model}:fault=slow={options.token_delay}"
        for number in range(1, options.sessions + 1):
            await submit_run(
                store,
                model=model,
                input=f"Session {number}: weather in Paris, then scan the table.",
                tools=["get_weather", "scan_table"],
            )
            await trio.sleep(options.interval)
        await trio.sleep_forever()


async def _dashboard(
    pool: object,
    options: ServeOptions,
    token: str,
    *,
    task_status: trio.TaskStatus[DashboardAddress] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve_dashboard(
        pool,  # type: ignore[arg-type]  # the pool is a SessionRegistry
        options.host,
        options.port,
        token=token,
        feed_port=options.feed_port,
        reuse_port=options.reuse_port,
        task_status=task_status,
    )


@contextlib.asynccontextmanager
async def _backend(key: str | None) -> AsyncIterator[tuple[OpenRouter, str]]:
    """An ``OpenRouter`` client on real OpenRouter (with a key) or an embedded emulator."""
    if key is not None:
        async with OpenRouter(key) as client:
            yield client, "OpenRouter"
        return
    async with (
        open_emulator(emulator=Emulator(seed="openrouter-trio-serve")) as server,
        OpenRouter(server.inference_key, base_url=server.base_url) as client,
    ):
        yield client, f"embedded emulator at {server.base_url}"
