"""The typed run status: one table of allowed transitions, enforced by ``RunState``."""

from __future__ import annotations

import typing

import pytest
import trio

from runtime._agent.request import TurnRequest, request_fields
from runtime._client.client import OpenRouter
from runtime._protocol.wire import ResponsesRequest
from runtime._run.status import FINISHED, TRANSITIONS, RunState, RunStatus
from runtime.testing import FakeOpenRouter, text_turn


def test_the_table_names_every_status_once() -> None:
    assert set(TRANSITIONS) == set(typing.get_args(RunStatus))
    for targets in TRANSITIONS.values():
        assert targets <= set(TRANSITIONS)


def test_terminal_statuses_are_exactly_the_finished_ones() -> None:
    assert frozenset({"done", "failed", "cancelled"}) == FINISHED


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (start, target)
        for start in typing.get_args(RunStatus)
        for target in typing.get_args(RunStatus)
        if target != start
    ],
)
def test_move_to_follows_the_table(start: RunStatus, target: RunStatus) -> None:
    state = RunState()
    state._status = start
    if target in TRANSITIONS[start]:
        state.move_to(target)
        assert state.status == target
    else:
        with pytest.raises(RuntimeError, match=f"from {start!r} to {target!r}"):
            state.move_to(target)
        assert state.status == start


async def test_a_run_moves_pending_running_done() -> None:
    fake = FakeOpenRouter()
    fake.enqueue(text_turn("hi"))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        result = client.call_model(model="m", input="x")
        assert result.snapshot().status == "pending"
        with trio.fail_after(5):
            assert await result.get_text() == "hi"
            await result.wait_done()
        assert result.snapshot().status == "done"


def test_turn_request_has_every_request_field_but_stream_and_tools() -> None:
    assert set(TurnRequest.__struct_fields__) == (
        set(ResponsesRequest.__struct_fields__) - {"stream", "tools"}
    )


def test_request_fields_keeps_set_values_and_functions_only() -> None:
    def model(ctx: object) -> str:
        return "m"

    fields = request_fields(TurnRequest(model=model, temperature=0.5, instructions=None))
    assert fields == {"model": model, "temperature": 0.5, "instructions": None}
