"""Tests for the retry policy of runtime._http.transport (RetryConfig, backoff, give-up rules).

Every test runs on ``autojump_clock``: backoff sleeps are ``trio.sleep`` on
trio's clock, so the times a scripted ``httpx.MockTransport`` handler sees are
exact, and jitter comes from an injected, seeded ``random.Random``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import msgspec
import pytest
import trio
import trio.testing

from runtime._base.errors import (
    APIStatusError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    ServiceUnavailableError,
    TransportError,
    TransportTimeout,
)
from runtime._http.retry import DEFAULT_RETRY, NO_RETRY, RetryConfig
from runtime._http.transport import ApiTransport

FAKE_KEY = "sk-or-v1-TOPSECRET-0123456789abcdef"
SEED = 1234

Outcome = Callable[[], httpx.Response]


class ClosableBody(httpx.AsyncByteStream):
    """An error body that records whether the transport closed it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self.data:
            raise StopAsyncIteration
        data, self.data = self.data, b""
        return data

    async def aclose(self) -> None:
        self.closed = True


def status(code: int, headers: dict[str, str] | None = None, body: Any = None) -> Outcome:
    """An outcome answering ``code`` with a canonical error (or given) JSON body."""

    def respond() -> httpx.Response:
        payload = body if body is not None else {"error": {"code": code, "message": f"s{code}"}}
        stream = ClosableBody(msgspec.json.encode(payload))
        bodies.append(stream)
        return httpx.Response(code, headers=headers, stream=stream)

    bodies: list[ClosableBody] = []
    respond.bodies = bodies  # type: ignore[attr-defined]  # read back by one test
    return respond


def ok() -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


def fail(exc: Exception) -> Outcome:
    def respond() -> httpx.Response:
        raise exc

    return respond


class Script:
    """A MockTransport handler that plays outcomes in order (the last one repeats)."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        return outcome()

    @property
    def attempts(self) -> int:
        return len(self.times)

    @property
    def delays(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.times, self.times[1:], strict=False)]


def make(script: Script, **kwargs: Any) -> ApiTransport:
    kwargs.setdefault("rng", random.Random(SEED))
    return ApiTransport(api_key=FAKE_KEY, http_transport=httpx.MockTransport(script), **kwargs)


def jitters(count: int) -> list[float]:
    twin = random.Random(SEED)
    return [twin.random() for _ in range(count)]


async def request(transport: ApiTransport, **kwargs: Any) -> None:
    with trio.fail_after(7200):
        async with transport:
            response = await transport.request("POST", "/responses", content=b"{}", **kwargs)
    assert response.status_code == 200


# --------------------------------------------------------------------------- RT-01


async def test_rt01_503_twice_then_200_waits_per_the_backoff_formula(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """RT-01: 503, 503, 200 -> 3 attempts; full jitter below 0.5 * 2**x for x = 0, 1."""
    script = Script(status(503), status(503), ok)
    await request(make(script))
    assert script.attempts == 3
    r0, r1 = jitters(2)
    assert script.delays == pytest.approx([0.5 * r0, 1.0 * r1])


async def test_backoff_grows_with_the_exponent_and_is_capped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(status(500), status(502), status(503), status(504), ok)
    config = RetryConfig(initial_interval=4.0, exponent=2.0, max_interval=20.0, max_retries=None)
    await request(make(script, retry=config))
    r = jitters(4)
    assert script.delays == pytest.approx([4.0 * r[0], 8.0 * r[1], 16.0 * r[2], 20.0 * r[3]])


async def test_rt01_retry_after_seconds_is_honoured(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """RT-01: ``Retry-After: 2`` -> the retry comes 2 s later."""
    script = Script(status(503, {"Retry-After": "2"}), ok)
    await request(make(script))
    assert script.delays == [2.0]


async def test_retry_after_ms_beats_retry_after(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(status(503, {"retry-after-ms": "1500", "Retry-After": "9"}), ok)
    await request(make(script))
    assert script.delays == pytest.approx([1.5])


async def test_retry_after_http_date_is_relative_to_now(
    autojump_clock: trio.testing.MockClock,
) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    script = Script(status(503, {"Retry-After": when}), ok)
    await request(make(script))
    assert 28.0 < script.delays[0] <= 30.0


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "0"},
        {"Retry-After": "soon"},
        {"Retry-After": "-3"},
        {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},  # in the past
        {"retry-after-ms": "nan"},
    ],
)
async def test_useless_retry_hints_fall_back_to_the_formula(
    autojump_clock: trio.testing.MockClock, headers: dict[str, str]
) -> None:
    script = Script(status(503, headers), ok)
    await request(make(script))
    assert script.delays == pytest.approx([0.5 * jitters(1)[0]])


async def test_a_hint_longer_than_max_retry_after_is_not_waited_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(status(503, {"Retry-After": "120"}), ok)
    with pytest.raises(ServiceUnavailableError) as info:
        await request(make(script))
    assert script.attempts == 1
    assert info.value.retry_after == 120.0
    assert trio.current_time() == 0.0  # raised at once, not after a wait


async def test_a_hint_up_to_max_retry_after_wins_over_max_interval(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(status(503, {"Retry-After": "30"}), ok)
    await request(make(script))
    assert script.delays == [30.0]


@pytest.mark.parametrize("headers", [{"Retry-After": "0.01"}, {"retry-after-ms": "1"}])
async def test_tiny_hints_are_raised_to_the_floor(
    autojump_clock: trio.testing.MockClock, headers: dict[str, str]
) -> None:
    """A ``Retry-After: 0.01`` must not turn into 100 requests a second."""
    script = Script(status(503, headers), status(503, headers), ok)
    await request(make(script))
    assert script.delays == [DEFAULT_RETRY.min_retry_after] * 2


async def test_availability_retry_after_in_the_body_is_honoured(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = {"error": {"message": "busy", "http_status": 503, "availability": {"retry_after": 3}}}
    script = Script(status(503, body=body), ok)
    await request(make(script))
    assert script.delays == [3.0]


async def test_rt01_429_is_not_retried_by_default(autojump_clock: trio.testing.MockClock) -> None:
    """RT-01: a 429 is final under the default policy; retry_after is still reported."""
    script = Script(status(429, {"Retry-After": "5"}), ok)
    with pytest.raises(RateLimitError) as info:
        await request(make(script))
    assert script.attempts == 1
    assert info.value.retry_after == 5.0


async def test_429_is_retried_when_listed(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(status(429, {"Retry-After": "5"}), ok)
    await request(make(script, retry=RetryConfig(retry_codes=("429", "5XX"))))
    assert script.delays == [5.0]


async def test_exact_codes_match_only_themselves(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(status(502), ok)
    with pytest.raises(BadGatewayError):
        await request(make(script, retry=RetryConfig(retry_codes=("503",))))
    assert script.attempts == 1


@pytest.mark.parametrize(("code", "cls"), [(400, BadRequestError), (401, AuthenticationError)])
async def test_400_and_401_are_never_retried_by_the_usual_policies(
    autojump_clock: trio.testing.MockClock, code: int, cls: type[APIStatusError]
) -> None:
    for config in (DEFAULT_RETRY, RetryConfig(retry_codes=("408", "429", "5XX"))):
        script = Script(status(code, {"Retry-After": "1"}), ok)
        with pytest.raises(cls):
            await request(make(script, retry=config))
        assert script.attempts == 1


# --------------------------------------------------------------------------- connection errors


async def test_rt01_connection_error_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    """RT-01: a connection reset before the answer is retried, with the formula's delay."""
    script = Script(fail(httpx.ConnectError("reset")), ok)
    await request(make(script))
    assert script.attempts == 2
    assert script.delays == pytest.approx([0.5 * jitters(1)[0]])


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("slow headers"),
        httpx.ConnectTimeout("slow connect"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.WriteError("broken pipe"),
    ],
)
async def test_timeouts_and_network_failures_before_the_answer_are_retried(
    autojump_clock: trio.testing.MockClock, exc: Exception
) -> None:
    script = Script(fail(exc), ok)
    await request(make(script))
    assert script.attempts == 2


async def test_local_protocol_errors_are_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(fail(httpx.LocalProtocolError("bad request line")), ok)
    with pytest.raises(TransportError):
        await request(make(script))
    assert script.attempts == 1


async def test_connection_errors_are_raised_when_their_retry_is_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(fail(httpx.ConnectError("refused")), ok)
    with pytest.raises(TransportError) as info:
        await request(make(script, retry=RetryConfig(retry_connection_errors=False)))
    assert script.attempts == 1
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_persistent_timeouts_give_up_with_transport_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(fail(httpx.ConnectTimeout("slow")))
    with pytest.raises(TransportTimeout):
        await request(make(script, retry=RetryConfig(max_retries=3)))
    assert script.attempts == 4


# --------------------------------------------------------------------------- giving up


async def test_strategy_none_sends_once(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(status(503, {"Retry-After": "1"}), ok)
    with pytest.raises(ServiceUnavailableError):
        await request(make(script, retry=NO_RETRY))
    assert script.attempts == 1
    script = Script(fail(httpx.ConnectError("refused")), ok)
    with pytest.raises(TransportError):
        await request(make(script, retry=NO_RETRY))
    assert script.attempts == 1


async def test_per_call_policy_overrides_the_transport_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(status(503), ok)
    with pytest.raises(ServiceUnavailableError):
        await request(make(script), retry=NO_RETRY)
    assert script.attempts == 1
    script = Script(status(503), ok)
    await request(make(script, retry=NO_RETRY), retry=RetryConfig())
    assert script.attempts == 2


async def test_max_elapsed_time_gives_up_with_the_typed_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = {"error": {"code": 503, "message": "down", "metadata": {"provider": "p"}}}
    script = Script(status(503, {"Retry-After": "2"}, body))
    with pytest.raises(ServiceUnavailableError) as info:
        await request(make(script, retry=RetryConfig(max_elapsed_time=5.0, max_retries=None)))
    # attempts at 0, 2, 4; a wait from 4 to 6 would pass the 5 s budget, so it is not made
    assert script.delays == [2.0, 2.0]
    assert trio.current_time() == 4.0
    assert (info.value.message, info.value.metadata) == ("down", {"provider": "p"})
    assert info.value.retry_after == 2.0


async def test_max_retries_caps_the_attempts(autojump_clock: trio.testing.MockClock) -> None:
    script = Script(status(529))
    with pytest.raises(APIStatusError) as info:
        await request(make(script, retry=RetryConfig(max_retries=2)))
    assert script.attempts == 3
    assert info.value.status_code == 529


async def test_retried_error_responses_are_closed(autojump_clock: trio.testing.MockClock) -> None:
    failing = status(503)
    script = Script(failing, failing, ok)
    await request(make(script))
    bodies = failing.bodies  # type: ignore[attr-defined]
    assert len(bodies) == 2
    assert all(body.closed for body in bodies)


async def test_rt01_cancellation_during_backoff_stops_retrying(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """RT-01 (abort): cancelling while waiting to retry ends the call; nothing is re-sent."""
    failing = status(503, {"Retry-After": "10"})
    script = Script(failing, ok)

    async def cancel_later(scope: trio.CancelScope) -> None:
        await trio.sleep(5)
        scope.cancel()

    async with make(script) as transport, trio.open_nursery() as nursery:
        with trio.CancelScope() as cancel_scope:
            nursery.start_soon(cancel_later, cancel_scope)
            await transport.request("POST", "/responses", content=b"{}")
        await trio.sleep(60)
    assert cancel_scope.cancelled_caught
    assert trio.current_time() == pytest.approx(65.0)
    assert script.attempts == 1
    assert failing.bodies[0].closed  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- streams


async def test_stream_retries_the_headers_phase(autojump_clock: trio.testing.MockClock) -> None:
    def streaming() -> httpx.Response:
        return httpx.Response(
            200, content=b"data: 1\n\n", headers={"Content-Type": "text/event-stream"}
        )

    script = Script(status(502), streaming)
    async with make(script) as transport:
        with trio.fail_after(60):
            async with transport.stream("POST", "/responses", content=b"{}") as response:
                assert await response.aread() == b"data: 1\n\n"
    assert script.attempts == 2


async def test_a_failure_after_the_answer_started_is_never_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        raise httpx.ReadError("reset")

    def broken() -> httpx.Response:
        return httpx.Response(200, content=body())

    async def read_stream(transport: ApiTransport) -> None:
        async with transport.stream("POST", "/responses") as response:
            await response.aread()

    async def read_request(transport: ApiTransport) -> None:
        await transport.request("POST", "/responses")

    for read in (read_stream, read_request):
        script = Script(broken, ok)
        async with make(script) as transport:
            with trio.fail_after(60), pytest.raises(TransportError):
                await read(transport)
        assert script.attempts == 1


# --------------------------------------------------------------------------- RetryConfig


def test_defaults_are_bounded() -> None:
    """Three attempts within 60 s, as openai-python (2 retries, 0.5 s to 8 s) does."""
    bounded = RetryConfig(
        strategy="backoff",
        initial_interval=0.5,
        max_interval=8.0,
        exponent=2.0,
        max_elapsed_time=60.0,
        retry_connection_errors=True,
        retry_codes=("5XX",),
        max_retries=2,
        min_retry_after=0.5,
        max_retry_after=60.0,
    )
    assert bounded == DEFAULT_RETRY
    assert NO_RETRY.strategy == "none"


@pytest.mark.parametrize(
    ("status_code", "codes", "expected"),
    [
        (503, ("5XX",), True),
        (599, ("5XX",), True),
        (429, ("5XX",), False),
        (429, ("429", "5XX"), True),
        (408, ("4XX",), True),
        (503, ("502",), False),
        (200, ("5XX",), False),
    ],
)
def test_retries_status(status_code: int, codes: tuple[str, ...], expected: bool) -> None:
    assert RetryConfig(retry_codes=codes).retries_status(status_code) is expected
    assert not NO_RETRY.retries_status(status_code)


def test_retry_codes_are_normalised() -> None:
    config = RetryConfig(retry_codes=["5xx", "429"])  # type: ignore[arg-type]  # a list on purpose
    assert config.retry_codes == ("5XX", "429")
    assert hash(config) == hash(RetryConfig(retry_codes=("5XX", "429")))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"strategy": "exponential"}, r"^RetryConfig\.strategy must be 'backoff' or 'none', not"),
        ({"initial_interval": -0.1}, r"^RetryConfig\.initial_interval must be a number >= 0, not"),
        ({"initial_interval": float("inf")}, r"^RetryConfig\.initial_interval must be a number"),
        ({"max_interval": float("nan")}, r"^RetryConfig\.max_interval must be a number >= 0"),
        ({"exponent": "1.5"}, r"^RetryConfig\.exponent must be a number >= 0, not '1\.5'\.$"),
        ({"max_elapsed_time": True}, r"^RetryConfig\.max_elapsed_time must be a number"),
        ({"retry_connection_errors": 1}, r"^RetryConfig\.retry_connection_errors must be a bool"),
        ({"retry_codes": "5XX"}, r"^RetryConfig\.retry_codes must be a sequence of strings"),
        ({"retry_codes": ("5YY",)}, r"^RetryConfig\.retry_codes entries must be .* not '5YY'\.$"),
        ({"retry_codes": ("200",)}, r"^RetryConfig\.retry_codes entries must be .* not '200'\.$"),
        ({"retry_codes": (503,)}, r"^RetryConfig\.retry_codes entries must be .* not 503\.$"),
        ({"max_retries": -1}, r"^RetryConfig\.max_retries must be None or an int >= 0, not -1\."),
        ({"max_retries": 2.0}, r"^RetryConfig\.max_retries must be None or an int >= 0"),
    ],
)
def test_invalid_retry_config_raises_configuration_error(
    kwargs: dict[str, Any], pattern: str
) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        RetryConfig(**kwargs)


def test_retry_config_decodes_from_json_with_the_same_checks() -> None:
    config = msgspec.json.decode(b'{"max_retries": 3, "retry_codes": ["429"]}', type=RetryConfig)
    assert (config.max_retries, config.retry_codes) == (3, ("429",))
    with pytest.raises(msgspec.ValidationError, match="initial_interval must be a number"):
        msgspec.json.decode(b'{"initial_interval": -1}', type=RetryConfig)


# --------------------------------------------------------------------------- bounded by default


async def test_a_server_that_always_fails_costs_three_requests_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The old default sent 3,602 requests over an hour against a permanent 503."""
    script = Script(status(503))
    with pytest.raises(ServiceUnavailableError):
        await request(make(script))
    assert script.attempts == 3
    assert trio.current_time() < 2.0  # 0.5 s and 1 s jitter ceilings


async def test_a_dead_network_fails_fast_by_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(fail(httpx.ConnectError("no route to host")))
    with pytest.raises(TransportError):
        await request(make(script))
    assert script.attempts == 3


async def test_a_wait_past_the_callers_deadline_is_not_made(
    autojump_clock: trio.testing.MockClock,
) -> None:
    script = Script(status(503, {"Retry-After": "5"}), ok)
    async with make(script) as transport:
        with trio.fail_after(3), pytest.raises(ServiceUnavailableError):
            await transport.request("POST", "/responses", content=b"{}")
    assert script.attempts == 1
    assert trio.current_time() == 0.0


async def test_every_retry_and_give_up_is_logged_without_the_key(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"error": {"code": 503, "message": f"bad key {FAKE_KEY}"}}
    script = Script(status(503, body=body))
    with (
        caplog.at_level(logging.WARNING, logger="openrouter_trio.http"),
        pytest.raises(ServiceUnavailableError) as info,
    ):
        await request(make(script))
    records = [r for r in caplog.records if r.name == "openrouter_trio.http"]
    lines = [r.getMessage() for r in records]
    assert len(lines) == 3, lines
    assert lines[0].startswith(
        "POST /api/v1/responses: 503 ServiceUnavailableError; retry 1 of 2 in "
    )
    assert "retry 2 of 2" in lines[1]
    assert lines[2].startswith("POST /api/v1/responses: giving up after 3 attempts in ")
    assert "max_retries=2 used up" in lines[2]
    assert all(r.levelno == logging.WARNING for r in records)
    assert FAKE_KEY not in "\n".join(lines)
    assert FAKE_KEY not in str(info.value)


async def test_a_connection_failure_is_logged_by_its_class(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(fail(httpx.ConnectError(f"refused {FAKE_KEY}")), ok)
    with caplog.at_level(logging.WARNING, logger="openrouter_trio.http"):
        await request(make(script))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "openrouter_trio.http"]
    assert ": ConnectError; retry 1 of 2 in " in line
    assert FAKE_KEY not in line


def test_retry_after_bounds_are_checked() -> None:
    for bad in ({"min_retry_after": -1.0}, {"max_retry_after": float("nan")}):
        with pytest.raises(ConfigurationError, match="retry_after"):
            RetryConfig(**bad)  # type: ignore[arg-type]
