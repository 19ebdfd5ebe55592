"""Tests for runtime._client.pool: admission, fault isolation, cancellation, the registry.

Rules: the model is ``runtime.testing.FakeOpenRouter`` (its built-in
``emulator/echo`` answers with the input, and a ``:fault=500`` model suffix
answers 500). Admission is observed at the HTTP seam with :class:`GatedTransport`,
which counts requests in flight and holds them until a gate opens; the system
is let to settle with ``wait_all_tasks_blocked``. Every test is bounded by
``trio.fail_after``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing

from runtime._agent.tools import function_tool
from runtime._base.errors import ConfigurationError, InternalServerError, RunCancelled
from runtime._client.client import OpenRouter
from runtime._client.pool import SessionPool, open_session_pool
from runtime._http.retry import RetryConfig
from runtime.testing import FakeOpenRouter

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime._client.result import ModelResult
    from runtime._run.registry import RegistryUpdate, SessionRegistry

NO_RETRY = RetryConfig(strategy="none")


class GatedTransport(httpx.AsyncBaseTransport):
    """Counts requests in flight; each waits for ``gate`` before it is answered."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.gate = trio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.inputs: list[Any] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.inputs.append(request.content)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            return await self.inner.handle_async_request(request)
        finally:
            self.in_flight -= 1


@asynccontextmanager
async def open_client(
    transport: httpx.AsyncBaseTransport | None = None, fake: FakeOpenRouter | None = None
) -> AsyncIterator[OpenRouter]:
    fake = fake or FakeOpenRouter()
    async with OpenRouter(
        api_key=fake.inference_key,
        base_url=fake.base_url,
        http_transport=transport or fake.http_transport(),
        retry=NO_RETRY,
    ) as client:
        yield client


def count_tasks() -> int:
    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for n in task.child_nurseries for child in n.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return walk(root)


# -- arguments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"max_concurrent": 0}, r"^max_concurrent must be a positive integer, got 0\.$"),
        ({"max_concurrent": 2.5}, r"^max_concurrent must be a positive integer, got 2\.5\.$"),
        ({"max_concurrent": 1, "history": -1}, r"^history must be a non-negative integer"),
        ({"max_concurrent": 1, "memory_budget": 0}, r"^memory_budget must be a positive"),
        ({"max_concurrent": 1, "update_interval": 0}, r"^update_interval must be a positive"),
    ],
)
async def test_bad_arguments_raise_configuration_error(
    options: dict[str, Any], pattern: str
) -> None:
    with trio.fail_after(5):
        async with open_client() as client:
            with pytest.raises(ConfigurationError, match=pattern):
                async with open_session_pool(client, **options):
                    pass  # pragma: no cover - never entered


async def test_bad_call_model_argument_queues_nothing() -> None:
    with trio.fail_after(5):
        async with open_client() as client, open_session_pool(client, max_concurrent=1) as pool:
            with pytest.raises(ConfigurationError):
                pool.start(model="emulator/echo", input="hi", tool_concurrency=0)
            assert pool.sessions() == []


# -- running many sessions -----------------------------------------------------------


async def test_thousand_concurrent_sessions_complete_with_correct_results() -> None:
    with trio.fail_after(120):
        async with open_client() as client:
            async with open_session_pool(client, max_concurrent=100) as pool:
                results = [
                    pool.start(model="emulator/echo", input=f"question {i}") for i in range(1000)
                ]
            texts = [await result.get_text() for result in results]
        stats = pool.statistics()
    assert texts == [f"question {i}" for i in range(1000)]
    assert (stats.done, stats.failed, stats.cancelled, stats.queued, stats.running) == (
        1000,
        0,
        0,
        0,
        0,
    )
    assert stats.model_calls == 1000
    assert stats.total_tokens == sum(r.snapshot().usage.total_tokens for r in results)
    assert stats.total_tokens > 0
    assert {s.status for s in pool.sessions()} == {"done"}


async def test_admission_never_exceeds_the_limit() -> None:
    fake = FakeOpenRouter()
    gated = GatedTransport(fake.http_transport())
    with trio.fail_after(30):
        async with open_client(gated, fake) as client:
            async with open_session_pool(client, max_concurrent=3, update_interval=None) as pool:
                results = [pool.start(model="emulator/echo", input=f"q{i}") for i in range(10)]
                await trio.testing.wait_all_tasks_blocked()
                assert gated.in_flight == 3
                stats = pool.statistics()
                assert (stats.running, stats.queued) == (3, 7)
                statuses = [s.status for s in pool.sessions()]
                assert statuses == ["running"] * 3 + ["queued"] * 7
                gated.gate.set()
            assert [await r.get_text() for r in results] == [f"q{i}" for i in range(10)]
    assert gated.max_in_flight == 3


async def test_admission_is_first_in_first_out() -> None:
    fake = FakeOpenRouter()
    gated = GatedTransport(fake.http_transport())
    gated.gate.set()
    with trio.fail_after(30):
        async with open_client(gated, fake) as client:
            pool_cm = open_session_pool(client, max_concurrent=1)
            async with pool_cm as pool:
                for i in range(8):
                    pool.start(model="emulator/echo", input=f"q{i}")
    order = [body.split(b'"input":"')[1].split(b'"')[0] for body in gated.inputs]
    assert order == [f"q{i}".encode() for i in range(8)]


async def test_a_failing_session_ends_failed_while_every_other_completes() -> None:
    with trio.fail_after(30):
        async with open_client() as client:
            async with open_session_pool(client, max_concurrent=5) as pool:
                results = [
                    pool.start(
                        model="emulator/echo:fault=500" if i == 3 else "emulator/echo",
                        input=f"q{i}",
                    )
                    for i in range(20)
                ]
            with pytest.raises(InternalServerError):
                await results[3].get_text()
            texts = [await r.get_text() for i, r in enumerate(results) if i != 3]
    assert texts == [f"q{i}" for i in range(20) if i != 3]
    stats = pool.statistics()
    assert (stats.done, stats.failed) == (19, 1)
    failed = pool.snapshot(results[3].id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert "500" in failed.error


async def test_a_queued_run_can_be_consumed_before_it_is_admitted() -> None:
    fake = FakeOpenRouter()
    gated = GatedTransport(fake.http_transport())
    chunks: list[str] = []

    async def consume(result: ModelResult) -> None:
        async for chunk in result.get_text_stream():
            chunks.append(chunk)

    with trio.fail_after(30):
        async with open_client(gated, fake) as client:
            pool_cm = open_session_pool(client, max_concurrent=1)
            async with pool_cm as pool, trio.open_nursery() as nursery:
                pool.start(model="emulator/echo", input="first")
                queued = pool.start(model="emulator/echo", input="two words")
                nursery.start_soon(consume, queued)
                await trio.testing.wait_all_tasks_blocked()
                assert pool.snapshot(queued.id).status == "queued"
                assert len(gated.inputs) == 1
                gated.gate.set()
    assert "".join(chunks) == "two words"


# -- cancellation --------------------------------------------------------------------


async def test_cancel_all_ends_queued_and_running_runs_and_leaves_no_task() -> None:
    fake = FakeOpenRouter()
    gated = GatedTransport(fake.http_transport())
    with trio.fail_after(30):
        async with open_client(gated, fake) as client:
            before = count_tasks()
            async with open_session_pool(client, max_concurrent=2) as pool:
                results = [pool.start(model="emulator/echo", input=f"q{i}") for i in range(6)]
                await trio.testing.wait_all_tasks_blocked()
                assert count_tasks() > before
                pool.cancel_all()
                await pool.wait_idle()
                for result in results:
                    with pytest.raises(RunCancelled):
                        await result.get_text()
                    assert [chunk async for chunk in result.get_text_stream()] == []
            assert count_tasks() == before
    assert len(gated.inputs) == 2  # the queued runs never sent anything
    stats = pool.statistics()
    assert (stats.cancelled, stats.done, stats.queued, stats.running) == (6, 0, 0, 0)
    assert {s.status for s in pool.sessions()} == {"cancelled"}


async def test_cancel_one_queued_run_leaves_the_others_alone() -> None:
    fake = FakeOpenRouter()
    gated = GatedTransport(fake.http_transport())
    with trio.fail_after(30):
        async with open_client(gated, fake) as client:
            async with open_session_pool(client, max_concurrent=1) as pool:
                first = pool.start(model="emulator/echo", input="a")
                second = pool.start(model="emulator/echo", input="b")
                third = pool.start(model="emulator/echo", input="c")
                await trio.testing.wait_all_tasks_blocked()
                pool.cancel(second.id)
                await second.wait_done()
                assert second.snapshot().status == "cancelled"
                assert pool.statistics().queued == 1
                gated.gate.set()
            assert [await first.get_text(), await third.get_text()] == ["a", "c"]
    assert len(gated.inputs) == 2


async def test_result_cancel_while_queued_ends_it_at_admission_without_a_request() -> None:
    fake = FakeOpenRouter()
    gated = GatedTransport(fake.http_transport())
    with trio.fail_after(30):
        async with open_client(gated, fake) as client:
            async with open_session_pool(client, max_concurrent=1) as pool:
                pool.start(model="emulator/echo", input="a")
                queued = pool.start(model="emulator/echo", input="b")
                await trio.testing.wait_all_tasks_blocked()
                queued.cancel()
                gated.gate.set()
            with pytest.raises(RunCancelled):
                await queued.get_text()
    assert len(gated.inputs) == 1
    assert pool.statistics().cancelled == 1


async def test_leaving_the_block_waits_for_every_run() -> None:
    with trio.fail_after(30):
        async with open_client() as client:
            async with open_session_pool(client, max_concurrent=2) as pool:
                results = [pool.start(model="emulator/echo", input=f"q{i}") for i in range(5)]
            assert all(r.snapshot().status == "done" for r in results)
            with pytest.raises(trio.ClosedResourceError, match=r"^Cannot start a run in a closed"):
                pool.start(model="emulator/echo", input="late")


async def test_runs_started_while_the_block_is_exiting_are_waited_for() -> None:
    """A run started by another task just as the block's wait ends is run too.

    The other task wakes in the same scheduler batch as the block's wait, in
    either order (trio shuffles): either the pool is already closed (start
    raises) or the late runs must complete. Repeated so that both orders occur.
    """
    outcomes: set[str] = set()

    async def start_later(pool: SessionPool, first: ModelResult, late: list[ModelResult]) -> None:
        await first.wait_done()
        try:
            late.extend(pool.start(model="emulator/echo", input=f"late {i}") for i in range(2))
        except trio.ClosedResourceError:
            outcomes.add("closed")

    with trio.fail_after(30):
        async with open_client() as client:
            for _ in range(20):
                late: list[ModelResult] = []
                async with trio.open_nursery() as nursery:
                    pool_cm = open_session_pool(client, max_concurrent=1)
                    async with pool_cm as pool:
                        first = pool.start(model="emulator/echo", input="first")
                        nursery.start_soon(start_later, pool, first, late)
                    if late:
                        assert [r.snapshot().status for r in late] == ["done", "done"]
                        outcomes.add("waited")
    assert outcomes == {"closed", "waited"}


async def test_an_error_in_the_block_cancels_every_run_and_propagates_unwrapped() -> None:
    fake = FakeOpenRouter()
    gated = GatedTransport(fake.http_transport())
    results = []
    with trio.fail_after(30):
        async with open_client(gated, fake) as client:
            with pytest.raises(KeyError, match="boom"):
                async with open_session_pool(client, max_concurrent=2) as pool:
                    results = [pool.start(model="emulator/echo", input=f"q{i}") for i in range(4)]
                    await trio.testing.wait_all_tasks_blocked()
                    raise KeyError("boom")
    assert [r.snapshot().status for r in results] == ["cancelled"] * 4


# -- the registry --------------------------------------------------------------------


async def test_watch_publishes_every_lifecycle_transition() -> None:
    fake = FakeOpenRouter()
    gated = GatedTransport(fake.http_transport())
    updates: list[RegistryUpdate] = []
    with trio.fail_after(30):
        async with open_client(gated, fake) as client:
            async with open_session_pool(client, max_concurrent=1, update_interval=None) as pool:
                watch = pool.watch()
                first = pool.start(model="emulator/echo", input="a")
                second = pool.start(model="emulator/echo", input="b")
                gated.gate.set()
            async with watch:
                updates = [u async for u in watch]
    seen = [(u.session.id, u.session.status) for u in updates]
    assert seen == [
        (first.id, "running"),  # admitted at once: never listed as queued
        (second.id, "queued"),
        (first.id, "done"),
        (second.id, "running"),
        (second.id, "done"),
    ]


async def test_history_bound_evicts_the_oldest_finished_runs() -> None:
    with trio.fail_after(30):
        async with open_client() as client:
            async with open_session_pool(client, max_concurrent=1, history=2) as pool:
                watch = pool.watch()
                results = [pool.start(model="emulator/echo", input=f"q{i}") for i in range(4)]
            removed = [u.session.id for u in watch.receive_batch_nowait() if u.kind == "removed"]
            watch.close()
    assert [s.id for s in pool.sessions()] == [results[2].id, results[3].id]
    assert removed == [results[0].id, results[1].id]
    with pytest.raises(KeyError, match="is listed in this pool"):
        pool.get(results[0].id)
    assert pool.get(results[3].id) is results[3]
    assert pool.statistics().done == 4


async def test_memory_budget_evicts_finished_runs_holding_too_many_events() -> None:
    with trio.fail_after(30):
        async with open_client() as client:
            pool_cm = open_session_pool(client, max_concurrent=1, memory_budget=1)
            async with pool_cm as pool:
                results = [pool.start(model="emulator/echo", input=f"q{i}") for i in range(3)]
    assert pool.sessions() == []
    assert all(r.snapshot().status == "done" for r in results)


async def test_sampler_publishes_in_tool_turn_and_usage_changes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    @function_tool
    async def slow_lookup(city: str) -> str:
        """Look a city up slowly.

        Args:
            city: the city.
        """
        await trio.sleep(10)
        return f"{city}: sunny"

    statuses: list[tuple[str, int, int]] = []
    with trio.fail_after(100):
        async with open_client() as client:
            async with open_session_pool(client, max_concurrent=1, update_interval=1) as pool:
                watch = pool.watch()
                result = pool.start(
                    model="emulator/tool-caller", input="weather?", tools=[slow_lookup]
                )
            async with watch:
                async for update in watch:
                    snap = update.session
                    statuses.append((snap.status, snap.turn, snap.usage.total_tokens))
        text = await result.get_text()
    assert "sunny" in text
    in_tool = [s for s in statuses if s[0] == "in_tool"]
    assert in_tool
    assert in_tool[0][2] > 0  # the first call's usage was already counted
    assert statuses[-1][0] == "done"
    assert statuses[-1][1] == 1


async def test_the_pool_serves_as_a_session_registry() -> None:
    async def read(registry: SessionRegistry, run_id: str) -> tuple[str, int]:
        async with registry.events(run_id, 0) as cursor:
            events = [event async for event in cursor]
        return registry.snapshot(run_id).status, len(events)

    with trio.fail_after(30):
        async with open_client() as client, open_session_pool(client, max_concurrent=1) as pool:
            watch = pool.watch()
            result = pool.start(model="emulator/echo", input="hi")
            status, count = await read(pool, result.id)
            assert [s.id for s in pool.sessions()] == [result.id]
            update = await watch.receive()
            watch.close()
    assert (status, count) == ("done", result.snapshot().next_seq)
    assert count > 0
    assert (update.kind, update.session.id) == ("updated", result.id)
    with pytest.raises(KeyError, match=r"^\"No session with id 'run_nope' is listed"):
        pool.snapshot("run_nope")
