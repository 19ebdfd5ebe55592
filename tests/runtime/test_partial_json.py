"""The incremental partial-JSON parser: any split gives consistent partial values and
the same final value as ``json.loads``; bad JSON is refused where it goes wrong."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from runtime._agent.partial_json import NOTHING, PartialJSON, PartialJSONError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=15,
)


def _is_partial_of(partial: Any, final: Any) -> bool:
    """``partial`` is what a prefix of ``final``'s text may show (rule 2)."""
    if partial is NOTHING:
        return True
    if isinstance(final, dict):
        return isinstance(partial, dict) and all(
            k in final and _is_partial_of(v, final[k]) for k, v in partial.items()
        )
    if isinstance(final, list):
        return (
            isinstance(partial, list)
            and len(partial) <= len(final)
            and all(_is_partial_of(p, f) for p, f in zip(partial, final, strict=False))
        )
    if isinstance(final, str):
        return isinstance(partial, str) and final.startswith(partial)
    return type(partial) is type(final) and partial == final


@settings(max_examples=300, deadline=None)
@given(
    value=json_values,
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 1]),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
)
def test_any_split_gives_consistent_partials_and_the_right_value(
    value: Any, ascii_only: bool, indent: int | None, cuts: list[int]
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    parser = PartialJSON()
    for start, end in itertools.pairwise(points):
        parser.feed(text[start:end])
        assert _is_partial_of(parser.snapshot(), value), (text, parser.value)
    assert parser.close() == value
    assert parser.done


def test_partial_strings_show_and_numbers_wait_until_complete() -> None:
    parser = PartialJSON()
    parser.feed('{"city": "Par')
    assert parser.value == {"city": "Par"}
    parser.feed('is", "temp": 2')
    assert parser.value == {"city": "Paris"}
    parser.feed('1, "tags": ["a", "b\\u00')
    assert parser.value == {"city": "Paris", "temp": 21, "tags": ["a", "b"]}
    parser.feed('e9"], "ok": tru')
    assert parser.value == {"city": "Paris", "temp": 21, "tags": ["a", "bé"]}
    parser.feed("e}")
    assert parser.done
    assert parser.close() == {"city": "Paris", "temp": 21, "tags": ["a", "bé"], "ok": True}


def test_snapshots_are_copies() -> None:
    parser = PartialJSON()
    parser.feed('{"a": [1, 2')
    snap = parser.snapshot()
    snap["a"].append(99)
    assert parser.value == {"a": [1]}


def test_the_version_grows_only_on_change() -> None:
    parser = PartialJSON()
    parser.feed("  {")
    before = parser.version
    parser.feed(' "k\\n" ')
    assert parser.version == before
    parser.feed(': "v')
    assert parser.version > before


@pytest.mark.parametrize(
    ("text", "position"),
    [("{a", 1), ('{"a" 1', 5), ("[1,]", 3), ('"\\x"', 2), ("{} x", 3), ("[tru]", 4), ('"a\nb"', 2)],
)
def test_bad_json_is_refused_where_it_goes_wrong(text: str, position: int) -> None:
    parser = PartialJSON()
    with pytest.raises(PartialJSONError) as info:
        parser.feed(text)
        parser.close()
    assert info.value.position == position


def test_close_refuses_an_incomplete_document() -> None:
    parser = PartialJSON()
    parser.feed('{"a": 1')
    with pytest.raises(PartialJSONError, match="incomplete"):
        parser.close()


@pytest.mark.parametrize("text", ['"\\ud800x"', '"\\ud800\\n"', '"\\ud800"', '"\\ud83d\\ude00!"'])
def test_surrogate_escapes_decode_as_json_loads_does(text: str) -> None:
    parser = PartialJSON()
    for char in text:
        parser.feed(char)
        assert json.loads(text).startswith(parser.value)
    assert parser.close() == json.loads(text)
