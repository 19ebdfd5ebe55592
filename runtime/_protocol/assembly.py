"""Rebuilding tool calls and item snapshots from stream events.

The one job of this module is to fold the events of a ``/responses`` stream
(:mod:`runtime._protocol.events`) into what consumers want: finished function calls
(:class:`ToolCallAssembler`, ``getToolCallsStream``) and cumulative output-item
snapshots (:class:`ItemSnapshotter`, ``getItemsStream``), spec §2.3.

Rules:

1. **Sans-io.** Both accumulators are plain synchronous objects: feed them
   every event of a stream, in order, and they return what the event
   completed or changed. No trio, no httpx.
2. **Cheap for events they ignore.** ``feed`` dispatches on ``type(event)``
   through a module-level dict: an event neither cares about costs one dict
   lookup and allocates nothing.
3. **In-progress work is keyed like the wire.** Function calls are tracked
   under their item ``id``, falling back to ``call_id`` (spec §2.3, B-05);
   everything yielded carries the wire ``call_id`` as its ``id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, TypeAlias

from msgspec import UNSET

from runtime._protocol.events import (
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    ReasoningTextDelta,
    ResponseCompleted,
    ResponseFailed,
    ResponseIncomplete,
    ToolCallOutput,
)
from runtime._protocol.wire import (
    FunctionCallItem,
    FunctionCallOutputItem,
    OutputItem,
    OutputMessage,
    OutputText,
    ParsedToolCall,
    ReasoningItem,
    SummaryText,
    parse_arguments,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ItemSnapshotter", "Snapshot", "ToolCallAssembler"]


class _PendingCall:
    __slots__ = ("arguments", "call_id", "name")

    def __init__(self, call_id: str, name: str) -> None:
        self.call_id = call_id
        self.name = name
        self.arguments: list[str] = []


def _call_key(item: FunctionCallItem) -> str:
    # Key in-progress calls by item id, falling back to call_id (spec §2.3, B-05).
    return item.id if isinstance(item.id, str) and item.id else item.call_id


def _parsed(call_id: str, name: str, arguments: str) -> ParsedToolCall:
    return ParsedToolCall(
        id=call_id,
        name=name,
        arguments=parse_arguments(arguments, call_id=call_id, name=name),
    )


class ToolCallAssembler:
    """Assembles function calls from stream events (``getToolCallsStream``, spec §2.3).

    Feed it every event in order; it returns a :class:`ParsedToolCall` when a
    call's arguments are complete, once per call:

    * ``response.output_item.added`` with a ``function_call`` item starts
      tracking it under its item ``id`` (``call_id`` if it has none);
    * ``response.function_call_arguments.delta`` appends to the call whose key
      equals the event's ``item_id``;
    * ``response.function_call_arguments.done`` for a tracked call yields it
      with the done event's ``arguments`` (parsed: trimmed, empty means
      ``{}``, invalid JSON stays a string) and ``name``, and stops tracking;
    * ``response.output_item.done`` for a call still tracked (no arguments
      ``.done`` seen) yields it from the item.

    The yielded ``id`` is always the wire ``call_id``. Every other event costs
    one dict lookup.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: dict[str, _PendingCall] = {}

    def feed(self, event: object) -> ParsedToolCall | None:
        """Take the next event; return the call it completed, if any."""
        handler = _ASSEMBLER_HANDLERS.get(type(event))
        return None if handler is None else handler(self, event)

    def partial_arguments(self, item_id: str) -> str | None:
        """The argument text streamed so far for a tracked call, or ``None``."""
        pending = self._pending.get(item_id)
        return None if pending is None else "".join(pending.arguments)

    def _on_added(self, event: OutputItemAdded) -> None:
        item = event.item
        if isinstance(item, FunctionCallItem):
            self._pending[_call_key(item)] = _PendingCall(item.call_id, item.name)

    def _on_delta(self, event: FunctionCallArgumentsDelta) -> None:
        pending = self._pending.get(event.item_id)
        if pending is not None:
            pending.arguments.append(event.delta)

    def _on_arguments_done(self, event: FunctionCallArgumentsDone) -> ParsedToolCall | None:
        pending = self._pending.pop(event.item_id, None)
        if pending is None:
            return None
        return _parsed(pending.call_id, event.name or pending.name, event.arguments)

    def _on_item_done(self, event: OutputItemDone) -> ParsedToolCall | None:
        item = event.item
        if (
            not isinstance(item, FunctionCallItem)
            or self._pending.pop(_call_key(item), None) is None
        ):
            return None
        return _parsed(item.call_id, item.name, item.arguments)


_ASSEMBLER_HANDLERS: Final[
    dict[type, Callable[[ToolCallAssembler, Any], ParsedToolCall | None]]
] = {
    OutputItemAdded: ToolCallAssembler._on_added,
    FunctionCallArgumentsDelta: ToolCallAssembler._on_delta,
    FunctionCallArgumentsDone: ToolCallAssembler._on_arguments_done,
    OutputItemDone: ToolCallAssembler._on_item_done,
}


class _Progress:
    """What :class:`ItemSnapshotter` remembers about one in-progress item."""

    __slots__ = ("item", "text")

    def __init__(self, item: OutputMessage | FunctionCallItem | ReasoningItem) -> None:
        self.item = item
        self.text = ""


Snapshot: TypeAlias = OutputItem | FunctionCallOutputItem
"""What :meth:`ItemSnapshotter.feed` returns."""


class ItemSnapshotter:
    """Cumulative snapshots of output items as they stream (``getItemsStream``, spec §2.3).

    Feed it every event in order; it returns the item's snapshot after each
    event that changes one:

    * ``response.output_item.added``: the initial snapshot (a message with no
      content, a function call with ``arguments=""``, a reasoning item with an
      empty summary, all ``status="in_progress"``); hosted-tool items and
      unknown items are passed through as they are;
    * ``response.output_text.delta``: the message with its text so far;
    * ``response.function_call_arguments.delta``: the function call with its
      arguments so far (its ``id`` is set only when it differs from ``call_id``);
    * ``response.reasoning_text.delta``: the reasoning item with the text so
      far as its one summary block (as the SDK does);
    * ``response.output_item.done``: the final item, and tracking stops;
    * ``tool.call_output``: its ``function_call_output`` item.

    Empty deltas change nothing and return ``None``. A terminal event resets
    the in-progress items, so one snapshotter can follow every turn of a run.
    Snapshots are new Structs; each holds the whole text so far.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[str, _Progress] = {}

    def feed(self, event: object) -> Snapshot | None:
        """Take the next event; return the snapshot it produced, if any."""
        handler = _SNAPSHOT_HANDLERS.get(type(event))
        return None if handler is None else handler(self, event)

    def _on_added(self, event: OutputItemAdded) -> OutputItem:
        item = event.item
        snapshot: OutputMessage | FunctionCallItem | ReasoningItem
        if isinstance(item, OutputMessage):
            snapshot = OutputMessage(id=item.id, role=item.role, status="in_progress")
            self._items[item.id] = _Progress(snapshot)
        elif isinstance(item, FunctionCallItem):
            snapshot = FunctionCallItem(
                id=item.id, call_id=item.call_id, name=item.name, arguments="", status="in_progress"
            )
            self._items[_call_key(item)] = _Progress(snapshot)
        elif isinstance(item, ReasoningItem):
            snapshot = ReasoningItem(id=item.id, status="in_progress")
            self._items[item.id] = _Progress(snapshot)
        else:
            return item
        return snapshot

    def _on_item_done(self, event: OutputItemDone) -> OutputItem:
        item = event.item
        if isinstance(item, FunctionCallItem):
            self._items.pop(_call_key(item), None)
        elif isinstance(item, OutputMessage | ReasoningItem):
            self._items.pop(item.id, None)
        return item

    def _on_text_delta(self, event: OutputTextDelta) -> OutputMessage | None:
        if not event.delta:
            return None
        progress = self._items.get(event.item_id)
        if progress is None:
            # Text for an item whose ``added`` we did not see: track it anyway.
            progress = _Progress(OutputMessage(id=event.item_id, status="in_progress"))
            self._items[event.item_id] = progress
        message = progress.item
        if not isinstance(message, OutputMessage):
            return None
        progress.text += event.delta
        return OutputMessage(
            id=message.id,
            role=message.role,
            status="in_progress",
            content=[OutputText(text=progress.text)],
        )

    def _on_arguments_delta(self, event: FunctionCallArgumentsDelta) -> FunctionCallItem | None:
        progress = self._items.get(event.item_id)
        if progress is None or not event.delta:
            return None
        call = progress.item
        if not isinstance(call, FunctionCallItem):
            return None
        progress.text += event.delta
        return FunctionCallItem(
            id=event.item_id if event.item_id != call.call_id else UNSET,
            call_id=call.call_id,
            name=call.name,
            arguments=progress.text,
            status="in_progress",
        )

    def _on_reasoning_delta(self, event: ReasoningTextDelta) -> ReasoningItem | None:
        if not event.delta:
            return None
        progress = self._items.get(event.item_id)
        if progress is None:
            progress = _Progress(ReasoningItem(id=event.item_id, status="in_progress"))
            self._items[event.item_id] = progress
        reasoning = progress.item
        if not isinstance(reasoning, ReasoningItem):
            return None
        progress.text += event.delta
        return ReasoningItem(
            id=reasoning.id, summary=[SummaryText(text=progress.text)], status="in_progress"
        )

    def _on_call_output(self, event: ToolCallOutput) -> FunctionCallOutputItem:
        return event.output

    def _on_terminal(self, event: object) -> None:
        self._items.clear()


_SnapshotHandler: TypeAlias = "Callable[[ItemSnapshotter, Any], Snapshot | None]"
_SNAPSHOT_HANDLERS: Final[dict[type, _SnapshotHandler]] = {
    OutputItemAdded: ItemSnapshotter._on_added,
    OutputItemDone: ItemSnapshotter._on_item_done,
    OutputTextDelta: ItemSnapshotter._on_text_delta,
    FunctionCallArgumentsDelta: ItemSnapshotter._on_arguments_delta,
    ReasoningTextDelta: ItemSnapshotter._on_reasoning_delta,
    ToolCallOutput: ItemSnapshotter._on_call_output,
    ResponseCompleted: ItemSnapshotter._on_terminal,
    ResponseIncomplete: ItemSnapshotter._on_terminal,
    ResponseFailed: ItemSnapshotter._on_terminal,
}
