"""Finding fake tokens in a request, insisting on their place, and the injected header value."""

from __future__ import annotations

import base64

import pytest

from seks.addon.inject import (
    FoundToken,
    basic_credentials,
    credential_value,
    find_tokens,
    injected_target,
    require_place,
)
from seks.addon.providers import BUILTIN, CredentialPlace
from seks.errors import TokenMisplaced
from seks.store import Secret
from seks.store.tokens import mint

OPENAI = BUILTIN["openai"]
ANTHROPIC = BUILTIN["anthropic"]


# -- find_tokens --------------------------------------------------------------------------------


def test_token_in_a_header_is_found_with_its_header_and_whole_value() -> None:
    token = mint("openai")
    found = find_tokens([("Host", "api.openai.com"), ("Authorization", f"Bearer {token}")], "/v1")
    assert found == [FoundToken(token, "Authorization", f"Bearer {token}")]


def test_token_in_the_query_is_found_with_its_parameter() -> None:
    token = mint("openai")
    url = f"/v1/models?key={token}&x=1"
    assert find_tokens([], url) == [FoundToken(token, None, token, "query", "key")]


def test_token_in_the_path_is_found() -> None:
    token = mint("github")
    assert [f.token for f in find_tokens([], f"/repos/{token}/issues")] == [token]


def test_every_token_is_found_in_header_order_then_the_url() -> None:
    a, b, c, d = (mint("openai") for _ in range(4))
    found = find_tokens(
        [("authorization", f"Bearer {a}"), ("x-debug", f"{b} and {c}")], f"/p?k={d}"
    )
    assert [(f.token, f.header) for f in found] == [
        (a, "authorization"),
        (b, "x-debug"),
        (c, "x-debug"),
        (d, None),
    ]


@pytest.mark.parametrize(
    "candidate",
    [
        "seks_openai_short",
        "seks_openai_" + "A" * 60,
        "seks_OPENAI_x",
        "seks_x",
        "seks_openai_abc-def",
    ],
)
def test_malformed_candidates_are_still_found(candidate: str) -> None:
    # So a typo is refused with a clear error instead of being forwarded upstream.
    found = find_tokens([("authorization", f"Bearer {candidate}")], f"/?k={candidate}")
    assert [f.token for f in found] == [candidate, candidate]


def test_a_truncated_token_inside_a_longer_word_is_found_from_its_prefix() -> None:
    token = mint("openai")
    found = find_tokens([("x-note", f"key:{token[:20]}.")], "/")
    assert [f.token for f in found] == [token[:20]]


def test_no_token_no_findings() -> None:
    assert find_tokens([("authorization", "Bearer sk-real-looking"), ("seks", "x")], "/seks") == []


def test_found_token_repr_hides_the_token_and_its_value() -> None:
    token = mint("openai")
    (found,) = find_tokens([("Authorization", f"Bearer {token}")], "/")
    assert token not in repr(found)
    assert token[12:] not in repr(found)
    assert "Authorization" in repr(found)


# -- require_place ----------------------------------------------------------------------------


def test_a_token_in_its_place_gives_that_place() -> None:
    token = mint("anthropic")
    (found,) = find_tokens([("x-api-key", token)], "/v1/messages")
    assert require_place(ANTHROPIC, found) == CredentialPlace("x-api-key")


@pytest.mark.parametrize(
    ("headers", "url", "where"),
    [
        ([("X-Debug", "Bearer {t}")], "/", "the X-Debug header"),
        ([("authorization", "{t}")], "/", "the authorization header"),
        ([("authorization", "Bearer {t} please")], "/", "the authorization header"),
        ([], "/v1?api_key={t}", "the query parameter 'api_key'"),
        ([], "/v1/{t}/models", "the URL path"),
    ],
)
def test_a_misplaced_token_is_refused_naming_where_it_was_and_where_it_belongs(
    headers: list[tuple[str, str]], url: str, where: str
) -> None:
    token = mint("openai")
    (found,) = find_tokens([(n, v.format(t=token)) for n, v in headers], url.format(t=token))
    with pytest.raises(TokenMisplaced) as e:
        require_place(OPENAI, found)
    message = str(e.value)
    assert where in message
    assert "authorization: Bearer <key>" in message
    assert token not in message
    assert token[12:30] not in message
    assert (e.value.status, e.value.type) == (403, "seks_token_misplaced")


def test_a_misplaced_anthropic_token_lists_both_accepted_places() -> None:
    token = mint("anthropic")
    (found,) = find_tokens([("x-debug", token)], "/")
    with pytest.raises(TokenMisplaced, match=r"x-api-key: <key> or authorization: Bearer <key>"):
        require_place(ANTHROPIC, found)


# -- credential_value -----------------------------------------------------------------------------


def test_credential_value_carries_the_scheme_of_the_place(canary: str) -> None:
    secret = Secret("k", "openai", 1, canary)
    assert (
        credential_value(CredentialPlace("authorization", "Bearer"), secret) == f"Bearer {canary}"
    )
    assert credential_value(CredentialPlace("authorization", "token"), secret) == f"token {canary}"


def test_credential_value_of_a_bare_place_is_the_secret_itself(canary: str) -> None:
    assert credential_value(CredentialPlace("x-api-key"), Secret("k", "a", 1, canary)) == canary


# -- query, path and Basic places -----------------------------------------------------------------

GEMINI = BUILTIN["gemini"]
TELEGRAM = BUILTIN["telegram"]
GITHUB = BUILTIN["github"]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_token_inside_basic_credentials_is_found_and_placed() -> None:
    token = mint("github")
    (found,) = find_tokens([("Authorization", _basic("x-access-token", token))], "/o/r.git")
    assert (found.token, found.where) == (token, "basic")
    assert require_place(GITHUB, found).kind == "basic"


def test_a_token_as_the_basic_user_is_refused() -> None:
    token = mint("github")
    (found,) = find_tokens([("Authorization", _basic(token, "x"))], "/")
    with pytest.raises(TokenMisplaced, match="Basic credentials of the Authorization header"):
        require_place(GITHUB, found)


def test_basic_injection_keeps_the_user(canary: str) -> None:
    token = mint("github")
    (found,) = find_tokens([("authorization", _basic("x-access-token", token))], "/")
    value = credential_value(require_place(GITHUB, found), Secret("k", "github", 1, canary), found)
    assert value == _basic("x-access-token", canary)


@pytest.mark.parametrize("value", ["Basic", "Basic !!!", "Basic " + "w4g=", "Bearer abc"])
def test_values_that_are_not_basic_credentials(value: str) -> None:
    assert basic_credentials(value) is None


def test_gemini_query_key_is_placed_and_injected_percent_encoded() -> None:
    token = mint("gemini")
    target = f"/v1/models?alt=sse&key={token}&x=%20"
    (found,) = find_tokens([], target)
    place = require_place(GEMINI, found)
    real = injected_target(target, found, place, Secret("k", "gemini", 1, "a/b+c&d"))
    assert real == "/v1/models?alt=sse&key=a%2Fb%2Bc%26d&x=%20"


def test_telegram_path_token_is_placed_and_injected() -> None:
    token = mint("telegram")
    target = f"/bot{token}/sendMessage?chat_id=1"
    (found,) = find_tokens([], target)
    place = require_place(TELEGRAM, found)
    secret = Secret("k", "telegram", 1, "123:AA-b_c")
    assert injected_target(target, found, place, secret) == "/bot123:AA-b_c/sendMessage?chat_id=1"


@pytest.mark.parametrize(
    "target", ["/bot/{t}/getMe", "/x{t}/getMe", "/getMe?bot={t}", "/bot{t}.x/getMe"]
)
def test_telegram_token_anywhere_else_in_the_url_is_refused(target: str) -> None:
    token = mint("telegram")
    (found,) = find_tokens([], target.format(t=token))
    with pytest.raises(TokenMisplaced, match=r"/bot<key>"):
        require_place(TELEGRAM, found)
