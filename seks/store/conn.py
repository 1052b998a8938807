"""The vault file as a plain SQLite connection, and the one way to write to it.

Standard library only: the audit writer process (``seks.store.audit_process``) opens the vault
through this and imports nothing else it does not need. ``seks.store.db`` wraps the same
connection for the rest of SEKS.

Measured here (shared notes): deferred transactions fail with "database is locked" when two
writers meet even under a busy timeout; ``BEGIN IMMEDIATE`` does not. So every write goes
through :func:`write_tx`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

__all__ = ["BUSY_TIMEOUT_S", "open_connection", "write_tx"]

BUSY_TIMEOUT_S = 10.0


class _Executes(Protocol):
    def execute(self, sql: str, /) -> object: ...


_Db = TypeVar("_Db", bound=_Executes)


def open_connection(path: Path, *, busy_timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open (creating owner-only if new) the vault file with WAL and full sync, in autocommit
    mode: every write is one statement or a :func:`write_tx`.

    ``busy_timeout``: how long a statement waits for another writer's lock before failing.
    """
    if not path.exists():
        # Create the file 0600 before SQLite does, so it never exists with a wider mode;
        # the -wal and -shm files inherit the mode (measured).
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextmanager
def write_tx(db: _Db) -> Iterator[_Db]:
    """One write transaction, taken with BEGIN IMMEDIATE; rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
