"""The retry policy of :class:`~runtime._http.transport.ApiTransport`: when to re-send, how long.

:class:`RetryConfig` says which failures are retried and for how long;
:func:`_backoff_delay` computes each wait (the server's hint first, else
exponential backoff with jitter from an injectable ``random.Random``) and
:func:`_retry_after` reads the server's hint from ``retry-after-ms`` and
``Retry-After`` (seconds or an HTTP-date). No I/O here: the transport sleeps.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Iterable
from datetime import UTC
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from runtime._base.errors import ConfigurationError

if TYPE_CHECKING:
    import random

    import httpx

__all__ = ["DEFAULT_RETRY", "NO_RETRY", "RetryConfig"]
# Package-internal: _backoff_delay, _retry_after (runtime._http.transport, .errors).

_RETRY_CODE: Final = re.compile(r"[45](?:[0-9]{2}|XX)")


class RetryConfig(msgspec.Struct, frozen=True, kw_only=True):
    """When and how long to wait before re-sending a request.

    Only the connect/headers phase is ever retried; a response whose body has
    started is never re-sent. Each request (each turn of a run) has its own budget.

    The defaults are bounded on every axis, in line with openai-python (two
    retries, 0.5 s growing to at most 8 s) and OpenRouter's advice (back off
    exponentially, honour ``Retry-After``): at most **3 attempts** (2 retries)
    within **60 s**, so a dead server or a missing network fails a request in
    seconds with a typed error and a log line, never silently for an hour.

    The wait before retry ``x`` (0-based):

    * the server's hint when it sends one (``retry-after-ms``, then
      ``Retry-After`` as seconds or an HTTP-date, then
      ``error.availability.retry_after`` in the body), raised to at least
      ``min_retry_after`` (a hint of 10 ms must not turn into 100 requests a
      second); a hint longer than ``max_retry_after`` is not waited for: the
      error is raised at once, its ``retry_after`` telling the caller;
    * otherwise *full jitter*: a uniform random wait in
      ``[0, min(max_interval, initial_interval * exponent ** x)]``, so that
      many clients failing together do not retry together.

    A retry whose wait would end past ``max_elapsed_time`` (counted from the
    first attempt), or past the caller's trio deadline (``trio.fail_after``,
    ``call_model(deadline=...)``), is not attempted: the failure is raised at
    once. Every retry and every give-up is logged (logger ``openrouter_trio.http``,
    level WARNING, without any key) and is an event of the current
    OpenTelemetry span.

    Attributes:
        strategy: ``"backoff"`` retries; ``"none"`` sends each request once.
        initial_interval: seconds; the jitter ceiling of the first retry.
        max_interval: seconds; cap on the jitter ceiling.
        exponent: growth of the jitter ceiling per retry.
        max_elapsed_time: seconds; the total budget of one request's retries.
        retry_connection_errors: retry connect/read/write failures and timeouts
            that happen before the response headers arrived.
        retry_codes: statuses to retry, exact (``"503"``) or by family
            (``"5XX"``). 429 is not retried unless listed.
        max_retries: retries after the first attempt (``None``: no cap beyond
            ``max_elapsed_time``).
        min_retry_after: seconds; floor on a server's wait hint.
        max_retry_after: seconds; the longest server hint that is waited for.

    Raises:
        ConfigurationError: on construction, for a value out of range.
    """

    strategy: Literal["backoff", "none"] = "backoff"
    initial_interval: float = 0.5
    max_interval: float = 8.0
    exponent: float = 2.0
    max_elapsed_time: float = 60.0
    retry_connection_errors: bool = True
    retry_codes: tuple[str, ...] = ("5XX",)
    max_retries: int | None = 2
    min_retry_after: float = 0.5
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.strategy not in ("backoff", "none"):
            raise ConfigurationError(
                f"RetryConfig.strategy must be 'backoff' or 'none', not {self.strategy!r}."
            )
        _check_seconds("initial_interval", self.initial_interval)
        _check_seconds("max_interval", self.max_interval, allow_inf=True)
        _check_seconds("exponent", self.exponent)
        _check_seconds("max_elapsed_time", self.max_elapsed_time, allow_inf=True)
        _check_seconds("min_retry_after", self.min_retry_after)
        _check_seconds("max_retry_after", self.max_retry_after, allow_inf=True)
        if not isinstance(self.retry_connection_errors, bool):
            raise ConfigurationError(
                "RetryConfig.retry_connection_errors must be a bool, "
                f"not {self.retry_connection_errors!r}."
            )
        msgspec.structs.force_setattr(self, "retry_codes", _check_retry_codes(self.retry_codes))
        max_retries = self.max_retries
        if max_retries is not None and (
            not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0
        ):
            raise ConfigurationError(
                f"RetryConfig.max_retries must be None or an int >= 0, not {max_retries!r}."
            )

    def retries_status(self, status_code: int) -> bool:
        """Whether a response with ``status_code`` is retried under this policy."""
        if self.strategy != "backoff" or not 400 <= status_code <= 599:
            return False
        exact = str(status_code)
        family = f"{exact[0]}XX"
        return any(code in (exact, family) for code in self.retry_codes)


def _check_seconds(name: str, value: object, *, allow_inf: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < 0
        or (math.isinf(value) and not allow_inf)
    ):
        raise ConfigurationError(f"RetryConfig.{name} must be a number >= 0, not {value!r}.")


def _check_retry_codes(codes: object) -> tuple[str, ...]:
    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        raise ConfigurationError(
            "RetryConfig.retry_codes must be a sequence of strings such as ('5XX',), "
            f"not {codes!r}."
        )
    checked: list[str] = []
    for code in codes:
        normal = code.upper() if isinstance(code, str) else ""
        if not _RETRY_CODE.fullmatch(normal):
            raise ConfigurationError(
                "RetryConfig.retry_codes entries must be a 4xx/5xx status such as '503' "
                f"or a family such as '5XX', not {code!r}."
            )
        checked.append(normal)
    return tuple(checked)


DEFAULT_RETRY: Final = RetryConfig()
NO_RETRY: Final = RetryConfig(strategy="none")


def _backoff_delay(
    config: RetryConfig, attempt: int, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    A server hint wins (raised to ``min_retry_after``; the caller checks it
    against ``max_retry_after``); otherwise full jitter below an exponential
    ceiling capped at ``max_interval``.
    """
    if retry_after is not None and retry_after > 0:
        return max(retry_after, config.min_retry_after)
    try:
        ceiling = config.initial_interval * config.exponent**attempt
    except OverflowError:
        ceiling = math.inf
    return rng.uniform(0.0, min(ceiling, config.max_interval))


def _parse_seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _retry_after(headers: httpx.Headers, now: float) -> float | None:
    """The server's wait hint in seconds: ``retry-after-ms``, then ``Retry-After``."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        millis = _parse_seconds(raw_ms)
        if millis is not None:
            return millis / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _parse_seconds(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC without a named zone
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
