"""The audit trail: one append-only, chained row per decision and per change.

Rows hold who, what and where, never a secret or a whole token: a token appears by its public id,
and values that identify but must not be readable (the token a request carried, its query string)
only as ``hmac-sha256:<hex>`` under a key derived from the master key.

Every row goes through :class:`AuditLog`'s :class:`~seks.store.audit_append.Appender` (the
proxy's audit writer uses one directly), inside a ``BEGIN IMMEDIATE`` transaction: it reads the
head, chains each new row to the one before (``seks.store.audit_chain``) and writes the new head
in the same transaction, so writers on different connections (the CLI, the proxy's
audit writer) interleave into one unbroken chain. The table's triggers reject UPDATE, and DELETE
except through the archive's permit (:meth:`AuditLog.remove_through`).
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import sqlite3
import time

import sqlite_utils

from seks.errors import AuditUnavailable, VaultError
from seks.store.audit_append import APPEND_COLUMNS, Appender, AuditEvent, HeadSeen
from seks.store.audit_chain import GENESIS, AuditKeys, Head
from seks.store.audit_read import (
    AuditFilter,
    read_snapshot,
    rows_after,
    select_rows,
    stats,
    tail,
)
from seks.store.audit_verify import ARCHIVED_EVENT, verify
from seks.store.db import AUDIT_APPEND_COLUMNS, AUDIT_NO_UPDATE_TRIGGER, write_tx

__all__ = [
    "ARCHIVED_EVENT",
    "CHAIN_MIGRATION",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "detail_json",
    "os_user",
    "read_snapshot",
    "rows_after",
    "select_rows",
    "stats",
    "tail",
    "verify",
]

CHAIN_MIGRATION = "m002_audit_chain"
if tuple(APPEND_COLUMNS[:-2]) != AUDIT_APPEND_COLUMNS:  # a new field needs a new view too
    raise RuntimeError("AuditEvent's fields differ from the audit_append view's columns")
CHAIN_STARTED_EVENT = "audit.chain_started"


def os_user() -> str:
    """The actor for changes made from the CLI."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def detail_json(**facts: object) -> str:
    """An event's ``detail``: compact JSON, keys sorted, so equal facts read equal."""
    return json.dumps(facts, sort_keys=True, separators=(",", ":"))


class AuditLog:
    """Appends chained rows to the audit table of one connection, inside the caller's
    transaction. ``key`` is the audit key (``MasterKey.derive("audit")``)."""

    def __init__(self, db: sqlite_utils.Database, key: bytes) -> None:
        self.db = db
        self.keys = AuditKeys(key)
        self._rows = Appender(db.conn, self.keys)

    def __repr__(self) -> str:
        return "AuditLog(<key redacted>)"

    # -- writing ---------------------------------------------------------------------------

    def append(self, event: AuditEvent) -> None:
        self.append_many([event])

    def append_many(self, events: list[AuditEvent]) -> None:
        """Add chained rows inside the caller's write transaction, and move the head
        (:meth:`Appender.append_many`)."""
        self._rows.append_many(events)

    def append_after(self, seen: HeadSeen | None, events: list[AuditEvent]) -> HeadSeen:
        """Append rows and commit them, with no transaction open (:meth:`Appender.append_after`)."""
        return self._rows.append_after(seen, events)

    def record(self, event: AuditEvent) -> None:
        """Commit one row durably in its own transaction, or raise AuditUnavailable."""
        try:
            with write_tx(self.db):
                self.append(event)
        except sqlite3.Error as e:
            raise AuditUnavailable(f"the audit trail cannot be written ({e})") from e

    def start_chain(self, *, now_us: int | None = None) -> int:
        """Create the head, chaining any rows written before the chain existed (inside the
        caller's transaction). Only `Vault.create` and the process that applied the chain's
        migration call this: a head that went missing later is a finding, not a fresh start.
        Returns how many earlier rows were adopted."""
        if self.head() is not None:
            return 0
        now_us = time.time_ns() // 1000 if now_us is None else now_us
        legacy = list(self.db.query("SELECT * FROM audit ORDER BY id"))
        prev, last_id = GENESIS, 0
        if legacy:
            # The one UPDATE ever made to the table: filling in chain values of rows from before
            # the chain. The trigger comes back before this transaction commits.
            self.db.execute("DROP TRIGGER audit_no_update")
            for row in legacy:
                prev = self.keys.chain(prev, row)
                last_id = int(row["id"])
                self.db.execute("UPDATE audit SET chain = ? WHERE id = ?", [prev, last_id])
            self.db.execute(AUDIT_NO_UPDATE_TRIGGER)
        head = Head(len(legacy), 0, GENESIS, last_id, prev, now_us)
        self.db.execute(
            "INSERT INTO audit_head "
            "(id, rows, base_id, base_chain, last_id, last_chain, started_us, mac) "
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            [*head.fields(), self.keys.head_mac(head)],
        )
        if legacy:
            self.append(
                AuditEvent(
                    CHAIN_STARTED_EVENT,
                    actor=os_user(),
                    detail=detail_json(adopted_rows=len(legacy)),
                )
            )
        return len(legacy)

    def remove_through(self, first_id: int, through_id: int, expected_chain: str) -> int:
        """Delete rows ``first_id``..``through_id`` for an archive (inside the caller's
        transaction): the only DELETE the table allows. The head then starts from that row's
        chain value, so the rest of the trail still verifies; the caller appends the
        ``audit.archived`` row naming the archive. Returns how many rows were removed."""
        head, _ = self._rows.require_head()
        if head.base_id + 1 != first_id:
            raise VaultError("another archive removed rows meanwhile; nothing removed")
        row = self.db.execute("SELECT chain FROM audit WHERE id = ?", [through_id]).fetchone()
        if not (head.base_id < through_id <= head.last_id) or row is None:
            raise VaultError(f"row {through_id} is not in the audit trail")
        if not self.keys.equal(row[0], expected_chain):
            raise VaultError(f"row {through_id} changed since it was exported; nothing removed")
        # The permit exists only inside this transaction; the trigger lets a DELETE through
        # only for rows it covers.
        self.db.execute("INSERT INTO audit_archive_permit (through_id) VALUES (?)", [through_id])
        removed = self.db.execute("DELETE FROM audit WHERE id <= ?", [through_id]).rowcount
        self.db.execute("DELETE FROM audit_archive_permit")
        self._write_head(
            dataclasses.replace(
                head, rows=head.rows - removed, base_id=through_id, base_chain=expected_chain
            )
        )
        return int(removed)

    # -- the head --------------------------------------------------------------------------

    def head(self) -> Head | None:
        """The head as stored (its MAC unchecked; :func:`verify` checks it)."""
        row = self.db.execute(
            "SELECT rows, base_id, base_chain, last_id, last_chain, started_us "
            "FROM audit_head WHERE id = 1"
        ).fetchone()
        return Head(*row) if row else None

    def head_mac_ok(self) -> bool:
        row = self.db.execute(
            "SELECT rows, base_id, base_chain, last_id, last_chain, started_us, mac "
            "FROM audit_head WHERE id = 1"
        ).fetchone()
        return row is not None and self.keys.equal(self.keys.head_mac(Head(*row[:6])), row[6])

    def _write_head(self, head: Head) -> None:
        self.db.execute(
            "UPDATE audit_head SET rows = ?, base_id = ?, base_chain = ?, last_id = ?, "
            "last_chain = ?, started_us = ?, mac = ? WHERE id = 1",
            [*head.fields(), self.keys.head_mac(head)],
        )
