"""A durable run's checkpoint is a ``ConversationState`` (the approvals/state format).

Workers (``runtime._cli.worker``) save one at each turn boundary and resume a
run taken over from it; here the seam (``ModelResult._durable``) is driven in
one process, with the in-process fake as the model.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio

from runtime import OpenRouter, ToolContext, function_tool
from runtime._agent.state import ConversationState, decode_state, encode_state
from runtime._base.errors import InvalidStateError, UnsupportedStateVersionError
from runtime._protocol.events import ToolResult, TurnRetry, TurnStart
from runtime._redis.work import decode_checkpoint
from runtime._run.status import CHECKPOINT_VERSION, TurnCheckpoint
from runtime.testing import FakeOpenRouter, text_turn, tool_call_turn, tool_outputs


class Quota(msgspec.Struct, frozen=True):
    used: int = 0
    limit: int = 3


def quota_tool(seen: list[int]) -> Any:
    @function_tool(context_schema=Quota)
    def search(query: str, context: ToolContext) -> str:
        """Search, within a quota kept in the tool's context."""
        quota = context.local
        seen.append(quota.used)
        context.set_context(used=quota.used + 1)
        return f"results for {query}"

    return search


async def _run_durable(
    fake: FakeOpenRouter, seen: list[int], **hooks: Any
) -> tuple[list[TurnCheckpoint], list[Any]]:
    saved: list[TurnCheckpoint] = []

    async def checkpoint(cp: TurnCheckpoint) -> None:
        saved.append(cp)

    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        result = client.call_model(
            model="openai/gpt-5",
            input="Search trio, then nurseries",
            tools=[quota_tool(seen)],
            context={"search": Quota(limit=5)},
        )
        result._durable("run_0123456789abcdef", checkpoint=checkpoint, **hooks)
        events = [event async for event in result.events()]
        await result.wait_done()
    return saved, events


async def test_each_turn_boundary_saves_a_conversation_state() -> None:
    fake = FakeOpenRouter(
        tool_call_turn(("search", {"query": "trio"})),
        tool_call_turn(("search", {"query": "nurseries"})),
        text_turn("Found both."),
    )
    seen: list[int] = []
    with trio.fail_after(10):
        saved, _ = await _run_durable(fake, seen)
    assert seen == [0, 1]
    assert [cp.turn for cp in saved] == [0, 1]
    first, second = saved
    assert isinstance(first.conversation, ConversationState)
    assert first.conversation.id == second.conversation.id  # one conversation
    for cp in saved:
        # The calls about to run are pending, and are the last messages.
        assert [c.name for c in cp.conversation.pending_tool_calls] == ["search"]
        assert [i["type"] for i in cp.raw_output] == ["function_call"]
        assert cp.raw_output[0]["call_id"] == cp.conversation.pending_tool_calls[0].id
        assert cp.conversation.previous_response_id == cp.response.id
        assert "input" not in cp.request  # the input is the conversation's messages
        # Readable by the state API as it is.
        assert decode_state(encode_state(cp.conversation)) == cp.conversation
    # The contexts as they stood before each round: the seed, then after round 0.
    assert first.conversation.context["search"] == {"used": 0, "limit": 5}
    assert second.conversation.context["search"] == {"used": 1, "limit": 5}
    assert first.conversation.usage.model_calls == 1
    assert second.conversation.usage.model_calls == 2
    # Round 0's call and its output are in the history turn 1 sent.
    assert [i.get("type") for i in second.history[-2:]] == [
        "function_call",
        "function_call_output",
    ]
    assert second.tool_calls_executed == 1


async def test_a_run_resumed_from_a_checkpoint_keeps_its_tool_contexts() -> None:
    fake = FakeOpenRouter(
        tool_call_turn(("search", {"query": "trio"})),
        tool_call_turn(("search", {"query": "nurseries"})),
        text_turn("Found both."),
    )
    with trio.fail_after(10):
        saved, _ = await _run_durable(fake, [])
    # As another worker reads it: through JSON.
    body = msgspec.json.encode(saved[1])
    checkpoint = decode_checkpoint(body)
    assert checkpoint.conversation == saved[1].conversation

    heir = FakeOpenRouter(text_turn("Found both, again."))
    seen: list[int] = []
    with trio.fail_after(10):
        resaved, events = await _run_durable(heir, seen, resume=checkpoint, resumed=True)
    # The resumed boundary is saved again (same turn, same conversation), no other.
    assert [cp.turn for cp in resaved] == [1]
    assert resaved[0].conversation.id == checkpoint.conversation.id
    assert resaved[0].conversation.context == checkpoint.conversation.context
    assert seen == [1]  # the round ran again with the checkpointed context
    kinds = [type(e) for e in events]
    assert kinds[0] is TurnRetry
    assert events[0].turn_number == 2
    assert kinds.count(TurnStart) == 1
    assert [e.tool_call_id for e in events if type(e) is ToolResult] == [
        checkpoint.conversation.pending_tool_calls[0].id
    ]
    (body_sent,) = heir.bodies()
    outputs = [msgspec.json.decode(output) for _, output in tool_outputs(body_sent)]
    assert outputs == ["results for trio", "results for nurseries"]


def test_a_checkpoint_of_another_version_is_refused_naming_it() -> None:
    with pytest.raises(UnsupportedStateVersionError, match="version 1 ") as caught:
        decode_checkpoint(b'{"version": 1, "turn": 0, "history": []}')
    assert caught.value.version == 1
    assert f"version {CHECKPOINT_VERSION}" in str(caught.value)
    with pytest.raises(InvalidStateError, match="malformed"):
        decode_checkpoint(b"not json")
    with pytest.raises(InvalidStateError, match="malformed"):
        decode_checkpoint(msgspec.json.encode({"version": CHECKPOINT_VERSION, "turn": 0}))
