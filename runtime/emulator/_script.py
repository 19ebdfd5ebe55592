"""What a scripted model call looks like: turns, tool calls, usage, faults.

This module holds the *data* of the emulator's scripting interface, nothing else:
frozen msgspec Structs that a test builds (or decodes from JSON) and hands to an
:class:`~runtime.emulator.Emulator`, plus :func:`parse_fault`, the parser for the
compact fault syntax used in model-name suffixes and the ``X-Emulator-Fault``
header.

Invariants:

* Every Struct is frozen; the emulator keeps the mutable consumption state
  (which turn is next, how often a fault fired) on its own side.
* Construction validates eagerly: a bad value raises
  :class:`~runtime._base.errors.ConfigurationError` naming it, before any request.
* Text, reasoning and tool-call arguments are given as *chunks*: each chunk
  becomes one delta event on the wire, so a test controls the exact split.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from runtime._base.errors import ConfigurationError

__all__ = [
    "Fault",
    "Pricing",
    "Script",
    "ToolCall",
    "Turn",
    "TurnError",
    "TurnUsage",
    "parse_fault",
]

_ERROR_STATUSES = range(400, 600)


class _Data(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of the scripting Structs: frozen, keyword-only, compact when encoded."""


class Fault(_Data, frozen=True, kw_only=True, omit_defaults=True):
    """Something to go wrong with one response, chosen per request or per turn.

    Status faults (``status``) replace the whole answer by an error body; the
    other fields damage a stream that otherwise proceeds normally. Counts of
    "data events" include every ``data:`` line before the fault point
    (``response.created`` is event 0) but not keep-alive comments.

    Attributes:
        status: answer with this HTTP error status (400-599) and an error body
            shaped as OpenRouter's (§10.1 of the wire protocol).
        retry_after: seconds for a ``Retry-After`` header (sent as an integer,
            rounded up); 429 and 503 get ``1`` when this is not given.
        times: fault only the first ``times`` matching requests, then behave
            normally ("fail the first N requests then succeed"); ``None``
            means every request. On a script turn a *status* fault holds the
            turn back: it answers the error and stays queued (for ever without
            ``times``; with ``times=N`` it is then served, or dropped in favour
            of the next turn when it has no text, reasoning, tool calls or
            status of its own). Any other fault damages the turn's delivery:
            once (consuming it) without ``times``, N times before a clean one
            with ``times=N``.
        key: name of the counter ``times`` is counted on (header and model
            suffix faults); by default the fault text itself. Script turns
            count on the turn.
        delay: seconds to wait before the response headers.
        slow: seconds to wait before each data event.
        drop_after: close the connection abruptly after this many data events
            (no terminal event, no ``[DONE]``, an incomplete chunked body).
        fail_after: after this many data events send ``response.failed``
            (chat: an in-band error chunk) and end the stream.
        error_after: after this many data events send an ``error`` event and
            end the stream.
        malformed_after: after this many data events send a ``data:`` line
            whose JSON is cut short, then carry on.
        hang: after the terminal event keep the connection open: no
            ``[DONE]``, no end of body, until the client goes away.
        no_done: end the stream without ``data: [DONE]`` (EOF right after the
            terminal event).
        json_body: answer with a JSON body even when ``stream: true`` was asked.
        bad_tool_arguments: function-call arguments are not valid JSON.
        chunk_size: re-split the body into pieces of exactly this many bytes
            (the last may be shorter), across event and UTF-8 boundaries.
        coalesce: write everything that is ready as one chunk (only delays
            split chunks); ``None`` keeps the emulator's setting.
    """

    status: int | None = None
    retry_after: float | None = None
    times: int | None = None
    key: str | None = None
    delay: float = 0.0
    slow: float = 0.0
    drop_after: int | None = None
    fail_after: int | None = None
    error_after: int | None = None
    malformed_after: int | None = None
    hang: bool = False
    no_done: bool = False
    json_body: bool = False
    bad_tool_arguments: bool = False
    chunk_size: int | None = None
    coalesce: bool | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in _ERROR_STATUSES:
            raise ConfigurationError(f"fault status {self.status!r} is not an HTTP error status")
        for name in ("retry_after", "delay", "slow"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"fault {name} {value!r} is negative")
        for name in ("times", "drop_after", "fail_after", "error_after", "malformed_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"fault {name} {value!r} is negative")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ConfigurationError(f"fault chunk_size {self.chunk_size!r} is not positive")

    def merged(self, other: Fault | None) -> Fault:
        """This fault with every field that ``other`` sets explicitly taking precedence."""
        if other is None:
            return self
        changes = {
            field: getattr(other, field)
            for field in other.__struct_fields__
            if getattr(other, field) != _DEFAULT_FAULT_VALUES[field]
        }
        return msgspec.structs.replace(self, **changes)


_DEFAULT_FAULT_VALUES = {field: getattr(Fault(), field) for field in Fault.__struct_fields__}


class ToolCall(_Data, frozen=True, kw_only=True, omit_defaults=True):
    """A function call the scripted model makes.

    Attributes:
        name: the function's name.
        arguments: the JSON arguments as chunks; each chunk is one
            ``response.function_call_arguments.delta``. Joined, they are the
            full ``arguments`` string (which need not be valid JSON).
        call_id: the ``call_id`` to use; generated (``call_emu…``) when ``None``.
    """

    name: str
    arguments: tuple[str, ...] = ("{}",)
    call_id: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigurationError(f"tool call name {self.name!r} is empty")

    @property
    def full_arguments(self) -> str:
        """The whole arguments string (the chunks joined)."""
        return "".join(self.arguments)


class TurnUsage(_Data, frozen=True, kw_only=True, omit_defaults=True):
    """Usage numbers that replace the emulator's own count for one turn.

    Every field left ``None`` is computed as usual (about four characters per
    token; cost from the model's price table).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int = 0
    cost: float | None = None

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens", "cost"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"turn usage {name} {value!r} is negative")


class TurnError(_Data, frozen=True, kw_only=True, omit_defaults=True):
    """The in-band failure of a ``status="failed"`` turn.

    Attributes:
        message: the human-readable message.
        code: the Responses ``error.code`` (a lossy string such as ``server_error``).
        error_type: OpenRouter's canonical ``error_type`` (§10.3).
        status_code: the HTTP-like integer used for the chat error chunk.
    """

    message: str = "The emulated provider failed while generating."
    code: str = "server_error"
    error_type: str = "server"
    status_code: int = 502


class Turn(_Data, frozen=True, kw_only=True, omit_defaults=True):
    """One model call's answer.

    Output items are emitted in this order: reasoning (if any), the assistant
    message (if there is text, or nothing else), then one function call per
    entry of ``tool_calls``.

    Attributes:
        text: the answer text as chunks (one delta event per chunk).
        reasoning: reasoning text as chunks.
        reasoning_style: ``"text"`` streams ``response.reasoning_text.*``;
            ``"summary"`` streams ``response.reasoning_summary_*`` events.
        tool_calls: function calls, one output item each.
        status: ``"completed"``, ``"incomplete"`` (see ``incomplete_reason``)
            or ``"failed"`` (see ``error``): the terminal event.
        incomplete_reason: ``incomplete_details.reason`` of an incomplete turn.
        error: the failure of a failed turn (a default one when ``None``).
        usage: numbers that replace the computed usage.
        fault: a fault applied when this turn is served.
        model: the ``model`` reported in the response (default: the requested one).
        phase: the assistant message's ``phase`` (``commentary``/``final_answer``).
    """

    text: tuple[str, ...] = ()
    reasoning: tuple[str, ...] = ()
    reasoning_style: Literal["text", "summary"] = "text"
    tool_calls: tuple[ToolCall, ...] = ()
    status: Literal["completed", "incomplete", "failed"] = "completed"
    incomplete_reason: Literal["max_output_tokens", "content_filter"] = "max_output_tokens"
    error: TurnError | None = None
    usage: TurnUsage | None = None
    fault: Fault | None = None
    model: str | None = None
    phase: Literal["commentary", "final_answer"] | None = None

    @property
    def full_text(self) -> str:
        """The whole answer text (the chunks joined)."""
        return "".join(self.text)

    @property
    def full_reasoning(self) -> str:
        """The whole reasoning text (the chunks joined)."""
        return "".join(self.reasoning)

    @property
    def has_message(self) -> bool:
        """Whether the turn has an assistant message item (text, or no other output)."""
        return bool(self.text) or not (self.tool_calls or self.reasoning)


class Pricing(_Data, frozen=True, kw_only=True, omit_defaults=True):
    """Prices in USD per single token, as decimal strings (the ``/models`` format)."""

    prompt: str = "0.000001"
    completion: str = "0.000002"

    def __post_init__(self) -> None:
        for name in ("prompt", "completion"):
            value = getattr(self, name)
            try:
                number = float(value)
            except ValueError:
                raise ConfigurationError(f"price {value!r} is not a decimal number") from None
            if number < 0:
                raise ConfigurationError(f"price {value!r} is negative")


class Script(_Data, frozen=True, kw_only=True, omit_defaults=True):
    """A queue of turns served one per model call, in order.

    Attributes:
        turns: the answers, consumed front to back.
        loop: start over from the first turn when the queue runs out
            (otherwise a request to an exhausted script is answered 400).
        pricing: the script's price table (used for ``cost`` and ``/models``).
        description: shown in ``/models``.
    """

    turns: tuple[Turn, ...] = ()
    loop: bool = False
    pricing: Pricing = Pricing()
    description: str = "A scripted emulator model."

    def __post_init__(self) -> None:
        if self.loop and not self.turns:
            raise ConfigurationError("a looping script needs at least one turn")


# ---------------------------------------------------------------------------
# The compact fault syntax: "429,retry-after=2,times=3", "slow=0.05,drop-after=4".

_INT_CLAUSES = {
    "times": "times",
    "drop-after": "drop_after",
    "fail-after": "fail_after",
    "error-after": "error_after",
    "malformed-after": "malformed_after",
    "chunk": "chunk_size",
    "status": "status",
}
_FLOAT_CLAUSES = {"retry-after": "retry_after", "delay": "delay", "slow": "slow"}
_FLAG_CLAUSES = {
    "hang": "hang",
    "no-done": "no_done",
    "json-body": "json_body",
    "bad-tool-args": "bad_tool_arguments",
    "coalesce": "coalesce",
}
_OPTIONAL_INT_CLAUSES = {"malformed-after": 0}


def parse_fault(text: str) -> Fault:
    """Parse the compact fault syntax of model suffixes and ``X-Emulator-Fault``.

    The text is a comma-separated list of clauses. A bare HTTP error status
    (``429``) is ``status=429``. The other clauses are ``retry-after=<s>``,
    ``times=<n>``, ``key=<name>``, ``delay=<s>``, ``slow=<s>``,
    ``drop-after=<n>``, ``fail-after=<n>``, ``error-after=<n>``,
    ``malformed-after[=<n>]``, ``chunk=<bytes>`` and the flags ``hang``,
    ``no-done``, ``json-body``, ``bad-tool-args``, ``coalesce``.

    Example: ``"503,retry-after=2,times=2"`` answers 503 with ``Retry-After: 2``
    to the first two matching requests, then lets the third succeed.

    Raises:
        ConfigurationError: a clause is unknown or its value is malformed.
    """
    fields: dict[str, Any] = {}
    for raw_clause in text.split(","):
        clause = raw_clause.strip()
        if not clause:
            continue
        name, sep, value = clause.partition("=")
        name = name.strip().lower()
        value = value.strip()
        if name.isdigit() and not sep:
            fields["status"] = int(name)
        elif name == "key" and sep and value:
            fields["key"] = value
        elif name in _FLAG_CLAUSES and not sep:
            fields[_FLAG_CLAUSES[name]] = True
        elif name in _OPTIONAL_INT_CLAUSES and not sep:
            fields[_INT_CLAUSES[name]] = _OPTIONAL_INT_CLAUSES[name]
        elif name in _INT_CLAUSES and sep:
            try:
                fields[_INT_CLAUSES[name]] = int(value)
            except ValueError:
                raise ConfigurationError(f"fault clause {clause!r} needs a whole number") from None
        elif name in _FLOAT_CLAUSES and sep:
            try:
                fields[_FLOAT_CLAUSES[name]] = float(value)
            except ValueError:
                raise ConfigurationError(f"fault clause {clause!r} needs a number") from None
        else:
            raise ConfigurationError(f"fault clause {clause!r} is not understood")
    if not fields:
        raise ConfigurationError(f"fault {text!r} has no clauses")
    return Fault(**fields)
