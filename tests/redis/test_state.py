"""Conversations in Redis: ``RedisStateStore`` and ``submit_run(conversation=...)``.

On a real redis-server: the store's protocol (load, save, revisions,
interruption), a run with ``state=`` on it, and an approval asked on one worker
and given to a run on another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio

from runtime import OpenRouter, RedisStateStore, StateConflictError, ToolContext, function_tool
from runtime._base.errors import ConfigurationError, RunError
from runtime._cli.worker import WorkerOptions, run_worker
from runtime._protocol.events import ToolResult
from runtime._redis.store import open_run_reader
from runtime._redis.work import submit_run
from runtime.emulator._core import Emulator
from runtime.emulator._server import open_emulator
from runtime.testing import FakeOpenRouter, text_turn, tool_call_turn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime._agent.tools import Tool
    from runtime._redis.store import RedisStore
    from runtime.emulator._server import EmulatorServer


async def test_a_fresh_conversation_has_the_stores_id_and_saves_are_read_back(
    redis_store: RedisStore,
) -> None:
    fake = FakeOpenRouter(text_turn("Hello."), text_turn("Again."))
    with trio.fail_after(10):
        fresh = await RedisStateStore(redis_store, "conv_a").load()
        assert (fresh.id, fresh.turn, fresh.messages) == ("conv_a", -1, [])
        async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
            for text in ("Hi", "Once more"):
                result = client.call_model(
                    model="openai/gpt-5", input=text, state=RedisStateStore(redis_store, "conv_a")
                )
                await result.wait_done()
        saved = await RedisStateStore(redis_store, "conv_a").load()
    assert saved.id == "conv_a"
    assert saved.status == "complete"
    assert saved.turn == 1  # turn numbers go on across runs
    users = [m["content"] for m in saved.messages if m.get("role") == "user"]
    assert users == ["Hi", "Once more"]
    # The second run sent the first run's conversation.
    second = fake.bodies()[1]["input"]
    assert [m.get("content") for m in second if m.get("role") == "user"] == ["Hi", "Once more"]


async def test_a_save_over_someone_elses_save_is_refused_and_overwrites_nothing(
    redis_store: RedisStore,
) -> None:
    with trio.fail_after(10):
        first, second = RedisStateStore(redis_store, "c1"), RedisStateStore(redis_store, "c1")
        base = await first.load()
        await second.load()
        mine = msgspec.structs.replace(base, turn=0, messages=[{"role": "user", "content": "a"}])
        await first.save(mine)
        theirs = msgspec.structs.replace(base, turn=5)
        with pytest.raises(StateConflictError, match="'c1'"):
            await second.save(theirs)
        assert await RedisStateStore(redis_store, "c1").load() == mine
        await first.save(msgspec.structs.replace(mine, turn=1))  # the writer goes on
        await second.load()  # a fresh read makes the other a writer again
        await second.save(theirs)
        assert (await first.load()).turn == 5


async def test_a_run_whose_conversation_was_saved_meanwhile_fails_naming_the_conflict(
    redis_store: RedisStore,
) -> None:
    gate = trio.Event()
    fake = FakeOpenRouter(tool_call_turn(("wait", {})), text_turn("Done."))

    @function_tool
    async def wait() -> str:
        """Wait for the test."""
        await gate.wait()
        return "waited"

    with trio.fail_after(10):
        async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
            result = client.call_model(
                model="openai/gpt-5",
                input="go",
                tools=[wait],
                state=RedisStateStore(redis_store, "c2"),
            )
            async for event in result.events():
                if event.type == "turn.end":  # the tool waits at the gate now
                    break
            intruder = RedisStateStore(redis_store, "c2")
            await intruder.save(await intruder.load())
            gate.set()
            with pytest.raises(RunError, match="Failed to persist") as caught:
                await result.get_text()
    assert isinstance(caught.value.__cause__, StateConflictError)


async def test_interruption_is_a_side_channel_a_save_does_not_clear(
    redis_store: RedisStore,
) -> None:
    with trio.fail_after(10):
        store = RedisStateStore(redis_store, "c3")
        assert await store.interruption() is None
        with pytest.raises(ConfigurationError, match=r"interrupt reason must be .* got ''"):
            await store.request_interrupt("")
        await store.request_interrupt("user left")
        await store.save(await store.load())
        assert await RedisStateStore(redis_store, "c3").interruption() == "user left"
        await store.clear_interruption()
        assert await store.interruption() is None
        await store.delete()
        assert (await store.load()).turn == -1


@pytest.mark.parametrize("bad", ["", "a b", "x{y}", 7, "z" * 201])
async def test_a_bad_conversation_id_is_named(redis_store: RedisStore, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="conversation must be"):
        RedisStateStore(redis_store, bad)  # type: ignore[arg-type]


async def test_submit_run_refuses_state_and_bad_conversation_ids(redis_store: RedisStore) -> None:
    with pytest.raises(ConfigurationError, match="conversation='<id>'"):
        await submit_run(redis_store, model="m", state=object())
    with pytest.raises(ConfigurationError, match="'a b'"):
        await submit_run(redis_store, model="m", conversation="a b")


# -- approvals across workers -------------------------------------------------------------


def _tools(executions: list[str]) -> list[Tool]:
    @function_tool(require_approval=True)
    async def probe(target: str, context: ToolContext) -> str:
        """Probe a target (needs approval)."""
        executions.append(context.tool_call.id)
        return f"probed {target}"

    return [probe]


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    async with open_emulator(emulator=Emulator(seed="redis-state-tests")) as server:
        yield server


async def _events(store: RedisStore, run_id: str) -> list[Any]:
    async with open_run_reader(store, run_id) as cursor:
        return [event async for event in cursor]


async def test_an_approval_asked_on_one_worker_is_given_to_a_run_on_another(
    redis_store: RedisStore, emulator: EmulatorServer
) -> None:
    executions: list[str] = []
    with trio.fail_after(60):
        async with OpenRouter(emulator.inference_key, base_url=emulator.base_url) as client:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    run_worker, redis_store, client, _tools(executions), WorkerOptions(name="a")
                )
                first = await submit_run(
                    redis_store,
                    conversation="conv_approve",
                    model="emulator/tool-caller",
                    input="probe the gate",
                    tools=["probe"],
                )
                await _events(redis_store, first)
                nursery.cancel_scope.cancel()  # worker a is gone
            paused = await RedisStateStore(redis_store, "conv_approve").load()
            assert paused.status == "awaiting_approval"
            (call,) = paused.pending_tool_calls
            assert executions == []  # nothing ran without the approval
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    run_worker, redis_store, client, _tools(executions), WorkerOptions(name="b")
                )
                second = await submit_run(
                    redis_store,
                    conversation="conv_approve",
                    model="emulator/tool-caller",
                    approve=[call.id],
                    tools=["probe"],
                )
                events = await _events(redis_store, second)
                nursery.cancel_scope.cancel()
    assert executions == [call.id]  # run once, by worker b
    (result,) = [e for e in events if type(e) is ToolResult]
    assert result.tool_call_id == call.id
    done = await RedisStateStore(redis_store, "conv_approve").load()
    assert done.status == "complete"
    assert done.pending_tool_calls == []
