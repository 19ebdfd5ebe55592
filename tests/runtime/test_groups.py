"""Unwrapping a lone exception at our public boundaries, and nothing more."""

from __future__ import annotations

import pytest

from runtime._base.groups import leaves, unwrap_lone_exception


def test_a_lone_exception_comes_out_as_itself_with_its_cause() -> None:
    cause = OSError("disk")
    inner = KeyError("mine")
    inner.__cause__ = cause
    with pytest.raises(KeyError) as info, unwrap_lone_exception():
        raise ExceptionGroup("outer", [ExceptionGroup("inner", [inner])])
    assert info.value is inner
    assert info.value.__cause__ is cause


def test_a_group_of_several_is_left_alone() -> None:
    group = ExceptionGroup("two", [KeyError("a"), ValueError("b")])
    with pytest.raises(ExceptionGroup) as info, unwrap_lone_exception():
        raise group
    assert info.value is group


def test_leaves_are_depth_first() -> None:
    a, b, c = KeyError("a"), ValueError("b"), OSError("c")
    group = ExceptionGroup("g", [a, ExceptionGroup("h", [b, c])])
    assert leaves(group) == [a, b, c]
