"""``serve --redis URL --workers N``: one feed port, N real processes, any of which follows any run.

Real parts only: a redis-server, the emulator on loopback, an ``openrouter-trio
worker`` process, ``openrouter-trio serve --workers 2`` (a parent and two child
processes sharing the page and feed ports with SO_REUSEPORT), websocket clients.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from runtime._agent.usage import RunUsage
from runtime._protocol.events import OutputTextDelta
from runtime._redis.work import publish_snapshot
from runtime._run.status import RunSnapshot
from runtime.emulator._core import Emulator
from runtime.emulator._server import open_emulator
from runtime.testing import open_feed_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from runtime._redis.server import RedisServer
    from runtime._redis.store import RedisStore

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the kernel spreads SO_REUSEPORT on Linux"
)

REPO = Path(__file__).resolve().parents[2]
TOKEN = "serve-workers-test-token"
BANNER = re.compile(
    rb"feed on port (\d+), served by (\d+) processes \(pids ([\d, ]+)\)\n"
    rb"open the dashboard: http://127\.0\.0\.1:(\d+)/#token=<your token>\n"
)


class Served:
    def __init__(self, process: trio.Process, match: re.Match[bytes]) -> None:
        self.process = process
        self.feed_port = int(match.group(1))
        self.pids = {int(pid) for pid in match.group(3).split(b", ")}
        self.page_port = int(match.group(4))
        assert len(self.pids) == int(match.group(2))


@asynccontextmanager
async def serve_workers(redis: RedisServer, *extra: str) -> AsyncIterator[Served]:
    """``serve --workers 2 ...`` with the Redis URL in ``OPENROUTER_TRIO_REDIS_URL``,
    once its banner is out; reaped however it ends."""
    env = {
        **os.environ,
        "OPENROUTER_TRIO_FEED_TOKEN": TOKEN,
        "OPENROUTER_TRIO_REDIS_URL": redis.url,
        "PYTHONPATH": str(REPO),
    }
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "runtime", "serve", "--workers", "2", *extra],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        output = b""
        match = None
        while match is None:
            chunk = await process.stdout.receive_some()
            assert chunk, f"serve ended early: {output!r}"
            output += chunk
            match = BANNER.search(output)
        assert TOKEN.encode() not in output
        yield Served(process, match)
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                with trio.move_on_after(15):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            for pipe in (process.stdout, process.stderr):
                await pipe.aclose()  # type: ignore[union-attr]


@asynccontextmanager
async def worker_process(redis: RedisServer, base_url: str, key: str) -> AsyncIterator[None]:
    """``openrouter-trio worker --tools demo``, once it says it is ready."""
    env = {**os.environ, "OPENROUTER_API_KEY": key, "PYTHONPATH": str(REPO)}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "runtime", "worker", "--redis", redis.url, "--base-url",
         base_url, "--name", "w", "--tools", "demo"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        seen = b""
        while b"ready" not in seen:
            chunk = await process.stdout.receive_some()
            assert chunk, f"the worker exited: {seen!r}"
            seen += chunk
        yield
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            await process.stdout.aclose()  # type: ignore[union-attr]


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    message = await ws.get_message()
    assert isinstance(message, str)
    frame: dict[str, Any] = json.loads(message)
    return frame


def feed_client(served: Served) -> AbstractAsyncContextManager[WebSocketConnection]:
    """A websocket on the shared feed port (closed even if its process was killed)."""
    return open_feed_client(served.feed_port, token=TOKEN)


async def follow(served: Served, run_id: str) -> tuple[int, list[int], str]:
    """One connection: the serving pid, the sequences of the run's events, its outcome."""
    async with feed_client(served) as ws:
        ready = await recv(ws)
        assert ready["type"] == "feed.ready"
        await ws.send_message(json.dumps({"type": "subscribe", "session": run_id}))
        assert (await recv(ws))["type"] == "session.subscribed"
        sequences: list[int] = []
        while True:
            frame = await recv(ws)
            if frame["type"] == "session.end":
                return ready["data"]["pid"], sequences, frame["data"]["status"]
            assert frame["type"] != "resync"
            sequences.append(frame["sequence"])


async def test_connections_land_on_both_processes_and_each_follows_a_worker_run(
    redis_server: RedisServer,
) -> None:
    followed: list[tuple[int, list[int], str]] = []
    with trio.fail_after(150):
        async with (
            open_emulator(emulator=Emulator(seed="serve-workers")) as emulator,
            worker_process(redis_server, emulator.base_url, emulator.inference_key),
            serve_workers(
                redis_server, "--port", "0", "--sessions", "1", "--interval", "0"
            ) as served,
        ):
            async with feed_client(served) as ws:
                assert (await recv(ws))["type"] == "feed.ready"
                await ws.send_message(json.dumps({"type": "subscribe_index"}))
                sessions = (await recv(ws))["data"]["sessions"]
                while not sessions:  # none listed yet: the first session.* update has it
                    frame = await recv(ws)
                    if frame["type"].startswith("session."):
                        sessions = [frame["data"]]  # an index update's data is the snapshot
                run_id = sessions[0]["id"]

            async def one() -> None:
                followed.append(await follow(served, run_id))

            async with trio.open_nursery() as nursery:
                for _ in range(24):
                    nursery.start_soon(one)
            async with httpx.AsyncClient() as http:
                config = (await http.get(f"http://127.0.0.1:{served.page_port}/config.json")).json()
            pids = served.pids
            # Secrets travel in the environment, never on a command line (ps shows those).
            for pid in pids:
                argv = await trio.Path(f"/proc/{pid}/cmdline").read_bytes()
                assert redis_server.url.encode() not in argv
                assert TOKEN.encode() not in argv
    assert config["feed_port"] == served.feed_port
    # 24 connections hashed over two processes: both serve some (a miss: 2 in 2**24).
    assert {pid for pid, _, _ in followed} == pids
    assert os.getpid() not in pids
    (sequences, status), *others = [(seqs, status) for _, seqs, status in followed]
    assert status == "done"
    assert sequences == list(range(len(sequences)))
    assert len(sequences) > 10
    assert all(other == (sequences, "done") for other in others)  # the same run, whole


async def test_after_sigkill_of_the_serving_child_a_restarted_serve_resumes_by_after(
    redis_server: RedisServer, redis_store: RedisStore
) -> None:
    run_id = "run_workersresume"
    snap = RunSnapshot(
        id=run_id, model="m", status="running", turn=0, usage=RunUsage(),
        tool_calls_executed=0, next_seq=0,
    )  # fmt: skip
    await publish_snapshot(redis_store, snap)  # listed before serve starts
    deltas = [OutputTextDelta(item_id="m", delta=f"d{i}") for i in range(30)]
    await redis_store.append(run_id, 0, deltas[:10])
    seen: list[int] = []
    with trio.fail_after(120):
        async with serve_workers(redis_server, "--port", "0") as served:
            async with feed_client(served) as ws:
                ready = await recv(ws)
                await ws.send_message(json.dumps({"type": "subscribe", "session": run_id}))
                assert (await recv(ws))["type"] == "session.subscribed"
                while len(seen) < 7:
                    seen.append((await recv(ws))["sequence"])
                killed = ready["data"]["pid"]
                assert killed in served.pids
                os.kill(killed, signal.SIGKILL)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await recv(ws)  # whatever was in flight, then the broken connection
            code = await served.process.wait()
            errors = await served.process.stderr.receive_some()  # type: ignore[union-attr]
            ports = (str(served.page_port), str(served.feed_port))
        # The run goes on meanwhile; serve comes back on the same two ports.
        await redis_store.append(run_id, 10, deltas[10:])
        await redis_store.end(run_id, 30, "done")
        async with serve_workers(
            redis_server, "--port", ports[0], "--feed-port", ports[1]
        ) as again:
            assert again.feed_port == int(ports[1])
            async with feed_client(again) as ws:
                assert (await recv(ws))["type"] == "feed.ready"
                command = {"type": "subscribe", "session": run_id, "after": seen[-1]}
                await ws.send_message(json.dumps(command))
                assert (await recv(ws))["type"] == "session.subscribed"
                while True:
                    frame = await recv(ws)
                    if frame["type"] == "session.end":
                        break
                    seen.append(frame["sequence"])
    assert code == 1
    assert f"(pid {killed}) was killed by SIGKILL".encode() in errors
    assert frame["data"]["status"] == "done"
    assert seen == list(range(30))  # the 23 missing events, exactly once


async def test_serve_sigterm_stops_every_child(redis_server: RedisServer) -> None:
    with trio.fail_after(60):
        async with serve_workers(redis_server, "--port", "0") as served:
            served.process.send_signal(signal.SIGTERM)
            code = await served.process.wait()
            for pid in served.pids:  # reaped by the parent before it exits
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)
    assert code == 0


async def test_a_child_stops_when_its_parent_goes_away(redis_server: RedisServer) -> None:
    """A ``--workers`` child (``--supervised``) stops once its stdin closes, which is what
    happens when the parent dies, even by SIGKILL: no orphan keeps the port."""
    env = {**os.environ, "OPENROUTER_TRIO_FEED_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "runtime", "serve", "--supervised", "--redis",
             redis_server.url, "--port", "0"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            assert process.stdin is not None
            output = b""
            while b"open the dashboard" not in output:
                chunk = await process.stdout.receive_some()
                assert chunk, f"serve ended early: {output!r}"
                output += chunk
            await process.stdin.aclose()
            code = await process.wait()
        finally:
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                await process.stdout.aclose()  # type: ignore[union-attr]
    assert code == 0
