"""The audit trail's keyed hash chain: how a row is sealed, and how a run of rows is checked.

Each row's ``chain`` is ``HMAC(chain key, previous row's chain || canonical(row))``, so an
edited, inserted, removed or reordered row breaks the chain at that row. The newest rows have no
successor to betray their removal: a *head* (row count, last id, last chain value), MACed and
kept apart from the table, covers them; an export carries the same facts in its last record.

The canonical form is the row's non-empty columns as text, sorted by name, so it survives a CSV
round trip and a column added later (NULL in older rows) leaves older rows' values unchanged.

All keys come from the audit key (``MasterKey.derive("audit")``): whoever lacks the master key
can neither forge a row nor compute the ``hmac-sha256:`` identifiers stored for tokens and
query strings. Nothing here knows about SQLite.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring_ascii as _json_str

__all__ = [
    "GENESIS",
    "NOT_CHAINED",
    "AuditKeys",
    "ChainReport",
    "Head",
    "Problem",
    "canonical",
    "canonical_items",
    "check_rows",
    "iso_time",
]

GENESIS = "00" * 32  # the "previous chain value" of the very first row
# Export-only columns: derived (time), or the chain itself.
NOT_CHAINED = frozenset({"chain", "prev_chain", "time"})
SEARCH_PREFIX = "hmac-sha256:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# json.dumps(..., separators=(",", ":")) builds a new encoder at every call; this is the same.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
MAX_PROBLEMS = 50  # a report keeps this many; a wholesale rewrite would otherwise list every row


def _text(value: object) -> str:
    if type(value) is str:  # the common case first: this runs for every column of every row
        return value
    if isinstance(value, bool):  # a bool is an int to Python; never a legitimate audit value
        raise TypeError("audit values are text or numbers, not booleans")
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form, which json and csv also write
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"audit values are text or numbers, not {type(value).__name__}")


def canonical(row: Mapping[str, object], names: Sequence[str] | None = None) -> bytes:
    """The bytes a row's chain value covers: every chained, non-empty column, as text.

    ``names``: the row's chained columns, already sorted (a writer knows them; same bytes)."""
    if names is None:
        names = sorted(name for name in row if name not in NOT_CHAINED)
    return canonical_items(zip(names, map(row.get, names), strict=True))


def canonical_items(items: Iterable[tuple[str, object]]) -> bytes:
    """:func:`canonical` of (column, value) pairs already in name order.

    The bytes are exactly ``json.dumps(["seks-audit-row-v1", [[name, text], ...]],
    separators=(",", ":"))`` (ASCII-only, as json writes by default); built from json's own
    string encoder, because the proxy's writer thread runs this for every row, and a
    json.dumps call costs more than the rest of chaining a row together.
    """
    pairs = ",".join(
        f"[{_json_str(name)},{_json_str(_text(value))}]"
        for name, value in items
        if value is not None and value != ""
    )
    return f'["seks-audit-row-v1",[{pairs}]]'.encode()


def iso_time(ts_us: int) -> str:
    """A row's time for people: UTC with microseconds (what `tail` prints and exports carry)."""
    # Integer arithmetic: float seconds would round some microseconds the wrong way.
    return (_EPOCH + timedelta(microseconds=ts_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Head:
    """The facts about the trail kept apart from its rows, so dropped trailing rows show.

    ``base_id``/``base_chain``: the last row removed by an archive (0 and GENESIS if none), i.e.
    what the first row present chains from. ``started_us``: when this chain began.
    """

    rows: int
    base_id: int
    base_chain: str
    last_id: int
    last_chain: str
    started_us: int

    def fields(self) -> tuple[int, int, str, int, str, int]:
        """The values in field order (``dataclasses.astuple`` deep-copies them: slower)."""
        return (
            self.rows,
            self.base_id,
            self.base_chain,
            self.last_id,
            self.last_chain,
            self.started_us,
        )

    def payload(self) -> bytes:
        return _compact_json(["seks-audit-head-v1", *self.fields()]).encode()


class AuditKeys:
    """The audit's subkeys, from the audit key. ``repr`` never shows them."""

    __slots__ = ("_chain", "_export", "_head", "_search")

    # The chain, head and search MACs are keyed HMAC objects, copied for each value: the
    # proxy computes them for every row, and on a busy proxy an HMAC keyed anew (hmac.digest)
    # cost it 23 µs of CPU per row where a copy costs 8 (thread CPU over 2,442 rows).

    def __init__(self, audit_key: bytes) -> None:
        def sub(label: bytes) -> bytes:
            # HMAC as a PRF: the audit key is already a uniformly random HKDF output.
            return hmac.new(audit_key, b"seks-audit/" + label, hashlib.sha256).digest()

        self._chain = hmac.new(sub(b"chain"), digestmod=hashlib.sha256)
        self._head = hmac.new(sub(b"head"), digestmod=hashlib.sha256)
        self._export = sub(b"export")
        self._search = hmac.new(sub(b"search"), digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "AuditKeys(<redacted>)"

    def search_hash(self, value: str) -> str:
        """How a value that identifies but must not be readable (a token, a query string)
        is stored; ``seks audit hash`` prints the same for a person to search with."""
        mac = self._search.copy()
        mac.update(value.encode("utf-8", "surrogateescape"))
        return SEARCH_PREFIX + mac.hexdigest()

    def chain(
        self, prev: str, row: Mapping[str, object], names: Sequence[str] | None = None
    ) -> str:
        return self.chain_canonical(prev, canonical(row, names))

    def chain_canonical(self, prev: str, row_bytes: bytes) -> str:
        """The chain value of a row given as its :func:`canonical` bytes."""
        mac = self._chain.copy()
        mac.update(bytes.fromhex(prev))
        mac.update(row_bytes)
        return mac.hexdigest()

    def head_mac(self, head: Head) -> str:
        mac = self._head.copy()
        mac.update(head.payload())
        return mac.hexdigest()

    def seal_mac(self, seal: Mapping[str, object]) -> str:
        """The MAC of an export's closing record (its row count and chain end points)."""
        payload = json.dumps(["seks-audit-export-v1", sorted(seal.items())], separators=(",", ":"))
        return hmac.new(self._export, payload.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def equal(a: str | None, b: str | None) -> bool:
        return a is not None and b is not None and hmac.compare_digest(a, b)


@dataclass(frozen=True)
class Problem:
    """One finding. ``row_id``: the first row it concerns (None: not about one row)."""

    row_id: int | None
    message: str

    def __str__(self) -> str:
        if self.row_id is None or self.message.startswith("row"):
            return self.message
        return f"row {self.row_id}: {self.message}"


@dataclass
class ChainReport:
    """What a check of a run of rows found. ``ok`` only if nothing at all."""

    rows: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_chain: str | None = None
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0  # found beyond MAX_PROBLEMS

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_id(self) -> int | None:
        ids = [p.row_id for p in self.problems if p.row_id is not None]
        return min(ids) if ids else None

    def add(self, row_id: int | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(row_id, message))
        else:
            self.more_problems += 1

    def summary(self) -> str:
        span = f" (ids {self.first_id}-{self.last_id})" if self.rows else ""
        return f"{self.rows} rows{span}"


def check_rows(
    keys: AuditKeys,
    rows: Iterable[Mapping[str, object]],
    *,
    base_id: int,
    base_chain: str,
    report: ChainReport | None = None,
) -> ChainReport:
    """Walk rows in id order from ``base_chain``; every row must carry a chain value that
    follows from the one before. Rows that carry ``prev_chain`` (exports) must name it too.

    After a broken row the walk continues from that row's own stored value, so one edit
    reports one row and the rest of the trail is still judged.
    """
    report = report or ChainReport()
    prev_id, prev_chain = base_id, base_chain
    for row in rows:
        row_id = _row_id(row)
        if row_id is None:
            report.add(None, f"a record after row {prev_id} has no valid id")
            continue
        stored = row.get("chain")
        stored = stored if isinstance(stored, str) and stored else None
        report.rows += 1
        if report.first_id is None:
            report.first_id = row_id
        report.last_id, report.last_chain = row_id, stored
        if row_id <= prev_id and report.rows == 1:
            report.add(row_id, f"comes before the trail's start (row {base_id + 1}): added")
        elif row_id <= prev_id:
            report.add(row_id, f"out of order: comes after row {prev_id} (rows moved or added)")
        elif row_id > prev_id + 1:
            report.add(
                prev_id + 1,
                f"{span(prev_id + 1, row_id - 1)} missing before row {row_id} (removed)",
            )
        elif "prev_chain" in row and not keys.equal(str(row["prev_chain"] or ""), prev_chain):
            report.add(row_id, "does not follow the row before it (rows removed, added or moved)")
        elif stored is None:
            report.add(row_id, "has no chain value (written outside SEKS)")
        elif not keys.equal(keys.chain(prev_chain, row), stored):
            report.add(row_id, "does not match its chain value (edited, added or moved)")
        if "time" in row and row.get("ts_us") not in (None, ""):
            ts = _int(row.get("ts_us"))
            if ts is None or row["time"] != iso_time(ts):
                report.add(row_id, "its time column does not match its ts_us (edited)")
        prev_id = max(prev_id, row_id)
        prev_chain = stored or prev_chain
    return report


def span(first: int, last: int) -> str:
    return f"row {first}" if first == last else f"rows {first}-{last}"


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _row_id(row: Mapping[str, object]) -> int | None:
    return _int(row.get("id"))
