"""OpenTelemetry spans of agent runs, following the GenAI semantic conventions.

Rule: imports the stdlib and ``opentelemetry`` (the API package only) and
nothing of the project, so that the layers above it (``_http``, ``actors``,
``_client``) may use it. Without an SDK installed by the application every
span is OpenTelemetry's no-op span: nothing is recorded and the cost is a
few attribute look-ups per run, turn, model call and tool call (never per
streamed event).
"""

from runtime._telemetry.spans import (
    PROVIDER_NAME,
    TRACER_NAME,
    ModelCallFacts,
    mark_failed,
    model_call_span,
    record_model_call,
    record_retry,
    remote_parent,
    run_span,
    tool_span,
    trace_carrier,
    trace_id_of,
    turn_span,
)

__all__ = [
    "PROVIDER_NAME",
    "TRACER_NAME",
    "ModelCallFacts",
    "mark_failed",
    "model_call_span",
    "record_model_call",
    "record_retry",
    "remote_parent",
    "run_span",
    "tool_span",
    "trace_carrier",
    "trace_id_of",
    "turn_span",
]
