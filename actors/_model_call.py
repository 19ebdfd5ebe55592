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
* The output items of the terminal response are also kept as the server sent
  them (plain JSON values), because history must be replayed verbatim: typed
  Structs would drop fields we do not model (``encrypted_content``,
  ``subagent_items``, ...). That costs one extra decode per turn, not per event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, final

import msgspec

from runtime._base.errors import RemoteProtocolError, ResponseFailedError
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

if TYPE_CHECKING:
    from collections.abc import Mapping

    from runtime._http.retry import RetryConfig
    from runtime._http.transport import ApiTransport
    from runtime._run.eventlog import EventLog

__all__ = ["TurnOutcome", "stream_model_call"]

_DONE: Final = b"[DONE]"
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
) -> TurnOutcome:
    """Send one Responses request and append every event it streams to ``log``.

    A checkpoint. Cancelling it closes the HTTP body (the transport's stream
    block exits); events already appended stay in the log.

    Returns:
        The terminal response and its raw output items.

    Raises:
        APIStatusError: a non-2xx answer (after the transport's retries).
        TransportError: the connection failed.
        ResponseFailedError: the server reported a failure in-band.
        RemoteProtocolError: malformed SSE, a broken known event, or a stream
            that ended without a terminal event.
    """
    async with transport.stream(
        "POST", "/responses", content=body, headers=headers, retry=retry
    ) as resp:
        if not resp.is_event_stream:
            # DESIGN §4.13: a JSON body where a stream was asked for is the turn's response.
            raw = await resp.aread()
            return _json_turn(raw, log)
        decoder = SSEDecoder()
        async for chunk in resp.aiter_raw():
            outcome = _feed(decoder.feed(chunk), log)
            if outcome is not None:
                return outcome
        outcome = _feed(decoder.close(), log)
        if outcome is not None:
            return outcome
    raise RemoteProtocolError("Stream ended without completion event")


def _feed(sse_events: list[Any], log: EventLog[Any]) -> TurnOutcome | None:
    """Decode one chunk's SSE events into the log; the terminal outcome when one arrives.

    The ``finally`` appends what was decoded before any failure, in one batch
    (one wake-up of the consumers per HTTP chunk).
    """
    batch: list[Any] = []
    append = batch.append
    try:
        for sse in sse_events:
            data = sse.data
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
