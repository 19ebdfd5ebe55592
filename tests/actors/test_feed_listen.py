"""Several feeds and pages on one port (``reuse_port``, SO_REUSEPORT), over real loopback TCP."""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from actors._feed.listen import open_listeners
from actors._feed.page import serve_dashboard_page
from actors._feed.server import EventFeed, serve_dashboard, serve_event_feed
from runtime._base.errors import ConfigurationError
from runtime.testing import MemoryRegistry

if TYPE_CHECKING:
    from actors._feed.protocol import DashboardAddress

TOKEN = "listen-test-token"
HEADERS = [(b"authorization", f"Bearer {TOKEN}".encode())]

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the kernel spreads SO_REUSEPORT on Linux"
)


@linux_only
async def test_two_feeds_share_one_port_and_the_kernel_spreads_connections() -> None:
    registry = MemoryRegistry(model="m")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            serve = functools.partial(
                serve_event_feed, registry, "127.0.0.1", token=TOKEN, reuse_port=True
            )
            first: EventFeed = await nursery.start(functools.partial(serve, 0))
            second: EventFeed = await nursery.start(functools.partial(serve, first.port))
            assert second.port == first.port
            for _ in range(32):
                async with open_websocket_url(
                    f"ws://127.0.0.1:{first.port}/", extra_headers=HEADERS
                ) as ws:
                    ready = json.loads(await ws.get_message())
                    assert ready["type"] == "feed.ready"
                    assert ready["data"]["pid"] == os.getpid()  # which process serves it
            accepted = (first.statistics().accepted, second.statistics().accepted)
            nursery.cancel_scope.cancel()
    # 32 connections hashed over two listeners: both get some (a miss: 2 in 2**32).
    assert sum(accepted) == 32
    assert min(accepted) > 0, accepted


async def test_without_reuse_port_a_second_feed_cannot_take_the_port() -> None:
    registry = MemoryRegistry(model="m")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            first: EventFeed = await nursery.start(
                functools.partial(serve_event_feed, registry, "127.0.0.1", 0, token=TOKEN)
            )
            with pytest.raises(OSError, match="in use"):
                await open_listeners("127.0.0.1", first.port, reuse_port=True)
            nursery.cancel_scope.cancel()


@linux_only
async def test_the_dashboard_page_and_its_feed_share_fixed_ports() -> None:
    """``serve_dashboard(..., feed_port=F, reuse_port=True)`` twice: same page, same feed."""
    registry = MemoryRegistry(model="m")
    listeners = await open_listeners("127.0.0.1", 0)
    feed_port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()  # a free port to ask for by number
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            serve = functools.partial(
                serve_dashboard,
                registry,
                "127.0.0.1",
                token=TOKEN,
                feed_port=feed_port,
                reuse_port=True,
            )
            first: DashboardAddress = await nursery.start(serve, 0)
            second: DashboardAddress = await nursery.start(serve, first.http_port)
            async with httpx.AsyncClient() as http:
                config = (await http.get(first.url + "config.json")).json()
            nursery.cancel_scope.cancel()
    assert first.feed_port == second.feed_port == feed_port
    assert first.http_port == second.http_port
    assert config["feed_port"] == feed_port


async def test_reuse_port_without_so_reuseport_is_a_configuration_error_naming_the_platform(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT", raising=False)
    with trio.fail_after(10):
        with pytest.raises(ConfigurationError, match=rf"SO_REUSEPORT.*{sys.platform!r}"):
            await open_listeners("127.0.0.1", 0, reuse_port=True)
        with pytest.raises(ConfigurationError, match="SO_REUSEPORT"):
            await serve_dashboard_page("127.0.0.1", 0, feed_port=1, reuse_port=True)
        # Without reuse_port nothing needs the option.
        listeners = await open_listeners("127.0.0.1", 0)
        await listeners[0].aclose()


async def test_a_port_out_of_range_is_a_configuration_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="65536"):
        await open_listeners("127.0.0.1", 65536)
