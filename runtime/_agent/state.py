"""Conversation state: a paused, interrupted or finished conversation, as one versioned document.

Sans-io: stdlib, msgspec and the layers below. The stores that keep a state
somewhere (memory, a JSON file, Redis) live above; the session actor decides
when to save. This module says what a state *is* and how decisions change it.

Rules (spec/callmodel.md §3.13, and the SDK defects of issue 12 we do not copy):

1. **One versioned document.** :class:`ConversationState` is a frozen msgspec
   Struct with ``version`` (:data:`CONVERSATION_STATE_VERSION`). A document
   without ``version`` is read as version 1; any other version raises
   :class:`UnsupportedStateVersionError`; anything malformed raises
   :class:`InvalidStateError` (never a bare ``msgspec`` error).
2. **Messages are the whole input history**, as plain JSON values, exactly as
   the server saw them: the user's own input included (typescript-agent#48),
   a string input stored as a user message (typescript-agent#61), every
   response's output items verbatim, every ``function_call_output``.
3. **Every saved state is valid to resume.** A state never holds a
   ``function_call`` in ``messages`` without its output, *except* the calls of
   a pause: those are listed in ``pending_tool_calls`` (waiting for a decision)
   and ``unsent_tool_results`` (settled, held back). When the last pending
   call is decided, every held output goes into ``messages`` in the *call
   order* of the response that asked for them, whatever order they settled in.
4. **Decisions are checked against the state.** Approving or rejecting an id
   that is not pending is a :class:`ConfigurationError` naming it; partial
   decisions keep the conversation paused (not an error); input given while it
   stays paused is queued, not lost, and sent after the tool outputs.
5. **Turn numbers continue.** ``turn`` is the number of the last turn recorded
   in ``messages`` (``-1`` for none); a resumed run's first request is turn
   ``turn + 1``.
6. **Interruption requests live outside the document** (a store's side
   channel, see ``runtime._agent.store``), so a save can never lose one.
   ``interrupted_by`` and ``partial_response`` record an interruption that
   was honoured, and are cleared when the conversation goes on.

Statuses (and what resumes them)::

    in_progress            a checkpoint between turns, or a run died    any call
    awaiting_approval      calls wait for approve/reject decisions      approve= / reject=
    awaiting_client_tools  manual tools' calls wait for their outputs   function_call_output input
    interrupted            stopped at a safe point on request           any call
    complete               the model gave its final answer              any call
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import msgspec

from runtime._agent.usage import RunUsage
from runtime._base.errors import (
    ConfigurationError,
    InvalidStateError,
    UnsupportedStateVersionError,
)
from runtime._protocol.wire import (
    FunctionCallOutputItem,
    ParsedToolCall,
)

__all__ = [
    "CONVERSATION_STATE_VERSION",
    "DEFAULT_INTERRUPT_REASON",
    "DEFAULT_REJECTION_REASON",
    "ConversationState",
    "ConversationStatus",
    "Decisions",
    "PartialResponse",
    "UnsentToolResult",
    "check_decisions",
    "check_interrupt_reason",
    "check_known_ids",
    "decode_state",
    "encode_state",
    "new_conversation_id",
    "new_conversation_state",
    "now_ms",
    "output_item",
    "pending_answers",
    "settle",
    "touch",
]

CONVERSATION_STATE_VERSION: Final = 1
"""The version of the :class:`ConversationState` format this release writes and reads."""

DEFAULT_REJECTION_REASON: Final = "Tool call rejected by user"
"""What the model reads (as ``{"error": ...}``) for a call rejected without a reason."""

ConversationStatus = Literal[
    "in_progress", "awaiting_approval", "awaiting_client_tools", "interrupted", "complete"
]

_ENCODER: Final = msgspec.json.Encoder()
_JSON: Final = msgspec.json.Decoder()


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds (the state's timestamps)."""
    return time.time_ns() // 1_000_000


def new_conversation_id() -> str:
    """A fresh conversation id, ``conv_`` and 32 hex digits."""
    return f"conv_{uuid.uuid4().hex}"


class UnsentToolResult(msgspec.Struct, frozen=True, kw_only=True):
    """A settled call of a paused round, held back until every call of the round is settled.

    Attributes:
        call_id: the wire ``call_id``.
        name: the tool's name.
        output: the ``function_call_output`` string the model will read.
        error: the error message when the call failed or was rejected.
    """

    call_id: str
    name: str
    output: str
    error: str | None = None


class PartialResponse(msgspec.Struct, frozen=True, kw_only=True):
    """What the response in hand held when an interruption was honoured.

    Attributes:
        text: its text.
        tool_calls: its function calls (each answered in ``messages``).
    """

    text: str = ""
    tool_calls: list[ParsedToolCall] = msgspec.field(default_factory=list)


DEFAULT_INTERRUPT_REASON: Final = "interrupted"
"""The reason an interruption request gives when none is named."""


def check_interrupt_reason(reason: object) -> str:
    """An interruption request's reason, or a ``ConfigurationError`` naming the value."""
    if not isinstance(reason, str) or not reason:
        raise ConfigurationError(f"interrupt reason must be a non-empty string, got {reason!r}")
    return reason


class ConversationState(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation as it is saved between runs (and between turns).

    Build a fresh one with :func:`new_conversation_state`; read one with
    :func:`decode_state`; write one with :func:`encode_state`. Every field is
    plain data, so any store can keep it as JSON.

    Attributes:
        id: ``conv_…``, fixed for the conversation's life.
        version: the format version (:data:`CONVERSATION_STATE_VERSION`).
        status: see the module table.
        messages: the input history the server has seen (rule 2).
        turn: the number of the last turn recorded in ``messages``; ``-1`` for none.
        previous_response_id: the id of the last response.
        pending_tool_calls: calls waiting for a decision or an output, in call order.
        unsent_tool_results: settled calls of the paused round, held back (rule 3).
        queued_input: input given while the conversation stayed paused.
        context: the tool contexts by tool name, and the shared one under
            ``"shared"``, as JSON objects.
        usage: usage summed over every model call of the conversation.
        partial_response: what an honoured interruption stopped on.
        interrupted_by: the reason given for that interruption.
        created_at: epoch milliseconds.
        updated_at: epoch milliseconds of the last change.
    """

    id: str
    version: int = CONVERSATION_STATE_VERSION
    status: ConversationStatus = "in_progress"
    messages: list[Any] = msgspec.field(default_factory=list)
    turn: int = -1
    previous_response_id: str | None = None
    pending_tool_calls: list[ParsedToolCall] = msgspec.field(default_factory=list)
    unsent_tool_results: list[UnsentToolResult] = msgspec.field(default_factory=list)
    queued_input: list[Any] = msgspec.field(default_factory=list)
    context: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    usage: RunUsage = msgspec.field(default_factory=RunUsage)
    partial_response: PartialResponse | None = None
    interrupted_by: str | None = None
    created_at: int = 0
    updated_at: int = 0

    @property
    def paused(self) -> bool:
        """Whether calls wait for decisions or outputs (``awaiting_*``)."""
        return self.status in ("awaiting_approval", "awaiting_client_tools")


def new_conversation_state(conversation_id: str | None = None) -> ConversationState:
    """A fresh, empty conversation (status ``in_progress``, no messages)."""
    stamp = now_ms()
    return ConversationState(
        id=conversation_id if conversation_id is not None else new_conversation_id(),
        created_at=stamp,
        updated_at=stamp,
    )


def touch(state: ConversationState, **changes: Any) -> ConversationState:
    """``state`` with ``changes`` applied and ``updated_at`` refreshed (never earlier)."""
    return msgspec.structs.replace(state, updated_at=max(now_ms(), state.updated_at), **changes)


def encode_state(state: ConversationState) -> bytes:
    """The JSON document of a state (``version`` always written)."""
    return _ENCODER.encode(state)


def decode_state(data: bytes | str | Mapping[str, Any]) -> ConversationState:
    """Read a state document (JSON bytes or text, or an already decoded mapping).

    A document without ``version`` is read as version 1.

    Raises:
        UnsupportedStateVersionError: the document has another ``version``.
        InvalidStateError: the document is not a JSON object shaped like a
            :class:`ConversationState`; the message says what is wrong.
    """
    if isinstance(data, bytes | str):
        try:
            raw: Any = _JSON.decode(data)
        except msgspec.DecodeError as exc:
            raise InvalidStateError(f"the conversation state is not valid JSON: {exc}") from None
    else:
        raw = data
    if not isinstance(raw, Mapping):
        raise InvalidStateError(
            f"the conversation state must be a JSON object, got {type(raw).__name__}"
        )
    version = raw.get("version", CONVERSATION_STATE_VERSION)
    if version != CONVERSATION_STATE_VERSION or isinstance(version, bool):
        raise UnsupportedStateVersionError(
            f"conversation state version {version!r} is not supported; "
            f"this release reads version {CONVERSATION_STATE_VERSION}",
            version=version,
        )
    try:
        return msgspec.convert(
            {**raw, "version": CONVERSATION_STATE_VERSION}, ConversationState, strict=True
        )
    except msgspec.ValidationError as exc:
        raise InvalidStateError(f"the conversation state is malformed: {exc}") from None


# --- decisions ---------------------------------------------------------------------


class Decisions(msgspec.Struct, frozen=True, kw_only=True):
    """What a resuming call decides about pending calls: ids to run and ids to refuse.

    Attributes:
        approve: call ids to run, in the caller's order (duplicates dropped).
        reject: call id → the reason the model reads as ``{"error": reason}``.
    """

    approve: tuple[str, ...] = ()
    reject: dict[str, str] = msgspec.field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.approve or self.reject)


def check_decisions(approve: Any, reject: Any) -> Decisions:
    """Check ``call_model(approve=..., reject=...)`` before any I/O.

    ``approve`` is a sequence of call ids; ``reject`` a sequence of call ids
    (rejected with :data:`DEFAULT_REJECTION_REASON`) or a mapping of call id
    to reason.

    Raises:
        ConfigurationError: a value has the wrong type, an id is empty, or an
            id is both approved and rejected.
    """
    approved: list[str] = []
    for call_id in _id_list("approve", approve):
        if call_id not in approved:
            approved.append(call_id)
    rejected: dict[str, str] = {}
    if isinstance(reject, Mapping):
        for call_id, reason in reject.items():
            _check_id("reject", call_id)
            if reason is None:
                reason = DEFAULT_REJECTION_REASON
            if not isinstance(reason, str):
                raise ConfigurationError(
                    f"reject reason for {call_id!r} must be a string, got {reason!r}"
                )
            rejected[call_id] = reason or DEFAULT_REJECTION_REASON
    else:
        for call_id in _id_list("reject", reject):
            rejected[call_id] = DEFAULT_REJECTION_REASON
    both = [call_id for call_id in approved if call_id in rejected]
    if both:
        raise ConfigurationError(f"tool call id {both[0]!r} is both approved and rejected")
    return Decisions(approve=tuple(approved), reject=rejected)


def _check_id(what: str, call_id: object) -> str:
    if not isinstance(call_id, str) or not call_id:
        raise ConfigurationError(f"{what} must hold tool call ids (strings), got {call_id!r}")
    return call_id


def _id_list(what: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        raise ConfigurationError(f"{what} must be a list of tool call ids, got {value!r}")
    return [_check_id(what, call_id) for call_id in value]


def output_item(call_id: str, output: str) -> dict[str, Any]:
    """The ``function_call_output`` input item for a call, as a plain JSON value."""
    item = FunctionCallOutputItem(call_id=call_id, output=output, id=f"output_{call_id}")
    built: dict[str, Any] = msgspec.to_builtins(item)
    return built


def pending_answers(
    state: ConversationState, items: Sequence[Any]
) -> tuple[dict[str, str], list[Any]]:
    """Split new input into outputs answering pending calls and everything else.

    A ``function_call_output`` item whose ``call_id`` is pending answers that
    call (this is how the caller answers a manual tool). Other items are kept,
    in order.

    Returns:
        ``({call_id: output string}, other items)``.
    """
    pending = {call.id for call in state.pending_tool_calls}
    answers: dict[str, str] = {}
    rest: list[Any] = []
    for item in items:
        if (
            isinstance(item, Mapping)
            and item.get("type") == "function_call_output"
            and item.get("call_id") in pending
        ):
            output = item.get("output")
            answers[item["call_id"]] = (
                output if isinstance(output, str) else _ENCODER.encode(output).decode()
            )
        else:
            rest.append(item)
    return answers, rest


def check_known_ids(state: ConversationState, decisions: Decisions) -> None:
    """Every decided id must be pending in ``state``.

    Raises:
        ConfigurationError: naming the first unknown id and the pending ones.
    """
    pending = [call.id for call in state.pending_tool_calls]
    for what, ids in (("approve", decisions.approve), ("reject", tuple(decisions.reject))):
        for call_id in ids:
            if call_id not in pending:
                raise ConfigurationError(
                    f"{what} names tool call id {call_id!r}, which is not pending in conversation "
                    f"{state.id!r} (status {state.status!r}; pending: {pending!r})"
                )


def settle(
    state: ConversationState, settled: Sequence[UnsentToolResult], new_input: Sequence[Any]
) -> ConversationState:
    """Record settled calls of a paused round, and resume when none is left pending.

    While some call is still pending, ``settled`` joins ``unsent_tool_results``
    and ``new_input`` joins ``queued_input``; the status is unchanged. When none
    is left, every held output goes into ``messages`` in the call order of the
    round (the order of its ``function_call`` items in ``messages``), then the
    queued input, then ``new_input``; the status becomes ``in_progress``.
    """
    done = {result.call_id for result in settled}
    pending = [call for call in state.pending_tool_calls if call.id not in done]
    unsent = [*state.unsent_tool_results, *settled]
    queued = [*state.queued_input, *new_input]
    if pending:
        return touch(
            state, pending_tool_calls=pending, unsent_tool_results=unsent, queued_input=queued
        )
    by_id = {result.call_id: result for result in unsent}
    outputs: list[Any] = []
    for item in state.messages:
        if isinstance(item, Mapping) and item.get("type") == "function_call":
            result = by_id.pop(item.get("call_id"), None)  # type: ignore[arg-type]
            if result is not None:
                outputs.append(output_item(result.call_id, result.output))
    # Results whose call is not in ``messages`` (should not happen) still go back.
    outputs.extend(output_item(r.call_id, r.output) for r in by_id.values())
    return touch(
        state,
        status="in_progress",
        messages=[*state.messages, *outputs, *queued],
        pending_tool_calls=[],
        unsent_tool_results=[],
        queued_input=[],
    )
