"""Scale-out end to end: worker processes, a SIGKILL mid-run, a websocket feed over Redis.

Real parts only: a redis-server, the emulator on loopback, ``openrouter-trio worker``
processes, the feed served from a ``RedisRegistry``, a websocket client.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

from actors._feed.server import EventFeed, serve_event_feed
from runtime._agent.usage import RunUsage
from runtime._protocol.events import OutputTextDelta
from runtime._redis.registry import open_redis_registry
from runtime._redis.work import publish_snapshot, submit_run
from runtime._run.status import RunSnapshot
from runtime.emulator._core import Emulator
from runtime.emulator._server import open_emulator
from runtime.testing import open_feed_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime._redis.registry import RedisRegistry
    from runtime._redis.server import RedisServer
    from runtime._redis.store import RedisStore
    from runtime.emulator._server import EmulatorServer

REPO = Path(__file__).resolve().parents[2]
TOKEN = "scale-out-test-token"


@asynccontextmanager
async def worker_process(
    redis: RedisServer,
    base_url: str,
    key: str,
    name: str,
    env: dict[str, str],
    tools: str = "tests.redis.worker_tools:tools",
    lease: float = 1,
) -> AsyncIterator[trio.Process]:
    """``openrouter-trio worker`` as a child process, once it says it is ready."""
    argv = [
        sys.executable, "-m", "runtime", "worker",
        "--redis", redis.url, "--base-url", base_url, "--name", name,
        "--lease", str(lease), "--tools", tools,
    ]  # fmt: skip
    environment = {**os.environ, **env, "OPENROUTER_API_KEY": key, "PYTHONPATH": str(REPO)}
    process = await trio.lowlevel.open_process(
        argv, cwd=REPO, env=environment, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        seen = b""
        while b"ready" not in seen:
            chunk = await process.stdout.receive_some()
            assert chunk, f"worker {name} exited: {seen!r}"
            seen += chunk
        yield process
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()


def feed_client(feed: EventFeed) -> AbstractAsyncContextManager[WebSocketConnection]:
    return open_feed_client(feed.port, token=TOKEN)


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    message = await ws.get_message()
    assert isinstance(message, str)
    frame: dict[str, Any] = json.loads(message)
    return frame


async def listed(registry: RedisRegistry, run_id: str) -> None:
    """Wait (on the registry's own updates) until the run is listed."""
    watch = registry.watch()
    try:
        if any(s.id == run_id for s in registry.sessions()):
            return
        async for update in watch:
            if update.session.id == run_id:
                return
    finally:
        watch.close()


@pytest.fixture
async def redis_feed(redis_store: RedisStore) -> AsyncIterator[tuple[RedisRegistry, EventFeed]]:
    """A feed over every run in Redis (as ``serve --redis`` runs it), for the test."""
    async with open_redis_registry(redis_store) as registry, trio.open_nursery() as nursery:
        with trio.fail_after(30):
            feed: EventFeed = await nursery.start(
                functools.partial(serve_event_feed, registry, "127.0.0.1", 0, token=TOKEN)
            )
        yield registry, feed
        nursery.cancel_scope.cancel()


def every_event_once(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The event frames of a whole subscription, checked: subscribed first, no resync,
    the run done last, every sequence once and in order."""
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "session.subscribed"
    assert "resync" not in kinds
    assert frames[-1]["data"]["status"] == "done"
    events = frames[1:-1]
    assert [f["sequence"] for f in events] == list(range(len(events)))
    return events


async def test_a_run_survives_a_sigkilled_worker_and_the_feed_delivers_every_event_once(
    redis_server: RedisServer,
    redis_store: RedisStore,
    emulator: EmulatorServer,
    redis_feed: tuple[RedisRegistry, EventFeed],
    tmp_path: Path,
) -> None:
    record = tmp_path / "executions.txt"
    env = {"PROBE_LOG": str(record), "PROBE_STEPS": "40", "PROBE_DELAY": "0.05"}
    frames: list[dict[str, Any]] = []
    registry, feed = redis_feed
    with trio.fail_after(120):
        base, key = emulator.base_url, emulator.inference_key
        async with worker_process(redis_server, base, key, "first", env) as first:
            run_id = await submit_run(
                redis_store, model="emulator/tool-caller", input="probe it", tools=["probe"]
            )
            await listed(registry, run_id)
            async with feed_client(feed) as ws:
                assert (await recv(ws))["type"] == "feed.ready"
                await ws.send_message(json.dumps({"type": "subscribe", "session": run_id}))
                while True:
                    frame = await recv(ws)
                    frames.append(frame)
                    if frame["type"] == "tool.preliminary_result" and first.returncode is None:
                        first.send_signal(signal.SIGKILL)  # mid tool call
                        await first.wait()
                        break
                async with worker_process(redis_server, base, key, "second", env):
                    while frames[-1]["type"] != "session.end":
                        frames.append(await recv(ws))
    kinds = [f["type"] for f in frames]
    events = every_event_once(frames)  # across the two workers
    retry = kinds.index("turn.retry") - 1
    assert events[retry]["data"]["turn_number"] == 1
    assert "tool.preliminary_result" in [f["type"] for f in events[:retry]]
    after = [f for f in events[retry:] if f["type"] == "tool.result"]
    assert len(after) == 1
    assert "interrupted" in json.dumps(after[0]["data"]["result"])
    assert [f["type"] for f in events[retry:]].count("turn.start") == 1
    assert any(f["type"] == "response.output_text.delta" for f in events[retry:])
    executions = record.read_text().split("\n")[:-1]
    call_ids = [line.split()[1] for line in executions]
    assert len(call_ids) == len(set(call_ids)) == 1  # never run a second time


async def test_a_worker_stopped_by_ctrl_c_hands_its_run_to_another_at_once(
    redis_server: RedisServer,
    redis_store: RedisStore,
    emulator: EmulatorServer,
    redis_feed: tuple[RedisRegistry, EventFeed],
    tmp_path: Path,
) -> None:
    """Both workers hold 60 s leases, yet the run goes on as soon as the first stops."""
    record = tmp_path / "executions.txt"
    # The first worker's tool would take 10 s: it is stopped long before its end.
    env = {"PROBE_LOG": str(record), "PROBE_STEPS": "200", "PROBE_DELAY": "0.05"}
    frames: list[dict[str, Any]] = []
    registry, feed = redis_feed
    with trio.fail_after(120):
        base, key = emulator.base_url, emulator.inference_key
        start = functools.partial(worker_process, redis_server, base, key, env=env, lease=60)
        async with start(name="first") as first:
            run_id = await submit_run(
                redis_store, model="emulator/tool-caller", input="probe it", tools=["probe"]
            )
            await listed(registry, run_id)
            async with feed_client(feed) as ws:
                assert (await recv(ws))["type"] == "feed.ready"
                await ws.send_message(json.dumps({"type": "subscribe", "session": run_id}))
                while frames[-1:] == [] or frames[-1]["type"] != "tool.preliminary_result":
                    frames.append(await recv(ws))
                async with start(name="second"):  # idle, waiting in XREADGROUP
                    first.send_signal(signal.SIGINT)  # mid tool call
                    assert await first.wait() == 0
                    with trio.fail_after(20):  # a third of the lease
                        while frames[-1]["type"] != "session.end":
                            frames.append(await recv(ws))
    kinds = [f["type"] for f in frames]
    events = every_event_once(frames)
    assert kinds.count("turn.retry") == 1
    retry = kinds.index("turn.retry") - 1
    after = [f for f in events[retry:] if f["type"] == "tool.result"]
    assert len(after) == 1
    assert "interrupted" in json.dumps(after[0]["data"]["result"])
    call_ids = [line.split()[1] for line in record.read_text().split("\n")[:-1]]
    assert len(call_ids) == 1  # never run a second time


async def test_a_client_resumes_by_after_on_another_feed_process_without_gap_or_duplicate(
    redis_store: RedisStore,
) -> None:
    """Two feeds with their own registries (as two processes would have): read part of
    a live run on one, reconnect to the other with ``after=<last sequence>``."""
    run_id = "run_feedresume"
    snap = RunSnapshot(
        id=run_id, model="m", status="running", turn=0, usage=RunUsage(),
        tool_calls_executed=0, next_seq=0,
    )  # fmt: skip
    await publish_snapshot(redis_store, snap)
    deltas = [OutputTextDelta(item_id="m", delta=f"d{i}") for i in range(30)]
    await redis_store.append(run_id, 0, deltas[:10])
    seen: list[int] = []
    with trio.fail_after(60):
        async with (
            open_redis_registry(redis_store) as first_registry,
            open_redis_registry(redis_store) as second_registry,
            trio.open_nursery() as nursery,
        ):
            await listed(first_registry, run_id)
            await listed(second_registry, run_id)
            first: EventFeed = await nursery.start(
                functools.partial(serve_event_feed, first_registry, "127.0.0.1", 0, token=TOKEN)
            )
            second: EventFeed = await nursery.start(
                functools.partial(serve_event_feed, second_registry, "127.0.0.1", 0, token=TOKEN)
            )
            async with feed_client(first) as ws:
                assert (await recv(ws))["type"] == "feed.ready"
                await ws.send_message(json.dumps({"type": "subscribe", "session": run_id}))
                assert (await recv(ws))["type"] == "session.subscribed"
                while len(seen) < 7:
                    seen.append((await recv(ws))["sequence"])
            # Meanwhile the run goes on; the second feed's registry never saw a
            # snapshot past next_seq 0, yet the client may resume after seq 6.
            await redis_store.append(run_id, 10, deltas[10:])
            await redis_store.end(run_id, 30, "done")
            async with feed_client(second) as ws:
                assert (await recv(ws))["type"] == "feed.ready"
                await ws.send_message(
                    json.dumps({"type": "subscribe", "session": run_id, "after": seen[-1]})
                )
                subscribed = await recv(ws)
                assert subscribed["type"] == "session.subscribed", subscribed
                while True:
                    frame = await recv(ws)
                    if frame["type"] == "session.end":
                        break
                    seen.append(frame["sequence"])
            nursery.cancel_scope.cancel()
    assert frame["data"]["status"] == "done"
    assert seen == list(range(30))


async def test_serve_redis_lists_and_follows_runs_that_workers_ran(
    redis_server: RedisServer, redis_store: RedisStore, tmp_path: Path
) -> None:
    """``openrouter-trio serve --redis URL`` as a real process, a worker process beside it:
    the feed lists the run that ``--sessions 1`` submitted and replays it to its end."""
    with trio.fail_after(120):
        async with open_emulator(emulator=Emulator(seed="serve-redis")) as emulator:
            env = {"OPENROUTER_API_KEY": emulator.inference_key, "PYTHONPATH": str(REPO)}
            serve = await trio.lowlevel.open_process(
                [sys.executable, "-m", "runtime", "serve", "--redis", redis_server.url,
                 "--port", "0", "--sessions", "1", "--interval", "0"],
                cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                assert serve.stdout is not None
                output = b""
                match = None
                while match is None:
                    chunk = await serve.stdout.receive_some()
                    assert chunk, f"serve ended early: {output!r}"
                    output += chunk
                    match = re.search(rb"feed on port (\d+).*#token=(\S+)", output, re.DOTALL)
                port, token = int(match.group(1)), match.group(2).decode()
                async with worker_process(
                    redis_server, emulator.base_url, emulator.inference_key, "w", {}, "demo"
                ):
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                    async with stream, trio.open_nursery() as nursery:
                        headers = [(b"authorization", f"Bearer {token}".encode())]
                        ws = await wrap_client_stream(
                            nursery, stream, "127.0.0.1", "/", extra_headers=headers
                        )
                        assert (await recv(ws))["type"] == "feed.ready"
                        await ws.send_message(json.dumps({"type": "subscribe_index"}))
                        index = await recv(ws)
                        sessions = index["data"]["sessions"]
                        while not sessions:  # the first session.* update has it
                            frame = await recv(ws)
                            if frame["type"].startswith("session."):
                                sessions = [frame["data"]]  # the snapshot itself
                        run_id = sessions[0]["id"]
                        await ws.send_message(json.dumps({"type": "subscribe", "session": run_id}))
                        kinds: list[str] = []
                        while not kinds or kinds[-1] != "session.end":
                            frame = await recv(ws)
                            if frame.get("source", "").endswith(run_id):
                                kinds.append(frame["type"])
                        await ws.aclose()
                        nursery.cancel_scope.cancel()
            finally:
                # Shielded and bounded: the process is reaped even when the test failed
                # or ran out of time (killed if Ctrl-C does not stop it in 10 s).
                with trio.CancelScope(shield=True):
                    serve.send_signal(signal.SIGINT)
                    with trio.move_on_after(10):
                        await serve.wait()
                    if serve.returncode is None:
                        serve.kill()
                        await serve.wait()
                    await serve.stdout.aclose()  # type: ignore[union-attr]
    assert serve.returncode == 0
    assert b"Redis workers" in output
    assert kinds[0] == "session.subscribed"
    assert kinds.count("turn.start") == 2
    assert "tool.result" in kinds
