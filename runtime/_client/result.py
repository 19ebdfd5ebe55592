"""``ModelResult``: the handle of one agent run, and the typed stream views over its log.

A run writes one EventLog (seq-numbered, append-only). Every consumer method
attaches its own cursor, so any number of consumers, started at any time, each
see every event from seq 0 (DESIGN §4.3: late streams always get a full
replay). A stream is read by the caller's own task, straight from its cursor:
there is no extra task or channel hop per event.

Iteration cost: each view pulls a *batch* of events from its cursor (one
checkpoint per batch) and then filters it in plain Python; ``__anext__`` only
awaits when its batch is used up. So a stream is a checkpoint at least once
per batch (at most ``BATCH_LIMIT`` events), not once per event.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any, Final, Generic, Self, TypeVar, final

import msgspec
import trio

from runtime._agent.partial_json import NOTHING, PartialJSON, PartialJSONError
from runtime._base.errors import ConfigurationError, RunCancelled, RunError
from runtime._base.groups import unwrap_lone_exception
from runtime._protocol.assembly import ItemSnapshotter, ToolCallAssembler
from runtime._protocol.events import (
    FunctionCallArgumentsDelta,
    OutputItemDone,
    OutputTextDelta,
    ReasoningTextDelta,
    ToolCallOutput,
    ToolPreliminaryResult,
    TurnStart,
)
from runtime._protocol.wire import (
    FunctionCallItem,
    OutputMessage,
    ParsedToolCall,
    Response,
    parse_tool_calls,
    response_text,
)
from runtime._run.cursor import BATCH_LIMIT
from runtime._run.eventlog import EventLog
from runtime._run.status import RunSnapshot, RunSpec, RunState, RunUsage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

    from runtime._agent.context import ContextUpdate
    from runtime._agent.state import ConversationState
    from runtime._run.cursor import Cursor
    from runtime._run.retention import Retention

    Runner = Callable[[RunSpec, RunState, EventLog[Any]], Awaitable[None]]

__all__ = ["ModelResult", "ResultStream"]

T = TypeVar("T")


_SKIP: Final = object()


class ResultStream(Generic[T]):
    """An async iterator over one view of a run's events.

    Own cursor, own position: breaking out of one stream never affects another.
    Use ``async with`` (or ``aclose()``) to detach promptly; a stream that is
    dropped detaches when it is garbage collected. After the run failed, the
    stream yields every event received before the failure and then raises the
    run's error; after ``cancel()`` it simply ends.
    """

    __slots__ = ("_batch", "_cursor", "_index", "_map")

    def __init__(self, cursor: Cursor[Any], select: Callable[[Any], Any]) -> None:
        self._cursor = cursor
        self._map = select
        self._batch: list[Any] = []
        self._index = 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        batch = self._batch
        i = self._index
        select = self._map
        while True:
            n = len(batch)
            while i < n:
                value = select(batch[i])
                i += 1
                if value is not _SKIP:
                    self._index = i
                    return value  # type: ignore[no-any-return]
            batch = await self._next_batch()
            i = 0

    async def _next_batch(self) -> list[Any]:
        """The next batch from the cursor (one checkpoint); the end of the stream at the end."""
        try:
            batch = await self._cursor.receive_batch(BATCH_LIMIT)
        except trio.EndOfChannel:
            self._batch = []
            self._index = 0
            self._cursor.close()
            raise StopAsyncIteration from None
        self._batch = batch
        return batch

    async def aclose(self) -> None:
        """Detach from the run's log. A checkpoint; idempotent."""
        self._cursor.close()
        await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cursor.close()

    def __del__(self) -> None:
        cursor = getattr(self, "_cursor", None)
        if cursor is not None:
            cursor.close()


@final
class _TextStream(ResultStream[str]):
    """``get_text_stream()``: the hottest view, with the filter inlined."""

    __slots__ = ()

    async def __anext__(self) -> str:
        batch = self._batch
        i = self._index
        while True:
            n = len(batch)
            while i < n:
                event = batch[i]
                i += 1
                if type(event) is OutputTextDelta and event.delta:
                    self._index = i
                    return event.delta
            batch = await self._next_batch()
            i = 0


@final
class _ToolStream(ResultStream[FunctionCallArgumentsDelta | ToolPreliminaryResult]):
    """``get_tool_stream()``: argument deltas and preliminary results, filter inlined."""

    __slots__ = ()

    async def __anext__(self) -> FunctionCallArgumentsDelta | ToolPreliminaryResult:
        batch = self._batch
        i = self._index
        while True:
            n = len(batch)
            while i < n:
                event = batch[i]
                i += 1
                kind = type(event)
                if (kind is FunctionCallArgumentsDelta and event.delta) or (
                    kind is ToolPreliminaryResult
                ):
                    self._index = i
                    return event  # type: ignore[no-any-return]
            batch = await self._next_batch()
            i = 0


class _OutputStream(ResultStream[Any]):
    """``get_output_stream()``: text deltas through a partial-JSON parser, one per turn."""

    __slots__ = ("_fence", "_parser", "_seen")

    def __init__(self, cursor: Cursor[Any]) -> None:
        super().__init__(cursor, self._select)
        self._parser: PartialJSON | None = PartialJSON()
        self._seen = -1
        self._fence: str | None = ""  # text before the JSON, to skip a Markdown fence

    def _select(self, event: Any) -> Any:
        kind = type(event)
        if kind is TurnStart:
            self._parser = PartialJSON()
            self._seen = -1
            self._fence = ""
            return _SKIP
        if kind is not OutputTextDelta or self._parser is None or not event.delta:
            return _SKIP
        delta = event.delta
        if self._fence is not None:
            # Until the JSON starts, drop a leading ```json line some models add.
            self._fence += delta
            head = self._fence.lstrip()
            if not head or ("```".startswith(head[:3]) and "\n" not in head):
                return _SKIP
            delta = head.split("\n", 1)[1] if head.startswith("```") else head
            self._fence = None
        parser = self._parser
        try:
            parser.feed(delta)
        except PartialJSONError:
            self._parser = None  # not JSON (or a closing fence after it): nothing more
            return _SKIP
        if parser.version == self._seen or parser.value is NOTHING:
            return _SKIP
        self._seen = parser.version
        return parser.snapshot()


def _identity(event: Any) -> Any:
    return event


def _reasoning(event: Any) -> Any:
    if type(event) is ReasoningTextDelta and event.delta:
        return event.delta
    return _SKIP


@final
class ModelResult:
    """The result of ``client.call_model(...)``: lazy, shareable, cancellable.

    Nothing happens until the first consumer method is called (or the result is
    entered with ``async with``); then the run starts as a task of the client's
    nursery (or of the ``async with`` block), exactly once, however many
    consumers there are. Every method may be called from any task, any number of
    times, before, during or after the run.

    Example::

        async with OpenRouter() as client:
            result = client.call_model(model="openai/gpt-5", input="Hello")
            async for delta in result.get_text_stream():
                print(delta, end="")
            usage = await result.get_usage()
    """

    def __init__(
        self,
        *,
        spec: RunSpec,
        runner: Runner,
        spawn: Callable[[Callable[[], Any]], None],
        retention: Retention,
    ) -> None:
        self._spec = spec
        self._runner = runner
        self._spawn = spawn
        self._log: EventLog[Any] = EventLog(retention=retention)
        self._state = RunState()
        self._cancel_scope = trio.CancelScope()
        self._started = False
        self._stack: contextlib.AsyncExitStack | None = None
        self._id = f"run_{secrets.token_hex(8)}"
        self._state.run_id = self._id

    def __repr__(self) -> str:
        model = self._spec.request.get("model", "?")
        return (
            f"<ModelResult model={model!r} status={self._state.status!r} turn={self._state.turn}>"
        )

    # -- introspection ------------------------------------------------------

    @property
    def id(self) -> str:
        """A unique id for this run (``run_<hex>``), used by the registry and the feed."""
        return self._id

    @property
    def started(self) -> bool:
        """Whether the run has been started (or cancelled before starting)."""
        return self._started

    def snapshot(self) -> RunSnapshot:
        """The run's live status, turn, usage and log position; not a checkpoint."""
        state = self._state
        model = self._spec.request.get("model")
        return RunSnapshot(
            id=self._id,
            model=model if isinstance(model, str) else None,
            status=state.status,
            turn=state.turn,
            usage=state.usage,
            tool_calls_executed=state.tool_calls_executed,
            next_seq=self._log.next_seq,
            error=None if state.error is None else state.redact(repr(state.error)),
            conversation_id=None if state.conversation is None else state.conversation.id,
            conversation_status=None if state.conversation is None else state.conversation.status,
            pending_tool_calls=list(state.pending_tool_calls),
            trace_id=state.trace_id,
        )

    @property
    def trace_id(self) -> str | None:
        """The OpenTelemetry trace id of this run (32 hex digits), or ``None``.

        Set when the run starts, if the application installed an
        OpenTelemetry SDK tracer provider (the run is then one
        ``invoke_agent`` span, its turns, model calls and tool calls child
        spans); ``None`` before that and without an SDK. Snapshots (and so
        registry updates and the websocket feed) carry it too.
        """
        return self._state.trace_id

    def events(self, from_seq: int = 0) -> Cursor[Any]:
        """Attach a raw cursor to the run's event log, starting at ``from_seq``.

        Starts the run if it has not started. The caller owns the cursor and
        must close it (``async with`` or ``aclose()``). Used by the websocket
        feed; most users want one of the typed streams instead.
        """
        self._ensure_started()
        return self._log.cursor(from_seq)

    async def wait_done(self) -> None:
        """Wait until the run has ended, however it ended (never raises its error)."""
        await self._wait()

    # -- lifecycle ----------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        """Whether ``cancel()`` was called (the run may still be winding down)."""
        return self._cancel_scope.cancel_called

    def _start_via(self, spawn: Callable[[Callable[[], Any]], None]) -> None:
        """Start the run through ``spawn`` instead of the client's nursery.

        For a session pool, which holds the run's task until it is admitted.
        From here on the run counts as started: consumers attach and wait.
        """
        if self._started:
            raise ConfigurationError(f"{self!r} has already started; a pool needs a fresh result")
        self._spawn = spawn
        self._ensure_started()

    def _durable(self, run_id: str, **hooks: Any) -> None:
        """Make this (not yet started) result a durable run's attempt in a worker.

        The seam for Redis workers (DESIGN §8): the run takes the id it was
        submitted under, and ``hooks`` set ``RunSpec``'s ``checkpoint``,
        ``resume``, ``resumed`` and ``tool_guard``.
        """
        if self._started:
            raise ConfigurationError(f"{self!r} has already started; a worker needs a fresh one")
        self._id = self._state.run_id = run_id
        self._spec = msgspec.structs.replace(self._spec, **hooks)

    def _abandon(self) -> None:
        """End a run whose task never ran, exactly as a cancel before start does."""
        self._cancel_scope.cancel()
        self._state.move_to("cancelled")
        if not self._log.closed:
            self._log.close()
        self._state.mark_done()

    def _fail(self, exc: Exception) -> None:
        """Record a failure that escaped the runner, as the runner records one."""
        self._state.error = exc
        self._state.move_to("failed")
        if not self._log.closed:
            self._log.close(exc)
        self._state.mark_done()

    def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            self._spawn(self._run)

    async def _run(self) -> None:
        with self._cancel_scope:
            await self._runner(self._spec, self._state, self._log)
        if self._cancel_scope.cancelled_caught and not self._log.closed:
            self._state.move_to("cancelled")
            self._log.close()

    async def __aenter__(self) -> Self:
        if self._started:
            raise ConfigurationError(
                "this ModelResult has already started; enter it before using it"
            )
        stack = contextlib.AsyncExitStack()
        nursery = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack
        self._started = True
        nursery.start_soon(self._run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Leaving the block cancels the run if it is still going, and waits for it."""
        self.cancel()
        assert self._stack is not None
        with unwrap_lone_exception():
            return await self._stack.__aexit__(exc_type, exc, tb)

    def cancel(self) -> None:
        """Cancel the whole run: the in-flight request, running tools, every consumer.

        Not a checkpoint; returns at once. Consumers waiting on a stream end
        cleanly; ``get_text()`` and friends raise ``RunCancelled``. A no-op after
        the run finished. Cancelling before the run started means it never starts.
        """
        self._cancel_scope.cancel()
        if not self._started:
            self._started = True
            self._abandon()

    async def _wait(self) -> RunState:
        self._ensure_started()
        await self._state.done.wait()
        return self._state

    async def _final(self) -> Response:
        state = await self._wait()
        if state.error is not None:
            raise state.error
        if state.final_response is None:
            conversation = state.conversation
            if conversation is not None and conversation.paused and state.status == "done":
                pending = [c.id for c in conversation.pending_tool_calls]
                raise RunError(
                    f"conversation {conversation.id!r} is still {conversation.status}: this run "
                    f"applied its decisions and sent no request (pending: {pending!r})"
                )
            raise RunCancelled("the run was cancelled before it produced a response")
        return state.final_response

    # -- awaitables ---------------------------------------------------------

    async def get_text(self) -> str:
        """The text of the final response (its first message's text), after the run ends.

        Raises the run's error if it failed, ``RunCancelled`` if it was cancelled.
        A resume that left calls pending sent no request: its text is ``""``.
        """
        state = await self._wait()
        if state.final_response is None and state.error is None and state.status == "done":
            return ""
        return response_text(await self._final())

    async def get_response(self) -> Response:
        """The last model response of the run (its ``usage`` covers only that call)."""
        return await self._final()

    async def get_output(self) -> Any:
        """The final answer as the typed value ``call_model(output=...)`` asked for.

        An instance of the msgspec type, or the JSON value a JSON Schema
        validated. Raises ``ConfigurationError`` when the run has no
        ``output=``, ``StructuredOutputError`` when the answer never matched,
        the run's error if it failed, ``RunCancelled`` if it was cancelled.
        """
        if self._spec.output is None:
            raise ConfigurationError(
                "get_output() needs call_model(output=...): this run asked for no structured output"
            )
        await self._final()
        return self._state.output

    async def get_usage(self) -> RunUsage:
        """Usage and cost summed over every model call of the run.

        Waits for the run to end; never raises: after a failure or cancellation
        it reports what the completed calls used.
        """
        return (await self._wait()).usage

    async def get_tool_calls(self) -> list[ParsedToolCall]:
        """The function calls of the *initial* response, whatever the timing (spec §9.4)."""
        self._ensure_started()
        await self._state.first_response_ready.wait()
        first = self._state.first_response
        if first is None:
            if self._state.error is not None:
                raise self._state.error
            raise RunCancelled("the run was cancelled before the first response")
        return parse_tool_calls(first)

    async def get_pending_tool_calls(self) -> list[ParsedToolCall]:
        """The calls the run stopped on, in call order; ``[]`` if none.

        Calls waiting for approval (``require_approval``) and calls of manual
        tools (``execute=False``).
        """
        state = await self._wait()
        if state.error is not None:
            raise state.error
        return list(state.pending_tool_calls)

    async def requires_approval(self) -> bool:
        """Whether the run ended paused, waiting for approve/reject decisions.

        Waits for the run to end. Resume with ``call_model(state=..., approve=[...],
        reject=[...])`` and the same store.
        """
        state = await self._wait()
        if state.error is not None:
            raise state.error
        conversation = state.conversation
        return conversation is not None and conversation.status == "awaiting_approval"

    async def get_state(self) -> ConversationState | None:
        """The conversation as this run last saved it (``None`` without ``state=``).

        Waits for the run to end. After a failure or a cancellation it is the
        last checkpoint (never raises the run's error).
        """
        return (await self._wait()).conversation

    def interrupt(self, reason: str = "interrupted") -> None:
        """Stop the run at its next safe point, from any task; not a checkpoint.

        Safe points: after a response arrives (before its calls run; each
        call then reads an "interrupted" error output) and after a tool round
        (before the follow-up request). The run ends normally: streams end
        cleanly, ``get_text()`` is the text of the response in hand, and with
        ``state=`` the conversation is saved as ``interrupted`` with its
        ``partial_response``. A run that has no safe point left (its last
        response is final) completes as usual. Another process stops a run
        through its store (``store.request_interrupt(reason)``).

        Raises:
            ConfigurationError: ``reason`` is not a non-empty string.
        """
        if not isinstance(reason, str) or not reason:
            raise ConfigurationError(f"interrupt reason must be a non-empty string, got {reason!r}")
        if self._state.interrupt_reason is None:
            self._state.interrupt_reason = reason

    @property
    def interrupted_by(self) -> str | None:
        """The reason of the interruption the run stopped on, or ``None``."""
        return self._state.interrupted_by

    def get_context_updates(self) -> ResultStream[ContextUpdate]:
        """Every accepted tool-context write of the run, as it happens (full replay).

        Context values never go to the event log (nor the websocket feed).
        """
        self._ensure_started()
        return ResultStream(self._state.context_updates.cursor(0), _identity)

    async def get_conversation(self) -> list[Any]:
        """The whole input history after the run: what to send to continue it.

        The original input (a string becomes one user message), then every
        response's output items verbatim and every tool output. After a pause on
        manual tools, append their ``function_call_output`` items and pass the
        list as the next ``input``. With ``state=``, the saved conversation is
        the record (``get_state()``): after a pause for approval this history
        ends with the pending calls, whose outputs the resume adds.
        """
        state = await self._wait()
        if state.error is not None:
            raise state.error
        return list(state.history)

    # -- streams ------------------------------------------------------------

    def _cursor(self) -> Cursor[Any]:
        self._ensure_started()
        return self._log.cursor(0)

    def get_text_stream(self) -> ResultStream[str]:
        """Every non-empty ``response.output_text.delta`` of every turn, as strings."""
        return _TextStream(self._cursor(), _identity)

    def get_reasoning_stream(self) -> ResultStream[str]:
        """Every ``response.reasoning_text.delta`` of every turn, as strings."""
        return ResultStream(self._cursor(), _reasoning)

    def get_tool_stream(self) -> ResultStream[FunctionCallArgumentsDelta | ToolPreliminaryResult]:
        """Function-call argument deltas and generator tools' preliminary results, live."""
        return _ToolStream(self._cursor(), _identity)

    def get_tool_calls_stream(self) -> ResultStream[ParsedToolCall]:
        """Each function call as soon as its arguments are complete, over every turn."""
        assembler = ToolCallAssembler()

        def select(event: Any) -> Any:
            call = assembler.feed(event)
            return _SKIP if call is None else call

        return ResultStream(self._cursor(), select)

    def get_items_stream(self) -> ResultStream[Any]:
        """Cumulative snapshots of output items as they stream, and tool outputs."""
        snapshotter = ItemSnapshotter()

        def select(event: Any) -> Any:
            if type(event) is ToolCallOutput:
                return event.output
            item = snapshotter.feed(event)
            return _SKIP if item is None else item

        return ResultStream(self._cursor(), select)

    def get_new_messages_stream(self) -> ResultStream[Any]:
        """Assistant messages (in-progress snapshots, then complete), completed
        function calls, and function-call outputs, over every turn. Deprecated in
        the SDK in favour of ``get_items_stream()``; kept for parity."""
        snapshotter = ItemSnapshotter()

        def select(event: Any) -> Any:
            kind = type(event)
            if kind is ToolCallOutput:
                return event.output
            if kind is OutputItemDone:
                snapshotter.feed(event)
                item = event.item
                return item if isinstance(item, OutputMessage | FunctionCallItem) else _SKIP
            item = snapshotter.feed(event)
            return item if isinstance(item, OutputMessage) else _SKIP

        return ResultStream(self._cursor(), select)

    def get_output_stream(self) -> ResultStream[Any]:
        """Partial values of the structured answer as its JSON arrives, then the run ends.

        Each item is a fresh snapshot (dicts and lists, not the msgspec type:
        required fields may still be missing): open objects and arrays with
        the members finished so far, a string with the characters so far, a
        number once it is complete. Every model call starts over (a retry after
        a non-matching answer, or a turn after tool calls), so values can shrink
        between turns; ``get_output()`` has the checked final value. Text that
        is not JSON (a model that ignored the format) yields nothing more for
        that turn. Needs ``call_model(output=...)``.
        """
        if self._spec.output is None:
            raise ConfigurationError(
                "get_output_stream() needs call_model(output=...): this run asked for no "
                "structured output"
            )
        return _OutputStream(self._cursor())

    def get_full_responses_stream(self) -> ResultStream[Any]:
        """Every event of the run: raw API events plus turn and tool events."""
        return ResultStream(self._cursor(), _identity)
