"""Throughput of the sans-io wire core: SSE decoding, and SSE plus event decoding.

No trio, no httpx: the body is built in memory in the real wire format, N text
deltas of the shape OpenRouter streams::

    data: {"type":"response.output_text.delta","output_index":0,"item_id":"msg_tmp_x",
           "content_index":0,"delta":"tok ","logprobs":[],"sequence_number":k}\\n\\n

and fed to ``SSEDecoder`` in large chunks (``--chunk`` bytes, like a busy HTTP
connection) and in one chunk per event (like a slow one). Measurements:

* ``sse``: ``SSEDecoder.feed`` alone;
* ``sse+event``: ``SSEDecoder.feed`` then ``decode_event`` on every payload;
* ``baseline-split+json``: the minimal loop the brief compares against,
  ``body.split(b"\\n\\n")`` and ``msgspec.json.decode`` to dicts (no CR handling,
  no chunking, no types);
* ``baseline-split+struct``: the same split, decoding into the one right Struct
  (what a hand-rolled single-type decoder would cost);
* ``sse-big-event``: one ``--big-kib`` KiB event fed in ``--small-chunk`` byte
  chunks, to show that reassembly stays linear.

Prints one JSON line per measurement: the best of ``--repeat`` runs, with
``events_per_s`` and ``mb_per_s`` (input bytes) from wall time, and
``events_per_cpu_s`` from this process's CPU time (steadier on a busy machine).
Run from the checkout::

    .venv/bin/python bench/bench_sse_decode.py --n 200000
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from typing import TYPE_CHECKING, Any

import msgspec

from runtime._protocol.events import OutputTextDelta, decode_event
from runtime._protocol.sse import SSEDecoder

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def build_body(n: int) -> bytes:
    """N text-delta events in the exact wire framing."""
    template = (
        'data: {{"type":"response.output_text.delta","output_index":0,"item_id":"msg_tmp_x",'
        '"content_index":0,"delta":"tok ","logprobs":[],"sequence_number":{k}}}\n\n'
    )
    return "".join(template.format(k=k) for k in range(n)).encode()


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def per_event(body: bytes) -> list[bytes]:
    return [part + b"\n\n" for part in body.split(b"\n\n") if part]


def run_sse(chunks: list[bytes]) -> int:
    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    return count + len(decoder.close())


def run_sse_events(chunks: list[bytes]) -> int:
    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        for sse in decoder.feed(chunk):
            decode_event(sse.data)
            count += 1
    return count + len(decoder.close())


_DICT_DECODER = msgspec.json.Decoder()
_STRUCT_DECODER = msgspec.json.Decoder(OutputTextDelta)


def run_baseline_json(body: bytes) -> int:
    count = 0
    for block in body.split(b"\n\n"):
        if block:
            _DICT_DECODER.decode(block[6:])
            count += 1
    return count


def run_baseline_struct(body: bytes) -> int:
    count = 0
    for block in body.split(b"\n\n"):
        if block:
            _STRUCT_DECODER.decode(block[6:])
            count += 1
    return count


def best_time(fn: Callable[[], int], repeat: int, expected: int) -> tuple[float, float]:
    """Best wall time (``perf_counter``) and best CPU time (``process_time``).

    On a shared machine other processes inflate wall time; CPU time of this
    process is the steadier figure, so both are reported.
    """
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        gc.collect()
        cpu_start = time.process_time()
        start = time.perf_counter()
        count = fn()
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        if count != expected:
            raise SystemExit(f"decoded {count} events, expected {expected}")
        best_wall = min(best_wall, elapsed)
        best_cpu = min(best_cpu, cpu)
    return best_wall, best_cpu


def measurements(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    body = build_body(args.n)
    large = chunked(body, args.chunk)
    small = per_event(body)
    cases: list[tuple[str, str, Callable[[], int]]] = [
        ("sse", f"chunks of {args.chunk} B", lambda: run_sse(large)),
        ("sse", "one chunk per event", lambda: run_sse(small)),
        ("sse+event", f"chunks of {args.chunk} B", lambda: run_sse_events(large)),
        ("sse+event", "one chunk per event", lambda: run_sse_events(small)),
        ("baseline-split+json", "whole body", lambda: run_baseline_json(body)),
        ("baseline-split+struct", "whole body", lambda: run_baseline_struct(body)),
    ]
    for name, feeding, fn in cases:
        seconds, cpu = best_time(fn, args.repeat, args.n)
        yield {
            "bench": "sse_decode",
            "measure": name,
            "feeding": feeding,
            "events": args.n,
            "bytes": len(body),
            "seconds": round(seconds, 6),
            "events_per_s": round(args.n / seconds),
            "mb_per_s": round(len(body) / seconds / 1e6, 2),
            "cpu_seconds": round(cpu, 6),
            "events_per_cpu_s": round(args.n / cpu),
        }

    big = b"data: " + b"x" * (args.big_kib * 1024) + b"\n\n"
    pieces = chunked(big, args.small_chunk)
    seconds, cpu = best_time(lambda: run_sse(pieces), args.repeat, 1)
    yield {
        "bench": "sse_decode",
        "measure": "sse-big-event",
        "feeding": f"chunks of {args.small_chunk} B",
        "events": 1,
        "bytes": len(big),
        "seconds": round(seconds, 6),
        "mb_per_s": round(len(big) / seconds / 1e6, 2),
        "cpu_seconds": round(cpu, 6),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200_000, help="text-delta events per run")
    parser.add_argument("--chunk", type=int, default=65_536, help="large chunk size in bytes")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best)")
    parser.add_argument("--big-kib", type=int, default=4096, help="size of the big event (KiB)")
    parser.add_argument("--small-chunk", type=int, default=512, help="chunk size for it (B)")
    args = parser.parse_args(argv)
    for line in measurements(args):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
