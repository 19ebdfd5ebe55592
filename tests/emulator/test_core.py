"""The emulator core in-process: routing, bad input, scripts, recording, statistics."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

import runtime.emulator
import runtime.testing
from runtime._base.errors import ConfigurationError
from runtime.emulator import Emulator, EmulatorResponse, Fault, Script, Turn, key_hash
from runtime.testing import text_turn

RESPONSES = "/api/v1/responses"


def auth(emulator: Emulator) -> dict[str, str]:
    return {"authorization": f"Bearer {emulator.inference_key}"}


async def post(
    emulator: Emulator, body: Any, path: str = RESPONSES, **headers: str
) -> EmulatorResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await emulator.handle("POST", path, {**auth(emulator), **headers}, raw)


def error_of(response: EmulatorResponse) -> dict[str, Any]:
    assert isinstance(response.body, bytes)
    error: dict[str, Any] = json.loads(response.body)["error"]
    return error


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "body is empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "Expected `object`, got `array`"),
        (b'{"model": 3, "input": "x"}', "at `$.model`"),
        (b'{"model": "emulator/echo", "stream": "yes"}', "at `$.stream`"),
        (b'{"model": "emulator/echo", "input": [3]}', "at `$.input[0]`"),
        (b'{"input": "x"}', "has no 'model'"),
        (b'{"model": "emulator/echo", "store": true}', "store: true"),
        (b'{"model": "emulator/echo", "previous_response_id": "resp_1"}', "previous_response_id"),
        (b'{"model": "nobody/knows", "input": "x"}', "nobody/knows is not a valid model ID"),
    ],
)
async def test_bad_requests_are_400_with_a_precise_message(
    openapi: Any, raw: bytes, fragment: str
) -> None:
    emulator = Emulator()
    response = await post(emulator, raw)
    assert response.status == 400
    assert isinstance(response.body, bytes)
    openapi.validate("BadRequestResponse", json.loads(response.body))
    assert fragment in error_of(response)["message"]


async def test_no_error_body_ever_contains_the_key() -> None:
    emulator = Emulator()
    management = {"authorization": f"Bearer {emulator.management_key}"}
    responses = [
        await post(emulator, b"{bad"),
        await post(emulator, {"model": "emulator/echo:fault=500", "input": "x"}),
        await emulator.handle("POST", RESPONSES, management, b'{"model": "emulator/echo"}'),
        await emulator.handle("GET", "/api/v1/credits", auth(emulator)),
        await emulator.handle(
            "GET", "/api/v1/key", {"authorization": "Bearer sk-or-v1-secret-guess"}
        ),
    ]
    for response in responses:
        assert response.status >= 400
        assert isinstance(response.body, bytes)
        for secret in (emulator.inference_key, emulator.management_key, "sk-or-v1-secret-guess"):
            assert secret.encode() not in response.body
    assert emulator.inference_key not in repr(emulator)


async def test_requests_are_recorded_with_the_key_redacted() -> None:
    emulator = Emulator()
    await emulator.handle(
        "POST",
        "/api/v1/responses?x=1",
        [("Authorization", f"Bearer {emulator.inference_key}"), ("X-Title", "tests")],
        b'{"model": "emulator/echo", "input": "hi"}',
    )
    await emulator.handle("POST", RESPONSES, {}, b"not json")
    first, second = emulator.requests
    assert first.method == "POST"
    assert (first.path, first.query) == (RESPONSES, "x=1")
    assert first.headers == {"authorization": "<redacted>", "x-title": "tests"}
    assert first.json == {"model": "emulator/echo", "input": "hi"}
    assert first.api_key_hash == key_hash(emulator.inference_key)
    assert emulator.inference_key not in repr(first)
    assert (second.json, second.api_key_hash) == (None, None)


async def test_the_record_keeps_only_the_newest_requests() -> None:
    emulator = Emulator(record_limit=2)
    for index in range(3):
        await emulator.handle("GET", f"/api/v1/models?i={index}", {})
    assert [request.query for request in emulator.requests] == ["i=1", "i=2"]
    silent = Emulator(record_limit=0)
    await silent.handle("GET", "/api/v1/models", {})
    assert silent.requests == []


async def test_absolute_urls_and_header_pairs_are_accepted() -> None:
    emulator = Emulator()
    response = await emulator.handle(
        "get", "http://anything.invalid/api/v1/models/?limit=1", [("Accept", "application/json")]
    )
    assert response.status == 200
    assert isinstance(response.body, bytes)
    assert len(json.loads(response.body)["data"]) == 1


async def test_the_default_queue_answers_any_unknown_model() -> None:
    emulator = Emulator()
    emulator.enqueue(text_turn("first"), text_turn("second"))
    answers = []
    for model in ("openai/gpt-4o", "anthropic/claude"):
        response = await post(emulator, {"model": model, "input": "x"})
        assert isinstance(response.body, bytes)
        result = json.loads(response.body)
        answers.append((result["model"], result["output_text"]))
    assert answers == [("openai/gpt-4o", "first"), ("anthropic/claude", "second")]
    assert emulator.pending_turns() == 0
    exhausted = await post(emulator, {"model": "openai/gpt-4o", "input": "x"})
    assert exhausted.status == 400


async def test_builtin_models_answer_their_variants() -> None:
    emulator = Emulator()
    emulator.enqueue(text_turn("from the queue"))
    response = await post(emulator, {"model": "emulator/echo:free", "input": "echoed"})
    assert isinstance(response.body, bytes)
    assert json.loads(response.body)["output_text"] == "echoed"
    assert emulator.pending_turns() == 1


async def test_scripts_are_chosen_by_model_or_header_and_can_loop() -> None:
    emulator = Emulator()
    emulator.add_script("s/once", [text_turn("only")])
    emulator.add_script("s/loop", Script(turns=(text_turn("a"), text_turn("b")), loop=True))
    texts = []
    for _ in range(3):
        response = await post(
            emulator, {"model": "whatever", "input": "x"}, **{"x-emulator-script": "s/loop"}
        )
        assert isinstance(response.body, bytes)
        texts.append(json.loads(response.body)["output_text"])
    assert texts == ["a", "b", "a"]
    assert (await post(emulator, {"model": "s/once", "input": "x"})).status == 200
    exhausted = await post(emulator, {"model": "s/once", "input": "x"})
    assert exhausted.status == 400
    assert "no turns left" in error_of(exhausted)["message"]
    unknown = await post(emulator, {"model": "x", "input": "x"}, **{"x-emulator-script": "s/none"})
    assert unknown.status == 400
    assert error_of(unknown)["message"] == "There is no emulator script named 's/none'."


def test_script_registration_is_validated() -> None:
    emulator = Emulator()
    for name in ("", "emulator/echo", "a:b"):
        with pytest.raises(
            ConfigurationError, match=r"^script name .* is empty, has ':' or is built in$"
        ):
            emulator.add_script(name, [])
    with pytest.raises(ConfigurationError, match=r"^there is no script named 'nope'$"):
        emulator.pending_turns("nope")
    with pytest.raises(ConfigurationError, match=r"^a looping script needs at least one turn$"):
        Script(loop=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keepalive_every": -1}, r"^keepalive_every -1 is negative$"),
        ({"chunk_size": 0}, r"^chunk_size 0 is not positive$"),
        ({"record_limit": -5}, r"^record_limit -5 is negative$"),
    ],
)
def test_emulator_options_are_validated(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Emulator(**options)


def test_keys_are_deterministic_per_seed() -> None:
    assert Emulator(seed="a").inference_key == Emulator(seed="a").inference_key
    assert Emulator(seed="a").inference_key != Emulator(seed="b").inference_key
    assert Emulator().inference_key.startswith("sk-or-v1-emu-")


async def test_an_account_out_of_credits_gets_402(openapi: Any) -> None:
    emulator = Emulator(credits=0.0)
    response = await post(emulator, {"model": "emulator/echo", "input": "x"})
    assert response.status == 402
    assert isinstance(response.body, bytes)
    openapi.validate("PaymentRequiredResponse", json.loads(response.body))


async def test_statistics_count_requests_calls_streams_and_faults() -> None:
    emulator = Emulator()
    await emulator.handle("GET", "/api/v1/models", {})
    await post(emulator, {"model": "emulator/echo", "input": "x"})
    await post(emulator, {"model": "emulator/echo", "input": "x", "stream": True})
    await post(emulator, {"model": "emulator/echo:fault=429", "input": "x"})
    stats = emulator.statistics()
    assert (stats.requests, stats.model_calls, stats.streams, stats.faults) == (4, 2, 1, 1)
    assert stats.total_usage > 0


def test_turns_expose_their_joined_text() -> None:
    turn = Turn(text=("a", "b"), reasoning=("r",))
    assert (turn.full_text, turn.full_reasoning, turn.has_message) == ("ab", "r", True)
    assert not Turn(reasoning=("only",)).has_message
    assert Turn().has_message


def test_scripts_can_be_loaded_from_json() -> None:
    raw = (
        b'{"turns": [{"text": ["Hel", "lo"]}, {"tool_calls": [{"name": "t", "arguments": ["{}"]}],'
        b' "fault": {"status": 503, "times": 2}}], "loop": true}'
    )
    script = msgspec.json.decode(raw, type=Script)
    assert script.turns[0] == Turn(text=("Hel", "lo"))
    assert script.turns[1].fault == Fault(status=503, times=2)
    assert msgspec.json.decode(msgspec.json.encode(script), type=Script) == script
    with pytest.raises(
        msgspec.ValidationError, match="fault status 200 is not an HTTP error status"
    ):
        msgspec.json.decode(b'{"status": 200}', type=Fault)


def test_public_names_report_the_public_namespace() -> None:
    assert Emulator.__module__ == "runtime.emulator"
    assert runtime.emulator.open_emulator.__module__ == "runtime.emulator"
    assert runtime.testing.FakeOpenRouter.__module__ == "runtime.testing"
    assert runtime.testing.text_turn.__module__ == "runtime.testing"
    assert sorted(runtime.emulator.__all__) == runtime.emulator.__all__
    assert sorted(runtime.testing.__all__) == runtime.testing.__all__
