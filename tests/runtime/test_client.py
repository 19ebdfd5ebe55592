"""``OpenRouter`` + ``ModelResult`` over the in-process fake: one turn, many consumers.

Scenario ids of spec §8 are named where a test covers one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing

from runtime import (
    ConfigurationError,
    InternalServerError,
    OpenRouter,
    RateLimitError,
    RemoteProtocolError,
    ResponseFailedError,
    RetryConfig,
    RunCancelled,
)
from runtime._protocol.events import OutputTextDelta, ResponseCompleted, TurnEnd, TurnStart
from runtime.emulator import Fault, Turn
from runtime.testing import FakeOpenRouter, failed_turn, text_turn, tool_call_turn

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

NO_RETRY = RetryConfig(strategy="none")


@pytest.fixture
def fake() -> FakeOpenRouter:
    return FakeOpenRouter()


@pytest.fixture
async def client(fake: FakeOpenRouter) -> AsyncIterator[OpenRouter]:
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as c:
        yield c


async def _collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


async def test_get_text_single_turn_L02(fake: FakeOpenRouter, client: OpenRouter) -> None:
    """L-02: no tools, a text response → get_text is the text, one request, no tool calls."""
    fake.enqueue(text_turn("Hello there, world", chunks=3))
    with trio.fail_after(5):
        result = client.call_model(model="openai/gpt-5", input="Hi")
        assert await result.get_text() == "Hello there, world"
        assert await result.get_tool_calls() == []
    bodies = fake.bodies()
    assert len(bodies) == 1
    assert bodies[0]["stream"] is True
    assert bodies[0]["input"] == "Hi"
    assert fake.requests[0].headers["x-openrouter-callmodel"] == "true"


async def test_request_body_validates_against_openapi(
    fake: FakeOpenRouter, client: OpenRouter, openapi: Any
) -> None:
    fake.enqueue(text_turn("ok"))
    with trio.fail_after(5):
        result = client.call_model(
            model="openai/gpt-5",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
            instructions="Be brief.",
            temperature=0.3,
            max_output_tokens=100,
            top_p=0.9,
            top_k=40,
            frequency_penalty=0.1,
            presence_penalty=0.2,
            reasoning={"effort": "low"},
            metadata={"k": "v"},
            provider={"order": ["openai"], "allow_fallbacks": False},
            models=["openai/gpt-5", "anthropic/claude-sonnet-4.5"],
            text={"format": {"type": "text"}},
            tool_choice="auto",
            parallel_tool_calls=True,
            prompt_cache_key="cache-1",
            include=["reasoning.encrypted_content"],
            user="u-1",
            session_id="s-1",
            plugins=[{"id": "web"}],
        )
        await result.get_text()
    body = fake.bodies()[0]
    openapi.validate("ResponsesRequest", body)
    assert body["temperature"] == 0.3
    assert body["max_output_tokens"] == 100
    assert "previous_response_id" not in body


async def test_streams_every_text_delta(fake: FakeOpenRouter, client: OpenRouter) -> None:
    fake.enqueue(text_turn("one two three four", chunks=4))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        deltas = await _collect(result.get_text_stream())
    assert "".join(deltas) == "one two three four"
    assert len(deltas) == 4


async def test_ten_concurrent_consumers_each_see_every_event(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn(" ".join(f"w{i}" for i in range(200))))
    seen: dict[int, list[str]] = {}
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")

        async def consume(k: int) -> None:
            seen[k] = await _collect(result.get_text_stream())

        async with trio.open_nursery() as nursery:
            for k in range(10):
                nursery.start_soon(consume, k)
        text = await result.get_text()
    assert len(fake.bodies()) == 1
    assert all("".join(v) == text for v in seen.values())
    assert len(seen) == 10


async def test_consumer_started_after_the_run_gets_a_full_replay(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn("late but complete", chunks=3))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        assert await result.get_text() == "late but complete"
        late = await _collect(result.get_text_stream())
        full = await _collect(result.get_full_responses_stream())
    assert "".join(late) == "late but complete"
    assert isinstance(full[0], TurnStart)
    assert isinstance(full[-1], TurnEnd)
    assert any(isinstance(e, ResponseCompleted) for e in full)
    assert sum(isinstance(e, OutputTextDelta) for e in full) == 3


async def test_breaking_out_of_one_consumer_leaves_the_others(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    words = [f"w{i}" for i in range(50)]
    fake.enqueue(text_turn(" ".join(words)))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        full: list[str] = []

        async def quitter() -> None:
            async for _ in result.get_text_stream():
                break

        async def stayer() -> None:
            full.extend(await _collect(result.get_text_stream()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(quitter)
            nursery.start_soon(stayer)
    assert "".join(full).split() == words


async def test_get_text_and_streams_together_make_one_request_L17(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """L-17: get_text, get_text_stream and get_full_responses_stream started together."""
    fake.enqueue(text_turn("all at once", chunks=2))
    out: dict[str, Any] = {}
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")

        async def text() -> None:
            out["text"] = await result.get_text()

        async def stream() -> None:
            out["stream"] = "".join(await _collect(result.get_text_stream()))

        async def full() -> None:
            out["full"] = await _collect(result.get_full_responses_stream())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(text)
            nursery.start_soon(stream)
            nursery.start_soon(full)
    assert out["text"] == out["stream"] == "all at once"
    assert len(fake.bodies()) == 1
    assert isinstance(out["full"][-1], TurnEnd)


async def test_sequential_consumption_text_then_stream_and_stream_then_text_L17(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn("first", chunks=1), text_turn("second", chunks=1))
    with trio.fail_after(5):
        r1 = client.call_model(model="m", input="a")
        assert await r1.get_text() == "first"
        assert await _collect(r1.get_text_stream()) == ["first"]
        r2 = client.call_model(model="m", input="b")
        assert await _collect(r2.get_text_stream()) == ["second"]
        assert await r2.get_text() == "second"


async def test_reasoning_stream(fake: FakeOpenRouter, client: OpenRouter) -> None:
    fake.enqueue(text_turn("answer", reasoning="thinking hard", reasoning_chunks=2))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        assert "".join(await _collect(result.get_reasoning_stream())) == "thinking hard"
        assert await result.get_text() == "answer"


async def test_tool_calls_stream_without_tools_B01(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """Without tools the run stops after turn 0; the calls are exposed, not executed."""
    fake.enqueue(tool_call_turn(("get_weather", {"city": "NYC"}), chunks=3))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Weather?")
        calls = await _collect(result.get_tool_calls_stream())
        assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "NYC"})]
        assert calls[0].id.startswith("call_")
        assert await result.get_tool_calls() == calls
        deltas = await _collect(result.get_tool_stream())
    assert "".join(d.delta for d in deltas) == '{"city":"NYC"}'
    assert len(fake.bodies()) == 1


async def test_usage_and_response(fake: FakeOpenRouter, client: OpenRouter) -> None:
    from runtime.emulator import TurnUsage

    fake.enqueue(
        text_turn("x", usage=TurnUsage(input_tokens=7, output_tokens=3, cached_tokens=2, cost=0.5))
    )
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        response = await result.get_response()
        usage = await result.get_usage()
    assert response.status == "completed"
    assert (usage.model_calls, usage.input_tokens, usage.output_tokens) == (1, 7, 3)
    assert (usage.total_tokens, usage.cached_tokens, usage.cost) == (10, 2, 0.5)


# -- errors -------------------------------------------------------------------


async def test_http_error_is_typed_and_keeps_the_server_message(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(Turn(fault=Fault(status=429, retry_after=3)))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi", retry=NO_RETRY)
        with pytest.raises(RateLimitError) as info:
            await result.get_text()
        with pytest.raises(RateLimitError):
            await _collect(result.get_text_stream())
    assert info.value.status_code == 429
    assert info.value.retry_after == 3
    assert info.value.message


async def test_server_errors_are_retried_with_backoff(
    fake: FakeOpenRouter, client: OpenRouter, autojump_clock: trio.testing.MockClock
) -> None:
    fake.enqueue(Turn(fault=Fault(status=503, times=2, key="flaky")), text_turn("recovered"))
    with trio.fail_after(60):
        result = client.call_model(model="m", input="Hi")
        assert await result.get_text() == "recovered"
    assert len(fake.bodies()) == 3


async def test_server_error_after_retries_is_raised_L18(
    fake: FakeOpenRouter, client: OpenRouter, autojump_clock: trio.testing.MockClock
) -> None:
    fake.enqueue(Turn(fault=Fault(status=500)))
    with trio.fail_after(60):
        result = client.call_model(
            model="m", input="Hi", retry=RetryConfig(max_retries=2, initial_interval=0.1)
        )
        with pytest.raises(InternalServerError):
            await result.get_text()
    assert len(fake.bodies()) == 3


async def test_stream_ending_without_terminal_event_L19(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """L-19: a dropped stream fails every consumer after the events before it."""
    fake.enqueue(text_turn("a b c d e f", fault=Fault(drop_after=5)))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi", retry=NO_RETRY)
        got: list[str] = []
        with pytest.raises((RemoteProtocolError, Exception)) as info:
            async for delta in result.get_text_stream():
                got.append(delta)
        with pytest.raises(type(info.value)):
            await result.get_text()
    assert got  # events before the failure were delivered
    assert "".join(got) == "a b c d e f"[: len("".join(got))]


async def test_response_failed_carries_the_server_detail_L19(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(failed_turn("provider exploded", text="partial answer"))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        got: list[str] = []
        with pytest.raises(ResponseFailedError) as info:
            async for delta in result.get_text_stream():
                got.append(delta)
    assert "provider exploded" in str(info.value)
    assert str(info.value).startswith("Response failed: ")
    assert info.value.code == "server_error"
    assert "".join(got) == "partial answer"


async def test_malformed_sse_is_a_protocol_error_after_earlier_events(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn("alpha beta gamma delta", fault=Fault(malformed_after=4)))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        events: list[Any] = []
        with pytest.raises(RemoteProtocolError):
            async for event in result.get_full_responses_stream():
                events.append(event)
    assert isinstance(events[0], TurnStart)
    assert len(events) == 1 + 4  # turn.start plus the four events before the bad line


async def test_terminal_event_without_body_close_ends_the_turn(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn("hang on", fault=Fault(hang=True)))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        assert await result.get_text() == "hang on"


async def test_json_body_for_a_stream_is_the_turns_response(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    """DESIGN §4.13: a JSON answer is accepted; the streams yield its text as one delta."""
    fake.enqueue(text_turn("plain json", fault=Fault(json_body=True)))
    with trio.fail_after(5):
        result = client.call_model(model="m", input="Hi")
        assert await result.get_text() == "plain json"
        assert await _collect(result.get_text_stream()) == ["plain json"]


# -- bad input (before any I/O) ---------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": "hot"}, r"temperature"),
        ({"max_output_tokens": 1.5}, r"max_output_tokens"),
        ({"input": 42}, r"^input must be a string or a list of items, got int 42$"),
        ({"input": [{"role": "tool", "content": "x"}]}, r"role 'tool'"),
        (
            {"input": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]},
            r"part type 'text'.*from_chat_messages",
        ),
        ({"tools": ["not a tool"]}, r"tools must hold Tool objects"),
        ({"stop_when": [3]}, r"^stop_when must hold callables, got 3$"),
        ({"tool_concurrency": 0}, r"^tool_concurrency must be a positive integer, got 0$"),
    ],
)
async def test_invalid_parameters_raise_before_any_io(
    fake: FakeOpenRouter, client: OpenRouter, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        client.call_model(model="m", **kwargs)
    assert fake.requests == []


def test_call_model_outside_an_open_client_says_how_to_open_it() -> None:
    client = OpenRouter("k")
    result = client.call_model(model="m", input="x")
    with pytest.raises(ConfigurationError, match="not open"):
        result.get_text_stream()


def test_api_key_never_in_repr() -> None:
    client = OpenRouter("sk-or-v1-SECRETSECRETSECRET")
    assert "SECRET" not in repr(client)
    assert "SECRET" not in repr(client.transport)


# -- cancellation ---------------------------------------------------------------


async def test_cancel_ends_request_consumers_and_leaves_no_task(
    fake: FakeOpenRouter, client: OpenRouter, autojump_clock: trio.testing.MockClock
) -> None:
    """R-03 at run level: cancel() while consumers wait → they end cleanly."""
    fake.enqueue(text_turn("slow " * 50, fault=Fault(slow=1.0)))
    got: list[list[str]] = []
    with trio.fail_after(30):
        result = client.call_model(model="m", input="Hi")

        async def consume() -> None:
            got.append(await _collect(result.get_text_stream()))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(consume)
            await trio.sleep(10.5)
            result.cancel()
        with pytest.raises(RunCancelled):
            await result.get_text()
    assert len(got) == 3
    assert all(0 < len(g) < 50 for g in got)
    assert result.snapshot().status == "cancelled"
    usage = await result.get_usage()
    assert usage.model_calls == 0


async def test_cancelling_the_callers_scope_cancels_a_scoped_run(
    fake: FakeOpenRouter, client: OpenRouter, autojump_clock: trio.testing.MockClock
) -> None:
    fake.enqueue(text_turn("slow " * 50, fault=Fault(slow=1.0)))
    got: list[str] = []
    with trio.move_on_after(10.5) as scope:
        async with client.call_model(model="m", input="Hi") as result:
            async for delta in result.get_text_stream():
                got.append(delta)
    assert scope.cancelled_caught
    assert 0 < len(got) < 50
    assert result.snapshot().status == "cancelled"


async def test_leaving_the_client_block_cancels_runs_and_closes_the_pool(
    fake: FakeOpenRouter, autojump_clock: trio.testing.MockClock
) -> None:
    fake.enqueue(text_turn("slow " * 50, fault=Fault(slow=1.0)))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        result = client.call_model(model="m", input="Hi")
        result.get_text_stream()  # starts the run
        await trio.sleep(2.5)
    assert result.snapshot().status == "cancelled"
    with pytest.raises(trio.ClosedResourceError):
        async with client.transport.stream("GET", "/models"):
            pass  # pragma: no cover


async def test_cancel_before_start_means_never_start(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn("never"))
    result = client.call_model(model="m", input="Hi")
    result.cancel()
    with trio.fail_after(5):
        assert await _collect(result.get_text_stream()) == []
        with pytest.raises(RunCancelled):
            await result.get_text()
    assert fake.requests == []


async def test_body_exception_is_not_wrapped_in_a_group(
    fake: FakeOpenRouter, client: OpenRouter
) -> None:
    fake.enqueue(text_turn("x"))
    with pytest.raises(KeyError):
        async with client.call_model(model="m", input="Hi") as result:
            await result.get_text()
            raise KeyError("mine")
