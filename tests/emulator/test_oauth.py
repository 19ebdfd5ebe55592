"""OAuth PKCE: ``/auth`` (site root), ``/auth/keys/code`` and ``/auth/keys``."""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any

import pytest
import trio

from runtime.emulator import Emulator, EmulatorServer, s256_challenge

if TYPE_CHECKING:
    import httpx

BOUND = 10.0
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_challenge_matches_the_rfc_7636_vector() -> None:
    assert s256_challenge(VERIFIER) == CHALLENGE


async def exchange(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await http.post("/auth/keys", json=body)


async def test_code_then_exchange_gives_a_working_key(
    server: EmulatorServer, client: httpx.AsyncClient, paths: Any, connect: Any
) -> None:
    request = {
        "callback_url": "https://myapp.example/callback",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "key_label": "my app",
        "limit": 3,
    }
    paths.validate("/auth/keys/code", "post", 0, request, request=True)
    with trio.fail_after(BOUND):
        created = await client.post("/auth/keys/code", json=request)
        assert created.status_code == 200
        paths.validate("/auth/keys/code", "post", 200, created.json())
        code = created.json()["data"]["id"]
        body = {"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"}
        paths.validate("/auth/keys", "post", 0, body, request=True)
        async with connect(server.base_url) as anonymous:
            exchanged = await exchange(anonymous, body)
            assert exchanged.status_code == 200
            paths.validate("/auth/keys", "post", 200, exchanged.json())
            key = exchanged.json()["key"]
            me = await anonymous.get("/key", headers={"Authorization": f"Bearer {key}"})
            answer = await anonymous.post(
                "/responses",
                json={"model": "emulator/echo", "input": "hi"},
                headers={"Authorization": f"Bearer {key}"},
            )
    assert me.json()["data"]["label"].startswith("sk-or-v1-")
    assert me.json()["data"]["limit"] == 3
    assert answer.status_code == 200


async def test_codes_are_single_use(client: httpx.AsyncClient, openapi: Any) -> None:
    with trio.fail_after(BOUND):
        created = await client.post(
            "/auth/keys/code",
            json={
                "callback_url": "http://localhost:3000/cb",
                "code_challenge": VERIFIER,
                "code_challenge_method": "plain",
            },
        )
        code = created.json()["data"]["id"]
        body = {"code": code, "code_verifier": VERIFIER, "code_challenge_method": "plain"}
        first = await exchange(client, body)
        second = await exchange(client, body)
    assert first.status_code == 200
    assert second.status_code == 403
    openapi.validate("ForbiddenResponse", second.json())
    assert second.json()["error"]["message"] == "Invalid code or code_verifier"


@pytest.mark.parametrize(
    ("verifier", "method", "status", "message"),
    [
        ("x" * 43, "S256", 403, "Invalid code or code_verifier"),
        (VERIFIER, "plain", 400, "Invalid code_challenge_method"),
        (None, "S256", 403, "Invalid code or code_verifier"),
    ],
)
async def test_exchange_errors_follow_section_9_2(
    client: httpx.AsyncClient,
    openapi: Any,
    verifier: str | None,
    method: str,
    status: int,
    message: str,
) -> None:
    with trio.fail_after(BOUND):
        created = await client.post(
            "/auth/keys/code",
            json={
                "callback_url": "https://a.example/",
                "code_challenge": CHALLENGE,
                "code_challenge_method": "S256",
            },
        )
        body: dict[str, Any] = {
            "code": created.json()["data"]["id"],
            "code_challenge_method": method,
        }
        if verifier is not None:
            body["code_verifier"] = verifier
        refused = await exchange(client, body)
        # a refused attempt does not burn the code: the right verifier still works
        accepted = await exchange(
            client,
            {"code": body["code"], "code_verifier": VERIFIER, "code_challenge_method": "S256"},
        )
    assert refused.status_code == status
    openapi.validate("ForbiddenResponse" if status == 403 else "BadRequestResponse", refused.json())
    assert refused.json()["error"]["message"] == message
    assert accepted.status_code == 200


async def test_codes_expire_after_ten_minutes(openapi: Any) -> None:
    now = [1_000_000.0]
    emulator = Emulator(clock=lambda: now[0])
    auth = {"authorization": f"Bearer {emulator.inference_key}"}
    created = await emulator.handle(
        "POST",
        "/api/v1/auth/keys/code",
        auth,
        json.dumps(
            {
                "callback_url": "https://a.example/",
                "code_challenge": CHALLENGE,
                "code_challenge_method": "S256",
            }
        ).encode(),
    )
    assert isinstance(created.body, bytes)
    code = json.loads(created.body)["data"]["id"]
    now[0] += 601
    expired = await emulator.handle(
        "POST",
        "/api/v1/auth/keys",
        {},
        json.dumps({"code": code, "code_verifier": VERIFIER}).encode(),
    )
    assert expired.status == 403
    assert isinstance(expired.body, bytes)
    openapi.validate("ForbiddenResponse", json.loads(expired.body))
    assert json.loads(expired.body)["error"]["message"] == "Authorization code expired"


async def test_auth_code_needs_a_key_and_a_valid_body(
    server: EmulatorServer, client: httpx.AsyncClient, openapi: Any, connect: Any
) -> None:
    with trio.fail_after(BOUND):
        async with connect(server.base_url) as anonymous:
            unauthorized = await anonymous.post(
                "/auth/keys/code", json={"callback_url": "https://a.example/"}
            )
        relative = await client.post("/auth/keys/code", json={"callback_url": "/relative"})
        bad_method = await client.post(
            "/auth/keys/code",
            json={"callback_url": "https://a.example/", "code_challenge_method": "S512"},
        )
        no_code = await exchange(client, {"code_verifier": VERIFIER})
        wrong_method = await client.get("/auth/keys")
    assert unauthorized.status_code == 401
    openapi.validate("UnauthorizedResponse", unauthorized.json())
    for response in (relative, bad_method, no_code):
        assert response.status_code == 400
        openapi.validate("BadRequestResponse", response.json())
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


async def test_browser_page_redirects_to_the_callback_with_a_code(
    server: EmulatorServer, connect: Any
) -> None:
    """The authorization URL of §7.2 (origin + /auth), followed like a browser would."""
    callback = "http://127.0.0.1:8976/callback?state=xyz#frag"
    query = urllib.parse.urlencode(
        {
            "callback_url": callback,
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
            "limit": "0",
        }
    )
    with trio.fail_after(BOUND):
        async with connect(server.url) as browser:
            redirect = await browser.get(f"/auth?{query}")
            assert redirect.status_code == 302
            location = urllib.parse.urlsplit(redirect.headers["location"])
            assert (location.scheme, location.netloc, location.path) == (
                "http",
                "127.0.0.1:8976",
                "/callback",
            )
            assert location.fragment == "frag"
            params = urllib.parse.parse_qs(location.query)
            assert params["state"] == ["xyz"]
            exchanged = await browser.post(
                "/api/v1/auth/keys",
                json={
                    "code": params["code"][0],
                    "code_verifier": VERIFIER,
                    "code_challenge_method": "S256",
                },
            )
    assert exchanged.status_code == 200
    assert exchanged.json()["key"].startswith("sk-or-v1-")


@pytest.mark.parametrize(
    "params",
    [
        {"callback_url": "http://evil.example/cb"},
        {"callback_url": "ftp://localhost/cb"},
        {
            "callback_url": "https://ok.example/",
            "code_challenge_method": "S512",
            "code_challenge": "c",
        },
        {"callback_url": "https://ok.example/", "limit": "lots"},
        {},
    ],
)
async def test_browser_page_rejects_bad_parameters(
    server: EmulatorServer, openapi: Any, params: dict[str, str], connect: Any
) -> None:
    with trio.fail_after(BOUND):
        async with connect(server.url) as browser:
            response = await browser.get("/auth", params=params)
    assert response.status_code == 400
    openapi.validate("BadRequestResponse", response.json())


async def test_headless_mode_shows_the_code(server: EmulatorServer, connect: Any) -> None:
    params = {"key_label": "cli", "code_challenge": CHALLENGE, "code_challenge_method": "S256"}
    with trio.fail_after(BOUND):
        async with connect(server.url) as browser:
            page = await browser.get("/auth", params=params)
            code = page.text.split("<pre id=code>")[1].split("</pre>")[0]
            exchanged = await browser.post(
                "/api/v1/auth/keys", json={"code": code, "code_verifier": VERIFIER}
            )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert exchanged.status_code == 200
