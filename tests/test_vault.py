"""The vault: secrets, agents and tokens as a user of the CLI or the proxy sees them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from seks.errors import (
    AlreadyExists,
    AuditUnavailable,
    ConfigError,
    MalformedToken,
    NotFound,
    RequestRefused,
    TokenExpired,
    TokenRevoked,
    UnknownToken,
    agent_error_body,
)
from seks.store import MasterKey, Vault
from seks.store.audit import AuditEvent, AuditLog, rows_after, tail
from seks.store.tokens import mint

INVALID_NAMES = ["", "-lead", ".hidden", "a b", "a/b", "../etc", "x" * 65, "ü", "a\n"]


def audit_rows(vault: Vault) -> list[dict[str, object]]:
    return list(vault.db.query("SELECT * FROM audit ORDER BY id"))


# -- secrets ------------------------------------------------------------------------------


def test_added_secret_is_listed_and_reveals_its_value(vault: Vault, canary: str) -> None:
    info = vault.add_secret("openai-key", "openai", canary, now=1000.0)
    assert (info.name, info.provider, info.version, info.created_at) == (
        "openai-key",
        "openai",
        1,
        1000.0,
    )
    vault.add_secret("gh", "github", canary + "-gh")
    assert [s.name for s in vault.list_secrets()] == ["gh", "openai-key"]
    assert vault.reveal_secret("openai-key").reveal() == canary
    assert canary not in repr(vault.list_secrets())


def test_adding_an_existing_name_is_refused_and_keeps_the_old_value(
    vault: Vault, canary: str
) -> None:
    vault.add_secret("k", "openai", canary)
    with pytest.raises(AlreadyExists, match="seks secret rotate k"):
        vault.add_secret("k", "openai", "something-else")
    assert vault.reveal_secret("k").reveal() == canary


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_names_are_config_errors(vault: Vault, canary: str, name: str) -> None:
    with pytest.raises(ConfigError, match="not valid"):
        vault.add_secret(name, "openai", canary)
    with pytest.raises(ConfigError, match="not valid"):
        vault.create_agent(name)
    with pytest.raises(ConfigError, match="not valid"):
        vault.create_tenant(name)
    assert vault.list_secrets() == [] and vault.list_agents() == []


def test_longest_valid_name_is_accepted(vault: Vault, canary: str) -> None:
    vault.add_secret("a" * 64, "openai", canary)
    assert vault.reveal_secret("a" * 64).reveal() == canary


def test_empty_secret_value_is_refused(vault: Vault) -> None:
    with pytest.raises(ConfigError, match="empty"):
        vault.add_secret("k", "openai", "")
    assert vault.list_secrets() == []


def test_rotate_keeps_tokens_working_and_they_get_the_new_value(vault: Vault, canary: str) -> None:
    vault.add_secret("k", "openai", canary + "-old", now=1000.0)
    vault.create_agent("bot")
    token, _ = vault.issue_token("bot", "openai")
    info = vault.rotate_secret("k", canary, now=2000.0)
    assert (info.version, info.created_at, info.updated_at) == (2, 1000.0, 2000.0)
    resolved = vault.resolve_token(token)
    assert vault.reveal_secret(resolved.secret_name).reveal() == canary


def test_rotating_a_missing_secret_is_not_found(vault: Vault, canary: str) -> None:
    with pytest.raises(NotFound):
        vault.rotate_secret("nope", canary)


def test_remove_secret_deletes_it_and_revokes_only_its_tokens(vault: Vault, canary: str) -> None:
    vault.add_secret("a", "openai", canary)
    vault.add_secret("b", "github", canary + "-b")
    vault.create_agent("bot")
    token_a, _ = vault.issue_token("bot", "openai")
    token_b, _ = vault.issue_token("bot", "github")
    assert vault.remove_secret("a") == 1
    assert [s.name for s in vault.list_secrets()] == ["b"]
    with pytest.raises(NotFound):
        vault.reveal_secret("a")
    with pytest.raises(TokenRevoked):
        vault.resolve_token(token_a)
    assert vault.resolve_token(token_b).secret_name == "b"
    vault.add_secret("a", "openai", canary + "-new")  # the name is free again
    with pytest.raises(TokenRevoked):
        vault.resolve_token(token_a)


def test_tokens_revoked_by_remove_secret_are_audited(vault: Vault, canary: str) -> None:
    vault.add_secret("k", "openai", canary)
    vault.create_agent("bot")
    _, info = vault.issue_token("bot", "openai")
    vault.remove_secret("k")
    revoked = [r for r in audit_rows(vault) if r["event"] == "token.revoked"]
    assert [r["token_id"] for r in revoked] == [info.id]


# -- tenants ------------------------------------------------------------------------------


def test_same_secret_name_in_two_tenants_stays_apart(vault: Vault, canary: str) -> None:
    vault.create_tenant("acme")
    vault.create_tenant("globex")
    vault.add_secret("k", "openai", canary + "-acme", tenant="acme")
    vault.add_secret("k", "openai", canary + "-globex", tenant="globex")
    vault.create_agent("bot", tenant="acme")
    token, _ = vault.issue_token("bot", "openai", tenant="acme")
    info = vault.resolve_token(token)
    assert info.tenant == "acme"
    assert vault.reveal_secret(info.secret_name, tenant=info.tenant).reveal() == canary + "-acme"
    with pytest.raises(NotFound):
        vault.issue_token("bot", "openai", tenant="globex")  # acme's agent is not globex's


def test_creating_an_existing_tenant_is_refused(vault: Vault) -> None:
    with pytest.raises(AlreadyExists):
        vault.create_tenant("default")


def test_unknown_tenant_is_not_found(vault: Vault, canary: str) -> None:
    with pytest.raises(NotFound, match="nope"):
        vault.add_secret("k", "openai", canary, tenant="nope")
    with pytest.raises(NotFound, match="nope"):
        vault.create_agent("bot", tenant="nope")


# -- issuing tokens -----------------------------------------------------------------------


def test_issue_token_picks_the_providers_only_secret(vault: Vault, canary: str) -> None:
    vault.add_secret("openai-key", "openai", canary)
    vault.add_secret("gh", "github", canary + "-gh")
    vault.create_agent("bot")
    token, info = vault.issue_token("bot", "openai", now=1000.0)
    assert token.startswith("seks_openai_")
    assert (info.agent, info.provider, info.secret_name, info.expires_at) == (
        "bot",
        "openai",
        "openai-key",
        None,
    )
    assert vault.resolve_token(token) == info


def test_issue_token_without_a_secret_for_the_provider_says_how_to_add_one(vault: Vault) -> None:
    vault.create_agent("bot")
    with pytest.raises(NotFound, match="seks secret add"):
        vault.issue_token("bot", "openai")
    assert vault.list_tokens() == []


def test_issue_token_with_several_secrets_asks_for_secret_option(vault: Vault, canary: str) -> None:
    vault.add_secret("work", "openai", canary)
    vault.add_secret("home", "openai", canary + "-home")
    vault.create_agent("bot")
    with pytest.raises(ConfigError, match="--secret") as e:
        vault.issue_token("bot", "openai")
    assert "home" in str(e.value) and "work" in str(e.value)
    _, info = vault.issue_token("bot", "openai", secret_name="home")
    assert info.secret_name == "home"


def test_issue_token_for_a_secret_of_another_provider_is_refused(vault: Vault, canary: str) -> None:
    vault.add_secret("gh", "github", canary)
    vault.create_agent("bot")
    with pytest.raises(ConfigError, match="github"):
        vault.issue_token("bot", "openai", secret_name="gh")


def test_issue_token_for_an_unknown_agent_or_bad_ttl_is_refused(vault: Vault, canary: str) -> None:
    vault.add_secret("k", "openai", canary)
    with pytest.raises(NotFound, match="seks agent create ghost"):
        vault.issue_token("ghost", "openai")
    vault.create_agent("bot")
    for ttl in (0, -5):
        with pytest.raises(ConfigError, match="ttl"):
            vault.issue_token("bot", "openai", ttl=ttl)
    assert vault.list_tokens() == []


def test_provider_name_that_cannot_be_in_a_token_is_a_config_error(
    vault: Vault, canary: str
) -> None:
    vault.create_agent("bot")
    with pytest.raises(ConfigError, match="provider"):
        vault.add_secret("k", "Open AI", canary)
        vault.issue_token("bot", "Open AI")


# -- resolving tokens ---------------------------------------------------------------------


@pytest.fixture
def issued(vault: Vault, canary: str) -> str:
    vault.add_secret("k", "openai", canary)
    vault.create_agent("bot")
    token, _ = vault.issue_token("bot", "openai", ttl=60, now=1000.0, session="s1")
    return token


def test_token_works_until_its_ttl_then_expires(vault: Vault, issued: str) -> None:
    assert vault.resolve_token(issued, now=1059.9).expires_at == 1060.0
    with pytest.raises(TokenExpired) as e:
        vault.resolve_token(issued, now=1060.0)
    assert issued not in str(e.value)


def test_unknown_token_is_refused(vault: Vault, issued: str) -> None:
    stranger = mint("openai")
    with pytest.raises(UnknownToken) as e:
        vault.resolve_token(stranger, now=1000.0)
    assert stranger not in str(e.value)


def test_token_of_another_vault_is_unknown(tmp_path: Path, canary: str) -> None:
    other = Vault.create(tmp_path / "other.db", MasterKey.generate())
    mine = Vault.create(tmp_path / "mine.db", MasterKey.generate())
    try:
        for v in (other, mine):
            v.add_secret("k", "openai", canary)
            v.create_agent("bot")
        token, _ = other.issue_token("bot", "openai")
        with pytest.raises(UnknownToken):
            mine.resolve_token(token)
    finally:
        other.close()
        mine.close()


def test_malformed_token_is_refused_before_lookup(vault: Vault, issued: str) -> None:
    typo = issued[:-1] + ("A" if issued[-1] != "A" else "B")
    with pytest.raises(MalformedToken) as e:
        vault.resolve_token(typo, now=1000.0)
    assert issued not in str(e.value) and typo not in str(e.value)


def test_revoked_token_is_refused(vault: Vault, issued: str) -> None:
    (info,) = vault.list_tokens()
    vault.revoke_token(info.id, now=1010.0)
    with pytest.raises(TokenRevoked) as e:
        vault.resolve_token(issued, now=1020.0)
    assert issued not in str(e.value)
    assert vault.list_tokens()[0].state(now=1020.0) == "revoked"
    with pytest.raises(AlreadyExists):
        vault.revoke_token(info.id)
    with pytest.raises(NotFound):
        vault.revoke_token("tok_doesnotexist")


def test_remove_agent_revokes_its_tokens_only(vault: Vault, issued: str) -> None:
    vault.create_agent("other")
    other_token, _ = vault.issue_token("other", "openai", now=1000.0)
    assert vault.remove_agent("bot", now=1010.0) == 1
    assert [a.name for a in vault.list_agents()] == ["other"]
    with pytest.raises(TokenRevoked):
        vault.resolve_token(issued, now=1020.0)
    assert vault.resolve_token(other_token, now=1020.0).agent == "other"
    vault.create_agent("bot")  # a new agent of the same name does not revive old tokens
    with pytest.raises(TokenRevoked):
        vault.resolve_token(issued, now=1020.0)
    with pytest.raises(NotFound):
        vault.remove_agent("ghost")


def test_revoke_session_revokes_that_sessions_tokens_only(vault: Vault, issued: str) -> None:
    second, _ = vault.issue_token("bot", "openai", session="s1", now=1000.0)
    other, _ = vault.issue_token("bot", "openai", session="s2", now=1000.0)
    assert vault.revoke_session("s1", now=1010.0) == 2
    for token in (issued, second):
        with pytest.raises(TokenRevoked):
            vault.resolve_token(token, now=1020.0)
    assert vault.resolve_token(other, now=1020.0).session == "s2"
    assert vault.revoke_session("s1") == 0


def test_refusals_become_agent_json_without_the_token(vault: Vault, issued: str) -> None:
    (info,) = vault.list_tokens()
    typo = issued[:-1] + ("A" if issued[-1] != "A" else "B")
    cases = [
        (lambda: vault.resolve_token(typo, now=1000.0), "seks_unknown_token"),
        (lambda: vault.resolve_token(mint("openai"), now=1000.0), "seks_unknown_token"),
        (lambda: vault.resolve_token(issued, now=5000.0), "seks_token_expired"),
    ]
    refusals = []
    for call, expected_type in cases:
        with pytest.raises(RequestRefused) as e:
            call()
        refusals.append((e.value, expected_type))
    vault.revoke_token(info.id, now=1001.0)
    with pytest.raises(RequestRefused) as e:
        vault.resolve_token(issued, now=1002.0)
    refusals.append((e.value, "seks_token_revoked"))

    for err, expected_type in refusals:
        assert err.status == 401
        raw = agent_error_body(err)
        body = json.loads(raw)
        assert body["type"] == "error"
        assert body["error"]["type"] == body["error"]["code"] == expected_type
        assert body["error"]["message"].startswith("SEKS: ")
        assert issued.encode() not in raw and typo.encode() not in raw
        assert issued[12:30].encode() not in raw


# -- what the vault file holds -----------------------------------------------------------


def vault_files_bytes(vault_path: Path) -> dict[str, bytes]:
    files = [vault_path, *(Path(f"{vault_path}{s}") for s in ("-wal", "-shm"))]
    return {f.name: f.read_bytes() for f in files if f.exists()}


def test_vault_files_never_hold_the_secret_or_the_token(
    vault: Vault, vault_path: Path, canary: str
) -> None:
    vault.add_secret("k", "openai", canary)
    vault.create_agent("bot")
    token, _ = vault.issue_token("bot", "openai")
    vault.resolve_token(token)
    vault.rotate_secret("k", canary + "-2")
    assert vault.reveal_secret("k").reveal() == canary + "-2"
    needles = [canary.encode(), canary.encode().hex().encode(), token.encode(), token[12:].encode()]

    while_open = vault_files_bytes(vault_path)
    assert f"{vault_path.name}-wal" in while_open  # the check covers the WAL, not just the DB
    vault.close()
    after_close = vault_files_bytes(vault_path)
    for name, data in [*while_open.items(), *after_close.items()]:
        for needle in needles:
            assert needle not in data, f"{name} holds a secret or token"


def test_audit_rows_for_changes_hold_ids_but_no_secret_or_token(vault: Vault, canary: str) -> None:
    vault.add_secret("k", "openai", canary)
    vault.create_agent("bot")
    token, info = vault.issue_token("bot", "openai")
    vault.revoke_token(info.id)

    rows = audit_rows(vault)
    events = [r["event"] for r in rows]
    for event in ("secret.added", "agent.created", "token.issued", "token.revoked"):
        assert events.count(event) == 1, event
    issued = next(r for r in rows if r["event"] == "token.issued")
    assert (issued["token_id"], issued["agent"], issued["secret_name"]) == (info.id, "bot", "k")
    revoked = next(r for r in rows if r["event"] == "token.revoked")
    assert revoked["token_id"] == info.id
    added = next(r for r in rows if r["event"] == "secret.added")
    assert (added["secret_name"], added["provider"]) == ("k", "openai")
    text = repr(rows)
    assert canary not in text
    assert token not in text and token[12:30] not in text


@pytest.mark.parametrize(
    "sql", ["UPDATE audit SET event = 'nothing.happened'", "DELETE FROM audit"]
)
def test_audit_table_rejects_update_and_delete(
    vault: Vault, vault_path: Path, canary: str, sql: str
) -> None:
    vault.add_secret("k", "openai", canary)
    before = audit_rows(vault)
    conn = sqlite3.connect(vault_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    finally:
        conn.close()
    assert audit_rows(vault) == before


def test_audit_tail_and_rows_after_filter_by_agent(vault: Vault) -> None:
    vault.create_agent("a")
    vault.create_agent("b")
    vault.audit.record(AuditEvent("request", agent="a", decision="allow"))
    assert [r["event"] for r in tail(vault.db, 2, agent="a")] == ["agent.created", "request"]
    assert [r["agent"] for r in tail(vault.db, 2)] == ["b", "a"]
    first_id = audit_rows(vault)[0]["id"]
    assert [r["event"] for r in rows_after(vault.db, first_id, agent="b")] == ["agent.created"]


def test_audit_record_fails_closed_when_the_trail_cannot_be_written(
    vault: Vault, vault_path: Path
) -> None:
    read_only = sqlite3.connect(f"file:{vault_path}?mode=ro", uri=True, isolation_level=None)
    try:
        with pytest.raises(AuditUnavailable) as e:
            log = AuditLog(sqlite_utils.Database(read_only), vault.audit_key)
            log.record(AuditEvent("request", decision="allow"))
        assert e.value.status == 503
    finally:
        read_only.close()


# -- opening ------------------------------------------------------------------------------


def test_open_without_a_vault_is_not_found_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "vault.db"
    with pytest.raises(NotFound, match="seks init"):
        Vault.open(path, MasterKey.generate())
    assert list(tmp_path.iterdir()) == []


def test_create_over_an_existing_vault_is_refused_and_keeps_it(
    vault: Vault, vault_path: Path, master: MasterKey, canary: str
) -> None:
    vault.add_secret("k", "openai", canary)
    with pytest.raises(AlreadyExists):
        Vault.create(vault_path, MasterKey.generate())
    reopened = Vault.open(vault_path, master)
    try:
        assert reopened.reveal_secret("k").reveal() == canary
    finally:
        reopened.close()
