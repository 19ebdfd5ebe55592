"""A real ``redis-server`` per test, on a free 127.0.0.1 port, in the test's temp dir.

Tests that use ``redis_store`` / ``redis_server`` are skipped, saying exactly what
is missing, when the ``redis-server`` binary or the ``coredis`` package is absent
(`make test` installs both). ``redis_cluster`` / ``cluster_store`` run a real
three-node Redis Cluster (``redis-server --cluster-enabled yes`` joined by
``redis-cli --cluster create``); they also need ``redis-cli``.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

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
    from collections.abc import AsyncIterator
    from pathlib import Path

    from runtime._redis.server import RedisCluster, RedisServer
    from runtime._redis.store import RedisStore


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
