"""The agent loop end to end over the in-process fake (spec §8 loop scenarios).

Scenario ids are named in test names; where DESIGN.md §4 decides differently
from the TypeScript SDK, the test follows DESIGN.md and says so.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing

from runtime import (
    DEFAULT_FINAL_RESPONSE_DIRECTIVE,
    FinalResult,
    InternalServerError,
    OpenRouter,
    RetryConfig,
    RunCancelled,
    RunError,
    ToolCallOutput,
    ToolContext,
    ToolError,
    ToolPreliminaryResult,
    ToolResult,
    TurnContext,
    TurnEnd,
    TurnStart,
    function_tool,
    has_tool_call,
    max_cost,
    step_count_is,
    tool,
)
from runtime.testing import (
    FakeOpenRouter,
    Fault,
    Turn,
    TurnUsage,
    sse_bytes,
    text_turn,
    tool_call_turn,
    turn_events,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Weather(msgspec.Struct):
    city: str
    temp_c: int


class WeatherInput(msgspec.Struct):
    city: str


calls_made: list[str] = []


def _weather(args: WeatherInput) -> Weather:
    calls_made.append(args.city)
    return Weather(city=args.city, temp_c=22)


get_weather = tool(
    name="get_weather",
    description="Weather for a city.",
    input_schema=WeatherInput,
    output_schema=Weather,
    execute=_weather,
)


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls_made.clear()


@pytest.fixture
def fake() -> FakeOpenRouter:
    return FakeOpenRouter()


@pytest.fixture
async def client(fake: FakeOpenRouter) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as c:
        yield c


def _outputs(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in body["input"] if i.get("type") == "function_call_output"]


def _calls(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in body["input"] if i.get("type") == "function_call"]


async def test_tool_executes_exactly_once_L01(fake: FakeOpenRouter, client: OpenRouter) -> None:
    fake.enqueue(tool_call_turn(("get_weather", {"city": "Paris"})), text_turn("done"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Weather?", tools=[get_weather])
        assert await result.get_text() == "done"
    assert calls_made == ["Paris"]
    assert len(fake.bodies()) == 2


async def test_multi_turn_history_and_streams_L03(fake: FakeOpenRouter, client: OpenRouter) -> None:
    fake.enqueue(
        tool_call_turn(("get_weather", {"city": "Paris"}), text="Let me check."),
        text_turn("A sunny day", chunks=2),
    )
    with trio.fail_after(5):
        result = client.call_model(
            model="m", input="Weather?", instructions="Be brief.", tools=[get_weather]
        )
        deltas = [d async for d in result.get_text_stream()]
        assert await result.get_text() == "A sunny day"
    assert "".join(deltas) == "Let me check.A sunny day"
    first, second = fake.bodies()
    assert second["stream"] is True
    assert second["instructions"] == first["instructions"] == "Be brief."
    assert second["tools"] == first["tools"]
    r0_output = json.loads(
        json.dumps([i for i in second["input"][1:] if i.get("type") != "function_call_output"])
    )
    assert second["input"][0] == {"role": "user", "content": "Weather?"}
    assert [i["type"] for i in r0_output] == ["message", "function_call"]
    (output,) = _outputs(second)
    assert output["call_id"] == _calls(second)[0]["call_id"]
    assert json.loads(output["output"]) == {"city": "Paris", "temp_c": 22}
    assert all(r.headers["x-openrouter-callmodel"] == "true" for r in fake.requests)


async def test_every_function_call_sent_back_has_its_output_in_call_order(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """E-02 at loop level: parallel calls, outputs in call order."""

    async def slow_first(args: WeatherInput) -> Weather:
        await trio.sleep(0.01 if args.city == "A" else 0)
        return Weather(city=args.city, temp_c=1)

    slow = tool(name="w", input_schema=WeatherInput, output_schema=Weather, execute=slow_first)
    fake.enqueue(
        tool_call_turn(("w", {"city": "A"}), ("w", {"city": "B"}), ("w", {"city": "C"})),
        text_turn("ok"),
    )
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[slow])
        await result.get_text()
    second = fake.bodies()[1]
    assert [c["call_id"] for c in _calls(second)] == [o["call_id"] for o in _outputs(second)]
    assert [json.loads(o["output"])["city"] for o in _outputs(second)] == ["A", "B", "C"]


async def test_unknown_tool_becomes_an_error_output_the_model_reads(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """DESIGN §4.6: an unknown tool name is an error output, never a dangling call."""
    fake.enqueue(
        tool_call_turn(("get_weather", {"city": "Oslo"}), ("no_such_tool", {})),
        text_turn("recovered"),
    )
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather])
        assert await result.get_text() == "recovered"
    outputs = _outputs(fake.bodies()[1])
    assert len(outputs) == 2
    assert json.loads(outputs[1]["output"]) == {
        "error": 'Tool "no_such_tool" not found in tool definitions'
    }


async def test_invalid_json_arguments_never_reach_execute_E04(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("get_weather", "not json")), text_turn("ok"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather])
        events = [e async for e in result.get_full_responses_stream()]
    assert calls_made == []
    (tool_result,) = [e for e in events if isinstance(e, ToolResult)]
    assert "Failed to parse tool call arguments" in tool_result.result["error"]
    (output,) = _outputs(fake.bodies()[1])
    assert json.loads(output["output"])["error"].startswith(
        'Failed to parse tool call arguments for "get_weather": The model provided invalid JSON.'
    )


async def test_arguments_failing_the_schema_never_reach_execute(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("get_weather", {"town": "Paris"})), text_turn("ok"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather])
        await result.get_text()
    assert calls_made == []
    (output,) = _outputs(fake.bodies()[1])
    assert "city" in json.loads(output["output"])["error"]


async def test_a_raising_tool_is_an_error_output_not_a_crash(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    def boom(args: WeatherInput) -> Weather:
        raise ValueError("boom")

    bad = tool(name="bad", input_schema=WeatherInput, execute=boom)
    fake.enqueue(tool_call_turn(("bad", {"city": "x"})), text_turn("sorry"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[bad])
        assert await result.get_text() == "sorry"
    (output,) = _outputs(fake.bodies()[1])
    assert output["output"] == '{"error":"boom"}'


# -- stop conditions ----------------------------------------------------------


def _always_calling(fake: FakeOpenRouter, n: int) -> None:
    for k in range(n):
        fake.enqueue(tool_call_turn(("get_weather", {"city": f"c{k}"})))


async def test_default_stop_is_five_rounds_then_a_final_answer(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """DESIGN §4.1 + §4.2: default step_count_is(5), then one final call without tools."""
    _always_calling(fake, 6)
    fake.enqueue(text_turn("final"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather])
        assert await result.get_text() == "final"
    bodies = fake.bodies()
    assert len(bodies) == 7
    assert len(calls_made) == 6
    assert bodies[-1]["tool_choice"] == "none"
    assert bodies[-1]["input"][-1] == {"role": "user", "content": DEFAULT_FINAL_RESPONSE_DIRECTIVE}


async def test_step_count_zero_without_final_response_L05(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    _always_calling(fake, 3)
    with trio.fail_after(5):
        result = client.call_model(
            model="m",
            input="x",
            tools=[get_weather],
            stop_when=step_count_is(0),
            allow_final_response=False,
        )
        response = await result.get_response()
    assert len(fake.bodies()) == 1
    assert calls_made == []
    assert response.output[-1].type == "function_call"  # unexecuted calls stay in the final


async def test_step_count_one_L05(fake: FakeOpenRouter, client: OpenRouter) -> None:
    _always_calling(fake, 3)
    with trio.fail_after(5):
        result = client.call_model(
            model="m",
            input="x",
            tools=[get_weather],
            stop_when=step_count_is(1),
            allow_final_response=False,
        )
        await result.get_response()
    assert len(fake.bodies()) == 2
    assert calls_made == ["c0"]


async def test_has_tool_call_stops_one_response_after_the_call_L06(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    finished: list[bool] = []

    def finish_now(args: dict[str, Any]) -> str:
        finished.append(True)
        return "ok"

    finish = tool(name="finish", input_schema=dict[str, Any], execute=finish_now)
    fake.enqueue(tool_call_turn(("finish", {})), tool_call_turn(("get_weather", {"city": "never"})))
    with trio.fail_after(5):
        result = client.call_model(
            model="m",
            input="x",
            tools=[finish, get_weather],
            stop_when=has_tool_call("finish"),
            allow_final_response=False,
        )
        await result.get_response()
    assert finished == [True]
    assert calls_made == []
    assert len(fake.bodies()) == 2


async def test_max_cost_counts_steps_L07(fake: FakeOpenRouter, client: OpenRouter) -> None:
    for k in range(5):
        fake.enqueue(tool_call_turn(("get_weather", {"city": f"c{k}"}), usage=TurnUsage(cost=0.3)))
    with trio.fail_after(5):
        result = client.call_model(
            model="m",
            input="x",
            tools=[get_weather],
            stop_when=max_cost(0.5),
            allow_final_response=False,
        )
        await result.get_response()
        usage = await result.get_usage()
    assert len(fake.bodies()) == 3
    assert usage.cost == pytest.approx(0.9)


async def test_stop_list_is_any_of_and_truthy_non_bool_does_not_stop_L08(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    _always_calling(fake, 3)
    fake.enqueue(text_turn("natural end"))
    with trio.fail_after(5):
        result = client.call_model(
            model="m",
            input="x",
            tools=[get_weather],
            stop_when=[step_count_is(10), lambda ctx: 1],  # type: ignore[list-item,return-value]  # L-08: a truthy int is not a stop
        )
        assert await result.get_text() == "natural end"
    assert len(calls_made) == 3


async def test_a_raising_stop_condition_fails_the_run(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    def broken(ctx: Any) -> bool:
        raise ZeroDivisionError("nope")

    _always_calling(fake, 1)
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather], stop_when=broken)
        with pytest.raises(RunError, match="a stop condition raised"):
            await result.get_text()


# -- allow_final_response (A-01) ------------------------------------------------


async def test_allow_final_response_runs_pending_calls_then_asks_without_tools_A01(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("get_weather", {"city": "Rome"})), text_turn("It is 22"))
    with trio.fail_after(5):
        result = client.call_model(
            model="m",
            input="x",
            instructions="inst",
            tools=[get_weather],
            stop_when=step_count_is(0),
            tool_choice="required",
        )
        assert await result.get_text() == "It is 22"
    first, second = fake.bodies()
    assert second["tools"] == first["tools"]
    assert second["tool_choice"] == "none"
    assert second["instructions"] == "inst"
    assert _calls(second)[0]["name"] == "get_weather"
    assert '"temp_c":22' in _outputs(second)[0]["output"]
    assert second["input"][-1] == {"role": "user", "content": DEFAULT_FINAL_RESPONSE_DIRECTIVE}


@pytest.mark.parametrize(("option", "last"), [("Answer now.", "Answer now."), ("", None)])
async def test_allow_final_response_directive_option_A01(
    fake: FakeOpenRouter, client: OpenRouter, option: str, last: str | None
) -> None:
    fake.enqueue(tool_call_turn(("get_weather", {"city": "Rome"})), text_turn("ok"))
    with trio.fail_after(5):
        result = client.call_model(
            model="m",
            input="x",
            tools=[get_weather],
            stop_when=step_count_is(0),
            allow_final_response=option,
        )
        await result.get_text()
    final_input = fake.bodies()[1]["input"]
    if last is None:
        assert final_input[-1]["type"] == "function_call_output"
    else:
        assert final_input[-1] == {"role": "user", "content": last}


async def test_natural_end_makes_no_extra_request_A01(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("get_weather", {"city": "Rome"})), text_turn("done"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather])
        await result.get_text()
    assert len(fake.bodies()) == 2


async def test_forced_tool_choice_is_relaxed_after_a_round_A02(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("get_weather", {"city": "Rome"})), text_turn("done"))
    with trio.fail_after(5):
        result = client.call_model(
            model="m", input="x", tools=[get_weather], tool_choice="required"
        )
        await result.get_text()
    assert [b["tool_choice"] for b in fake.bodies()] == ["required", "auto"]


# -- manual tools (L-09, L-10, L-11) -------------------------------------------


manual_exec = tool(name="exec_command", input_schema=dict[str, Any], execute=False)


async def test_mixed_manual_round_pauses_without_a_follow_up_L10(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(
        tool_call_turn(("get_weather", {"city": "Paris"}), ("exec_command", {"cmd": "ls"}))
    )
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather, manual_exec])
        response = await result.get_response()
        pending = await result.get_pending_tool_calls()
        conversation = await result.get_conversation()
    assert len(fake.bodies()) == 1
    assert response.id == (await result.get_response()).id
    assert [p.name for p in pending] == ["exec_command"]
    assert pending[0].arguments == {"cmd": "ls"}
    assert calls_made == ["Paris"]  # the auto tool ran (AG semantics)
    assert [i.get("type", i.get("role")) for i in conversation] == [
        "user",
        "function_call",
        "function_call",
        "function_call_output",
    ]


async def test_all_manual_calls_stop_after_one_request_L09(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("exec_command", {"cmd": "ls"})))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[manual_exec])
        assert await result.get_text() == ""
        assert [c.name for c in await result.get_tool_calls()] == ["exec_command"]
        assert [c.name for c in await result.get_pending_tool_calls()] == ["exec_command"]
    assert len(fake.bodies()) == 1


async def test_all_auto_round_with_a_manual_tool_registered_loops_L11(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("get_weather", {"city": "Paris"})), text_turn("follow-up"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather, manual_exec])
        assert await result.get_text() == "follow-up"
        assert await result.get_pending_tool_calls() == []


# -- next-turn and dynamic params -------------------------------------------------


async def test_next_turn_params_compose_and_none_removes_L12(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    load_skill = tool(
        name="load_skill",
        input_schema=dict[str, Any],
        execute=lambda args: "loaded",
        next_turn_params={
            "instructions": lambda p, ctx: f"{ctx.instructions}\n\n{p['skill']}",
            "temperature": lambda: 0.2,
            "top_p": lambda p, ctx: None,
        },
    )
    fake.enqueue(
        tool_call_turn(("load_skill", {"skill": "A"}), ("load_skill", {"skill": "B"})),
        text_turn("ok"),
    )
    with trio.fail_after(5):
        result = client.call_model(
            model="m", input="x", instructions="base", top_p=0.5, tools=[load_skill]
        )
        await result.get_text()
    second = fake.bodies()[1]
    assert second["instructions"] == "base\n\nA\n\nB"
    assert second["temperature"] == 0.2
    assert "top_p" not in second


async def test_dynamic_params_per_turn_L14(fake: FakeOpenRouter, client: OpenRouter) -> None:
    _always_calling(fake, 2)
    fake.enqueue(text_turn("end"))
    with trio.fail_after(5):
        result = client.call_model(
            model="m",
            input="x",
            tools=[get_weather],
            temperature=lambda ctx: 0.3 if ctx.number_of_turns > 1 else 0.7,
        )
        await result.get_text()
    assert [b["temperature"] for b in fake.bodies()] == [0.7, 0.7, 0.3]


async def test_a_throwing_dynamic_param_fails_the_run_L14(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    def bad(ctx: TurnContext) -> float:
        raise ValueError("no temperature today")

    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", temperature=bad)
        with pytest.raises(
            RunError, match='Failed to resolve async function for field "temperature"'
        ):
            await result.get_text()
    assert fake.requests == []


async def test_turn_hooks_fire_per_round_L15(fake: FakeOpenRouter, client: OpenRouter) -> None:
    _always_calling(fake, 2)
    fake.enqueue(text_turn("end"))
    seen: list[tuple[str, int, str]] = []

    async def on_start(ctx: TurnContext) -> None:
        seen.append(("start", ctx.number_of_turns, ""))

    def on_end(ctx: TurnContext, response: Any) -> None:
        seen.append(("end", ctx.number_of_turns, response.status))

    with trio.fail_after(5):
        result = client.call_model(
            model="m", input="x", tools=[get_weather], on_turn_start=on_start, on_turn_end=on_end
        )
        await result.get_text()
    assert seen == [
        ("start", 1, ""),
        ("end", 1, "completed"),
        ("start", 2, ""),
        ("end", 2, "completed"),
    ]


# -- generator tools and the event timeline (L-16) --------------------------------


class Progress(msgspec.Struct):
    pct: int


class SearchDone(msgspec.Struct):
    hits: int


async def _search(args: dict[str, Any]) -> AsyncIterator[Any]:
    for pct in (25, 50, 100):
        yield Progress(pct=pct)
    yield FinalResult(SearchDone(hits=3))


search = tool(
    name="search",
    input_schema=dict[str, Any],
    event_schema=Progress,
    output_schema=SearchDone,
    execute=_search,
)


async def test_generator_progress_reaches_streams_before_the_follow_up_L16(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("search", {"q": "trio"})), text_turn("found 3"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[search])
        tool_events = [e async for e in result.get_tool_stream()]
        full = [e async for e in result.get_full_responses_stream()]
    prelim = [e for e in tool_events if isinstance(e, ToolPreliminaryResult)]
    assert [p.result.pct for p in prelim] == [25, 50, 100]
    kinds = [type(e) for e in full]
    first_prelim = kinds.index(ToolPreliminaryResult)
    result_at = kinds.index(ToolResult)
    output_at = kinds.index(ToolCallOutput)
    second_start = [i for i, e in enumerate(full) if isinstance(e, TurnStart)][1]
    assert kinds.index(TurnEnd) < first_prelim < result_at < output_at < second_start
    tool_result = full[result_at]
    assert isinstance(tool_result, ToolResult)
    assert [p.pct for p in tool_result.preliminary_results] == [25, 50, 100]  # type: ignore[union-attr]
    (output,) = _outputs(fake.bodies()[1])
    assert json.loads(output["output"]) == {"hits": 3}


async def test_every_turn_is_framed_by_turn_events(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """DESIGN §4.11."""
    _always_calling(fake, 2)
    fake.enqueue(text_turn("end"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather])
        full = [e async for e in result.get_full_responses_stream()]
    starts = [e.turn_number for e in full if isinstance(e, TurnStart)]
    ends = [e.turn_number for e in full if isinstance(e, TurnEnd)]
    assert starts == ends == [0, 1, 2]


# -- errors, usage, empty final ---------------------------------------------------


async def test_follow_up_500_fails_get_text_and_the_stream_after_turn0_L18(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(
        tool_call_turn(("get_weather", {"city": "Paris"}), text="checking"),
        Turn(fault=Fault(status=500)),
    )
    with trio.fail_after(5):
        result = client.call_model(
            model="m", input="x", tools=[get_weather], retry=RetryConfig(strategy="none")
        )
        got: list[str] = []
        with pytest.raises(InternalServerError):
            async for d in result.get_text_stream():
                got.append(d)
        with pytest.raises(InternalServerError):
            await result.get_text()
    assert "".join(got) == "checking"


async def test_usage_sums_every_model_call_A05(fake: FakeOpenRouter, client: OpenRouter) -> None:
    fake.enqueue(
        tool_call_turn(
            ("get_weather", {"city": "Paris"}),
            usage=TurnUsage(
                input_tokens=10, output_tokens=5, cached_tokens=4, reasoning_tokens=2, cost=0.1
            ),
        ),
        text_turn("ok", usage=TurnUsage(input_tokens=30, output_tokens=7, cost=0.2)),
    )
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather])
        usage = await result.get_usage()
        last = await result.get_response()
    assert usage.model_calls == 2
    assert (usage.input_tokens, usage.output_tokens) == (40, 12)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (4, 2)
    assert usage.cost == pytest.approx(0.3)
    assert last.usage is not None
    assert last.usage.input_tokens == 30  # get_response() is the last response only


async def test_empty_final_after_tools_is_retried_once_without_tools_L20() -> None:
    """L-20 with AG #63: an empty final output after a round is asked for once more."""
    import httpx

    def empty_turn() -> list[Any]:
        events = turn_events(text_turn("x"))
        completed = dict(events[-1])
        completed["response"] = {**completed["response"], "output": [], "output_text": ""}
        return [events[0], completed]

    streams = [
        sse_bytes(turn_events(tool_call_turn(("get_weather", {"city": "Paris"})))),
        sse_bytes(empty_turn()),
        sse_bytes(turn_events(text_turn("second try"))),
    ]
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=streams[len(bodies) - 1]
        )

    with trio.fail_after(5):
        async with OpenRouter("k", http_transport=httpx.MockTransport(handler)) as client:
            result = client.call_model(model="m", input="x", tools=[get_weather])
            assert await result.get_text() == "second try"
    assert len(bodies) == 3
    assert bodies[2]["tool_choice"] == "none"


async def test_get_tool_calls_is_the_initial_response_whatever_the_timing(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(tool_call_turn(("get_weather", {"city": "Paris"})), text_turn("done"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[get_weather])
        await result.get_text()
        calls = await result.get_tool_calls()
    assert [c.name for c in calls] == ["get_weather"]


# -- tool limits, timeouts, cancellation (A-04) ---------------------------------


async def test_tool_timeout_is_an_error_output_and_the_loop_goes_on_A04(
    fake: FakeOpenRouter, client: OpenRouter, autojump_clock: trio.testing.MockClock
) -> None:
    async def sleepy(args: dict[str, Any]) -> str:
        await trio.sleep(100)
        return "late"  # pragma: no cover

    slow = tool(name="slow", input_schema=dict[str, Any], execute=sleepy)
    fake.enqueue(tool_call_turn(("slow", {}), ("get_weather", {"city": "P"})), text_turn("ok"))
    with trio.fail_after(60):
        result = client.call_model(model="m", input="x", tools=[slow, get_weather], tool_timeout=5)
        assert await result.get_text() == "ok"
    outputs = _outputs(fake.bodies()[1])
    assert "timed out" in json.loads(outputs[0]["output"])["error"]
    assert json.loads(outputs[1]["output"])["temp_c"] == 22


async def test_tool_concurrency_caps_a_round_A04(
    fake: FakeOpenRouter, client: OpenRouter, autojump_clock: trio.testing.MockClock
) -> None:
    running = 0
    peak = 0

    async def busy(args: dict[str, Any]) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(1)
        running -= 1
        return 1

    busy_tool = tool(name="busy", input_schema=dict[str, Any], execute=busy)
    fake.enqueue(tool_call_turn(*[("busy", {}) for _ in range(6)]), text_turn("ok"))
    with trio.fail_after(60):
        result = client.call_model(model="m", input="x", tools=[busy_tool], tool_concurrency=2)
        await result.get_text()
    assert peak == 2
    assert len(_outputs(fake.bodies()[1])) == 6


async def test_cancel_stops_running_tools_and_their_finally_runs_A04(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    started = trio.Event()
    cleaned: list[str] = []

    async def forever(args: dict[str, Any], ctx: ToolContext) -> str:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            cleaned.append(ctx.tool_call.id if ctx.tool_call else "?")

    stuck = tool(name="stuck", input_schema=dict[str, Any], execute=forever)
    fake.enqueue(tool_call_turn(("stuck", {}), ("stuck", {})), text_turn("never"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[stuck])
        deltas: list[str] = []

        async def consume() -> None:
            deltas.extend([d async for d in result.get_text_stream()])

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await started.wait()
            await trio.testing.wait_all_tasks_blocked()
            result.cancel()
        with pytest.raises(RunCancelled):
            await result.get_text()
    assert len(cleaned) == 2
    assert deltas == []
    assert result.snapshot().status == "cancelled"
    assert len(fake.bodies()) == 1


async def test_decorated_tool_in_the_loop(fake: FakeOpenRouter, client: OpenRouter) -> None:
    @function_tool
    def add(a: int, b: int = 1) -> int:
        """Add two numbers.

        Args:
            a: the first number.
            b: the second number.
        """
        return a + b

    fake.enqueue(tool_call_turn(("add", {"a": 40, "b": 2}), ("add", {"a": 1})), text_turn("42"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[add])
        await result.get_text()
    first = fake.bodies()[0]
    (wire,) = first["tools"]
    assert wire["name"] == "add"
    assert wire["parameters"]["properties"]["a"]["description"] == "the first number."
    assert [o["output"] for o in _outputs(fake.bodies()[1])] == ["42", "2"]


async def test_tool_errors_raise_policy_fails_the_run_with_a_tool_error(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    def boom(args: WeatherInput) -> Weather:
        raise ValueError("kaput")

    bad = tool(name="bad", input_schema=WeatherInput, execute=boom)
    fake.enqueue(tool_call_turn(("bad", {"city": "x"}, "call_bad")), text_turn("unused"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="x", tools=[bad], tool_errors="raise")
        with pytest.raises(
            ToolError, match=r"^tool 'bad' failed on call 'call_bad': kaput$"
        ) as info:
            await result.get_text()
    assert (info.value.tool_name, info.value.call_id) == ("bad", "call_bad")
    assert isinstance(info.value.__cause__, ValueError)
    assert len(fake.bodies()) == 1


async def test_dynamic_params_see_the_request_being_built(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    _always_calling(fake, 1)
    fake.enqueue(text_turn("end"))
    seen: list[tuple[int, Any, int]] = []

    def instructions(ctx: TurnContext) -> str:
        request = ctx.turn_request or {}
        seen.append((ctx.number_of_turns, request.get("model"), len(request.get("input") or [])))
        return f"turn {ctx.number_of_turns}"

    with trio.fail_after(5):
        result = client.call_model(
            model="m", input="x", tools=[get_weather], instructions=instructions
        )
        await result.get_text()
    assert seen == [(0, "m", 1), (1, "m", 1)]
    assert [b["instructions"] for b in fake.bodies()] == ["turn 0", "turn 1"]


async def test_conversation_after_a_natural_end_holds_every_turn(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """get_conversation(): input, each response's items verbatim, each tool output."""
    fake.enqueue(tool_call_turn(("get_weather", {"city": "Paris"})), text_turn("sunny"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Weather?", tools=[get_weather])
        conversation = await result.get_conversation()
    kinds = [i.get("type", i.get("role")) for i in conversation]
    assert kinds == ["user", "function_call", "function_call_output", "message"]
    assert conversation[-1]["content"][0]["text"] == "sunny"
