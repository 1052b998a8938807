"""Reading the audit trail: filters, the newest rows, rows after an id, counts, snapshots.

Only reads: writing and chaining live in ``seks.store.audit``, which re-exports these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlite_utils

__all__ = ["AuditFilter", "read_snapshot", "rows_after", "select_rows", "stats", "tail"]


@dataclass(frozen=True)
class AuditFilter:
    """Which rows to show. Each tuple matches any of its values (empty: no condition); events
    are glob patterns (``request.*``). Times are µs since the epoch, ``until`` exclusive."""

    agents: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    since_us: int | None = None
    until_us: int | None = None

    def where(self, *, after_id: int | None = None) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, values, op in (
            ("agent", self.agents, "="),
            ("provider", self.providers, "="),
            ("event", self.events, "GLOB"),
            ("decision", self.decisions, "="),
        ):
            if values:
                clauses.append("(" + " OR ".join(f"{column} {op} ?" for _ in values) + ")")
                params.extend(values)
        if self.since_us is not None:
            clauses.append("ts_us >= ?")
            params.append(self.since_us)
        if self.until_us is not None:
            clauses.append("ts_us < ?")
            params.append(self.until_us)
        if after_id is not None:
            clauses.append("id > ?")
            params.append(after_id)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def tail(
    db: sqlite_utils.Database, n: int, *, agent: str | None = None, where: AuditFilter | None = None
) -> list[dict[str, Any]]:
    """The newest ``n`` matching rows, oldest first."""
    sql, params = _with_agent(where, agent).where()
    return list(
        db.query(
            f"SELECT * FROM (SELECT * FROM audit {sql} ORDER BY id DESC LIMIT ?) ORDER BY id",  # noqa: S608
            [*params, n],
        )
    )


def rows_after(
    db: sqlite_utils.Database,
    last_id: int,
    *,
    agent: str | None = None,
    where: AuditFilter | None = None,
) -> list[dict[str, Any]]:
    sql, params = _with_agent(where, agent).where(after_id=last_id)
    return list(db.query(f"SELECT * FROM audit {sql} ORDER BY id", params))  # noqa: S608


def select_rows(db: sqlite_utils.Database, first_id: int, last_id: int) -> Iterator[dict[str, Any]]:
    """Every row from ``first_id`` to ``last_id`` in id order, whatever it holds."""
    yield from db.query(
        "SELECT * FROM audit WHERE id >= ? AND id <= ? ORDER BY id", [first_id, last_id]
    )


def _with_agent(where: AuditFilter | None, agent: str | None) -> AuditFilter:
    where = where or AuditFilter()
    return dataclasses.replace(where, agents=(agent,)) if agent is not None else where


def stats(db: sqlite_utils.Database, *, since_us: int | None = None) -> dict[str, Any]:
    """Row counts per agent, provider, decision and event (None: rows without one)."""
    sql, params = AuditFilter(since_us=since_us).where()
    out: dict[str, Any] = {
        "rows": db.execute(f"SELECT count(*) FROM audit {sql}", params).fetchone()[0]  # noqa: S608
    }
    for column in ("agent", "provider", "decision", "event"):
        counts = db.execute(
            f"SELECT {column}, count(*) AS n FROM audit {sql} "  # noqa: S608
            f"GROUP BY {column} ORDER BY n DESC, {column}",
            params,
        ).fetchall()
        out[column] = {key: n for key, n in counts}
    return out


@contextmanager
def read_snapshot(db: sqlite_utils.Database) -> Iterator[None]:
    """One read transaction: every query inside sees the vault as of one moment (WAL), while
    the proxy and the CLI go on writing."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")
