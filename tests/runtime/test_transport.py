"""Tests for runtime._http.transport: headers, configuration, error mapping, streaming bodies.

Rules: HTTP goes through ``httpx.MockTransport`` (streams are async-generator
bodies or a recording ``AsyncByteStream``), except one loopback test against a
tiny trio server; every test that does I/O is bounded by ``trio.fail_after``.
Retries and backoff live in test_retries.py.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
import trio
import trio.testing

from runtime._base.errors import (
    AgentError,
    APIStatusError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    EdgeTimeoutError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProviderOverloadedError,
    RateLimitError,
    RemoteProtocolError,
    RequestTimeoutError,
    ServiceUnavailableError,
    TransportError,
    TransportTimeout,
    UnprocessableEntityError,
)
from runtime._http.responses import HTTPResponse, StreamingResponse
from runtime._http.retry import NO_RETRY
from runtime._http.transport import DEFAULT_BASE_URL, ApiTransport

SECRET = "TOPSECRET"
FAKE_KEY = f"sk-or-v1-{SECRET}-0123456789abcdef"
ENV_VARS = (
    "OPENROUTER_API_KEY",
    "OPENROUTER_BASE_URL",
    "OPENROUTER_HTTP_REFERER",
    "OPENROUTER_APP_TITLE",
    "OPENROUTER_APP_CATEGORIES",
)

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


class Recorder:
    """A MockTransport handler that records requests and answers with ``respond``."""

    def __init__(self, respond: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond or (lambda request: httpx.Response(200, json={"ok": True}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make(handler: Handler, **kwargs: Any) -> ApiTransport:
    kwargs.setdefault("api_key", FAKE_KEY)
    kwargs.setdefault("retry", NO_RETRY)
    return ApiTransport(http_transport=httpx.MockTransport(handler), **kwargs)


class RecordingStream(httpx.AsyncByteStream):
    """A response body that yields ``chunks``, then waits forever; records ``aclose``.

    An iterator class, not an async generator, so that abandoning it mid-way
    (what these tests do on purpose) is not reported by trio's GC hook.
    """

    def __init__(self, *chunks: bytes, then_wait: bool = True) -> None:
        self.chunks = list(chunks)
        self.then_wait = then_wait
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()
        if self.chunks:
            return self.chunks.pop(0)
        if self.then_wait:
            await trio.sleep_forever()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = True


def assert_no_secret(*objects: object) -> None:
    """No str, repr, args or (for errors) attribute of ``objects`` shows the key."""
    for obj in objects:
        texts = [str(obj), repr(obj)]
        if isinstance(obj, BaseException):
            texts.append(repr(obj.args))
            texts.extend(repr(value) for value in vars(obj).values())
        for text in texts:
            assert SECRET not in text, text


# --------------------------------------------------------------------------- headers


async def test_request_sends_auth_attribution_and_user_agent_headers() -> None:
    recorder = Recorder()
    async with make(
        recorder,
        http_referer="https://app.example",
        app_title="My App",
        app_categories=["cli-agent", "cloud-agent"],
    ) as transport:
        with trio.fail_after(5):
            response = await transport.request("GET", "/models")
    assert response.status_code == 200
    headers = recorder.last.headers
    assert headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert headers["http-referer"] == "https://app.example"
    assert headers["x-openrouter-title"] == "My App"
    assert headers["x-openrouter-categories"] == "cli-agent,cloud-agent"
    assert re.fullmatch(r"openrouter-trio/\S+ python/3\.\d+", headers["user-agent"])
    assert headers["accept"] == "application/json"
    assert "content-type" not in headers
    assert str(recorder.last.url) == "https://openrouter.ai/api/v1/models"


async def test_stream_sends_accept_event_stream_and_json_content_type() -> None:
    recorder = Recorder()
    async with make(recorder) as transport:
        with trio.fail_after(5):
            async with transport.stream("POST", "/responses", content=b'{"stream":true}'):
                pass
    request = recorder.last
    assert request.method == "POST"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["content-type"] == "application/json"
    assert request.content == b'{"stream":true}'


async def test_request_encodes_json_with_msgspec() -> None:
    class Body(msgspec.Struct):
        model: str
        stream: bool = False

    recorder = Recorder()
    async with make(recorder) as transport:
        with trio.fail_after(5):
            await transport.request("POST", "keys", json=Body(model="m"), params={"limit": 3})
    assert recorder.last.content == b'{"model":"m","stream":false}'
    assert recorder.last.headers["content-type"] == "application/json"
    assert str(recorder.last.url) == "https://openrouter.ai/api/v1/keys?limit=3"


@pytest.mark.parametrize("given", [f"Bearer {FAKE_KEY}", f"bearer {FAKE_KEY}", f" {FAKE_KEY}\n"])
async def test_bearer_prefix_is_not_doubled(given: str) -> None:
    recorder = Recorder()
    async with make(recorder, api_key=given) as transport:
        with trio.fail_after(5):
            await transport.request("GET", "/key")
    assert recorder.last.headers["authorization"] == f"Bearer {FAKE_KEY}"


async def test_without_a_key_no_authorization_header_is_sent() -> None:
    recorder = Recorder()
    async with make(recorder, api_key=None) as transport:
        with trio.fail_after(5):
            await transport.request("GET", "/models")
    assert "authorization" not in recorder.last.headers


async def test_environment_fills_unset_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENROUTER_HTTP_REFERER", "https://env.example")
    monkeypatch.setenv("OPENROUTER_APP_TITLE", "Env App")
    monkeypatch.setenv("OPENROUTER_APP_CATEGORIES", "cli-agent, game")
    recorder = Recorder()
    async with make(recorder, api_key=None) as transport:
        with trio.fail_after(5):
            await transport.request("GET", "/models")
    headers = recorder.last.headers
    assert headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert headers["http-referer"] == "https://env.example"
    assert headers["x-openrouter-title"] == "Env App"
    assert headers["x-openrouter-categories"] == "cli-agent,game"


async def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-from-the-environment-0000")
    monkeypatch.setenv("OPENROUTER_APP_TITLE", "Env App")
    recorder = Recorder()
    async with make(recorder, app_title="Mine") as transport:
        with trio.fail_after(5):
            await transport.request("GET", "/models")
    assert recorder.last.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert recorder.last.headers["x-openrouter-title"] == "Mine"


async def test_empty_environment_values_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_VARS:
        monkeypatch.setenv(name, "  ")
    recorder = Recorder()
    async with make(recorder, api_key=None) as transport:
        with trio.fail_after(5):
            await transport.request("GET", "/models")
    assert transport.base_url == DEFAULT_BASE_URL
    for name in ("authorization", "http-referer", "x-openrouter-title", "x-openrouter-categories"):
        assert name not in recorder.last.headers


async def test_extra_and_per_request_headers_are_sent() -> None:
    recorder = Recorder()
    async with make(recorder, headers={"X-OpenRouter-Metadata": "enabled"}) as transport:
        with trio.fail_after(5):
            async with transport.stream(
                "POST", "/responses", content=b"{}", headers={"accept": "application/json"}
            ):
                pass
    assert recorder.last.headers["x-openrouter-metadata"] == "enabled"
    assert recorder.last.headers.get_list("accept") == ["application/json"]


async def test_user_agent_can_be_replaced_and_non_ascii_title_goes_out_as_utf8() -> None:
    recorder = Recorder()
    async with make(recorder, user_agent="my-agent/1.0", app_title="Café") as transport:
        with trio.fail_after(5):
            await transport.request("GET", "/models")
    assert recorder.last.headers["user-agent"] == "my-agent/1.0"
    assert recorder.last.headers.raw[-1] != (b"", b"")
    assert dict(recorder.last.headers.raw)[b"X-OpenRouter-Title"] == "Café".encode()


# --------------------------------------------------------------------------- base URL (U-01)


async def test_u01_default_base_url_is_production() -> None:
    """U-01: no env, no argument -> the production URL."""
    recorder = Recorder()
    async with make(recorder) as transport:
        with trio.fail_after(5):
            await transport.request("POST", "/responses", content=b"{}")
    assert transport.base_url == "https://openrouter.ai/api/v1"
    assert str(recorder.last.url) == "https://openrouter.ai/api/v1/responses"


async def test_u01_environment_base_url_is_used_and_stripped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """U-01: OPENROUTER_BASE_URL is used when no base_url is given; trailing '/' stripped."""
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:8080/api/v1/")
    recorder = Recorder()
    async with make(recorder) as transport:
        with trio.fail_after(5):
            await transport.request("GET", "models")
    assert transport.base_url == "http://127.0.0.1:8080/api/v1"
    assert str(recorder.last.url) == "http://127.0.0.1:8080/api/v1/models"


async def test_u01_explicit_base_url_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """U-01: an explicit base_url beats OPENROUTER_BASE_URL."""
    monkeypatch.setenv("OPENROUTER_BASE_URL", "https://env.example/api/v1")
    recorder = Recorder()
    async with make(recorder, base_url="https://proxy.example/or//") as transport:
        with trio.fail_after(5):
            await transport.request("GET", "/models")
    assert str(recorder.last.url) == "https://proxy.example/or/models"


@pytest.mark.parametrize(
    "value",
    ["not a url", "ftp://example.com/api", "https://", "example.com/api", "http://h:99999/x"],
)
def test_u01_invalid_environment_base_url_raises(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """U-01: an invalid OPENROUTER_BASE_URL raises."""
    monkeypatch.setenv("OPENROUTER_BASE_URL", value)
    with pytest.raises(ConfigurationError, match=r"^OPENROUTER_BASE_URL must be an http\(s\) URL"):
        ApiTransport(api_key=FAKE_KEY)


@pytest.mark.parametrize(
    "value", ["https://user:pw@example.com/api", "https://example.com/api?x=1", "https://e.com/#f"]
)
def test_base_url_with_credentials_query_or_fragment_raises(value: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^base_url must not carry credentials"):
        ApiTransport(api_key=FAKE_KEY, base_url=value)


# --------------------------------------------------------------------------- eager validation


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"timeout": -1}, r"^timeout must be a number of seconds > 0"),
        ({"timeout": True}, r"^timeout must be a number of seconds > 0"),
        ({"limits": 10}, r"^limits must be an httpx\.Limits or None"),
        ({"retry": {"strategy": "none"}}, r"^retry must be a RetryConfig"),
        ({"http_transport": object()}, r"^http_transport must be an httpx\.AsyncBaseTransport"),
        ({"rng": 3}, r"^rng must be a random\.Random"),
        (
            {"headers": {"X-A": "x\r\nInjected: 1"}},
            r"^headers\['X-A'\] contains a control character",
        ),
        ({"headers": {"Bad Name": "x"}}, r"^headers has an invalid header name 'Bad Name'"),
        ({"headers": {"Authorization": "Bearer x"}}, r"^headers must not set 'Authorization'"),
        ({"app_categories": ["cli-agent", ""]}, r"^app_categories entries must be names"),
        ({"app_categories": 3}, r"^app_categories must be a sequence of strings"),
        ({"app_title": "a\nb"}, r"^app_title contains a control character"),
        ({"base_url": 42}, r"^base_url must be an http\(s\) URL"),
    ],
)
def test_invalid_arguments_raise_configuration_error(kwargs: dict[str, Any], pattern: str) -> None:
    kwargs.setdefault("api_key", FAKE_KEY)
    with pytest.raises(ConfigurationError, match=pattern):
        ApiTransport(**kwargs)


@pytest.mark.parametrize(
    ("key", "pattern"),
    [
        (f"{FAKE_KEY[:12]}\n{FAKE_KEY[12:]}", r"^api_key contains '\\n' at index 12, which cannot"),
        (f"{FAKE_KEY}é", r"^api_key contains 'é' at index \d+, which cannot"),
        ("", r"^api_key is empty"),
        ("Bearer ", r"^api_key is empty"),
    ],
)
def test_invalid_api_key_raises_without_quoting_it(key: str, pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern) as info:
        ApiTransport(api_key=key)
    assert_no_secret(info.value)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        ({"method": "FETCH"}, r"^method must be an HTTP method such as 'POST', not 'FETCH'\.$"),
        ({"path": "https://evil.example/x"}, r"^path must be a path relative to the base URL"),
        ({"path": "//evil.example/x"}, r"^path must be a path relative to the base URL"),
        ({"path": ""}, r"^path must be a path relative to the base URL"),
        ({"content": "text"}, r"^content must be bytes, not 'str'\.$"),
        ({"headers": {"Authorization": "x"}}, r"^headers must not set 'Authorization'"),
        ({"json": object()}, r"^json could not be encoded: 'object'"),
        ({"json": {}, "content": b"{}"}, r"^Pass either json or content, not both\.$"),
        ({"retry": "none"}, r"^retry must be a RetryConfig or None, not 'none'\.$"),
    ],
)
async def test_invalid_request_arguments_raise_before_any_io(
    call: dict[str, Any], pattern: str
) -> None:
    recorder = Recorder()
    arguments: dict[str, Any] = {"method": "POST", "path": "/keys"} | call
    async with make(recorder) as transport:
        with trio.fail_after(5), pytest.raises(ConfigurationError, match=pattern):
            await transport.request(**arguments)
    assert recorder.requests == []


def test_repr_shows_base_url_and_a_redacted_key() -> None:
    transport = ApiTransport(api_key=FAKE_KEY)
    assert repr(transport) == (
        "ApiTransport(base_url='https://openrouter.ai/api/v1', api_key='sk-or-…cdef', closed=False)"
    )
    assert repr(ApiTransport(api_key="short-key")).count("'***'") == 1
    assert "api_key=None" in repr(ApiTransport(api_key=None))


# --------------------------------------------------------------------------- status errors

STATUS_CLASSES: list[tuple[int, type[APIStatusError]]] = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (402, PaymentRequiredError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (408, RequestTimeoutError),
    (409, ConflictError),
    (413, PayloadTooLargeError),
    (422, UnprocessableEntityError),
    (429, RateLimitError),
    (500, InternalServerError),
    (502, BadGatewayError),
    (503, ServiceUnavailableError),
    (524, EdgeTimeoutError),
    (529, ProviderOverloadedError),
]


async def send(transport: ApiTransport, *, stream: bool) -> None:
    if stream:
        async with transport.stream("POST", "/responses", content=b"{}"):
            pytest.fail("the block must not run for an error status")
    else:
        await transport.request("POST", "/responses", content=b"{}")


async def raised_by(response: httpx.Response, *, stream: bool = False) -> APIStatusError:
    async with make(lambda request: response) as transport:
        with trio.fail_after(5), pytest.raises(APIStatusError) as info:
            await send(transport, stream=stream)
    return info.value


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
@pytest.mark.parametrize("stream", [False, True])
async def test_status_maps_to_its_typed_error(
    status: int, cls: type[APIStatusError], stream: bool
) -> None:
    body = {
        "error": {"code": status, "message": f"boom {status}", "metadata": {"provider": "p"}},
        "user_id": "u1",
    }
    error = await raised_by(
        httpx.Response(status, json=body, headers={"Retry-After": "7"}), stream=stream
    )
    assert type(error) is cls
    assert error.status_code == status
    assert error.code == status
    assert error.message == f"boom {status}"
    assert str(error) == f"{status}: boom {status}"
    assert error.metadata == {"provider": "p"}
    assert error.retry_after == 7.0
    assert error.error_type is None
    assert error.body == body


async def test_unknown_status_maps_to_the_base_class() -> None:
    error = await raised_by(httpx.Response(418, json={"error": {"code": 418, "message": "tea"}}))
    assert type(error) is APIStatusError
    assert (error.status_code, error.code, error.message) == (418, 418, "tea")


async def test_availability_error_variant() -> None:
    body = {
        "error": {
            "message": "No endpoints available",
            "http_status": 503,
            "error_type": "provider_overloaded",
            "availability": {"code": "x", "retryable": True, "retry_after": 12},
            "metadata": {"previous_errors": [{"provider": "a", "code": 503, "status": 503}]},
        }
    }
    error = await raised_by(httpx.Response(503, json=body))
    assert isinstance(error, ServiceUnavailableError)
    assert error.code is None
    assert error.error_type == "provider_overloaded"
    assert error.retry_after == 12.0
    assert error.metadata is not None
    assert error.metadata["previous_errors"][0]["provider"] == "a"


async def test_retry_after_header_beats_the_availability_hint() -> None:
    body = {"error": {"message": "m", "availability": {"retry_after": 12}}}
    error = await raised_by(httpx.Response(429, json=body, headers={"retry-after-ms": "250"}))
    assert error.retry_after == 0.25


async def test_string_code_and_error_type_from_metadata() -> None:
    body = {
        "error": {
            "code": "invalid_prompt",
            "message": "bad prompt",
            "metadata": {"error_type": "context_length_exceeded"},
        },
        "metadata": None,
    }
    error = await raised_by(httpx.Response(400, json=body))
    assert (error.code, error.message) == ("invalid_prompt", "bad prompt")
    assert error.error_type == "context_length_exceeded"


async def test_top_level_error_type_is_the_last_resort() -> None:
    body = {"error": {"code": 500, "message": "m"}, "error_type": "server"}
    error = await raised_by(httpx.Response(500, json=body))
    assert error.error_type == "server"


async def test_legacy_completions_error_shape() -> None:
    body = {"error": {"code": None, "message": "legacy", "param": "prompt", "type": "invalid"}}
    error = await raised_by(httpx.Response(400, json=body))
    assert (error.code, error.message, error.metadata) == (None, "legacy", None)


async def test_bare_string_error_and_top_level_message() -> None:
    error = await raised_by(httpx.Response(404, json={"error": "no such model"}))
    assert error.message == "no such model"
    error = await raised_by(httpx.Response(404, json={"message": "gone"}))
    assert error.message == "gone"


async def test_non_json_error_body_message_names_content_type_and_body() -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    error = await raised_by(
        httpx.Response(502, content=html, headers={"Content-Type": "text/html"})
    )
    assert isinstance(error, BadGatewayError)
    assert error.message == (
        "The server sent a non-JSON error body (Content-Type 'text/html'): "
        "'<html><body>502 Bad Gateway</body></html>'."
    )
    assert error.body is None
    assert error.code is None


async def test_long_non_json_error_body_is_truncated() -> None:
    error = await raised_by(
        httpx.Response(500, content=b"x" * 1234, headers={"Content-Type": "text/plain"})
    )
    assert error.message.endswith(" ...and 734 more chars.")
    assert len(error.message) < 600


async def test_empty_error_body_and_json_without_message() -> None:
    error = await raised_by(httpx.Response(429))
    assert error.message == "The server sent an empty error body (no Content-Type)."
    error = await raised_by(httpx.Response(500, json={"detail": 1}))
    assert error.message == "The server's JSON error body has no message: '{\"detail\":1}'."
    assert error.body == {"detail": 1}


async def test_stream_checks_status_before_handing_out_the_body() -> None:
    stream = RecordingStream(b'{"error":{"code":401,"message":"No auth"}}', then_wait=False)
    error = await raised_by(httpx.Response(401, stream=stream), stream=True)
    assert isinstance(error, AuthenticationError)
    assert error.message == "No auth"
    assert stream.closed


# --------------------------------------------------------------------------- streaming bodies


async def test_stream_yields_chunks_as_they_arrive() -> None:
    first_seen = trio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        await first_seen.wait()  # would deadlock if the transport buffered
        yield b""
        yield b"data: 2\n\n"

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=body(),
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "X-Generation-Id": "gen-1",
                "X-Request-Id": "req-1",
            },
        )

    received: list[bytes] = []
    async with make(respond) as transport:
        with trio.fail_after(5):
            async with transport.stream("POST", "/responses", content=b"{}") as response:
                assert isinstance(response, StreamingResponse)
                assert response.status_code == 200
                assert response.content_type == "text/event-stream"
                assert response.is_event_stream
                assert response.generation_id == "gen-1"
                assert response.request_id == "req-1"
                assert response.headers["x-generation-id"] == "gen-1"
                async for chunk in response.aiter_raw():
                    received.append(chunk)
                    first_seen.set()
    assert received == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_json_answer_to_a_stream_request_is_readable_with_aread() -> None:
    async with make(lambda request: httpx.Response(200, json={"id": "r"})) as transport:
        with trio.fail_after(5):
            async with transport.stream("POST", "/responses", content=b"{}") as response:
                assert not response.is_event_stream
                assert response.content_type == "application/json"
                assert await response.aread() == b'{"id":"r"}'


async def test_read_error_mid_stream_raises_transport_error_after_earlier_chunks() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        yield b"data: 2\n\n"
        raise httpx.ReadError("connection reset by peer")

    received: list[bytes] = []

    async def collect(response: StreamingResponse) -> None:
        async for chunk in response.aiter_raw():
            received.append(chunk)

    async with make(lambda request: httpx.Response(200, content=body())) as transport:
        with trio.fail_after(5):
            async with transport.stream("POST", "/responses", content=b"{}") as response:
                with pytest.raises(TransportError) as info:
                    await collect(response)
    assert received == [b"data: 1\n\n", b"data: 2\n\n"]
    assert type(info.value) is TransportError
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert str(info.value) == (
        "POST '/api/v1/responses' failed (ReadError: connection reset by peer)."
    )


async def test_read_timeout_mid_stream_raises_transport_timeout() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        raise httpx.ReadTimeout("timed out")

    async with make(lambda request: httpx.Response(200, content=body())) as transport:
        with trio.fail_after(5):
            async with transport.stream("GET", "/x") as response:
                with pytest.raises(TransportTimeout, match=r"^GET '/api/v1/x' timed out \(Read"):
                    await response.aread()


async def test_leaving_the_stream_block_early_closes_the_response() -> None:
    stream = RecordingStream(b"data: 1\n\n", b"data: 2\n\n")
    async with make(lambda request: httpx.Response(200, stream=stream)) as transport:
        with trio.fail_after(5):
            async with transport.stream("POST", "/responses", content=b"{}") as response:
                async for chunk in response.aiter_raw():
                    assert chunk == b"data: 1\n\n"
                    break
                assert not stream.closed
            assert stream.closed


async def test_stopping_early_unwinds_the_body_chain_at_once() -> None:
    """An async-generator body abandoned mid-way is finalized when the block exits,
    not later by the garbage collector (which trio would report as a ResourceWarning)."""
    unwound = trio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            yield b"data: 2\n\n"
            await trio.sleep_forever()
        finally:
            unwound.set()

    async with make(lambda request: httpx.Response(200, content=body())) as transport:
        with trio.fail_after(5):
            async with transport.stream("POST", "/responses", content=b"{}") as response:
                async for _ in response.aiter_raw():
                    break
                assert not unwound.is_set()
            assert unwound.is_set()


async def test_an_exception_in_the_stream_block_closes_the_response() -> None:
    stream = RecordingStream(b"data: 1\n\n")
    async with make(lambda request: httpx.Response(200, stream=stream)) as transport:
        with trio.fail_after(5), pytest.raises(KeyError):
            async with transport.stream("POST", "/responses", content=b"{}"):
                raise KeyError("consumer bug")
    assert stream.closed


async def test_cancellation_inside_the_stream_block_closes_the_response() -> None:
    stream = RecordingStream(b"data: 1\n\n")  # then waits forever
    async with make(lambda request: httpx.Response(200, stream=stream)) as transport:
        with trio.fail_after(5):
            with trio.CancelScope() as cancel_scope:
                async with transport.stream("POST", "/responses", content=b"{}") as response:
                    async for _ in response.aiter_raw():
                        cancel_scope.cancel()
            assert cancel_scope.cancelled_caught
    assert stream.closed


async def test_body_can_be_read_once_and_only_inside_the_block() -> None:
    async with make(lambda request: httpx.Response(200, content=b"abc")) as transport:
        with trio.fail_after(5):
            async with transport.stream("GET", "/x") as response:
                assert await response.aread() == b"abc"
                with pytest.raises(trio.ClosedResourceError, match="already been read"):
                    response.aiter_raw()
            async with transport.stream("GET", "/x") as late:
                pass
            with pytest.raises(trio.ClosedResourceError, match="stream\\(\\) block exited"):
                late.aiter_raw()


async def test_gzip_content_encoding_is_undone() -> None:
    payload = b"data: 1\n\n" * 50

    async def body() -> AsyncIterator[bytes]:
        data = gzip.compress(payload)
        yield data[:10]
        yield data[10:]

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body(), headers={"Content-Encoding": "gzip"})

    async with make(respond) as transport:
        with trio.fail_after(5):
            async with transport.stream("GET", "/x") as response:
                assert b"".join([c async for c in response.aiter_raw()]) == payload
            assert (await transport.request("GET", "/x")).body == payload


async def test_undecodable_content_encoding_is_a_remote_protocol_error() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip", headers={"Content-Encoding": "gzip"})

    async with make(respond) as transport:
        with trio.fail_after(5), pytest.raises(RemoteProtocolError, match=r"^The body of GET"):
            await transport.request("GET", "/x")


# --------------------------------------------------------------------------- request()


async def test_request_returns_status_headers_and_body() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"data": {"id": 1}}, headers={"X-Generation-Id": "gen-9"})

    async with make(respond) as transport:
        with trio.fail_after(5):
            response = await transport.request("POST", "/keys", json={"name": "k"})
    assert isinstance(response, HTTPResponse)
    assert response.status_code == 201
    assert response.content_type == "application/json"
    assert response.generation_id == "gen-9"
    assert response.json() == {"data": {"id": 1}}


def test_http_response_json_rejects_invalid_json() -> None:
    response = HTTPResponse(status_code=200, headers=httpx.Headers(), body=b"<html>")
    with pytest.raises(RemoteProtocolError, match=r"^The response body is not valid JSON"):
        response.json()


# --------------------------------------------------------------------------- transport errors


async def test_connect_error_maps_to_transport_error_naming_method_and_path() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    async with make(respond) as transport:
        with trio.fail_after(5), pytest.raises(TransportError) as info:
            await transport.request("GET", "/models")
    assert type(info.value) is TransportError
    assert str(info.value) == (
        "GET '/api/v1/models' failed (ConnectError: [Errno 111] Connection refused)."
    )
    assert isinstance(info.value.__cause__, httpx.ConnectError)


@pytest.mark.parametrize(
    "exc", [httpx.ConnectTimeout(""), httpx.PoolTimeout("pool"), httpx.WriteTimeout("w")]
)
async def test_timeouts_map_to_transport_timeout(exc: httpx.TimeoutException) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        raise exc

    async with make(respond) as transport:
        with trio.fail_after(5), pytest.raises(TransportTimeout) as info:
            await transport.request("GET", "/models")
    assert str(info.value).startswith(f"GET '/api/v1/models' timed out ({type(exc).__name__}")
    assert info.value.__cause__ is exc


async def test_the_api_key_never_appears_in_errors_or_reprs() -> None:
    """Failures that echo the key (httpx text, an error body, a mid-stream error) are scrubbed."""
    echoed = f"key {FAKE_KEY} rejected"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(echoed)

    def reject(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": 401, "message": echoed, "metadata": {"key": FAKE_KEY}}}
        return httpx.Response(401, json=body, headers={"Content-Type": "application/json"})

    def reject_html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, content=echoed.encode(), headers={"Content-Type": "text/plain"})

    async def broken_body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        raise httpx.ReadTimeout(echoed)

    def break_mid_stream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=broken_body())

    async def read(transport: ApiTransport) -> None:
        async with transport.stream("POST", "/responses", content=b"{}") as response:
            assert_no_secret(response)
            await response.aread()

    errors: list[AgentError] = []
    for handler in (refuse, reject, reject_html, break_mid_stream):
        transport = make(handler)
        assert_no_secret(transport)
        async with transport:
            with trio.fail_after(5), pytest.raises(AgentError) as info:
                await read(transport)
        errors.append(info.value)
    assert [type(e) for e in errors] == [
        TransportError,
        AuthenticationError,
        PermissionDeniedError,
        TransportTimeout,
    ]
    assert_no_secret(*errors)
    assert "***" in str(errors[0])
    assert isinstance(errors[1], APIStatusError)
    assert errors[1].message == "key *** rejected"
    assert errors[1].metadata == {"key": "***"}


# --------------------------------------------------------------------------- lifecycle


async def test_closed_transport_refuses_requests_and_aclose_is_idempotent() -> None:
    recorder = Recorder()
    transport = make(recorder)
    async with transport:
        pass
    assert "closed=True" in repr(transport)
    await transport.aclose()
    with trio.fail_after(5), pytest.raises(trio.ClosedResourceError, match="is closed"):
        await transport.request("GET", "/models")
    assert recorder.requests == []


async def test_aclose_closes_even_when_cancelled() -> None:
    transport = make(Recorder())
    with trio.CancelScope() as cancel_scope:
        cancel_scope.cancel()
        await transport.aclose()
    assert cancel_scope.cancelled_caught
    assert "closed=True" in repr(transport)


async def test_request_is_a_checkpoint_even_when_the_answer_is_immediate() -> None:
    async with make(Recorder()) as transport:
        with trio.CancelScope() as cancel_scope:
            cancel_scope.cancel()
            await transport.request("GET", "/models")
            pytest.fail("request() did not checkpoint")
    assert cancel_scope.cancelled_caught


# --------------------------------------------------------------------------- loopback


async def _serve_sse(seen: list[bytes], server_stream: trio.SocketStream) -> None:
    """One request per connection; the path picks the behaviour: complete, drop or hang."""
    request = b""
    while b"\r\n\r\n" not in request:
        request += await server_stream.receive_some(65536)
    head, _, body = request.partition(b"\r\n\r\n")
    match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    while match and len(body) < int(match.group(1)):
        body += await server_stream.receive_some(65536)
    seen.append(head)
    # The client may hang up as soon as it has what it wants (that is the point of
    # the /hang case), so a send into a closed connection is not a server failure.
    with contextlib.suppress(trio.BrokenResourceError):
        await server_stream.send_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for n in range(3):
            event = b': \n\ndata: {"n": %d}\n\n' % n
            await server_stream.send_all(b"%x\r\n%s\r\n" % (len(event), event))
        if b" /api/v1/complete " in head:
            await server_stream.send_all(b"0\r\n\r\n")
        elif b" /api/v1/drop " in head:  # hang up in the middle of a chunk
            await server_stream.send_all(b"40\r\ndata: trunc")
        else:
            await trio.sleep_forever()
    await server_stream.aclose()


async def test_loopback_streams_over_real_sockets() -> None:
    """httpx's default transport (httpcore) runs natively on trio, no extra needed.

    Also: stopping early releases everything without leaving abandoned async
    generators behind (trio would report them, and filterwarnings=error would
    fail this test), and the pool serves the next request.
    """
    seen: list[bytes] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                functools.partial(
                    trio.serve_tcp, functools.partial(_serve_sse, seen), 0, host="127.0.0.1"
                )
            )
            port = listeners[0].socket.getsockname()[1]
            async with ApiTransport(
                api_key=FAKE_KEY, base_url=f"http://127.0.0.1:{port}/api/v1", retry=NO_RETRY
            ) as transport:
                async with transport.stream("POST", "/hang", content=b"{}") as response:
                    async for chunk in response.aiter_raw():
                        assert chunk.startswith(b": \n\ndata: ")
                        break

                received = b""
                async with transport.stream("POST", "/complete", content=b"{}") as response:
                    assert response.is_event_stream
                    async for chunk in response.aiter_raw():
                        received += chunk
                assert received.count(b"data: {") == 3

                async with transport.stream("GET", "/drop") as response:
                    with pytest.raises(TransportError) as info:
                        await response.aread()
                assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
            nursery.cancel_scope.cancel()
    assert [head.split(b"\r\n", 1)[0] for head in seen] == [
        b"POST /api/v1/hang HTTP/1.1",
        b"POST /api/v1/complete HTTP/1.1",
        b"GET /api/v1/drop HTTP/1.1",
    ]
    assert b"\r\naccept: text/event-stream" in seen[0].lower()
