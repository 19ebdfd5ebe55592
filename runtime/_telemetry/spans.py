"""The spans of one agent run: run, turn, model call, tool call (GenAI semantic conventions).

Span tree of a run with one tool round::

    invoke_agent openrouter-trio        INTERNAL  the whole run
    ├── turn 0                          INTERNAL  the first model call
    │   └── chat <model>                CLIENT    one POST /responses (retries are its events)
    └── turn 1                          INTERNAL  one tool round and its follow-up call
        ├── execute_tool <tool name>    INTERNAL  one per tool call, in parallel
        └── chat <model>                CLIENT

Attribute names are the OpenTelemetry GenAI ones (``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``gen_ai.response.id``, ``gen_ai.response.finish_reasons``,
``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``,
``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``error.type``). What the
conventions have no name for is under ``openrouter.``: the cost in credits
(``openrouter.cost``), the run id, the turn number.

Rules:

* No text of the conversation, no header and no error message is ever put on a
  span: only ids, names, numbers and error *class* names, so that no secret or
  user content can reach a telemetry backend through this module.
* A span ends when its block ends, however it ends. An ``Exception`` sets the
  status to ERROR with ``error.type``; a cancellation (or any other
  ``BaseException``) sets ``openrouter.cancelled`` and leaves the status unset.
* Spans are made current in the task that opens them (``contextvars``): tasks
  spawned inside the block, such as the parallel tool calls, inherit them.
* Without a tracer provider installed by the application nothing is made at
  all: a run costs one provider look-up, and a turn, model call or tool call
  one look-up of the current span (it is made only under a recording run
  span). OpenTelemetry's own no-op path (a span object and two context
  switches per block) costs several times more, and a round opens a span per
  tool call.
"""

from __future__ import annotations

import contextlib
import dataclasses
from importlib import metadata
from typing import TYPE_CHECKING, Final

from opentelemetry import context as otel_context, propagate, trace

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "PROVIDER_NAME",
    "TRACER_NAME",
    "ModelCallFacts",
    "mark_failed",
    "trace_carrier",
    "model_call_span",
    "record_retry",
    "remote_parent",
    "run_span",
    "tool_span",
    "trace_id_of",
    "turn_span",
]

TRACER_NAME: Final = "openrouter-trio"
PROVIDER_NAME: Final = "openrouter"


def _version() -> str:
    try:
        return metadata.version("openrouter-trio")
    except metadata.PackageNotFoundError:  # a checkout that is not installed
        return "unknown"


# A proxy until the application installs a tracer provider; then it delegates.
_TRACER: Final = trace.get_tracer(TRACER_NAME, _version())


@dataclasses.dataclass(frozen=True, slots=True)
class ModelCallFacts:
    """What a finished model call tells its span (plain values, no text)."""

    response_id: str | None = None
    response_model: str | None = None
    finish_reasons: Sequence[str] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    cost: float | None = None


def _tracing() -> bool:
    """Whether the application installed a tracer provider (an SDK's, usually)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@contextlib.contextmanager
def _current(span: trace.Span) -> Iterator[trace.Span]:
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except Exception as exc:
        if span.is_recording():
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(exc).__name__))
        raise
    except BaseException:
        if span.is_recording():
            span.set_attribute("openrouter.cancelled", True)
        raise
    finally:
        otel_context.detach(token)
        span.end()


@contextlib.contextmanager
def run_span(run_id: str, model: str | None) -> Iterator[trace.Span]:
    """The span of a whole run (``invoke_agent``); current inside the block."""
    if not _tracing():
        yield trace.INVALID_SPAN
        return
    attributes: dict[str, str] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": PROVIDER_NAME,
        "gen_ai.agent.name": TRACER_NAME,
        "openrouter.run.id": run_id,
    }
    if model:
        attributes["gen_ai.request.model"] = model
    span = _TRACER.start_span(
        f"invoke_agent {TRACER_NAME}", kind=trace.SpanKind.INTERNAL, attributes=attributes
    )
    with _current(span):
        yield span


@contextlib.contextmanager
def turn_span(turn: int) -> Iterator[trace.Span]:
    """The span of one turn: turn 0 is the first call, turn k a tool round and its follow-up."""
    if not trace.get_current_span().is_recording():
        yield trace.INVALID_SPAN
        return
    span = _TRACER.start_span(
        f"turn {turn}", kind=trace.SpanKind.INTERNAL, attributes={"openrouter.turn.number": turn}
    )
    with _current(span):
        yield span


@contextlib.contextmanager
def model_call_span(
    model: str | None, *, server_address: str | None = None, server_port: int | None = None
) -> Iterator[trace.Span]:
    """The span of one streamed ``POST /responses`` (``chat``), retries included."""
    if not trace.get_current_span().is_recording():
        yield trace.INVALID_SPAN
        return
    attributes: dict[str, str | int | bool] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER_NAME,
        "gen_ai.request.stream": True,
    }
    if model:
        attributes["gen_ai.request.model"] = model
    if server_address:
        attributes["server.address"] = server_address
        if server_port is not None:
            attributes["server.port"] = server_port
    name = f"chat {model}" if model else "chat"
    span = _TRACER.start_span(name, kind=trace.SpanKind.CLIENT, attributes=attributes)
    with _current(span):
        yield span


def record_model_call(span: trace.Span, facts: ModelCallFacts) -> None:
    """Put what the response reported on a model-call (or run) span."""
    if not span.is_recording():
        return
    values: dict[str, str | int | float | Sequence[str]] = {}
    if facts.response_id:
        values["gen_ai.response.id"] = facts.response_id
    if facts.response_model:
        values["gen_ai.response.model"] = facts.response_model
    if facts.finish_reasons:
        values["gen_ai.response.finish_reasons"] = list(facts.finish_reasons)
    if facts.input_tokens is not None:
        values["gen_ai.usage.input_tokens"] = facts.input_tokens
    if facts.output_tokens is not None:
        values["gen_ai.usage.output_tokens"] = facts.output_tokens
    if facts.reasoning_tokens:
        values["gen_ai.usage.reasoning.output_tokens"] = facts.reasoning_tokens
    if facts.cached_tokens:
        values["gen_ai.usage.cache_read.input_tokens"] = facts.cached_tokens
    if facts.cost is not None:
        values["openrouter.cost"] = facts.cost
    span.set_attributes(values)


@contextlib.contextmanager
def tool_span(name: str, call_id: str) -> Iterator[trace.Span]:
    """The span of one tool call (``execute_tool``)."""
    if not trace.get_current_span().is_recording():
        yield trace.INVALID_SPAN
        return
    span = _TRACER.start_span(
        f"execute_tool {name}",
        kind=trace.SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
        },
    )
    with _current(span):
        yield span


def mark_failed(span: trace.Span, error_type: str) -> None:
    """Mark a span failed without an exception (a tool call whose outcome is an error)."""
    if span.is_recording():
        span.set_attribute("error.type", error_type)
        span.set_status(trace.Status(trace.StatusCode.ERROR, error_type))


def record_retry(attempt: int, delay: float, reason: str) -> None:
    """A ``retry`` event on the current span: retry number, wait in seconds, why.

    ``reason`` is a status code or an error class name, never a message.
    """
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(
            "retry",
            {
                "openrouter.retry.attempt": attempt,
                "openrouter.retry.delay": delay,
                "error.type": reason,
            },
        )


def trace_id_of(span: trace.Span) -> str | None:
    """The span's trace id as 32 lower-case hex digits; ``None`` for the no-op span."""
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def trace_carrier() -> dict[str, str]:
    """The current span's context as text headers (W3C ``traceparent`` by default:
    the application's configured propagators), to hand a run to another process;
    ``{}`` when there is no valid current span."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def remote_parent(carrier: Mapping[str, str]) -> Iterator[None]:
    """Inside the block, the span named by ``carrier`` (from :func:`trace_carrier`,
    in any process) is the current one: spans started here, and in tasks spawned
    here, are its children. Nothing happens without a carrier or a provider."""
    if not carrier or not _tracing():
        yield
        return
    token = otel_context.attach(propagate.extract(dict(carrier)))
    try:
        yield
    finally:
        otel_context.detach(token)
