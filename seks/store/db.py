"""The SQLite connection and the schema's named migrations.

The connection is ``seks.store.conn``'s (WAL, full sync, owner-only), and every write goes
through its :func:`write_tx` (``BEGIN IMMEDIATE``). WAL lets the proxy read while the CLI writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from seks.store import limits_schema
from seks.store.conn import BUSY_TIMEOUT_S, open_connection, write_tx

__all__ = [
    "AUDIT_APPEND_COLUMNS",
    "AUDIT_NO_UPDATE_TRIGGER",
    "COUNTED_TABLES",
    "HEAD_MOVED",
    "MIGRATIONS",
    "changes",
    "connect",
    "migrate",
    "write_tx",
]


def connect(path: Path, *, busy_timeout: float = BUSY_TIMEOUT_S) -> sqlite_utils.Database:
    """:func:`~seks.store.conn.open_connection`, for sqlite-utils."""
    return sqlite_utils.Database(open_connection(path, busy_timeout=busy_timeout))


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": bytes}, pk="key")
    db.table("tenants").create({"name": str, "kek_version": int, "created_at": float}, pk="name")
    db.table("tenant_keys").create(
        {"tenant": str, "version": int, "wrapped_kek": bytes, "created_at": float},
        pk=("tenant", "version"),
        foreign_keys=[("tenant", "tenants", "name")],
    )
    db.table("secrets").create(
        {
            "tenant": str,
            "name": str,
            "provider": str,
            "version": int,
            "created_at": float,
            "updated_at": float,
        },
        pk=("tenant", "name"),
        foreign_keys=[("tenant", "tenants", "name")],
    )
    db.table("secret_versions").create(
        {
            "tenant": str,
            "name": str,
            "version": int,
            "kek_version": int,
            "wrapped_dek": bytes,
            "ciphertext": bytes,
            "created_at": float,
        },
        pk=("tenant", "name", "version"),
    )
    db.table("agents").create(
        {"tenant": str, "name": str, "created_at": float},
        pk=("tenant", "name"),
        foreign_keys=[("tenant", "tenants", "name")],
    )
    db.table("tokens").create(
        {
            "id": str,
            "token_hash": bytes,
            "tenant": str,
            "agent": str,
            "provider": str,
            "secret_name": str,
            "created_at": float,
            "expires_at": float,
            "revoked_at": float,
            "session": str,
        },
        pk="id",
        not_null={"token_hash", "tenant", "agent", "provider", "secret_name", "created_at"},
    )
    db.table("tokens").create_index(["token_hash"], unique=True)
    db.table("tokens").create_index(["tenant", "agent"])
    db.table("audit").create(
        {
            "id": int,
            "ts_us": int,
            "event": str,
            "actor": str,
            "tenant": str,
            "agent": str,
            "token_id": str,
            "provider": str,
            "secret_name": str,
            "client_ip": str,
            "method": str,
            "host": str,
            "path": str,
            "decision": str,
            "reason": str,
            "status": int,
            "latency_ms": float,
            "flow_id": str,
        },
        pk="id",
    )
    # Append-only: the audit cannot be edited through SQL without dropping these first.
    db.execute(
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
    )


def _m002_audit_detail(db: sqlite_utils.Database) -> None:
    # Event-specific facts as JSON, e.g. a redaction's encoding, place and count. Two
    # migrations add it (they were written side by side): whichever runs first does.
    if "detail" not in db.table("audit").columns_dict:
        db.execute("ALTER TABLE audit ADD COLUMN detail TEXT")


AUDIT_NO_UPDATE_TRIGGER = (
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
)


def _m002_audit_chain(db: sqlite_utils.Database) -> None:
    """Chain values, a MACed head apart from the table, and one door for archiving.

    The head row and the chain values of rows written before this migration are filled in by
    ``AuditLog.start_chain``, which needs the master key (seks/store/audit.py).
    """
    have = {c.name for c in db.table("audit").columns}
    for name, kind in [
        ("detail", "TEXT"),  # event-specific JSON (also added by m002_audit_detail)
        ("bytes", "INTEGER"),
        ("query_hash", "TEXT"),
        ("token_hash", "TEXT"),
        ("chain", "TEXT"),
    ]:
        if name not in have:
            db.execute(f"ALTER TABLE audit ADD COLUMN {name} {kind}")
    db.execute("CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_us)")
    db.execute(
        "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "rows INTEGER NOT NULL, base_id INTEGER NOT NULL, base_chain TEXT NOT NULL, "
        "last_id INTEGER NOT NULL, last_chain TEXT NOT NULL, started_us INTEGER NOT NULL, "
        "mac TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
        "BEGIN SELECT RAISE(ABORT, 'the audit head cannot be removed'); END"
    )
    # Archiving removes the oldest rows: DELETE passes only for rows covered by a permit that
    # the archive writes and removes inside its own transaction. Plain SQL can write a permit
    # too; what it cannot do is move the MACed head, so `seks audit verify` sees the removal.
    db.execute("CREATE TABLE audit_archive_permit (through_id INTEGER NOT NULL)")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute(
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
        "WHEN NOT EXISTS (SELECT 1 FROM audit_archive_permit WHERE OLD.id <= through_id) "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
    )


# The tables whose rows the proxy reads for every request (seks.store.read_cache): any change to
# them, by any process or through plain SQL, moves the counter in `changes`.
COUNTED_TABLES = ("tenants", "tenant_keys", "secrets", "secret_versions", "agents", "tokens")


def _m007_change_counter(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE changes (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
    db.execute("INSERT INTO changes (id, n) VALUES (1, 0)")
    for table in COUNTED_TABLES:
        for op in ("INSERT", "UPDATE", "DELETE"):
            db.execute(  # our own table names and operations only
                f"CREATE TRIGGER {table}_{op.lower()}_counted AFTER {op} ON {table} "  # noqa: S608
                "BEGIN UPDATE changes SET n = n + 1 WHERE id = 1; END"
            )


# What the append view says when the head is not the one a batch follows.
HEAD_MOVED = "the audit head is not the one these rows follow"
# The audit columns a row is appended with, in order (seks.store.audit builds its rows in it).
AUDIT_APPEND_COLUMNS = (
    "id", "event", "decision", "reason", "actor", "tenant", "agent", "token_id", "provider",
    "secret_name", "client_ip", "method", "host", "path", "status", "latency_ms", "flow_id",
    "detail", "bytes", "query_hash", "token_hash", "ts_us", "chain",
)  # fmt: skip


def _m008_audit_append(db: sqlite_utils.Database) -> None:
    """One statement that appends audit rows and moves the head with them.

    An INSERT into the view ``audit_append`` adds each row to ``audit`` and moves the head to
    it, provided the head is the one the row follows: its last id is the row's id minus one
    and, on the batch's first row (``prev_mac`` set), its MAC is the one the writer last saw.
    Otherwise the whole statement fails and nothing is written. The last row carries the new
    head's MAC (``head_mac``). So the proxy's audit writer commits a batch with one call into
    SQLite, in autocommit, where it took five (BEGIN, read the head, insert, move the head,
    COMMIT): each call gives the GIL back to the event loop and waits for it again, and on a
    busy proxy those hand-offs cost more CPU than the writes (bench/README.md).
    """
    cols = ", ".join(AUDIT_APPEND_COLUMNS)
    new = ", ".join(f"NEW.{c}" for c in AUDIT_APPEND_COLUMNS)
    # Only our own column names go into these strings.
    db.execute(
        f"CREATE VIEW audit_append AS SELECT {cols}, "  # noqa: S608
        "NULL AS prev_mac, NULL AS head_mac FROM audit WHERE 0"
    )
    db.execute(
        "CREATE TRIGGER audit_append_row INSTEAD OF INSERT ON audit_append BEGIN "  # noqa: S608
        "UPDATE audit_head SET rows = rows + 1, last_id = NEW.id, last_chain = NEW.chain, "
        "mac = coalesce(NEW.head_mac, mac) "
        "WHERE id = 1 AND last_id = NEW.id - 1 "
        "AND (NEW.prev_mac IS NULL OR mac = NEW.prev_mac); "
        f"SELECT RAISE(ABORT, '{HEAD_MOVED}') WHERE changes() = 0; "
        f"INSERT INTO audit ({cols}) VALUES ({new}); "
        "END"
    )


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("m001_initial", _m001_initial),
    ("m002_audit_detail", _m002_audit_detail),
    ("m002_audit_chain", _m002_audit_chain),
    ("m003_token_limits", limits_schema.m003_token_limits),
    ("m004_approvals", limits_schema.m004_approvals),
    ("m005_proxy_auth", limits_schema.m005_proxy_auth),
    ("m006_aws_allow_lists", limits_schema.m006_aws_allow_lists),
    ("m007_change_counter", _m007_change_counter),
    ("m008_audit_append", _m008_audit_append),
]


def changes(db: sqlite_utils.Database) -> int:
    """The change counter: it moves whenever a row of COUNTED_TABLES is written."""
    return int(db.conn.execute("SELECT n FROM changes WHERE id = 1").fetchone()[0])


def _applied(db: sqlite_utils.Database) -> set[str]:
    if "_migrations" not in db.table_names():
        return set()
    return {row[0] for row in db.execute("SELECT name FROM _migrations")}


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction. Returns their names.

    Every command opens the vault, so the common case (nothing to apply) is a read: no write
    lock to wait for while the proxy's audit writer commits.
    """
    if _applied(db) >= {name for name, _ in MIGRATIONS}:
        return []
    applied_now = []
    with write_tx(db):
        if "_migrations" not in db.table_names():
            db.table("_migrations").create({"name": str, "applied_at": float}, pk="name")
    for name, step in MIGRATIONS:
        with write_tx(db):
            done = db.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone()
            if done:
                continue
            step(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", [name, time.time()]
            )
            applied_now.append(name)
    return applied_now
