"""`openrouter-trio serve` as a real process: prints the URL, serves the page, stops on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import trio


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
