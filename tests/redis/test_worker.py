"""Workers on a real redis-server and the loopback emulator: run, cancel, take over, resume."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing

from runtime._agent.outcomes import FinalResult
from runtime._agent.tools import Tool, tool
from runtime._base.errors import ConfigurationError
from runtime._cli.main import run_cli
from runtime._cli.worker import WorkerOptions, load_tools, run_worker
from runtime._client.client import OpenRouter
from runtime._protocol.events import (
    OutputTextDelta,
    ToolPreliminaryResult,
    ToolResult,
    TurnRetry,
    TurnStart,
)
from runtime._redis.codec import RemoteRunError
from runtime._redis.store import open_run_reader
from runtime._redis.work import (
    INTERRUPTED_TOOL_ERROR,
    cancel_run,
    load_checkpoint,
    submit_run,
)
from runtime._run.registry import RegistryUpdate
from runtime.testing import FakeOpenRouter, text_turn, tool_call_turn

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    RunningWorker = Callable[..., AbstractAsyncContextManager[None]]
    from collections.abc import AsyncIterator

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from runtime._redis.store import RedisStore
    from runtime._run.status import RunSnapshot
    from runtime.emulator._server import EmulatorServer


class Probe(msgspec.Struct, frozen=True):
    target: str


class Step(msgspec.Struct, frozen=True):
    done: int


class Found(msgspec.Struct, frozen=True):
    target: str
    steps: int


def counting_tools(
    executions: list[str],
    steps: int,
    gate: trio.Event | None = None,
    settled_first: RedisStore | None = None,
) -> list[Tool]:
    """``probe`` (a generator tool) and ``quick``, recording each execution by call id.

    With ``settled_first``, ``probe`` reports its first step only once every other
    call of the run is recorded as settled in Redis (one ``GET`` per pass).
    """

    async def settled(context: Any) -> bool:
        assert settled_first is not None
        hashes = await settled_first.client.keys(f"{settled_first.keys.prefix}:run:*:tools")
        records: dict[bytes, bytes] = {}
        for key in hashes:
            records.update(await settled_first.client.hgetall(key))
        records.pop(context.tool_call.id.encode(), None)
        return bool(records) and all(b'"state":"done"' in b for b in records.values())

    async def probe(arguments: Probe, context: Any) -> AsyncIterator[Step | FinalResult[Found]]:
        executions.append(context.tool_call.id)
        if settled_first is not None:
            while not await settled(context):
                pass
        for done in range(1, steps + 1):
            yield Step(done=done)
            if gate is not None:
                await gate.wait()
        yield FinalResult(Found(target=arguments.target, steps=steps))

    async def quick(arguments: Probe, context: Any) -> Found:
        executions.append(context.tool_call.id)
        return Found(target=arguments.target, steps=0)

    return [
        tool(
            name="probe",
            description="Probe a target.",
            input_schema=Probe,
            output_schema=Found,
            event_schema=Step,
            execute=probe,
        ),
        tool(
            name="quick",
            description="Look at a target quickly.",
            input_schema=Probe,
            output_schema=Found,
            execute=quick,
        ),
    ]


async def _wait_status(store: RedisStore, run_id: str, status: str) -> RunSnapshot:
    """Block on the registry stream until the run is published with ``status``."""
    last = "0-0"
    while True:
        reply = await store.client.xread({store.keys.registry: last}, block=1000)
        for entry in next(iter(reply.values())) if reply else ():
            last = str(entry.identifier, "ascii") if isinstance(entry.identifier, bytes) else last
            update = msgspec.json.decode(entry.field_values[b"u"], type=RegistryUpdate)
            if update.session.id == run_id and update.session.status == status:
                return update.session


async def _follow(store: RedisStore, run_id: str, into: list[Any]) -> None:
    async with open_run_reader(store, run_id) as cursor:
        async for event in cursor:
            into.append(event)


async def test_a_worker_runs_a_submitted_session_to_its_end(
    redis_store: RedisStore, running_worker: RunningWorker
) -> None:
    executions: list[str] = []
    events: list[Any] = []
    with trio.fail_after(60):
        async with running_worker(counting_tools(executions, 3), "w1", lease=2.0):
            run_id = await submit_run(
                redis_store, model="emulator/tool-caller", input="probe x", tools=["probe"]
            )
            await _follow(redis_store, run_id, events)
            snap = await _wait_status(redis_store, run_id, "done")  # published after the ack
    kinds = [type(e) for e in events]
    assert kinds.count(TurnStart) == 2
    assert kinds.count(ToolPreliminaryResult) == 3
    assert TurnRetry not in kinds
    assert "".join(e.delta for e in events if type(e) is OutputTextDelta)
    assert len(executions) == 1
    pending = await redis_store.client.xpending(
        redis_store.keys.sessions, redis_store.keys.group, start="-", end="+", count=10
    )
    assert pending == ()  # acknowledged
    assert snap.next_seq == len(events)
    assert snap.usage.model_calls == 2
    assert await load_checkpoint(redis_store, run_id) is not None


async def test_a_run_for_a_tool_the_worker_lacks_fails_with_a_named_error(
    redis_store: RedisStore, running_worker: RunningWorker
) -> None:
    with trio.fail_after(60):
        async with running_worker([], "w1"):
            run_id = await submit_run(redis_store, model="emulator/tool-caller", tools=["nope"])
            with pytest.raises(RemoteRunError, match="'nope'"):
                await _follow(redis_store, run_id, [])


async def test_cancel_reaches_a_running_session(
    redis_store: RedisStore, running_worker: RunningWorker
) -> None:
    executions: list[str] = []
    gate = trio.Event()  # never set: the tool waits after its first step
    events: list[Any] = []
    with trio.fail_after(60):
        async with running_worker(counting_tools(executions, 3, gate), "w1"):
            run_id = await submit_run(
                redis_store, model="emulator/tool-caller", input="probe", tools=["probe"]
            )
            async with open_run_reader(redis_store, run_id) as cursor:
                async for event in cursor:
                    events.append(event)
                    if type(event) is ToolPreliminaryResult:
                        await cancel_run(redis_store, run_id)
            await _wait_status(redis_store, run_id, "cancelled")
    assert [type(e) for e in events].count(ToolResult) == 0


async def test_a_lost_workers_run_resumes_on_another_without_running_a_call_twice(
    redis_store: RedisStore, emulator: EmulatorServer
) -> None:
    executions: list[str] = []
    gate = trio.Event()
    events: list[Any] = []
    with trio.fail_after(60):
        async with (
            OpenRouter(emulator.inference_key, base_url=emulator.base_url) as client,
            trio.open_nursery() as nursery,
        ):
            lost = trio.CancelScope()

            async def doomed_worker() -> None:
                with lost:  # cancelled mid-tool: writes nothing more, acknowledges nothing
                    await run_worker(
                        redis_store, client, counting_tools(executions, 3, gate, redis_store),
                        WorkerOptions(name="doomed", lease=0.6, hand_back=0),
                    )  # fmt: skip

            nursery.start_soon(doomed_worker)
            run_id = await submit_run(
                redis_store, model="emulator/tool-caller", input="probe", tools=["probe", "quick"]
            )
            async with open_run_reader(redis_store, run_id) as cursor:
                async for event in cursor:
                    events.append(event)
                    if type(event) is ToolPreliminaryResult and not lost.cancel_called:
                        lost.cancel()
                        gate.set()
                        await nursery.start(
                            run_worker, redis_store, client, counting_tools(executions, 3),
                            WorkerOptions(name="heir", lease=0.6),
                        )  # fmt: skip
            nursery.cancel_scope.cancel()
    kinds = [type(e) for e in events]
    retry = kinds.index(TurnRetry)
    assert events[retry].turn_number == 1
    assert kinds[:retry].count(ToolPreliminaryResult) >= 1
    results = [e for e in events[retry:] if type(e) is ToolResult]
    # probe was running when its worker was lost; quick had settled and is reused.
    assert [r.result for r in results] == [
        {"error": INTERRUPTED_TOOL_ERROR},
        {"target": results[1].result["target"], "steps": 0},
    ]
    assert len(executions) == len(set(executions)) == 2  # no call id ran a second time
    assert kinds.count(TurnStart) == 2  # turn 0 (once), then turn 1 on the heir
    assert "".join(e.delta for e in events[retry:] if type(e) is OutputTextDelta)


def test_load_tools_names_what_is_wrong() -> None:
    assert [t.name for t in load_tools("demo")] == ["get_weather", "scan_table"]
    assert [t.name for t in load_tools("tests.redis.worker_tools:tools")] == ["probe"]
    with pytest.raises(ConfigurationError, match="'nothing'"):
        load_tools("nothing")
    with pytest.raises(ConfigurationError, match="'no_such_module_x:tools'"):
        load_tools("no_such_module_x:tools")
    with pytest.raises(ConfigurationError, match="'msgspec:json'"):
        load_tools("msgspec:json")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "two words"}, "'two words'"),
        ({"name": "w", "concurrency": 0}, "concurrency"),
        ({"name": "w", "lease": 0.01}, "0.01"),
        ({"name": "w", "keep_finished": -1.0}, "keep_finished"),
        ({"name": "w", "hand_back": float("inf")}, "hand_back"),
    ],
)
def test_worker_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        WorkerOptions(**options)


async def test_the_worker_command_reports_a_bad_url_in_one_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    with trio.fail_after(30):
        code = await run_cli(
            ["worker", "--redis", "http://u:secret@example.invalid/0"], stdout=out, stderr=err
        )
    assert code == 1
    assert err.getvalue().startswith("error: ConfigurationError: the Redis URL must start")
    assert "secret" not in err.getvalue()


async def test_a_job_whose_run_already_ended_is_acknowledged_and_published(
    redis_store: RedisStore, running_worker: RunningWorker
) -> None:
    """A worker died after writing the run's outcome, before acknowledging it."""
    run_id = await submit_run(redis_store, model="emulator/tool-caller", input="hi")
    await redis_store.append(run_id, 0, [TurnStart(turn_number=0, timestamp=1)])
    await redis_store.end(run_id, 1, "done")
    with trio.fail_after(60):
        async with running_worker([], "w"):
            snap = await _wait_status(redis_store, run_id, "done")
    assert snap.next_seq == 1
    pending = await redis_store.client.xpending(
        redis_store.keys.sessions, redis_store.keys.group, start="-", end="+", count=10
    )
    assert pending == ()
    assert await redis_store.client.xlen(redis_store.keys.events(run_id)) == 2  # nothing re-run


async def test_a_runs_spans_on_a_worker_are_children_of_the_submitters_span(
    redis_store: RedisStore, running_worker: RunningWorker, span_exporter: InMemorySpanExporter
) -> None:
    from opentelemetry import trace

    tracer = trace.get_tracer("tests")
    executions: list[str] = []
    with trio.fail_after(60):
        async with running_worker(counting_tools(executions, 1), "w1"):
            with tracer.start_as_current_span("handle request") as parent:
                run_id = await submit_run(
                    redis_store, model="emulator/tool-caller", input="probe x", tools=["probe"]
                )
            # The worker's task does not run inside the test's span.
            await _follow(redis_store, run_id, [])
            snap = await _wait_status(redis_store, run_id, "done")
    spans = [
        s
        for s in span_exporter.get_finished_spans()
        if s.context.trace_id == parent.get_span_context().trace_id
    ]
    (agent,) = [s for s in spans if s.name.startswith("invoke_agent")]
    assert agent.parent is not None
    assert agent.parent.span_id == parent.get_span_context().span_id
    assert (agent.attributes or {}).get("openrouter.run.id") == run_id
    names = {s.name for s in spans}
    assert {"turn 0", "turn 1", "execute_tool probe"} <= names
    assert snap.trace_id == format(parent.get_span_context().trace_id, "032x")


async def test_a_checkpoint_save_of_an_attempt_that_lost_the_run_is_refused(
    redis_store: RedisStore,
) -> None:
    from runtime._redis.store import RunTakenOver
    from runtime._redis.work import own_run, save_checkpoint

    fake = FakeOpenRouter(tool_call_turn(("quick", {"target": "x"})), text_turn("ok"))
    saved: list[Any] = []

    async def keep(checkpoint: Any) -> None:
        saved.append(checkpoint)

    with trio.fail_after(30):
        async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
            result = client.call_model(model="m", input="go", tools=counting_tools([], 0))
            result._durable("run_fence", checkpoint=keep)
            await result.wait_done()
        (checkpoint,) = saved
        first = await own_run(redis_store, "run_fence", "w1")
        await save_checkpoint(redis_store, "run_fence", first, checkpoint)
        second = await own_run(redis_store, "run_fence", "w2")  # w2 took the run over
        with pytest.raises(RunTakenOver, match="another owner"):
            await save_checkpoint(redis_store, "run_fence", first, checkpoint)
        key = redis_store.keys.checkpoint("run_fence")
        await redis_store.client.pexpire(key, 60_000)  # as an ended run's keys get
        with pytest.raises(RunTakenOver):
            await save_checkpoint(redis_store, "run_fence", first, checkpoint)
        await save_checkpoint(redis_store, "run_fence", second, checkpoint)
        assert 0 < await redis_store.client.pttl(key) <= 60_000  # a save keeps the TTL
        assert await load_checkpoint(redis_store, "run_fence") == checkpoint
