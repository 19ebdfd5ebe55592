"""The Redis event store against a real redis-server: sink, readers, retention, outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio
import trio.testing

from runtime._base.errors import ConfigurationError
from runtime._protocol.events import (
    OutputTextDelta,
    ToolCallOutput,
    ToolResult,
    TurnEnd,
    TurnStart,
    UnknownEvent,
    decode_event,
)
from runtime._protocol.wire import FunctionCallOutputItem
from runtime._redis.codec import RemoteRunError, RunEnd, decode_entry, encode_end, encode_events
from runtime._redis.store import RunTakenOver, open_redis_store, open_run_reader
from runtime._run.cursor import Lagged
from runtime._run.eventlog import EventLog
from runtime._run.retention import Ring, TrimBehindSlowest

if TYPE_CHECKING:
    from runtime._redis.store import RedisStore


def _events(n: int, start: int = 0) -> list[Any]:
    out: list[Any] = [TurnStart(turn_number=0, timestamp=1)]
    out += [OutputTextDelta(item_id="m", delta=f"d{i}") for i in range(start, start + n)]
    out.append(TurnEnd(turn_number=0, timestamp=2))
    return out


def _deltas(n: int) -> list[Any]:
    return [OutputTextDelta(item_id="m", delta=f"d{i}") for i in range(n)]


async def _drain(cursor: Any) -> list[Any]:
    return [event async for event in cursor]


def test_codec_round_trips_server_run_and_unknown_events() -> None:
    unknown = decode_event(b'{"type":"response.future_thing","x":[1,2]}')
    assert type(unknown) is UnknownEvent
    events = [
        TurnStart(turn_number=3, timestamp=9),
        OutputTextDelta(item_id="m", delta="héllo"),
        ToolResult(tool_call_id="c1", result={"a": [1, None]}, timestamp=5),
        ToolCallOutput(output=FunctionCallOutputItem(call_id="c1", output="ok"), timestamp=6),
        unknown,
    ]
    decoded = [decode_entry(fields) for fields in encode_events(events)]
    assert decoded[:4] == events[:4]
    assert type(decoded[4]) is UnknownEvent
    assert decoded[4].type == "response.future_thing"
    assert msgspec.json.decode(bytes(decoded[4].raw)) == {
        "type": "response.future_thing",
        "x": [1, 2],
    }


def test_codec_terminal_entries() -> None:
    assert decode_entry(encode_end("done")) == RunEnd("done")
    end = decode_entry(encode_end("failed", ValueError("bad thing")))
    assert end.status == "failed"
    assert isinstance(end.error, RemoteRunError)
    assert (end.error.error_type, end.error.error_message) == ("ValueError", "bad thing")
    assert "ValueError: bad thing" in str(end.error)
    with pytest.raises(ConfigurationError, match="'finished'"):
        encode_end("finished")


async def test_sink_writes_every_event_then_the_outcome(redis_store: RedisStore) -> None:
    log: EventLog[Any] = EventLog()
    events = _events(1000)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(redis_store.sink, "r1", log.cursor(0), lambda: "done")
            for i in range(0, len(events), 100):
                log.extend(events[i : i + 100])
                await trio.testing.wait_all_tasks_blocked()
            log.close()
        entries = await redis_store.client.xrange(redis_store.keys.events("r1"))
    assert [e.identifier for e in entries] == [f"0-{i}".encode() for i in range(1, 1004)]
    assert [decode_entry(e.field_values) for e in entries[:-1]] == events
    assert decode_entry(entries[-1].field_values) == RunEnd("done")


async def test_a_reader_follows_a_live_run_and_sees_its_failure(redis_store: RedisStore) -> None:
    log: EventLog[Any] = EventLog()
    seen: list[Any] = []
    with trio.fail_after(30):
        async with (
            trio.open_nursery() as nursery,
            open_run_reader(redis_store, "r2") as cursor,
        ):
            nursery.start_soon(redis_store.sink, "r2", log.cursor(0), lambda: "failed")
            for step in range(5):
                log.extend(_deltas(3))
                while len(seen) < 3 * (step + 1):  # live: each batch arrives before the next
                    seen.append(await cursor.receive())
                assert cursor.seq == 3 * (step + 1)
            log.close(KeyError("the tool blew up"))
            with pytest.raises(RemoteRunError, match="KeyError") as caught:
                await cursor.receive()
    assert [e.delta for e in seen] == [f"d{i}" for i in range(3)] * 5
    assert caught.value.error_type == "KeyError"


async def test_a_reader_resumes_after_a_seq_of_a_finished_run(redis_store: RedisStore) -> None:
    events = _events(50)
    await redis_store.append("r3", 0, events)
    await redis_store.end("r3", len(events), "cancelled")
    with trio.fail_after(30):
        async with open_run_reader(redis_store, "r3", after=20) as cursor:
            assert cursor.seq == 21
            rest = await _drain(cursor)
        async with open_run_reader(redis_store, "r3", after=len(events) - 1) as cursor:
            assert await _drain(cursor) == []
    assert rest == events[21:]


async def test_ring_retention_trims_the_stream_and_a_late_reader_lags_exactly(
    redis_store: RedisStore,
) -> None:
    events = _deltas(2000)
    for i in range(0, 2000, 50):
        await redis_store.append("r4", i, events[i : i + 50], retention=Ring(100))
    await redis_store.end("r4", 2000, "done")
    kept = await redis_store.client.xlen(redis_store.keys.events("r4"))
    assert 101 <= kept < 2000  # MAXLEN ~ 100: at least 100 events, plus the end
    first = 2001 - kept
    with trio.fail_after(30):
        async with open_run_reader(redis_store, "r4", after=9) as cursor:
            with pytest.raises(Lagged) as lagged:
                await cursor.receive_batch()
            assert (lagged.value.missed, lagged.value.resume_seq) == (first - 10, first)
            assert await _drain(cursor) == events[first:]


async def test_trim_behind_slowest_maps_to_minid(redis_store: RedisStore) -> None:
    await redis_store.append("r5", 0, _deltas(10))
    await redis_store.append("r5", 10, _deltas(5), retention=TrimBehindSlowest(), floor=12)
    entries = await redis_store.client.xrange(redis_store.keys.events("r5"))
    assert entries[0].identifier == b"0-13"


async def test_a_second_writer_of_a_seq_is_refused(redis_store: RedisStore) -> None:
    await redis_store.append("r6", 0, _deltas(5))
    with pytest.raises(RunTakenOver, match="'r6'"):
        await redis_store.append("r6", 3, _deltas(5))
    with pytest.raises(RunTakenOver):
        await redis_store.end("r6", 4, "done")
    await redis_store.append("r6", 5, _deltas(1))  # the next seq is still free


async def test_a_reader_waits_for_a_run_that_has_not_started(redis_store: RedisStore) -> None:
    with trio.fail_after(30):
        async with open_run_reader(redis_store, "r7") as cursor:
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.WouldBlock):
                cursor.receive_nowait()
            await redis_store.append("r7", 0, _deltas(2))
            await redis_store.end("r7", 2, "done")
            assert len(await _drain(cursor)) == 2


async def test_bad_urls_are_configuration_errors_without_the_password() -> None:
    with pytest.raises(ConfigurationError, match=r"'http://\*\*\*@h:1'") as caught:
        async with open_redis_store("http://user:s3cret@h:1"):
            pass
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="prefix"):
        async with open_redis_store("redis://127.0.0.1:1", prefix="a b"):
            pass


async def test_a_bad_after_is_a_configuration_error(redis_store: RedisStore) -> None:
    with pytest.raises(ConfigurationError, match="-2"):
        async with open_run_reader(redis_store, "r8", after=-2):
            pass
