"""The ModelCall actor: one streaming ``POST /responses``, appended to a run's EventLog.

Data flow per chunk of the HTTP body::

    body bytes ─► SSEDecoder.feed ─► decode_event ─► EventLog.extend (one wake-up per chunk)

Invariants:

* Every event decoded before a failure is in the log before the failure is
  raised, so every consumer sees everything up to the error (DESIGN §4.12).
* The first terminal event (``response.completed`` / ``response.incomplete``)
  ends the turn even if the server keeps the body open; ``[DONE]`` or EOF
  without a terminal event is a ``RemoteProtocolError``.
* In-band failures (``response.failed``, ``error``, ``response.error``) are
  appended, then raised as ``ResponseFailedError`` carrying the server's detail.
* Only the connect/headers phase is retried (inside the transport): once the
  stream has started, nothing is retried, so no output is duplicated.
* The stream has an idle limit: when no event arrives for
  ``idle_timeout`` seconds (at most a tenth more: a watchdog task looks every
  tenth of the limit) the call fails with ``TransportTimeout``.
  Keep-alive comments are not events: a server that sends nothing but
  ``: OPENROUTER PROCESSING`` does not hold the call open for ever.
* The API key never reaches the log: an event whose payload contains it (a
  server echoing the request's headers in ``response.failed``) has it
  replaced by ``***`` before it is decoded, so every error, snapshot, stream
  and feed frame made from the event is clean. The search costs one C-level
  scan per HTTP chunk, not one per event, until the key is seen.
* The output items of the terminal response are also kept as the server sent
  them (plain JSON values), because history must be replayed verbatim: typed
  Structs would drop fields we do not model (``encrypted_content``,
  ``subagent_items``, ...). That costs one extra decode per turn, not per event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, final

import msgspec
import trio

from runtime._base.errors import RemoteProtocolError, ResponseFailedError, TransportTimeout
from runtime._base.groups import unwrap_lone_exception
from runtime._protocol.events import (
    ErrorEvent,
    OutputTextDelta,
    ResponseCompleted,
    ResponseErrorEvent,
    ResponseFailed,
    ResponseIncomplete,
    decode_event,
)
from runtime._protocol.sse import SSEDecoder
from runtime._protocol.wire import Response, decode_response
from runtime._telemetry import ModelCallFacts, model_call_span, record_model_call

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from runtime._http.retry import RetryConfig
    from runtime._http.transport import ApiTransport
    from runtime._run.eventlog import EventLog

__all__ = ["TurnOutcome", "call_facts", "stream_model_call"]

_DONE: Final = b"[DONE]"
_REDACTED: Final = b"***"
_RAW_TERMINAL: Final = msgspec.json.Decoder(dict[str, Any])


@final
class TurnOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one model call produced: the typed response and its raw output items."""

    response: Response
    raw_output: list[Any]


def _failure(event: object) -> ResponseFailedError:
    if isinstance(event, ResponseFailed):
        resp = event.response
        err = resp.error
        detail = msgspec.json.encode(err).decode() if err is not None else "null"
        return ResponseFailedError(
            f"Response failed: {detail}",
            code=err.code if err is not None else None,
            error_type=resp.error_type,
            response=resp,
        )
    if isinstance(event, ErrorEvent):
        message = event.error_message()
        return ResponseFailedError(message, code=event.error_code())
    assert isinstance(event, ResponseErrorEvent)
    return ResponseFailedError(event.error_message(), code=event.error_code())


_TERMINALS: Final = frozenset({ResponseCompleted, ResponseIncomplete})
_SPECIAL: Final = _TERMINALS | {ResponseFailed, ErrorEvent, ResponseErrorEvent}


async def stream_model_call(
    transport: ApiTransport,
    body: bytes,
    log: EventLog[Any],
    *,
    headers: Mapping[str, str] | None = None,
    retry: RetryConfig | None = None,
    idle_timeout: float | None = None,
    secret: bytes | None = None,
    model: str | None = None,
) -> TurnOutcome:
    """Send one Responses request and append every event it streams to ``log``.

    A checkpoint. Cancelling it closes the HTTP body (the transport's stream
    block exits); events already appended stay in the log. The call is one
    ``chat`` span (``runtime._telemetry``), its retries the span's events.

    Args:
        transport: the HTTP transport (retries, typed errors).
        body: the encoded request.
        log: the run's event log.
        headers: extra request headers.
        retry: this call's retry policy (``None``: the transport's).
        idle_timeout: seconds the stream may go without an event (comments do
            not count); ``None``: no limit.
        secret: bytes scrubbed from every event payload (the API key).
        model: the requested model, for the span.

    Returns:
        The terminal response and its raw output items.

    Raises:
        APIStatusError: a non-2xx answer (after the transport's retries).
        TransportError: the connection failed.
        TransportTimeout: an HTTP timeout, or no event for ``idle_timeout`` seconds.
        ResponseFailedError: the server reported a failure in-band.
        RemoteProtocolError: malformed SSE, a broken known event, or a stream
            that ended without a terminal event.
    """
    with model_call_span(model) as span:
        outcome = await _stream(transport, body, log, headers, retry, idle_timeout, secret)
        if span.is_recording():
            record_model_call(span, call_facts(outcome.response))
        return outcome


async def _stream(
    transport: ApiTransport,
    body: bytes,
    log: EventLog[Any],
    headers: Mapping[str, str] | None,
    retry: RetryConfig | None,
    idle_timeout: float | None,
    secret: bytes | None,
) -> TurnOutcome:
    async with transport.stream(
        "POST", "/responses", content=body, headers=headers, retry=retry
    ) as resp:
        if not resp.is_event_stream:
            # DESIGN §4.13: a JSON body where a stream was asked for is the turn's response.
            raw = await resp.aread()
            if secret and secret in raw:
                raw = raw.replace(secret, _REDACTED)
            return _json_turn(raw, log)
        decoder = SSEDecoder()
        if idle_timeout is None:
            outcome = await _read(resp.aiter_raw(), decoder, log, secret, _Progress())
        else:
            # A watchdog task, not a deadline moved at every chunk: the reading
            # loop only counts the chunks that completed an event (comments
            # never count), and the watchdog looks every tenth of the limit.
            # The limit fires between ``idle_timeout`` and 1.1 times that after
            # the last event.
            progress = _Progress()
            with trio.CancelScope() as idle, unwrap_lone_exception():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watch_idle, progress, idle_timeout, idle)
                    outcome = await _read(resp.aiter_raw(), decoder, log, secret, progress)
                    nursery.cancel_scope.cancel()
            if idle.cancelled_caught:
                raise TransportTimeout(
                    f"POST '/responses' sent no event for {idle_timeout} s "
                    "(stream_idle_timeout; keep-alive comments do not count)."
                )
        if outcome is not None:
            return outcome
    raise RemoteProtocolError("Stream ended without completion event")


@final
class _Progress:
    """How many chunks of a stream completed an event (the idle watchdog reads it)."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events = 0


async def _read(
    chunks: AsyncIterator[bytes],
    decoder: SSEDecoder,
    log: EventLog[Any],
    secret: bytes | None,
    progress: _Progress,
) -> TurnOutcome | None:
    """Feed the body to the decoder and the log; the outcome, or ``None`` at EOF."""
    # The secret is looked for once per chunk (one C-level search), and in the
    # first event of a chunk when that event began in an earlier chunk (where
    # an echo could straddle two chunks). Once seen, every event of the stream
    # is scrubbed one by one.
    echoed = False
    async for chunk in chunks:
        carried = decoder.buffered
        events = decoder.feed(chunk)
        if secret and not echoed:
            echoed = secret in chunk or (carried > 0 and bool(events) and secret in events[0].data)
        if events:
            progress.events += 1
            outcome = _feed(events, log, secret if echoed else None)
            if outcome is not None:
                return outcome
    return _feed(decoder.close(), log, secret)


async def _watch_idle(progress: _Progress, idle_timeout: float, scope: trio.CancelScope) -> None:
    """Cancel ``scope`` once no chunk completed an event for ``idle_timeout`` seconds."""
    step = idle_timeout / 10
    seen = progress.events
    quiet_since = trio.current_time()
    while True:
        await trio.sleep(step)
        now = trio.current_time()
        if progress.events != seen:
            seen = progress.events
            quiet_since = now
        elif now - quiet_since >= idle_timeout:
            scope.cancel()
            return


def call_facts(response: Response) -> ModelCallFacts:
    """What a response tells its span: ids, model, finish reason, usage (no text)."""
    usage = response.usage
    if response.status == "completed":
        calls = any(getattr(item, "type", None) == "function_call" for item in response.output)
        reasons: tuple[str, ...] = ("tool_call",) if calls else ("stop",)
    elif response.status == "incomplete":
        details = response.incomplete_details
        reason = getattr(details, "reason", None) if details is not None else None
        reasons = (reason if isinstance(reason, str) and reason else "incomplete",)
    else:
        reasons = (response.status,) if response.status else ()
    return ModelCallFacts(
        response_id=response.id or None,
        response_model=response.model or None,
        finish_reasons=reasons,
        input_tokens=usage.input_tokens if usage is not None else None,
        output_tokens=usage.output_tokens if usage is not None else None,
        reasoning_tokens=(usage.output_tokens_details.reasoning_tokens or 0)
        if usage is not None
        else None,
        cached_tokens=(usage.input_tokens_details.cached_tokens or 0)
        if usage is not None
        else None,
        cost=usage.cost if usage is not None else None,
    )


def _feed(sse_events: list[Any], log: EventLog[Any], secret: bytes | None) -> TurnOutcome | None:
    """Decode one chunk's SSE events into the log; the terminal outcome when one arrives.

    The ``finally`` appends what was decoded before any failure, in one batch
    (one wake-up of the consumers per HTTP chunk).
    """
    batch: list[Any] = []
    append = batch.append
    try:
        for sse in sse_events:
            data = sse.data
            if secret and secret in data:
                data = data.replace(secret, _REDACTED)
            if data == _DONE:
                raise RemoteProtocolError("Stream ended without completion event")
            event: Any = decode_event(data)
            append(event)
            kind = type(event)
            if kind in _SPECIAL:
                if kind in _TERMINALS:
                    raw = _RAW_TERMINAL.decode(data).get("response") or {}
                    return TurnOutcome(
                        response=event.response, raw_output=list(raw.get("output") or [])
                    )
                raise _failure(event)
        return None
    finally:
        if batch:
            log.extend(batch)


def _json_turn(raw: bytes, log: EventLog[Any]) -> TurnOutcome:
    try:
        response = decode_response(raw)
        raw_output = list((_RAW_TERMINAL.decode(raw).get("output")) or [])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RemoteProtocolError(f"the server sent an undecodable JSON response: {exc}") from exc
    # The streams yield what the JSON body contains: its text as one delta per message.
    events: list[Any] = []
    for index, item in enumerate(response.output):
        text = _message_text(item)
        if text:
            item_id = getattr(item, "id", "") or ""
            events.append(
                OutputTextDelta(output_index=index, item_id=item_id, content_index=0, delta=text)
            )
    events.append(ResponseCompleted(response=response))
    log.extend(events)
    if response.status == "failed":
        raise _failure(ResponseFailed(response=response))
    return TurnOutcome(response=response, raw_output=raw_output)


def _message_text(item: object) -> str:
    content = getattr(item, "content", None)
    if getattr(item, "type", None) != "message" or not isinstance(content, list):
        return ""
    return "".join(getattr(part, "text", "") or "" for part in content)
