"""The HTTP transport: the one module that speaks HTTP to OpenRouter, and the only httpx importer.

Its job: turn ``(method, path, body)`` into an HTTP exchange that carries
OpenRouter's auth and attribution headers, retry the connect/headers phase
according to a :class:`RetryConfig`, and translate every failure into the
runtime's error tree. It knows HTTP, not SSE: a stream's body goes out as raw
byte chunks, and the model-call actor feeds them to the SSE decoder.

Rules this module keeps (each one is relied on elsewhere):

1. **One translation boundary.** Every httpx exception is translated by
   :func:`_translate`, reached through :func:`_map_httpx_errors` (httpx's
   ``map_httpcore_exceptions`` shape) or, per body chunk, through the same
   ``except`` inlined in :class:`_RawBody`: timeouts become
   :class:`TransportTimeout`, other transport failures :class:`TransportError`,
   undecodable content encodings :class:`RemoteProtocolError`, always
   ``raise Mapped(...) from exc``. Nothing outside this module ever sees an
   ``httpx.*`` exception.
2. **Status before body.** A non-2xx answer is read (at most
   ``_ERROR_BODY_LIMIT`` bytes), closed and raised as the typed error of its
   status before anything could hand its bytes to a body parser.
3. **Only the connect/headers phase is retried.** Once a 2xx response has been
   handed out, a failure while reading its body is raised, never answered with a
   re-send: a model's output would be duplicated and billed twice.
4. **The API key stays secret.** It is checked eagerly (so that h11 never gets
   to quote an illegal header value back in an error), every ``repr`` shows a
   redacted form, and any text that comes from the server or from httpx is
   scrubbed of it before it reaches a message or an error attribute.
5. **Every response is closed on every path**, cancellation included: closing
   runs in a shielded scope bounded by ``_CLOSE_GRACE`` seconds, and a body
   left half-read is unwound at once rather than left to the garbage
   collector (see :class:`_RawBody`).
6. **Backoff sleeps on trio's clock** (``trio.sleep``) and draws jitter from an
   injectable ``random.Random``, so tests run on ``autojump_clock``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from importlib import metadata
from typing import Any, Final, Self, TypeAlias, final

import httpx
import msgspec
import trio

from runtime._base.errors import AgentError, ConfigurationError, TransportError
from runtime._http.errors import _map_httpx_errors, _retryable_failure, _scrub, _status_error
from runtime._http.h11 import H11Transport
from runtime._http.responses import (
    _CLOSE_GRACE,
    HTTPResponse,
    StreamingResponse,
    _close_response,
    _read_error_body,
)
from runtime._http.retry import DEFAULT_RETRY, RetryConfig, _backoff_delay
from runtime._telemetry import record_retry

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "HttpxTransport",
    "HTTPTimeout",
    "ApiTransport",
    "USER_AGENT",
    "check_headers",
]

HttpxTransport: TypeAlias = httpx.AsyncBaseTransport
"""What ``OpenRouter(http_transport=...)`` takes (so other modules need not import httpx)."""
HTTPTimeout: TypeAlias = httpx.Timeout
"""What ``OpenRouter(timeout=...)`` takes besides seconds."""

DEFAULT_BASE_URL: Final = "https://openrouter.ai/api/v1"
# A model may think for minutes between two SSE lines when a provider sends no
# keep-alive, so reads get a long leash; a connect that takes 10 s is dead.
DEFAULT_TIMEOUT: Final = httpx.Timeout(600.0, connect=10.0)
# One pool shared by every session of a client: many sessions stream at once.
DEFAULT_LIMITS: Final = httpx.Limits(
    max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0
)

_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Visible ASCII only: what an API key may contain.
_KEY_CHARS: Final = re.compile(r"[\x21-\x7e]+")
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_JSON_ENCODER: Final = msgspec.json.Encoder()
_LOG: Final = logging.getLogger("openrouter_trio.http")


def _package_version() -> str:
    try:
        return metadata.version("openrouter-trio")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"


USER_AGENT: Final = (
    f"openrouter-trio/{_package_version()} python/{sys.version_info[0]}.{sys.version_info[1]}"
)


# --------------------------------------------------------------------------- configuration


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _check_api_key(api_key: object) -> str | None:
    """The bare key (no ``Bearer `` prefix); never quotes the key in an error."""
    if api_key is None:
        return None
    if not isinstance(api_key, str):
        raise ConfigurationError(
            f"api_key must be a str or None, not a {type(api_key).__name__!r}."
        )
    key = api_key.strip()
    if key.lower() == "bearer" or key[:7].lower() == "bearer ":
        key = key[6:].strip()
    if not key:
        raise ConfigurationError("api_key is empty; pass a key such as 'sk-or-v1-...' or None.")
    if not _KEY_CHARS.fullmatch(key):
        index, char = next((i, c) for i, c in enumerate(key) if not _KEY_CHARS.fullmatch(c))
        raise ConfigurationError(
            f"api_key contains {char!r} at index {index}, which cannot be sent in an HTTP header."
        )
    return key


def _redacted(key: str | None) -> str | None:
    if key is None:
        return None
    if key.startswith("sk-or-") and len(key) >= 20:
        return f"sk-or-…{key[-4:]}"
    return "***"


def _check_base_url(value: object, source: str) -> str:
    example = f"an http(s) URL such as {DEFAULT_BASE_URL!r}"
    if not isinstance(value, str):
        raise ConfigurationError(f"{source} must be {example}, not {value!r}.")
    text = value.strip().rstrip("/")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{source} must be {example}, not {value!r}.") from exc
    if url.scheme not in ("http", "https") or not url.host or not 0 < (url.port or 1) < 65536:
        raise ConfigurationError(f"{source} must be {example}, not {value!r}.")
    if url.userinfo or url.query or url.fragment:
        raise ConfigurationError(
            f"{source} must not carry credentials, a query or a fragment, not {value!r}."
        )
    return text


def _check_header_value(what: str, value: object) -> bytes:
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a str, not {value!r}.")
    if _CONTROL_CHARS.search(value):
        raise ConfigurationError(f"{what} contains a control character: {value!r}.")
    # Non-ASCII (an app title such as 'Café') goes out as UTF-8 (obs-text).
    return value.encode()


def check_headers(headers: object, where: str) -> list[tuple[bytes, bytes]]:
    """Header pairs as bytes, checked before any I/O (names, values, no ``Authorization``).

    Raises:
        ConfigurationError: naming ``where`` and the offending header.
    """
    return _check_headers(headers, where)


def _check_headers(headers: object, where: str) -> list[tuple[bytes, bytes]]:
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"{where} must be a mapping of str to str, not {headers!r}.")
    checked: list[tuple[bytes, bytes]] = []
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigurationError(f"{where} has an invalid header name {name!r}.")
        if name.lower() in ("authorization", "proxy-authorization"):
            raise ConfigurationError(
                f"{where} must not set {name!r}; pass the key as api_key so it stays redacted."
            )
        checked.append((name.encode(), _check_header_value(f"{where}[{name!r}]", value)))
    return checked


def _check_categories(categories: object) -> str | None:
    if categories is None:
        return None
    items: list[object]
    if isinstance(categories, str):
        items = [part.strip() for part in categories.split(",")]
    elif isinstance(categories, Sequence):
        items = list(categories)
    else:
        raise ConfigurationError(
            f"app_categories must be a sequence of strings, not {categories!r}."
        )
    for item in items:
        if not isinstance(item, str) or not item or not _HEADER_NAME.fullmatch(item) or "," in item:
            raise ConfigurationError(
                f"app_categories entries must be names such as 'cli-agent', not {item!r}."
            )
    return ",".join(str(item) for item in items) or None


def _check_timeout(timeout: object) -> httpx.Timeout:
    if timeout is None or isinstance(timeout, httpx.Timeout):
        return httpx.Timeout(timeout)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(
            f"timeout must be a number of seconds > 0, an httpx.Timeout or None, not {timeout!r}."
        )
    return httpx.Timeout(float(timeout))


def _check_path(path: object) -> str:
    if (
        not isinstance(path, str)
        or not path
        or "://" in path
        or path.startswith("//")
        or _CONTROL_CHARS.search(path)
        or " " in path
    ):
        raise ConfigurationError(
            f"path must be a path relative to the base URL such as '/responses', not {path!r}."
        )
    return path


# --------------------------------------------------------------------------- the transport


@final
class ApiTransport:
    """OpenRouter over HTTP: auth, attribution headers, retries and error mapping.

    Owns one ``httpx.AsyncClient`` whose connection pool is shared by every
    request and session that uses this transport. Use it as an async context
    manager, or call :meth:`aclose` when done.

    Unset arguments fall back to the environment: ``OPENROUTER_API_KEY``,
    ``OPENROUTER_BASE_URL``, ``OPENROUTER_HTTP_REFERER``,
    ``OPENROUTER_APP_TITLE``, ``OPENROUTER_APP_CATEGORIES`` (empty counts as
    unset). Everything is validated here, before any I/O.

    Args:
        api_key: the key sent as ``Authorization: Bearer <key>`` (a ``Bearer ``
            prefix is not doubled; surrounding whitespace is dropped). ``None``
            means the environment, and without that no ``Authorization`` header.
        base_url: API root; default ``https://openrouter.ai/api/v1``; a trailing
            ``/`` is stripped.
        http_referer: your app's URL (``HTTP-Referer``), for attribution.
        app_title: your app's name (``X-OpenRouter-Title``).
        app_categories: marketplace categories (``X-OpenRouter-Categories``),
            a sequence or a comma-separated string.
        retry: the default retry policy; each call may override it.
        timeout: seconds for every phase, an ``httpx.Timeout``, or ``None`` for
            no HTTP-level timeout. Whole-call deadlines belong to the caller
            (``trio.fail_after``).
        limits: connection-pool limits (ignored when ``http_transport`` is given).
        headers: extra headers sent with every request (not ``Authorization``).
        http_transport: an ``httpx.AsyncBaseTransport`` to send through
            (``httpx.MockTransport`` in tests); the transport then owns it.
        user_agent: replaces ``openrouter-trio/<version> python/<x.y>``.
        rng: source of backoff jitter (inject a seeded one in tests).

    Raises:
        ConfigurationError: for any invalid argument or environment value.
    """

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        http_referer: str | None = None,
        app_title: str | None = None,
        app_categories: str | Sequence[str] | None = None,
        retry: RetryConfig = DEFAULT_RETRY,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        limits: httpx.Limits | None = None,
        headers: Mapping[str, str] | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        user_agent: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        key = _check_api_key(api_key if api_key is not None else _env("OPENROUTER_API_KEY"))
        if base_url is not None:
            url = _check_base_url(base_url, "base_url")
        else:
            env_url = _env("OPENROUTER_BASE_URL")
            url = (
                DEFAULT_BASE_URL
                if env_url is None
                else _check_base_url(env_url, "OPENROUTER_BASE_URL")
            )
        if not isinstance(retry, RetryConfig):
            raise ConfigurationError(f"retry must be a RetryConfig, not {retry!r}.")
        if limits is not None and not isinstance(limits, httpx.Limits):
            raise ConfigurationError(f"limits must be an httpx.Limits or None, not {limits!r}.")
        if http_transport is not None and not isinstance(http_transport, httpx.AsyncBaseTransport):
            raise ConfigurationError(
                f"http_transport must be an httpx.AsyncBaseTransport, not {http_transport!r}."
            )
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigurationError(f"rng must be a random.Random, not {rng!r}.")

        default_headers: list[tuple[bytes, bytes]] = [
            (b"User-Agent", _check_header_value("user_agent", user_agent or USER_AGENT))
        ]
        if key is not None:
            default_headers.append((b"Authorization", f"Bearer {key}".encode()))
        referer = http_referer if http_referer is not None else _env("OPENROUTER_HTTP_REFERER")
        if referer is not None:
            default_headers.append((b"HTTP-Referer", _check_header_value("http_referer", referer)))
        title = app_title if app_title is not None else _env("OPENROUTER_APP_TITLE")
        if title is not None:
            default_headers.append((b"X-OpenRouter-Title", _check_header_value("app_title", title)))
        categories = _check_categories(
            app_categories if app_categories is not None else _env("OPENROUTER_APP_CATEGORIES")
        )
        if categories is not None:
            default_headers.append((b"X-OpenRouter-Categories", categories.encode()))
        if headers is not None:
            default_headers.extend(_check_headers(headers, "headers"))

        self._api_key = key
        self._secret = key.encode() if key is not None else None
        self._base_url = url
        self._retry = retry
        self._rng = rng if rng is not None else random.Random()
        self._closed = False
        pool_limits = limits if limits is not None else DEFAULT_LIMITS
        if http_transport is None:
            # Bulk reads: a server flushing every token costs ~1 µs per HTTP
            # chunk here instead of httpcore's ~17 µs (see runtime._http.h11).
            http_transport = H11Transport(limits=pool_limits)
        self._client = httpx.AsyncClient(
            base_url=url,
            headers=httpx.Headers(default_headers),
            timeout=_check_timeout(timeout),
            limits=pool_limits,
            transport=http_transport,
            follow_redirects=False,
        )

    @property
    def base_url(self) -> str:
        """The API root every path is relative to (no trailing ``/``)."""
        return self._base_url

    @property
    def retry(self) -> RetryConfig:
        """The default retry policy."""
        return self._retry

    @property
    def secret(self) -> bytes | None:
        """The API key as bytes, for scrubbing it out of what the server echoes.

        Never print it: it is here so that the stream reader can replace it
        with ``***`` in every event payload before anything is made of it.
        """
        return self._secret

    def redact(self, text: str) -> str:
        """``text`` with the API key replaced by ``***`` (for snapshots and logs)."""
        return _scrub(text, self._api_key)

    def __repr__(self) -> str:
        return (
            f"ApiTransport(base_url={self._base_url!r}, "
            f"api_key={_redacted(self._api_key)!r}, closed={self._closed!r})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent; always a checkpoint.

        Closes even when cancelled (shielded, bounded), then checkpoints, like
        trio's own ``aclose`` methods. Responses still open are closed with it.
        """
        if not self._closed:
            self._closed = True
            with trio.move_on_after(_CLOSE_GRACE, shield=True):
                await self._client.aclose()
        await trio.lowlevel.checkpoint()

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: Mapping[str, str | int | float | bool | None] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryConfig | None = None,
    ) -> AsyncIterator[StreamingResponse]:
        """Send a request and yield its 2xx response with the body still unread.

        Sends ``Accept: text/event-stream`` (override with ``headers``) and, with
        ``content``, ``Content-Type: application/json``. The connect/headers
        phase is retried under ``retry`` (default: the transport's policy); the
        status is checked before the block is entered.

        Entering is a checkpoint. Cancellation while entering leaves nothing
        open. Leaving the block, in any way, closes the body and releases the
        connection; the :class:`StreamingResponse` is unusable afterwards.

        Args:
            method: ``"POST"``, ``"GET"``, ...
            path: relative to the base URL, e.g. ``"/responses"``.
            content: the request body, already encoded (JSON).
            params: query parameters.
            headers: extra headers for this request (not ``Authorization``).
            retry: the retry policy for this request.

        Raises:
            APIStatusError: a non-2xx answer (the subclass of its status), after
                retries were exhausted for a retryable status.
            TransportError: the request could not be sent or answered.
            TransportTimeout: an HTTP-level timeout expired.
            ConfigurationError: a bad argument.
            trio.ClosedResourceError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        request = self._build(method, path, content, params, headers, "text/event-stream")
        context = (request.method, request.url.path, self._api_key)
        streaming = StreamingResponse(await self._send(request, context, retry), context)
        try:
            yield streaming
        finally:
            await streaming._aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str | int | float | bool | None] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: RetryConfig | None = None,
    ) -> HTTPResponse:
        """Send a request and read its whole 2xx answer (for the REST endpoints).

        ``json`` is encoded with msgspec (anything msgspec can encode, Structs
        included); ``content`` is sent as is. Retries and errors as in
        :meth:`stream`; reading the body after the headers is not retried.
        Always a checkpoint. On cancellation the response is closed.

        Raises:
            APIStatusError: a non-2xx answer (the subclass of its status).
            TransportError: the request failed, also while reading the body.
            TransportTimeout: an HTTP-level timeout expired.
            RemoteProtocolError: the body's ``Content-Encoding`` was undecodable.
            ConfigurationError: a bad argument (e.g. both ``json`` and ``content``).
            trio.ClosedResourceError: the transport is closed.
        """
        await trio.lowlevel.checkpoint()
        if json is not None:
            if content is not None:
                raise ConfigurationError("Pass either json or content, not both.")
            try:
                content = _JSON_ENCODER.encode(json)
            except (TypeError, msgspec.EncodeError) as exc:
                raise ConfigurationError(
                    f"json could not be encoded: {type(json).__name__!r} ({exc})."
                ) from exc
        request = self._build(method, path, content, params, headers, "application/json")
        context = (request.method, request.url.path, self._api_key)
        response = await self._send(request, context, retry)
        try:
            with _map_httpx_errors(*context):
                body = await response.aread()
        finally:
            await _close_response(response)
        secret = self._secret
        if secret and secret in body:  # a server echoing the key: never hand it on
            body = body.replace(secret, b"***")
        return HTTPResponse(status_code=response.status_code, headers=response.headers, body=body)

    def _build(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, str | int | float | bool | None] | None,
        headers: Mapping[str, str] | None,
        accept: str,
    ) -> httpx.Request:
        if self._closed:
            raise trio.ClosedResourceError("This ApiTransport is closed.")
        verb = method.upper() if isinstance(method, str) else method
        if verb not in _METHODS:
            raise ConfigurationError(
                f"method must be an HTTP method such as 'POST', not {method!r}."
            )
        if content is not None and not isinstance(content, bytes):
            raise ConfigurationError(f"content must be bytes, not {type(content).__name__!r}.")
        request_headers = httpx.Headers({"Accept": accept})
        if content is not None:
            request_headers["Content-Type"] = "application/json"
        if headers:
            # Header names are case-insensitive: update() replaces ours with the caller's.
            request_headers.update(httpx.Headers(_check_headers(headers, "headers")))
        try:
            return self._client.build_request(
                verb, _check_path(path), content=content, params=params, headers=request_headers
            )
        except httpx.InvalidURL as exc:
            raise ConfigurationError(
                f"path must be a path relative to the base URL, not {path!r}."
            ) from exc

    async def _send(
        self,
        request: httpx.Request,
        context: tuple[str, str, str | None],
        retry: RetryConfig | None,
    ) -> httpx.Response:
        """Send with retries; return an unread 2xx response or raise the final failure."""
        if retry is not None and not isinstance(retry, RetryConfig):
            raise ConfigurationError(f"retry must be a RetryConfig or None, not {retry!r}.")
        config = self._retry if retry is None else retry
        start = trio.current_time()
        attempt = 0
        while True:
            error: AgentError
            try:
                with _map_httpx_errors(*context):
                    response = await self._client.send(request, stream=True)
                    if response.is_success:
                        return response
                    try:
                        body = await _read_error_body(response, context)
                    finally:
                        await _close_response(response)
            except TransportError as exc:
                if not (
                    config.strategy == "backoff"
                    and config.retry_connection_errors
                    and _retryable_failure(exc)
                ):
                    raise
                error, hint = exc, None
                reason = type(exc.__cause__ or exc).__name__
            else:
                status_error = _status_error(
                    response.status_code, response.headers, body, self._api_key, time.time()
                )
                if not config.retries_status(response.status_code):
                    raise status_error
                error, hint = status_error, status_error.retry_after
                reason = f"{response.status_code} {type(status_error).__name__}"
            delay = _backoff_delay(config, attempt, hint, self._rng)
            why = _give_up_reason(config, attempt, start, delay, hint)
            method, path, _ = context
            if why is not None:
                _LOG.warning(
                    "%s %s: giving up after %d attempt%s in %.2f s (%s): %s",
                    method,
                    path,
                    attempt + 1,
                    "" if attempt == 0 else "s",
                    trio.current_time() - start,
                    why,
                    reason,
                )
                raise error
            _LOG.warning(
                "%s %s: %s; retry %d%s in %.2f s",
                method,
                path,
                reason,
                attempt + 1,
                "" if config.max_retries is None else f" of {config.max_retries}",
                delay,
            )
            record_retry(attempt + 1, delay, reason)
            await trio.sleep(delay)
            attempt += 1


def _give_up_reason(
    config: RetryConfig, attempt: int, start: float, delay: float, hint: float | None
) -> str | None:
    """Why retry ``attempt`` (0-based) is not made, or ``None`` when it is."""
    if config.max_retries is not None and attempt >= config.max_retries:
        return f"max_retries={config.max_retries} used up"
    if hint is not None and hint > config.max_retry_after:
        return (
            f"the server asked to wait {hint:g} s, "
            f"more than max_retry_after={config.max_retry_after:g} s"
        )
    now = trio.current_time()
    if now + delay - start > config.max_elapsed_time:
        return f"the next wait would pass max_elapsed_time={config.max_elapsed_time:g} s"
    if now + delay >= trio.current_effective_deadline():
        return "the next wait would pass the caller's deadline"
    return None
