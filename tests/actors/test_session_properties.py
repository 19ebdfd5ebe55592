"""Property test of the agent loop over random scripted conversations.

Random numbers of calls per turn, random tool failures (raising, invalid JSON,
unknown names), random stop conditions. Invariants checked on what was sent:
every ``function_call`` sent back has exactly one output, outputs keep call
order, turns and steps are counted right, and usage totals equal the sum of
the scripted usages of the turns that were served.
"""

from __future__ import annotations

import json
from typing import Any

import hypothesis.strategies as st
import trio
from hypothesis import HealthCheck, given, settings

from runtime import OpenRouter, ToolCallOutput, TurnStart, step_count_is, tool
from runtime.testing import FakeOpenRouter, Turn, TurnUsage, text_turn, tool_call_turn

KINDS = ("ok", "raise", "bad_json", "unknown")


def _ok(args: dict[str, Any]) -> dict[str, Any]:
    return {"echo": args.get("n")}


def _raise(args: dict[str, Any]) -> Any:
    raise RuntimeError(f"tool failed on {args.get('n')}")


TOOLS = [
    tool(name="ok", input_schema=dict[str, Any], execute=_ok),
    tool(name="raise", input_schema=dict[str, Any], execute=_raise),
    tool(name="bad_json", input_schema=dict[str, Any], execute=_ok),
]

usages = st.builds(
    TurnUsage,
    input_tokens=st.integers(0, 1000),
    output_tokens=st.integers(0, 1000),
    cost=st.integers(0, 100).map(lambda c: c / 1000),
)
rounds = st.lists(
    st.tuples(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4), usages),
    min_size=0,
    max_size=4,
)


def _turn(kinds: list[str], usage: TurnUsage, offset: int) -> Turn:
    calls: list[Any] = []
    for i, kind in enumerate(kinds):
        n = offset + i
        arguments: Any = "{oops" if kind == "bad_json" else {"n": n}
        calls.append((kind if kind != "unknown" else "missing_tool", arguments, f"call_{n}"))
    return tool_call_turn(*calls, usage=usage)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    script=rounds,
    final_usage=usages,
    stop_at=st.none() | st.integers(0, 5),
    allow_final=st.booleans(),
)
async def test_random_conversations_keep_the_loop_invariants(
    script: list[tuple[list[str], TurnUsage]],
    final_usage: TurnUsage,
    stop_at: int | None,
    allow_final: bool,
) -> None:
    fake = FakeOpenRouter()
    turns: list[Turn] = []
    offset = 0
    for kinds, usage in script:
        turns.append(_turn(kinds, usage, offset))
        offset += len(kinds)
    turns.append(text_turn("the end", usage=final_usage))
    fake.enqueue(*turns)
    limit = 5 if stop_at is None else stop_at

    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(10):
            result = client.call_model(
                model="m",
                input="go",
                tools=TOOLS,
                stop_when=None if stop_at is None else step_count_is(stop_at),
                allow_final_response=allow_final,
            )
            events = [e async for e in result.get_full_responses_stream()]
            totals = await result.get_usage()

    r = len(script)
    if r <= limit:
        executed, requests = r, r + 1
    elif allow_final:
        executed, requests = limit + 1, limit + 2
    else:
        executed, requests = limit, limit + 1

    bodies = fake.bodies()
    assert len(bodies) == requests
    assert sum(isinstance(e, TurnStart) for e in events) == requests
    expected_calls = sum(len(kinds) for kinds, _ in script[:executed])
    assert sum(isinstance(e, ToolCallOutput) for e in events) == expected_calls

    for body in bodies[1:]:
        items = [i for i in body["input"] if isinstance(i, dict)]
        call_ids = [i["call_id"] for i in items if i.get("type") == "function_call"]
        output_ids = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
        assert call_ids == output_ids  # exactly one output per call, in call order
        for item in items:
            if item.get("type") == "function_call_output":
                json.loads(item["output"])  # every output is JSON the model can read

    served = [*(u for _, u in script), final_usage][:requests]
    assert totals.model_calls == requests
    assert totals.input_tokens == sum(u.input_tokens or 0 for u in served)
    assert totals.output_tokens == sum(u.output_tokens or 0 for u in served)
    assert totals.cost is not None
    assert abs(totals.cost - sum(u.cost or 0 for u in served)) < 1e-9
