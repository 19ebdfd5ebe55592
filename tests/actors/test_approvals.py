"""Approvals, resumable conversations and interruption, end to end over FakeOpenRouter.

Each SDK defect listed in issue 12 has a test here that fails if the defect is
present (named in its docstring). Scripted turns run on trio's autojump clock;
every test is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio
import trio.testing

from runtime import (
    ConfigurationError,
    ConversationState,
    MemoryStateStore,
    OpenRouter,
    ParsedToolCall,
    ToolContext,
    ToolResult,
    TurnContext,
    TurnStart,
    tool,
)
from runtime.emulator import Fault
from runtime.testing import FakeOpenRouter, error_turn, text_turn, tool_call_turn, tool_outputs

BOUND = 30.0


class Args(msgspec.Struct):
    x: int


class Recorder:
    """A store that keeps every save (a checkpoint per turn) and counts calls."""

    def __init__(self) -> None:
        self.inner = MemoryStateStore()
        self.saved: list[ConversationState] = []

    def load(self) -> ConversationState | None:
        return self.inner.load()

    def save(self, state: ConversationState) -> None:
        self.saved.append(state)
        self.inner.save(state)

    def request_interrupt(self, reason: str) -> None:
        self.inner.request_interrupt(reason)

    def interruption(self) -> str | None:
        return self.inner.interruption()

    def clear_interruption(self) -> None:
        self.inner.clear_interruption()

    @property
    def state(self) -> ConversationState:
        state = self.inner.load()
        assert state is not None
        return state


class Tools:
    """A gated tool, an automatic one, and a record of what ran."""

    def __init__(self, *, gate: Any = True) -> None:
        self.ran: list[str] = []
        self.judged: list[str] = []

        def run(args: Args, ctx: ToolContext) -> dict[str, int]:
            self.ran.append(ctx.tool_call.id)
            return {"x": args.x}

        self.gated = tool(name="gated", input_schema=Args, execute=run, require_approval=gate)
        self.auto = tool(name="auto", input_schema=Args, execute=run)

    def judge(self, call: ParsedToolCall, ctx: TurnContext) -> bool:
        self.judged.append(call.id)
        return call.name == "gated"

    @property
    def all(self) -> list[Any]:
        return [self.gated, self.auto]


def _outputs(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (item["call_id"], item["output"])
        for item in body["input"]
        if item.get("type") == "function_call_output"
    ]


def _kinds(items: list[Any]) -> list[str]:
    return [item.get("type", item.get("role", "?")) for item in items]


def _fake(*turns: Any) -> FakeOpenRouter:
    return FakeOpenRouter(*turns)


PAUSING_TURN = tool_call_turn(
    ("gated", {"x": 1}, "call_g"), ("auto", {"x": 2}, "call_a"), text="Checking."
)


async def test_a_gated_call_pauses_the_run_and_the_others_still_run_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """C-07; defect 'the approval check run twice': auto runs once, each call is judged once."""
    tools = Tools(gate=True)
    store = Recorder()
    fake = _fake(PAUSING_TURN, text_turn("Done."))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(
                model="m/x", input="Go", tools=tools.all, state=store, require_approval=tools.judge
            )
            text = [d async for d in result.get_text_stream()]  # ends cleanly at the pause
            assert await result.get_text() == "Checking."
            assert await result.requires_approval()
            pending = await result.get_pending_tool_calls()
    assert "".join(text) == "Checking."
    assert [c.id for c in pending] == ["call_g"]
    assert tools.ran == ["call_a"]
    assert tools.judged == ["call_g", "call_a"]
    assert len(fake.bodies()) == 1
    assert len(store.saved) == 1  # saved once, consistently
    saved = store.saved[0]
    assert saved.status == "awaiting_approval"
    assert [c.id for c in saved.pending_tool_calls] == ["call_g"]
    assert [r.call_id for r in saved.unsent_tool_results] == ["call_a"]
    assert _kinds(saved.messages) == ["user", "message", "function_call", "function_call"]
    snap = result.snapshot()
    assert (snap.status, snap.conversation_status) == ("done", "awaiting_approval")
    assert [c.id for c in snap.pending_tool_calls] == ["call_g"]
    assert snap.conversation_id == saved.id


async def test_resume_runs_the_approved_call_and_sends_outputs_in_call_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Defects 'outputs out of call order', 'turn numbers restarting', 'two saves on resume'."""
    tools = Tools()
    store = Recorder()
    fake = _fake(PAUSING_TURN, text_turn("Done."))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            await client.call_model(
                model="m/x", input="Go", tools=tools.all, state=store
            ).wait_done()
            resumed = client.call_model(
                model="m/x", tools=tools.all, state=store, approve=["call_g"]
            )
            assert await resumed.get_text() == "Done."
            events = [e async for e in resumed.get_full_responses_stream()]
    assert tools.ran == ["call_a", "call_g"]  # the auto call did not run again
    _, follow_up = fake.bodies()
    # The gated call came first in the response, so its output goes first.
    assert _outputs(follow_up) == [("call_g", '{"x":1}'), ("call_a", '{"x":2}')]
    # Tool events on resume, before the resumed run's first turn, which goes on from 0.
    kinds = [type(e).__name__ for e in events]
    assert kinds[:3] == ["ToolResult", "ToolCallOutput", "TurnStart"]
    assert [e.turn_number for e in events if isinstance(e, TurnStart)] == [1]
    assert [s.status for s in store.saved] == ["awaiting_approval", "complete"]
    final = store.state
    assert final.turn == 1
    assert final.usage.model_calls == 2
    assert final.pending_tool_calls == []
    assert final.unsent_tool_results == []
    assert await resumed.get_state() == final


async def test_partial_decisions_keep_it_paused_and_queue_new_input(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Defects 'partial approval reported as errors' and 'resume ignoring the new input'."""
    tools = Tools()
    store = Recorder()
    fake = _fake(
        tool_call_turn(("gated", {"x": 1}, "call_1"), ("gated", {"x": 2}, "call_2")),
        text_turn("Done."),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            await client.call_model(
                model="m/x", input="Go", tools=tools.all, state=store
            ).wait_done()
            partial = client.call_model(
                model="m/x", input="also say hi", tools=tools.all, state=store, approve=["call_2"]
            )
            assert [d async for d in partial.get_text_stream()] == []
            assert await partial.get_text() == ""
            assert await partial.requires_approval()
            assert [c.id for c in await partial.get_pending_tool_calls()] == ["call_1"]
            assert partial.snapshot().status == "done"
            assert len(fake.bodies()) == 1  # no request while a call is pending
            last = client.call_model(
                model="m/x",
                input="thanks",
                tools=tools.all,
                state=store,
                reject={"call_1": "not today"},
            )
            assert await last.get_text() == "Done."
    assert tools.ran == ["call_2"]
    _, follow_up = fake.bodies()
    assert _outputs(follow_up) == [("call_1", '{"error":"not today"}'), ("call_2", '{"x":2}')]
    assert follow_up["input"][-2:] == [
        {"role": "user", "content": "also say hi"},
        {"role": "user", "content": "thanks"},
    ]
    assert [s.status for s in store.saved] == ["awaiting_approval", "awaiting_approval", "complete"]


async def test_rejected_and_approved_calls_emit_tool_events_in_call_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tools = Tools()
    store = MemoryStateStore()
    fake = _fake(
        tool_call_turn(("gated", {"x": 1}, "call_1"), ("gated", {"x": 2}, "call_2")),
        text_turn("Done."),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            await client.call_model(
                model="m/x", input="Go", tools=tools.all, state=store
            ).wait_done()
            resumed = client.call_model(
                model="m/x", tools=tools.all, state=store, approve=["call_2"], reject=["call_1"]
            )
            results = [
                (e.tool_call_id, e.result)
                async for e in resumed.get_full_responses_stream()
                if isinstance(e, ToolResult)
            ]
    assert results == [("call_1", {"error": "Tool call rejected by user"}), ("call_2", {"x": 2})]


async def test_approval_without_a_store_fails_before_any_request() -> None:
    tools = Tools()
    fake = _fake(PAUSING_TURN)
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with pytest.raises(
            ConfigurationError,
            match=r"^tools that require approval need a state store to pause in, but no state= "
            r"was given: \['gated'\]",
        ):
            client.call_model(model="m/x", input="Go", tools=tools.all)
        with pytest.raises(ConfigurationError, match=r"given: \['\*'\]"):
            client.call_model(model="m/x", input="Go", tools=[tools.auto], require_approval=True)
        with pytest.raises(ConfigurationError, match=r"^approve and reject need state="):
            client.call_model(model="m/x", input="Go", approve=["call_1"])
        # Overriding the tool's own setting to False needs no store.
        client.call_model(model="m/x", input="Go", tools=tools.all, require_approval=False)
    assert fake.bodies() == []


async def test_the_call_level_policy_overrides_tools_both_ways(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """C-03: call-level require_approval wins over the tool's own in both directions."""
    tools = Tools(gate=True)
    fake = _fake(PAUSING_TURN, text_turn("Done."), PAUSING_TURN)
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            off = client.call_model(
                model="m/x", input="Go", tools=tools.all, require_approval=False
            )
            assert await off.get_text() == "Done."
            assert sorted(tools.ran) == ["call_a", "call_g"]
            only_auto = client.call_model(
                model="m/x",
                input="Go",
                tools=tools.all,
                state=MemoryStateStore(),
                require_approval=lambda call: call.name == "auto",
            )
            assert [c.id for c in await only_auto.get_pending_tool_calls()] == ["call_a"]
    assert sorted(tools.ran) == ["call_a", "call_g", "call_g"]


async def test_an_async_tool_policy_gets_the_call_and_the_turn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[tuple[str, int]] = []

    async def big(call: ParsedToolCall, ctx: TurnContext) -> bool:
        await trio.lowlevel.checkpoint()
        seen.append((call.id, ctx.number_of_turns))
        return bool(call.arguments["x"] > 1)

    tools = Tools(gate=big)
    fake = _fake(tool_call_turn(("gated", {"x": 1}, "small"), ("gated", {"x": 5}, "large")))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(
                model="m/x", input="Go", tools=tools.all, state=MemoryStateStore()
            )
            assert [c.id for c in await result.get_pending_tool_calls()] == ["large"]
    assert seen == [("small", 1), ("large", 1)]
    assert tools.ran == ["small"]


async def test_a_policy_that_raises_or_answers_a_non_bool_fails_the_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from runtime import RunError

    def bad(call: ParsedToolCall) -> Any:
        return "yes"

    tools = Tools(gate=bad)
    fake = _fake(PAUSING_TURN)
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(
                model="m/x", input="Go", tools=tools.all, state=MemoryStateStore()
            )
            with pytest.raises(
                RunError, match=r"^require_approval of tool 'gated' returned 'yes' on call 'call_g'"
            ):
                await result.get_text()
    assert tools.ran == []


async def test_approving_an_unknown_id_names_it_and_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tools = Tools()
    store = Recorder()
    fake = _fake(PAUSING_TURN, text_turn("Done."))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            await client.call_model(
                model="m/x", input="Go", tools=tools.all, state=store
            ).wait_done()
            wrong = client.call_model(model="m/x", tools=tools.all, state=store, approve=["nope"])
            with pytest.raises(
                ConfigurationError,
                match=r"^approve names tool call id 'nope', which is not pending in conversation "
                r"'conv_\w+' \(status 'awaiting_approval'; pending: \['call_g'\]\)$",
            ):
                await wrong.get_text()
    assert len(fake.bodies()) == 1
    assert len(store.saved) == 1  # the failed resume saved nothing
    assert tools.ran == ["call_a"]


async def test_a_saved_conversation_keeps_the_user_input_and_takes_string_input(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Defects 'user input missing from the saved state' and 'string input rejected'."""
    store = Recorder()
    fake = _fake(text_turn("Hello Ana."), text_turn("You are Ana."))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            await client.call_model(model="m/x", input="I am Ana", state=store).wait_done()
            again = client.call_model(model="m/x", input="Who am I?", state=store)
            assert await again.get_text() == "You are Ana."
    first = store.saved[0]
    assert first.messages[0] == {"role": "user", "content": "I am Ana"}
    _, second = fake.bodies()
    assert _kinds(second["input"]) == ["user", "message", "user"]
    assert second["input"][-1] == {"role": "user", "content": "Who am I?"}
    assert store.state.turn == 1
    assert _kinds(store.state.messages) == ["user", "message", "user", "message"]


async def test_a_failed_first_request_saves_nothing_so_a_retry_does_not_duplicate_input(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """L-24: the user's input is persisted with the response, never alone."""
    store = Recorder()
    fake = _fake(error_turn(400, times=1), text_turn("ok"))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            failed = client.call_model(model="m/x", input="Hi", state=store)
            with pytest.raises(Exception, match="400"):
                await failed.get_text()
            assert store.saved == []
            retry = client.call_model(model="m/x", input="Hi", state=store)
            assert await retry.get_text() == "ok"
    assert _kinds(store.state.messages) == ["user", "message"]


async def test_every_turn_boundary_is_a_resumable_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tools = Tools(gate=False)
    store = Recorder()
    fake = _fake(
        tool_call_turn(("auto", {"x": 1}, "c1")),
        tool_call_turn(("auto", {"x": 2}, "c2")),
        text_turn("Done."),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(model="m/x", input="Go", tools=tools.all, state=store)
            assert await result.get_text() == "Done."
    assert [(s.status, s.turn) for s in store.saved] == [
        ("in_progress", 0),
        ("in_progress", 1),
        ("complete", 2),
    ]
    bodies = fake.bodies()
    # Each checkpoint holds exactly what the next request sent: resuming from it is valid.
    assert store.saved[0].messages == bodies[1]["input"]
    assert store.saved[1].messages == bodies[2]["input"]
    assert [s.usage.model_calls for s in store.saved] == [1, 2, 3]


async def test_interrupt_from_another_task_stops_after_the_round(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Defects 'interrupted calls left without output' and 'partialResponse never cleared'."""
    started = trio.Event()
    release = trio.Event()

    async def slow(args: Args) -> int:
        started.set()
        await release.wait()
        return args.x

    slow_tool = tool(name="slow", input_schema=Args, execute=slow)
    store = Recorder()
    fake = _fake(
        tool_call_turn(("slow", {"x": 1}, "c1"), text="Working on it."),
        text_turn("never sent"),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(model="m/x", input="Go", tools=[slow_tool], state=store)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(result.wait_done)
                await started.wait()
                result.interrupt("user pressed stop")
                release.set()
            assert await result.get_text() == "Working on it."
            assert result.interrupted_by == "user pressed stop"
            assert len(fake.bodies()) == 1
            saved = store.state
            assert saved.status == "interrupted"
            assert saved.interrupted_by == "user pressed stop"
            assert saved.partial_response is not None
            assert saved.partial_response.text == "Working on it."
            assert [c.id for c in saved.partial_response.tool_calls] == ["c1"]
            assert _kinds(saved.messages)[-2:] == ["function_call", "function_call_output"]
            # The scripted turn the interrupted run never asked for answers the resume.
            resumed = client.call_model(model="m/x", input="go on", tools=[slow_tool], state=store)
            assert await resumed.get_text() == "never sent"
    after = store.state
    assert after.status == "complete"
    assert after.partial_response is None
    assert after.interrupted_by is None


async def test_interrupt_through_the_store_answers_every_unrun_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Safe point 1: the response is in, its calls never run, each gets an error output."""
    tools = Tools(gate=False)
    store = Recorder()
    fake = _fake(
        tool_call_turn(("auto", {"x": 1}, "c1"), ("auto", {"x": 2}, "c2"), fault=Fault(delay=5.0)),
        text_turn("Fine."),
    )

    async def press_stop() -> None:
        await trio.sleep(1.0)  # while the response is still on its way (virtual time)
        store.request_interrupt("another process said stop")

    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(model="m/x", input="Go", tools=tools.all, state=store)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(press_stop)
                results = [
                    e.result
                    async for e in result.get_full_responses_stream()
                    if isinstance(e, ToolResult)
                ]
            again = client.call_model(model="m/x", input="ok?", tools=tools.all, state=store)
            assert await again.get_text() == "Fine."
    message = "The run was interrupted before this tool call ran (another process said stop)"
    assert results == [{"error": message}, {"error": message}]
    assert tools.ran == []
    assert [s.status for s in store.saved] == ["interrupted", "complete"]
    assert store.inner.interruption() is None  # honoured, then cleared
    _, second = fake.bodies()
    assert [cid for cid, _ in _outputs(second)] == ["c1", "c2"]


async def test_a_stale_interruption_request_is_cleared_when_a_run_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Defect 'interruption flags lost by a concurrent save': a save never clears a request;
    only a run that starts (or honours it) does."""
    tools = Tools(gate=False)
    store = Recorder()
    fake = _fake(tool_call_turn(("auto", {"x": 1}, "c1")), text_turn("Done."))
    store.request_interrupt("old")
    store.save(store.inner.load() or ConversationState(id="conv_s"))  # a save keeps it
    assert store.interruption() == "old"
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(model="m/x", input="Go", tools=tools.all, state=store)
            assert await result.get_text() == "Done."
    assert store.state.status == "complete"


async def test_tool_context_is_typed_persisted_streamed_and_seen_by_the_next_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Counter(msgspec.Struct, frozen=True):
        count: int = 0
        label: str = "clicks"

    def click(args: Args, ctx: ToolContext) -> int:
        value = ctx.local.count + args.x
        ctx.set_context(count=value)
        ctx.set_shared_context(last=ctx.tool_call.id)
        return int(value)

    def misuse(args: Args, ctx: ToolContext) -> int:
        ctx.set_context(count="many")
        return 0

    clicker = tool(name="click", input_schema=Args, execute=click, context_schema=Counter)
    bad = tool(name="bad", input_schema=Args, execute=misuse, context_schema=Counter)
    store = MemoryStateStore()
    fake = _fake(
        tool_call_turn(("click", {"x": 2}, "c1"), ("bad", {"x": 0}, "b1")),
        tool_call_turn(("click", {"x": 3}, "c2")),
        text_turn("Five."),
        tool_call_turn(("click", {"x": 1}, "c3")),
        text_turn("Six."),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(
                model="m/x",
                input="Go",
                tools=[clicker, bad],
                state=store,
                context={"click": {"label": "taps"}},
            )
            updates = [
                (u.name, msgspec.to_builtins(u.value), u.turn)
                async for u in result.get_context_updates()
            ]
            outputs = [
                e.result
                async for e in result.get_full_responses_stream()
                if isinstance(e, ToolResult)
            ]
            saved = store.load()
            assert saved is not None
            assert saved.context == {
                "click": {"count": 5, "label": "taps"},
                "bad": {"count": 0, "label": "clicks"},
                "shared": {"last": "c2"},
            }
            later = client.call_model(model="m/x", input="again", tools=[clicker, bad], state=store)
            assert await later.get_text() == "Six."
    assert updates == [
        ("click", {"count": 2, "label": "taps"}, 1),
        ("shared", {"last": "c1"}, 1),
        ("click", {"count": 5, "label": "taps"}, 2),
        ("shared", {"last": "c2"}, 2),
    ]
    assert outputs[0] == 2
    assert outputs[1] == {
        "error": "context for 'bad' is invalid: Expected `int`, got `str` - at `$.count`"
    }
    final = store.load()
    assert final is not None
    assert final.context["click"]["count"] == 6  # the next call saw 5 and added 1


async def test_bad_context_arguments_fail_in_call_model() -> None:
    class Counter(msgspec.Struct):
        count: int = 0

    clicker = tool(name="click", input_schema=Args, execute=lambda a: 0, context_schema=Counter)
    fake = _fake()
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with pytest.raises(ConfigurationError, match=r"^context names 'nope', which is neither"):
            client.call_model(model="m/x", input="Go", tools=[clicker], context={"nope": {}})
        with pytest.raises(
            ConfigurationError,
            match=r"^context for 'click' is invalid: Expected `int`, got `str` - at `\$.count`$",
        ):
            client.call_model(
                model="m/x", input="Go", tools=[clicker], context={"click": {"count": "x"}}
            )
    with pytest.raises(ConfigurationError, match=r"context_schema <class 'int'> must describe"):
        tool(name="t", input_schema=Args, execute=lambda a: 0, context_schema=int)
    with pytest.raises(ConfigurationError, match=r"require_approval must be True, False or"):
        tool(name="t", input_schema=Args, execute=lambda a: 0, require_approval="yes")  # type: ignore[arg-type]


async def test_manual_tools_pause_with_a_store_and_take_outputs_as_input(
    autojump_clock: trio.testing.MockClock,
) -> None:
    tools = Tools(gate=False)
    manual = tool(name="ask_user", input_schema=Args, execute=False)
    store = Recorder()
    fake = _fake(
        tool_call_turn(("ask_user", {"x": 1}, "m1"), ("auto", {"x": 2}, "a1")),
        text_turn("Thanks."),
    )
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            paused = client.call_model(
                model="m/x", input="Go", tools=[manual, tools.auto], state=store
            )
            assert [c.id for c in await paused.get_pending_tool_calls()] == ["m1"]
            assert not await paused.requires_approval()
            assert store.state.status == "awaiting_client_tools"
            answer = {"type": "function_call_output", "call_id": "m1", "output": '"blue"'}
            resumed = client.call_model(
                model="m/x", input=[answer], tools=[manual, tools.auto], state=store
            )
            assert await resumed.get_text() == "Thanks."
    _, second = fake.bodies()
    assert _outputs(second) == [("m1", '"blue"'), ("a1", '{"x":2}')]


async def test_a_tool_in_a_worker_thread_writes_its_context_through_the_trio_thread() -> None:
    class Seen(msgspec.Struct, frozen=True):
        calls: int = 0

    def blocking(args: Args, ctx: ToolContext) -> int:
        value = ctx.set_context(calls=ctx.local.calls + 1)
        return int(value.calls)

    threaded = tool(
        name="threaded",
        input_schema=Args,
        execute=blocking,
        context_schema=Seen,
        run_sync_in_thread=True,
    )
    fake = _fake(tool_call_turn(("threaded", {"x": 1}, "t1")), text_turn("ok"))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(model="m/x", input="Go", tools=[threaded])
            updates = [u async for u in result.get_context_updates()]
            assert await result.get_text() == "ok"
    assert [(u.name, u.value, u.call_id) for u in updates] == [("threaded", Seen(calls=1), "t1")]
    assert tool_outputs(fake.bodies()[1]) == [("t1", "1")]


async def test_set_shared_context_works_without_any_configuration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def note(args: Args, ctx: ToolContext) -> str:
        ctx.set_shared_context(seen=args.x)
        return str(ctx.shared)

    noter = tool(name="note", input_schema=Args, execute=note)
    fake = _fake(tool_call_turn(("note", {"x": 4}, "n1")), text_turn("ok"))
    async with OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client:
        with trio.fail_after(BOUND):
            result = client.call_model(model="m/x", input="Go", tools=[noter])
            assert await result.get_text() == "ok"
    assert tool_outputs(fake.bodies()[1]) == [("n1", "\"{'seen': 4}\"")]


async def test_the_registry_and_the_feed_show_a_paused_session_and_its_pending_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from actors._feed.protocol import index_frames, index_snapshot_frame
    from runtime import open_session_pool

    tools = Tools()
    fake = _fake(PAUSING_TURN)
    async with (
        OpenRouter(fake.inference_key, http_transport=fake.http_transport()) as client,
        open_session_pool(client, max_concurrent=2) as pool,
    ):
        with trio.fail_after(BOUND):
            watch = pool.watch()
            result = pool.start(model="m/x", input="Go", tools=tools.all, state=MemoryStateStore())
            await pool.wait_idle()
            snap = pool.snapshot(result.id)
            updates = watch.receive_batch_nowait()
    assert (snap.status, snap.conversation_status) == ("done", "awaiting_approval")
    assert [(c.id, c.name, c.arguments) for c in snap.pending_tool_calls] == [
        ("call_g", "gated", {"x": 1})
    ]
    # What a dashboard receives: the index snapshot and the last update name the calls.
    frame = msgspec.json.decode(index_snapshot_frame("subscribe", 0, [snap]))
    (session,) = frame["data"]["sessions"]
    assert session["conversation_status"] == "awaiting_approval"
    assert session["pending_tool_calls"] == [
        {"id": "call_g", "name": "gated", "arguments": {"x": 1}}
    ]
    last = msgspec.json.decode(index_frames(updates[-1:], 0)[0])
    assert last["data"]["pending_tool_calls"][0]["id"] == "call_g"
