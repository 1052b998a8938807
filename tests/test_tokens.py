"""Fake tokens: shape, checksum that catches every typo, keyed hash, and a safe redacted form."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from seks.errors import ConfigError, MalformedToken, TokenExpired, TokenRevoked, UsesExhausted
from seks.limits import TokenLimits
from seks.store import MasterKey, Vault
from seks.store.tokens import (
    BASE62,
    TOKEN_CANDIDATE_RE,
    mint,
    parse,
    redact,
    redeem_use,
    token_hash,
)

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


# -- limits on token records: issued, listed, spent -----------------------------------------


def _limited_vault(vault: Vault, canary: str) -> None:
    vault.add_secret("openai-key", "openai", canary)
    vault.create_agent("bot")


def test_limits_are_stored_with_the_token_and_listed(vault: Vault, canary: str) -> None:
    _limited_vault(vault, canary)
    limits = TokenLimits.parse(
        max_uses=2, allow_ips=["10.0.0.0/8"], scopes=["GET /v1/models"], rate="5/min"
    )
    token, info = vault.issue_token("bot", "openai", limits=limits)

    (listed,) = vault.list_tokens()
    assert listed == info == vault.resolve_token(token)
    assert (info.max_uses, info.uses_left, info.allow_ips, info.scopes, info.rate) == (
        2,
        2,
        ("10.0.0.0/8",),
        ("GET /v1/models",),
        "5/min",
    )
    assert info.limits == limits


def test_each_use_is_spent_once_and_then_the_token_is_exhausted(vault: Vault, canary: str) -> None:
    _limited_vault(vault, canary)
    token, info = vault.issue_token("bot", "openai", limits=TokenLimits(max_uses=2))

    assert redeem_use(vault.db, info, time.time()) == 1
    assert redeem_use(vault.db, info, time.time()) == 0
    with pytest.raises(UsesExhausted) as e:
        redeem_use(vault.db, info, time.time())
    assert e.value.token == info
    with pytest.raises(UsesExhausted):
        vault.resolve_token(token)  # refused before any write
    assert vault.list_tokens()[0].state(time.time()) == "exhausted"


def test_a_use_is_not_spent_on_a_token_revoked_or_expired_since_it_was_resolved(
    vault: Vault, canary: str
) -> None:
    _limited_vault(vault, canary)
    now = time.time()
    _, revoked = vault.issue_token("bot", "openai", limits=TokenLimits(max_uses=5))
    _, expiring = vault.issue_token("bot", "openai", ttl=10, limits=TokenLimits(max_uses=5))
    vault.revoke_token(revoked.id)

    with pytest.raises(TokenRevoked):
        redeem_use(vault.db, revoked, now)
    with pytest.raises(TokenExpired):
        redeem_use(vault.db, expiring, now + 11)
    assert [t.uses_left for t in vault.list_tokens()] == [5, 5]


def _race(path: str, key_hex: str, token_id: str, tries: int, start: object) -> int:
    from seks.store.crypto import MasterKey
    from seks.store.db import connect

    db = connect(Path(path))
    vault = Vault(db, MasterKey.from_hex(key_hex, source="test"))
    info = next(t for t in vault.list_tokens() if t.id == token_id)
    start.wait()  # type: ignore[attr-defined]
    won = 0
    for _ in range(tries):
        try:
            redeem_use(db, info, time.time())
            won += 1
        except UsesExhausted:
            pass
    db.conn.close()
    return won


def test_processes_racing_for_uses_spend_exactly_as_many_as_were_issued(
    vault: Vault, vault_path: Path, master: MasterKey, canary: str
) -> None:
    _limited_vault(vault, canary)
    _, info = vault.issue_token("bot", "openai", limits=TokenLimits(max_uses=25))
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Event()
    with ctx.Pool(8) as pool:
        results = [
            pool.apply_async(_race, (str(vault_path), master.to_hex(), info.id, 10, start))
            for _ in range(8)
        ]
        start.set()
        won = [r.get(timeout=60) for r in results]

    assert sum(won) == 25
    assert vault.list_tokens()[0].uses_left == 0


def test_ttl_may_not_exceed_the_configured_maximum(vault: Vault, canary: str) -> None:
    _limited_vault(vault, canary)
    with pytest.raises(ConfigError) as e:
        vault.issue_token("bot", "openai", ttl=7200, max_ttl=3600)
    assert "max_token_ttl" in str(e.value)
    assert "2h" in str(e.value) and "1h" in str(e.value)
    assert vault.list_tokens() == []

    _, capped = vault.issue_token("bot", "openai", max_ttl=3600, now=1000.0)
    assert capped.expires_at == 4600.0  # no --ttl: the maximum
    _, shorter = vault.issue_token("bot", "openai", ttl=60, max_ttl=3600, now=1000.0)
    assert shorter.expires_at == 1060.0
