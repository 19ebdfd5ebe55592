"""A real ``redis-server`` per test, on a free 127.0.0.1 port, in the test's temp dir.

Tests that use ``redis_store`` / ``redis_server`` are skipped, saying exactly what
is missing, when the ``redis-server`` binary or the ``coredis`` package is absent
(`make test` installs both). ``redis_cluster`` / ``cluster_store`` run a real
three-node Redis Cluster (``redis-server --cluster-enabled yes`` joined by
``redis-cli --cluster create``); they also need ``redis-cli``.

``emulator`` is the loopback emulator (seeded by the test module's name),
``worker_client`` an ``OpenRouter`` client on it, and ``running_worker(tools,
name, store=..., **options)`` an async context manager that runs one worker
(``run_worker``) in the test's trio run for its block, on ``redis_store`` unless
another store is given.
"""

from __future__ import annotations

import importlib.util
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
import trio

from runtime._redis.server import (
    RedisServerMissing,
    find_redis_cli,
    find_redis_server,
    open_redis_cluster,
    open_redis_server,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence
    from contextlib import AbstractAsyncContextManager
    from pathlib import Path

    from runtime._agent.tools import Tool
    from runtime._client.client import OpenRouter
    from runtime._redis.server import RedisCluster, RedisServer
    from runtime._redis.store import RedisStore
    from runtime.emulator._server import EmulatorServer


def _require(*, cluster: bool = False) -> None:
    try:
        find_redis_server()
        if cluster:
            find_redis_cli()
    except RedisServerMissing as exc:
        pytest.skip(f"needs a real Redis: {exc}")
    if importlib.util.find_spec("coredis") is None:
        pytest.skip("needs coredis: pip install 'openrouter-trio[redis]' (make test does)")


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    _require()
    with trio.fail_after(30):
        manager = open_redis_server(tmp_path)
        server = await manager.__aenter__()
    try:
        yield server
    finally:
        with trio.fail_after(30):
            await manager.__aexit__(None, None, None)


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    from runtime._redis.store import open_redis_store

    async with open_redis_store(redis_server.url, block=1.0) as store:
        yield store


@pytest.fixture
async def redis_cluster(tmp_path: Path) -> AsyncIterator[RedisCluster]:
    _require(cluster=True)
    with trio.fail_after(60):
        manager = open_redis_cluster(tmp_path)
        cluster = await manager.__aenter__()
    try:
        yield cluster
    finally:
        with trio.fail_after(60):
            await manager.__aexit__(None, None, None)


@pytest.fixture
async def cluster_store(redis_cluster: RedisCluster) -> AsyncIterator[RedisStore]:
    from runtime._redis.store import open_redis_store

    async with open_redis_store(redis_cluster.url, block=1.0) as store:
        yield store


@pytest.fixture
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[EmulatorServer]:
    from runtime.emulator._core import Emulator
    from runtime.emulator._server import open_emulator

    async with open_emulator(emulator=Emulator(seed=request.module.__name__)) as server:
        yield server


@pytest.fixture
async def worker_client(emulator: EmulatorServer) -> AsyncIterator[OpenRouter]:
    from runtime._client.client import OpenRouter

    async with OpenRouter(emulator.inference_key, base_url=emulator.base_url) as client:
        yield client


@pytest.fixture
def running_worker(
    redis_store: RedisStore, worker_client: OpenRouter
) -> Callable[..., AbstractAsyncContextManager[None]]:
    from runtime._cli.worker import WorkerOptions, run_worker

    @asynccontextmanager
    async def running(
        tools: Sequence[Tool], name: str = "w1", **options: Any
    ) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                run_worker,
                redis_store,
                worker_client,
                list(tools),
                WorkerOptions(name=name, **options),
            )
            yield
            nursery.cancel_scope.cancel()

    return running
