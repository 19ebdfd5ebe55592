"""Streaming throughput: the runtime against its peers, over loopback, in one run.

A loopback server (``bench/loopback_server.py``, its own process) streams one
turn of N deltas in the real wire format; each client below consumes it in a
fresh process of its own (so peak RSS is per client) and counts the deltas:

* ``runtime.get_text_stream`` / ``runtime.get_tool_stream``: this runtime,
  ``OpenRouter(...).call_model(...)`` and the typed stream of the scenario
  (text deltas; function-call argument deltas for ``tool``, with a manual tool
  so that the run stops after the one turn);
* ``runtime.get_full_responses_stream``: the same run, every event;
* ``httpx+msgspec``: **the Python floor**, the minimal hand-written client:
  ``httpx.AsyncClient`` (default transport) on trio, ``aiter_raw()``, split on
  blank lines, ``msgspec`` decode of each payload into a two-field Struct;
* ``httpx+msgspec/h11``: the same loop over this project's ``H11Transport``;
* ``httpx.chunks``: ``aiter_raw()`` alone, nothing decoded (httpx's ceiling);
* ``openai-python``: ``AsyncOpenAI().responses.create(stream=True)``, events
  counted by type (asyncio, in its own process);
* ``ts-sdk``: OpenRouter's TypeScript SDK, ``callModel(...).getTextStream()``
  (``getToolStream()`` for ``tool``), under node, installed on first use into
  ``bench/.scratch/ts`` with ``npm install --no-audit --no-fund`` (skipped when
  node/npm are missing or the install fails).

Each case runs in both framings of the same bytes: ``large`` (64 KiB HTTP
chunks) and ``event`` (ONE HTTP CHUNK PER SSE EVENT). Per client and case it
prints one JSON line, the best of ``--repeat`` runs: ``events_per_s`` (deltas
per wall second, from sending the request to the end of the stream),
``events_per_cpu_s`` (per CPU second of the client process: steadier on a busy
machine), ``mb_per_s`` (body bytes on the wire per wall second), ``maxrss_mib``
(the client process's peak RSS). Then one ``ratio`` line per client and case:
its rates over the floor's, measured in the same run. Slow peers run with
``--peer-n`` deltas (the rates stay comparable).

Run: ``.venv/bin/python bench/bench_throughput.py [--n 100000] [--repeat 3]``.
One client alone: ``--child CLIENT --url BASE --scenario text --n N``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
import msgspec
import trio

from runtime._agent.tools import tool
from runtime._client.client import OpenRouter
from runtime._http.h11 import H11Transport
from runtime._protocol.events import FunctionCallArgumentsDelta, OutputTextDelta

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

BENCH: Final = Path(__file__).resolve().parent
SCRATCH: Final = BENCH / ".scratch" / "ts"
KEY: Final = "sk-or-v1-bench-00000000000000000000"
FLOOR: Final = "httpx+msgspec"
RUNTIME_CLIENTS: Final = (
    "runtime.typed_stream",
    "runtime.get_full_responses_stream",
)
PYTHON_CLIENTS: Final = (
    *RUNTIME_CLIENTS,
    FLOOR,
    "httpx+msgspec/h11",
    "httpx.chunks",
    "openai-python",
)
ALL_CLIENTS: Final = (*PYTHON_CLIENTS, "ts-sdk")
SLOW_PEERS: Final = frozenset({"openai-python", "ts-sdk"})
DELTA_TYPES: Final = {
    "text": "response.output_text.delta",
    "tool": "response.function_call_arguments.delta",
}
REQUEST_BODY: Final = b'{"model":"bench/loopback","input":"hi","stream":true}'


def client_name(client: str, scenario: str) -> str:
    """The name a client is reported under (the typed stream depends on the scenario)."""
    if client == "runtime.typed_stream":
        return "runtime.get_text_stream" if scenario == "text" else "runtime.get_tool_stream"
    return client


# --------------------------------------------------------------------------- the clients


class LookupArgs(msgspec.Struct):
    """Arguments of the manual tool of the ``tool`` scenario."""

    q: str


async def _runtime(url: str, scenario: str, full: bool) -> int:
    delta_type = OutputTextDelta if scenario == "text" else FunctionCallArgumentsDelta
    tools = (
        [] if scenario == "text" else [tool(name="lookup", input_schema=LookupArgs, execute=False)]
    )
    count = 0
    async with OpenRouter(KEY, base_url=url) as client:
        result = client.call_model(model="bench/loopback", input="hi", tools=tools)
        if full:
            async for event in result.get_full_responses_stream():
                if type(event) is delta_type:
                    count += 1
        elif scenario == "text":
            async for _delta in result.get_text_stream():
                count += 1
        else:
            async for _event in result.get_tool_stream():
                count += 1
    return count


class _Event(msgspec.Struct):
    type: str
    delta: str = ""


_EVENT: Final = msgspec.json.Decoder(_Event)


async def _floor(url: str, scenario: str, transport: httpx.AsyncBaseTransport | None) -> int:
    """The minimal correct client: SSE split on blank lines, one msgspec decode per event."""
    wanted = DELTA_TYPES[scenario]
    decode = _EVENT.decode
    count = 0
    text: list[str] = []
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        async with client.stream(
            "POST", url + "/responses", content=REQUEST_BODY, headers=headers
        ) as response:
            rest = b""
            async for chunk in response.aiter_raw():
                blocks = (rest + chunk).split(b"\n\n") if rest else chunk.split(b"\n\n")
                rest = blocks.pop()
                for block in blocks:
                    if block.startswith(b"data: ") and block != b"data: [DONE]":
                        event = decode(block[6:])
                        if event.type == wanted:
                            text.append(event.delta)
                            count += 1
    return count


async def _chunks(url: str) -> int:
    count = 0
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream("POST", url + "/responses", content=REQUEST_BODY) as response,
    ):
        async for _chunk in response.aiter_raw():
            count += 1
    return count


def _openai(url: str, scenario: str) -> int:
    from openai import AsyncOpenAI  # imported before the clock starts (see run_child)

    wanted = DELTA_TYPES[scenario]

    async def run() -> int:
        count = 0
        client = AsyncOpenAI(api_key=KEY, base_url=url, max_retries=0)
        try:
            stream = await client.responses.create(model="bench/loopback", input="hi", stream=True)
            async for event in stream:
                if event.type == wanted:
                    count += 1
        finally:
            await client.close()
        return count

    return asyncio.run(run())


def run_child(client: str, url: str, scenario: str) -> dict[str, Any]:
    """Run one client once in this process; its count, times and peak RSS."""
    runners: dict[str, Callable[[], int]] = {
        "runtime.typed_stream": lambda: trio.run(_runtime, url, scenario, False),
        "runtime.get_full_responses_stream": lambda: trio.run(_runtime, url, scenario, True),
        FLOOR: lambda: trio.run(_floor, url, scenario, None),
        "httpx+msgspec/h11": lambda: trio.run(_floor_h11, url, scenario),
        "httpx.chunks": lambda: trio.run(_chunks, url),
        "openai-python": lambda: _openai(url, scenario),
    }
    run = runners[client]
    if client == "openai-python":
        import openai  # noqa: F401 - import time is not stream time
    cpu = time.process_time()
    start = time.perf_counter()
    count = run()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu
    return {
        "count": count,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _floor_h11(url: str, scenario: str) -> Coroutine[Any, Any, int]:
    return _floor(url, scenario, H11Transport())


# --------------------------------------------------------------------------- the TS SDK

TS_SCRIPT: Final = r"""
import { OpenRouter } from "@openrouter/sdk";
import * as z from "zod";
const [url, scenario] = process.argv.slice(2);
const client = new OpenRouter({ apiKey: "%(key)s", serverURL: url });
const tools = scenario === "tool" ? [{ type: "function", function: {
  name: "lookup", description: "Look something up.", inputSchema: z.object({ q: z.string() }),
} }] : undefined;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const result = client.callModel({ model: "bench/loopback", input: "hi", tools });
let count = 0;
if (scenario === "text") { for await (const _ of result.getTextStream()) count++; }
else { for await (const e of result.getToolStream()) { if (e.type === "delta") count++; } }
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ count, seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6,
  maxrss_kib: process.resourceUsage().maxRSS }));
"""


def ensure_ts_sdk() -> str | None:
    """Install the TypeScript SDK into bench/.scratch/ts once; the reason if unavailable."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return "node/npm not found"
    SCRATCH.mkdir(parents=True, exist_ok=True)
    (SCRATCH / "bench.mjs").write_text(TS_SCRIPT % {"key": KEY})
    if (SCRATCH / "node_modules" / "@openrouter" / "sdk").is_dir():
        return None
    package = SCRATCH / "package.json"
    if not package.exists():
        package.write_text('{"name": "bench-ts", "private": true, "type": "module"}\n')
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "@openrouter/sdk", "zod"],
            cwd=SCRATCH,
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"npm install failed: {exc}"
    return None


# --------------------------------------------------------------------------- the parent


class Server:
    """The loopback server, in its own process."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(BENCH / "loopback_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        self.port = int(json.loads(self._process.stdout.readline())["port"])

    def base_url(self, scenario: str, framing: str, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}/{framing}/{n}/api/v1"

    def prebuild(self, scenario: str, framing: str, n: int) -> int:
        """Have the server build (and cache) a body now; return its size on the wire."""
        url = f"http://127.0.0.1:{self.port}/{scenario}/{framing}/{n}/prebuild"
        with urllib.request.urlopen(url, timeout=600) as answer:
            return int(json.loads(answer.read())["wire_bytes"])

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def measure_once(client: str, url: str, scenario: str, timeout: float) -> dict[str, Any]:
    if client == "ts-sdk":
        command = ["node", str(SCRATCH / "bench.mjs"), url, scenario]
        cwd: Path | None = SCRATCH
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", client]
        command += ["--url", url, "--scenario", scenario]
        cwd = None
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{client} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def measure(
    client: str, server: Server, scenario: str, framing: str, n: int, repeat: int, timeout: float
) -> dict[str, Any]:
    url = server.base_url(scenario, framing, n)
    wire_bytes = server.prebuild(scenario, framing, n)
    runs = [measure_once(client, url, scenario, timeout) for _ in range(repeat)]
    expected = 1 if client == "httpx.chunks" else n
    for run in runs:
        if client == "httpx.chunks":
            continue
        if run["count"] != expected:
            raise RuntimeError(f"{client} counted {run['count']} deltas, expected {n}")
    best = min(run["seconds"] for run in runs)
    best_cpu = min(run["cpu_seconds"] for run in runs)
    line: dict[str, Any] = {
        "bench": "throughput",
        "client": client_name(client, scenario),
        "scenario": scenario,
        "framing": framing,
        "events": n,
        "wire_bytes": wire_bytes,
        "seconds": round(best, 4),
        "events_per_s": round(n / best),
        "events_per_cpu_s": round(n / best_cpu),
        "mb_per_s": round(wire_bytes / best / 1e6, 2),
        "maxrss_mib": round(max(run["maxrss_kib"] for run in runs) / 1024, 1),
    }
    if client == "httpx.chunks":
        chunks = runs[0]["count"]
        line["chunks"] = chunks
        line["chunks_per_s"] = round(chunks / best)
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="deltas per stream")
    parser.add_argument("--peer-n", type=int, default=20_000, help="deltas for openai/ts-sdk")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best kept)")
    parser.add_argument("--scenarios", default="text,tool", help="text,tool")
    parser.add_argument("--framings", default="large,event", help="large,event")
    parser.add_argument("--clients", default=",".join(ALL_CLIENTS), help="clients to run")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per client run")
    parser.add_argument("--quick", action="store_true", help="tiny N, one run each")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--scenario", default="text", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_child(args.child, args.url, args.scenario)), flush=True)
        return
    if args.quick:
        args.n, args.peer_n, args.repeat = 2000, 500, 1
    clients = [c for c in args.clients.split(",") if c]
    unknown = sorted(set(clients) - set(ALL_CLIENTS))
    if unknown:
        parser.error(f"unknown clients {unknown!r}; choose from {ALL_CLIENTS!r}")
    if "ts-sdk" in clients:
        reason = ensure_ts_sdk()
        if reason is not None:
            print(json.dumps({"bench": "throughput", "client": "ts-sdk", "skipped": reason}))
            clients.remove("ts-sdk")

    server = Server()
    try:
        for scenario in args.scenarios.split(","):
            for framing in args.framings.split(","):
                lines: dict[str, dict[str, Any]] = {}
                for client in clients:
                    n = args.peer_n if client in SLOW_PEERS else args.n
                    line = measure(client, server, scenario, framing, n, args.repeat, args.timeout)
                    lines[client] = line
                    print(json.dumps(line), flush=True)
                floor = lines.get(FLOOR)
                if floor is None:
                    continue
                for client, line in lines.items():
                    if client in (FLOOR, "httpx.chunks"):
                        continue
                    ratio = {
                        "bench": "throughput",
                        "ratio": "vs_floor",
                        "client": line["client"],
                        "scenario": scenario,
                        "framing": framing,
                        "events_per_s": round(line["events_per_s"] / floor["events_per_s"], 3),
                        "events_per_cpu_s": round(
                            line["events_per_cpu_s"] / floor["events_per_cpu_s"], 3
                        ),
                    }
                    print(json.dumps(ratio), flush=True)
    finally:
        server.close()


if __name__ == "__main__":
    main()
