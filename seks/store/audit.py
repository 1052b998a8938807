"""The audit trail: one append-only row per decision and per change.

Rows hold who, what and where, never a secret or a whole token (a token appears only by its
public id). The table's triggers reject UPDATE and DELETE.
"""

from __future__ import annotations

import dataclasses
import getpass
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from seks.errors import AuditUnavailable
from seks.store.db import write_tx

__all__ = ["AuditEvent", "AuditLog", "os_user", "rows_after", "tail"]


@dataclass(frozen=True)
class AuditEvent:
    event: str
    decision: str | None = None
    reason: str | None = None
    actor: str | None = None
    tenant: str | None = None
    agent: str | None = None
    token_id: str | None = None
    provider: str | None = None
    secret_name: str | None = None
    client_ip: str | None = None
    method: str | None = None
    host: str | None = None
    path: str | None = None
    status: int | None = None
    latency_ms: float | None = None
    flow_id: str | None = None
    detail: str | None = None  # JSON with event-specific facts; never a secret
    ts_us: int = dataclasses.field(default_factory=lambda: time.time_ns() // 1000)


_FIELDS = [f.name for f in dataclasses.fields(AuditEvent)]
# Only our own column names go into the string.
_INSERT = f"INSERT INTO audit ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))})"  # noqa: S608


def os_user() -> str:
    """The actor for changes made from the CLI."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class AuditLog:
    """Appends rows to the audit table of one connection, inside the caller's transaction.

    ``key`` is derived from the master key (``MasterKey.derive("audit")``); rows are keyed
    with it so that they cannot be edited unnoticed.
    """

    def __init__(self, db: sqlite_utils.Database, key: bytes) -> None:
        self.db = db
        self._key = key

    def __repr__(self) -> str:
        return "AuditLog(<key redacted>)"

    def append(self, event: AuditEvent) -> None:
        self.append_many([event])

    def append_many(self, events: list[AuditEvent]) -> None:
        """Add rows inside the caller's write transaction, in one call into SQLite."""
        self.db.conn.executemany(_INSERT, [[getattr(e, f) for f in _FIELDS] for e in events])

    def record(self, event: AuditEvent) -> None:
        """Commit one row durably in its own transaction, or raise AuditUnavailable."""
        try:
            with write_tx(self.db):
                self.append(event)
        except sqlite3.Error as e:
            raise AuditUnavailable(f"the audit trail cannot be written ({e})") from e


def tail(db: sqlite_utils.Database, n: int, *, agent: str | None = None) -> list[dict[str, Any]]:
    where, params = _filter(agent)
    rows = db.query(
        f"SELECT * FROM (SELECT * FROM audit {where} ORDER BY id DESC LIMIT ?) ORDER BY id",  # noqa: S608
        [*params, n],
    )
    return list(rows)


def rows_after(
    db: sqlite_utils.Database, last_id: int, *, agent: str | None = None
) -> list[dict[str, Any]]:
    where, params = _filter(agent, after=last_id)
    return list(db.query(f"SELECT * FROM audit {where} ORDER BY id", params))  # noqa: S608


def _filter(agent: str | None, after: int | None = None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if agent is not None:
        clauses.append("agent = ?")
        params.append(agent)
    if after is not None:
        clauses.append("id > ?")
        params.append(after)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params
