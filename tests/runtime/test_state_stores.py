"""The built-in conversation stores and the accessor adapter (sync or async, failures)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
import trio

from runtime import (
    ConfigurationError,
    ConversationState,
    InterruptibleStateAccessor,
    InvalidStateError,
    JSONFileStateStore,
    MemoryStateStore,
    RunError,
    StateAccessor,
    UnsupportedStateVersionError,
    new_conversation_state,
)
from runtime._agent.store import StateSession, check_state_accessor

if TYPE_CHECKING:
    from pathlib import Path

BOUND = 10.0


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _state(**changes: Any) -> ConversationState:
    return msgspec.structs.replace(new_conversation_state("conv_1"), **changes)


def test_both_stores_are_interruptible_accessors() -> None:
    for store in (MemoryStateStore(), JSONFileStateStore("x.json")):
        assert isinstance(store, StateAccessor)
        assert isinstance(store, InterruptibleStateAccessor)


def test_the_memory_store_hands_out_copies() -> None:
    store = MemoryStateStore()
    assert store.load() is None
    store.save(_state(messages=[{"role": "user", "content": "hi"}]))
    loaded = store.load()
    assert loaded is not None
    loaded.messages.append("mutated")
    again = store.load()
    assert again is not None
    assert again.messages == [{"role": "user", "content": "hi"}]
    assert store.save_count == 1
    assert repr(store) == "<MemoryStateStore status='in_progress' saves=1>"


def test_the_memory_store_keeps_interruptions_apart_from_saves() -> None:
    store = MemoryStateStore(_state())
    store.request_interrupt("user pressed stop")
    store.save(_state(status="complete"))  # a save cannot lose the request
    assert store.interruption() == "user pressed stop"
    store.clear_interruption()
    assert store.interruption() is None
    with pytest.raises(
        ConfigurationError, match=r"^interrupt reason must be a non-empty string, got ''$"
    ):
        store.request_interrupt("")


async def test_the_file_store_round_trips_and_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "conv.json"
    store = JSONFileStateStore(path)
    with trio.fail_after(BOUND):
        assert await store.load() is None
        await store.save(_state(turn=1))
        first_inode = os.stat(path).st_ino
        await store.save(_state(turn=2, status="complete"))
        loaded = await store.load()
    assert loaded is not None
    assert (loaded.turn, loaded.status) == (2, "complete")
    # os.replace puts a new file in place: never a half-written document.
    assert os.stat(path).st_ino != first_inode
    assert _names(tmp_path) == ["conv.json"]  # no temp file left
    assert msgspec.json.decode(path.read_bytes())["version"] == 1


async def test_a_failed_write_leaves_the_old_document_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "conv.json"
    store = JSONFileStateStore(path)

    class Unencodable:
        pass

    with trio.fail_after(BOUND):
        await store.save(_state(turn=1))
        with pytest.raises(TypeError):
            await store.save(_state(messages=[Unencodable()]))
        loaded = await store.load()
    assert loaded is not None
    assert loaded.turn == 1
    assert _names(tmp_path) == ["conv.json"]


async def test_cancelling_a_save_before_it_starts_leaves_the_old_document(
    tmp_path: Path,
) -> None:
    path = tmp_path / "conv.json"
    store = JSONFileStateStore(path)
    with trio.fail_after(BOUND):
        await store.save(_state(turn=1))
        with trio.CancelScope() as scope:
            scope.cancel()
            await store.save(_state(turn=2))
        loaded = await store.load()
    assert loaded is not None
    assert loaded.turn == 1


async def test_the_file_store_reports_bad_documents(tmp_path: Path) -> None:
    path = tmp_path / "conv.json"
    store = JSONFileStateStore(path)
    with trio.fail_after(BOUND):
        path.write_text("{oops")
        with pytest.raises(InvalidStateError):
            await store.load()
        path.write_text('{"id": "c", "version": 7}')
        with pytest.raises(UnsupportedStateVersionError):
            await store.load()


async def test_the_file_store_interruption_sits_beside_the_document(tmp_path: Path) -> None:
    path = tmp_path / "conv.json"
    store = JSONFileStateStore(path)
    other_process_view = JSONFileStateStore(str(path))
    with trio.fail_after(BOUND):
        assert await store.interruption() is None
        await other_process_view.request_interrupt("stop please")
        await store.save(_state())  # the save does not touch the request
        assert await store.interruption() == "stop please"
        await store.clear_interruption()
        assert await store.interruption() is None
        await store.clear_interruption()  # idempotent
    assert _names(tmp_path) == ["conv.json"]


def test_a_state_argument_needs_load_and_save() -> None:
    with pytest.raises(ConfigurationError, match=r"^state must have load\(\) and save\(\) methods"):
        check_state_accessor(object())
    with pytest.raises(ConfigurationError, match=r"got 'a path'"):
        check_state_accessor("a path")


async def test_the_adapter_accepts_sync_async_and_documents() -> None:
    saved: list[ConversationState] = []

    class AsyncDocs:
        async def load(self) -> bytes:
            await trio.lowlevel.checkpoint()
            return b'{"id": "conv_doc", "turn": 3}'

        async def save(self, state: ConversationState) -> None:
            await trio.lowlevel.checkpoint()
            saved.append(state)

    session = StateSession(AsyncDocs())
    loaded = await session.load()
    assert loaded is not None
    assert (loaded.id, loaded.turn) == ("conv_doc", 3)
    await session.save(loaded)
    assert saved == [loaded]
    assert session.saves == 1
    assert await session.interruption() is None  # no side channel: never interrupted


async def test_store_failures_fail_the_run_with_a_clear_message() -> None:
    class Broken:
        def load(self) -> Any:
            raise OSError("disk on fire")

        def save(self, state: ConversationState) -> None:
            raise OSError("disk full")

    session = StateSession(Broken())
    with pytest.raises(
        RunError, match=r"^Failed to load conversation state: disk on fire$"
    ) as info:
        await session.load()
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(RunError, match=r"^Failed to persist conversation state: disk full$"):
        await session.save(_state())
    assert session.saves == 0

    class Weird:
        def load(self) -> int:
            return 42

        def save(self, state: ConversationState) -> None:
            pass

    with pytest.raises(RunError, match=r"^state.load\(\) returned 42; expected"):
        await StateSession(Weird()).load()
