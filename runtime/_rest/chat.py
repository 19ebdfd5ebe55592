"""Chat completions and legacy completions: the two REST endpoints that can stream.

The one job of this module: send ``POST /chat/completions`` and
``POST /completions`` on the client's transport and hand back either the
decoded answer or an :class:`EventStream` of decoded chunks.

Rules of an :class:`EventStream` (wire-protocol §2, §4.4, §4.5):

1. **Status before stream.** ``await send(..., stream=True)`` returns only
   after a 2xx status; error statuses raise their typed ``APIStatusError``
   there, before any chunk.
2. **In order, then the error.** Chunks come out in wire order. An in-band
   error chunk (top-level ``error``) ends the stream: every chunk before it is
   yielded, then :class:`~runtime._base.errors.ResponseFailedError` is raised
   carrying the server's ``code``, ``message``, ``error_type`` and the chunk
   itself (``.response``). The error chunk is not yielded.
3. **How a stream ends.** ``data: [DONE]`` ends it (the rest of the body is
   not read). EOF ends it too, if a chunk with a ``finish_reason`` or
   ``usage`` came first; EOF before that is a truncated answer and raises
   :class:`~runtime._base.errors.RemoteProtocolError`. So does a chunk that is not
   the JSON we expect. Nothing is ever retried once the stream has started.
4. **A JSON answer** to a streaming request (a proxy, or a server that ignored
   ``stream``) is accepted: its content comes out as one chunk.
5. **Ownership.** The caller owns the stream and must close it: leave an
   ``async with stream:`` block, call :meth:`EventStream.aclose`, or iterate
   to the end (the connection is released as soon as the end is seen).
   Closing is idempotent, a checkpoint, and releases the connection even when
   cancelled (shielded, bounded). Iterating a closed stream raises
   ``trio.ClosedResourceError``.
6. **Interrupted reads are sticky.** If reading the body fails
   (``TransportError``) or is cancelled, the connection is released and that
   exception propagates; every later step raises ``trio.BrokenResourceError``
   rather than pretending the stream ended cleanly.
7. **Backpressure**: none needed; each step reads the socket only when the
   already decoded chunks are used up, so a slow consumer slows the reads.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Literal,
    Protocol,
    Self,
    TypeVar,
    final,
    overload,
)

import msgspec
import trio

from runtime._base.errors import ConfigurationError, RemoteProtocolError, ResponseFailedError
from runtime._protocol.sse import SSEDecoder
from runtime._rest.checks import convert_params, decode_body
from runtime._rest.types import (
    ChatAssistantMessage,
    ChatDeveloperMessage,
    ChatRequest,
    ChatResult,
    ChatStreamChoice,
    ChatStreamChunk,
    ChatStreamDelta,
    ChatStreamError,
    ChatStreamToolCall,
    ChatStreamToolCallFunction,
    ChatSystemMessage,
    ChatToolMessage,
    ChatUserMessage,
    CompletionRequest,
    LegacyCompletion,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from types import TracebackType

    from runtime._http.transport import ApiTransport
    from runtime._rest.types import ChatMessage

__all__ = ["Chat", "ChatStream", "CompletionStream", "Completions", "EventStream"]

_CLOSE_GRACE: Final = 5.0  # seconds a shielded close may take
_DONE: Final = b"[DONE]"
_ROLES: Final = ("system", "developer", "user", "assistant", "tool")
_MESSAGE_TYPES: Final = (
    ChatSystemMessage,
    ChatDeveloperMessage,
    ChatUserMessage,
    ChatAssistantMessage,
    ChatToolMessage,
)
_CHAT_RESULT: Final = msgspec.json.Decoder(ChatResult)
_CHAT_CHUNK: Final = msgspec.json.Decoder(ChatStreamChunk)
_COMPLETION: Final = msgspec.json.Decoder(LegacyCompletion)
_ENCODER: Final = msgspec.json.Encoder()
_CHAT_FIELDS: Final = frozenset(ChatRequest.__struct_fields__) - {"messages", "model", "stream"}
_COMPLETION_FIELDS: Final = frozenset(CompletionRequest.__struct_fields__) - {
    "prompt",
    "model",
    "stream",
}


class _HasFinish(Protocol):
    @property
    def finish_reason(self) -> str | None: ...


class _Chunk(Protocol):
    @property
    def choices(self) -> Sequence[_HasFinish]: ...

    @property
    def usage(self) -> object: ...

    @property
    def error(self) -> ChatStreamError | None: ...


_C = TypeVar("_C", bound=_Chunk)


@final
class EventStream(Generic[_C]):
    """An async iterator (and async context manager) over a streamed answer's chunks.

    Returned by ``await client.chat.send(..., stream=True)`` (chunks are
    :class:`~runtime._rest.types.ChatStreamChunk`) and by
    ``await client.completions.generate(..., stream=True)``
    (:class:`~runtime._rest.types.LegacyCompletion` chunks). See the module
    docstring for the rules: order, errors, ending, ownership.

    Example::

        stream = await client.chat.send(messages=[...], model="openai/gpt-5", stream=True)
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    print(choice.delta.content or "", end="")
    """

    __slots__ = (
        "_body",
        "_broken",
        "_closed",
        "_decoder",
        "_ended",
        "_error",
        "_pending",
        "_released",
        "_sse",
        "_stack",
        "_terminal",
        "_what",
    )

    def __init__(
        self,
        *,
        stack: contextlib.AsyncExitStack | None,
        body: AsyncIterator[bytes] | None,
        decoder: msgspec.json.Decoder[_C],
        what: str,
        items: Sequence[_C] = (),
    ) -> None:
        self._stack = stack
        self._body = body
        self._decoder = decoder
        self._what = what
        self._sse = SSEDecoder()
        self._pending: collections.deque[_C] = collections.deque(items)
        self._error: BaseException | None = None
        self._ended = body is None  # no more input will be read
        self._released = stack is None
        self._closed = False
        self._broken = False  # a read failed or was cancelled mid-body
        self._terminal = False  # a chunk with a finish_reason or usage was seen

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ended" if self._ended else "open"
        return f"<EventStream of {self._what} chunks, {state}, {len(self._pending)} buffered>"

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _C:
        while True:
            if self._closed:
                raise trio.ClosedResourceError("This stream is closed.")
            if self._broken:
                raise trio.BrokenResourceError(
                    f"This {self._what} stream was interrupted by a failed or cancelled read."
                )
            if self._pending:
                return self._pending.popleft()
            if self._ended:
                await self._release()
                error, self._error = self._error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            await self._read()

    async def __aenter__(self) -> Self:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the stream and release its connection. Idempotent; a checkpoint.

        Chunks not yet iterated are dropped. Safe to call while cancelled.
        """
        self._closed = True
        self._ended = True
        self._pending.clear()
        self._error = None
        if self._released:
            await trio.lowlevel.checkpoint()
        else:
            await self._release()

    async def _release(self) -> None:
        if self._released:
            return
        self._released = True
        assert self._stack is not None
        with trio.move_on_after(_CLOSE_GRACE, shield=True):
            await self._stack.aclose()

    async def _read(self) -> None:
        assert self._body is not None
        try:
            chunk = await self._body.__anext__()
        except StopAsyncIteration:
            self._feed(self._sse.close())
            self._ended = True
            if self._error is None and not self._terminal:
                self._error = RemoteProtocolError(
                    f"The {self._what} stream ended before a finish_reason or [DONE]"
                )
        except BaseException:
            # A failed read (TransportError, Cancelled ...) leaves the body
            # unusable; later steps say so instead of pretending a clean end.
            self._ended = True
            self._broken = True
            await self._release()
            raise
        else:
            self._feed(self._sse.feed(chunk))
        if self._ended:
            await self._release()

    def _feed(self, events: Sequence[Any]) -> None:
        decoder = self._decoder
        pending = self._pending
        for event in events:
            data = event.data
            if data == _DONE:
                self._ended = True
                return
            try:
                item = decoder.decode(data)
            except msgspec.DecodeError as exc:
                error = RemoteProtocolError(
                    f"The server sent a {self._what} chunk that could not be decoded ({exc})"
                )
                error.__cause__ = exc
                self._fail(error)
                return
            problem = item.error
            if problem is not None:
                self._fail(_response_failed(problem, item, self._what))
                return
            if not self._terminal and (
                item.usage is not None
                or any(choice.finish_reason is not None for choice in item.choices)
            ):
                self._terminal = True
            pending.append(item)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._ended = True


ChatStream = EventStream[ChatStreamChunk]
"""The stream of ``client.chat.send(..., stream=True)``."""

CompletionStream = EventStream[LegacyCompletion]
"""The stream of ``client.completions.generate(..., stream=True)``."""


def _response_failed(problem: ChatStreamError, chunk: object, what: str) -> ResponseFailedError:
    metadata = problem.metadata or {}
    error_type = metadata.get("error_type")
    message = problem.message or f"The {what} stream reported an error with code {problem.code!r}"
    return ResponseFailedError(
        message,
        code=problem.code,
        error_type=error_type if isinstance(error_type, str) else None,
        response=chunk,
    )


async def _open_stream(
    transport: ApiTransport,
    path: str,
    body: bytes,
    decoder: msgspec.json.Decoder[_C],
    from_json: Callable[[bytes], list[_C]],
    what: str,
) -> EventStream[_C]:
    stack = contextlib.AsyncExitStack()
    response = await stack.enter_async_context(transport.stream("POST", path, content=body))
    try:
        if response.content_type == "application/json":
            items = from_json(await response.aread())
            with trio.move_on_after(_CLOSE_GRACE, shield=True):
                await stack.aclose()
            return EventStream(stack=None, body=None, decoder=decoder, what=what, items=items)
        return EventStream(stack=stack, body=response.aiter_raw(), decoder=decoder, what=what)
    except BaseException:
        with trio.move_on_after(_CLOSE_GRACE, shield=True):
            await stack.aclose()
        raise


def _chat_chunk_from_result(body: bytes) -> list[ChatStreamChunk]:
    """A JSON ``ChatResult`` as the one chunk a stream of it would have added up to."""
    result = decode_body(_CHAT_RESULT, body, "a chat completion")
    choices = []
    for choice in result.choices:
        message = choice.message
        calls = (
            [
                ChatStreamToolCall(
                    index=index,
                    id=call.id,
                    type=call.type,
                    function=ChatStreamToolCallFunction(
                        name=call.function.name, arguments=call.function.arguments
                    ),
                )
                for index, call in enumerate(message.tool_calls)
            ]
            if isinstance(message.tool_calls, list)
            else None
        )
        delta = ChatStreamDelta(
            role="assistant",
            content=message.content if isinstance(message.content, str) else None,
            reasoning=message.reasoning,
            refusal=message.refusal,
            tool_calls=calls,
        )
        choices.append(
            ChatStreamChoice(
                index=choice.index,
                delta=delta,
                finish_reason=choice.finish_reason,
                native_finish_reason=choice.native_finish_reason,
            )
        )
    chunk = ChatStreamChunk(
        id=result.id,
        choices=choices,
        created=result.created,
        model=result.model,
        provider=result.provider,
        system_fingerprint=result.system_fingerprint,
        usage=result.usage,
        service_tier=result.service_tier,
        openrouter_metadata=result.openrouter_metadata,
    )
    return [chunk]


def _completion_from_result(body: bytes) -> list[LegacyCompletion]:
    return [decode_body(_COMPLETION, body, "a completion")]


def _check_messages(messages: object) -> list[Any]:
    if (
        isinstance(messages, str | bytes | Mapping)
        or not isinstance(messages, Sequence)
        or not messages
    ):
        raise ConfigurationError(
            f"messages must be a non-empty list of chat messages, got {messages!r}"
        )
    checked: list[Any] = []
    for index, message in enumerate(messages):
        if isinstance(message, _MESSAGE_TYPES):
            checked.append(message)
        elif isinstance(message, Mapping):
            role = message.get("role")
            if role not in _ROLES:
                raise ConfigurationError(
                    f"messages[{index}] has role {role!r}; expected one of {', '.join(_ROLES)}"
                )
            checked.append(dict(message))
        else:
            raise ConfigurationError(
                f"messages[{index}] must be a chat message or a dict, got {message!r}"
            )
    return checked


def _check_prompt(prompt: object) -> str | list[Any]:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, Sequence) and not isinstance(prompt, bytes | Mapping) and prompt:
        items = list(prompt)
        if all(isinstance(item, str) for item in items):
            return items
        if all(_is_int(item) for item in items):
            return items
        if all(
            isinstance(item, Sequence) and not isinstance(item, str) and all(map(_is_int, item))
            for item in items
        ):
            return [list(item) for item in items]
    raise ConfigurationError(
        "prompt must be a string, a list of strings, a list of token ids "
        f"or a list of token-id lists, got {prompt!r}"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _request_body(
    where: str,
    kind: type[msgspec.Struct],
    fields: frozenset[str],
    required: dict[str, Any],
    model: object,
    stream: object,
    params: Mapping[str, Any],
) -> tuple[bytes, bool]:
    """Check everything, build the request Struct, encode it: ``(body, stream)``."""
    if not isinstance(stream, bool):
        raise ConfigurationError(f"stream must be True or False, got {stream!r}")
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigurationError(f"model must be a non-empty string or None, got {model!r}")
    values = dict(required)
    if model is not None:
        values["model"] = model
    if stream:
        values["stream"] = True
    for name, value in params.items():
        if name not in fields:
            raise ConfigurationError(f"{where} got an unknown parameter {name!r}")
        if value is not None:
            values[name] = value
    request = convert_params(where, kind, values)
    try:
        return _ENCODER.encode(request), stream
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigurationError(
            f"{where} got a value that cannot be sent as JSON ({exc})"
        ) from exc


@final
class Chat:
    """``client.chat``: OpenAI-style chat completions (``POST /chat/completions``).

    Args:
        transport: the client's transport (auth, retries, error mapping).
    """

    def __init__(self, transport: ApiTransport) -> None:
        self._transport = transport

    @overload
    async def send(
        self,
        *,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        model: str | None = ...,
        stream: Literal[False] = ...,
        **params: Any,
    ) -> ChatResult: ...

    @overload
    async def send(
        self,
        *,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        model: str | None = ...,
        stream: Literal[True],
        **params: Any,
    ) -> EventStream[ChatStreamChunk]: ...

    @overload
    async def send(
        self,
        *,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        model: str | None = ...,
        stream: bool,
        **params: Any,
    ) -> ChatResult | EventStream[ChatStreamChunk]: ...

    async def send(
        self,
        *,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        model: str | None = None,
        stream: bool = False,
        **params: Any,
    ) -> ChatResult | EventStream[ChatStreamChunk]:
        """Send a chat completion request.

        Args:
            messages: the conversation: message Structs
                (:class:`~runtime._rest.types.ChatUserMessage` ...) or dicts with
                a ``role``; an assistant message from a previous answer can be
                passed back as is.
            model: the model slug; ``None`` lets the server pick the account default.
            stream: ``True`` returns an :class:`EventStream` of chunks.
            **params: any other ``ChatRequest`` field by wire name
                (``temperature``, ``max_tokens``, ``tools``, ``provider``,
                ``models``, ``response_format``, ...). ``None`` means not given.

        Returns:
            The :class:`~runtime._rest.types.ChatResult`, or with
            ``stream=True`` an open :class:`EventStream` the caller must close.

        Raises:
            ConfigurationError: an unknown parameter or a wrongly typed value
                (before any I/O).
            APIStatusError: the typed error of a non-2xx status (400, 401, 402,
                403, 404, 408, 413, 422, 429, 500, 502, 503, 524, 529).
            TransportError: the request could not be completed.
            RemoteProtocolError: the body is not a chat completion.

        Example::

            result = await client.chat.send(
                model="openai/gpt-5", messages=[{"role": "user", "content": "Hi"}]
            )
            print(result.choices[0].message.content)
        """
        body, streaming = _request_body(
            "Chat.send",
            ChatRequest,
            _CHAT_FIELDS,
            {"messages": _check_messages(messages)},
            model,
            stream,
            params,
        )
        if streaming:
            return await _open_stream(
                self._transport,
                "/chat/completions",
                body,
                _CHAT_CHUNK,
                _chat_chunk_from_result,
                "chat",
            )
        response = await self._transport.request("POST", "/chat/completions", content=body)
        return decode_body(_CHAT_RESULT, response.body, "a chat completion")


@final
class Completions:
    """``client.completions``: legacy text completions (``POST /completions``).

    OpenRouter still serves the endpoint although it left the official spec
    (wire-protocol §5).

    Args:
        transport: the client's transport.
    """

    def __init__(self, transport: ApiTransport) -> None:
        self._transport = transport

    @overload
    async def generate(
        self,
        *,
        prompt: str | Sequence[Any],
        model: str | None = ...,
        stream: Literal[False] = ...,
        **params: Any,
    ) -> LegacyCompletion: ...

    @overload
    async def generate(
        self,
        *,
        prompt: str | Sequence[Any],
        model: str | None = ...,
        stream: Literal[True],
        **params: Any,
    ) -> EventStream[LegacyCompletion]: ...

    @overload
    async def generate(
        self,
        *,
        prompt: str | Sequence[Any],
        model: str | None = ...,
        stream: bool,
        **params: Any,
    ) -> LegacyCompletion | EventStream[LegacyCompletion]: ...

    async def generate(
        self,
        *,
        prompt: str | Sequence[Any],
        model: str | None = None,
        stream: bool = False,
        **params: Any,
    ) -> LegacyCompletion | EventStream[LegacyCompletion]:
        """Complete a prompt.

        Args:
            prompt: a string, a list of strings, a list of token ids, or a list
                of token-id lists.
            model: the model slug.
            stream: ``True`` returns an :class:`EventStream` of
                :class:`~runtime._rest.types.LegacyCompletion` chunks (each
                carrying ``choices[].text`` pieces).
            **params: any other ``CompletionCreateParams`` field by wire name
                (``max_tokens``, ``temperature``, ``stop``, ``seed``, ...).

        Returns:
            The completion, or an open :class:`EventStream` the caller must close.

        Raises:
            ConfigurationError: a bad prompt, an unknown parameter or a wrongly
                typed value (before any I/O).
            APIStatusError: the typed error of a non-2xx status.
            RemoteProtocolError: the body is not a completion.

        Example::

            completion = await client.completions.generate(
                model="openai/gpt-3.5-turbo-instruct", prompt="Once upon a time"
            )
            print(completion.choices[0].text)
        """
        body, streaming = _request_body(
            "Completions.generate",
            CompletionRequest,
            _COMPLETION_FIELDS,
            {"prompt": _check_prompt(prompt)},
            model,
            stream,
            params,
        )
        if streaming:
            return await _open_stream(
                self._transport,
                "/completions",
                body,
                _COMPLETION,
                _completion_from_result,
                "completion",
            )
        response = await self._transport.request("POST", "/completions", content=body)
        return decode_body(_COMPLETION, response.body, "a completion")
