"""The REST namespaces against the local emulator, over real HTTP on loopback.

Rules for this module:

* Every test runs against its own :func:`open_emulator` on 127.0.0.1 and is
  bounded by ``trio.fail_after`` on trio's real clock (no ``autojump_clock``:
  it would jump across socket waits).
* Every request body a namespace sends is read back from the emulator's
  request record and validated against the OpenAPI subset: the ``openapi``
  fixture for named components, :class:`PathSchemas` for the inline request
  schemas of ``/keys``, ``/keys/{hash}`` and the OAuth paths.
* No secret (the client's key, a created key, an exchanged key) may show up in
  an error message or a repr; the tests that provoke errors check it.
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio

from runtime._base.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RemoteProtocolError,
    ResponseFailedError,
    TransportError,
)
from runtime._http.retry import NO_RETRY, RetryConfig
from runtime._http.transport import ApiTransport
from runtime._protocol.wire import ResponsesRequest
from runtime._rest.chat import Chat, Completions, EventStream
from runtime._rest.models import Models
from runtime._rest.resources import Analytics, ApiKeys, Beta, CreditsAPI, OAuth, Responses
from runtime._rest.types import ChatStreamChunk, ChatUserMessage, LegacyCompletion
from runtime.emulator import (
    BUILTIN_MODELS,
    EmulatorServer,
    RecordedRequest,
    key_hash,
    open_emulator,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

BOUND = 10.0  # seconds of real time for any one loopback test
ECHO = "emulator/echo"
USER = [{"role": "user", "content": "one two three four"}]


class Api:
    """Every REST namespace over one transport (what ``OpenRouter`` will attach)."""

    def __init__(self, transport: ApiTransport) -> None:
        self.transport = transport
        self.api_keys = ApiKeys(transport)
        self.o_auth = OAuth(transport)
        self.models = Models(transport)
        self.chat = Chat(transport)
        self.completions = Completions(transport)
        self.analytics = Analytics(transport)
        self.credits = CreditsAPI(transport)
        self.responses = Responses(transport)
        self.beta = Beta(self.responses)


class PathSchemas:
    """Validate request bodies against the inline schemas under ``#/paths`` of the subset."""

    def __init__(self, document: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Any = Registry().with_resource("urn:openrouter", resource)
        self._validator_cls = Draft202012Validator

    @functools.cache  # noqa: B019 - one instance per session
    def _validator(self, path: str, method: str) -> Any:
        escaped = path.replace("~", "~0").replace("/", "~1")
        pointer = f"/paths/{escaped}/{method}/requestBody/content/application~1json/schema"
        return self._validator_cls({"$ref": f"urn:openrouter#{pointer}"}, registry=self._registry)

    def validate(self, path: str, method: str, body: Any) -> None:
        problems = [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in self._validator(path, method).iter_errors(body)
        ]
        if problems:
            pytest.fail(f"{method.upper()} {path} request body:\n  " + "\n  ".join(problems))


@pytest.fixture(scope="session")
def paths(openapi: Any) -> PathSchemas:
    return PathSchemas(openapi.document)


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    with trio.fail_after(BOUND):
        async with open_emulator() as running:
            yield running


def _transport(
    server: EmulatorServer, key: str | None, retry: RetryConfig = NO_RETRY
) -> ApiTransport:
    return ApiTransport(api_key=key, base_url=server.base_url, retry=retry, timeout=BOUND)


@pytest.fixture
async def inference(server: EmulatorServer) -> AsyncIterator[Api]:
    async with _transport(server, server.inference_key) as transport:
        yield Api(transport)


@pytest.fixture
async def management(server: EmulatorServer) -> AsyncIterator[Api]:
    async with _transport(server, server.management_key) as transport:
        yield Api(transport)


async def collect(stream: EventStream[ChatStreamChunk], seen: list[str]) -> None:
    """Record each chunk's text as it arrives, so a test sees what came before an error."""
    async for chunk in stream:
        seen.append(chunk.choices[0].delta.content or "")


def recorded(server: EmulatorServer, method: str, path: str) -> list[RecordedRequest]:
    return [
        r for r in server.emulator.requests if r.method == method and r.path == f"/api/v1{path}"
    ]


def last(server: EmulatorServer, method: str, path: str) -> RecordedRequest:
    found = recorded(server, method, path)
    assert found, f"no {method} {path} was recorded"
    return found[-1]


# --------------------------------------------------------------------------- keys


async def test_key_lifecycle_create_get_update_delete(
    server: EmulatorServer, management: Api, paths: PathSchemas
) -> None:
    with trio.fail_after(BOUND):
        created = await management.api_keys.create(
            name="ci key",
            limit=5,
            limit_reset="daily",
            include_byok_in_limit=True,
            expires_at="2099-01-01T00:00:00Z",
        )
        assert created.hash == key_hash(created.key)
        assert (created.data.name, created.data.limit, created.data.limit_reset) == (
            "ci key",
            5.0,
            "daily",
        )
        assert created.key not in repr(created)
        paths.validate("/keys", "post", last(server, "POST", "/keys").json)

        fetched = await management.api_keys.get(created.hash)
        assert fetched == created.data

        updated = await management.api_keys.update(
            created.hash, name="renamed", disabled=True, limit=None, limit_reset=None
        )
        patch = last(server, "PATCH", f"/keys/{created.hash}").json
        assert patch == {"name": "renamed", "disabled": True, "limit": None, "limit_reset": None}
        paths.validate("/keys/{hash}", "patch", patch)
        assert (updated.name, updated.disabled, updated.limit, updated.limit_reset) == (
            "renamed",
            True,
            None,
            None,
        )

        assert await management.api_keys.delete(created.hash) is True
        with pytest.raises(NotFoundError, match=r"^404: No API key found with this hash\.$"):
            await management.api_keys.get(created.hash)


async def test_update_sends_only_the_fields_given(
    server: EmulatorServer, management: Api, paths: PathSchemas
) -> None:
    with trio.fail_after(BOUND):
        created = await management.api_keys.create(name="k")
        info = await management.api_keys.update(created.hash, include_byok_in_limit=True)
    body = last(server, "PATCH", f"/keys/{created.hash}").json
    assert body == {"include_byok_in_limit": True}
    paths.validate("/keys/{hash}", "patch", body)
    assert info.include_byok_in_limit is True
    assert info.name == "k"


async def test_create_sends_only_name_by_default(server: EmulatorServer, management: Api) -> None:
    with trio.fail_after(BOUND):
        await management.api_keys.create(name="bare")
    assert last(server, "POST", "/keys").json == {"name": "bare"}


async def test_a_created_key_authenticates_and_reports_its_metadata(
    server: EmulatorServer, management: Api
) -> None:
    with trio.fail_after(BOUND):
        created = await management.api_keys.create(name="fresh", limit=2.5)
        async with _transport(server, created.key) as transport:
            meta = await ApiKeys(transport).get_current_key_metadata()
    assert meta.label == created.data.label
    assert (meta.limit, meta.limit_remaining, meta.is_management_key) == (2.5, 2.5, False)


async def test_list_keys_with_query_parameters(server: EmulatorServer, management: Api) -> None:
    with trio.fail_after(BOUND):
        first = await management.api_keys.create(name="a")
        await management.api_keys.create(name="b")
        await management.api_keys.update(first.hash, disabled=True)
        enabled = await management.api_keys.list()
        everything = await management.api_keys.list(include_disabled=True, offset=1)
        workspace = await management.api_keys.list(
            workspace_id="00000000-0000-4000-8000-00000000E4E4"
        )
    assert [k.name for k in enabled] == ["emulator-inference", "b"]
    assert [k.name for k in everything] == ["a", "b"]
    assert [k.name for k in workspace] == ["emulator-inference", "b"]
    queries = [r.query for r in recorded(server, "GET", "/keys")]
    assert queries == [
        "",
        "include_disabled=true&offset=1",
        "workspace_id=00000000-0000-4000-8000-00000000e4e4",
    ]


async def test_get_current_key_metadata_works_with_an_inference_key(inference: Api) -> None:
    with trio.fail_after(BOUND):
        meta = await inference.api_keys.get_current_key_metadata()
    assert meta.is_management_key is False
    assert meta.label.startswith("sk-or-v1-emu")
    assert meta.rate_limit is not None


async def test_unknown_hash_is_not_found(management: Api) -> None:
    with trio.fail_after(BOUND):
        for call in (management.api_keys.get, management.api_keys.delete):
            with pytest.raises(NotFoundError) as caught:
                await call("0" * 64)
            assert caught.value.status_code == 404


async def test_inference_key_on_management_endpoints_is_permission_denied(inference: Api) -> None:
    calls = [
        inference.api_keys.list(),
        inference.api_keys.create(name="nope"),
        inference.credits.get_credits(),
        inference.analytics.get_user_activity(),
    ]
    with trio.fail_after(BOUND):
        for call in calls:
            with pytest.raises(PermissionDeniedError) as caught:
                await call
            assert caught.value.status_code == 403


async def test_bad_key_is_an_authentication_error_that_never_shows_the_key(
    server: EmulatorServer,
) -> None:
    wrong = "sk-or-v1-" + "f" * 64
    with trio.fail_after(BOUND):
        async with _transport(server, wrong) as transport:
            api = Api(transport)
            for call in (
                api.api_keys.get_current_key_metadata(),
                api.api_keys.list(),
                api.chat.send(model=ECHO, messages=USER),
                api.o_auth.create_auth_code(callback_url="https://app.example/cb"),
            ):
                with pytest.raises(AuthenticationError) as caught:
                    await call
                error = caught.value
                assert error.status_code == 401
                for text in (str(error), repr(error), str(error.body)):
                    assert wrong not in text
    assert wrong not in repr(transport)


async def test_no_key_at_all_is_an_authentication_error(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with trio.fail_after(BOUND):
        async with _transport(server, None) as transport:
            with pytest.raises(AuthenticationError, match=r"^401: No auth credentials found$"):
                await ApiKeys(transport).get_current_key_metadata()


async def test_a_body_the_server_refuses_is_a_bad_request(management: Api) -> None:
    """The name passes the local check (non-empty) but the server wants non-blank."""
    with trio.fail_after(BOUND), pytest.raises(BadRequestError) as caught:
        await management.api_keys.create(name="   ")
    assert caught.value.status_code == 400
    assert caught.value.message == "The key's name must not be empty."


# --------------------------------------------------------------------------- OAuth


async def test_pkce_flow_through_the_authorization_page(
    server: EmulatorServer, inference: Api, paths: PathSchemas
) -> None:
    """O-03 end to end: challenge, authorization URL, redirect with ?code=, exchange."""
    oauth = inference.o_auth
    pair = oauth.create_sha256_code_challenge()
    url = oauth.create_authorization_url(
        callback_url="http://localhost:3000/callback",
        code_challenge=pair.code_challenge,
        code_challenge_method="S256",
    )
    assert url.startswith(f"{server.url}/auth?")
    with trio.fail_after(BOUND):
        async with httpx.AsyncClient() as browser:
            page = await browser.get(url)
        assert page.status_code == 302
        callback = httpx.URL(page.headers["location"])
        assert (callback.host, callback.port, callback.path) == ("localhost", 3000, "/callback")
        code = callback.params["code"]
        user = await oauth.exchange_auth_code_for_api_key(
            code=code, code_verifier=pair.code_verifier, code_challenge_method="S256"
        )
        body = last(server, "POST", "/auth/keys").json
        assert body == {
            "code": code,
            "code_verifier": pair.code_verifier,
            "code_challenge_method": "S256",
        }
        paths.validate("/auth/keys", "post", body)
        assert user.user_id == "user_emulator"
        assert user.key not in repr(user)
        async with _transport(server, user.key) as transport:
            meta = await ApiKeys(transport).get_current_key_metadata()
        assert meta.is_management_key is False


async def test_server_side_auth_code_exchanges_once(
    server: EmulatorServer, inference: Api, paths: PathSchemas
) -> None:
    pair = inference.o_auth.create_sha256_code_challenge()
    with trio.fail_after(BOUND):
        code = await inference.o_auth.create_auth_code(
            callback_url="https://app.example/cb",
            code_challenge=pair.code_challenge,
            code_challenge_method="S256",
            key_label="my app",
            limit=3,
            usage_limit_type="monthly",
            expires_at="2099-01-01T00:00:00Z",
            workspace_id="00000000-0000-4000-8000-00000000e4e4",
        )
        body = last(server, "POST", "/auth/keys/code").json
        paths.validate("/auth/keys/code", "post", body)
        assert body["key_label"] == "my app"
        assert code.app_id == 4242
        exchanged = await inference.o_auth.exchange_auth_code_for_api_key(
            code=code.id, code_verifier=pair.code_verifier
        )
        assert exchanged.key.startswith("sk-or-v1-")
        with pytest.raises(PermissionDeniedError, match=r"^403: Invalid code or code_verifier$"):
            await inference.o_auth.exchange_auth_code_for_api_key(
                code=code.id, code_verifier=pair.code_verifier
            )


async def test_wrong_verifier_is_permission_denied(inference: Api) -> None:
    pair = inference.o_auth.create_sha256_code_challenge()
    other = inference.o_auth.create_sha256_code_challenge()
    with trio.fail_after(BOUND):
        code = await inference.o_auth.create_auth_code(
            callback_url="https://app.example/cb",
            code_challenge=pair.code_challenge,
            code_challenge_method="S256",
        )
        with pytest.raises(PermissionDeniedError) as caught:
            await inference.o_auth.exchange_auth_code_for_api_key(
                code=code.id, code_verifier=other.code_verifier
            )
    assert other.code_verifier not in str(caught.value)


async def test_wrong_challenge_method_is_a_bad_request(inference: Api) -> None:
    pair = inference.o_auth.create_sha256_code_challenge()
    with trio.fail_after(BOUND):
        code = await inference.o_auth.create_auth_code(
            callback_url="https://app.example/cb",
            code_challenge=pair.code_challenge,
            code_challenge_method="S256",
        )
        with pytest.raises(BadRequestError, match=r"^400: Invalid code_challenge_method$"):
            await inference.o_auth.exchange_auth_code_for_api_key(
                code=code.id, code_verifier=pair.code_verifier, code_challenge_method="plain"
            )


# --------------------------------------------------------------------------- models


async def test_models_without_pagination_come_as_one_page(
    server: EmulatorServer, inference: Api
) -> None:
    with trio.fail_after(BOUND):
        pages = [page async for page in inference.models.list()]
    assert len(pages) == 1
    assert [m.id for m in pages[0].data] == list(BUILTIN_MODELS)
    assert pages[0].total_count == len(BUILTIN_MODELS)
    assert recorded(server, "GET", "/models")[0].query == ""


async def test_models_pagination_follows_links_next(server: EmulatorServer, inference: Api) -> None:
    with trio.fail_after(BOUND):
        pages = [page async for page in inference.models.list(limit=1, sort="newest")]
    assert [len(page.data) for page in pages] == [1] * len(BUILTIN_MODELS)
    assert sorted(m.id for page in pages for m in page.data) == sorted(BUILTIN_MODELS)
    offsets = [
        dict(httpx.QueryParams(r.query)).get("offset") for r in recorded(server, "GET", "/models")
    ]
    assert offsets == [None, *[str(n) for n in range(1, len(BUILTIN_MODELS))]]
    assert all("sort=newest" in r.query for r in recorded(server, "GET", "/models"))


async def test_models_list_all_with_filters(server: EmulatorServer, inference: Api) -> None:
    with trio.fail_after(BOUND):
        models = await inference.models.list_all(
            supported_parameters=["tools", "tool_choice"], context=1, max_price=1000
        )
    assert models
    assert all("tools" in model.supported_parameters for model in models)
    query = dict(httpx.QueryParams(last(server, "GET", "/models").query))
    assert query == {
        "supported_parameters": "tools,tool_choice",
        "context": "1",
        "max_price": "1000",
    }
    card = BUILTIN_MODELS[models[0].id]
    assert str(models[0].pricing.prompt) == card.pricing.prompt


async def test_unknown_sort_is_a_bad_request(inference: Api) -> None:
    with trio.fail_after(BOUND), pytest.raises(BadRequestError):
        await inference.models.list_all(sort="random")


# --------------------------------------------------------------------------- chat


async def test_chat_send_returns_the_result(
    server: EmulatorServer, inference: Api, openapi: Any
) -> None:
    with trio.fail_after(BOUND):
        result = await inference.chat.send(
            model=ECHO,
            messages=[ChatUserMessage(content="hello there")],
            temperature=0.5,
            max_tokens=50,
            provider={"sort": "price"},
        )
    assert result.choices[0].message.content == "hello there"
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.total_tokens > 0
    body = last(server, "POST", "/chat/completions").json
    openapi.validate("ChatRequest", body)
    assert body == {
        "messages": [{"role": "user", "content": "hello there"}],
        "model": ECHO,
        "max_tokens": 50,
        "temperature": 0.5,
        "provider": {"sort": "price"},
    }


async def test_chat_history_with_tool_calls_round_trips(
    server: EmulatorServer, inference: Api, openapi: Any
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "add",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}},
                    "required": ["a"],
                },
            },
        }
    ]
    with trio.fail_after(BOUND):
        first = await inference.chat.send(model="emulator/tool-caller", messages=USER, tools=tools)
        message = first.choices[0].message
        assert first.choices[0].finish_reason == "tool_calls"
        calls = message.tool_calls
        assert isinstance(calls, list)
        history: list[Any] = [
            *USER,
            message,
            {"role": "tool", "tool_call_id": calls[0].id, "content": "3"},
        ]
        second = await inference.chat.send(
            model="emulator/tool-caller", messages=history, tools=tools
        )
    assert second.choices[0].finish_reason == "stop"
    body = last(server, "POST", "/chat/completions").json
    openapi.validate("ChatRequest", body)
    assert body["messages"][1]["role"] == "assistant"
    assert body["messages"][1]["tool_calls"][0]["id"] == calls[0].id


async def test_chat_stream_yields_every_chunk_in_order(
    server: EmulatorServer, inference: Api, openapi: Any
) -> None:
    with trio.fail_after(BOUND):
        stream = await inference.chat.send(model=ECHO, messages=USER, stream=True)
        async with stream:
            chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    body = last(server, "POST", "/chat/completions").json
    assert body["stream"] is True
    openapi.validate("ChatRequest", body)


@pytest.mark.parametrize("fault", ["chunk=5", "no-done", "coalesce"])
async def test_chat_stream_is_independent_of_framing(inference: Api, fault: str) -> None:
    with trio.fail_after(BOUND):
        stream = await inference.chat.send(
            model=f"{ECHO}:fault={fault}", messages=USER, stream=True
        )
        async with stream:
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "one two three four"


async def test_chat_stream_in_band_error_comes_after_the_chunks_before_it(inference: Api) -> None:
    """wire-protocol §4.5 over the wire: chunks, then ResponseFailedError."""
    seen: list[str] = []
    with trio.fail_after(BOUND):
        stream = await inference.chat.send(
            model=f"{ECHO}:fault=fail-after=2", messages=USER, stream=True
        )
        async with stream:
            with pytest.raises(ResponseFailedError) as caught:
                await collect(stream, seen)
    assert seen == ["", "one "]
    error = caught.value
    assert (error.code, error.error_type) == (502, "server")
    assert isinstance(error.response, ChatStreamChunk)


async def test_chat_stream_dropped_connection_is_a_transport_error(inference: Api) -> None:
    with trio.fail_after(BOUND):
        stream = await inference.chat.send(
            model=f"{ECHO}:fault=drop-after=2", messages=USER, stream=True
        )
        async with stream:
            with pytest.raises(TransportError):
                async for _ in stream:
                    pass


async def test_chat_stream_malformed_chunk_is_a_remote_protocol_error(inference: Api) -> None:
    with trio.fail_after(BOUND):
        stream = await inference.chat.send(
            model=f"{ECHO}:fault=malformed-after=2", messages=USER, stream=True
        )
        async with stream:
            with pytest.raises(RemoteProtocolError, match=r"^The server sent a chat chunk"):
                async for _ in stream:
                    pass


async def test_chat_stream_answered_with_json_is_one_chunk(inference: Api) -> None:
    """A JSON body where a stream was asked for is accepted (DESIGN §4.13)."""
    with trio.fail_after(BOUND):
        stream = await inference.chat.send(
            model=f"{ECHO}:fault=json-body", messages=USER, stream=True
        )
        async with stream:
            chunks = [chunk async for chunk in stream]
    assert len(chunks) == 1
    assert chunks[0].choices[0].delta.content == "one two three four"
    assert chunks[0].choices[0].finish_reason == "stop"
    assert chunks[0].usage is not None


async def test_leaving_the_block_early_closes_a_stream_that_never_ends(
    server: EmulatorServer, inference: Api
) -> None:
    """``hang`` keeps the body open forever; breaking out must not wait for it."""
    with trio.fail_after(BOUND):
        stream = await inference.chat.send(model=f"{ECHO}:fault=hang", messages=USER, stream=True)
        async with stream:
            async for _ in stream:
                break
        with pytest.raises(trio.ClosedResourceError):
            await stream.__anext__()
        again = await inference.chat.send(model=ECHO, messages=USER)
    assert again.choices[0].message.content == "one two three four"


async def test_chat_status_errors_are_raised_before_the_stream(inference: Api) -> None:
    with trio.fail_after(BOUND):
        with pytest.raises(RateLimitError) as caught:
            await inference.chat.send(model=f"{ECHO}:fault=429", messages=USER, stream=True)
        assert caught.value.retry_after == 1.0
        with pytest.raises(BadRequestError, match=r"is not a valid model ID"):
            await inference.chat.send(model="nobody/nothing", messages=USER)


async def test_chat_retries_5xx_like_call_model(server: EmulatorServer) -> None:
    """RT-01 on a REST call: 500 twice, then 200, on the transport's retry policy."""

    class NoJitter(random.Random):
        def random(self) -> float:
            return 0.0

    transport = ApiTransport(
        api_key=server.inference_key,
        base_url=server.base_url,
        retry=RetryConfig(initial_interval=0.0),
        rng=NoJitter(),
        timeout=BOUND,
    )
    with trio.fail_after(BOUND):
        async with transport:
            result = await Chat(transport).send(model=f"{ECHO}:fault=500,times=2", messages=USER)
    assert result.choices[0].message.content == "one two three four"
    assert len(recorded(server, "POST", "/chat/completions")) == 3


# --------------------------------------------------------------------------- completions


async def test_completions_generate(server: EmulatorServer, inference: Api, openapi: Any) -> None:
    with trio.fail_after(BOUND):
        completion = await inference.completions.generate(
            model=ECHO, prompt="once upon", max_tokens=20, stop=["\n"]
        )
    assert completion.choices[0].text == "once upon"
    body = last(server, "POST", "/completions").json
    assert body == {"prompt": "once upon", "model": ECHO, "max_tokens": 20, "stop": ["\n"]}
    openapi.validate("LegacyCompletions_CompletionCreateParams", body)


async def test_completions_stream(server: EmulatorServer, inference: Api, openapi: Any) -> None:
    with trio.fail_after(BOUND):
        stream: EventStream[LegacyCompletion] = await inference.completions.generate(
            model=ECHO, prompt=["once", "upon"], stream=True
        )
        async with stream:
            pieces = [c.choices[0].text async for c in stream if c.choices]
    assert "".join(pieces) == "once\nupon"
    openapi.validate(
        "LegacyCompletions_CompletionCreateParams", last(server, "POST", "/completions").json
    )


async def test_completions_in_band_error(inference: Api) -> None:
    with trio.fail_after(BOUND):
        stream = await inference.completions.generate(
            model=f"{ECHO}:fault=fail-after=1", prompt="a b c d", stream=True
        )
        async with stream:
            with pytest.raises(ResponseFailedError):
                async for _ in stream:
                    pass


# --------------------------------------------------------------------------- credits, activity


async def test_credits_and_activity_follow_usage(
    server: EmulatorServer, inference: Api, management: Api
) -> None:
    with trio.fail_after(BOUND):
        before = await management.credits.get_credits()
        result = await inference.chat.send(model=ECHO, messages=USER)
        after = await management.credits.get_credits()
        rows = await management.analytics.get_user_activity(
            api_key_hash=key_hash(server.inference_key)
        )
        assert result.usage is not None
        assert result.usage.cost is not None
        assert after.total_usage == pytest.approx(before.total_usage + result.usage.cost)
        assert after.balance == pytest.approx(after.total_credits - after.total_usage)
        assert [(row.model, row.requests) for row in rows] == [(ECHO, 1)]
        day = rows[0].date
        same_day = await management.analytics.get_user_activity(date=day)
        assert same_day == rows
        assert await management.analytics.get_user_activity(date="2001-01-01") == []
    queries = [r.query for r in recorded(server, "GET", "/activity")]
    assert queries[1:] == [f"date={day}", "date=2001-01-01"]


async def test_activity_for_an_unknown_key_is_not_found(management: Api) -> None:
    with trio.fail_after(BOUND), pytest.raises(NotFoundError):
        await management.analytics.get_user_activity(api_key_hash="0" * 64)


# --------------------------------------------------------------------------- responses


async def test_responses_send(server: EmulatorServer, inference: Api, openapi: Any) -> None:
    """N-01: responses.send and its deprecated beta alias send the same request."""
    with trio.fail_after(BOUND):
        response = await inference.responses.send(
            {"model": ECHO, "input": "hi there", "max_output_tokens": 50}
        )
        with pytest.warns(DeprecationWarning, match=r"^client\.beta\.responses is deprecated"):
            beta = inference.beta.responses
        again = await beta.send(ResponsesRequest(model=ECHO, input="hi there"))
    assert response.output_text == "hi there"
    assert again.output_text == "hi there"
    bodies = [r.json for r in recorded(server, "POST", "/responses")]
    assert bodies == [
        {"model": ECHO, "input": "hi there", "max_output_tokens": 50},
        {"model": ECHO, "input": "hi there"},
    ]
    for body in bodies:
        openapi.validate("ResponsesRequest", body)


async def test_responses_status_error(inference: Api) -> None:
    with trio.fail_after(BOUND), pytest.raises(APIStatusError) as caught:
        await inference.responses.send({"model": f"{ECHO}:fault=402", "input": "x"})
    assert caught.value.status_code == 402
