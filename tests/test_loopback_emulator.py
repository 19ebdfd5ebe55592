"""The runtime against the emulator over real loopback HTTP: text, reasoning,
multi-turn tool loops and every fault the emulator injects.

Retries happen where the spec says; typed errors surface where it says, with
every event received before the fault delivered. These tests use real sockets,
so they run on trio's real clock (an autojump clock would leap past socket
waits); every one is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio

from runtime import (
    EdgeTimeoutError,
    ErrorEvent,
    FinalResult,
    OpenRouter,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeoutError,
    ResponseFailed,
    ResponseFailedError,
    RetryConfig,
    ToolPreliminaryResult,
    TransportError,
    TurnStart,
    tool,
)
from runtime.emulator import EmulatorServer, open_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

NO_RETRY = RetryConfig(strategy="none")
FAST_RETRY = RetryConfig(initial_interval=0.01, max_retries=3, retry_codes=("429", "5XX"))
PROMPT = "the quick brown fox jumps over the lazy dog"


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with open_emulator() as emu:
        yield emu


@pytest.fixture
async def client(server: EmulatorServer) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(server.inference_key, base_url=server.base_url) as c:
        yield c


async def test_text_streams_over_loopback(client: OpenRouter) -> None:
    with trio.fail_after(10):
        result = client.call_model(model="emulator/echo", input=PROMPT)
        deltas = [d async for d in result.get_text_stream()]
        assert await result.get_text() == "".join(deltas)
        usage = await result.get_usage()
    assert PROMPT in "".join(deltas)
    assert len(deltas) > 3
    assert usage.model_calls == 1
    assert usage.total_tokens > 0
    assert usage.cost is not None


async def test_reasoning_over_loopback(client: OpenRouter) -> None:
    with trio.fail_after(10):
        result = client.call_model(model="emulator/reasoning", input=PROMPT)
        reasoning = "".join([d async for d in result.get_reasoning_stream()])
        text = await result.get_text()
    assert reasoning
    assert text


class City(msgspec.Struct):
    city: str


class Progress(msgspec.Struct):
    step: int


class Report(msgspec.Struct):
    steps: int


async def _survey(args: City) -> AsyncIterator[Any]:
    for step in range(3):
        yield Progress(step=step)
    yield FinalResult(Report(steps=3))


weather = tool(
    name="get_weather",
    description="Weather for a city.",
    input_schema=City,
    execute=lambda args: {"city": args.city, "temp_c": 21},
)
survey = tool(
    name="survey",
    description="A long survey of a city.",
    input_schema=City,
    event_schema=Progress,
    output_schema=Report,
    execute=_survey,
)


async def test_multi_turn_tool_loop_over_loopback(
    client: OpenRouter, server: EmulatorServer
) -> None:
    with trio.fail_after(10):
        result = client.call_model(
            model="emulator/tool-caller", input="Weather and a survey?", tools=[weather, survey]
        )
        events = [e async for e in result.get_full_responses_stream()]
        text = await result.get_text()
    assert sum(isinstance(e, TurnStart) for e in events) == 2
    assert [e.result.step for e in events if isinstance(e, ToolPreliminaryResult)] == [0, 1, 2]
    assert "get_weather returned" in text
    assert "temp_c" in text
    bodies = [r.json for r in server.emulator.requests if r.path == "/api/v1/responses"]
    assert len(bodies) == 2
    outputs = [i for i in bodies[1]["input"] if i.get("type") == "function_call_output"]
    assert len(outputs) == 2


async def test_bad_tool_arguments_become_an_error_output(client: OpenRouter) -> None:
    with trio.fail_after(10):
        result = client.call_model(
            model="emulator/tool-caller:fault=bad-tool-args", input="x", tools=[weather]
        )
        text = await result.get_text()
    assert "Failed to parse tool call arguments" in text


async def test_429_is_retried_when_asked_and_honours_retry_after(client: OpenRouter) -> None:
    with trio.fail_after(10):
        start = trio.current_time()
        result = client.call_model(
            model="emulator/echo:fault=429,retry-after=1,times=1,key=r429",
            input=PROMPT,
            retry=FAST_RETRY,
        )
        assert PROMPT in await result.get_text()
    assert trio.current_time() - start >= 1.0


async def test_429_is_not_retried_by_default(client: OpenRouter) -> None:
    with trio.fail_after(10):
        result = client.call_model(
            model="emulator/echo:fault=429,retry-after=7,times=1,key=nr429", input=PROMPT
        )
        with pytest.raises(RateLimitError) as info:
            await result.get_text()
    assert info.value.retry_after == 7


async def test_5xx_is_retried_by_default(client: OpenRouter, server: EmulatorServer) -> None:
    with trio.fail_after(10):
        result = client.call_model(
            model="emulator/echo:fault=502,retry-after=0,times=1,key=r502", input=PROMPT
        )
        assert PROMPT in await result.get_text()
    assert len(server.emulator.requests) == 2


@pytest.mark.parametrize(("status", "error"), [(408, RequestTimeoutError), (524, EdgeTimeoutError)])
async def test_timeouts_are_typed(client: OpenRouter, status: int, error: type[Exception]) -> None:
    with trio.fail_after(10):
        result = client.call_model(
            model=f"emulator/echo:fault={status}", input=PROMPT, retry=NO_RETRY
        )
        with pytest.raises(error):
            await result.get_text()


async def test_slow_stream_completes(client: OpenRouter) -> None:
    with trio.fail_after(10):
        result = client.call_model(model="emulator/echo:fault=slow=0.005", input=PROMPT)
        assert PROMPT in await result.get_text()


async def _until_error(result: Any) -> tuple[list[Any], BaseException]:
    events: list[Any] = []
    try:
        async for event in result.get_full_responses_stream():
            events.append(event)
    except Exception as exc:
        return events, exc
    raise AssertionError("the stream ended without the expected error")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("drop-after=6", (RemoteProtocolError, TransportError)),
        ("fail-after=6", ResponseFailedError),
        ("error-after=6", ResponseFailedError),
        ("malformed-after=6", RemoteProtocolError),
    ],
)
async def test_mid_stream_faults_deliver_every_event_before_the_error(
    client: OpenRouter, fault: str, error: Any
) -> None:
    with trio.fail_after(10):
        result = client.call_model(model=f"emulator/echo:fault={fault}", input=PROMPT)
        events, exc = await _until_error(result)
        with pytest.raises(error):
            await result.get_text()
    assert isinstance(exc, error)
    assert isinstance(events[0], TurnStart)
    # turn.start, the six events before the fault, and an in-band failure event itself
    in_band = isinstance(exc, ResponseFailedError)
    assert len(events) == 1 + 6 + in_band
    if in_band:
        assert isinstance(events[-1], ResponseFailed | ErrorEvent)


async def test_terminal_event_without_closing_the_body_ends_the_turn(client: OpenRouter) -> None:
    with trio.fail_after(10):
        result = client.call_model(model="emulator/echo:fault=hang", input=PROMPT)
        assert PROMPT in await result.get_text()


@pytest.mark.parametrize("fault", ["no-done", "json-body", "chunk=7"])
async def test_other_framings_are_accepted(client: OpenRouter, fault: str) -> None:
    with trio.fail_after(10):
        result = client.call_model(model=f"emulator/echo:fault={fault}", input=PROMPT)
        assert PROMPT in await result.get_text()
        assert PROMPT in "".join([d async for d in result.get_text_stream()])


async def test_bad_key_is_an_authentication_error(server: EmulatorServer) -> None:
    from runtime import AuthenticationError

    with trio.fail_after(10):
        async with OpenRouter("sk-or-v1-wrong", base_url=server.base_url) as client:
            result = client.call_model(model="emulator/echo", input="x")
            with pytest.raises(AuthenticationError) as info:
                await result.get_text()
    assert "sk-or-v1-wrong" not in str(info.value)
    assert "sk-or-v1-wrong" not in repr(info.value)


async def test_final_answer_after_a_stop_uses_the_tool_results(client: OpenRouter) -> None:
    """allow_final_response's directive is answered from the tool results, not echoed."""
    from runtime import DEFAULT_FINAL_RESPONSE_DIRECTIVE, step_count_is

    with trio.fail_after(10):
        result = client.call_model(
            model="emulator/tool-caller",
            input="Weather?",
            tools=[weather],
            stop_when=step_count_is(0),
        )
        text = await result.get_text()
    assert "get_weather returned" in text
    assert DEFAULT_FINAL_RESPONSE_DIRECTIVE not in text


async def test_an_approval_survives_a_restart_over_loopback(
    server: EmulatorServer, tmp_path: Any
) -> None:
    """Pause on the built-in tool-caller, then resume from the JSON file in a fresh client:
    the emulator refuses any request with an unanswered call, so the resumed one is valid."""
    from runtime import JSONFileStateStore

    class Target(msgspec.Struct):
        city: str

    ran: list[str] = []

    def forecast(target: Target) -> str:
        ran.append(target.city)
        return "sunny"

    def lookup(target: Target) -> str:
        return "found"

    gated = tool(name="forecast", input_schema=Target, execute=forecast, require_approval=True)
    free = tool(name="lookup", input_schema=Target, execute=lookup)
    path = tmp_path / "conversation.json"
    with trio.fail_after(20):
        async with OpenRouter(server.inference_key, base_url=server.base_url) as first:
            paused = first.call_model(
                model="emulator/tool-caller",
                input="Weather?",
                tools=[gated, free],
                state=JSONFileStateStore(path),
            )
            pending = await paused.get_pending_tool_calls()
            assert await paused.requires_approval()
        assert [c.name for c in pending] == ["forecast"]
        assert ran == []
        async with OpenRouter(server.inference_key, base_url=server.base_url) as second:
            resumed = second.call_model(
                model="emulator/tool-caller",
                tools=[gated, free],
                state=JSONFileStateStore(path),
                approve=[pending[0].id],
            )
            text = await resumed.get_text()
    assert text == 'forecast returned "sunny". lookup returned "found".'
    assert len(ran) == 1
    saved = msgspec.json.decode(path.read_bytes())
    assert saved["status"] == "complete"
    assert saved["turn"] == 1
    assert saved["usage"]["model_calls"] == 2
