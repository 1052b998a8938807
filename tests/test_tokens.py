"""Fake tokens: shape, checksum that catches every typo, keyed hash, and a safe redacted form."""

from __future__ import annotations

import os

import pytest

from seks.errors import MalformedToken
from seks.store.tokens import BASE62, TOKEN_CANDIDATE_RE, mint, parse, redact, token_hash

RANDOM_AND_CHECK = 38  # 32 random base62 characters + 6 checksum characters


def test_minted_token_has_the_documented_shape_and_parses_back() -> None:
    token = mint("openai")
    prefix, tail = token[:-RANDOM_AND_CHECK], token[-RANDOM_AND_CHECK:]
    assert prefix == "seks_openai_"
    assert all(c in BASE62 for c in tail)
    assert parse(token).provider == "openai"


@pytest.mark.parametrize("provider", ["aws", "github", "azure-openai", "x", "a" * 31])
def test_any_valid_provider_name_roundtrips(provider: str) -> None:
    assert parse(mint(provider)).provider == provider


def test_minted_tokens_are_unique() -> None:
    assert len({mint("openai") for _ in range(500)}) == 500


def test_every_single_character_typo_is_caught_by_the_checksum() -> None:
    token = mint("openai")
    start = len(token) - RANDOM_AND_CHECK
    for pos in range(start, len(token)):
        for c in BASE62:
            if c == token[pos]:
                continue
            typo = token[:pos] + c + token[pos + 1 :]
            with pytest.raises(MalformedToken) as e:
                parse(typo)
            assert "checksum" in str(e.value)
            assert typo not in str(e.value)
            assert token not in str(e.value)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t[:-1], id="one-short"),
        pytest.param(lambda t: t + "A", id="one-long"),
        pytest.param(lambda t: t[: len(t) // 2], id="cut-in-half"),
        pytest.param(lambda t: t[:-7] + "-" + t[-6:], id="non-base62-char"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: t.replace("seks_", "seks-"), id="bad-prefix"),
        pytest.param(lambda t: t.replace("openai", "OpenAI"), id="uppercase-provider"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_wrong_shape_is_malformed_and_the_message_never_holds_the_token(mangle) -> None:
    token = mint("openai")
    bad = mangle(token)
    with pytest.raises(MalformedToken) as e:
        parse(bad)
    message = str(e.value)
    assert f"got {len(bad)} characters" in message
    assert token[-RANDOM_AND_CHECK:-6] not in message
    if bad:
        assert bad not in message


def test_token_hash_depends_on_pepper_and_token_and_hides_the_token() -> None:
    token = mint("openai")
    pepper = os.urandom(32)
    digest = token_hash(pepper, token)
    assert digest == token_hash(pepper, token)
    assert len(digest) == 32
    assert digest != token_hash(os.urandom(32), token)
    assert digest != token_hash(pepper, mint("openai"))
    assert token.encode() not in digest


def test_redact_keeps_the_provider_and_nothing_of_the_random_part() -> None:
    token = mint("openai")
    shown = redact(token)
    assert shown.startswith("seks_openai_")
    assert not any(c in BASE62 for c in shown.removeprefix("seks_openai_"))


def test_redact_of_a_malformed_token_shows_nothing_of_it() -> None:
    typo = mint("openai")[:-1]
    shown = redact(typo)
    assert not any(c in BASE62 for c in shown.removeprefix("seks_"))


def test_a_mangled_token_in_text_is_still_found_as_a_candidate() -> None:
    typo = mint("openai")[:-3]
    match = TOKEN_CANDIDATE_RE.search(f"Authorization: Bearer {typo}\r\n")
    assert match is not None
    assert match.group() == typo
