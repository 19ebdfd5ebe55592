"""A minimal loopback HTTP/1.1 server that streams pre-built Responses SSE bodies, fast.

The throughput benchmarks need a producer that costs (almost) nothing per event,
so that what is measured is the client. The emulator (``runtime.emulator``) is
faithful but builds every event as it goes; this server builds each body once,
in the exact wire format, frames it once, and then only copies bytes to the
socket in 256 KiB ``send_all`` calls. Run it in its own process so that it has
its own core (a 2-core machine: one for the server, one for the client).

What a request gets is chosen by the path prefix of the base URL, so that any
client (this runtime, openai-python, OpenRouter's TypeScript SDK) can be pointed
at one case just by its ``base_url``::

    http://127.0.0.1:PORT/<scenario>/<framing>/<n>/api/v1     + /responses

* ``scenario``: ``text`` (N ``response.output_text.delta`` events) or ``tool``
  (one function call whose arguments arrive as N
  ``response.function_call_arguments.delta`` events);
* ``framing``: ``large`` (the body cut into 64 KiB HTTP chunks regardless of
  event boundaries: a busy connection) or ``event`` (ONE HTTP CHUNK PER SSE
  EVENT: what a server flushing every token sends);
* ``n``: the number of delta events.

Every body is the real event sequence of a turn: ``response.created``,
``response.in_progress``, the item and part events, the N deltas, the ``.done``
events carrying the full text, ``response.completed`` with usage, and
``data: [DONE]``; keep-alive comments (``: OPENROUTER PROCESSING``) open it.
``GET <prefix>/prebuild`` builds and caches a body without sending it and
answers ``{"wire_bytes": size}`` (the benchmark calls it before timing). Connections are kept alive.

Run: ``python bench/loopback_server.py [--port 0]``; it prints one JSON line
``{"port": N}`` once listening, and serves until its stdin closes (so it dies
with the process that started it) or it is killed.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from typing import Final

import trio

SEND_SIZE: Final = 256 * 1024
LARGE_CHUNK: Final = 64 * 1024
SCENARIOS: Final = ("text", "tool")
FRAMINGS: Final = ("large", "event")
TOKEN: Final = "tok "
_PATH: Final = re.compile(rb"^/(text|tool)/(large|event)/(\d+)/(?:api/v1/responses|prebuild)$")

_RESPONSE_FIELDS: Final = {
    "object": "response",
    "created_at": 1787612977,
    "model": "bench/loopback",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "metadata": {},
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "temperature": 1,
    "top_p": 1,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "top_logprobs": 0,
    "previous_response_id": None,
    "store": False,
    "background": False,
    "service_tier": "default",
    "truncation": "disabled",
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "reasoning": None,
    "user": None,
}


def _response(status: str, output: list[object], n: int) -> dict[str, object]:
    body: dict[str, object] = {"id": "gen-bench-0001", **_RESPONSE_FIELDS, "status": status}
    body["output"] = output
    if status == "completed":
        body["completed_at"] = 1787612979
        body["usage"] = {
            "input_tokens": 12,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": n,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 12 + n,
            "cost": 0.0,
        }
    return body


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def build_events(scenario: str, n: int) -> list[bytes]:
    """The SSE events of one turn, each ``data: {...}\\n\\n`` (comments as their own items)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {SCENARIOS!r}, not {scenario!r}")
    seq = 0

    def ev(payload: dict[str, object]) -> bytes:
        nonlocal seq
        payload["sequence_number"] = seq
        seq += 1
        return _event(payload)

    events = [b": OPENROUTER PROCESSING\n\n", b": OPENROUTER PROCESSING\n\n"]
    events.append(ev({"type": "response.created", "response": _response("in_progress", [], n)}))
    events.append(ev({"type": "response.in_progress", "response": _response("in_progress", [], n)}))
    if scenario == "text":
        item_id = "msg_bench_0001"
        text = TOKEN * n
        events.append(
            ev(
                {
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": {
                        "type": "message",
                        "id": item_id,
                        "role": "assistant",
                        "status": "in_progress",
                        "content": [],
                    },
                }
            )
        )
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        common = {"output_index": 0, "item_id": item_id, "content_index": 0}
        events.append(ev({"type": "response.content_part.added", **common, "part": part}))
        delta_head = (
            b'data: {"type":"response.output_text.delta","output_index":0,"item_id":"'
            + item_id.encode()
            + b'","content_index":0,"delta":"'
            + TOKEN.encode()
            + b'","logprobs":[],"sequence_number":'
        )
        events.extend(delta_head + b"%d}\n\n" % (seq + k) for k in range(n))
        seq += n
        events.append(
            ev({"type": "response.output_text.done", **common, "text": text, "logprobs": []})
        )
        done_part = {**part, "text": text}
        events.append(ev({"type": "response.content_part.done", **common, "part": done_part}))
        item: dict[str, object] = {
            "type": "message",
            "id": item_id,
            "role": "assistant",
            "status": "completed",
            "content": [done_part],
        }
    else:
        item_id = "fc_bench_0001"
        arguments = '{"q":"' + TOKEN * n + '"}'
        pending = {
            "type": "function_call",
            "id": item_id,
            "call_id": "call_bench_0001",
            "name": "lookup",
            "arguments": "",
            "status": "in_progress",
        }
        events.append(
            ev({"type": "response.output_item.added", "output_index": 0, "item": pending})
        )
        deltas = [TOKEN] * n
        deltas[0] = '{"q":"' + TOKEN
        deltas[-1] = deltas[-1] + '"}'
        events.extend(
            ev(
                {
                    "type": "response.function_call_arguments.delta",
                    "output_index": 0,
                    "item_id": item_id,
                    "delta": delta,
                }
            )
            for delta in deltas
        )
        events.append(
            ev(
                {
                    "type": "response.function_call_arguments.done",
                    "output_index": 0,
                    "item_id": item_id,
                    "arguments": arguments,
                }
            )
        )
        item = {**pending, "arguments": arguments, "status": "completed"}
    events.append(ev({"type": "response.output_item.done", "output_index": 0, "item": item}))
    events.append(ev({"type": "response.completed", "response": _response("completed", [item], n)}))
    events.append(b"data: [DONE]\n\n")
    return events


def frame(events: list[bytes], framing: str) -> bytes:
    """The events as a ``Transfer-Encoding: chunked`` body in the given framing."""
    if framing == "event":
        parts = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
    elif framing == "large":
        body = b"".join(events)
        parts = [
            b"%x\r\n%s\r\n" % (len(piece), piece)
            for piece in (body[i : i + LARGE_CHUNK] for i in range(0, len(body), LARGE_CHUNK))
        ]
    else:
        raise ValueError(f"framing must be one of {FRAMINGS!r}, not {framing!r}")
    return b"".join(parts) + b"0\r\n\r\n"


HEAD: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"X-Generation-Id: gen-bench-0001\r\nTransfer-Encoding: chunked\r\n\r\n"
)


class LoopbackServer:
    """Serves cached, pre-framed bodies; see the module docstring."""

    def __init__(self) -> None:
        self._bodies: dict[tuple[str, str, int], bytes] = {}

    def body(self, scenario: str, framing: str, n: int) -> bytes:
        key = (scenario, framing, n)
        body = self._bodies.get(key)
        if body is None:
            body = self._bodies[key] = frame(build_events(scenario, n), framing)
        return body

    async def handle(self, stream: trio.SocketStream) -> None:
        buffer = bytearray()
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
                match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                length = int(match.group(1)) if match else 0
                while len(rest) < length:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    rest += data
                buffer[:] = rest[length:]
                await self._answer(stream, head.split(b" ", 2))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            await trio.aclose_forcefully(stream)

    async def _answer(self, stream: trio.SocketStream, line: list[bytes]) -> None:
        target = line[1] if len(line) > 1 else b""
        match = _PATH.match(target.split(b"?", 1)[0])
        if match is None:
            message = b'{"error":{"code":404,"message":"no such benchmark path"}}'
            await stream.send_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(message), message)
            )
            return
        scenario, framing, n = match.group(1).decode(), match.group(2).decode(), int(match[3])
        body = self.body(scenario, framing, n)
        if target.endswith(b"/prebuild"):
            size = b'{"wire_bytes":%d}' % len(body)
            await stream.send_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(size), size)
            )
            return
        await stream.send_all(HEAD)
        with memoryview(body) as view:
            for start in range(0, len(body), SEND_SIZE):
                await stream.send_all(view[start : start + SEND_SIZE])


async def serve(port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve on 127.0.0.1:``port`` (0: any free port) until cancelled; reports the port."""
    server = LoopbackServer()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, server.handle, port, host="127.0.0.1")
        )
        task_status.started(listeners[0].socket.getsockname()[1])


async def _main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve, port)
        print(json.dumps({"port": bound}), flush=True)
        # Serve until whoever started us closes our stdin (or exits).
        await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free one)")
    args = parser.parse_args()
    trio.run(_main, args.port)


if __name__ == "__main__":
    main()
