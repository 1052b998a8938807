"""The vault file: owner-only, WAL, idempotent migrations, and writers that never lock out."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from seks.errors import AlreadyExists, NotFound
from seks.store import MasterKey, Vault
from seks.store.db import MIGRATIONS, connect, migrate, write_tx


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """A umask that would leave files world-readable if SEKS relied on it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_vault_file_and_its_wal_and_shm_are_owner_only(
    vault_path: Path, master: MasterKey, canary: str
) -> None:
    vault = Vault.create(vault_path, master)
    try:
        vault.add_secret("k", "openai", canary)
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{vault_path}{suffix}")
            assert path.exists(), suffix
            assert mode(path) == 0o600, suffix
    finally:
        vault.close()
    assert mode(vault_path) == 0o600


def test_vault_uses_wal_full_sync_and_foreign_keys(vault_path: Path) -> None:
    db = connect(vault_path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        db.conn.close()


def test_a_reader_is_not_blocked_by_an_open_write_transaction(
    vault: Vault, vault_path: Path, canary: str
) -> None:
    vault.add_secret("k", "openai", canary)
    with write_tx(vault.db):
        vault.db.execute("UPDATE secrets SET updated_at = 1 WHERE name = 'k'")
        reader = connect(vault_path)
        try:
            (count,) = reader.execute("SELECT count(*) FROM secrets").fetchone()
        finally:
            reader.conn.close()
    assert count == 1


def test_migrations_apply_once_and_reopening_is_harmless(
    vault_path: Path, master: MasterKey
) -> None:
    db = connect(vault_path)
    try:
        assert migrate(db) == [name for name, _ in MIGRATIONS]
        assert migrate(db) == []
    finally:
        db.conn.close()
    Vault.create(vault_path, master).close()
    for _ in range(2):
        Vault.open(vault_path, master).close()
    conn = sqlite3.connect(vault_path)
    try:
        rows = conn.execute("SELECT name FROM _migrations").fetchall()
    finally:
        conn.close()
    assert sorted(rows) == sorted((name,) for name, _ in MIGRATIONS)  # each exactly once


def test_write_tx_rolls_back_everything_on_error_and_stays_usable(vault: Vault) -> None:
    vault.db.execute("CREATE TABLE scratch (n INTEGER)")
    with pytest.raises(RuntimeError), write_tx(vault.db):
        vault.db.execute("INSERT INTO scratch VALUES (1)")
        raise RuntimeError("boom")
    with write_tx(vault.db):
        vault.db.execute("INSERT INTO scratch VALUES (2)")
    assert vault.db.execute("SELECT n FROM scratch").fetchall() == [(2,)]


def test_a_failed_change_leaves_no_half_written_rows(vault: Vault, canary: str) -> None:
    vault.add_secret("k", "openai", canary)
    vault.create_agent("bot")
    before = {t: vault.db[t].count for t in ("secrets", "secret_versions", "tokens", "audit")}
    with pytest.raises(NotFound):
        vault.issue_token("bot", "openai", secret_name="missing")
    with pytest.raises(AlreadyExists):
        vault.add_secret("k", "openai", canary)
    after = {t: vault.db[t].count for t in before}
    assert after == before


def test_two_writers_never_see_database_is_locked(
    vault: Vault, vault_path: Path, master: MasterKey, canary: str
) -> None:
    per_thread = 200
    for n in range(2):
        vault.create_agent(f"bot{n}")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        own = Vault.open(vault_path, master)
        try:
            start.wait()
            for i in range(per_thread):
                own.add_secret(f"t{n}-s{i}", "openai", f"{canary}-{n}-{i}")
                own.issue_token(f"bot{n}", "openai", secret_name=f"t{n}-s{i}")
        except BaseException as e:  # collected and asserted on in the main thread
            errors.append(e)
        finally:
            own.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(vault.list_secrets()) == 2 * per_thread
    assert len(vault.list_tokens()) == 2 * per_thread
    assert vault.reveal_secret("t1-s199").reveal() == f"{canary}-1-199"
