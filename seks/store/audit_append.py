"""Appending chained rows to the audit table: the part of the audit trail that writes.

The proxy's audit writer process (``seks.store.audit_process``) runs this for every batch, and
:class:`~seks.store.audit.AuditLog` appends through it. Standard library and
``seks.store.audit_chain`` only, so that process imports little beyond it.

Rows go in through the ``audit_append`` view (``seks.store.db``, m008), whose trigger moves the
head with each row if the head is the one the batch follows.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import sqlite3
import time
from dataclasses import dataclass

from seks.errors import AuditUnavailable
from seks.store.audit_chain import AuditKeys, Head, canonical_items
from seks.store.conn import write_tx

__all__ = ["APPEND_COLUMNS", "Appender", "AuditEvent", "HeadSeen", "event_values"]


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
event_values = operator.attrgetter(*_FIELDS)  # an event's values in _FIELDS order
_CHAINED = sorted(["id", *_FIELDS])  # a new row's columns, in canonical order
# Where each of them is in a row as Appender._stored_row builds it (["id", *_FIELDS]).
_CHAINED_AT = [["id", *_FIELDS].index(name) for name in _CHAINED]
APPEND_COLUMNS = ["id", *_FIELDS, "chain", "prev_mac", "head_mac"]  # the audit_append view
HeadSeen = tuple[Head, str]  # the head and its MAC, as a connection last wrote or read them
_ROWS_PER_INSERT = 400  # x 25 columns: well under SQLite's 32766 bound parameters


@functools.cache
def _insert_sql(rows: int) -> str:
    one = f"({', '.join('?' * len(APPEND_COLUMNS))})"
    # Only our own column names go into the string.
    columns = ", ".join(APPEND_COLUMNS)
    return f"INSERT INTO audit_append ({columns}) VALUES {', '.join([one] * rows)}"  # noqa: S608


class Appender:
    """Appends chained rows on one connection and moves the head with them."""

    def __init__(self, conn: sqlite3.Connection, keys: AuditKeys) -> None:
        self.conn = conn
        self.keys = keys
        self._kinds: list[tuple[str, str]] | None = None

    def __repr__(self) -> str:
        return "Appender(<keys redacted>)"

    def append_many(self, events: list[AuditEvent]) -> None:
        """Add chained rows inside the caller's write transaction, and move the head.

        Raises :class:`AuditUnavailable` if the trail has no head (it was removed: appending
        would start a chain nobody could tell from the real one).
        """
        if events:
            self._insert(self.require_head(), events)

    def append_after(self, seen: HeadSeen | None, events: list[AuditEvent]) -> HeadSeen:
        """Append rows and commit them, with no transaction open on this connection.

        ``seen``: the head as this connection left it after its last append. If it is still
        the head, the rows and the head's move are one statement that commits by itself (the
        proxy's audit writer: one call into SQLite per batch). If not (another connection
        appended or archived meanwhile, or ``seen`` is None), that statement fails whole and
        the rows are appended in a write transaction after the head read afresh. Returns the
        head after the rows. Raises :class:`AuditUnavailable` or :class:`sqlite3.Error`.
        """
        if seen is not None and len(events) <= _ROWS_PER_INSERT:
            try:
                return self._insert(seen, events, integrity_error=False)
            except sqlite3.IntegrityError:
                pass  # the head moved: read it and append after it, under the write lock
        with write_tx(self.conn):
            return self._insert(self.require_head(), events)

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
        width = len(APPEND_COLUMNS)
        values[width - 2] = mac  # the first row names the head it follows
        values[-1] = new_mac  # the last row leaves the head MACed
        # One multi-row INSERT, not executemany: the writer thread then gives up and waits
        # for the GIL once per batch instead of once per row (measured under load).
        try:
            for start in range(0, len(events), _ROWS_PER_INSERT):
                chunk = values[start * width : (start + _ROWS_PER_INSERT) * width]
                self.conn.execute(_insert_sql(len(chunk) // width), chunk)
        except sqlite3.IntegrityError as e:
            if not integrity_error:
                raise
            raise AuditUnavailable(
                f"the audit trail has a row after its head's last row {head.last_id} that SEKS "
                "did not write: run `seks audit verify`"
            ) from e
        return new, new_mac

    def require_head(self) -> HeadSeen:
        """The head as stored, with its stored MAC (checked by :func:`verify`, not here)."""
        row = self.conn.execute(
            "SELECT rows, base_id, base_chain, last_id, last_chain, started_us, mac "
            "FROM audit_head WHERE id = 1"
        ).fetchone()
        if row is None:
            raise AuditUnavailable(
                "the audit trail has no head record (it was removed): "
                "run `seks audit verify`; nothing more is written until it is restored"
            )
        return Head(*row[:6]), row[6]

    # -- values as stored ------------------------------------------------------------------

    def _stored_row(self, event: AuditEvent, row_id: int) -> list[object]:
        """The row's values in ``APPEND_COLUMNS`` order (up to the chain), as SQLite will
        store and return them, so its chain value can be checked from what is read back:
        numbers by the column's type, empty text as NULL."""
        row: list[object] = [row_id]
        # The proxy's writer runs this for every row: plain text and whole numbers, the usual
        # values, skip the general conversion (measured: half the cost of chaining a row).
        for (name, kind), value in zip(self._column_kinds(), event_values(event), strict=True):
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
                r[1]: str(r[2]).upper() for r in self.conn.execute("PRAGMA table_info(audit)")
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
