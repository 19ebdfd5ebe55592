"""The emulator core: one object that answers OpenRouter HTTP requests.

:class:`Emulator` owns all state (keys, credits, scripts, fault counters, the
request record) and exposes one entry point, :meth:`Emulator.handle`, taking
``(method, target, headers, body)`` and returning an :class:`EmulatorResponse`.
Front ends are thin: the ASGI app in :mod:`runtime.emulator._server` and, for
unit tests, an in-process transport adapter calling ``handle`` directly.

How an inference request is answered (``/responses``, ``/chat/completions``,
``/completions``):

1. Authenticate: an inference key (401 missing/unknown, 403 management key);
   402 when the key's limit or the account's credits are used up.
2. Decode the body (400 on malformed JSON, wrong types, no ``model``).
3. For each candidate model (``model``, then ``models`` in order): split off a
   ``:fault=<spec>`` suffix, merge it with an ``X-Emulator-Fault`` header, and
   find who answers: the script named by ``X-Emulator-Script``, else a script
   registered under the model name, else a built-in model, else the default
   queue (:meth:`Emulator.enqueue`) if it has turns. An unknown model or a
   status fault moves on to the next candidate; the last error is the answer.
4. Take the turn (see :meth:`runtime.emulator._queue.ScriptQueue.take` for how a
   turn's own fault decides whether it is consumed), charge its cost, and render
   it as SSE (when ``stream`` is true) or JSON, applying the fault.

The core is not thread-safe: use it from one trio run (or from sync code that
does not overlap with it). Every state change happens synchronously inside
``handle``, so concurrent requests in one trio run never see a half update.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Final, Literal, final

import msgspec
import trio

from runtime._base.errors import ConfigurationError
from runtime.emulator import _admin
from runtime.emulator._accounts import Accounts, KeyRecord, key_hash
from runtime.emulator._chat import (
    ChatMeta,
    chat_chunks,
    chat_json,
    completion_chunks,
    completion_json,
)
from runtime.emulator._http import (
    JSON_HEADERS,
    MAX_JSON_DEPTH,
    SSE_HEADERS,
    EmulatorRequest,
    EmulatorResponse,
    HTTPError,
    nesting_exceeds,
)
from runtime.emulator._models import (
    BUILTIN_MODELS,
    Conversation,
    ModelCard,
    builtin_turn,
    compute_usage,
)
from runtime.emulator._queue import ScriptQueue, Source
from runtime.emulator._requests import (
    ChatBody,
    CompletionsBody,
    ResponsesBody,
    chat_conversation,
    completions_conversation,
    decode_body,
    responses_conversation,
)
from runtime.emulator._responses import (
    ECHOED_FIELDS,
    ResponseMeta,
    response_events,
    response_json,
)
from runtime.emulator._script import Fault, Script, Turn, parse_fault
from runtime.emulator._stream import DROP, HANG, Pause, Step, StreamBody, frame_events

__all__ = ["Emulator", "EmulatorStatistics", "RecordedRequest"]

API: Final = "/api/v1"
DEFAULT_MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024
DEFAULT_RECORD_LIMIT: Final = 1000
_NO_FAULT: Final = Fault()
_KEY_PATH: Final = re.compile(r"^/api/v1/keys/([^/]+)$")
_ENCODER: Final = msgspec.json.Encoder()
_ANY_JSON: Final = msgspec.json.Decoder()
_RESPONSES_KEEPALIVE: Final = b": \n\n"
_CHAT_KEEPALIVE: Final = b": OPENROUTER PROCESSING\n\n"
_ALL_PARAMETERS: Final = (
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "response_format",
    "structured_outputs",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "include_reasoning",
)
_STATUS_MESSAGES: Final = {
    400: ("Bad request (emulator fault injection).", "invalid_request"),
    401: ("User not found.", "authentication"),
    402: ("Insufficient credits (emulator fault injection).", "payment_required"),
    403: ("Forbidden (emulator fault injection).", "permission_denied"),
    404: ("No endpoints found (emulator fault injection).", "not_found"),
    408: ("Request timed out (emulator fault injection).", "timeout"),
    413: ("Payload too large (emulator fault injection).", "payload_too_large"),
    422: ("Unprocessable entity (emulator fault injection).", "unprocessable"),
    429: ("Rate limit exceeded (emulator fault injection).", "rate_limit_exceeded"),
    500: ("Internal Server Error", "server"),
    502: ("Provider returned error (emulator fault injection).", "provider_unavailable"),
    503: ("No available providers (emulator fault injection).", "provider_overloaded"),
    524: ("Edge timeout (emulator fault injection).", "timeout"),
    529: ("Provider overloaded (emulator fault injection).", "provider_overloaded"),
}
_RETRY_AFTER_DEFAULT: Final = {429: 1.0, 503: 1.0}

_Api = Literal["responses", "chat", "completions"]
_Handler = Callable[[EmulatorRequest], Awaitable[EmulatorResponse]]


class RecordedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One request as the emulator received it.

    Attributes:
        method: the HTTP method.
        path: the path (``/api/v1/responses``), without the query.
        query: the raw query string ("" if none).
        headers: header names in lower case; ``authorization`` is redacted.
        json: the body decoded as JSON, or ``None`` (no body, or not JSON).
        api_key_hash: SHA-256 hex of the bearer key presented, or ``None``.
            Compare with :func:`runtime.emulator.key_hash` of the key you expect.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    json: Any = None
    api_key_hash: str | None = None


class EmulatorStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of an :class:`Emulator` (see :meth:`Emulator.statistics`)."""

    requests: int
    model_calls: int
    streams: int
    faults: int
    total_usage: float


_KEY_TEXT: Final = re.compile(r"[\x21-\x7e]{8,256}")


def _check_keys(inference: str | None, management: str | None) -> None:
    for name, key in (("inference_key", inference), ("management_key", management)):
        if key is not None and (not isinstance(key, str) or not _KEY_TEXT.fullmatch(key)):
            raise ConfigurationError(
                f"{name} must be 8 to 256 visible ASCII characters (no spaces), "
                f"not a {type(key).__name__} of length {len(key) if isinstance(key, str) else 0}."
            )
    if inference is not None and inference == management:
        raise ConfigurationError("inference_key and management_key must differ.")


@final
class Emulator:
    """An in-memory OpenRouter: keys, scripted and built-in models, faults.

    Create one per test (or per server). It is not bound to a trio run; only
    :meth:`handle` (and the bodies it returns) must run inside one.

    Args:
        seed: makes generated keys and codes deterministic.
        clock: wall clock in unix seconds (timestamps, key and code expiry).
        credits: the account's ``total_credits`` in USD.
        keepalive_before_first: keep-alive comments before the first event.
        keepalive_every: a keep-alive comment every this many events (0: none).
        coalesce: write everything ready as one chunk (default: one chunk per event).
        chunk_size: re-split every streamed body into chunks of this many bytes.
        record_limit: how many requests :attr:`requests` keeps (oldest dropped
            first); ``None`` keeps all.
        max_request_bytes: larger request bodies get 413.
        inference_key: the inference key's text, instead of a generated one
            (scripts and CI that need a key known in advance).
        management_key: the management key's text, likewise.

    Raises:
        ConfigurationError: an argument is out of range.
    """

    def __init__(
        self,
        *,
        seed: str = "emulator",
        clock: Callable[[], float] = time.time,
        credits: float = 100.0,
        keepalive_before_first: int = 3,
        keepalive_every: int = 16,
        coalesce: bool = False,
        chunk_size: int | None = None,
        record_limit: int | None = DEFAULT_RECORD_LIMIT,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        inference_key: str | None = None,
        management_key: str | None = None,
    ) -> None:
        _check_keys(inference_key, management_key)
        for name, value in (
            ("keepalive_before_first", keepalive_before_first),
            ("keepalive_every", keepalive_every),
            ("max_request_bytes", max_request_bytes),
        ):
            if value < 0:
                raise ConfigurationError(f"{name} {value!r} is negative")
        if chunk_size is not None and chunk_size < 1:
            raise ConfigurationError(f"chunk_size {chunk_size!r} is not positive")
        if record_limit is not None and record_limit < 0:
            raise ConfigurationError(f"record_limit {record_limit!r} is negative")
        self._clock = clock
        self._keepalive_before = keepalive_before_first
        self._keepalive_every = keepalive_every
        self._coalesce = coalesce
        self._chunk_size = chunk_size
        self.max_request_bytes = max_request_bytes
        self._accounts = Accounts(seed=seed, clock=clock, credits=credits)
        self._inference_key, _ = self._accounts.create_key(
            "emulator-inference", secret=inference_key
        )
        self._management_key, _ = self._accounts.create_key(
            "emulator-management", management=True, secret=management_key
        )
        self._scripts: dict[str, ScriptQueue] = {}
        self._default = ScriptQueue(Script())
        self._fault_hits: dict[str, int] = {}
        self._records: collections.deque[RecordedRequest] = collections.deque(maxlen=record_limit)
        self._serial = 0
        self._requests = 0
        self._model_calls = 0
        self._streams = 0
        self._faults = 0
        self._routes: dict[str, dict[str, _Handler]] = {
            f"{API}/responses": {"POST": self._responses},
            f"{API}/chat/completions": {"POST": self._chat},
            f"{API}/completions": {"POST": self._completions},
            f"{API}/models": {"GET": self._models},
            f"{API}/key": {"GET": self._key},
            f"{API}/keys": {"GET": self._keys, "POST": self._keys},
            f"{API}/credits": {"GET": self._credits},
            f"{API}/activity": {"GET": self._activity},
            f"{API}/auth/keys": {"POST": self._exchange},
            f"{API}/auth/keys/code": {"POST": self._auth_code},
            "/auth": {"GET": self._auth_page},
        }
        self._key_routes: dict[str, _Handler] = {
            "GET": self._key_by_hash,
            "PATCH": self._key_by_hash,
            "DELETE": self._key_by_hash,
        }

    # -- configuration -----------------------------------------------------

    @property
    def inference_key(self) -> str:
        """The inference API key created at start (``sk-or-v1-emu-…``)."""
        return self._inference_key

    @property
    def management_key(self) -> str:
        """The management API key created at start."""
        return self._management_key

    @property
    def requests(self) -> list[RecordedRequest]:
        """The recorded requests, oldest first (a copy)."""
        return list(self._records)

    def create_key(self, name: str, *, management: bool = False, limit: float | None = None) -> str:
        """Create another API key and return its plaintext.

        Args:
            name: the key's name.
            management: make a management key instead of an inference key.
            limit: the key's credit limit in USD (``None``: unlimited).
        """
        secret, _ = self._accounts.create_key(name, management=management, limit=limit)
        return secret

    def add_script(self, name: str, script: Script | Iterable[Turn]) -> None:
        """Register ``script`` under model name ``name`` (replacing any earlier one).

        Requests whose ``model`` is ``name`` (or that send ``X-Emulator-Script:
        name``) are answered from it; ``GET /models`` lists it with its pricing.

        Raises:
            ConfigurationError: ``name`` is empty, has a ``:`` or is a built-in model.
        """
        if not name or ":" in name or name in BUILTIN_MODELS:
            raise ConfigurationError(f"script name {name!r} is empty, has ':' or is built in")
        if not isinstance(script, Script):
            script = Script(turns=tuple(script))
        self._scripts[name] = ScriptQueue(script)

    def enqueue(self, *turns: Turn) -> None:
        """Append turns to the default queue.

        The default queue answers requests for any model that is neither a
        script nor built in, as long as it has turns, so a test can script a
        conversation without caring which model name the code under test sends.
        """
        queue = self._default
        remaining = queue.script.turns[queue.position :]
        queue.script = Script(turns=(*remaining, *turns))
        queue.position = 0

    def pending_turns(self, name: str | None = None) -> int:
        """Turns not yet consumed in script ``name`` (the default queue if ``None``).

        Raises:
            ConfigurationError: there is no script ``name``.
        """
        if name is None:
            return self._default.remaining
        queue = self._scripts.get(name)
        if queue is None:
            raise ConfigurationError(f"there is no script named {name!r}")
        return queue.remaining

    def reset_faults(self) -> None:
        """Forget how often each counted fault (``times=N``) has fired."""
        self._fault_hits.clear()

    def statistics(self) -> EmulatorStatistics:
        """Counters: requests, model calls, streams, injected faults, total usage."""
        return EmulatorStatistics(
            requests=self._requests,
            model_calls=self._model_calls,
            streams=self._streams,
            faults=self._faults,
            total_usage=round(self._accounts.total_usage, 12),
        )

    def model_cards(self) -> list[ModelCard]:
        """What ``GET /models`` lists: the built-in models, then the scripts by name."""
        cards = list(BUILTIN_MODELS.values())
        for name in sorted(self._scripts):
            script = self._scripts[name].script
            cards.append(
                ModelCard(
                    id=name,
                    name=f"Emulator script: {name}",
                    description=script.description,
                    pricing=script.pricing,
                    supported_parameters=_ALL_PARAMETERS,
                )
            )
        return cards

    def __repr__(self) -> str:
        return (
            f"<Emulator scripts={sorted(self._scripts)!r} "
            f"requests={self._requests} model_calls={self._model_calls}>"
        )

    # -- the entry point ---------------------------------------------------

    async def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes = b"",
    ) -> EmulatorResponse:
        """Answer one HTTP request.

        A checkpoint. It may sleep first when a ``delay`` fault asks for it; a
        cancellation during that sleep leaves the emulator consistent: the
        request is recorded and a script turn it took stays consumed, as when
        a client gives up waiting. Requests with an ``Origin`` header get
        permissive CORS headers, and ``OPTIONS`` preflights are answered 204.

        Args:
            method: the HTTP method.
            target: the path with an optional query string
                (``/api/v1/models?limit=2``); an absolute URL is accepted too.
            headers: the request headers (a mapping or name/value pairs).
            body: the raw request body.

        Returns:
            The response. A streamed body (an async iterator) belongs to the
            caller, who reads it once and should ``aclose()`` it if it stops early.
        """
        await trio.lowlevel.checkpoint()
        request = EmulatorRequest(method, target, headers, body)
        self._requests += 1
        self._record(request)
        legacy = request.path == f"{API}/completions"
        try:
            if len(body) > self.max_request_bytes:
                raise HTTPError(413, "The request body is too large.")
            if nesting_exceeds(body):
                raise HTTPError(
                    400,
                    f"The request body nests more than {MAX_JSON_DEPTH} levels deep "
                    "(objects and arrays).",
                )
            response = await self._route(request)(request)
        except HTTPError as error:
            response = error.response(legacy=legacy)
        origin = request.headers.get("origin")
        if origin is not None:
            response.headers += [
                ("access-control-allow-origin", origin),
                ("access-control-expose-headers", "x-generation-id, retry-after"),
                ("vary", "origin"),
            ]
        return response

    def _record(self, request: EmulatorRequest) -> None:
        if self._records.maxlen == 0:
            return
        headers = dict(request.headers)
        authorization = headers.get("authorization")
        presented = None
        if authorization is not None:
            headers["authorization"] = "<redacted>"
            _, _, secret = authorization.strip().partition(" ")
            presented = key_hash(secret.strip()) if secret.strip() else None
        try:
            decoded = _ANY_JSON.decode(request.body) if request.body else None
        except (msgspec.DecodeError, RecursionError):
            decoded = None
        self._records.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=request.query_string,
                headers=headers,
                json=decoded,
                api_key_hash=presented,
            )
        )

    def _route(self, request: EmulatorRequest) -> _Handler:
        methods = self._routes.get(request.path)
        if methods is None and _KEY_PATH.match(request.path):
            methods = self._key_routes
        if methods is None:
            raise HTTPError(404, f"Not Found: {request.method} {request.path}")
        handler = methods.get(request.method)
        if handler is None and request.method == "OPTIONS":
            return partial(self._preflight, ", ".join(sorted(methods)))
        if handler is None:
            allowed = ", ".join(sorted(methods))
            raise HTTPError(
                405,
                f"Method {request.method} is not allowed here; use {allowed}.",
                headers=[("allow", allowed)],
            )
        return handler

    # -- auth helpers ------------------------------------------------------

    def _inference_caller(self, request: EmulatorRequest) -> KeyRecord:
        record = self._accounts.authenticate(request.headers.get("authorization"))
        if record.management:
            raise HTTPError(
                403, "Management keys cannot be used for inference; use an inference key."
            )
        self._accounts.check_budget(record)
        return record

    def _management_caller(self, request: EmulatorRequest) -> None:
        record = self._accounts.authenticate(request.headers.get("authorization"))
        if not record.management:
            raise HTTPError(403, "Only management keys can perform this operation.")

    # -- inference ---------------------------------------------------------

    async def _responses(self, request: EmulatorRequest) -> EmulatorResponse:
        return await self._inference(request, "responses")

    async def _chat(self, request: EmulatorRequest) -> EmulatorResponse:
        return await self._inference(request, "chat")

    async def _completions(self, request: EmulatorRequest) -> EmulatorResponse:
        return await self._inference(request, "completions")

    async def _inference(self, request: EmulatorRequest, api: _Api) -> EmulatorResponse:
        caller = self._inference_caller(request)
        body: ResponsesBody | ChatBody | CompletionsBody
        echo: dict[str, Any] = {}
        if api == "responses":
            body = decode_body(request.body, ResponsesBody)
            if body.store:
                raise HTTPError(400, "store: true is not supported (the API is stateless).")
            if body.previous_response_id is not None:
                raise HTTPError(
                    400,
                    "previous_response_id is not supported; send the whole conversation in input.",
                )
            conversation = responses_conversation(body)
            echo = {
                name: value
                for name in ECHOED_FIELDS
                if (value := getattr(body, name, None)) is not None
            }
        elif api == "chat":
            body = decode_body(request.body, ChatBody)
            if not body.messages:
                raise HTTPError(400, "messages must not be empty.")
            conversation = chat_conversation(body)
        else:
            body = decode_body(request.body, CompletionsBody)
            conversation = completions_conversation(body)
        header_text = request.headers.get("x-emulator-fault")
        header_fault = self._parse_fault_text(header_text) if header_text else None
        script_name = request.headers.get("x-emulator-script")
        candidates = [body.model] if body.model is not None else []
        candidates += [name for name in body.models if name not in candidates]
        failure: HTTPError | None = None
        for candidate in candidates:
            base, _, suffix = candidate.partition(":fault=")
            fault = self._parse_fault_text(suffix) if suffix else None
            if header_fault is not None:
                fault = header_fault if fault is None else fault.merged(header_fault)
            source = self._source(base, script_name)
            if source is None:
                failure = HTTPError(
                    400,
                    f"{base} is not a valid model ID",
                    metadata={"error_type": "invalid_request"},
                )
                continue
            active = self._fire(fault, key=f"{suffix};{header_text or ''}")
            if active.status is not None:
                failure = self._status_error(active)
                if active.delay:
                    await trio.sleep(active.delay)
                continue
            return await self._answer(api, body, echo, caller, conversation, source, active)
        assert failure is not None  # decode_body guarantees a candidate
        raise failure

    def _parse_fault_text(self, text: str) -> Fault:
        try:
            return parse_fault(text)
        except ConfigurationError as exc:
            raise HTTPError(400, f"Invalid emulator fault: {exc}.") from None

    def _fire(self, fault: Fault | None, *, key: str) -> Fault:
        """``fault`` if it applies to this request (counting ``times``), else no fault."""
        if fault is None:
            return _NO_FAULT
        if fault.times is not None:
            counter = fault.key or key
            hits = self._fault_hits.get(counter, 0)
            if hits >= fault.times:
                return _NO_FAULT
            self._fault_hits[counter] = hits + 1
        self._faults += 1
        return fault

    def _status_error(self, fault: Fault) -> HTTPError:
        assert fault.status is not None
        message, error_type = _STATUS_MESSAGES.get(
            fault.status, (f"Emulated error {fault.status}.", "unmapped")
        )
        retry_after = fault.retry_after
        if retry_after is None:
            retry_after = _RETRY_AFTER_DEFAULT.get(fault.status)
        return HTTPError(
            fault.status,
            message,
            metadata={"error_type": error_type, "emulator_fault": True},
            retry_after=retry_after,
        )

    def _source(self, model: str, script_name: str | None) -> Source | None:
        if script_name is not None:
            queue = self._scripts.get(script_name)
            if queue is None:
                raise HTTPError(400, f"There is no emulator script named {script_name!r}.")
            return Source(model, queue.script.pricing, queue)
        for name in (model, model.partition(":")[0]):
            queue = self._scripts.get(name)
            if queue is not None:
                return Source(model, queue.script.pricing, queue)
            card = BUILTIN_MODELS.get(name)
            if card is not None:
                return Source(card.id, card.pricing)
        if self._default.remaining or (self._default.script.loop and self._default.script.turns):
            return Source(model, self._default.script.pricing, self._default)
        return None

    async def _answer(
        self,
        api: _Api,
        body: ResponsesBody | ChatBody | CompletionsBody,
        echo: dict[str, Any],
        caller: KeyRecord,
        conversation: Conversation,
        source: Source,
        fault: Fault,
    ) -> EmulatorResponse:
        if source.queue is None:
            turn = builtin_turn(source.model, conversation)
        else:
            taken = source.queue.take()
            if taken is None:
                raise HTTPError(400, f"The emulator script for {source.model!r} has no turns left.")
            turn, turn_fault = taken
            if turn_fault is not None:
                self._faults += 1
                fault = fault.merged(turn_fault)
        if fault.delay:
            await trio.sleep(fault.delay)
        if fault.status is not None:
            raise self._status_error(fault)
        self._model_calls += 1
        self._serial += 1
        created = int(self._clock())
        serial = f"emu{self._serial:06d}"
        response_id = f"gen-{created}-{serial}"
        model = turn.model or source.model
        usage = compute_usage(turn, conversation.prompt_tokens, source.pricing)
        self._accounts.charge(
            caller,
            model=model,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=usage.cost,
        )
        headers = [("x-generation-id", response_id)]
        stream = bool(body.stream) and not fault.json_body
        payload: Any
        if api == "responses":
            meta = ResponseMeta(
                response_id=response_id, serial=serial, created_at=created, model=model, echo=echo
            )
            if stream:
                events = response_events(turn, meta, usage, fault)
                return self._sse(events, fault, _RESPONSES_KEEPALIVE, headers)
            payload = response_json(turn, meta, usage, fault)
        else:
            chat_meta = ChatMeta(
                response_id=response_id, serial=serial, created=created, model=model
            )
            if api == "chat":
                if stream:
                    return self._sse(
                        chat_chunks(turn, chat_meta, usage, fault), fault, _CHAT_KEEPALIVE, headers
                    )
                payload = chat_json(turn, chat_meta, usage, fault)
            else:
                if stream:
                    return self._sse(
                        completion_chunks(turn, chat_meta, usage, fault),
                        fault,
                        _CHAT_KEEPALIVE,
                        headers,
                    )
                payload = completion_json(turn, chat_meta, usage)
        return self._json(payload, fault, headers)

    def _body(self, steps: list[Step], fault: Fault) -> StreamBody:
        coalesce = self._coalesce if fault.coalesce is None else fault.coalesce
        chunk_size = fault.chunk_size or self._chunk_size
        return StreamBody(steps, coalesce=coalesce, chunk_size=chunk_size)

    def _sse(
        self,
        events: Sequence[Any],
        fault: Fault,
        keepalive: bytes,
        headers: list[tuple[str, str]],
    ) -> EmulatorResponse:
        self._streams += 1
        steps = frame_events(
            events,
            fault,
            keepalive=keepalive,
            keepalive_before=self._keepalive_before,
            keepalive_every=self._keepalive_every,
        )
        return EmulatorResponse(200, [*SSE_HEADERS, *headers], self._body(steps, fault))

    def _json(self, payload: Any, fault: Fault, headers: list[tuple[str, str]]) -> EmulatorResponse:
        data = _ENCODER.encode(payload)
        steps: list[Step] = []
        if fault.slow:
            steps.append(Pause(fault.slow))
        if fault.drop_after is not None:
            steps += [data[: len(data) // 2], DROP]
        elif fault.hang:
            steps.append(HANG)
        elif fault.malformed_after is not None:
            steps.append(data[: len(data) // 2])
        elif not steps and fault.chunk_size is None:
            return EmulatorResponse(200, [*JSON_HEADERS, *headers], data)
        else:
            steps.append(data)
        return EmulatorResponse(200, [*JSON_HEADERS, *headers], self._body(steps, fault))

    # -- the other endpoints -----------------------------------------------

    async def _preflight(self, allowed: str, request: EmulatorRequest) -> EmulatorResponse:
        """A CORS preflight: browsers may call every endpoint from any origin."""
        wanted = request.headers.get(
            "access-control-request-headers", "authorization, content-type"
        )
        headers = [
            ("access-control-allow-methods", allowed),
            ("access-control-allow-headers", wanted),
            ("access-control-max-age", "600"),
        ]
        return EmulatorResponse(204, headers, b"")

    async def _models(self, request: EmulatorRequest) -> EmulatorResponse:
        return _admin.models_response(request, self.model_cards())

    async def _key(self, request: EmulatorRequest) -> EmulatorResponse:
        record = self._accounts.authenticate(request.headers.get("authorization"))
        return _admin.key_response(record)

    async def _keys(self, request: EmulatorRequest) -> EmulatorResponse:
        self._management_caller(request)
        if request.method == "POST":
            return _admin.create_key_response(request, self._accounts)
        return _admin.list_keys_response(request, self._accounts)

    async def _key_by_hash(self, request: EmulatorRequest) -> EmulatorResponse:
        self._management_caller(request)
        match = _KEY_PATH.match(request.path)
        assert match is not None  # routed here only on a match
        return _admin.key_by_hash_response(request, self._accounts, match.group(1))

    async def _credits(self, request: EmulatorRequest) -> EmulatorResponse:
        self._management_caller(request)
        return _admin.credits_response(self._accounts)

    async def _activity(self, request: EmulatorRequest) -> EmulatorResponse:
        self._management_caller(request)
        return _admin.activity_response(request, self._accounts)

    async def _auth_code(self, request: EmulatorRequest) -> EmulatorResponse:
        self._accounts.authenticate(request.headers.get("authorization"))
        return _admin.auth_code_response(request, self._accounts)

    async def _exchange(self, request: EmulatorRequest) -> EmulatorResponse:
        return _admin.exchange_response(request, self._accounts)

    async def _auth_page(self, request: EmulatorRequest) -> EmulatorResponse:
        return _admin.auth_page_response(request, self._accounts)
