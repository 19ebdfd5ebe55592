"""docs/examples/oauth_app.py, driven end to end against the emulator over loopback.

A browser is played by an ``httpx.AsyncClient`` that keeps cookies and follows
redirects: app ``/login`` → emulator ``/auth`` (approves at once) → app
``/callback?code=`` → code exchange → a per-user client calls ``GET /key``.
Every test is bounded by ``trio.fail_after`` on trio's real clock.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trio

import runtime
from runtime.emulator import EmulatorServer, key_hash, open_emulator

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from types import ModuleType

BOUND = 15.0
EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "oauth_app.py"
FULL_KEY = re.compile(r"sk-or-v1-emu-[0-9a-f]{64}")


def _client_has_rest_namespaces() -> bool:
    client_class: Any = getattr(runtime, "OpenRouter", None)
    if client_class is None:
        return False
    client = client_class(api_key=None, base_url="http://127.0.0.1:9/api/v1")
    return hasattr(client, "o_auth") and hasattr(client, "api_keys")


@pytest.fixture(scope="module")
def example() -> ModuleType:
    if not _client_has_rest_namespaces():
        pytest.skip("runtime.OpenRouter does not expose o_auth/api_keys yet")
    spec = importlib.util.spec_from_file_location("oauth_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class Running:
    """The emulator and the example app, both listening on 127.0.0.1."""

    def __init__(self, emulator: EmulatorServer, app_url: str) -> None:
        self.emulator = emulator
        self.app_url = app_url


@pytest.fixture
async def running(example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    async with open_emulator() as emulator, trio.open_nursery() as nursery:
        serve = partial(example.serve_oauth_app, "127.0.0.1", 0, base_url=emulator.base_url)
        with trio.fail_after(BOUND):
            app_url = await nursery.start(serve)
        yield Running(emulator, app_url)
        nursery.cancel_scope.cancel()


async def test_sign_in_end_to_end(running: Running) -> None:
    with trio.fail_after(BOUND):
        async with httpx.AsyncClient(follow_redirects=True) as browser:
            page = await browser.get(f"{running.app_url}/login")
            home = await browser.get(f"{running.app_url}/")
    hops = [(r.status_code, r.url.host, r.url.port, r.url.path) for r in page.history]
    emulator_port = httpx.URL(running.emulator.url).port
    app_port = httpx.URL(running.app_url).port
    assert hops == [
        (302, "127.0.0.1", app_port, "/login"),
        (302, "127.0.0.1", emulator_port, "/auth"),
    ]
    assert page.status_code == 200
    assert page.url.path == "/callback"
    label = re.search(r"<code id=label>([^<]+)</code>", page.text)
    assert label is not None
    assert label.group(1).startswith("sk-or-v1-emu...")
    assert FULL_KEY.search(page.text) is None
    assert FULL_KEY.search(str(page.headers)) is None
    assert label.group(1) in home.text

    # The exchange carried the verifier of this browser's challenge ...
    records = running.emulator.emulator.requests
    authorize = next(r for r in records if r.path == "/auth")
    exchange = next(r for r in records if r.path == "/api/v1/auth/keys")
    assert exchange.json is not None
    assert exchange.json["code_challenge_method"] == "S256"
    assert authorize.query.count("code_challenge_method=S256") == 1
    # ... and the metadata was read with the user's new key, not the app's.
    lookup = next(r for r in records if r.path == "/api/v1/key")
    assert lookup.api_key_hash is not None
    assert lookup.api_key_hash not in (
        key_hash(running.emulator.inference_key),
        key_hash(running.emulator.management_key),
    )


async def test_callback_without_a_sign_in_in_progress_is_refused(running: Running) -> None:
    with trio.fail_after(BOUND):
        async with httpx.AsyncClient() as browser:
            page = await browser.get(f"{running.app_url}/callback", params={"code": "forged"})
    assert page.status_code == 400
    assert "No sign-in in progress" in page.text
    assert not [r for r in running.emulator.emulator.requests if r.path == "/api/v1/auth/keys"]


async def test_a_replayed_code_is_refused(running: Running) -> None:
    with trio.fail_after(BOUND):
        async with httpx.AsyncClient() as browser:
            login = await browser.get(f"{running.app_url}/login")
            authorize = await browser.get(login.headers["location"])
            callback = authorize.headers["location"]
            first = await browser.get(callback)
            await browser.get(f"{running.app_url}/login")  # a new verifier for this session
            replay = await browser.get(callback)
    assert first.status_code == 200
    assert replay.status_code == 403
    assert "Invalid code or code_verifier" in replay.text


async def test_the_authorization_url_points_at_the_emulator_with_pkce(running: Running) -> None:
    with trio.fail_after(BOUND):
        async with httpx.AsyncClient() as browser:
            login = await browser.get(f"{running.app_url}/login")
    assert login.status_code == 302
    target = httpx.URL(login.headers["location"])
    assert f"{target.scheme}://{target.host}:{target.port}" == running.emulator.url
    assert target.path == "/auth"
    assert target.params["callback_url"] == f"{running.app_url}/callback"
    assert target.params["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", target.params["code_challenge"])
    assert "oauth_demo_session=" in login.headers["set-cookie"]
