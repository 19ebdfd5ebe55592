"""Per-call cost of checking tool arguments, and of streaming partial JSON.

1. Argument validation, per call, on the same arguments (an MCP-like object
   with a nested array of objects, an enum, bounds and a pattern):
   - baseline: ``msgspec.convert`` into the equivalent Struct (the typed-tool
     fast path);
   - ours: :class:`runtime._agent.jsonschema.Validator` on the JSON Schema
     (JSON-Schema tools, MCP tools);
   - reference: the ``jsonschema`` package (a test dependency), if installed.
2. ``get_output_stream()``'s parser: feeding a ~4 KiB JSON answer in 16-character
   deltas with a snapshot after each, against ``json.loads`` of the whole text
   once per delta (what re-parsing the growing prefix would cost at best).

Prints one JSON line per measurement, with the ratio to the baseline measured in
the same run. Usage: ``python bench/bench_schemas.py --n 20000``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Annotated, Any, Literal

import msgspec

from runtime._agent.jsonschema import compile_schema
from runtime._agent.partial_json import PartialJSON


class Item(msgspec.Struct):
    sku: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}-[0-9]+$")]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100)]


class Order(msgspec.Struct, forbid_unknown_fields=True):
    customer: str
    priority: Literal["low", "normal", "high"]
    items: list[Item]
    note: str | None = None


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customer": {"type": "string"},
        "priority": {"enum": ["low", "normal", "high"]},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["customer", "priority", "items"],
    "additionalProperties": False,
    "$defs": {
        "Item": {
            "type": "object",
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
            },
            "required": ["sku", "quantity"],
        }
    },
}

ARGUMENTS: dict[str, Any] = {
    "customer": "ACME",
    "priority": "high",
    "items": [{"sku": f"ABC-{i}", "quantity": i + 1} for i in range(5)],
    "note": None,
}


def _time(fn: Any, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / n


def bench_arguments(n: int, repeat: int) -> None:
    validator = compile_schema(SCHEMA)
    assert validator.is_valid(ARGUMENTS)
    base = _time(lambda: msgspec.convert(ARGUMENTS, Order), n, repeat)
    rows = [("msgspec.convert (baseline)", base)]
    rows.append(
        ("ours: Validator.validate", _time(lambda: validator.validate(ARGUMENTS), n, repeat))
    )
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - the test extra is not installed
        pass
    else:
        reference = jsonschema.Draft202012Validator(SCHEMA)
        rows.append(("jsonschema package", _time(lambda: reference.validate(ARGUMENTS), n, repeat)))
    for name, seconds in rows:
        print(
            json.dumps(
                {
                    "bench": "tool_arguments",
                    "case": name,
                    "us_per_call": round(seconds * 1e6, 3),
                    "ratio_to_baseline": round(seconds / base, 2),
                }
            )
        )


def bench_partial_json(repeat: int) -> None:
    document = {
        "title": "Quarterly report",
        "sections": [
            {"heading": f"Section {i}", "body": "lorem ipsum " * 20, "score": i * 1.5}
            for i in range(12)
        ],
    }
    text = json.dumps(document)
    deltas = [text[i : i + 16] for i in range(0, len(text), 16)]

    def ours() -> None:
        parser = PartialJSON()
        for delta in deltas:
            parser.feed(delta)
            parser.snapshot()
        assert parser.close() == document

    def reparse_once_per_delta() -> None:
        for _ in deltas:
            json.loads(text)

    base = _time(reparse_once_per_delta, 1, repeat * 5)
    mine = _time(ours, 1, repeat * 5)
    for name, seconds in (("json.loads x deltas (baseline)", base), ("ours: feed+snapshot", mine)):
        print(
            json.dumps(
                {
                    "bench": "partial_json",
                    "case": name,
                    "bytes": len(text),
                    "deltas": len(deltas),
                    "ms_per_document": round(seconds * 1e3, 3),
                    "ratio_to_baseline": round(seconds / base, 2),
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="validations per timing")
    parser.add_argument("--repeat", type=int, default=5, help="best of this many timings")
    args = parser.parse_args()
    bench_arguments(args.n, args.repeat)
    bench_partial_json(args.repeat)


if __name__ == "__main__":
    main()
