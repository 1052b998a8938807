"""The audit trail: one append-only, chained row per decision and per change.

Rows hold who, what and where, never a secret or a whole token: a token appears by its public id,
and values that identify but must not be readable (the token a request carried, its query string)
only as ``hmac-sha256:<hex>`` under a key derived from the master key.

Every row goes through :class:`AuditLog`, inside the caller's ``BEGIN IMMEDIATE`` transaction:
it reads the head, chains each new row to the one before (``seks.store.audit_chain``) and writes
the new head in the same transaction, so writers on different connections (the CLI, the proxy's
writer thread) interleave into one unbroken chain. The table's triggers reject UPDATE, and DELETE
except through the archive's permit (:meth:`AuditLog.remove_through`).
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import json
import math
import operator
import sqlite3
import time
from dataclasses import dataclass

import sqlite_utils

from seks.errors import AuditUnavailable, VaultError
from seks.store.audit_chain import (
    GENESIS,
    AuditKeys,
    Head,
    canonical_items,
)
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
CHAIN_STARTED_EVENT = "audit.chain_started"


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
    bytes: int | None = None  # the response body the agent got, when known
    query_hash: str | None = None  # hmac-sha256:… of the query string (AuditKeys.search_hash)
    token_hash: str | None = None  # hmac-sha256:… of the whole token the request carried
    ts_us: int = dataclasses.field(default_factory=lambda: time.time_ns() // 1000)


_FIELDS = [f.name for f in dataclasses.fields(AuditEvent)]
_event_values = operator.attrgetter(*_FIELDS)  # an event's values in _FIELDS order
_CHAINED = sorted(["id", *_FIELDS])  # a new row's columns, in canonical order
# Where each of them is in a row as AuditLog._stored_row builds it (["id", *_FIELDS]).
_CHAINED_AT = [["id", *_FIELDS].index(name) for name in _CHAINED]
_APPEND_COLUMNS = ["id", *_FIELDS, "chain", "prev_mac", "head_mac"]  # the audit_append view
if tuple(_APPEND_COLUMNS[:-2]) != AUDIT_APPEND_COLUMNS:  # a new field needs a new view too
    raise RuntimeError("AuditEvent's fields differ from the audit_append view's columns")
HeadSeen = tuple[Head, str]  # the head and its MAC, as a connection last wrote or read them
_ROWS_PER_INSERT = 400  # x 25 columns: well under SQLite's 32766 bound parameters


@functools.cache
def _insert_sql(rows: int) -> str:
    one = f"({', '.join('?' * len(_APPEND_COLUMNS))})"
    # Only our own column names go into the string.
    columns = ", ".join(_APPEND_COLUMNS)
    return f"INSERT INTO audit_append ({columns}) VALUES {', '.join([one] * rows)}"  # noqa: S608


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
        self._kinds: list[tuple[str, str]] | None = None

    def __repr__(self) -> str:
        return "AuditLog(<key redacted>)"

    # -- writing ---------------------------------------------------------------------------

    def append(self, event: AuditEvent) -> None:
        self.append_many([event])

    def append_many(self, events: list[AuditEvent]) -> None:
        """Add chained rows inside the caller's write transaction, and move the head.

        Raises :class:`AuditUnavailable` if the trail has no head (it was removed: appending
        would start a chain nobody could tell from the real one).
        """
        if events:
            self._insert(self._require_head(), events)

    def append_after(self, seen: HeadSeen | None, events: list[AuditEvent]) -> HeadSeen:
        """Append rows and commit them, with no transaction open on this connection.

        ``seen``: the head as this connection left it after its last append. If it is still
        the head, the rows and the head's move are one statement that commits by itself (the
        proxy's writer thread: one call into SQLite per batch). If not (another connection
        appended or archived meanwhile, or ``seen`` is None), that statement fails whole and
        the rows are appended in a write transaction after the head read afresh. Returns the
        head after the rows. Raises :class:`AuditUnavailable` or :class:`sqlite3.Error`.
        """
        if seen is not None and len(events) <= _ROWS_PER_INSERT:
            try:
                return self._insert(seen, events, integrity_error=False)
            except sqlite3.IntegrityError:
                pass  # the head moved: read it and append after it, under the write lock
        with write_tx(self.db):
            return self._insert(self._require_head(), events)

    def _insert(
        self, seen: HeadSeen, events: list[AuditEvent], *, integrity_error: bool = True
    ) -> HeadSeen:
        """INSERT the rows after ``seen`` through the ``audit_append`` view (db.py, m008),
        which moves the head with them. Returns the new head and its MAC."""
        head, mac = seen
        # Ids follow the head, not the table: an id removed from the end is never reused (the
        # gap shows), and a row someone added after the head makes this insert fail, loudly.
        next_id = head.last_id
        prev = head.last_chain
        values: list[object] = []
        for event in events:
            next_id += 1
            row = self._stored_row(event, next_id)
            prev = self.keys.chain_canonical(
                prev, canonical_items(zip(_CHAINED, map(row.__getitem__, _CHAINED_AT), strict=True))
            )
            values += row
            values += (prev, None, None)  # chain, prev_mac, head_mac
        new = dataclasses.replace(
            head, rows=head.rows + len(events), last_id=next_id, last_chain=prev
        )
        new_mac = self.keys.head_mac(new)
        width = len(_APPEND_COLUMNS)
        values[width - 2] = mac  # the first row names the head it follows
        values[-1] = new_mac  # the last row leaves the head MACed
        # One multi-row INSERT, not executemany: the writer thread then gives up and waits
        # for the GIL once per batch instead of once per row (measured under load).
        try:
            for start in range(0, len(events), _ROWS_PER_INSERT):
                chunk = values[start * width : (start + _ROWS_PER_INSERT) * width]
                self.db.conn.execute(_insert_sql(len(chunk) // width), chunk)
        except sqlite3.IntegrityError as e:
            if not integrity_error:
                raise
            raise AuditUnavailable(
                f"the audit trail has a row after its head's last row {head.last_id} that SEKS "
                "did not write: run `seks audit verify`"
            ) from e
        return new, new_mac

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
        head, _ = self._require_head()
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

    def _require_head(self) -> HeadSeen:
        """The head as stored, with its stored MAC (checked by :func:`verify`, not here)."""
        row = self.db.execute(
            "SELECT rows, base_id, base_chain, last_id, last_chain, started_us, mac "
            "FROM audit_head WHERE id = 1"
        ).fetchone()
        if row is None:
            raise AuditUnavailable(
                "the audit trail has no head record (it was removed): "
                "run `seks audit verify`; nothing more is written until it is restored"
            )
        return Head(*row[:6]), row[6]

    def _write_head(self, head: Head) -> None:
        self.db.execute(
            "UPDATE audit_head SET rows = ?, base_id = ?, base_chain = ?, last_id = ?, "
            "last_chain = ?, started_us = ?, mac = ? WHERE id = 1",
            [*head.fields(), self.keys.head_mac(head)],
        )

    # -- values as stored ------------------------------------------------------------------

    def _stored_row(self, event: AuditEvent, row_id: int) -> list[object]:
        """The row's values in ``_APPEND_COLUMNS`` order (up to the chain), as SQLite will
        store and return them, so its chain value can be checked from what is read back:
        numbers by the column's type, empty text as NULL."""
        row: list[object] = [row_id]
        # The proxy's writer runs this for every row: plain text and whole numbers, the usual
        # values, skip the general conversion (measured: half the cost of chaining a row).
        for (name, kind), value in zip(self._column_kinds(), _event_values(event), strict=True):
            if value is None or value == "":
                row.append(None)
            elif (kind == "TEXT" and type(value) is str and value.isascii()) or (
                kind == "INTEGER" and type(value) is int
            ):
                row.append(value)
            else:
                row.append(_stored(value, kind, name))
        return row

    def _column_kinds(self) -> list[tuple[str, str]]:
        """Each field of AuditEvent with its column's declared type, read once."""
        if self._kinds is None:
            declared = {
                r[1]: str(r[2]).upper() for r in self.db.execute("PRAGMA table_info(audit)")
            }
            self._kinds = [(name, declared.get(name, "TEXT")) for name in _FIELDS]
        return self._kinds


def _stored(value: object, kind: str, name: str) -> object:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"audit field {name}: a boolean is not an audit value")
    if "INT" in kind:
        if isinstance(value, float) and not value.is_integer():
            raise TypeError(f"audit field {name}: {value!r} is not a whole number")
        return int(value)  # type: ignore[call-overload]
    if any(k in kind for k in ("REAL", "FLOA", "DOUB")):
        number = float(value)  # type: ignore[arg-type]
        return number if math.isfinite(number) else None
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise TypeError(f"audit field {name}: {type(value).__name__} is not an audit value")
    # Lone surrogates (undecodable bytes in a path) cannot be stored as UTF-8: escape them.
    return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode()
