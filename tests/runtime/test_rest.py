"""Unit tests for the REST namespaces (``runtime._rest``: resources, chat, checks, types).

Rules: no network. Argument validation runs against a transport whose HTTP
layer fails the test on any request, so a check that let a call through to
I/O would fail with ``AssertionError`` instead of ``ConfigurationError``.
Stream parsing is driven with hand-written byte chunks; pagination corner
cases that the emulator cannot produce go through ``httpx.MockTransport``.
Everything that awaits is bounded by ``trio.fail_after``. The loopback tests
against the emulator live in test_rest_emulator.py.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
import trio
import trio.testing

from runtime._base.errors import (
    ConfigurationError,
    RemoteProtocolError,
    ResponseFailedError,
)
from runtime._http.retry import NO_RETRY
from runtime._http.transport import ApiTransport
from runtime._protocol.wire import ResponsesRequest
from runtime._rest.chat import Chat, Completions, EventStream
from runtime._rest.models import Models
from runtime._rest.resources import (
    Analytics,
    ApiKeys,
    Beta,
    CreditsAPI,
    OAuth,
    Responses,
)
from runtime._rest.types import (
    ChatAssistantMessage,
    ChatRequest,
    ChatResult,
    ChatStreamChunk,
    ChatUserMessage,
    CreatedKey,
    ExchangedKey,
    KeyInfo,
    LegacyCompletion,
    Model,
    ModelsPage,
    redact_key,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

BOUND = 5.0
SECRET_KEY = "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"
HASH = "f01d52606dc8f0a8303a7b5cc3fa07109c2e346cec7c0a16b40de462992ce943"
CHAT_DECODER = msgspec.json.Decoder(ChatStreamChunk)


class Api:
    """Every namespace over one transport that cannot reach anything."""

    def __init__(self, transport: ApiTransport) -> None:
        self.api_keys = ApiKeys(transport)
        self.o_auth = OAuth(transport)
        self.models = Models(transport)
        self.chat = Chat(transport)
        self.completions = Completions(transport)
        self.analytics = Analytics(transport)
        self.credits = CreditsAPI(transport)
        self.responses = Responses(transport)


class NoNetwork(httpx.AsyncBaseTransport):
    """An HTTP transport that fails the test if a request ever reaches it."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"a request went out although validation should stop it: {request!r}")


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    transport = ApiTransport(
        api_key="sk-or-v1-unit-test-key-0000000000",
        base_url="http://127.0.0.1:9/api/v1",
        retry=NO_RETRY,
        http_transport=NoNetwork(),
    )
    async with transport:
        yield Api(transport)


# --------------------------------------------------------------------------- validation

INVALID_CALLS: list[tuple[str, Callable[[Api], Awaitable[object]], str]] = [
    (
        "keys.list include_disabled",
        lambda a: a.api_keys.list(include_disabled="yes"),  # type: ignore[arg-type]
        r"^include_disabled must be True or False, got 'yes'$",
    ),
    ("keys.list offset", lambda a: a.api_keys.list(offset=-1), r"^offset must be >= 0, got -1$"),
    (
        "keys.list offset bool",
        lambda a: a.api_keys.list(offset=True),
        r"^offset must be an integer, got True$",
    ),
    (
        "keys.list workspace",
        lambda a: a.api_keys.list(workspace_id="ws-1"),
        r"^workspace_id must be a UUID such as a workspace id, got 'ws-1'$",
    ),
    (
        "keys.create name",
        lambda a: a.api_keys.create(name=""),
        r"^name must be a non-empty string, got ''$",
    ),
    (
        "keys.create limit",
        lambda a: a.api_keys.create(name="k", limit=-5),
        r"^limit must be >= 0, got -5$",
    ),
    (
        "keys.create limit nan",
        lambda a: a.api_keys.create(name="k", limit=float("nan")),
        r"^limit must be a finite number, got nan$",
    ),
    (
        "keys.create limit_reset",
        lambda a: a.api_keys.create(name="k", limit_reset="hourly"),  # type: ignore[arg-type]
        r"^limit_reset must be one of 'daily', 'weekly', 'monthly', got 'hourly'$",
    ),
    (
        "keys.create expires_at",
        lambda a: a.api_keys.create(name="k", expires_at="tomorrow"),
        r"^expires_at must be an ISO 8601 date-time such as '2027-12-31T23:59:59Z', "
        r"got 'tomorrow'$",
    ),
    (
        "keys.create naive expires_at",
        lambda a: a.api_keys.create(name="k", expires_at=datetime.datetime(2030, 1, 1)),
        r"^expires_at must be timezone-aware \(OpenRouter takes UTC\), "
        r"got datetime\.datetime\(2030",
    ),
    (
        "keys.create creator",
        lambda a: a.api_keys.create(name="k", creator_user_id=""),
        r"^creator_user_id must be a non-empty string, got ''$",
    ),
    (
        "keys.get hash slash",
        lambda a: a.api_keys.get("../credits"),
        r"^hash must be a key hash as returned by the keys API, got '\.\./credits'$",
    ),
    (
        "keys.get hash empty",
        lambda a: a.api_keys.get(""),
        r"^hash must be a key hash as returned by the keys API, got ''$",
    ),
    (
        "keys.update disabled",
        lambda a: a.api_keys.update(HASH, disabled=1),  # type: ignore[arg-type]
        r"^disabled must be True or False, got 1$",
    ),
    (
        "keys.update name",
        lambda a: a.api_keys.update(HASH, name=""),
        r"^name must be a non-empty string, got ''$",
    ),
    (
        "keys.delete hash",
        lambda a: a.api_keys.delete("a b"),
        r"^hash must be a key hash as returned by the keys API, got 'a b'$",
    ),
    (
        "oauth.create_auth_code url",
        lambda a: a.o_auth.create_auth_code(callback_url="/cb"),
        r"^callback_url must be an absolute URL, got '/cb'$",
    ),
    (
        "oauth.create_auth_code lone method",
        lambda a: a.o_auth.create_auth_code(
            callback_url="https://a.example/cb", code_challenge_method="S256"
        ),
        r"^code_challenge_method='S256' needs a code_challenge$",
    ),
    (
        "oauth.create_auth_code method",
        lambda a: a.o_auth.create_auth_code(
            callback_url="https://a.example/cb",
            code_challenge="c",
            code_challenge_method="S512",  # type: ignore[arg-type]
        ),
        r"^code_challenge_method must be one of 'S256', 'plain', got 'S512'$",
    ),
    (
        "oauth.create_auth_code label",
        lambda a: a.o_auth.create_auth_code(
            callback_url="https://a.example/cb", key_label="x" * 101
        ),
        r"^key_label must be at most 100 characters, got 101: 'xxx",
    ),
    (
        "oauth.create_auth_code usage_limit_type",
        lambda a: a.o_auth.create_auth_code(
            callback_url="https://a.example/cb",
            usage_limit_type="yearly",  # type: ignore[arg-type]
        ),
        r"^usage_limit_type must be one of 'daily', 'weekly', 'monthly', got 'yearly'$",
    ),
    (
        "oauth.exchange code",
        lambda a: a.o_auth.exchange_auth_code_for_api_key(code=""),
        r"^code must be a non-empty string, got ''$",
    ),
    (
        "oauth.exchange verifier short",
        lambda a: a.o_auth.exchange_auth_code_for_api_key(code="c", code_verifier="short"),
        r"^Code verifier must be at least 43 characters$",
    ),
    (
        "oauth.exchange method",
        lambda a: a.o_auth.exchange_auth_code_for_api_key(code="c", code_challenge_method="s256"),  # type: ignore[arg-type]
        r"^code_challenge_method must be one of 'S256', 'plain', got 's256'$",
    ),
    (
        "models.list_all unknown filter",
        lambda a: a.models.list_all(supported_params="tools"),
        r"^Models\.list got an unknown filter 'supported_params'; known: arch, category",
    ),
    (
        "models.list_all limit",
        lambda a: a.models.list_all(limit=1001),
        r"^limit must be <= 1000, got 1001$",
    ),
    (
        "models.list_all region",
        lambda a: a.models.list_all(region="asia"),
        r"^region must be one of 'eu', 'us', got 'asia'$",
    ),
    (
        "models.list_all csv",
        lambda a: a.models.list_all(supported_parameters=[]),
        r"^supported_parameters must be a string or a non-empty sequence of strings, got \[\]$",
    ),
    (
        "models.list_all rate",
        lambda a: a.models.list_all(min_tool_success_rate=1.5),
        r"^min_tool_success_rate must be <= 1, got 1\.5$",
    ),
    (
        "chat.send messages empty",
        lambda a: a.chat.send(messages=[]),
        r"^messages must be a non-empty list of chat messages, got \[\]$",
    ),
    (
        "chat.send messages str",
        lambda a: a.chat.send(messages="hi"),  # type: ignore[arg-type]
        r"^messages must be a non-empty list of chat messages, got 'hi'$",
    ),
    (
        "chat.send role",
        lambda a: a.chat.send(messages=[{"role": "bot", "content": "x"}]),
        r"^messages\[0\] has role 'bot'; expected one of system, developer, user, assistant, tool$",
    ),
    (
        "chat.send message type",
        lambda a: a.chat.send(messages=[{"role": "user", "content": "x"}, 3]),  # type: ignore[list-item]
        r"^messages\[1\] must be a chat message or a dict, got 3$",
    ),
    (
        "chat.send unknown param",
        lambda a: a.chat.send(messages=[{"role": "user", "content": "x"}], temprature=0.5),
        r"^Chat\.send got an unknown parameter 'temprature'$",
    ),
    (
        "chat.send wrong type",
        lambda a: a.chat.send(messages=[{"role": "user", "content": "x"}], temperature="hot"),
        r"^Chat\.send got temperature='hot', which is invalid: "
        r"Expected `float \| null`, got `str`$",
    ),
    (
        "chat.send stream",
        lambda a: a.chat.send(messages=[{"role": "user", "content": "x"}], stream=1),  # type: ignore[call-overload]
        r"^stream must be True or False, got 1$",
    ),
    (
        "chat.send model",
        lambda a: a.chat.send(messages=[{"role": "user", "content": "x"}], model=""),
        r"^model must be a non-empty string or None, got ''$",
    ),
    (
        "chat.send unencodable",
        lambda a: a.chat.send(messages=[{"role": "user", "content": object()}]),
        r"^Chat\.send got a value that cannot be sent as JSON \(",
    ),
    (
        "completions.generate prompt",
        lambda a: a.completions.generate(prompt=[1, "a"]),
        r"^prompt must be a string, a list of strings, a list of token ids or a list of token-id "
        r"lists, got \[1, 'a'\]$",
    ),
    (
        "completions.generate param",
        lambda a: a.completions.generate(prompt="p", max_tokens="10"),
        r"^Completions\.generate got max_tokens='10', which is invalid: Expected `int \| null`",
    ),
    (
        "analytics date",
        lambda a: a.analytics.get_user_activity(date="2026-13-01"),
        r"^date must be a date in YYYY-MM-DD form, got '2026-13-01'$",
    ),
    (
        "analytics datetime",
        lambda a: a.analytics.get_user_activity(date=datetime.datetime(2026, 1, 1)),
        r"^date must be a date, not a date-time, got datetime\.datetime\(2026, 1, 1, 0, 0\)$",
    ),
    (
        "analytics group_by",
        lambda a: a.analytics.get_user_activity(group_by="model"),  # type: ignore[arg-type]
        r"^group_by must be one of 'workspace', got 'model'$",
    ),
    (
        "analytics hash",
        lambda a: a.analytics.get_user_activity(api_key_hash="x/y"),
        r"^hash must be a key hash as returned by the keys API, got 'x/y'$",
    ),
    (
        "responses.send stream",
        lambda a: a.responses.send({"model": "m", "stream": True}),
        r"^Responses\.send does not stream, got stream=True; use call_model to stream$",
    ),
    (
        "responses.send unknown",
        lambda a: a.responses.send({"model": "m", "inputs": "x"}),
        r"^Responses\.send got unknown request fields \['inputs'\]$",
    ),
    (
        "responses.send type",
        lambda a: a.responses.send("hi"),  # type: ignore[arg-type]
        r"^Responses\.send takes a ResponsesRequest or a dict, got 'hi'$",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"),
    [pytest.param(call, message, id=name) for name, call, message in INVALID_CALLS],
)
async def test_bad_arguments_raise_configuration_error_before_any_io(
    api: Api, call: Callable[[Api], Awaitable[object]], message: str
) -> None:
    with trio.fail_after(BOUND), pytest.raises(ConfigurationError, match=message):
        await call(api)


async def test_models_list_validates_when_called_not_when_iterated(api: Api) -> None:
    with pytest.raises(ConfigurationError, match=r"^context must be >= 1, got 0$"):
        api.models.list(context=0)


async def test_verifier_errors_do_not_quote_the_verifier(api: Api) -> None:
    secret = "s3cret!" * 8
    with (
        trio.fail_after(BOUND),
        pytest.raises(
            ConfigurationError, match=r"^Code verifier must only contain unreserved characters"
        ) as caught,
    ):
        await api.o_auth.exchange_auth_code_for_api_key(code="c", code_verifier=secret)
    assert secret not in str(caught.value)


async def test_authorization_url_uses_the_origin_of_the_base_url(api: Api) -> None:
    """O-03: the client's helper delegates to runtime._protocol.oauth with the client's base URL."""
    pair = api.o_auth.create_sha256_code_challenge()
    url = api.o_auth.create_authorization_url(
        callback_url="http://localhost:3000/cb?x=1",
        code_challenge=pair.code_challenge,
        code_challenge_method="S256",
        limit=0,
    )
    assert url == (
        "http://127.0.0.1:9/auth?callback_url=http%3A%2F%2Flocalhost%3A3000%2Fcb%3Fx%3D1"
        f"&code_challenge={pair.code_challenge}&code_challenge_method=S256&limit=0"
    )


async def test_sha256_code_challenge_takes_no_arguments_and_is_random(api: Api) -> None:
    """O-03: always random, 43-character verifier, S256 challenge of it."""
    first = api.o_auth.create_sha256_code_challenge()
    second = api.o_auth.create_sha256_code_challenge()
    assert first.code_verifier != second.code_verifier
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first.code_verifier)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first.code_challenge)


async def test_authorization_url_refuses_a_lone_pkce_field(api: Api) -> None:
    with pytest.raises(ConfigurationError, match=r"^PKCE needs both"):
        api.o_auth.create_authorization_url(
            callback_url="https://a.example/cb", code_challenge="abc"
        )


async def test_beta_responses_is_a_deprecated_alias_of_responses(api: Api) -> None:
    """N-01: ``client.beta.responses`` is the same object and warns."""
    beta = Beta(api.responses)
    with pytest.warns(DeprecationWarning, match=r"^client\.beta\.responses is deprecated"):
        alias = beta.responses
    assert alias is api.responses
    assert alias.send == api.responses.send


# --------------------------------------------------------------------------- types


def test_created_key_repr_redacts_the_secret() -> None:
    created = msgspec.json.decode(
        msgspec.json.encode({"data": {"hash": HASH, "name": "n"}, "key": SECRET_KEY}),
        type=CreatedKey,
    )
    assert created.key == SECRET_KEY
    assert created.hash == HASH
    for text in (repr(created), str(created), f"{created}", repr([created])):
        assert SECRET_KEY not in text
        assert "sk-or-v1-…c96" in text
    assert all(SECRET_KEY not in str(value) for _, value in created.__rich_repr__())


def test_exchanged_key_repr_redacts_the_secret() -> None:
    exchanged = ExchangedKey(key=SECRET_KEY, user_id="user_1")
    assert repr(exchanged) == "ExchangedKey(key='sk-or-v1-…c96', user_id='user_1')"
    assert dict(exchanged.__rich_repr__()) == {"key": "sk-or-v1-…c96", "user_id": "user_1"}


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        (SECRET_KEY, "sk-or-v1-…c96"),
        ("sk-or-v1-short", "***"),
        ("not-an-openrouter-key-but-long-enough", "***"),
        ("", "***"),
    ],
)
def test_redact_key(key: str, shown: str) -> None:
    assert redact_key(key) == shown


def test_inbound_types_ignore_unknown_fields_and_default_missing_ones() -> None:
    info = msgspec.json.decode(
        b'{"hash": "h", "name": "n", "brand_new_field": {"x": 1}}', type=KeyInfo
    )
    assert info == KeyInfo(hash="h", name="n")


def test_identity_fields_stay_required() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"missing required field `hash`"):
        msgspec.json.decode(b'{"name": "n"}', type=KeyInfo)
    with pytest.raises(msgspec.ValidationError, match=r"missing required field `id`"):
        msgspec.json.decode(b'{"name": "n"}', type=Model)


def test_model_prices_are_decimals_and_round_trip() -> None:
    raw = b'{"data":[{"id":"a/b","pricing":{"prompt":"0.0000025","completion":"0.00001"}}]}'
    page = msgspec.json.decode(raw, type=ModelsPage)
    pricing = page.data[0].pricing
    assert pricing.prompt == Decimal("0.0000025")
    assert pricing.prompt * 1_000_000 == Decimal("2.5")
    again = msgspec.json.decode(msgspec.json.encode(page.data[0]))
    assert again["pricing"]["prompt"] == "0.0000025"


def test_assistant_message_from_a_result_re_encodes_as_a_valid_message(openapi: Any) -> None:
    result = msgspec.json.decode(
        b'{"id":"gen-1","object":"chat.completion","created":1,"model":"m",'
        b'"system_fingerprint":null,"choices":[{"index":0,"finish_reason":"tool_calls",'
        b'"message":{"role":"assistant","content":null,"reasoning":null,"refusal":null,'
        b'"tool_calls":[{"id":"call_1","type":"function",'
        b'"function":{"name":"f","arguments":"{}"}}]}}]}',
        type=ChatResult,
    )
    message = msgspec.json.decode(msgspec.json.encode(result.choices[0].message))
    assert message == {
        "role": "assistant",
        "tool_calls": [
            {"id": "call_1", "function": {"name": "f", "arguments": "{}"}, "type": "function"}
        ],
    }
    openapi.validate("ChatAssistantMessage", message)
    request = ChatRequest(
        messages=[
            ChatUserMessage(content="hi"),
            result.choices[0].message,
            {"role": "tool", "tool_call_id": "call_1", "content": "42"},
        ],
        model="m",
    )
    openapi.validate("ChatRequest", msgspec.json.decode(msgspec.json.encode(request)))


def test_chat_message_structs_encode_their_role() -> None:
    assert msgspec.json.encode(ChatAssistantMessage(content="x")) == (
        b'{"role":"assistant","content":"x"}'
    )
    assert msgspec.json.encode(ChatUserMessage(content="y")) == b'{"role":"user","content":"y"}'


# --------------------------------------------------------------------------- event streams


class Body:
    """A scripted response body: yields ``chunks``, then ends or raises ``error``."""

    def __init__(self, chunks: Sequence[bytes], error: BaseException | None = None) -> None:
        self._chunks = list(chunks)
        self._error = error
        self.reads = 0

    def __aiter__(self) -> Body:
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.reads < len(self._chunks):
            self.reads += 1
            return self._chunks[self.reads - 1]
        if self._error is not None:
            raise self._error
        raise StopAsyncIteration


def chat_stream(body: Body, released: list[str]) -> EventStream[ChatStreamChunk]:
    stack = contextlib.AsyncExitStack()

    async def release() -> None:
        released.append("released")

    stack.push_async_callback(release)
    return EventStream(stack=stack, body=body, decoder=CHAT_DECODER, what="chat")


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> bytes:
    payload = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


ERROR_CHUNK = chunk(
    "",
    "error",
    error={
        "code": 429,
        "message": "Rate limit exceeded",
        "metadata": {"error_type": "rate_limit_exceeded"},
    },
)


async def contents(stream: EventStream[ChatStreamChunk]) -> list[str | None]:
    return [item.choices[0].delta.content async for item in stream if item.choices]


async def collect(stream: EventStream[ChatStreamChunk], seen: list[str | None]) -> None:
    """Record each chunk's content as it arrives (so a test sees what came before an error)."""
    async for item in stream:
        seen.append(item.choices[0].delta.content)


async def test_stream_yields_chunks_in_order_and_stops_reading_at_done() -> None:
    released: list[str] = []
    body = Body(
        [
            b": OPENROUTER PROCESSING\n\n" + chunk("Hel"),
            chunk("lo") + chunk(None, "stop"),
            b"data: [DONE]\n\n",
            chunk("never read"),
        ]
    )
    with trio.fail_after(BOUND):
        stream = chat_stream(body, released)
        assert await contents(stream) == ["Hel", "lo", None]
    assert body.reads == 3
    assert released == ["released"]


async def test_stream_survives_any_chunking() -> None:
    data = chunk("Hé") + chunk("llo") + chunk(None, "stop") + b"data: [DONE]\n\n"
    for size in (1, 2, 7):
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        with trio.fail_after(BOUND):
            assert await contents(chat_stream(Body(pieces), [])) == ["Hé", "llo", None]


async def test_in_band_error_is_raised_after_the_chunks_before_it() -> None:
    """wire-protocol §4.5: the error chunk ends the stream with ResponseFailedError."""
    released: list[str] = []
    stream = chat_stream(Body([chunk("a") + chunk("b") + ERROR_CHUNK, chunk("c")]), released)
    seen: list[str | None] = []
    with trio.fail_after(BOUND), pytest.raises(ResponseFailedError) as caught:
        await collect(stream, seen)
    assert seen == ["a", "b"]
    error = caught.value
    assert (error.message, error.code, error.error_type) == (
        "Rate limit exceeded",
        429,
        "rate_limit_exceeded",
    )
    assert isinstance(error.response, ChatStreamChunk)
    assert released == ["released"]


async def test_string_error_codes_are_accepted() -> None:
    bad = chunk("", "error", error={"code": "server_error", "message": "boom"})
    with trio.fail_after(BOUND), pytest.raises(ResponseFailedError, match=r"^boom$") as caught:
        await contents(chat_stream(Body([bad]), []))
    assert caught.value.code == "server_error"


async def test_eof_after_a_finish_reason_is_a_clean_end() -> None:
    with trio.fail_after(BOUND):
        assert await contents(chat_stream(Body([chunk("a"), chunk(None, "stop")]), [])) == [
            "a",
            None,
        ]


async def test_eof_after_usage_only_chunk_is_a_clean_end() -> None:
    usage = (
        b'data: {"id":"g","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,'
        b'"total_tokens":2}}\n\n'
    )
    with trio.fail_after(BOUND):
        items = [item async for item in chat_stream(Body([chunk("a"), usage]), [])]
    assert items[-1].usage is not None
    assert items[-1].usage.total_tokens == 2


async def test_eof_before_any_finish_is_a_remote_protocol_error() -> None:
    released: list[str] = []
    seen: list[str | None] = []
    with (
        trio.fail_after(BOUND),
        pytest.raises(
            RemoteProtocolError, match=r"^The chat stream ended before a finish_reason or \[DONE\]$"
        ),
    ):
        await collect(chat_stream(Body([chunk("a"), chunk("b")]), released), seen)
    assert seen == ["a", "b"]
    assert released == ["released"]


async def test_undecodable_chunk_blames_the_server() -> None:
    with (
        trio.fail_after(BOUND),
        pytest.raises(
            RemoteProtocolError, match=r"^The server sent a chat chunk that could not be decoded \("
        ) as caught,
    ):
        await contents(chat_stream(Body([chunk("a"), b'data: {"choices": 3}\n\n']), []))
    assert isinstance(caught.value.__cause__, msgspec.ValidationError)


async def test_a_failed_read_releases_the_connection_and_propagates() -> None:
    released: list[str] = []
    boom = RemoteProtocolError("cut")
    stream = chat_stream(Body([chunk("a")], error=boom), released)
    with trio.fail_after(BOUND), pytest.raises(RemoteProtocolError, match=r"^cut$"):
        await contents(stream)
    assert released == ["released"]
    with trio.fail_after(BOUND), pytest.raises(trio.BrokenResourceError):
        await stream.__anext__()


async def test_closing_early_releases_and_then_refuses_iteration() -> None:
    released: list[str] = []
    stream = chat_stream(Body([chunk("a") + chunk("b"), chunk(None, "stop")]), released)
    with trio.fail_after(BOUND):
        async with stream:
            async for _ in stream:
                break
        assert released == ["released"]
        with pytest.raises(trio.ClosedResourceError):
            await stream.__anext__()
        await stream.aclose()  # idempotent
    assert released == ["released"]


async def test_cancelled_read_still_releases_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    released: list[str] = []

    class Hanging(Body):
        async def __anext__(self) -> bytes:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

    stream = chat_stream(Hanging([]), released)
    with trio.move_on_after(1) as scope:  # virtual time: the clock jumps
        await stream.__anext__()
    assert scope.cancelled_caught
    assert released == ["released"]
    with pytest.raises(trio.BrokenResourceError, match=r"^This chat stream was interrupted"):
        await stream.__anext__()


async def test_items_given_up_front_need_no_body() -> None:
    item = CHAT_DECODER.decode(chunk("whole", "stop")[6:-2])
    stream: EventStream[ChatStreamChunk] = EventStream(
        stack=None, body=None, decoder=CHAT_DECODER, what="chat", items=[item]
    )
    with trio.fail_after(BOUND):
        assert [x async for x in stream] == [item]


# --------------------------------------------------------------------------- pagination


def models_body(
    ids: Sequence[str], *, total: int | None = None, next_link: Any = "absent"
) -> bytes:
    body: dict[str, Any] = {"data": [{"id": model_id} for model_id in ids]}
    if total is not None:
        body["total_count"] = total
    if next_link != "absent":
        body["links"] = {"next": next_link}
    return msgspec.json.encode(body)


@contextlib.asynccontextmanager
async def models_api(pages: Sequence[bytes], seen: list[dict[str, str]]) -> AsyncIterator[Models]:
    queue = list(pages)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return httpx.Response(
            200, content=queue.pop(0), headers={"content-type": "application/json"}
        )

    transport = ApiTransport(
        api_key=None,
        base_url="http://models.test/api/v1",
        retry=NO_RETRY,
        http_transport=httpx.MockTransport(handler),
    )
    async with transport:
        with trio.fail_after(BOUND):  # bounds the test body that runs inside
            yield Models(transport)


async def test_full_pages_without_links_advance_the_offset() -> None:
    """§1f: while a page is full, ask again with offset += len(data)."""
    seen: list[dict[str, str]] = []
    pages = [models_body(["a", "b"]), models_body(["c", "d"]), models_body(["e"])]
    async with models_api(pages, seen) as models:
        got = [[m.id for m in page.data] async for page in models.list(limit=2, q="x")]
    assert got == [["a", "b"], ["c", "d"], ["e"]]
    assert seen == [
        {"limit": "2", "q": "x"},
        {"limit": "2", "q": "x", "offset": "2"},
        {"limit": "2", "q": "x", "offset": "4"},
    ]


async def test_total_count_stops_at_an_exactly_full_last_page() -> None:
    seen: list[dict[str, str]] = []
    pages = [models_body(["a", "b"], total=4), models_body(["c", "d"], total=4)]
    async with models_api(pages, seen) as models:
        assert len(await models.list_all(offset=0, limit=2)) == 4
    assert [request.get("offset") for request in seen] == ["0", "2"]


async def test_an_empty_trailing_page_is_not_yielded() -> None:
    seen: list[dict[str, str]] = []
    pages = [models_body(["a", "b"]), models_body([])]
    async with models_api(pages, seen) as models:
        got = [len(page.data) async for page in models.list(limit=2)]
    assert got == [2]
    assert len(seen) == 2


async def test_links_next_is_followed_and_null_ends() -> None:
    seen: list[dict[str, str]] = []
    pages = [
        models_body(["a"], next_link="/api/v1/models?offset=1&limit=1&sort=newest"),
        models_body(["b"], next_link=None),
    ]
    async with models_api(pages, seen) as models:
        assert [m.id for m in await models.list_all(limit=1, sort="newest")] == ["a", "b"]
    assert seen[1] == {"offset": "1", "limit": "1", "sort": "newest"}


async def test_a_links_next_that_does_not_advance_is_a_protocol_error() -> None:
    seen: list[dict[str, str]] = []
    pages = [models_body(["a"], next_link="/api/v1/models?offset=0&limit=1")]
    async with models_api(pages, seen) as models:
        pager = models.list(limit=1)
        first = await pager.__anext__()
        assert [m.id for m in first.data] == ["a"]
        with pytest.raises(RemoteProtocolError, match=r"^The models page's links\.next does not"):
            await pager.__anext__()
        with pytest.raises(StopAsyncIteration):
            await pager.__anext__()
    assert len(seen) == 1


async def test_without_offset_or_limit_the_list_is_one_page() -> None:
    seen: list[dict[str, str]] = []
    async with models_api([models_body(["a", "b", "c"])], seen) as models:
        assert len([page async for page in models.list()]) == 1
    assert seen == [{}]


async def test_a_body_that_is_not_a_models_page_blames_the_server() -> None:
    async with models_api([b'{"data": 3}'], []) as models:
        with pytest.raises(
            RemoteProtocolError, match=r"^The server sent a body that is not a page of models \("
        ):
            await models.list_all()


# --------------------------------------------------------------------------- odds and ends


async def test_responses_send_accepts_a_struct_and_sends_no_stream_field() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(
            200,
            headers={"content-type": "application/json"},
            content=b'{"id":"r","object":"response","created_at":1,"model":"m","status":"completed",'
            b'"output":[]}',
        )

    transport = ApiTransport(
        api_key=None,
        base_url="http://responses.test/api/v1",
        retry=NO_RETRY,
        http_transport=httpx.MockTransport(handler),
    )
    async with transport:
        with trio.fail_after(BOUND):
            response = await Responses(transport).send(ResponsesRequest(model="m", input="hi"))
    assert response.id == "r"
    assert msgspec.json.decode(bodies[0]) == {"model": "m", "input": "hi"}


def test_legacy_completion_tolerates_float_created() -> None:
    completion = msgspec.json.decode(
        b'{"id":"c","object":"text_completion","created":1.5,"model":"m",'
        b'"choices":[{"text":"x","index":0,"logprobs":null,"finish_reason":"stop"}]}',
        type=LegacyCompletion,
    )
    assert completion.choices[0].text == "x"


async def test_the_no_network_guard_sees_a_valid_call(api: Api) -> None:
    """The validation tests above can fail: a call that passes validation reaches the wire."""
    with trio.fail_after(BOUND), pytest.raises(AssertionError, match=r"^a request went out"):
        await api.api_keys.list(include_disabled=True)
