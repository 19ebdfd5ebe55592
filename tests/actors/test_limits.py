"""A run's time limits and the checks made before any I/O.

* ``stream_idle_timeout``: keep-alive comments do not hold a stream open; events do.
* ``call_model(deadline=...)`` and the pool's default ``deadline``: ``RunTimeout``.
* ``call_model`` refuses a missing or empty model, bad header values, absurdly
  nested values and bad limits with a ``ConfigurationError`` naming the parameter.

The servers here are ``httpx.MockTransport`` handlers streaming by hand on the
autojump clock, so minutes of silence take no real time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio
import trio.testing

from runtime import (
    ConfigurationError,
    OpenRouter,
    RetryConfig,
    RunTimeout,
    TransportTimeout,
    open_session_pool,
)
from runtime.testing import sse_bytes, text_turn, turn_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

KEY = "sk-or-v1-limits-0123456789abcdef0123456789abcdef"
KEEP_ALIVE = b": OPENROUTER PROCESSING\n\n"


def streaming(body: Callable[[], AsyncIterator[bytes]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    return httpx.MockTransport(handler)


def frames(text: str) -> list[bytes]:
    return [sse_bytes([event], done=False) for event in turn_events(text_turn(text))]


async def keep_alives_for_ever() -> AsyncIterator[bytes]:
    yield frames("x")[0]  # response.created, then nothing but comments
    while True:
        await trio.sleep(10)
        yield KEEP_ALIVE


def client(transport: httpx.MockTransport, **kwargs: Any) -> OpenRouter:
    return OpenRouter(KEY, http_transport=transport, retry=RetryConfig(strategy="none"), **kwargs)


async def test_keep_alive_comments_do_not_reset_the_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with client(streaming(keep_alives_for_ever), stream_idle_timeout=60) as c:
        result = c.call_model(model="m", input="Hi")
        with trio.fail_after(3600), pytest.raises(TransportTimeout, match="no event for 60"):
            await result.get_text()
    assert 60 <= trio.current_time() <= 66  # the limit, plus at most a tenth
    assert result.snapshot().status == "failed"


async def test_events_do_reset_the_idle_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def slow_events() -> AsyncIterator[bytes]:
        for frame in frames("one two three four"):
            await trio.sleep(50)  # each gap under the limit; the whole stream far over it
            yield frame

    async with client(streaming(slow_events), stream_idle_timeout=60) as c:
        with trio.fail_after(3600):
            assert await c.call_model(model="m", input="Hi").get_text() == "one two three four"
    assert trio.current_time() > 60 * 3


async def test_the_idle_timeout_defaults_to_five_minutes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with client(streaming(keep_alives_for_ever)) as c:
        with trio.fail_after(3600), pytest.raises(TransportTimeout):
            await c.call_model(model="m", input="Hi").get_text()
    assert 300 <= trio.current_time() <= 330


async def test_the_deadline_bounds_the_whole_run(autojump_clock: trio.testing.MockClock) -> None:
    async with client(streaming(keep_alives_for_ever), stream_idle_timeout=None) as c:
        result = c.call_model(model="m", input="Hi", deadline=30)
        with trio.fail_after(3600), pytest.raises(RunTimeout, match="deadline of 30 s") as info:
            await result.get_text()
    assert info.value.deadline == 30.0
    assert trio.current_time() == pytest.approx(30.0)
    snapshot = result.snapshot()
    assert snapshot.status == "failed"
    assert snapshot.error is not None
    assert snapshot.error.startswith("RunTimeout(")


async def test_the_pool_deadline_counts_from_admission(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with client(streaming(keep_alives_for_ever), stream_idle_timeout=None) as c:
        failed_at: list[float] = []
        async with open_session_pool(c, max_concurrent=1, deadline=10) as pool:
            results = [pool.start(model="m", input=str(i)) for i in range(3)]
            own = pool.start(model="m", input="own", deadline=1)
            for result in [*results, own]:
                with pytest.raises(RunTimeout):
                    await result.get_text()
                failed_at.append(trio.current_time())
    assert failed_at == pytest.approx([10.0, 20.0, 30.0, 31.0])


async def test_no_deadline_by_default() -> None:
    async with client(streaming(keep_alives_for_ever)) as c:
        assert c.call_model(model="m", input="Hi")._spec.deadline is None


# --------------------------------------------------------------------------- before any I/O


def _never(request: httpx.Request) -> httpx.Response:
    raise AssertionError("no request may be sent")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input": "Hi"}, "model is required"),
        ({"model": "", "input": "Hi"}, "model must be a model id"),
        ({"model": "   ", "input": "Hi"}, "model must be a model id"),
        ({"model": 42, "input": "Hi"}, "model must be a model id"),
        (
            {"model": "m", "input": "Hi", "headers": {"x-trace": "a\nb"}},
            r"headers\['x-trace'\] contains a control",
        ),
        ({"model": "m", "input": "Hi", "headers": {"bad name": "v"}}, "'bad name'"),
        ({"model": "m", "input": "Hi", "headers": {"Authorization": "x"}}, "Authorization"),
        ({"model": "m", "input": "Hi", "deadline": 0}, "deadline must be a positive"),
        ({"model": "m", "input": "Hi", "deadline": float("nan")}, "deadline"),
        ({"model": "m", "input": "Hi", "deadline": "10"}, "deadline"),
    ],
)
async def test_bad_parameters_are_refused_before_any_io(
    kwargs: dict[str, Any], message: str
) -> None:
    async with client(httpx.MockTransport(_never)) as c:
        with pytest.raises(ConfigurationError, match=message):
            c.call_model(**kwargs)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": [value]}
    return value


@pytest.mark.parametrize("depth", [65, 600, 5000])
async def test_deeply_nested_values_are_refused_by_name(depth: int) -> None:
    """msgspec would raise RecursionError near 1,000 levels; the check is iterative."""
    async with client(httpx.MockTransport(_never)) as c:
        with pytest.raises(ConfigurationError, match="metadata nests more than 128 levels"):
            c.call_model(model="m", input="Hi", metadata=_nested(depth))


async def test_moderate_nesting_is_fine() -> None:
    async with client(streaming(keep_alives_for_ever)) as c:
        c.call_model(model="m", input="Hi", text={"format": _nested(30)})


async def test_a_fallback_list_or_a_prompt_stands_in_for_the_model() -> None:
    async with client(httpx.MockTransport(_never)) as c:
        c.call_model(models=["a/b", "c/d"], input="Hi")
        c.call_model(model=lambda ctx: "a/b", input="Hi")


@pytest.mark.parametrize("bad", [0, -5, float("inf"), "60", True])
def test_a_bad_stream_idle_timeout_is_refused(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="stream_idle_timeout"):
        OpenRouter(KEY, stream_idle_timeout=bad)  # type: ignore[arg-type]


async def test_a_bad_pool_deadline_is_refused() -> None:
    async with client(httpx.MockTransport(_never)) as c:
        with pytest.raises(ConfigurationError, match="deadline"):
            async with open_session_pool(c, max_concurrent=1, deadline=-1):
                pass
