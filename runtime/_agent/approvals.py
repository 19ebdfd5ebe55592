"""Which tool calls need a human's approval before they run.

Sans-io: stdlib and the layers below; ``async`` only to await the user's
callable (like ``runtime._agent.params``).

Rules (spec/callmodel.md §3.13, issue 12):

1. A tool's ``require_approval`` is ``False`` (the default), ``True``, or a
   sync/async callable ``fn(call, context) -> bool`` of the
   :class:`~runtime._protocol.wire.ParsedToolCall` and the
   :class:`~runtime._agent.params.TurnContext` (it may take fewer arguments).
2. ``call_model(require_approval=...)`` overrides every tool in both
   directions: ``True`` / ``False`` / a callable alone decide; ``None`` (the
   default) leaves it to each tool.
3. Calls naming no tool, and calls of manual tools, never need approval (the
   first get an error output, the second pause the run anyway).
4. **Each call is judged exactly once**, before its round runs: the SDK asked
   twice (once per response, once per round) and ran auto calls twice.
5. A decision must be a ``bool``; anything else, or a raising callable, fails
   the run with a ``RunError`` naming the tool.
6. Configuring approval without a state store is a :class:`ConfigurationError`
   raised by ``call_model``, before any request (:func:`tools_needing_a_store`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runtime._agent.callbacks import describe_exception, positional_arity
from runtime._base.errors import ConfigurationError, RunError

if TYPE_CHECKING:
    from runtime._agent.params import TurnContext
    from runtime._agent.tools import Tool
    from runtime._protocol.wire import ParsedToolCall

__all__ = ["approvals_needed", "check_require_approval", "tools_needing_a_store"]

ApprovalPolicy = bool | Callable[..., Any]


def check_require_approval(owner: str, value: Any) -> Any:
    """Check a ``require_approval`` value (``None`` allowed for the call level).

    Raises:
        ConfigurationError: naming ``owner`` and the value.
    """
    if value is None or isinstance(value, bool) or callable(value):
        return value
    raise ConfigurationError(
        f"{owner} require_approval must be True, False or a function of (call, context), "
        f"got {value!r}"
    )


def tools_needing_a_store(tools: Sequence[Tool], call_level: Any) -> list[str]:
    """The names of the tools that may need approval (``["*"]`` for a call-level policy).

    ``call_model`` refuses a non-empty answer without ``state=`` (rule 6).
    """
    if call_level is False:
        return []
    if call_level is not None:
        return ["*"]
    return [t.name for t in tools if t.require_approval is not False and t.kind != "manual"]


async def _decide(
    policy: ApprovalPolicy, owner: str, call: ParsedToolCall, ctx: TurnContext
) -> bool:
    if isinstance(policy, bool):
        return policy
    try:
        decision = policy(*(call, ctx)[: positional_arity(policy, 2)])
        if inspect.isawaitable(decision):
            decision = await decision
    except Exception as exc:
        raise RunError(
            f"require_approval of {owner} raised on call {call.id!r}: {describe_exception(exc)}"
        ) from exc
    if not isinstance(decision, bool):
        raise RunError(
            f"require_approval of {owner} returned {decision!r} on call {call.id!r}; "
            "expected True or False"
        )
    return decision


async def approvals_needed(
    calls: Sequence[ParsedToolCall],
    tools_by_name: Mapping[str, Tool],
    call_level: Any,
    ctx: TurnContext,
) -> list[bool]:
    """Whether each call needs approval, in call order, each judged once (rules 2-5).

    Raises:
        RunError: a policy raised or returned a non-bool.
    """
    needed: list[bool] = []
    for call in calls:
        tool = tools_by_name.get(call.name)
        if tool is None or tool.kind == "manual":
            needed.append(False)
        elif call_level is not None:
            needed.append(await _decide(call_level, "call_model", call, ctx))
        else:
            needed.append(await _decide(tool.require_approval, f"tool {tool.name!r}", call, ctx))
    return needed
