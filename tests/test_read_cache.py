"""The proxy's per-request vault reads, kept until the vault changes (seks/store/read_cache.py).

A write by another process must count from the next refresh on, whatever wrote it; expiry is
checked at every use; and nothing kept is a plaintext secret.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from seks.errors import NotFound, TokenExpired, TokenRevoked
from seks.store import MasterKey, Vault, approvals
from seks.store.db import COUNTED_TABLES, changes
from seks.store.read_cache import ReadCache


@pytest.fixture
def other(vault_path: Path, master: MasterKey, vault: Vault) -> Iterator[Vault]:
    """The same vault through a second connection, as `seks` in another process holds it."""
    v = Vault.open(vault_path, master)
    yield v
    v.close()


def test_every_vault_call_that_writes_a_counted_table_moves_the_counter(vault: Vault) -> None:
    seen = [changes(vault.db)]

    def moved() -> bool:
        seen.append(changes(vault.db))
        return seen[-1] > seen[-2]

    vault.create_tenant("acme")
    assert moved()
    vault.add_secret("k", "openai", "sk-" + "a" * 40, tenant="acme")
    assert moved()
    vault.create_agent("bot", tenant="acme")
    assert moved()
    _, info = vault.issue_token("bot", "openai", tenant="acme")
    assert moved()
    vault.rotate_secret("k", "sk-" + "b" * 40, tenant="acme")
    assert moved()
    vault.revoke_token(info.id, tenant="acme")
    assert moved()


@pytest.mark.parametrize("table", COUNTED_TABLES)
@pytest.mark.parametrize("statement", ["UPDATE {t} SET rowid = rowid", "DELETE FROM {t}"])
def test_plain_sql_from_another_connection_moves_the_counter_too(
    vault: Vault, vault_path: Path, table: str, statement: str
) -> None:
    vault.add_secret("k", "openai", "sk-" + "a" * 40)
    vault.create_agent("bot")
    vault.issue_token("bot", "openai")
    before = changes(vault.db)
    with closing(sqlite3.connect(vault_path, isolation_level=None)) as raw:
        raw.execute(statement.format(t=table))
    assert changes(vault.db) > before


def test_a_token_revoked_elsewhere_is_refused_from_the_next_refresh(
    vault: Vault, other: Vault
) -> None:
    vault.add_secret("k", "openai", "sk-" + "a" * 40)
    vault.create_agent("bot")
    token, info = vault.issue_token("bot", "openai")
    reads = ReadCache(vault)
    reads.refresh()
    assert reads.resolve_token(token).id == info.id

    other.revoke_token(info.id)
    reads.refresh()

    with pytest.raises(TokenRevoked, match=f"token {info.id} was revoked"):
        reads.resolve_token(token)


def test_expiry_is_checked_at_each_use_without_a_refresh(vault: Vault) -> None:
    vault.add_secret("k", "openai", "sk-" + "a" * 40)
    vault.create_agent("bot")
    token, info = vault.issue_token("bot", "openai", ttl=60, now=1_000.0)
    reads = ReadCache(vault)
    assert reads.resolve_token(token, now=1_030.0).id == info.id
    with pytest.raises(TokenExpired):
        reads.resolve_token(token, now=1_060.0)


def test_a_secret_rotated_or_removed_elsewhere_counts_from_the_next_refresh(
    vault: Vault, other: Vault, canary: str
) -> None:
    vault.add_secret("k", "openai", "sk-first-" + "a" * 40)
    reads = ReadCache(vault)
    assert reads.reveal_secret("k", tenant="default").reveal() == "sk-first-" + "a" * 40

    other.rotate_secret("k", canary)
    reads.refresh()
    assert reads.reveal_secret("k", tenant="default").reveal() == canary

    other.remove_secret("k")
    reads.refresh()
    with pytest.raises(NotFound, match="no secret 'k'"):
        reads.reveal_secret("k", tenant="default")


def test_it_keeps_no_plaintext_secret(vault: Vault, canary: str) -> None:
    vault.add_secret("k", "openai", canary)
    vault.create_agent("bot")
    token, _ = vault.issue_token("bot", "openai")
    reads = ReadCache(vault)
    reads.resolve_token(token)
    assert reads.reveal_secret("k", tenant="default").reveal() == canary
    reads.secrets_fingerprint("default")

    kept = pickle.dumps(reads._rows)
    assert canary.encode() not in kept
    assert token.encode() not in kept
    assert canary not in repr(reads) and canary not in repr(list(reads._rows.values()))


def test_flags_read_for_the_gate_follow_changes(vault: Vault, other: Vault) -> None:
    vault.add_secret("k", "openai", "sk-" + "a" * 40)
    vault.create_agent("bot")
    reads = ReadCache(vault)
    assert reads.requires_approval("default", "k") is False
    assert reads.requires_proxy_auth("default", "bot") is False

    approvals.set_secret_approval(other, "k", "required")
    reads.refresh()
    assert reads.requires_approval("default", "k") is True
