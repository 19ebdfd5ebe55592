"""OpenTelemetry spans of a run, read back with the SDK's in-memory span_exporter.

The project depends on ``opentelemetry-api`` only; the SDK is a test
dependency, installed here as the process's tracer provider (OpenTelemetry
lets a process set it once, so every test adds its own span_exporter to it). A
subprocess shows that without an SDK nothing is recorded and no trace id
is reported.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING, Any

import pytest
import trio
from opentelemetry.trace import SpanKind, StatusCode

from runtime import OpenRouter, RetryConfig, function_tool
from runtime.testing import (
    FakeOpenRouter,
    Fault,
    TurnUsage,
    error_turn,
    text_turn,
    tool_call_turn,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@function_tool
def get_weather(city: str) -> dict[str, object]:
    """Weather for a city."""
    return {"city": city, "temp_c": 21}


@function_tool
def broken(city: str) -> str:
    """Always fails."""
    raise LookupError(city)


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def parent_of(span: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> ReadableSpan:
    assert span.parent is not None
    (parent,) = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parent


async def run(fake: FakeOpenRouter, **kwargs: Any) -> Any:
    retry = RetryConfig(initial_interval=0.001)
    async with OpenRouter(
        fake.inference_key, http_transport=fake.http_transport(), retry=retry
    ) as client:
        result = client.call_model(model="m/x", input="Weather in Paris?", **kwargs)
        with trio.fail_after(10):
            try:
                await result.get_text()
            except Exception as exc:
                return result, exc
    return result, None


async def test_a_tool_run_is_one_trace_of_run_turn_chat_and_tool_spans(
    span_exporter: InMemorySpanExporter,
) -> None:
    fake = FakeOpenRouter(
        error_turn(503, times=1),
        tool_call_turn(("get_weather", {"city": "Paris"}), usage=TurnUsage(cost=0.25)),
        text_turn("Sunny.", usage=TurnUsage(input_tokens=7, output_tokens=3, cost=0.5)),
    )
    result, error = await run(fake, tools=[get_weather])
    assert error is None
    spans = span_exporter.get_finished_spans()
    named = by_name(spans)
    assert sorted(named) == [
        "chat m/x",
        "execute_tool get_weather",
        "invoke_agent openrouter-trio",
        "turn 0",
        "turn 1",
    ]
    (root,) = named["invoke_agent openrouter-trio"]
    first_chat, second_chat = sorted(named["chat m/x"], key=lambda s: s.start_time or 0)
    (tool_span,) = named["execute_tool get_weather"]
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert root.parent is None
    assert parent_of(named["turn 0"][0], spans) is root
    assert parent_of(named["turn 1"][0], spans) is root
    assert parent_of(first_chat, spans) is named["turn 0"][0]
    assert parent_of(second_chat, spans) is named["turn 1"][0]
    assert parent_of(tool_span, spans) is named["turn 1"][0]

    assert root.kind is SpanKind.INTERNAL
    assert root.attributes is not None
    assert root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["gen_ai.request.model"] == "m/x"
    assert root.attributes["openrouter.run.id"] == result.id
    assert root.attributes["openrouter.cost"] == pytest.approx(0.75)
    assert root.attributes["openrouter.model_calls"] == 2

    assert first_chat.kind is SpanKind.CLIENT
    attributes = dict(first_chat.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openrouter"
    assert attributes["gen_ai.request.model"] == "m/x"
    assert attributes["gen_ai.response.model"]
    assert attributes["gen_ai.response.id"]
    assert attributes["gen_ai.response.finish_reasons"] == ("tool_call",)
    assert isinstance(attributes["gen_ai.usage.input_tokens"], int)
    assert attributes["openrouter.cost"] == pytest.approx(0.25)
    (retry,) = first_chat.events
    assert retry.name == "retry"
    assert retry.attributes is not None
    assert retry.attributes["openrouter.retry.attempt"] == 1
    assert retry.attributes["error.type"] == "503 ServiceUnavailableError"

    second = dict(second_chat.attributes or {})
    assert second["gen_ai.response.finish_reasons"] == ("stop",)
    assert (second["gen_ai.usage.input_tokens"], second["gen_ai.usage.output_tokens"]) == (7, 3)
    assert second_chat.events == ()

    tool_attributes = dict(tool_span.attributes or {})
    assert tool_attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_attributes["gen_ai.tool.name"] == "get_weather"
    assert tool_attributes["gen_ai.tool.call.id"]
    assert tool_span.status.status_code is StatusCode.UNSET

    trace_id = format(root.context.trace_id, "032x")
    assert result.trace_id == trace_id
    assert result.snapshot().trace_id == trace_id


async def test_failures_mark_their_spans(span_exporter: InMemorySpanExporter) -> None:
    fake = FakeOpenRouter(tool_call_turn(("broken", {"city": "Paris"})), error_turn(400))
    _, error = await run(fake, tools=[broken])
    assert error is not None
    named = by_name(span_exporter.get_finished_spans())
    (tool_span,) = named["execute_tool broken"]
    assert tool_span.status.status_code is StatusCode.ERROR
    assert dict(tool_span.attributes or {})["error.type"] == "LookupError"
    (root,) = named["invoke_agent openrouter-trio"]
    assert root.status.status_code is StatusCode.ERROR
    assert dict(root.attributes or {})["error.type"] == "BadRequestError"
    # Only class names, never messages, reach a span.
    assert root.status.description == "BadRequestError"


async def test_a_cancelled_run_ends_its_spans_without_an_error(
    span_exporter: InMemorySpanExporter,
) -> None:
    fake = FakeOpenRouter(text_turn("never", fault=Fault(slow=60.0)))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        result = client.call_model(model="m/x", input="Hi")
        with trio.move_on_after(0.5):
            await result.get_text()
        result.cancel()
        await result.wait_done()
    (root,) = by_name(span_exporter.get_finished_spans())["invoke_agent openrouter-trio"]
    assert dict(root.attributes or {})["openrouter.cancelled"] is True
    assert root.status.status_code is StatusCode.UNSET


def test_without_an_sdk_nothing_is_recorded_and_no_trace_id_is_reported() -> None:
    program = textwrap.dedent(
        """
        import trio
        from runtime import OpenRouter
        from runtime.testing import FakeOpenRouter, text_turn

        async def main():
            fake = FakeOpenRouter(text_turn("hi"))
            async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as c:
                result = c.call_model(model="m", input="x")
                assert await result.get_text() == "hi"
                print(result.trace_id, result.snapshot().trace_id)

        trio.run(main)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["None", "None"]
