"""Per-chunk cost of reading a streamed body through ApiTransport.

Two measurements, each against plain httpx doing the same work, so the line
shows what the transport layer adds on top of httpx:

* ``mock``: N body chunks of ``--chunk-size`` bytes served by
  ``httpx.MockTransport`` from an in-memory iterator (no sockets): the pure
  per-chunk overhead of ``StreamingResponse.aiter_raw()`` versus
  ``httpx.Response.aiter_raw()``;
* ``loopback``: the same stream sent by a trio TCP server over 127.0.0.1 as
  HTTP/1.1 chunked encoding, one SSE-sized chunk per ``send_all``: end-to-end
  throughput, where the network stack dominates.

Prints one JSON line per measurement (``ns_per_chunk``, ``chunks_per_s``,
``mb_per_s``) and a ``ratio`` line (ours / httpx ns per chunk; < 1 is faster).

Run: ``.venv/bin/python bench/bench_transport.py --chunks 200000 --repeat 5``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import time
from typing import TYPE_CHECKING

import httpx
import trio

from runtime._http.retry import NO_RETRY
from runtime._http.transport import ApiTransport

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable


class _Chunks(httpx.AsyncByteStream):
    """An in-memory body: ``count`` copies of ``chunk`` (no generator, no checkpoints)."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self._chunk = chunk
        self._left = count

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self._left == 0:
            raise StopAsyncIteration
        self._left -= 1
        return self._chunk


def _sse_chunk(size: int) -> bytes:
    prefix = b'data: {"type":"response.output_text.delta","delta":"'
    suffix = b'"}\n\n'
    return prefix + b"x" * max(0, size - len(prefix) - len(suffix)) + suffix


async def _read_ours(transport: ApiTransport) -> int:
    total = 0
    async with transport.stream("POST", "/responses", content=b"{}") as response:
        async for chunk in response.aiter_raw():
            total += len(chunk)
    return total


async def _read_httpx(client: httpx.AsyncClient) -> int:
    total = 0
    async with client.stream("POST", "/responses", content=b"{}") as response:
        async for chunk in response.aiter_raw():
            total += len(chunk)
    return total


async def _best_of(repeat: int, run: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    best = float("inf")
    total = 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        total = await run()
        best = min(best, time.perf_counter() - start)
    return best, total


def _line(case: str, impl: str, seconds: float, chunks: int, total: int) -> dict[str, object]:
    return {
        "bench": "transport_stream",
        "case": case,
        "impl": impl,
        "chunks": chunks,
        "ns_per_chunk": round(seconds / chunks * 1e9, 1),
        "chunks_per_s": round(chunks / seconds),
        "mb_per_s": round(total / seconds / 1e6, 1),
    }


async def _bench_mock(chunks: int, chunk: bytes, repeat: int) -> list[dict[str, object]]:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, stream=_Chunks(chunk, chunks), headers={"Content-Type": "text/event-stream"}
        )

    mock = httpx.MockTransport(respond)
    async with ApiTransport(
        api_key="sk-or-v1-bench-0000000000000000", http_transport=mock, retry=NO_RETRY
    ) as transport:
        ours = await _best_of(repeat, functools.partial(_read_ours, transport))
    async with httpx.AsyncClient(base_url="https://bench.invalid", transport=mock) as client:
        theirs = await _best_of(repeat, functools.partial(_read_httpx, client))
    return [
        _line("mock", "ApiTransport.stream", ours[0], chunks, ours[1]),
        _line("mock", "httpx.AsyncClient.stream", theirs[0], chunks, theirs[1]),
    ]


async def _serve(chunk: bytes, count: int, stream: trio.SocketStream) -> None:
    request = b""
    while not request.endswith(b"\r\n\r\n{}"):  # the client's headers, then its 2-byte body
        request += await stream.receive_some(65536)
    await stream.send_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    for _ in range(count):
        await stream.send_all(framed)
    await stream.send_all(b"0\r\n\r\n")
    await stream.aclose()


async def _bench_loopback(chunks: int, chunk: bytes, repeat: int) -> list[dict[str, object]]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(
                trio.serve_tcp,
                functools.partial(_serve, chunk, chunks),
                0,
                host="127.0.0.1",
            )
        )
        url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        async with ApiTransport(
            api_key="sk-or-v1-bench-0000000000000000", base_url=url, retry=NO_RETRY
        ) as transport:
            ours = await _best_of(repeat, functools.partial(_read_ours, transport))
        async with httpx.AsyncClient(base_url=url) as client:
            theirs = await _best_of(repeat, functools.partial(_read_httpx, client))
        nursery.cancel_scope.cancel()
    return [
        _line("loopback", "ApiTransport.stream", ours[0], chunks, ours[1]),
        _line("loopback", "httpx.AsyncClient.stream", theirs[0], chunks, theirs[1]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=200_000, help="body chunks per stream")
    parser.add_argument("--loopback-chunks", type=int, default=50_000)
    parser.add_argument("--chunk-size", type=int, default=120, help="bytes per chunk")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs")
    parser.add_argument("--no-loopback", action="store_true", help="skip the socket measurement")
    args = parser.parse_args()
    chunk = _sse_chunk(args.chunk_size)

    results = trio.run(_bench_mock, args.chunks, chunk, args.repeat)
    if not args.no_loopback:
        results += trio.run(_bench_loopback, args.loopback_chunks, chunk, args.repeat)
    for line in results:
        print(json.dumps(line))
    for case in ("mock", "loopback"):
        pair = [r for r in results if r["case"] == case]
        if len(pair) == 2:
            ours, theirs = (float(str(r["ns_per_chunk"])) for r in pair)
            print(json.dumps({"bench": "transport_stream", "case": case, "ratio": ours / theirs}))


if __name__ == "__main__":
    main()
