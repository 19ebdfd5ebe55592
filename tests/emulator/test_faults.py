"""Fault injection: status faults, counted faults, and every way a stream can go wrong.

Timing faults (``slow``, ``delay``, ``hang``) are tested in-process through
:meth:`Emulator.handle` on the ``autojump_clock``; connection-level faults
(``drop-after``, ``hang``) also over real loopback HTTP.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import msgspec
import pytest
import trio

from runtime._base.errors import ConfigurationError
from runtime.emulator import (
    Emulator,
    EmulatorResponse,
    Fault,
    Script,
    Turn,
    parse_fault,
)
from runtime.testing import text_turn, tool_call_turn

BOUND = 10.0
STATUS_SCHEMAS = {
    408: "RequestTimeoutResponse",
    429: "TooManyRequestsResponse",
    500: "InternalServerResponse",
    502: "BadGatewayResponse",
    503: "ServiceUnavailableResponse",
    524: "EdgeNetworkTimeoutResponse",
    529: "ProviderOverloadedResponse",
}


async def call(
    emulator: Emulator,
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    path: str = "/api/v1/responses",
) -> EmulatorResponse:
    auth = {"authorization": f"Bearer {emulator.inference_key}", **(headers or {})}
    return await emulator.handle("POST", path, auth, json.dumps(body).encode())


async def chunks_of(response: EmulatorResponse) -> list[bytes]:
    assert not isinstance(response.body, bytes)
    return [chunk async for chunk in response.body]


def data_events(body: bytes) -> list[str]:
    return [line[6:] for line in body.decode().split("\n") if line.startswith("data: ")]


# -- status faults -------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(STATUS_SCHEMAS))
async def test_status_faults_answer_openrouter_error_bodies(
    client: httpx.AsyncClient, openapi: Any, status: int
) -> None:
    with trio.fail_after(BOUND):
        response = await client.post(
            "/responses",
            json={"model": f"emulator/echo:fault={status}", "input": "x", "stream": True},
        )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    openapi.validate(STATUS_SCHEMAS[status], body)
    assert body["error"]["code"] == status
    assert body["error"]["metadata"]["emulator_fault"] is True
    if status in (429, 503):
        assert response.headers["retry-after"] == "1"
    else:
        assert "retry-after" not in response.headers


async def test_retry_after_is_sent_in_whole_seconds(client: httpx.AsyncClient) -> None:
    with trio.fail_after(BOUND):
        response = await client.post(
            "/responses",
            json={"model": "emulator/echo", "input": "x"},
            headers={"X-Emulator-Fault": "429, retry-after=2.5"},
        )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"


async def test_fail_the_first_n_requests_then_succeed(client: httpx.AsyncClient) -> None:
    """RT-01: 503 twice, then 200."""
    body = {"model": "emulator/echo:fault=503,times=2", "input": "finally"}
    with trio.fail_after(BOUND):
        statuses = [(await client.post("/responses", json=body)).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]


async def test_counted_faults_share_a_named_key(client: httpx.AsyncClient) -> None:
    headers = {"X-Emulator-Fault": "500,times=1,key=shared"}
    with trio.fail_after(BOUND):
        first = await client.post(
            "/responses", json={"model": "emulator/echo", "input": "a"}, headers=headers
        )
        second = await client.post(
            "/chat/completions",
            json={"model": "emulator/echo", "messages": [{"role": "user", "content": "b"}]},
            headers=headers,
        )
    assert (first.status_code, second.status_code) == (500, 200)


async def test_script_turn_fault_with_times_is_not_consumed_until_it_succeeds() -> None:
    emulator = Emulator()
    emulator.add_script(
        "s", [Turn(text=("ok",), fault=Fault(status=503, times=2)), text_turn("next")]
    )
    statuses = []
    for _ in range(3):
        response = await call(emulator, {"model": "s", "input": "x"})
        statuses.append(response.status)
    assert statuses == [503, 503, 200]
    assert isinstance(response.body, bytes)
    assert json.loads(response.body)["output_text"] == "ok"
    assert emulator.pending_turns("s") == 1


async def test_script_turn_status_fault_without_times_is_an_outage() -> None:
    """L-18: every retry of the model call gets the same error."""
    emulator = Emulator()
    emulator.enqueue(Turn(fault=Fault(status=500)), text_turn("never"))
    statuses = [
        (await call(emulator, {"model": "any/model", "input": "x"})).status for _ in range(3)
    ]
    assert statuses == [500, 500, 500]
    assert emulator.pending_turns() == 2
    assert emulator.statistics().faults == 3


async def test_a_fault_only_turn_with_times_gives_way_to_the_next_turn(read: Any) -> None:
    """RT-01 scripted: 503 twice, then the next turn answers the third request."""
    emulator = Emulator()
    emulator.enqueue(Turn(fault=Fault(status=503, times=2)), text_turn("recovered"))
    first = await call(emulator, {"model": "m", "input": "x"})
    second = await call(emulator, {"model": "m", "input": "x"})
    third = await call(emulator, {"model": "m", "input": "x"})
    assert (first.status, second.status, third.status) == (503, 503, 200)
    assert json.loads(await read(third))["output_text"] == "recovered"
    assert emulator.pending_turns() == 0


async def test_stream_faults_on_a_turn_damage_it_once_or_n_times(read: Any) -> None:
    emulator = Emulator()
    emulator.enqueue(
        text_turn("a", fault=Fault(no_done=True)),
        text_turn("b", fault=Fault(no_done=True, times=2)),
    )
    bodies = [
        await read(await call(emulator, {"model": "m", "input": "x", "stream": True}))
        for _ in range(4)
    ]
    done = [body.endswith(b"data: [DONE]\n\n") for body in bodies]
    assert done == [False, False, False, True]
    assert emulator.pending_turns() == 0


async def test_fault_only_turns_in_a_loop_do_not_spin() -> None:
    emulator = Emulator()
    emulator.add_script("s", Script(turns=(Turn(fault=Fault(status=429, times=0)),), loop=True))
    response = await call(emulator, {"model": "s", "input": "x"})
    assert response.status == 400
    assert isinstance(response.body, bytes)
    assert "no turns left" in json.loads(response.body)["error"]["message"]


async def test_model_fallback_skips_a_faulting_model(openapi: Any) -> None:
    emulator = Emulator()
    response = await call(
        emulator,
        {"model": "emulator/echo:fault=502", "models": ["emulator/reasoning"], "input": "x"},
    )
    assert response.status == 200
    assert isinstance(response.body, bytes)
    result = json.loads(response.body)
    openapi.validate("OpenResponsesResult", result)
    assert result["model"] == "emulator/reasoning"


async def test_an_invalid_fault_is_a_400(openapi: Any) -> None:
    emulator = Emulator()
    for model, headers in (
        ("emulator/echo:fault=explode", {}),
        ("emulator/echo", {"x-emulator-fault": "slow=fast"}),
    ):
        response = await call(emulator, {"model": model, "input": "x"}, headers=headers)
        assert response.status == 400
        assert isinstance(response.body, bytes)
        body = json.loads(response.body)
        openapi.validate("BadRequestResponse", body)
        assert body["error"]["message"].startswith("Invalid emulator fault: fault clause")


# -- timing faults (in-process, autojump clock) -----------------------------------------


async def test_slow_stream_waits_before_each_data_event(autojump_clock: trio.abc.Clock) -> None:
    emulator = Emulator(keepalive_before_first=0, keepalive_every=0)
    response = await call(
        emulator, {"model": "emulator/echo:fault=slow=0.5", "input": "a b", "stream": True}
    )
    assert not isinstance(response.body, bytes)
    times = [trio.current_time() async for chunk in response.body if chunk.startswith(b"data: {")]
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(times)]
    assert gaps == [0.5] * (len(times) - 1)
    assert len(times) == 10


async def test_delay_holds_back_the_headers(autojump_clock: trio.abc.Clock) -> None:
    emulator = Emulator()
    start = trio.current_time()
    response = await call(
        emulator, {"model": "emulator/echo", "input": "x"}, headers={"x-emulator-fault": "delay=30"}
    )
    assert trio.current_time() - start == pytest.approx(30)
    assert response.status == 200


async def test_delay_also_applies_to_status_faults(autojump_clock: trio.abc.Clock) -> None:
    emulator = Emulator()
    start = trio.current_time()
    response = await call(emulator, {"model": "emulator/echo:fault=503,delay=4", "input": "x"})
    assert trio.current_time() - start == pytest.approx(4)
    assert response.status == 503


async def test_hang_keeps_the_body_open_after_the_terminal_event(
    autojump_clock: trio.abc.Clock,
) -> None:
    emulator = Emulator()
    response = await call(
        emulator, {"model": "emulator/echo:fault=hang", "input": "x", "stream": True}
    )
    assert not isinstance(response.body, bytes)
    seen: list[bytes] = []
    with trio.move_on_after(3600) as scope:
        async for chunk in response.body:
            seen.append(chunk)  # keep what came before the cancellation
    assert scope.cancelled_caught
    events = data_events(b"".join(seen))
    assert json.loads(events[-1])["type"] == "response.completed"
    assert "[DONE]" not in events


# -- stream damage ---------------------------------------------------------------------


async def test_drop_after_cuts_the_stream_in_process() -> None:
    emulator = Emulator(keepalive_before_first=0)
    response = await call(
        emulator, {"model": "emulator/echo:fault=drop-after=3", "input": "a b c", "stream": True}
    )
    body = response.body
    assert not isinstance(body, bytes)
    received: list[bytes] = []

    async def consume() -> None:
        async for chunk in body:
            received.append(chunk)  # keep what came before the drop

    with pytest.raises(trio.BrokenResourceError):
        await consume()
    assert len(data_events(b"".join(received))) == 3


async def test_drop_after_over_http_is_an_incomplete_chunked_body(
    client: httpx.AsyncClient,
) -> None:
    """L-19: the stream ends without a terminal event; the client sees a broken body."""
    body = {"model": "emulator/echo:fault=drop-after=4", "input": "one two three", "stream": True}
    received = bytearray()
    status = 0

    async def consume() -> None:
        nonlocal status
        async with client.stream("POST", "/responses", json=body) as response:
            status = response.status_code
            async for chunk in response.aiter_raw():
                received.extend(chunk)

    with trio.fail_after(BOUND), pytest.raises(httpx.RemoteProtocolError):
        await consume()
    assert status == 200
    events = [json.loads(item) for item in data_events(bytes(received))]
    assert [event["sequence_number"] for event in events] == [0, 1, 2, 3]


async def test_fail_after_ends_with_response_failed(stream_event: Any, read: Any) -> None:
    """L-19: ``response.failed`` mid-stream, after the events before it."""
    emulator = Emulator()
    response = await call(
        emulator, {"model": "emulator/echo:fault=fail-after=5", "input": "a b c", "stream": True}
    )
    events = [json.loads(item) for item in data_events(await read(response)) if item != "[DONE]"]
    for event in events:
        stream_event(event)
    assert len(events) == 6
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["sequence_number"] == 5
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {
        "code": "server_error",
        "message": "The emulated provider failed while generating.",
    }
    assert failed["response"]["error_type"] == "server"
    assert failed["response"]["output"] == []


async def test_error_after_ends_with_an_error_event(stream_event: Any, read: Any) -> None:
    emulator = Emulator()
    response = await call(
        emulator, {"model": "emulator/echo:fault=error-after=2", "input": "x", "stream": True}
    )
    body = await read(response)
    events = [json.loads(item) for item in data_events(body) if item != "[DONE]"]
    for event in events:
        stream_event(event)
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "error",
    ]
    assert events[-1]["code"] == "server_error"
    assert body.endswith(b"data: [DONE]\n\n")


async def test_malformed_after_sends_one_broken_data_line(read: Any) -> None:
    emulator = Emulator()
    response = await call(
        emulator, {"model": "emulator/echo:fault=malformed-after=2", "input": "x", "stream": True}
    )
    payloads = data_events(await read(response))
    broken = []
    for index, payload in enumerate(payloads[:-1]):
        try:
            json.loads(payload)
        except json.JSONDecodeError:
            broken.append(index)
    assert broken == [2]
    assert payloads[-1] == "[DONE]"


async def test_no_done_ends_right_after_the_terminal_event(read: Any) -> None:
    emulator = Emulator()
    response = await call(
        emulator, {"model": "emulator/echo:fault=no-done", "input": "x", "stream": True}
    )
    payloads = data_events(await read(response))
    assert json.loads(payloads[-1])["type"] == "response.completed"


async def test_json_body_answers_json_to_a_stream_request(openapi: Any) -> None:
    emulator = Emulator()
    response = await call(
        emulator, {"model": "emulator/echo:fault=json-body", "input": "x", "stream": True}
    )
    assert response.header("content-type") == "application/json"
    assert isinstance(response.body, bytes)
    openapi.validate("OpenResponsesResult", json.loads(response.body))


async def test_bad_tool_args_make_invalid_json_everywhere(read: Any) -> None:
    emulator = Emulator()
    emulator.enqueue(tool_call_turn(("t", {"a": 1}), chunks=2), tool_call_turn(("t", {"a": 1})))
    streamed = await call(
        emulator,
        {"model": "m", "input": "x", "stream": True},
        headers={"x-emulator-fault": "bad-tool-args"},
    )
    events = [json.loads(item) for item in data_events(await read(streamed)) if item != "[DONE]"]
    deltas = "".join(
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    )
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert (
        deltas == done["arguments"] == events[-1]["response"]["output"][0]["arguments"] == '{"a":1'
    )
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(deltas)
    chat = await call(
        emulator,
        {"model": "m", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-emulator-fault": "bad-tool-args"},
        path="/api/v1/chat/completions",
    )
    assert isinstance(chat.body, bytes)
    arguments = json.loads(chat.body)["choices"][0]["message"]["tool_calls"][0]["function"][
        "arguments"
    ]
    assert arguments == '{"a":1'


async def test_chunk_size_splits_across_events(read: Any) -> None:
    emulator = Emulator(keepalive_before_first=1)
    response = await call(
        emulator, {"model": "emulator/echo:fault=chunk=7", "input": "héllo wörld", "stream": True}
    )
    chunks = await chunks_of(response)
    assert all(len(chunk) == 7 for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 7
    whole = b"".join(chunks)
    assert whole.startswith(b": \n\ndata: ")
    assert whole.endswith(b"data: [DONE]\n\n")


async def test_coalesce_writes_everything_ready_as_one_chunk(
    autojump_clock: trio.abc.Clock,
) -> None:
    emulator = Emulator(coalesce=True)
    together = await chunks_of(
        await call(emulator, {"model": "emulator/echo", "input": "a b", "stream": True})
    )
    assert len(together) == 1
    split = await chunks_of(
        await call(
            emulator, {"model": "emulator/echo:fault=slow=1", "input": "a b", "stream": True}
        )
    )
    # a pause before each of the 10 data events splits the body there: the comments and
    # nothing else before the first pause, then one chunk per event (the last with [DONE])
    assert len(split) == 11
    assert split[0] == b": \n\n" * 3
    assert split[-1].endswith(b"data: [DONE]\n\n")


async def test_json_bodies_can_drop_and_hang(autojump_clock: trio.abc.Clock) -> None:
    emulator = Emulator()
    dropped = await call(emulator, {"model": "emulator/echo:fault=drop-after=0", "input": "x"})
    assert not isinstance(dropped.body, bytes)
    with pytest.raises(trio.BrokenResourceError):
        async for _ in dropped.body:
            pass
    hung = await call(emulator, {"model": "emulator/echo:fault=hang", "input": "x"})
    assert not isinstance(hung.body, bytes)
    with trio.move_on_after(60) as scope:
        async for _ in hung.body:
            pass
    assert scope.cancelled_caught


# -- the fault syntax -------------------------------------------------------------------


def test_parse_fault_reads_every_clause() -> None:
    fault = parse_fault(
        "429, retry-after=2, times=3, key=k, delay=1.5, slow=0.25, drop-after=4,"
        " fail-after=5, error-after=6, malformed-after, chunk=9, hang, no-done, json-body,"
        " bad-tool-args, coalesce"
    )
    assert fault == Fault(
        status=429,
        retry_after=2.0,
        times=3,
        key="k",
        delay=1.5,
        slow=0.25,
        drop_after=4,
        fail_after=5,
        error_after=6,
        malformed_after=0,
        chunk_size=9,
        hang=True,
        no_done=True,
        json_body=True,
        bad_tool_arguments=True,
        coalesce=True,
    )
    assert parse_fault("status=503") == Fault(status=503)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"^fault '' has no clauses$"),
        ("explode", r"^fault clause 'explode' is not understood$"),
        ("times=many", r"^fault clause 'times=many' needs a whole number$"),
        ("slow=fast", r"^fault clause 'slow=fast' needs a number$"),
        ("200", r"^fault status 200 is not an HTTP error status$"),
        ("slow=-1", r"^fault slow -1.0 is negative$"),
        ("chunk=0", r"^fault chunk_size 0 is not positive$"),
        ("hang=yes", r"^fault clause 'hang=yes' is not understood$"),
    ],
)
def test_parse_fault_rejects_bad_text(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_fault(text)


def test_merged_prefers_the_explicit_fields_of_the_other_fault() -> None:
    base = Fault(status=503, slow=1.0)
    assert base.merged(Fault(slow=2.0, hang=True)) == Fault(status=503, slow=2.0, hang=True)
    assert base.merged(None) is base
