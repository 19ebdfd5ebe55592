"""``runtime.testing``: FakeOpenRouter, the turn builders, ``sse_bytes`` and ``turn_events``.

The golden files in ``tests/data/emulator/`` pin the exact bytes the emulator
streams for a few turns (fixed clock, fixed seed); other components' tests may
read them as realistic wire input. Regenerate one after an intended change with
``GOLDEN[name]`` below and :func:`golden_stream`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

from runtime._base.errors import ConfigurationError
from runtime.emulator import Fault, ToolCall, TurnUsage
from runtime.testing import (
    FakeOpenRouter,
    MemoryRegistry,
    Turn,
    error_turn,
    failed_turn,
    incomplete_turn,
    sse_bytes,
    text_turn,
    tool_call_turn,
    turn_events,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "emulator"
GOLDEN: dict[str, tuple[str, dict[str, Any], Turn]] = {
    "responses_text.sse": (
        "/api/v1/responses",
        {"model": "openai/gpt-4o", "input": "Say hello.", "stream": True},
        text_turn("Hello, world!", chunks=3),
    ),
    "responses_tool_calls.sse": (
        "/api/v1/responses",
        {"model": "openai/gpt-4o", "input": "Weather in Paris and Tokyo?", "stream": True},
        tool_call_turn(
            ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"}), chunks=2
        ),
    ),
    "responses_reasoning.sse": (
        "/api/v1/responses",
        {"model": "anthropic/claude-sonnet-4.5", "input": "2+2?", "stream": True},
        text_turn("4", reasoning="Two plus two is four."),
    ),
    "chat_text.sse": (
        "/api/v1/chat/completions",
        {
            "model": "openai/gpt-4o",
            "messages": [{"role": "user", "content": "Say hello."}],
            "stream": True,
        },
        text_turn("Hello, world!", chunks=3),
    ),
}


async def golden_stream(name: str) -> bytes:
    path, body, turn = GOLDEN[name]
    fake = FakeOpenRouter(turn)
    headers = {"authorization": f"Bearer {fake.inference_key}"}
    response = await fake.handle("POST", path, headers, json.dumps(body).encode())
    assert not isinstance(response.body, bytes)
    return b"".join([chunk async for chunk in response.body])


@pytest.mark.parametrize("name", sorted(GOLDEN))
async def test_streams_match_the_golden_files(name: str) -> None:
    assert await golden_stream(name) == (DATA / name).read_bytes()


async def test_fake_serves_its_turns_to_any_model_and_records_bodies(sse: Any) -> None:
    fake = FakeOpenRouter(text_turn("one"), text_turn("two"))
    headers = {"authorization": f"Bearer {fake.inference_key}"}
    for model in ("openai/gpt-4o", "x-ai/grok"):
        body = {"model": model, "input": "hi", "stream": True}
        response = await fake.handle(
            "POST", f"{fake.base_url}/responses", headers, json.dumps(body).encode()
        )
        assert response.status == 200
    assert [body["model"] for body in fake.bodies()] == ["openai/gpt-4o", "x-ai/grok"]
    assert fake.pending_turns() == 0
    assert len(fake.requests) == 2
    assert fake.requests[0].headers["authorization"] == "<redacted>"
    assert repr(fake) == "<FakeOpenRouter requests=2 pending=0>"


async def test_fake_ids_and_timestamps_are_fixed(read: Any) -> None:
    fake = FakeOpenRouter(text_turn("x"))
    response = await fake.handle(
        "POST",
        "/api/v1/responses",
        {"authorization": f"Bearer {fake.inference_key}"},
        b'{"model": "m", "input": "x"}',
    )
    result = json.loads(await read(response))
    assert result["id"] == "gen-1700000000-emu000001"
    assert result["created_at"] == 1700000000
    assert FakeOpenRouter().inference_key == fake.inference_key


def test_fake_takes_named_scripts_and_emulator_options() -> None:
    fake = FakeOpenRouter(scripts={"my/model": [text_turn("a")]}, keepalive_before_first=0)
    fake.add_script("other", [text_turn("b"), text_turn("c")])
    fake.enqueue(text_turn("d"))
    assert (fake.pending_turns("my/model"), fake.pending_turns("other"), fake.pending_turns()) == (
        1,
        2,
        1,
    )
    assert fake.management_key != fake.inference_key


def test_text_turn_chunks() -> None:
    assert text_turn("hello", chunks=3).text == ("he", "ll", "o")
    assert text_turn("hello big world").text == ("hello ", "big ", "world")
    assert text_turn("", chunks=2).text == ()
    turn = text_turn(
        "a", reasoning="think it", reasoning_chunks=2, usage=TurnUsage(cost=0.3), model="m"
    )
    assert (turn.reasoning, turn.usage, turn.model) == (("thin", "k it"), TurnUsage(cost=0.3), "m")
    with pytest.raises(ConfigurationError, match=r"^chunks 0 is not positive$"):
        text_turn("x", chunks=0)


def test_tool_call_turn_builds_calls() -> None:
    """B-01/B-03 inputs: arguments as a mapping or raw text, with or without call ids."""
    turn = tool_call_turn(
        ("get_weather", {"location": "NYC"}, "call_abc"),
        ("raw", '{"bad'),
        ToolCall(name="kept", arguments=("{}",)),
        chunks=2,
        text="Checking.",
    )
    first, second, third = turn.tool_calls
    assert first == ToolCall(
        name="get_weather", arguments=('{"locatio', 'n":"NYC"}'), call_id="call_abc"
    )
    assert second == ToolCall(name="raw", arguments=('{"b', "ad"))
    assert third == ToolCall(name="kept", arguments=("{}",))
    assert turn.full_text == "Checking."
    with pytest.raises(ConfigurationError, match=r"^tool_call_turn needs at least one call$"):
        tool_call_turn()
    with pytest.raises(ConfigurationError, match=r"^chunks 0 is not positive$"):
        tool_call_turn(("t", {}), chunks=0)
    with pytest.raises(ConfigurationError, match=r"^tool call name '' is empty$"):
        tool_call_turn(("", {}))


def test_failed_and_incomplete_turns_end_their_streams(stream_event: Any) -> None:
    failed = turn_events(
        failed_turn("upstream broke", text="partial", error_type="provider_unavailable")
    )
    incomplete = turn_events(incomplete_turn("cut off", reason="content_filter"))
    for event in failed + incomplete:
        stream_event(event)
    assert failed[-1]["type"] == "response.failed"
    assert failed[-1]["response"]["error"]["message"] == "upstream broke"
    assert failed[-1]["response"]["error_type"] == "provider_unavailable"
    assert failed[-1]["response"]["output_text"] == "partial"
    assert incomplete[-1]["type"] == "response.incomplete"
    assert incomplete[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}


async def test_error_turn_answers_an_http_status(read: Any) -> None:
    fake = FakeOpenRouter(error_turn(429, retry_after=3, times=1), text_turn("after"))
    headers = {"authorization": f"Bearer {fake.inference_key}"}
    body = b'{"model": "m", "input": "x"}'
    limited = await fake.handle("POST", "/api/v1/responses", headers, body)
    after = await fake.handle("POST", "/api/v1/responses", headers, body)
    assert (limited.status, limited.header("retry-after")) == (429, "3")
    assert json.loads(await read(after))["output_text"] == "after"
    outage = FakeOpenRouter(error_turn(503))
    for _ in range(2):
        response = await outage.handle("POST", "/api/v1/responses", headers, body)
        assert response.status == 503
    assert error_turn(503).fault == Fault(status=503)


def test_sse_bytes_writes_the_emulator_framing() -> None:
    class Event(msgspec.Struct):
        type: str

    body = sse_bytes([{"type": "a"}, Event(type="b"), b"data: raw\n\n"], comments=2)
    assert body == (
        b': \n\n: \n\ndata: {"type":"a"}\n\ndata: {"type":"b"}\n\ndata: raw\n\ndata: [DONE]\n\n'
    )
    assert sse_bytes([], done=False) == b""


def test_turn_events_are_valid_and_deterministic(stream_event: Any) -> None:
    events = turn_events(tool_call_turn(("t", {"a": [1, 2]}), text="Let me see.", reasoning="Hmm."))
    for event in events:
        stream_event(event)
    assert events == turn_events(
        tool_call_turn(("t", {"a": [1, 2]}), text="Let me see.", reasoning="Hmm.")
    )
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    assert events[0]["response"]["id"] == "gen-1700000000-emu000001"
    assert [item["type"] for item in events[-1]["response"]["output"]] == [
        "reasoning",
        "message",
        "function_call",
    ]


async def test_memory_registry_publishes_what_a_pool_would() -> None:
    registry = MemoryRegistry(model="m/x")
    watch = registry.watch()
    log = registry.add("run_1")
    log.append("e0")
    registry.finish("run_1", RuntimeError("boom"))
    registry.remove("run_1")
    with trio.fail_after(5):
        updates = [await watch.receive() for _ in range(3)]
    assert [(u.kind, u.session.status) for u in updates] == [
        ("updated", "running"),
        ("updated", "failed"),
        ("removed", "failed"),
    ]
    assert updates[1].session.model == "m/x"
    assert updates[1].session.next_seq == 1
    assert updates[1].session.error == "RuntimeError('boom')"
    assert registry.sessions() == []
    with pytest.raises(KeyError):
        registry.snapshot("run_1")
