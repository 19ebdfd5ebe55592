"""The composition root: the ``OpenRouter`` client and ``call_model``.

The only runtime module (with the facade) that imports ``actors``. It owns the
runtime nursery: every run started from the client is a task of it, so leaving
``async with OpenRouter(...)`` cancels what is still running and then closes
the HTTP connection pool. Nothing ever runs detached.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, Self, final

import msgspec
import trio
from msgspec import UnsetType

from runtime._agent.approvals import check_require_approval, tools_needing_a_store
from runtime._agent.context import SHARED_CONTEXT, ContextStore, check_context_schema
from runtime._agent.inputs import (
    check_input,
    check_model,
    check_nesting,
    check_request_body,
    check_tools,
)
from runtime._agent.output import OutputSpec
from runtime._agent.request import TurnRequest, request_fields
from runtime._agent.state import check_decisions
from runtime._agent.stop import DEFAULT_STOP
from runtime._agent.store import check_state_accessor
from runtime._agent.tools import Tool
from runtime._base.errors import ConfigurationError
from runtime._base.groups import unwrap_lone_exception
from runtime._client.result import ModelResult
from runtime._http.retry import RetryConfig
from runtime._http.transport import DEFAULT_TIMEOUT, ApiTransport, check_headers
from runtime._rest.chat import Chat, Completions
from runtime._rest.models import Models
from runtime._rest.resources import Analytics, ApiKeys, Beta, CreditsAPI, OAuth, Responses
from runtime._run.retention import KEEP_ALL
from runtime._run.status import RunSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    from runtime._agent.inputs import ToolSource
    from runtime._agent.params import TurnContext
    from runtime._agent.request import Dynamic, InputItem
    from runtime._agent.stop import StopWhen
    from runtime._agent.store import StateAccessor
    from runtime._http.transport import HTTPTimeout, HttpxTransport
    from runtime._protocol.wire import (
        CacheControl,
        DebugConfig,
        PromptCacheOptions,
        ReasoningConfig,
        Response,
        TextConfig,
        ToolChoiceFunction,
    )
    from runtime._run.eventlog import EventLog
    from runtime._run.retention import Retention
    from runtime._run.status import RunState

__all__ = ["DEFAULT_STREAM_IDLE_TIMEOUT", "OpenRouter"]

DEFAULT_STREAM_IDLE_TIMEOUT: Final = 300.0
"""Seconds a model call's stream may go without an event before it fails
(keep-alive comments do not count). Long enough for a model that thinks for
minutes without streaming; short enough that a stalled stream is noticed."""

_UNSET: Final = msgspec.UNSET
_ENCODER: Final = msgspec.json.Encoder()


@final
class OpenRouter:
    """An OpenRouter client on trio: ``call_model`` plus the REST endpoints.

    Use it as an async context manager; it owns a nursery for the runs it starts
    and one HTTP connection pool shared by all of them::

        async with OpenRouter() as client:           # OPENROUTER_API_KEY from the env
            result = client.call_model(model="openai/gpt-5", input="Hi")
            print(await result.get_text())

    Args:
        api_key: the bearer key; defaults to ``OPENROUTER_API_KEY``. Never shown
            in reprs, logs, errors or events.
        base_url: defaults to ``OPENROUTER_BASE_URL``, then
            ``https://openrouter.ai/api/v1``.
        http_referer, app_title, app_categories: attribution headers.
        retry: the default retry policy of every request (``RetryConfig``).
        timeout: HTTP timeouts (seconds or an ``httpx.Timeout``), fixed per client.
        retention: the default retention policy of each run's event log.
        http_transport: an ``httpx.AsyncBaseTransport`` to send requests through
            (``runtime.testing.FakeOpenRouter`` provides one for tests).
        headers: extra headers sent with every request.
        stream_idle_timeout: seconds a model call's stream may go without an
            event (keep-alive comments do not count) before it fails with
            ``TransportTimeout``; ``None`` for no limit. Default 300.

    Raises:
        ConfigurationError: any bad argument, before any I/O.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        http_referer: str | None = None,
        app_title: str | None = None,
        app_categories: Sequence[str] | None = None,
        retry: RetryConfig | None = None,
        timeout: float | HTTPTimeout | None = DEFAULT_TIMEOUT,
        retention: Retention = KEEP_ALL,
        http_transport: HttpxTransport | None = None,
        headers: Mapping[str, str] | None = None,
        stream_idle_timeout: float | None = DEFAULT_STREAM_IDLE_TIMEOUT,
    ) -> None:
        self._stream_idle_timeout = check_seconds("stream_idle_timeout", stream_idle_timeout)
        self._transport = ApiTransport(
            api_key=api_key,
            base_url=base_url,
            http_referer=http_referer,
            app_title=app_title,
            app_categories=app_categories,
            retry=retry if retry is not None else RetryConfig(),
            timeout=timeout,
            headers=headers,
            http_transport=http_transport,
        )
        self._retention = retention
        self._nursery: trio.Nursery | None = None
        transport = self._transport
        #: ``/keys`` management (needs a management key).
        self.api_keys = ApiKeys(transport)
        #: OAuth PKCE: authorization URL, S256 challenge, code exchange.
        self.o_auth = OAuth(transport)
        #: ``GET /models``, page by page or all at once.
        self.models = Models(transport)
        #: ``POST /chat/completions``, JSON or streamed chunks.
        self.chat = Chat(transport)
        #: ``POST /completions`` (legacy text completions).
        self.completions = Completions(transport)
        #: ``GET /activity`` (needs a management key).
        self.analytics = Analytics(transport)
        #: ``GET /credits`` (needs a management key).
        self.credits = CreditsAPI(transport)
        #: ``POST /responses`` without streaming (one response, no tool loop).
        self.responses = Responses(transport)
        #: Deprecated alias: ``beta.responses`` is ``responses`` (spec N-01).
        self.beta = Beta(self.responses)
        self._stack: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        state = "open" if self._nursery is not None else "closed"
        return f"<OpenRouter {state} base_url={self._transport.base_url!r}>"

    @property
    def transport(self) -> ApiTransport:
        """The HTTP transport (connection pool, auth, retries) shared by every run."""
        return self._transport

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise ConfigurationError("this OpenRouter client is already open")
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            stack.push_async_callback(self._transport.aclose)
            self._nursery = await stack.enter_async_context(trio.open_nursery())
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Cancel the runs still going, wait for them, then close the HTTP pool."""
        assert self._stack is not None
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        stack, self._stack = self._stack, None
        try:
            with unwrap_lone_exception():
                return await stack.__aexit__(exc_type, exc, tb)
        finally:
            self._nursery = None

    def _spawn(self, fn: Callable[[], Any]) -> None:
        if self._nursery is None:
            raise ConfigurationError(
                "the OpenRouter client is not open: use `async with OpenRouter(...) as client:`"
                " or enter the result with `async with client.call_model(...) as result:`"
            )
        self._nursery.start_soon(fn)

    def call_model(
        self,
        *,
        model: Dynamic[str] | UnsetType = _UNSET,
        input: Dynamic[str | Sequence[InputItem]] | UnsetType = _UNSET,
        instructions: Dynamic[str | None] | UnsetType = _UNSET,
        tools: Sequence[Tool | ToolSource | Mapping[str, Any]] = (),
        stop_when: StopWhen | None = None,
        allow_final_response: bool | str = True,
        models: Dynamic[list[str]] | UnsetType = _UNSET,
        temperature: Dynamic[float | None] | UnsetType = _UNSET,
        max_output_tokens: Dynamic[int | None] | UnsetType = _UNSET,
        top_p: Dynamic[float | None] | UnsetType = _UNSET,
        top_k: Dynamic[int] | UnsetType = _UNSET,
        top_logprobs: Dynamic[int | None] | UnsetType = _UNSET,
        frequency_penalty: Dynamic[float | None] | UnsetType = _UNSET,
        presence_penalty: Dynamic[float | None] | UnsetType = _UNSET,
        text: Dynamic[TextConfig | dict[str, Any]] | UnsetType = _UNSET,
        provider: Dynamic[dict[str, Any] | None] | UnsetType = _UNSET,
        reasoning: Dynamic[ReasoningConfig | dict[str, Any] | None] | UnsetType = _UNSET,
        metadata: Dynamic[dict[str, str] | None] | UnsetType = _UNSET,
        tool_choice: Dynamic[str | ToolChoiceFunction | dict[str, Any]] | UnsetType = _UNSET,
        parallel_tool_calls: Dynamic[bool | None] | UnsetType = _UNSET,
        max_tool_calls: Dynamic[int | None] | UnsetType = _UNSET,
        stop_server_tools_when: Dynamic[list[dict[str, Any]]] | UnsetType = _UNSET,
        prompt_cache_key: Dynamic[str | None] | UnsetType = _UNSET,
        prompt_cache_options: Dynamic[PromptCacheOptions | dict[str, Any] | None]
        | UnsetType = _UNSET,
        cache_control: Dynamic[CacheControl | dict[str, Any]] | UnsetType = _UNSET,
        include: Dynamic[list[str] | None] | UnsetType = _UNSET,
        user: Dynamic[str] | UnsetType = _UNSET,
        safety_identifier: Dynamic[str | None] | UnsetType = _UNSET,
        session_id: Dynamic[str] | UnsetType = _UNSET,
        plugins: Dynamic[list[dict[str, Any]]] | UnsetType = _UNSET,
        modalities: Dynamic[list[str]] | UnsetType = _UNSET,
        image_config: Dynamic[dict[str, Any]] | UnsetType = _UNSET,
        prompt: Dynamic[dict[str, Any] | None] | UnsetType = _UNSET,
        service_tier: Dynamic[str | None] | UnsetType = _UNSET,
        truncation: Dynamic[str | None] | UnsetType = _UNSET,
        route: Dynamic[str | None] | UnsetType = _UNSET,
        trace: Dynamic[dict[str, Any]] | UnsetType = _UNSET,
        debug: Dynamic[DebugConfig | dict[str, Any]] | UnsetType = _UNSET,
        background: Dynamic[bool | None] | UnsetType = _UNSET,
        store: Dynamic[bool] | UnsetType = _UNSET,
        previous_response_id: Dynamic[str | None] | UnsetType = _UNSET,
        retention: Retention | None = None,
        retry: RetryConfig | None = None,
        headers: Mapping[str, str] | None = None,
        tool_concurrency: int | None = None,
        tool_timeout: float | None = None,
        on_turn_start: Callable[[TurnContext], Any] | None = None,
        on_turn_end: Callable[[TurnContext, Response], Any] | None = None,
        tool_errors: Literal["model", "raise"] = "model",
        output: Any = None,
        output_retries: int = 1,
        state: StateAccessor | None = None,
        approve: Sequence[str] | None = None,
        reject: Sequence[str] | Mapping[str, str] | None = None,
        require_approval: bool | Callable[..., Any] | None = None,
        context: Mapping[str, Any] | None = None,
        shared_context_schema: Any = None,
        deadline: float | None = None,
    ) -> ModelResult:
        """Start describing an agent run; synchronous and lazy (no I/O here).

        Every request parameter of the Responses API is accepted under its wire
        name, as a value or as a sync/async function of the ``TurnContext``
        (resolved at turn 0 and at every tool round). Parameters are checked
        here, before any I/O; a bad one raises ``ConfigurationError`` naming it.

        Args:
            tools: ``Tool`` objects (``tool(...)``, ``@function_tool``,
                ``MCPServer.list_tools()``), server-tool dicts sent as given, and
                function-tool dicts in the wire format (manual JSON-Schema tools).
            stop_when: a stop condition or a list of them (any-of); default
                ``step_count_is(5)``.
            allow_final_response: when a stop condition fires with calls pending,
                run them and ask once more with ``tool_choice: "none"`` (``True``,
                the default, adds a short directive; a string replaces it; ``""``
                adds none; ``False`` returns the response with its calls unexecuted).
            retention: this run's event-log retention policy.
            retry: this run's retry policy (each model call has its own budget).
            headers: extra headers for this run's requests.
            tool_concurrency: how many tool calls of one round run at once.
            tool_timeout: default per-call timeout (seconds) for tools that set none.
            on_turn_start: called (sync or async) with the ``TurnContext`` before
                each tool round runs (rounds are numbered from 1).
            on_turn_end: called with the ``TurnContext`` and the follow-up
                response after each round's follow-up call.
            tool_errors: ``"model"`` (the default) turns a failing tool call into
                an error output the model reads; ``"raise"`` fails the run with a
                ``ToolError`` (its ``__cause__`` is the tool's exception) once the
                round has settled.
            output: structured output: a msgspec type (a ``Struct`` class, ...)
                or a JSON-Schema dict. Sets ``text.format`` to that JSON schema,
                checks the final answer against it, and asks again with the
                error when it does not match; ``get_output()`` returns the typed
                value, ``get_output_stream()`` partial values as JSON arrives.
            output_retries: how many times a non-matching answer is asked for
                again (default 1) before the run fails with
                ``StructuredOutputError``.
            state: where the conversation is loaded from and saved to (a
                ``StateAccessor``: ``MemoryStateStore``, ``JSONFileStateStore`` or
                your own); the run continues the saved conversation, and ``input``
                is appended to it.
            approve: ids of pending calls to run (needs ``state``).
            reject: ids of pending calls to refuse, or ``{id: reason}`` (needs
                ``state``); the model reads ``{"error": reason}``.
            require_approval: ``True``, ``False`` or ``fn(call, context) -> bool``
                for every call of this run, overriding the tools' own setting;
                ``None`` leaves it to each tool.
            context: initial tool contexts, by tool name (and ``"shared"``);
                they win over the saved ones.
            shared_context_schema: msgspec type of the shared context (default:
                a plain JSON object).

            deadline: seconds the whole run may take from its start (every
                turn, retry and tool round); past it the run is cancelled and
                fails with ``RunTimeout``. ``None`` (the default): no limit.

        Raises:
            ConfigurationError: a bad argument (named in the message): a
                missing or empty ``model``, a header value with a control
                character, a value nested deeper than 128 levels; approval
                configured (or ``approve``/``reject`` given) without ``state``.

        Returns:
            A ``ModelResult``; the run starts on its first use.
        """
        typed = TurnRequest(
            model=model,
            models=models,
            input=input,
            instructions=instructions,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            max_tool_calls=max_tool_calls,
            stop_server_tools_when=stop_server_tools_when,
            max_output_tokens=max_output_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            top_logprobs=top_logprobs,
            frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty,
            reasoning=reasoning,
            include=include,
            text=text,
            modalities=modalities,
            image_config=image_config,
            metadata=metadata,
            user=user,
            safety_identifier=safety_identifier,
            session_id=session_id,
            prompt_cache_key=prompt_cache_key,
            prompt_cache_options=prompt_cache_options,
            cache_control=cache_control,
            prompt=prompt,
            service_tier=service_tier,
            truncation=truncation,
            provider=provider,
            plugins=plugins,
            route=route,
            trace=trace,
            debug=debug,
            store=store,
            previous_response_id=previous_response_id,
            background=background,
        )
        request = request_fields(typed)
        _reject_functions(
            {
                "tools": tools,
                "allow_final_response": allow_final_response,
                "retention": retention,
                "retry": retry,
                "headers": headers,
                "tool_concurrency": tool_concurrency,
                "tool_timeout": tool_timeout,
                "tool_errors": tool_errors,
                "output_retries": output_retries,
                "approve": approve,
                "reject": reject,
                "context": context,
                "deadline": deadline,
            },
            request,
        )
        check_model(request)
        if "input" in request:
            request["input"] = check_input(request["input"])
        for name, value in request.items():
            check_nesting(name, value)
        output_spec = None
        if output is not None:
            output_spec = OutputSpec.from_user(output, retries=output_retries)
            request["text"] = _with_format(request.get("text"), output_spec.format)
        _check_static(request)
        request["stream"] = True
        checked_tools = check_tools(tools)
        if stop_when is None:
            conditions: tuple[Any, ...] = (DEFAULT_STOP,)
        elif isinstance(stop_when, list | tuple):
            conditions = tuple(stop_when)
        else:
            conditions = (stop_when,)
        for condition in conditions:
            if not callable(condition):
                raise ConfigurationError(f"stop_when must hold callables, got {condition!r}")
        if not isinstance(allow_final_response, bool | str):
            raise ConfigurationError(
                f"allow_final_response must be a bool or a string, got {allow_final_response!r}"
            )
        if tool_concurrency is not None and (
            not isinstance(tool_concurrency, int) or tool_concurrency < 1
        ):
            raise ConfigurationError(
                f"tool_concurrency must be a positive integer, got {tool_concurrency!r}"
            )
        if tool_timeout is not None and not tool_timeout > 0:
            raise ConfigurationError(f"tool_timeout must be positive, got {tool_timeout!r}")
        conversation = _check_conversation(
            checked_tools, state, approve, reject, require_approval, context, shared_context_schema
        )
        all_headers = {"x-openrouter-callmodel": "true"}
        if headers:
            check_headers(headers, "headers")
            all_headers.update(headers)
        spec = RunSpec(
            request=request,
            tools=checked_tools,
            stop_when=conditions,
            allow_final_response=allow_final_response,
            headers=all_headers,
            retry=retry,
            tool_concurrency=tool_concurrency,
            tool_timeout=tool_timeout,
            tool_errors=_check_tool_errors(tool_errors),
            on_turn_start=_check_hook("on_turn_start", on_turn_start),
            on_turn_end=_check_hook("on_turn_end", on_turn_end),
            output=output_spec,
            **conversation,
            deadline=check_seconds("deadline", deadline),
            stream_idle_timeout=self._stream_idle_timeout,
        )
        return ModelResult(
            spec=spec,
            runner=functools.partial(_run, transport=self._transport),
            spawn=self._spawn,
            retention=retention if retention is not None else self._retention,
        )


def check_seconds(name: str, value: object) -> float | None:
    """A positive, finite number of seconds, or ``None``.

    Raises:
        ConfigurationError: naming ``name`` and the value.
    """
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{name} must be a positive number of seconds or None, not {value!r}."
        )
    return float(value)


def _reject_functions(static: Mapping[str, Any], request: Mapping[str, Any]) -> None:
    """A function where only a value makes sense is refused, naming the parameter.

    ``static`` holds the parameters that configure the run itself (never resolved
    per turn). Request fields may be functions of the ``TurnContext``, but a
    *class* there is a mistake (``text=MyStruct`` means ``output=MyStruct``).
    """
    for name, value in static.items():
        if callable(value):
            raise ConfigurationError(
                f"{name} cannot be a function (only request parameters are resolved per "
                f"turn); got {value!r}"
            )
    for name, value in request.items():
        if isinstance(value, type):
            hint = "; for structured output use output=" if name == "text" else ""
            raise ConfigurationError(
                f"{name} cannot be a class: give a value or a function of the TurnContext, "
                f"got {value!r}{hint}"
            )


def _with_format(text: Any, fmt: dict[str, Any]) -> dict[str, Any]:
    """``text`` with ``format`` set for ``output=``; a format given twice is an error."""
    if text is None or text is _UNSET:
        return {"format": fmt}
    if callable(text) or not isinstance(text, dict):
        raise ConfigurationError(
            f"text {text!r} cannot be combined with output=: give text as a dict without "
            "'format' (output= sets it)"
        )
    if "format" in text:
        raise ConfigurationError(
            f"text.format {text['format']!r} and output= both set the response format; "
            "give one of them"
        )
    return {**text, "format": fmt}


def _check_conversation(
    tools: Sequence[Tool | dict[str, Any] | ToolSource],
    state: Any,
    approve: Any,
    reject: Any,
    require_approval: Any,
    context: Any,
    shared_context_schema: Any,
) -> dict[str, Any]:
    """The conversation options of a run, checked before any I/O."""
    checked_state = None if state is None else check_state_accessor(state)
    decisions = check_decisions(approve, reject)
    call_level = check_require_approval("call_model", require_approval)
    if checked_state is None:
        if decisions:
            raise ConfigurationError(
                "approve and reject need state=: the pending calls live in the saved conversation"
            )
        gated = tools_needing_a_store([t for t in tools if isinstance(t, Tool)], call_level)
        if gated:
            raise ConfigurationError(
                f"tools that require approval need a state store to pause in, but no state= "
                f"was given: {gated!r} (pass state=MemoryStateStore() or JSONFileStateStore(path))"
            )
    if context is not None and not isinstance(context, Mapping):
        raise ConfigurationError(
            f"context must be a mapping of tool name to value, got {context!r}"
        )
    if context is not None or shared_context_schema is not None:
        # Check the values now (the run seeds a fresh store the same way).
        schemas = {
            t.name: t.context_schema for t in tools if isinstance(t, Tool) and t.context_schema
        }
        schemas[SHARED_CONTEXT] = check_context_schema("call_model shared", shared_context_schema)
        ContextStore(schemas).seed(context or {})
    return {
        "state": checked_state,
        "decisions": decisions,
        "require_approval": call_level,
        "context": dict(context) if context is not None else None,
        "shared_context_schema": shared_context_schema,
    }


def _check_tool_errors(policy: str) -> str:
    if policy not in ("model", "raise"):
        raise ConfigurationError(f"tool_errors must be 'model' or 'raise', got {policy!r}")
    return policy


def _check_hook(name: str, fn: Any) -> Any:
    if fn is not None and not callable(fn):
        raise ConfigurationError(f"{name} must be callable, got {fn!r}")
    return fn


def _check_static(request: dict[str, Any]) -> None:
    """Validate the non-function parameters against the Responses request schema."""
    static = {k: v for k, v in request.items() if not callable(v)}
    try:
        body = _ENCODER.encode(static)
    except (msgspec.EncodeError, TypeError) as exc:
        raise ConfigurationError(f"a call_model parameter cannot be sent as JSON: {exc}") from exc
    check_request_body(body)


async def _run(
    spec: RunSpec, state: RunState, log: EventLog[Any], *, transport: ApiTransport
) -> None:
    # Imported here, not at the top: ``actors`` imports ``runtime._*`` modules,
    # so a top-level import would make ``import actors._x`` first a cycle.
    from actors._session import run_session

    await run_session(spec, state, transport, log)
