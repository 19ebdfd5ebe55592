"""Tests for runtime._protocol.oauth: PKCE verifiers/challenges, the authorization URL (O-01, O-02).

URLs are compared after decoding (``urllib`` leaves ``~`` unescaped where
JavaScript's ``URLSearchParams`` writes ``%7E``; both decode the same).
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from hypothesis import given, strategies as st

from runtime._base.errors import ConfigurationError
from runtime._protocol.oauth import (
    DEFAULT_BASE_URL,
    CodeChallenge,
    create_authorization_url,
    create_sha256_code_challenge,
    generate_code_verifier,
)

RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
B64URL_43 = re.compile(r"[A-Za-z0-9_-]{43}")
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _split(url: str) -> tuple[str, list[tuple[str, str]]]:
    """``scheme://host/path`` and the decoded query parameters, in order."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qsl(parts.query)


# ---------------------------------------------------------------------------
# O-01: create_sha256_code_challenge


def test_o01_rfc7636_vector() -> None:
    """O-01: RFC 7636 appendix B."""
    pair = create_sha256_code_challenge(RFC_VERIFIER)
    assert pair == CodeChallenge(code_challenge=RFC_CHALLENGE, code_verifier=RFC_VERIFIER)


def test_o01_provided_verifier_is_echoed_and_challenge_is_deterministic() -> None:
    verifier = "a" * 43
    first = create_sha256_code_challenge(verifier)
    second = create_sha256_code_challenge(code_verifier=verifier)
    assert first.code_verifier == verifier
    assert first == second
    assert B64URL_43.fullmatch(first.code_challenge)
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert first.code_challenge == expected.decode()


def test_o01_generated_verifier_is_43_base64url_chars_and_fresh() -> None:
    pairs = [create_sha256_code_challenge() for _ in range(5)]
    for pair in pairs:
        assert B64URL_43.fullmatch(pair.code_verifier)
        assert B64URL_43.fullmatch(pair.code_challenge)
        assert create_sha256_code_challenge(pair.code_verifier) == pair
    assert len({pair.code_verifier for pair in pairs}) == 5


def test_generate_code_verifier_is_43_base64url_chars_and_fresh() -> None:
    verifiers = {generate_code_verifier() for _ in range(5)}
    assert len(verifiers) == 5
    assert all(B64URL_43.fullmatch(v) for v in verifiers)
    # Each verifier is itself valid input.
    for verifier in verifiers:
        assert create_sha256_code_challenge(verifier).code_verifier == verifier


@pytest.mark.parametrize(
    ("verifier", "message"),
    [
        ("", "Code verifier must be at least 43 characters"),
        ("a" * 42, "Code verifier must be at least 43 characters"),
        ("a" * 129, "Code verifier must be at most 128 characters"),
        (
            "!@#" + "a" * 40,
            "Code verifier must only contain unreserved characters: [A-Za-z0-9-._~]",
        ),
        (
            "a b" + "c" * 41,
            "Code verifier must only contain unreserved characters: [A-Za-z0-9-._~]",
        ),
        (
            "é" * 43,
            "Code verifier must only contain unreserved characters: [A-Za-z0-9-._~]",
        ),
        (
            "a" * 42 + "\n",
            "Code verifier must only contain unreserved characters: [A-Za-z0-9-._~]",
        ),
    ],
)
def test_o01_invalid_verifier_messages(verifier: str, message: str) -> None:
    """O-01: the SDK's three messages, word for word."""
    with pytest.raises(ConfigurationError, match=f"^{re.escape(message)}$"):
        create_sha256_code_challenge(verifier)


@pytest.mark.parametrize("verifier", [123, b"a" * 43, ["a"] * 43])
def test_o01_non_string_verifier_is_refused(verifier: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^Code verifier must be a string, got \w+$"):
        create_sha256_code_challenge(verifier)


@pytest.mark.parametrize("verifier", ["a" * 128, "a" * 43, (UNRESERVED * 2)[:128]])
def test_o01_boundary_and_all_unreserved_verifiers_are_accepted(verifier: str) -> None:
    assert create_sha256_code_challenge(verifier).code_verifier == verifier


@given(st.text(alphabet=UNRESERVED, min_size=43, max_size=128))
def test_any_valid_verifier_gives_a_43_char_base64url_challenge(verifier: str) -> None:
    challenge = create_sha256_code_challenge(verifier).code_challenge
    assert B64URL_43.fullmatch(challenge)
    assert not {"+", "/", "="} & set(challenge)


def test_invalid_verifier_message_does_not_echo_the_verifier() -> None:
    verifier = "secret!" + "x" * 40
    with pytest.raises(ConfigurationError) as info:
        create_sha256_code_challenge(verifier)
    assert verifier not in str(info.value)


# ---------------------------------------------------------------------------
# O-02: create_authorization_url


def test_o02_default_server_and_callback_string() -> None:
    url = create_authorization_url(callback_url="https://myapp.test/callback")
    assert _split(url) == (
        "https://openrouter.ai/auth",
        [("callback_url", "https://myapp.test/callback")],
    )
    assert DEFAULT_BASE_URL == "https://openrouter.ai/api/v1"


@pytest.mark.parametrize(
    "callback",
    [
        httpx.URL("https://myapp.test/callback"),
        urlsplit("https://myapp.test/callback"),
    ],
)
def test_o02_callback_url_objects_are_accepted(callback: object) -> None:
    url = create_authorization_url(callback_url=callback)
    assert _split(url)[1] == [("callback_url", "https://myapp.test/callback")]


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_o02_pkce_params_follow_the_callback_in_order(method: str) -> None:
    url = create_authorization_url(
        callback_url="https://myapp.test/cb",
        code_challenge=RFC_CHALLENGE,
        code_challenge_method=method,
        limit=100,
    )
    assert _split(url)[1] == [
        ("callback_url", "https://myapp.test/cb"),
        ("code_challenge", RFC_CHALLENGE),
        ("code_challenge_method", method),
        ("limit", "100"),
    ]


@pytest.mark.parametrize(
    ("limit", "text"),
    [(100, "100"), (0, "0"), (0.0, "0"), (100.0, "100"), (12.5, "12.5")],
)
def test_o02_limit_is_sent_as_javascript_would_print_it(limit: float, text: str) -> None:
    url = create_authorization_url(callback_url="https://a.test", limit=limit)
    assert _split(url)[1] == [("callback_url", "https://a.test"), ("limit", text)]


def test_o02_no_limit_means_no_param() -> None:
    url = create_authorization_url(callback_url="https://a.test")
    assert "limit" not in dict(_split(url)[1])


@pytest.mark.parametrize(
    "callback",
    [
        "https://myapp.test/cb?state=abc&x=1",
        "https://myapp.test/cb?next=%2Fhome%20page",
        "https://myapp.test/cb#fragment",
        "http://localhost:3000/callback",
        "http://127.0.0.1:8080/oauth?x=~y",
        "https://myapp.test:8443/a/b/",
    ],
)
def test_o02_callback_is_preserved_verbatim(callback: str) -> None:
    url = create_authorization_url(callback_url=callback)
    assert _split(url)[1] == [("callback_url", callback)]
    # The callback's own query and fragment must not leak into the outer URL.
    assert urlsplit(url).fragment == ""


@pytest.mark.parametrize(
    "callback",
    ["not-a-valid-url", "", "http://", "https:///path", "/relative/path", "http://exa mple.test"],
)
def test_o02_invalid_callback_string_is_refused(callback: str) -> None:
    with pytest.raises(
        ConfigurationError,
        match=rf"^The callback URL is not an absolute URL: {re.escape(repr(callback))}$",
    ):
        create_authorization_url(callback_url=callback)


@pytest.mark.parametrize("callback", [123, 1.5, None, b"https://a.test"])
def test_o02_non_url_callback_is_refused(callback: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^The callback URL must be a URL string, got "):
        create_authorization_url(callback_url=callback)


def test_invalid_port_in_callback_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^The callback URL is not an absolute URL"):
        create_authorization_url(callback_url="http://localhost:99999/cb")


@pytest.mark.parametrize(
    ("base_url", "origin"),
    [
        ("https://custom.example.com/api", "https://custom.example.com/auth"),
        ("https://openrouter.ai/api/v1/", "https://openrouter.ai/auth"),
        ("http://127.0.0.1:8000/api/v1", "http://127.0.0.1:8000/auth"),
        ("https://Custom.Example.COM:443/api", "https://custom.example.com/auth"),
        ("HTTP://[::1]:80/api", "http://[::1]/auth"),
        ("https://user:pw@host.test/api", "https://host.test/auth"),
    ],
)
def test_o02_authorization_url_uses_the_base_origin(base_url: str, origin: str) -> None:
    url = create_authorization_url(callback_url="https://a.test", base_url=base_url)
    assert _split(url)[0] == origin


@pytest.mark.parametrize("base_url", ["ftp://files.test/", "openrouter.ai/api/v1", ""])
def test_invalid_base_url_is_refused(base_url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^The base URL "):
        create_authorization_url(callback_url="https://a.test", base_url=base_url)


@pytest.mark.parametrize(
    ("fields", "given"),
    [
        ({"code_challenge": RFC_CHALLENGE}, "code_challenge"),
        ({"code_challenge_method": "S256"}, "code_challenge_method"),
    ],
)
def test_lone_pkce_field_is_refused_not_dropped(fields: dict[str, Any], given: str) -> None:
    """Decision: the SDK silently drops a lone PKCE field; we refuse it."""
    with pytest.raises(
        ConfigurationError,
        match=(
            r"^PKCE needs both code_challenge and code_challenge_method, "
            rf"only '{given}' was given$"
        ),
    ):
        create_authorization_url(callback_url="https://a.test", **fields)


@pytest.mark.parametrize("method", ["s256", "SHA256", ""])
def test_unknown_challenge_method_is_refused(method: str) -> None:
    with pytest.raises(
        ConfigurationError,
        match=rf"^The code challenge method must be 'S256' or 'plain', got {method!r}$",
    ):
        create_authorization_url(
            callback_url="https://a.test", code_challenge="x", code_challenge_method=method
        )


def test_empty_code_challenge_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^The code challenge must be a non-empty string"):
        create_authorization_url(
            callback_url="https://a.test", code_challenge="", code_challenge_method="S256"
        )


@pytest.mark.parametrize("limit", [-1, float("nan"), float("inf"), True, "100"])
def test_bad_limit_is_refused(limit: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^The credit limit must be a "):
        create_authorization_url(callback_url="https://a.test", limit=limit)


def test_full_pkce_flow_url() -> None:
    """The seed's flow: challenge → authorization URL carrying it."""
    pair = create_sha256_code_challenge()
    url = create_authorization_url(
        callback_url="http://localhost:3000/cb",
        code_challenge=pair.code_challenge,
        code_challenge_method="S256",
    )
    assert url.startswith("https://openrouter.ai/auth?callback_url=")
    params = dict(_split(url)[1])
    assert params["code_challenge"] == pair.code_challenge
    assert pair.code_verifier not in url
