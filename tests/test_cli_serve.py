"""`openrouter-trio serve` as a real process: prints the URL, serves the page, stops on Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from runtime._cli.main import build_parser, run_cli
from runtime._cli.serve import ServeOptions, serve_sessions
from runtime._cli.tools import demo_tools

if TYPE_CHECKING:
    from pathlib import Path


async def test_serve_prints_the_url_serves_the_page_and_stops_on_ctrl_c() -> None:
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "runtime", "serve", "--port", "0", "--sessions", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        output = b""
        match = None
        try:
            while match is None:
                chunk = await process.stdout.receive_some()
                assert chunk, f"serve ended early: {output!r}"
                output += chunk
                match = re.search(rb"open the dashboard: (http://\S+)#token=(\S+)", output)
            url = match.group(1).decode()
            async with httpx.AsyncClient() as http:
                page = await http.get(url)
                config = await http.get(url + "config.json")
            assert page.status_code == 200
            assert 'id="sessions"' in page.text
            assert config.json()["feed_port"] > 0
            assert match.group(2).decode() not in page.text
        finally:
            process.send_signal(signal.SIGINT)
            code = await process.wait()
    assert code == 0
    assert b"embedded emulator" in output


async def test_serve_reads_its_token_from_a_file_and_never_prints_it(tmp_path: Path) -> None:
    """Issue 16: ``--token-file`` (or the environment), never echoed; the feed checks it."""
    token = "file-token-never-printed-31f7"
    token_file = tmp_path / "feed.token"
    token_file.write_text(token + "\n")
    env = {**os.environ, "OPENROUTER_TRIO_FEED_TOKEN": "env-token-not-used-9c2a"}
    env.pop("OPENROUTER_API_KEY", None)
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "runtime", "serve", "--port", "0", "--sessions", "1",
             "--token-file", str(token_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )  # fmt: skip
        assert process.stdout is not None
        output = b""
        try:
            while b"open the dashboard" not in output or not output.endswith(b"\n"):
                chunk = await process.stdout.receive_some()
                assert chunk, f"serve ended early: {output!r}"
                output += chunk
            port = int(re.search(rb"websocket feed on port (\d+)", output).group(1))  # type: ignore[union-attr]
            url = f"ws://127.0.0.1:{port}/"
            good = [(b"authorization", f"Bearer {token}".encode())]
            async with open_websocket_url(url, extra_headers=good) as ws:
                ready = json.loads(await ws.get_message())
            async with httpx.AsyncClient() as http:
                refused = await http.get(
                    f"http://127.0.0.1:{port}/",
                    headers={
                        "upgrade": "websocket",
                        "connection": "Upgrade",
                        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
                        "sec-websocket-version": "13",
                        "authorization": "Bearer env-token-not-used-9c2a",
                    },
                )
        finally:
            process.send_signal(signal.SIGINT)
            code = await process.wait()
            assert process.stderr is not None
            errors = await process.stderr.receive_some()
    assert code == 0
    assert ready["type"] == "feed.ready"
    assert refused.status_code == 401
    assert token.encode() not in output + errors
    assert b"#token=<your token>" in output


async def test_serve_workers_without_redis_is_a_configuration_error_naming_the_option() -> None:
    out, err = io.StringIO(), io.StringIO()
    with trio.fail_after(10):
        code = await run_cli(["serve", "--workers", "2", "--port", "0"], stdout=out, stderr=err)
    assert code == 1
    assert err.getvalue().startswith("error: ConfigurationError: --workers 2 needs --redis URL")
    assert out.getvalue() == ""  # nothing was started


def test_serve_feed_port_must_be_a_port_number() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--feed-port", "-1"])
    args = build_parser().parse_args(["serve", "--feed-port", "8765", "--reuse-port"])
    assert (args.feed_port, args.reuse_port, args.workers) == (8765, True, 0)


async def test_serve_feed_port_puts_the_feed_on_that_port_and_the_page_says_so() -> None:
    with socket.socket() as probe:  # a free port to ask for by number
        probe.bind(("127.0.0.1", 0))
        feed_port = probe.getsockname()[1]
    options = ServeOptions(port=0, feed_port=feed_port, sessions=1, token="t-feed-port")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            served = await nursery.start(serve_sessions, options, demo_tools(2, 0.0))
            async with httpx.AsyncClient() as http:
                config = (await http.get(served.address.url + "config.json")).json()
            url = f"ws://127.0.0.1:{feed_port}/"
            good = [(b"authorization", b"Bearer t-feed-port")]
            async with open_websocket_url(url, extra_headers=good) as ws:
                ready = json.loads(await ws.get_message())
            nursery.cancel_scope.cancel()
    assert served.address.feed_port == config["feed_port"] == feed_port
    assert ready["type"] == "feed.ready"
    assert ready["data"]["pid"] == os.getpid()
    assert served.pids == ()
