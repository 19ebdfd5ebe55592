"""Fixtures and helpers for the emulator tests.

Rules for the tests in this directory:

* Loopback tests talk real HTTP to :func:`open_emulator` on 127.0.0.1 and are
  bounded with ``trio.fail_after`` on trio's real clock (never with
  ``autojump_clock``, which would jump across socket waits).
* Timing behaviour (slow streams, delays, hangs) is tested in-process through
  :meth:`Emulator.handle` with ``autojump_clock``.
* Every body the emulator serves is validated against the OpenAPI subset: the
  ``openapi`` fixture for named components, :class:`PathSchemas` for the
  inline schemas of some paths (``/key``, ``/keys``, ``/credits``, OAuth).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest

from runtime.emulator import EmulatorResponse, EmulatorServer, open_emulator

BOUND = 10.0  # seconds: the fail_after bound of every loopback test


class PathSchemas:
    """Validate against the inline schemas under ``#/paths`` of the OpenAPI subset."""

    def __init__(self, document: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Any = Registry().with_resource("urn:openrouter", resource)
        self._validator_cls = Draft202012Validator

    @functools.cache  # noqa: B019 - one instance per session
    def _validator(self, pointer: str) -> Any:
        return self._validator_cls({"$ref": f"urn:openrouter#{pointer}"}, registry=self._registry)

    def errors(
        self, path: str, method: str, status: int, instance: Any, *, request: bool = False
    ) -> list[str]:
        """Every error of ``instance`` against a response (or request) body schema."""
        escaped = path.replace("~", "~0").replace("/", "~1")
        if request:
            pointer = f"/paths/{escaped}/{method}/requestBody/content/application~1json/schema"
        else:
            pointer = (
                f"/paths/{escaped}/{method}/responses/{status}/content/application~1json/schema"
            )
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in self._validator(pointer).iter_errors(instance)
        ]

    def validate(
        self, path: str, method: str, status: int, instance: Any, *, request: bool = False
    ) -> None:
        """Fail the test with every error when ``instance`` does not match."""
        problems = self.errors(path, method, status, instance, request=request)
        if problems:
            pytest.fail(
                f"{method.upper()} {path} {status} validation failed:\n  "
                + "\n  ".join(problems[:20])
            )


@pytest.fixture(scope="session")
def paths(openapi: Any) -> PathSchemas:
    return PathSchemas(openapi.document)


ValidateEvent = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="session")
def stream_event(openapi: Any) -> ValidateEvent:
    """Validate a Responses stream event against the ``StreamEvents`` branch its type selects.

    Equivalent to validating against ``StreamEvents`` under its discriminator,
    and about five times faster than trying every ``oneOf`` branch.
    """
    mapping = openapi.document["components"]["schemas"]["StreamEvents"]["discriminator"]["mapping"]
    names = {kind: ref.rsplit("/", 1)[1] for kind, ref in mapping.items()}

    def validate(event: dict[str, Any]) -> None:
        assert event.get("type") in names, f"unknown stream event type {event.get('type')!r}"
        openapi.validate(names[event["type"]], event)

    return validate


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    async with open_emulator() as running:
        yield running


Connect = Callable[..., httpx.AsyncClient]


@pytest.fixture(scope="session")
def connect() -> Connect:
    """Make ``httpx.AsyncClient``s for the emulator: ``connect(base_url, key=None)``.

    Building an ``AsyncClient`` loads the CA bundle into a fresh SSL context
    (about 0.2 s); the loopback tests speak plain HTTP, so they share one.
    """
    context = ssl.create_default_context()

    def factory(base_url: str, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=BOUND, verify=context)

    return factory


@pytest.fixture
async def client(server: EmulatorServer, connect: Connect) -> AsyncIterator[httpx.AsyncClient]:
    async with connect(server.base_url, server.inference_key) as http:
        yield http


@pytest.fixture
async def admin(server: EmulatorServer, connect: Connect) -> AsyncIterator[httpx.AsyncClient]:
    async with connect(server.base_url, server.management_key) as http:
        yield http


class SSE(msgspec.Struct):
    """A parsed SSE body: data payloads in order, comment count, whether [DONE] came."""

    data: list[str]
    comments: int
    done: bool

    def json(self) -> list[Any]:
        """Every data payload decoded (``[DONE]`` excluded)."""
        return [msgspec.json.decode(item) for item in self.data]


def parse_sse(body: bytes) -> SSE:
    """A strict little SSE reader for what the emulator writes (``\\n`` line ends)."""
    data: list[str] = []
    comments = 0
    done = False
    assert body.endswith(b"\n\n") or not body, (
        f"body does not end with a blank line: {body[-40:]!r}"
    )
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        for line in block.split("\n"):
            if line.startswith(":"):
                comments += 1
            elif line.startswith("data: "):
                if done:
                    raise AssertionError("data after [DONE]")
                payload = line[len("data: ") :]
                if payload == "[DONE]":
                    done = True
                else:
                    data.append(payload)
            else:
                raise AssertionError(f"unexpected SSE line {line!r}")
    return SSE(data=data, comments=comments, done=done)


async def read_body(response: EmulatorResponse) -> bytes:
    """Every byte of an emulator body (bytes or an async iterator of chunks)."""
    body = response.body
    if isinstance(body, bytes):
        return body
    return b"".join([chunk async for chunk in body])


ParseSSE = Callable[[bytes], SSE]
ReadBody = Callable[[EmulatorResponse], Awaitable[bytes]]


@pytest.fixture(scope="session")
def sse() -> ParseSSE:
    """The strict SSE reader (test modules cannot import conftest)."""
    return parse_sse


@pytest.fixture(scope="session")
def read() -> ReadBody:
    """Read a whole emulator body, streamed or not."""
    return read_body
