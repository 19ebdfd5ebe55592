"""Tests for actors._tool_call: one tool call, and one round of calls.

Rules of this module: every test is bounded by ``trio.fail_after`` on trio's
clock; anything timed takes ``autojump_clock``; no sleeps to let things settle
(``wait_all_tasks_blocked`` instead). Tools are real functions.

Scenario ids from spec/callmodel.md §8: G-01..G-06, E-01..E-04, A-04.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing

from actors._tool_call import make_tool_limiters, run_tool_call, run_tool_round
from runtime._agent.outcomes import FinalResult, ToolContext, output_for_model
from runtime._agent.params import TurnContext
from runtime._agent.tools import Tool, tool
from runtime._base.errors import ConfigurationError, ToolError
from runtime._protocol.wire import ParsedToolCall

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

CTX = TurnContext(number_of_turns=1)


class Args(msgspec.Struct):
    n: int
    label: str = "x"


class Event(msgspec.Struct):
    status: str


class Output(msgspec.Struct):
    completed: bool


class Answer(msgspec.Struct):
    result: str


def _call(name: str, arguments: Any = None, call_id: str = "call_1") -> ParsedToolCall:
    return ParsedToolCall(id=call_id, name=name, arguments={} if arguments is None else arguments)


def _generator(name: str, execute: Any, *, event: Any = Event, output: Any = Output) -> Tool:
    return tool(
        name=name,
        input_schema=dict[str, Any],
        event_schema=event,
        output_schema=output,
        execute=execute,
    )


async def _run(t: Tool | None, call: ParsedToolCall, **kwargs: Any) -> Any:
    with trio.fail_after(10):
        return await run_tool_call(t, call, CTX, **kwargs)


# --- regular tools: E-01, E-03, E-04 ----------------------------------------------------


async def test_valid_input_executes_e01() -> None:
    """E-01: valid input is parsed (defaults filled) and the tool runs."""
    seen: list[Args] = []

    async def execute(args: Args, ctx: ToolContext) -> dict[str, Any]:
        seen.append(args)
        return {"double": args.n * 2}

    t = tool(name="t", input_schema=Args, execute=execute)
    outcome = await _run(t, _call("t", {"n": 21}))
    assert seen == [Args(n=21, label="x")]
    assert (outcome.result, outcome.error) == ({"double": 42}, None)
    assert output_for_model(outcome) == '{"double":42}'


async def test_invalid_input_never_reaches_execute_e01() -> None:
    """E-01: input failing the schema → validator message; execute is not called."""
    called: list[Any] = []
    t = tool(name="t", input_schema=Args, execute=called.append)
    outcome = await _run(t, _call("t", {"n": "21"}))
    assert called == []
    assert outcome.result is None
    assert outcome.error == 'Invalid arguments for tool "t": Expected `int`, got `str` - at `$.n`'
    assert isinstance(outcome.exception, ToolError)


async def test_output_not_matching_the_schema_is_an_error_e01() -> None:
    """E-01: output not matching output_schema → error result (the tool did run)."""
    t = tool(name="t", input_schema=Args, output_schema=Answer, execute=lambda a: {"result": 1})
    outcome = await _run(t, _call("t", {"n": 1}))
    assert outcome.result is None
    assert outcome.error is not None
    assert outcome.error.startswith('Invalid output from tool "t": Expected `str`, got `int`')


async def test_output_is_converted_by_the_schema() -> None:
    t = tool(
        name="t",
        input_schema=Args,
        output_schema=Answer,
        execute=lambda a: {"result": "ok", "secret": "dropped"},
    )
    outcome = await _run(t, _call("t", {"n": 1}))
    assert outcome.result == Answer(result="ok")
    assert output_for_model(outcome) == '{"result":"ok"}'


@pytest.mark.parametrize(
    ("value", "output"), [("ok", '"ok"'), ({"a": 1}, '{"a":1}'), (None, "null")]
)
async def test_results_read_as_json_e03(value: Any, output: str) -> None:
    """E-03: "ok" → "\\"ok\\"", {a:1} → JSON, None → "null"."""
    t = tool(name="t", input_schema=dict[str, Any], execute=lambda: value)
    assert output_for_model(await _run(t, _call("t"))) == output


async def test_a_raising_tool_becomes_an_error_output_e03() -> None:
    """E-03: throwing Error('boom') → {"error":"boom"}."""

    class Boom(Exception):
        pass

    def execute(args: Any) -> Any:
        raise Boom("boom")

    t = tool(name="t", input_schema=dict[str, Any], execute=execute)
    outcome = await _run(t, _call("t"))
    assert output_for_model(outcome) == '{"error":"boom"}'
    assert isinstance(outcome.exception, Boom)


async def test_invalid_json_arguments_are_not_executed_e04() -> None:
    """E-04: arguments `not json` → the SDK's parse-error output; tool not run."""
    called: list[Any] = []
    t = tool(name="t", input_schema=dict[str, Any], execute=called.append)
    outcome = await _run(t, _call("t", "not json"))
    assert called == []
    assert output_for_model(outcome) == (
        '{"error":"Failed to parse tool call arguments for \\"t\\": The model provided invalid '
        'JSON. Raw arguments received: \\"not json\\". Please provide valid JSON arguments for '
        'this tool call."}'
    )


async def test_unknown_tool_is_an_error_output() -> None:
    """DESIGN §4.6: an unknown name is an error the model can recover from."""
    outcome = await _run(None, _call("nope"))
    assert outcome.error == 'Tool "nope" not found in tool definitions'
    assert output_for_model(outcome) == '{"error":"Tool \\"nope\\" not found in tool definitions"}'


async def test_a_manual_tool_is_not_run_here() -> None:
    t = tool(name="manual", input_schema=dict[str, Any], execute=False)
    outcome = await _run(t, _call("manual"))
    assert outcome.error == 'Tool "manual" is a manual tool; its calls are run by the caller'


async def test_a_result_that_is_not_json_is_an_error() -> None:
    t = tool(name="t", input_schema=dict[str, Any], execute=lambda: object())
    outcome = await _run(t, _call("t"))
    assert outcome.error is not None
    assert outcome.error.startswith('Tool "t" returned a value that cannot be encoded as JSON: ')


async def test_the_tool_gets_its_context() -> None:
    seen: list[ToolContext] = []
    request = {"model": "m"}
    t = tool(name="t", input_schema=dict[str, Any], execute=lambda a, c: seen.append(c))
    call = _call("t", {"k": 1}, "call_7")
    with trio.fail_after(10):
        await run_tool_call(t, call, TurnContext(number_of_turns=3, turn_request=request))
    assert seen == [ToolContext(number_of_turns=3, tool_call=call, turn_request=request)]
    assert seen[0].turn_request is not None
    with pytest.raises(TypeError):
        seen[0].turn_request["model"] = "changed"  # type: ignore[index]


async def test_sync_tool_can_run_in_a_thread() -> None:
    main_thread = threading.get_ident()
    t = tool(
        name="t",
        input_schema=dict[str, Any],
        execute=lambda: threading.get_ident(),
        run_sync_in_thread=True,
    )
    outcome = await _run(t, _call("t"))
    assert outcome.result != main_thread
    inline = tool(name="u", input_schema=dict[str, Any], execute=lambda: threading.get_ident())
    assert (await _run(inline, _call("u"))).result == main_thread


# --- generator tools: G-01..G-06 ----------------------------------------------------------


async def test_explicit_final_result_after_events_g01() -> None:
    """G-01: two events, then FinalResult → preliminary [ev1, ev2], the final result."""

    async def execute(args: Any) -> AsyncIterator[Any]:
        yield {"status": "step 1"}
        yield {"status": "step 2"}
        yield FinalResult({"result": "Done: test"})

    emitted: list[Any] = []
    t = _generator("g", execute, output=Answer)
    outcome = await _run(t, _call("g"), on_preliminary=emitted.append)
    assert outcome.preliminary_results == [Event("step 1"), Event("step 2")]
    assert emitted == outcome.preliminary_results
    assert (outcome.result, outcome.error) == (Answer(result="Done: test"), None)


async def test_only_a_final_result_g02() -> None:
    """G-02: the generator only 'returns' → no preliminary results, the returned value."""

    async def execute(args: Any) -> AsyncIterator[Any]:
        yield FinalResult({"result": "only"})

    outcome = await _run(_generator("g", execute, output=Answer), _call("g"))
    assert outcome.preliminary_results == []
    assert outcome.result == Answer(result="only")


async def test_explicit_final_result_wins_over_a_yielded_output_g03() -> None:
    """G-03: the returned (FinalResult) value wins over an output-shaped yield."""
    closed: list[bool] = []

    async def execute(args: Any) -> AsyncIterator[Any]:
        try:
            yield {"status": "working"}
            yield {"completed": False}
            yield {"status": "almost"}
            yield FinalResult({"completed": True})
            yield {"status": "never reached"}
        finally:
            closed.append(True)

    outcome = await _run(_generator("g", execute), _call("g"))
    assert outcome.result == Output(completed=True)
    assert outcome.preliminary_results == [Event("working"), Event("almost")]
    assert closed == [True]


async def test_output_shaped_yield_is_the_final_result_g04() -> None:
    """G-04 (PY): {status: working} then {completed: true} → result {completed: true}."""

    async def execute(args: Any) -> AsyncIterator[Any]:
        yield {"status": "working"}
        yield {"completed": True}

    outcome = await _run(_generator("g", execute), _call("g"))
    assert outcome.result == Output(completed=True)
    assert outcome.preliminary_results == [Event("working")]
    assert output_for_model(outcome) == '{"completed":true}'


async def test_generator_yielding_nothing_is_an_error_g05() -> None:
    """G-05: no yield at all → the SDK's error text."""

    async def execute(args: Any) -> AsyncIterator[Any]:
        return
        yield  # pragma: no cover - makes this an async generator

    outcome = await _run(_generator("empty", execute), _call("empty"))
    assert outcome.error == (
        'Generator tool "empty" completed without emitting any values or returning a result'
    )


async def test_yield_matching_neither_schema_is_an_error_g06() -> None:
    """G-06: a yield matching neither schema → error; events already emitted stay emitted."""
    emitted: list[Any] = []
    closed: list[bool] = []

    async def execute(args: Any) -> AsyncIterator[Any]:
        try:
            yield {"status": "one"}
            yield {"bogus": 1}
            yield {"status": "never"}
        finally:
            closed.append(True)

    outcome = await _run(_generator("g", execute), _call("g"), on_preliminary=emitted.append)
    assert emitted == [Event("one")]
    assert outcome.preliminary_results == [Event("one")]
    assert outcome.result is None
    assert outcome.error is not None
    assert outcome.error.startswith('Invalid event from tool "g": ')
    assert closed == [True]


async def test_a_second_output_shaped_yield_is_an_error_g06() -> None:
    """§3.6: after a final was captured, an output-shaped yield must be an event."""

    async def execute(args: Any) -> AsyncIterator[Any]:
        yield {"completed": True}
        yield {"completed": False}

    outcome = await _run(_generator("g", execute), _call("g"))
    assert outcome.error is not None
    assert outcome.error.startswith('Invalid event from tool "g": ')


async def test_last_yield_is_the_result_when_both_schemas_match() -> None:
    """PY rule: dict/dict schemas → every yield is an event and the last is also the result."""

    async def execute(args: Any) -> AsyncIterator[Any]:
        yield {"p": 1}
        yield {"p": 2}

    t = _generator("g", execute, event=dict[str, Any], output=dict[str, Any])
    outcome = await _run(t, _call("g"))
    assert outcome.preliminary_results == [{"p": 1}, {"p": 2}]
    assert outcome.result == {"p": 2}


async def test_a_raising_generator_keeps_its_emitted_events() -> None:
    async def execute(args: Any) -> AsyncIterator[Any]:
        yield {"status": "one"}
        raise RuntimeError("crashed")

    outcome = await _run(_generator("g", execute), _call("g"))
    assert outcome.error == "crashed"
    assert outcome.preliminary_results == [Event("one")]


async def test_events_are_emitted_live_before_the_tool_finishes() -> None:
    """L-16 at the actor level: each event reaches the callback as it is yielded."""
    resume = trio.Event()
    emitted: list[Any] = []

    async def execute(args: Any) -> AsyncIterator[Any]:
        yield {"status": "first"}
        await resume.wait()
        yield {"completed": True}

    outcomes: list[Any] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                outcomes.append(
                    await run_tool_call(
                        _generator("g", execute), _call("g"), CTX, on_preliminary=emitted.append
                    )
                )

            nursery.start_soon(run)
            await trio.testing.wait_all_tasks_blocked()
            assert emitted == [Event("first")]
            assert outcomes == []
            resume.set()
    assert outcomes[0].result == Output(completed=True)


async def test_a_raising_callback_propagates_and_closes_the_generator() -> None:
    """A failing on_preliminary is the caller's bug, not a tool failure."""
    closed: list[bool] = []

    async def execute(args: Any) -> AsyncIterator[Any]:
        try:
            yield {"status": "one"}
            yield {"status": "two"}
        finally:
            closed.append(True)

    def on_preliminary(event: Any) -> None:
        raise trio.ClosedResourceError("log closed")

    with pytest.raises(trio.ClosedResourceError, match="log closed"):
        await _run(_generator("g", execute), _call("g"), on_preliminary=on_preliminary)
    assert closed == [True]


async def test_an_execute_that_returns_no_async_iterator_is_an_error() -> None:
    t = Tool(
        name="g",
        description=None,
        input_schema=dict[str, Any],
        output_schema=Output,
        event_schema=Event,
        execute=None,
        invoke=lambda arguments, context: iter([{"completed": True}]),
        next_turn_params=None,
        kind="generator",
        run_sync_in_thread=False,
        timeout=None,
        max_concurrency=None,
    )
    outcome = await _run(t, _call("g"))
    assert outcome.error is not None
    assert "not an async iterator" in outcome.error


# --- timeouts: A-04 -------------------------------------------------------------------


async def test_timeout_is_an_error_output_a04(autojump_clock: trio.testing.MockClock) -> None:
    """A-04: a per-tool timeout → error output `Tool "slow" timed out after 5s`."""
    cleaned: list[bool] = []

    async def slow(args: Any) -> str:
        try:
            await trio.sleep(60)
        finally:
            cleaned.append(True)
        return "late"  # pragma: no cover

    t = tool(name="slow", input_schema=dict[str, Any], execute=slow, timeout=5)
    start = trio.current_time()
    outcome = await _run(t, _call("slow"), timeout=30)
    assert outcome.error == 'Tool "slow" timed out after 5s'
    assert trio.current_time() - start == pytest.approx(5)
    assert cleaned == [True]


async def test_default_timeout_applies_without_a_tool_timeout_a04(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(args: Any) -> str:
        await trio.sleep(60)
        return "late"  # pragma: no cover

    t = tool(name="slow", input_schema=dict[str, Any], execute=slow)
    outcome = await _run(t, _call("slow"), timeout=1.5)
    assert outcome.error == 'Tool "slow" timed out after 1.5s'


async def test_generator_timeout_keeps_emitted_events_a04(
    autojump_clock: trio.testing.MockClock,
) -> None:
    closed: list[bool] = []

    async def execute(args: Any) -> AsyncIterator[Any]:
        try:
            yield {"status": "started"}
            await trio.sleep(100)
            yield {"completed": True}  # pragma: no cover
        finally:
            closed.append(True)

    t = tool(
        name="g",
        input_schema=dict[str, Any],
        event_schema=Event,
        output_schema=Output,
        execute=execute,
        timeout=2,
    )
    outcome = await _run(t, _call("g"))
    assert outcome.error == 'Tool "g" timed out after 2s'
    assert outcome.preliminary_results == [Event("started")]
    assert closed == [True]


async def test_a_thread_tool_is_abandoned_on_timeout_a04(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = threading.Event()
    t = tool(
        name="blocking",
        input_schema=dict[str, Any],
        execute=lambda: release.wait(30),
        run_sync_in_thread=True,
        timeout=1,
    )
    try:
        outcome = await _run(t, _call("blocking"))
    finally:
        release.set()
    assert outcome.error == 'Tool "blocking" timed out after 1s'


# --- rounds: E-02, A-04 -------------------------------------------------------------------


def _sleeper(name: str, log: list[str], *, fail: bool = False) -> Tool:
    async def execute(args: Any) -> Any:
        await trio.sleep(args["delay"])
        log.append(args["id"])
        if fail:
            raise ValueError(f"{args['id']} failed")
        return args["id"]

    return tool(name=name, input_schema=dict[str, Any], execute=execute)


async def test_outputs_are_in_call_order_and_errors_are_collected_e02(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """E-02: the first call sleeps longest; outputs keep call order; failures are collected."""
    finished: list[str] = []
    tools = {
        "slow": _sleeper("slow", finished),
        "broken": _sleeper("broken", finished, fail=True),
        "fast": _sleeper("fast", finished),
    }
    calls = [
        _call("slow", {"delay": 3, "id": "a"}, "c1"),
        _call("broken", {"delay": 2, "id": "b"}, "c2"),
        _call("fast", {"delay": 1, "id": "c"}, "c3"),
        _call("missing", {}, "c4"),
    ]
    start = trio.current_time()
    with trio.fail_after(10):
        outcomes = await run_tool_round(tools, calls, CTX)
    assert trio.current_time() - start == pytest.approx(3)  # parallel, not 6
    assert finished == ["c", "b", "a"]
    assert [o.call.id for o in outcomes] == ["c1", "c2", "c3", "c4"]
    assert [output_for_model(o) for o in outcomes] == [
        '"a"',
        '{"error":"b failed"}',
        '"c"',
        '{"error":"Tool \\"missing\\" not found in tool definitions"}',
    ]


async def test_an_empty_round_returns_nothing() -> None:
    with trio.fail_after(10):
        assert await run_tool_round({}, [], CTX) == []


async def test_timeout_leaves_siblings_unaffected_a04(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A-04: a timed-out call is an error output; the others finish normally."""
    finished: list[str] = []
    tools = {"work": _sleeper("work", finished)}
    calls = [
        _call("work", {"delay": 10, "id": "long"}, "c1"),
        _call("work", {"delay": 1, "id": "short"}, "c2"),
    ]
    with trio.fail_after(20):
        outcomes = await run_tool_round(tools, calls, CTX, default_timeout=5)
    assert [o.error for o in outcomes] == ['Tool "work" timed out after 5s', None]
    assert outcomes[1].result == "short"
    assert finished == ["short"]


class _Gauge:
    """Counts running calls and remembers the maximum."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.started: list[str] = []
        self.release = trio.Event()

    def tool(self, name: str, *, fail: bool = False, max_concurrency: int | None = None) -> Tool:
        async def execute(args: Any) -> Any:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.started.append(args["id"])
            try:
                await self.release.wait()
                if fail:
                    raise ValueError("boom")
                return args["id"]
            finally:
                self.running -= 1

        return tool(
            name=name, input_schema=dict[str, Any], execute=execute, max_concurrency=max_concurrency
        )


async def test_round_limit_caps_parallelism_a04() -> None:
    """A-04: round_limit=2 with five calls → exactly two run at once."""
    gauge = _Gauge()
    tools = {"t": gauge.tool("t")}
    calls = [_call("t", {"id": str(i)}, f"c{i}") for i in range(5)]
    results: list[Any] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                results.extend(await run_tool_round(tools, calls, CTX, round_limit=2))

            nursery.start_soon(run)
            await trio.testing.wait_all_tasks_blocked()
            assert gauge.running == 2
            assert gauge.started == ["0", "1"]
            gauge.release.set()
    assert gauge.peak == 2
    assert [o.result for o in results] == ["0", "1", "2", "3", "4"]


async def test_round_limit_one_runs_calls_sequentially_in_call_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    finished: list[str] = []
    tools = {"t": _sleeper("t", finished)}
    calls = [_call("t", {"delay": 5 - i, "id": str(i)}, f"c{i}") for i in range(5)]
    with trio.fail_after(30):
        outcomes = await run_tool_round(tools, calls, CTX, round_limit=1)
    assert finished == ["0", "1", "2", "3", "4"]
    assert [o.result for o in outcomes] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(("round_limit", "max_concurrency"), [(30, None), (None, 30)])
async def test_calls_start_in_call_order_under_a_limit(
    round_limit: int | None, max_concurrency: int | None
) -> None:
    gauge = _Gauge()
    gauge.release.set()
    tools = {"t": gauge.tool("t", max_concurrency=max_concurrency)}
    calls = [_call("t", {"id": str(i)}, f"c{i}") for i in range(30)]
    for _ in range(5):
        gauge.started.clear()
        with trio.fail_after(10):
            await run_tool_round(tools, calls, CTX, round_limit=round_limit)
        assert gauge.started == [str(i) for i in range(30)]


async def test_per_tool_max_concurrency_keeps_order_a04() -> None:
    """A-04: max_concurrency=1 serialises one tool, others run beside it; outputs in call order."""
    gauge = _Gauge()
    other = _Gauge()
    tools = {"one": gauge.tool("one", max_concurrency=1), "free": other.tool("free")}
    calls = [
        _call("one", {"id": "a"}, "c1"),
        _call("free", {"id": "b"}, "c2"),
        _call("one", {"id": "c"}, "c3"),
        _call("free", {"id": "d"}, "c4"),
    ]
    results: list[Any] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                results.extend(await run_tool_round(tools, calls, CTX))

            nursery.start_soon(run)
            await trio.testing.wait_all_tasks_blocked()
            assert (gauge.running, other.running) == (1, 2)
            assert gauge.started == ["a"]
            other.release.set()
            gauge.release.set()
    assert gauge.peak == 1
    assert gauge.started == ["a", "c"]
    assert [o.result for o in results] == ["a", "b", "c", "d"]


async def test_a_call_waiting_for_its_tool_holds_no_round_slot() -> None:
    """The tool slot is taken before the round slot, so a blocked tool does not starve others."""
    gauge = _Gauge()
    other = _Gauge()
    tools = {"one": gauge.tool("one", max_concurrency=1), "free": other.tool("free")}
    calls = [
        _call("one", {"id": "a"}, "c1"),
        _call("one", {"id": "b"}, "c2"),
        _call("free", {"id": "c"}, "c3"),
    ]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: run_tool_round(tools, calls, CTX, round_limit=2))
            await trio.testing.wait_all_tasks_blocked()
            assert (gauge.started, other.started) == (["a"], ["c"])
            gauge.release.set()
            other.release.set()


async def test_shared_limiters_span_rounds() -> None:
    gauge = _Gauge()
    tools = {"one": gauge.tool("one", max_concurrency=1)}
    limiters = make_tool_limiters(tools.values())
    assert list(limiters) == ["one"]
    assert limiters["one"].total_tokens == 1
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            for r in range(2):
                round_calls = [_call("one", {"id": str(r)})]
                nursery.start_soon(
                    functools.partial(run_tool_round, tools, round_calls, CTX, limiters=limiters)
                )
            await trio.testing.wait_all_tasks_blocked()
            assert gauge.running == 1
            gauge.release.set()
    assert gauge.peak == 1


async def test_a_throwing_tool_releases_its_slot_a04() -> None:
    """A-04: a failing call frees its round slot for the next call."""
    gauge = _Gauge()
    gauge.release.set()
    tools = {"bad": gauge.tool("bad", fail=True, max_concurrency=1), "good": gauge.tool("good")}
    calls = [
        _call("bad", {"id": "1"}, "c1"),
        _call("bad", {"id": "2"}, "c2"),
        _call("good", {"id": "3"}, "c3"),
    ]
    with trio.fail_after(10):
        outcomes = await run_tool_round(tools, calls, CTX, round_limit=1)
    assert [o.error for o in outcomes] == ["boom", "boom", None]
    assert sorted(gauge.started) == ["1", "2", "3"]
    assert gauge.peak == 1


async def test_cancelling_the_round_cancels_every_tool_a04() -> None:
    """A-04: cancellation reaches every running tool; their finally blocks run; no task is left."""
    cancelled: list[str] = []
    cleaned: list[str] = []
    started = 0

    async def execute(args: Any) -> Any:
        nonlocal started
        started += 1
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(args["id"])
            raise
        finally:
            cleaned.append(args["id"])

    async def gen(args: Any) -> AsyncIterator[Any]:
        try:
            yield {"status": "going"}
            await trio.sleep_forever()
        finally:
            cleaned.append("gen")

    tools = {
        "t": tool(name="t", input_schema=dict[str, Any], execute=execute),
        "g": _generator("g", gen),
    }
    calls = [_call("t", {"id": str(i)}, f"c{i}") for i in range(3)] + [_call("g", {}, "cg")]
    emitted: list[tuple[str, Any]] = []
    nurseries_before = list(trio.lowlevel.current_task().child_nurseries)
    with trio.fail_after(10):
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: run_tool_round(
                        tools, calls, CTX, on_preliminary=lambda i, e: emitted.append((i, e))
                    )
                )
                await trio.testing.wait_all_tasks_blocked()
                assert started == 3
                scope.cancel()
        assert scope.cancelled_caught
    assert sorted(cancelled) == ["0", "1", "2"]
    assert sorted(cleaned) == ["0", "1", "2", "gen"]
    assert emitted == [("cg", Event("going"))]
    assert trio.lowlevel.current_task().child_nurseries == nurseries_before


async def test_cancelled_propagates_from_a_single_call() -> None:
    async def execute(args: Any) -> Any:
        await trio.sleep_forever()

    t = tool(name="t", input_schema=dict[str, Any], execute=execute)
    with trio.fail_after(10), trio.move_on_after(0) as scope:
        await run_tool_call(t, _call("t"), CTX)
    assert scope.cancelled_caught


async def test_preliminary_events_carry_the_call_id() -> None:
    async def gen(args: Any) -> AsyncIterator[Any]:
        yield {"status": args["id"]}
        yield FinalResult({"completed": True})

    tools = {"g": _generator("g", gen)}
    calls = [_call("g", {"id": "x"}, "c1"), _call("g", {"id": "y"}, "c2")]
    emitted: list[tuple[str, Any]] = []
    with trio.fail_after(10):
        await run_tool_round(tools, calls, CTX, on_preliminary=lambda i, e: emitted.append((i, e)))
    assert sorted(emitted, key=lambda x: x[0]) == [("c1", Event("x")), ("c2", Event("y"))]


async def test_a_raising_round_callback_propagates() -> None:
    async def gen(args: Any) -> AsyncIterator[Any]:
        yield {"status": "s"}
        yield FinalResult({"completed": True})

    def on_preliminary(call_id: str, event: Any) -> None:
        raise RuntimeError("bad callback")

    with (
        trio.fail_after(10),
        pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="bad callback")),
    ):
        await run_tool_round(
            {"g": _generator("g", gen)}, [_call("g")], CTX, on_preliminary=on_preliminary
        )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"round_limit": 0}, "round_limit 0"),
        ({"round_limit": True}, "round_limit True"),
        ({"default_timeout": 0}, "default_timeout 0"),
        ({"default_timeout": -1}, "default_timeout -1"),
    ],
)
async def test_round_arguments_are_checked(kwargs: dict[str, Any], fragment: str) -> None:
    with trio.fail_after(10), pytest.raises(ConfigurationError, match=fragment):
        await run_tool_round({}, [], CTX, **kwargs)
