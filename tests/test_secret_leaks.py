"""The API key reaches no output channel, whatever the server echoes.

A server (here the real emulator over loopback) echoes the key back: in the
message of a ``response.failed`` event, in streamed text, in an error body
and in a JSON answer. Every channel a user or an operator can see is then
collected and grepped for the key:

* the exceptions: ``str``, ``repr``, ``args``, every attribute, their causes;
* the reprs of the client, the transport and the results;
* every log record of every logger (retries and give-ups included);
* the run snapshots, as objects and as JSON;
* every event of each run's log, as JSON;
* the websocket feed's frames, made by ``actors._feed.protocol``'s encoder
  from those events and snapshots (event frames, ``session.end``, ``resync``,
  the index's ``session.updated`` and ``sessions.snapshot``);
* the OpenTelemetry spans (names, attributes, events) when an SDK is installed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec
import trio

from actors._feed.protocol import (
    event_frames,
    index_frames,
    index_snapshot_frame,
    resync_frame,
    session_frame,
)
from runtime import (
    ModelResult,
    OpenRouter,
    RegistryUpdate,
    RetryConfig,
    open_session_pool,
)
from runtime.emulator import Emulator, Fault, Turn, open_emulator
from runtime.testing import failed_turn, text_turn

if TYPE_CHECKING:
    import pytest
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

BOUND = 30.0


def _exception_texts(exc: BaseException | None, seen: set[int] | None = None) -> list[str]:
    seen = set() if seen is None else seen
    if exc is None or id(exc) in seen:
        return []
    seen.add(id(exc))
    texts = [str(exc), repr(exc), repr(exc.args)]
    for name, value in vars(exc).items():
        try:
            texts.append(f"{name}={msgspec.json.encode(value).decode()}")
        except (TypeError, msgspec.EncodeError):
            texts.append(f"{name}={value!r}")
    texts += _exception_texts(exc.__cause__, seen)
    texts += _exception_texts(exc.__context__, seen)
    return texts


async def _drain(result: ModelResult) -> list[str]:
    """The texts of one finished run: its error, snapshot, events and feed frames."""
    texts: list[str] = [repr(result)]
    try:
        texts.append(await result.get_text())
    except Exception as exc:
        texts += _exception_texts(exc)
    snap = result.snapshot()
    texts += [repr(snap), msgspec.json.encode(snap).decode()]
    events: list[object] = []
    async with result.events() as cursor:
        try:
            async for event in cursor:
                events.append(event)
        except Exception as exc:  # the run's own error ends the cursor
            texts += _exception_texts(exc)
    assert events
    texts += [msgspec.json.encode(event).decode() for event in events]
    sid = result.id
    texts += event_frames(sid, f"/sessions/{sid}", events, 0)
    frames = [
        session_frame(
            sid,
            "session.end",
            snap.next_seq - 1,
            {"status": snap.status, "error": snap.error, "snapshot": snap},
        ),
        resync_frame(sid, 0, 1, 0, snap),
        *index_frames([RegistryUpdate(kind="updated", session=snap)], 0),
        index_snapshot_frame("subscribed", 0, [snap]),
    ]
    texts += [frame.decode() for frame in frames]
    return texts


async def test_the_key_reaches_no_output_channel(
    caplog: pytest.LogCaptureFixture, span_exporter: InMemorySpanExporter
) -> None:
    exporter = span_exporter
    emulator = Emulator()
    key = emulator.inference_key
    echo = f"Invalid header: Authorization: Bearer {key}"
    emulator.add_script("leaky-failed", [failed_turn(echo, text=f"Your key is {key} ok")])
    emulator.add_script("leaky-text", [text_turn(f"The key {key} is all I know.")])
    emulator.add_script("leaky-json", [Turn(text=(f"json {key}",), fault=Fault(json_body=True))])
    emulator.add_script("leaky-503", [Turn(fault=Fault(status=503, times=5))])
    texts: list[str] = []
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(BOUND):
        async with (
            open_emulator(emulator=emulator) as server,
            OpenRouter(
                key, base_url=server.base_url, retry=RetryConfig(initial_interval=0.01)
            ) as client,
            open_session_pool(client, max_concurrent=4) as pool,
        ):
            texts += [repr(client), repr(client.transport), repr(pool)]
            results = [
                pool.start(model=model, input=f"Say {key}")
                for model in ("leaky-failed", "leaky-text", "leaky-json", "leaky-503")
            ]
            await pool.wait_idle()
            for result in results:
                texts += await _drain(result)
            texts += [repr(s) for s in pool.sessions()]
            texts.append(repr(pool.statistics()))
    statuses = [r.snapshot().status for r in results]
    assert statuses == ["failed", "done", "done", "failed"]
    texts += [record.getMessage() for record in caplog.records]
    assert any("giving up" in record.getMessage() for record in caplog.records)
    spans = exporter.get_finished_spans()
    assert spans
    texts += [span.to_json() for span in spans]

    leaks = [text for text in texts if key in text]
    assert leaks == []
    # The echoes were there, redacted: the test saw the channels it claims to.
    everything = "\n".join(texts)
    assert "Bearer ***" in everything
    assert "The key *** is all I know." in everything
    assert "json ***" in everything


def test_the_transport_redacts_what_it_is_given() -> None:
    client = OpenRouter("sk-or-v1-abcdefabcdefabcdefabcdef")
    assert client.transport.redact("x sk-or-v1-abcdefabcdefabcdefabcdef y") == "x *** y"
    assert "abcdefabcdef" not in repr(client.transport)


async def test_a_rest_answer_echoing_the_key_is_scrubbed() -> None:
    emulator = Emulator()
    key = emulator.inference_key
    emulator.add_script("leaky-chat", [text_turn(f"chat echo {key}")])
    with trio.fail_after(BOUND):
        async with (
            open_emulator(emulator=emulator) as server,
            OpenRouter(key, base_url=server.base_url) as client,
        ):
            response = await client.transport.request(
                "POST",
                "/chat/completions",
                json={"model": "leaky-chat", "messages": [{"role": "user", "content": "hi"}]},
            )
    assert key.encode() not in response.body
    assert b"chat echo ***" in response.body
