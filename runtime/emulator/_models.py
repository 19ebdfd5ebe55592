"""The emulator's deterministic built-in models and what they read from a request.

A request (Responses, Chat or legacy Completions) is first boiled down to a
:class:`Conversation`: the last user text, the function tools offered, the tool
results that came back after the last user message, and a token count of the
prompt. A built-in model is then a pure function ``Conversation -> Turn``; the
renderers turn that :class:`~runtime.emulator._script.Turn` into wire bytes
exactly as they do for a scripted turn.

Rules every built-in follows (so tests can predict them):

1. Same request, same answer: no randomness, no clock.
2. Tokens are counted as ``ceil(len(text) / 4)`` (:func:`count_tokens`) and cost
   is ``tokens * price`` from :data:`BUILTIN_MODELS`' price table.
3. Text streams as one chunk per word (with its trailing whitespace).

The models:

``emulator/echo``
    Answers with the last user text, verbatim.
``emulator/tool-caller``
    With function tools (and ``tool_choice`` not ``"none"``) and no tool results
    since the last user message: calls every offered tool once (only the forced
    one for ``tool_choice: {type: function}``; only the first when
    ``parallel_tool_calls`` is false), with arguments built from each tool's
    JSON Schema by :func:`example_arguments`. With tool results: answers
    ``"<name> returned <output>."`` for each result, joined by spaces. Without
    tools: echoes.
``emulator/reasoning``
    Streams reasoning text, then echoes the last user text.

With a JSON response format (Responses ``text.format`` of type
``json_schema`` or ``json_object``; Chat ``response_format``), every text
answer above is JSON instead: the last user text when it is a JSON value
(verbatim, so a test chooses the answer, valid or not), else a value built from
the schema by :func:`example_arguments`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Final

import msgspec

from runtime.emulator._script import Pricing, ToolCall, Turn, TurnUsage

__all__ = [
    "BUILTIN_MODELS",
    "Conversation",
    "ModelCard",
    "ToolOutputSeen",
    "ToolSpec",
    "UsageNumbers",
    "builtin_turn",
    "chunk_words",
    "compute_usage",
    "count_tokens",
    "example_arguments",
]

_JSON_ENCODER: Final = msgspec.json.Encoder()
_WORDS: Final = re.compile(r"\s*\S+\s*|\s+")


def count_tokens(text: str) -> int:
    """The emulator's token count: one token per four characters, rounded up."""
    return (len(text) + 3) // 4


def chunk_words(text: str) -> tuple[str, ...]:
    """Split ``text`` into word chunks that join back to exactly ``text``."""
    return tuple(_WORDS.findall(text))


class UsageNumbers(msgspec.Struct, frozen=True, kw_only=True):
    """The usage and cost of one model call, before it is shaped for an endpoint.

    ``output_tokens`` includes ``reasoning_tokens`` (as OpenAI counts them);
    ``input_cost + output_cost == cost`` up to float rounding.
    """

    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    cost: float
    input_cost: float
    output_cost: float

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


def compute_usage(turn: Turn, prompt_tokens: int, pricing: Pricing) -> UsageNumbers:
    """Usage of ``turn``: counted from its text, overridden by ``turn.usage``.

    Output tokens are the text, reasoning and tool calls (name plus arguments)
    by :func:`count_tokens`; input tokens are ``prompt_tokens``; cost is the
    tokens times ``pricing`` (USD per token). A ``cost`` override is split
    between input and output in proportion to their tokens.
    """
    override = turn.usage or TurnUsage()
    reasoning = override.reasoning_tokens
    if reasoning is None:
        reasoning = count_tokens(turn.full_reasoning)
    output = override.output_tokens
    if output is None:
        output = count_tokens(turn.full_text) + reasoning
        for call in turn.tool_calls:
            output += count_tokens(call.name + call.full_arguments)
    inputs = override.input_tokens if override.input_tokens is not None else prompt_tokens
    if override.cost is None:
        input_cost = float(Decimal(pricing.prompt) * inputs)
        output_cost = float(Decimal(pricing.completion) * output)
        cost = input_cost + output_cost
    else:
        cost = override.cost
        share = inputs / (inputs + output) if inputs + output else 0.0
        input_cost = cost * share
        output_cost = cost - input_cost
    return UsageNumbers(
        input_tokens=inputs,
        output_tokens=output,
        reasoning_tokens=reasoning,
        cached_tokens=override.cached_tokens,
        cost=round(cost, 12),
        input_cost=round(input_cost, 12),
        output_cost=round(output_cost, 12),
    )


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A function tool offered in the request."""

    name: str
    parameters: Any = None


class ToolOutputSeen(msgspec.Struct, frozen=True, kw_only=True):
    """A tool output sent back after the last user message."""

    call_id: str
    name: str | None
    output: str


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    """What a built-in model reads from a request, whichever endpoint it came to.

    Attributes:
        last_user_text: the text of the last user message ("" if none).
        prompt_tokens: the prompt's size by :func:`count_tokens` (at least 1).
        tools: the function tools offered.
        tool_choice: ``"auto"``, ``"none"`` or ``"required"``.
        forced_tools: names a ``tool_choice`` object restricts calls to.
        parallel_tool_calls: ``False`` limits the tool-caller to one call.
        results: tool outputs that came after the last user message.
        max_output_tokens: the request's output cap, if any.
        output_schema: the JSON Schema a response format asks for (``{}`` for
            ``json_object``), or ``None`` for plain text.
    """

    last_user_text: str = ""
    prompt_tokens: int = 1
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"
    forced_tools: tuple[str, ...] | None = None
    parallel_tool_calls: bool = True
    results: tuple[ToolOutputSeen, ...] = ()
    earlier_results: tuple[ToolOutputSeen, ...] = ()
    max_output_tokens: int | None = None
    output_schema: dict[str, Any] | None = None


class ModelCard(msgspec.Struct, frozen=True, kw_only=True):
    """What ``GET /models`` says about one model."""

    id: str
    name: str
    description: str
    pricing: Pricing
    supported_parameters: tuple[str, ...]
    reasoning: bool = False
    context_length: int = 131072
    max_completion_tokens: int = 16384
    created: int = 1735689600


_COMMON_PARAMETERS = (
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "response_format",
    "structured_outputs",
)
_TOOL_PARAMETERS = ("tools", "tool_choice", "parallel_tool_calls")
_REASONING_PARAMETERS = ("reasoning", "include_reasoning")

BUILTIN_MODELS: Final[dict[str, ModelCard]] = {
    card.id: card
    for card in (
        ModelCard(
            id="emulator/echo",
            name="Emulator: Echo",
            description="Answers with the last user message, verbatim.",
            pricing=Pricing(prompt="0.000001", completion="0.000002"),
            supported_parameters=_COMMON_PARAMETERS,
            created=1735689600,
        ),
        ModelCard(
            id="emulator/tool-caller",
            name="Emulator: Tool caller",
            description=(
                "Calls every function tool it is given with arguments built from the "
                "tool's JSON Schema, then summarises the tool results."
            ),
            pricing=Pricing(prompt="0.000002", completion="0.000004"),
            supported_parameters=_COMMON_PARAMETERS + _TOOL_PARAMETERS,
            created=1735776000,
        ),
        ModelCard(
            id="emulator/reasoning",
            name="Emulator: Reasoning",
            description="Streams reasoning text, then answers with the last user message.",
            pricing=Pricing(prompt="0.000003", completion="0.000012"),
            supported_parameters=_COMMON_PARAMETERS + _REASONING_PARAMETERS,
            reasoning=True,
            created=1735862400,
        ),
    )
}


def builtin_turn(model: str, conversation: Conversation) -> Turn:
    """The answer of built-in ``model`` (a key of :data:`BUILTIN_MODELS`)."""
    if model == "emulator/tool-caller":
        turn = _tool_caller(conversation)
    elif model == "emulator/reasoning":
        text = conversation.last_user_text
        words = len(text.split())
        reasoning = f"The user wrote {words} word{'s' if words != 1 else ''}. I will repeat them."
        turn = Turn(text=chunk_words(text), reasoning=chunk_words(reasoning))
    else:
        turn = Turn(text=chunk_words(conversation.last_user_text))
    if conversation.output_schema is not None and not turn.tool_calls:
        turn = msgspec.structs.replace(turn, text=_json_answer(conversation))
    return _apply_output_cap(turn, conversation.max_output_tokens)


def _json_answer(conversation: Conversation) -> tuple[str, ...]:
    """A structured answer: the user's text when it is a JSON value (so a test
    chooses the answer), else :func:`example_arguments` of the schema; streamed
    in pieces like tool arguments."""
    text = conversation.last_user_text.strip()
    try:
        msgspec.json.decode(text)
    except msgspec.DecodeError:
        text = _JSON_ENCODER.encode(example_arguments(conversation.output_schema)).decode()
    return _split_arguments(text)


def _tool_caller(conversation: Conversation) -> Turn:
    results = conversation.results
    if not results and conversation.tool_choice == "none":
        # Asked for a final answer after the tool results (e.g. allow_final_response's
        # directive): answer from the results before that last user message.
        results = conversation.earlier_results
    if results:
        summary = " ".join(
            f"{result.name or result.call_id} returned {result.output}." for result in results
        )
        return Turn(text=chunk_words(summary))
    tools = conversation.tools
    if conversation.forced_tools is not None:
        allowed = set(conversation.forced_tools)
        tools = tuple(tool for tool in tools if tool.name in allowed)
    if not tools or conversation.tool_choice == "none":
        return Turn(text=chunk_words(conversation.last_user_text))
    if not conversation.parallel_tool_calls:
        tools = tools[:1]
    calls = []
    for tool in tools:
        arguments = _JSON_ENCODER.encode(example_arguments(tool.parameters)).decode()
        calls.append(ToolCall(name=tool.name, arguments=_split_arguments(arguments)))
    return Turn(tool_calls=tuple(calls))


def _split_arguments(arguments: str) -> tuple[str, ...]:
    """Split an arguments string in three, like a provider streaming it."""
    if len(arguments) < 3:
        return (arguments,)
    third = len(arguments) // 3
    return (arguments[:third], arguments[third : 2 * third], arguments[2 * third :])


def _apply_output_cap(turn: Turn, max_output_tokens: int | None) -> Turn:
    """Cut a built-in answer to ``max_output_tokens`` and mark it incomplete."""
    if max_output_tokens is None or turn.tool_calls:
        return turn
    budget = max_output_tokens - count_tokens(turn.full_reasoning)
    text = turn.full_text
    if count_tokens(text) <= budget:
        return turn
    cut = text[: max(budget, 0) * 4]
    return msgspec.structs.replace(
        turn, text=chunk_words(cut), status="incomplete", incomplete_reason="max_output_tokens"
    )


# ---------------------------------------------------------------------------
# Arguments from a JSON Schema.

_MAX_DEPTH = 16
_FORMAT_EXAMPLES: Final = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def example_arguments(schema: Any) -> Any:
    """A deterministic value that satisfies the common parts of a JSON Schema.

    Handles ``type`` (also as a list), ``enum``/``const``/``default``, objects
    (every property, required or not, plus required names that have no
    property schema), arrays (``minItems`` items, at least one), string
    ``format``/``minLength``/``maxLength``, numeric bounds and ``multipleOf``,
    ``anyOf``/``oneOf`` (first non-null branch), ``allOf`` (merged), and local
    ``$ref`` pointers (``#/$defs/...``, as ``msgspec.json.schema`` emits).
    A missing or empty schema gives ``{}`` at the top level.
    """
    if not isinstance(schema, dict) or not schema:
        return {}
    return _example(schema, schema, "value", 0)


def _example(schema: Any, root: dict[str, Any], name: str, depth: int) -> Any:
    if depth > _MAX_DEPTH or not isinstance(schema, dict):
        return None if depth > _MAX_DEPTH else name
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return _example(_resolve(ref, root), root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            chosen = next((b for b in branches if not _is_null_schema(b, root)), branches[0])
            return _example(chosen, root, name, depth + 1)
    parts = schema.get("allOf")
    if isinstance(parts, list) and parts:
        return _example(_merge_all_of(schema, parts, root), root, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        properties = schema.get("properties")
        value: dict[str, Any] = {}
        if isinstance(properties, dict):
            for key, sub in properties.items():
                value[key] = _example(sub, root, key, depth + 1)
        required = schema.get("required")
        if isinstance(required, list):
            for key in required:
                if isinstance(key, str) and key not in value:
                    value[key] = key
        return value
    if kind == "array":
        count = max(_int(schema.get("minItems"), 1), 1)
        if _int(schema.get("maxItems"), count) == 0:
            return []
        items = schema.get("items")
        return [_example(items, root, name, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, name)


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#"):
        return {}
    node: Any = root
    for raw in ref[1:].split("/"):
        if not raw:
            continue
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            return {}
        node = node[key]
    return node


def _is_null_schema(schema: Any, root: dict[str, Any]) -> bool:
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        schema = _resolve(schema["$ref"], root)
    return isinstance(schema, dict) and schema.get("type") == "null"


def _merge_all_of(schema: dict[str, Any], parts: list[Any], root: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    properties: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[Any] = list(merged.get("required") or [])
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("$ref"), str):
            part = _resolve(part["$ref"], root)
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                properties.update(value)
            elif key == "required" and isinstance(value, list):
                required.extend(value)
            else:
                merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _int(value: Any, fallback: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else fallback


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    value: float = 1
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if isinstance(low, int | float) and value < low:
        value = low
    if isinstance(xlow, int | float) and value <= xlow:
        value = math.floor(xlow) + 1 if integer else xlow + 0.5
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        value = math.ceil(value / step) * step
    if isinstance(high, int | float) and value > high:
        value = high
    if isinstance(xhigh, int | float) and value >= xhigh:
        value = math.ceil(xhigh) - 1 if integer else xhigh - 0.5
    return int(value) if integer else float(value)


def _string(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    text = _FORMAT_EXAMPLES.get(fmt, name) if isinstance(fmt, str) else name
    text = text.ljust(_int(schema.get("minLength"), 0), "x")
    limit = schema.get("maxLength")
    if isinstance(limit, int):
        text = text[:limit]
    return text
