"""Scale-out on a real three-node Redis Cluster: nothing fails with CROSSSLOT.

The runs' keys (hash tag ``{<run id>}``) spread over the nodes, the deployment's
keys (hash tag ``{<prefix>}``) share one; every transaction and script stays in
one slot. A worker runs a submitted session, a reader and a feed registry follow
it, a lost worker's run is taken over, a stopped worker's run is handed back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from runtime._cli.worker import WorkerOptions, run_worker
from runtime._client.client import OpenRouter
from runtime._protocol.events import ToolPreliminaryResult, ToolResult, TurnRetry, TurnStart
from runtime._redis.registry import open_redis_registry
from runtime._redis.store import open_run_reader
from runtime._redis.work import cancel_run, submit_run
from runtime.emulator._core import Emulator
from runtime.emulator._server import open_emulator
from tests.redis.test_worker import _follow, _wait_status, counting_tools

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime._redis.store import RedisStore
    from runtime.emulator._server import EmulatorServer


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    async with open_emulator(emulator=Emulator(seed="redis-cluster-tests")) as server:
        yield server


async def _slot(store: RedisStore, key: str) -> int:
    return int(await store.client.cluster_keyslot(key))


async def test_the_keys_of_a_run_share_a_slot_and_runs_spread_over_the_nodes(
    cluster_store: RedisStore,
) -> None:
    keys = cluster_store.keys
    with trio.fail_after(30):
        shared = {await _slot(cluster_store, k) for k in (keys.sessions, keys.runs, keys.registry)}
        shared |= {await _slot(cluster_store, k) for k in (keys.cancels, keys.finished)}
        per_run = [
            {await _slot(cluster_store, k) for k in keys.run_keys(f"run_{n}")} for n in range(20)
        ]
    assert len(shared) == 1
    assert all(len(slots) == 1 for slots in per_run)
    assert len(set().union(*per_run)) > 10  # the runs' streams spread over the slots


async def test_cancelled_blocking_reads_do_not_use_up_the_cluster_clients_connections(
    cluster_store: RedisStore,
) -> None:
    """Readers stop by cancellation; coredis alone loses a pooled connection each time
    (ten per node by default), then every command to that node waits forever."""
    with trio.fail_after(30):
        for _ in range(25):
            await cluster_store.read("run_x", -1, block=False)  # a connection is open
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cluster_store.read, "run_x", -1)  # XREAD BLOCK
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
        assert await cluster_store.read("run_x", -1, block=False) == []


async def test_a_worker_on_a_cluster_runs_a_session_that_a_reader_and_a_registry_follow(
    cluster_store: RedisStore, emulator: EmulatorServer
) -> None:
    executions: list[str] = []
    events: list[Any] = []
    with trio.fail_after(60):
        async with (
            OpenRouter(emulator.inference_key, base_url=emulator.base_url) as client,
            open_redis_registry(cluster_store) as registry,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(
                run_worker, cluster_store, client, counting_tools(executions, 3),
                WorkerOptions(name="w1", lease=2.0, keep_finished=3600),
            )  # fmt: skip
            run_id = await submit_run(
                cluster_store, model="emulator/tool-caller", input="probe x", tools=["probe"]
            )
            await _follow(cluster_store, run_id, events)
            snap = await _wait_status(cluster_store, run_id, "done")
            # The feed's registry lists it (hash + stream) and mirrors its stream.
            cursor = registry.events(run_id, 0)
            mirrored = [event async for event in cursor]
            await cancel_run(cluster_store, run_id)  # ended: a no-op, in the run's slot
            nursery.cancel_scope.cancel()
    kinds = [type(e) for e in events]
    assert kinds.count(TurnStart) == 2
    assert kinds.count(ToolResult) == 1
    assert len(executions) == 1
    assert snap.next_seq == len(events)
    assert len(mirrored) == len(events)
    assert registry.snapshot(run_id).status == "done"
    assert await cluster_store.client.exists([cluster_store.keys.cancel(run_id)]) == 0
    assert 0 < await cluster_store.client.ttl(cluster_store.keys.events(run_id)) <= 3600


async def _interrupted_run(
    store: RedisStore, client: OpenRouter, first: WorkerOptions, then: WorkerOptions
) -> list[Any]:
    """Run a session on a worker ``first``, stopped mid-tool (its tool never ends),
    then on ``then``; the events a reader followed throughout."""
    executions: list[str] = []
    events: list[Any] = []
    async with trio.open_nursery() as nursery:
        stopped = trio.CancelScope()

        async def worker() -> None:
            with stopped:
                await run_worker(store, client, counting_tools(executions, 3, trio.Event()), first)

        nursery.start_soon(worker)
        run_id = await submit_run(
            store, model="emulator/tool-caller", input="probe", tools=["probe"]
        )
        async with open_run_reader(store, run_id) as cursor:
            async for event in cursor:
                events.append(event)
                if type(event) is ToolPreliminaryResult:
                    break
            stopped.cancel()
            await nursery.start(run_worker, store, client, counting_tools(executions, 3), then)
            with trio.fail_after(20):  # far below a 60 s lease
                async for event in cursor:
                    events.append(event)
        nursery.cancel_scope.cancel()
    assert len(executions) == 1  # the call ran once, on the first worker
    return events


async def test_on_a_cluster_a_lost_workers_run_is_taken_over_and_a_stopped_ones_handed_back(
    cluster_store: RedisStore, emulator: EmulatorServer
) -> None:
    with trio.fail_after(60):
        async with OpenRouter(emulator.inference_key, base_url=emulator.base_url) as client:
            # Lost: it hands nothing back, its lease (0.6 s) expires, XAUTOCLAIM.
            taken = await _interrupted_run(
                cluster_store, client,
                WorkerOptions(name="lost", lease=0.6, hand_back=0),
                WorkerOptions(name="heir", lease=0.6),
            )  # fmt: skip
            # Stopped: it hands the run back; the next worker's lease is 60 s.
            handed = await _interrupted_run(
                cluster_store, client,
                WorkerOptions(name="stopped", lease=60),
                WorkerOptions(name="next", lease=60),
            )  # fmt: skip
    for events in (taken, handed):
        kinds = [type(e) for e in events]
        assert kinds.count(TurnRetry) == 1
        assert kinds[kinds.index(TurnRetry) :].count(ToolResult) == 1
        assert kinds.count(TurnStart) == 2
