"""Models, key, keys, credits and activity over loopback HTTP, plus the auth rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import trio

from runtime.emulator import EmulatorServer, Pricing, Script, Turn, key_hash

if TYPE_CHECKING:
    import httpx

BOUND = 10.0


# -- /models -------------------------------------------------------------------


async def test_models_lists_builtins_and_scripts_with_pricing(
    server: EmulatorServer, openapi: Any, connect: Any
) -> None:
    server.emulator.add_script(
        "test/priced",
        Script(turns=(Turn(),), pricing=Pricing(prompt="0.00001", completion="0.00003")),
    )
    with trio.fail_after(BOUND):
        async with connect(server.base_url) as anonymous:
            response = await anonymous.get("/models")
    assert response.status_code == 200
    listing = response.json()
    openapi.validate("ModelsListResponse", listing)
    ids = [model["id"] for model in listing["data"]]
    assert ids == ["emulator/echo", "emulator/tool-caller", "emulator/reasoning", "test/priced"]
    assert listing["total_count"] == 4
    assert listing["links"]["next"] is None
    priced = listing["data"][-1]
    assert priced["pricing"]["prompt"] == "0.00001"
    assert priced["pricing"]["completion"] == "0.00003"
    assert listing["data"][2]["reasoning"]["mandatory"] is False


async def test_models_paginates_with_offset_limit_and_next_link(
    client: httpx.AsyncClient, openapi: Any
) -> None:
    with trio.fail_after(BOUND):
        first = (await client.get("/models", params={"limit": 2, "q": "emulator"})).json()
        assert first["links"]["next"] == "/api/v1/models?limit=2&q=emulator&offset=2"
        second = (await client.get(first["links"]["next"].removeprefix("/api/v1"))).json()
    for page in (first, second):
        openapi.validate("ModelsListResponse", page)
        assert page["total_count"] == 3
    assert [m["id"] for m in first["data"]] == ["emulator/echo", "emulator/tool-caller"]
    assert [m["id"] for m in second["data"]] == ["emulator/reasoning"]
    assert second["links"]["next"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"supported_parameters": "tools"}, ["emulator/tool-caller"]),
        ({"supported_parameters": "reasoning,max_tokens"}, ["emulator/reasoning"]),
        ({"q": "ECHO"}, ["emulator/echo"]),
        ({"output_modalities": "image"}, []),
        (
            {"output_modalities": "all"},
            ["emulator/echo", "emulator/tool-caller", "emulator/reasoning"],
        ),
        ({"max_price": "1.5"}, ["emulator/echo"]),
        ({"min_output_price": "10"}, ["emulator/reasoning"]),
        ({"sort": "newest"}, ["emulator/reasoning", "emulator/tool-caller", "emulator/echo"]),
        (
            {"sort": "pricing-high-to-low"},
            ["emulator/reasoning", "emulator/tool-caller", "emulator/echo"],
        ),
        ({"model_authors": "openai"}, []),
    ],
)
async def test_models_filters_and_sorts(
    client: httpx.AsyncClient, params: dict[str, str], expected: list[str]
) -> None:
    with trio.fail_after(BOUND):
        listing = (await client.get("/models", params=params)).json()
    assert [model["id"] for model in listing["data"]] == expected
    assert listing["total_count"] == len(expected)


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}, {"limit": "x"}, {"sort": "best"}],
)
async def test_models_rejects_bad_query_parameters(
    client: httpx.AsyncClient, openapi: Any, params: dict[str, str]
) -> None:
    with trio.fail_after(BOUND):
        response = await client.get("/models", params=params)
    assert response.status_code == 400
    openapi.validate("BadRequestResponse", response.json())


# -- /key ----------------------------------------------------------------------


async def test_key_describes_the_presented_key(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, paths: Any
) -> None:
    with trio.fail_after(BOUND):
        mine = (await client.get("/key")).json()
        theirs = (await admin.get("/key")).json()
    paths.validate("/key", "get", 200, mine)
    paths.validate("/key", "get", 200, theirs)
    assert mine["data"]["is_management_key"] is False
    assert theirs["data"]["is_management_key"] is True
    assert mine["data"]["label"].startswith("sk-or-v1-emu")
    assert "..." in mine["data"]["label"]


# -- auth rules ------------------------------------------------------------------


async def test_missing_and_unknown_keys_are_401(
    server: EmulatorServer, openapi: Any, connect: Any
) -> None:
    body = {"model": "emulator/echo", "input": "x"}
    with trio.fail_after(BOUND):
        async with connect(server.base_url) as http:
            missing = await http.post("/responses", json=body)
            unknown = await http.post(
                "/responses", json=body, headers={"Authorization": "Bearer sk-or-v1-nope"}
            )
            basic = await http.get("/key", headers={"Authorization": "Basic abc"})
    for response in (missing, unknown, basic):
        assert response.status_code == 401
        openapi.validate("UnauthorizedResponse", response.json())
    assert "sk-or-v1-nope" not in unknown.text


async def test_key_kinds_are_enforced_per_endpoint(
    client: httpx.AsyncClient, admin: httpx.AsyncClient, openapi: Any
) -> None:
    body = {"model": "emulator/echo", "input": "x"}
    with trio.fail_after(BOUND):
        inference_by_admin = await admin.post("/responses", json=body)
        chat_by_admin = await admin.post(
            "/chat/completions",
            json={"model": "emulator/echo", "messages": [{"role": "user", "content": "x"}]},
        )
        credits_by_user = await client.get("/credits")
        keys_by_user = await client.get("/keys")
        activity_by_user = await client.get("/activity")
    for response in (
        inference_by_admin,
        chat_by_admin,
        credits_by_user,
        keys_by_user,
        activity_by_user,
    ):
        assert response.status_code == 403
        openapi.validate("ForbiddenResponse", response.json())


# -- /keys -----------------------------------------------------------------------


async def test_key_lifecycle_create_get_patch_delete(
    server: EmulatorServer, admin: httpx.AsyncClient, paths: Any, openapi: Any, connect: Any
) -> None:
    request = {
        "name": "ci key",
        "limit": 5,
        "limit_reset": "monthly",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    paths.validate("/keys", "post", 0, request, request=True)
    with trio.fail_after(BOUND):
        created = await admin.post("/keys", json=request)
        assert created.status_code == 201
        paths.validate("/keys", "post", 201, created.json())
        secret = created.json()["key"]
        hash_ = created.json()["data"]["hash"]
        assert hash_ == key_hash(secret)

        fetched = await admin.get(f"/keys/{hash_}")
        paths.validate("/keys/{hash}", "get", 200, fetched.json())
        assert fetched.json()["data"]["name"] == "ci key"
        assert fetched.json()["data"]["limit_remaining"] == 5

        async with connect(server.base_url, secret) as user:
            assert (await user.get("/key")).status_code == 200
            patched = await admin.patch(
                f"/keys/{hash_}", json={"disabled": True, "name": "renamed"}
            )
            paths.validate("/keys/{hash}", "patch", 200, patched.json())
            assert patched.json()["data"]["disabled"] is True
            assert patched.json()["data"]["updated_at"] is not None
            assert (await user.get("/key")).status_code == 401

            listed = (await admin.get("/keys")).json()
            paths.validate("/keys", "get", 200, listed)
            assert hash_ not in [key["hash"] for key in listed["data"]]
            listed = (await admin.get("/keys", params={"include_disabled": "true"})).json()
            assert hash_ in [key["hash"] for key in listed["data"]]

            deleted = await admin.delete(f"/keys/{hash_}")
            paths.validate("/keys/{hash}", "delete", 200, deleted.json())
            assert deleted.json() == {"deleted": True}
            gone = await admin.get(f"/keys/{hash_}")
            assert gone.status_code == 404
            openapi.validate("NotFoundResponse", gone.json())
            assert (await user.get("/key")).status_code == 401


async def test_keys_list_pages_by_offset(server: EmulatorServer, admin: httpx.AsyncClient) -> None:
    for index in range(102):
        server.emulator.create_key(f"bulk {index}")
    with trio.fail_after(BOUND):
        first = (await admin.get("/keys")).json()["data"]
        rest = (await admin.get("/keys", params={"offset": 100})).json()["data"]
    # the emulator's own inference key plus 102 new ones; management keys are not listed
    assert len(first) == 100
    assert len(rest) == 3
    assert rest[-1]["name"] == "bulk 101"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": 3},
        {"name": "x", "limit_reset": "hourly"},
        {"name": "x", "expires_at": "soon"},
    ],
)
async def test_create_key_rejects_bad_bodies(
    admin: httpx.AsyncClient, openapi: Any, body: dict[str, Any]
) -> None:
    with trio.fail_after(BOUND):
        response = await admin.post("/keys", json=body)
    assert response.status_code == 400
    openapi.validate("BadRequestResponse", response.json())


async def test_key_limit_exhaustion_is_402(
    server: EmulatorServer, openapi: Any, connect: Any
) -> None:
    secret = server.emulator.create_key("tiny", limit=0.0000001)
    body = {"model": "emulator/echo", "input": "spend"}
    with trio.fail_after(BOUND):
        async with connect(server.base_url, secret) as user:
            assert (await user.post("/responses", json=body)).status_code == 200
            refused = await user.post("/responses", json=body)
    assert refused.status_code == 402
    openapi.validate("PaymentRequiredResponse", refused.json())


# -- /credits and /activity ----------------------------------------------------------


async def test_credits_and_activity_follow_the_usage(
    server: EmulatorServer,
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    paths: Any,
    openapi: Any,
) -> None:
    with trio.fail_after(BOUND):
        before = (await admin.get("/credits")).json()
        paths.validate("/credits", "get", 200, before)
        assert before["data"] == {"total_credits": 100.0, "total_usage": 0.0}
        costs = []
        for text in ("one", "two words"):
            result = (
                await client.post("/responses", json={"model": "emulator/echo", "input": text})
            ).json()
            costs.append(result["usage"]["cost"])
        await client.post("/responses", json={"model": "emulator/reasoning", "input": "r"})
        after = (await admin.get("/credits")).json()
        activity = await admin.get("/activity")
    assert after["data"]["total_usage"] == pytest.approx(server.emulator.statistics().total_usage)
    assert after["data"]["total_usage"] > sum(costs)
    assert activity.status_code == 200
    rows = activity.json()
    openapi.validate("ActivityResponse", rows)
    echo = next(row for row in rows["data"] if row["model"] == "emulator/echo")
    assert echo["requests"] == 2
    assert echo["usage"] == pytest.approx(sum(costs))
    assert [row["model"] for row in rows["data"]] == ["emulator/echo", "emulator/reasoning"]


async def test_activity_filters_and_validates(
    server: EmulatorServer, client: httpx.AsyncClient, admin: httpx.AsyncClient, openapi: Any
) -> None:
    with trio.fail_after(BOUND):
        await client.post("/responses", json={"model": "emulator/echo", "input": "x"})
        today = (await admin.get("/activity")).json()["data"][0]["date"]
        same_day = (await admin.get("/activity", params={"date": today})).json()["data"]
        other_day = (await admin.get("/activity", params={"date": "2001-01-01"})).json()["data"]
        mine = (
            await admin.get("/activity", params={"api_key_hash": key_hash(server.inference_key)})
        ).json()
        bad_date = await admin.get("/activity", params={"date": "yesterday"})
        unknown = await admin.get("/activity", params={"api_key_hash": "0" * 64})
    assert len(same_day) == 1
    assert other_day == []
    assert mine["data"][0]["requests"] == 1
    assert bad_date.status_code == 400
    openapi.validate("BadRequestResponse", bad_date.json())
    assert unknown.status_code == 404
    openapi.validate("NotFoundResponse", unknown.json())
