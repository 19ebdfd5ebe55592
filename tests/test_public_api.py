"""Pin the public API: what ``runtime``, ``runtime.testing``, ``runtime.emulator`` and
``actors`` export, and the methods of the main handles. A change here is a change
users see: update the snapshot on purpose, and the changelog with it."""

from __future__ import annotations

import inspect
import types

import msgspec
import pytest

import actors
import runtime
import runtime.emulator
import runtime.testing

FACADES = [runtime, runtime.testing, runtime.emulator, actors]


@pytest.mark.parametrize("facade", FACADES, ids=lambda m: m.__name__)
def test_all_is_sorted_unique_and_public(facade: types.ModuleType) -> None:
    names = list(facade.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert all(not n.startswith("_") for n in names)
    for name in names:
        assert hasattr(facade, name), f"{facade.__name__}.{name} is in __all__ but missing"


@pytest.mark.parametrize("facade", FACADES, ids=lambda m: m.__name__)
def test_no_public_name_outside_all(facade: types.ModuleType) -> None:
    extra = {
        name
        for name, value in vars(facade).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in facade.__all__
        and name != "annotations"
    }
    assert extra == set()


def test_public_classes_and_functions_report_the_public_module() -> None:
    for name in runtime.__all__:
        obj = getattr(runtime, name)
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct):
            continue  # msgspec resolves annotations in the defining module
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "runtime", name


def test_openrouter_surface() -> None:
    public = {n for n in dir(runtime.OpenRouter) if not n.startswith("_")}
    assert {"call_model", "transport"} <= public


def test_model_result_surface() -> None:
    public = {n for n in dir(runtime.ModelResult) if not n.startswith("_")}
    assert public >= {
        "cancel",
        "events",
        "get_conversation",
        "get_full_responses_stream",
        "get_items_stream",
        "get_new_messages_stream",
        "get_pending_tool_calls",
        "get_reasoning_stream",
        "get_response",
        "get_text",
        "get_text_stream",
        "get_tool_calls",
        "get_tool_calls_stream",
        "get_tool_stream",
        "get_usage",
        "get_state",
        "get_context_updates",
        "id",
        "interrupt",
        "interrupted_by",
        "requires_approval",
        "snapshot",
        "started",
        "wait_done",
    }


def test_call_model_takes_every_request_field_in_snake_case() -> None:
    params = set(inspect.signature(runtime.OpenRouter.call_model).parameters)
    request_fields = set(runtime.ResponsesRequest.__struct_fields__) - {"stream", "tools"}
    assert request_fields <= params
    assert {"tools", "stop_when", "allow_final_response", "retry", "retention"} <= params
    assert {"state", "approve", "reject", "require_approval", "context"} <= params
    assert all(p == p.lower() for p in params)
