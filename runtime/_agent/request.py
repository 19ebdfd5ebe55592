"""The request a ``call_model`` describes, as a typed object: every Responses field,
each a value or a function of the turn.

``call_model`` builds one :class:`TurnRequest` from its keyword arguments (no
``locals()``); the session resolves it into a wire body at every turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from runtime._agent.params import TurnContext
from runtime._protocol.wire import ResponsesRequest

if TYPE_CHECKING:
    from runtime._protocol.wire import (
        CacheControl,
        DebugConfig,
        PromptCacheOptions,
        ReasoningConfig,
        TextConfig,
        ToolChoiceFunction,
    )

__all__ = ["Dynamic", "InputItem", "TurnRequest", "request_fields"]

T = TypeVar("T")

Dynamic: TypeAlias = T | Callable[[TurnContext], T | Awaitable[T]]
"""A request field's value, or a sync/async function of the :class:`TurnContext` that
returns it (resolved at turn 0 and at every tool round)."""

InputItem: TypeAlias = Mapping[str, Any] | msgspec.Struct
"""One input item: a wire dict (``{"role": "user", "content": ...}``) or a typed Struct."""


class TurnRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Every request field ``call_model`` takes (the Responses body less ``stream`` and
    ``tools``, which the run manages). Unset fields are left out of the body."""

    model: Dynamic[str] | UnsetType = UNSET
    models: Dynamic[list[str]] | UnsetType = UNSET
    input: Dynamic[str | Sequence[InputItem]] | UnsetType = UNSET
    instructions: Dynamic[str | None] | UnsetType = UNSET
    tool_choice: Dynamic[str | ToolChoiceFunction | dict[str, Any]] | UnsetType = UNSET
    parallel_tool_calls: Dynamic[bool | None] | UnsetType = UNSET
    max_tool_calls: Dynamic[int | None] | UnsetType = UNSET
    stop_server_tools_when: Dynamic[list[dict[str, Any]]] | UnsetType = UNSET
    max_output_tokens: Dynamic[int | None] | UnsetType = UNSET
    temperature: Dynamic[float | None] | UnsetType = UNSET
    top_p: Dynamic[float | None] | UnsetType = UNSET
    top_k: Dynamic[int] | UnsetType = UNSET
    top_logprobs: Dynamic[int | None] | UnsetType = UNSET
    frequency_penalty: Dynamic[float | None] | UnsetType = UNSET
    presence_penalty: Dynamic[float | None] | UnsetType = UNSET
    reasoning: Dynamic[ReasoningConfig | dict[str, Any] | None] | UnsetType = UNSET
    include: Dynamic[list[str] | None] | UnsetType = UNSET
    text: Dynamic[TextConfig | dict[str, Any]] | UnsetType = UNSET
    modalities: Dynamic[list[str]] | UnsetType = UNSET
    image_config: Dynamic[dict[str, Any]] | UnsetType = UNSET
    metadata: Dynamic[dict[str, str] | None] | UnsetType = UNSET
    user: Dynamic[str] | UnsetType = UNSET
    safety_identifier: Dynamic[str | None] | UnsetType = UNSET
    session_id: Dynamic[str] | UnsetType = UNSET
    prompt_cache_key: Dynamic[str | None] | UnsetType = UNSET
    prompt_cache_options: Dynamic[PromptCacheOptions | dict[str, Any] | None] | UnsetType = UNSET
    cache_control: Dynamic[CacheControl | dict[str, Any]] | UnsetType = UNSET
    prompt: Dynamic[dict[str, Any] | None] | UnsetType = UNSET
    service_tier: Dynamic[str | None] | UnsetType = UNSET
    truncation: Dynamic[str | None] | UnsetType = UNSET
    provider: Dynamic[dict[str, Any] | None] | UnsetType = UNSET
    plugins: Dynamic[list[dict[str, Any]]] | UnsetType = UNSET
    route: Dynamic[str | None] | UnsetType = UNSET
    trace: Dynamic[dict[str, Any]] | UnsetType = UNSET
    debug: Dynamic[DebugConfig | dict[str, Any]] | UnsetType = UNSET
    store: Dynamic[bool] | UnsetType = UNSET
    previous_response_id: Dynamic[str | None] | UnsetType = UNSET
    background: Dynamic[bool | None] | UnsetType = UNSET


_FIELDS: Final = TurnRequest.__struct_fields__
assert set(_FIELDS) == set(ResponsesRequest.__struct_fields__) - {"stream", "tools"}


def request_fields(request: TurnRequest) -> dict[str, Any]:
    """The set fields of ``request`` by wire name, values or functions as given."""
    return {name: value for name in _FIELDS if (value := getattr(request, name)) is not UNSET}
