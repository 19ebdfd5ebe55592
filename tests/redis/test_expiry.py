"""Ended runs expire; live runs never do (a real redis-server, a worker, the emulator)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pytest
import trio

from runtime._agent.usage import RunUsage
from runtime._base.errors import ConfigurationError
from runtime._protocol.events import ToolPreliminaryResult, TurnStart
from runtime._redis.registry import open_redis_registry
from runtime._redis.store import open_run_reader
from runtime._redis.work import cancel_run, prune_finished, publish_snapshot, submit_run
from runtime._run.status import RunSnapshot
from tests.redis.test_worker import _wait_status, counting_tools

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    RunningWorker = Callable[..., AbstractAsyncContextManager[None]]
    from runtime._redis.store import RedisStore

KEEP = 3600


async def _ttls(store: RedisStore, run_id: str) -> list[int]:
    """The TTL of each of the run's keys (-1: none, -2: no such key)."""
    return [await store.client.ttl(key) for key in store.keys.run_keys(run_id)]


async def test_a_running_runs_keys_have_no_ttl_and_an_ended_runs_keys_all_get_one(
    redis_store: RedisStore, running_worker: RunningWorker
) -> None:
    executions: list[str] = []
    gate = trio.Event()  # never set: the tool stays running
    events: list[Any] = []
    running: list[int] = []
    with trio.fail_after(60):
        async with running_worker(counting_tools(executions, 3, gate), keep_finished=KEEP):
            run_id = await submit_run(
                redis_store, model="emulator/tool-caller", input="probe", tools=["probe"]
            )
            async with open_run_reader(redis_store, run_id) as cursor:
                async for event in cursor:
                    events.append(event)
                    if type(event) is ToolPreliminaryResult and not running:
                        # Stream, checkpoint and tool record exist; no cancel key yet.
                        running += await _ttls(redis_store, run_id)
                        await cancel_run(redis_store, run_id)
            await _wait_status(redis_store, run_id, "cancelled")
    assert running == [-1, -1, -2, -1]
    ended = await _ttls(redis_store, run_id)
    assert all(0 < ttl <= KEEP for ttl in ended), ended
    due = await redis_store.client.zscore(redis_store.keys.finished, run_id)
    assert due is not None  # the registry entry is due for removal too
    assert TurnStart in [type(e) for e in events]


async def test_keep_zero_keeps_an_ended_run_and_a_bad_keep_is_named(
    redis_store: RedisStore,
) -> None:
    await redis_store.append("r1", 0, [TurnStart(turn_number=0, timestamp=1)])
    await redis_store.end("r1", 1, "done", keep=0)
    await redis_store.append("r2", 0, [TurnStart(turn_number=0, timestamp=1)])
    await redis_store.end("r2", 1, "done", keep=0.5)
    assert await _ttls(redis_store, "r1") == [-1, -2, -2, -2]
    assert 0 <= await redis_store.client.pttl(redis_store.keys.events("r2")) <= 500
    with pytest.raises(ConfigurationError, match="-1"):
        await redis_store.end("r3", 0, "done", keep=-1)
    assert await redis_store.client.exists([redis_store.keys.events("r3")]) == 0


def _snapshot(run_id: str, status: Literal["running", "done"]) -> RunSnapshot:
    return RunSnapshot(
        id=run_id, model="m", status=status, turn=0, usage=RunUsage(),
        tool_calls_executed=0, next_seq=0,
    )  # fmt: skip


async def test_prune_finished_removes_due_runs_from_the_registry_and_tells_every_feed(
    redis_store: RedisStore,
) -> None:
    keys = redis_store.keys
    await publish_snapshot(redis_store, _snapshot("run_live", "running"))
    await publish_snapshot(redis_store, _snapshot("run_kept", "done"), keep=KEEP)
    await publish_snapshot(redis_store, _snapshot("run_due", "done"), keep=KEEP)
    with trio.fail_after(30):
        async with open_redis_registry(redis_store) as registry:
            assert {s.id for s in registry.sessions()} == {"run_live", "run_kept", "run_due"}
            watch = registry.watch()
            # As if its week were over: its due time is in the past.
            await redis_store.client.zadd(keys.finished, {"run_due": 1})
            assert await prune_finished(redis_store) == 1
            update = await watch.receive()
            watch.close()
        assert (update.kind, update.session.id) == ("removed", "run_due")
        assert {s.id for s in registry.sessions()} == {"run_live", "run_kept"}
    assert set(await redis_store.client.hkeys(keys.runs)) == {b"run_live", b"run_kept"}
    assert await redis_store.client.zrange(keys.finished, 0, -1) == (b"run_kept",)
    assert await prune_finished(redis_store) == 0
