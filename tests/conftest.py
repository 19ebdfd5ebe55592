"""Shared fixtures.

``mcp_command`` is the command line of the test MCP server (``tests/mcp_server.py``,
stdio); ``mcp_http_url`` runs its HTTP mode as a process and yields the endpoint;
``open_mcp`` opens a connection to a fresh server of either kind.

``span_exporter`` records the OpenTelemetry spans the test makes (the SDK's
in-memory exporter on the process's one SDK provider: OpenTelemetry lets a process
set its provider once, so each test adds its own exporter to it).

``openapi`` validates JSON values against the schemas of OpenRouter's OpenAPI
subset, kept in the repository at ``tests/data/openapi/openrouter-subset.yaml``
(or the file named by ``OPENROUTER_OPENAPI``). It is the yardstick for what we send
and what the emulator serves.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio


def pytest_configure(config: pytest.Config) -> None:
    # A shell starts a background job (``make test &``, a CI runner's job) with SIGINT
    # ignored, and an ignored signal stays ignored in every child: the CLI processes the
    # tests stop with Ctrl-C would then never see it. Deliver it as a terminal would.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from actors._mcp import MCPServer

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def _spec_path() -> Path:
    env = os.environ.get("OPENROUTER_OPENAPI")
    if env:
        return Path(env)
    return REPO / "tests" / "data" / "openapi" / "openrouter-subset.yaml"


class OpenAPISchemas:
    """Validate instances against ``#/components/schemas/<name>`` of the spec."""

    def __init__(self, document: dict[str, Any]) -> None:
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self._registry: Any = Registry().with_resource("urn:openrouter", resource)
        self._validator_cls = Draft202012Validator

    @functools.cache  # noqa: B019 - one instance per session
    def _validator(self, name: str) -> Any:
        if name not in self.document["components"]["schemas"]:
            raise KeyError(f"no schema named {name!r} in the OpenAPI subset")
        ref = {"$ref": f"urn:openrouter#/components/schemas/{name}"}
        return self._validator_cls(ref, registry=self._registry)

    def errors(self, name: str, instance: Any) -> list[str]:
        """Every validation error of ``instance`` against schema ``name``, as text."""
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in self._validator(name).iter_errors(instance)
        ]

    def validate(self, name: str, instance: Any) -> None:
        """Fail the test with every error when ``instance`` does not match ``name``."""
        problems = self.errors(name, instance)
        if problems:
            pytest.fail(f"{name} validation failed:\n  " + "\n  ".join(problems[:20]))


@functools.cache
def _load_openapi() -> OpenAPISchemas:
    import yaml

    path = _spec_path()
    if not path.exists():
        raise FileNotFoundError(
            f"the OpenAPI subset is not at {str(path)!r}; set OPENROUTER_OPENAPI to its path"
        )
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as f:
        document = yaml.load(f, Loader=loader)
    return OpenAPISchemas(document)


@pytest.fixture(scope="session")
def openapi() -> OpenAPISchemas:
    return _load_openapi()


MCP_SERVER = str(REPO / "tests" / "mcp_server.py")


@pytest.fixture
def mcp_command() -> list[str]:
    return [sys.executable, MCP_SERVER]


@contextlib.asynccontextmanager
async def _http_server_url(*extra: str) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            partial(
                trio.run_process,
                [sys.executable, MCP_SERVER, "--http", *extra],
                stdout=subprocess.PIPE,
                check=False,
            )
        )
        assert process.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await process.stdout.receive_some(1)
            assert chunk, "the HTTP MCP server exited before listening"
            line += chunk
        assert line.startswith(b"LISTENING "), line
        try:
            yield line.split()[1].decode()
        finally:
            nursery.cancel_scope.cancel()


@pytest.fixture
def mcp_http_url() -> Callable[..., contextlib.AbstractAsyncContextManager[str]]:
    return _http_server_url


@contextlib.asynccontextmanager
async def _open_mcp(kind: str, *extra: str, **options: Any) -> AsyncIterator[MCPServer]:
    from actors._mcp import MCPServer

    if kind == "stdio":
        async with MCPServer.stdio([sys.executable, MCP_SERVER, *extra], **options) as server:
            yield server
    else:
        async with _http_server_url(*extra) as url, MCPServer.http(url, **options) as server:
            yield server


@pytest.fixture
def open_mcp() -> Callable[..., contextlib.AbstractAsyncContextManager[MCPServer]]:
    return _open_mcp
