"""Exports and archives of the audit trail that can be verified on their own.

An export is a contiguous run of rows, each with its stored ``chain`` value and the ``prev_chain``
it follows from, closed by a *seal* record (``event`` = ``audit.export``) whose MAC covers the
row count and the chain's two end points. With the master key, :func:`verify_export` then tells
an intact file from one with a row edited, added, removed, moved or cut off the end, without the
vault. JSON Lines or CSV; the seal is the last line of either.

Archiving (:func:`archive`) writes such an export of the oldest rows, verifies the file, and only
then removes those rows and appends an ``audit.archived`` row carrying the file's SHA-256 and the
chain value it ends at, in one transaction: the rest of the trail still verifies from there.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sqlite_utils

from seks.errors import ConfigError, VaultError
from seks.store.audit import (
    ARCHIVED_EVENT,
    AuditEvent,
    AuditLog,
    detail_json,
    os_user,
    read_snapshot,
    select_rows,
)
from seks.store.audit_chain import GENESIS, AuditKeys, ChainReport, check_rows, iso_time, span
from seks.store.audit_verify import detail_facts
from seks.store.db import write_tx

__all__ = [
    "FORMATS",
    "SEAL_EVENT",
    "ArchiveResult",
    "ExportSummary",
    "archive",
    "check_archives",
    "create_private",
    "export",
    "read_export",
    "verify_export",
]

FORMATS = ("jsonl", "csv")
SEAL_EVENT = "audit.export"
SEAL_FORMAT = "seks-audit-export-v1"


@dataclass(frozen=True)
class ExportSummary:
    rows: int
    first_id: int | None
    last_id: int | None
    prev_chain: str
    last_chain: str


@dataclass(frozen=True)
class ArchiveResult:
    path: Path
    sha256: str
    rows: int
    first_id: int
    through_id: int


# -- writing ---------------------------------------------------------------------------------


def create_private(path: Path) -> IO[str]:
    """A new file, owner-only, never replacing one (an archive may be the only copy)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists: choose a new file name") from None
    except OSError as e:
        raise ConfigError(f"cannot create {path}: {e.strerror}") from None
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def export(
    db: sqlite_utils.Database,
    keys: AuditKeys,
    out: IO[str],
    fmt: str,
    *,
    since_us: int | None = None,
    until_us: int | None = None,
    now_us: int | None = None,
) -> ExportSummary:
    """Write the rows from the first at or after ``since_us`` to the last before ``until_us``
    (every row between them, so the run is contiguous and its chain checkable)."""
    with read_snapshot(db):
        first = _scalar(db, "SELECT min(id) FROM audit WHERE ts_us >= ?", since_us, "min")
        last = _scalar(db, "SELECT max(id) FROM audit WHERE ts_us < ?", until_us, "max")
        if first is None or last is None or first > last:
            first, last = 1, 0  # nothing in range
        window = {"since_us": since_us, "until_us": until_us}
        return _write(db, keys, out, fmt, first, last, window, now_us)


def _scalar(db: sqlite_utils.Database, sql: str, bound: int | None, agg: str) -> int | None:
    if bound is None:
        row = db.execute(f"SELECT {agg}(id) FROM audit").fetchone()  # noqa: S608
    else:
        row = db.execute(sql, [bound]).fetchone()
    return None if row[0] is None else int(row[0])


def _prev_chain(db: sqlite_utils.Database, first_id: int) -> str:
    row = db.execute(
        "SELECT chain FROM audit WHERE id < ? ORDER BY id DESC LIMIT 1", [first_id]
    ).fetchone()
    if row is not None:
        return str(row[0] or "")
    head = db.execute("SELECT base_chain FROM audit_head WHERE id = 1").fetchone()
    return str(head[0]) if head else GENESIS


def _write(
    db: sqlite_utils.Database,
    keys: AuditKeys,
    out: IO[str],
    fmt: str,
    first_id: int,
    last_id: int,
    extra: Mapping[str, object],
    now_us: int | None,
) -> ExportSummary:
    if fmt not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    names = [r[1] for r in db.execute("PRAGMA table_info(audit)")]
    columns = ["id", "time", *(n for n in names if n not in ("id", "chain")), "prev_chain", "chain"]
    writer = _RecordWriter(out, fmt, columns)
    prev = start = _prev_chain(db, first_id) if first_id <= last_id else GENESIS
    count, seen_first, seen_last = 0, None, None
    for row in select_rows(db, first_id, last_id):
        writer.write({**row, "time": iso_time(int(row["ts_us"])), "prev_chain": prev})
        prev = str(row.get("chain") or "")
        count += 1
        seen_first = row["id"] if seen_first is None else seen_first
        seen_last = row["id"]
    seal: dict[str, object] = {
        "format": SEAL_FORMAT,
        "rows": count,
        # The range asked for, not the rows found: a row missing at either end then shows.
        "first_id": first_id if count else None,
        "last_id": last_id if count else None,
        "prev_chain": start,
        "last_chain": prev,
        "exported_at_us": time.time_ns() // 1000 if now_us is None else now_us,
        **extra,
    }
    writer.write({"event": SEAL_EVENT, "detail": detail_json(**seal), "chain": keys.seal_mac(seal)})
    out.flush()
    return ExportSummary(count, seen_first, seen_last, start, prev)


class _RecordWriter:
    def __init__(self, out: IO[str], fmt: str, columns: list[str]) -> None:
        self.out, self.fmt, self.columns = out, fmt, columns
        if fmt == "csv":
            self.csv = csv.writer(out, lineterminator="\n")
            self.csv.writerow(columns)

    def write(self, record: Mapping[str, object]) -> None:
        if self.fmt == "csv":
            self.csv.writerow(["" if record.get(c) is None else record[c] for c in self.columns])
        else:
            self.out.write(json.dumps({c: record.get(c) for c in self.columns}) + "\n")


# -- reading and verifying -------------------------------------------------------------------


def read_export(path: Path) -> Iterator[dict[str, Any]]:
    """The records of an export file (JSON Lines or CSV, told apart by the first character)."""
    with path.open(encoding="utf-8", newline="") as f:
        first = f.read(1)
        f.seek(0)
        if first == "{":
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    raise ConfigError(f"{path}: line {n} is not JSON") from None
                if not isinstance(record, dict):
                    raise ConfigError(f"{path}: line {n} is not a JSON object")
                yield record
        else:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"id", "chain"} <= set(reader.fieldnames):
                raise ConfigError(f"{path} is not a SEKS audit export (no id and chain columns)")
            try:
                yield from reader
            except csv.Error as e:
                raise ConfigError(f"{path}: line {reader.line_num}: {e}") from None


def _seal_of(record: Mapping[str, Any]) -> dict[str, Any] | None:
    if record.get("event") != SEAL_EVENT or record.get("id") not in (None, ""):
        return None
    try:
        seal = json.loads(str(record.get("detail")))
    except ValueError:
        return None
    return seal if isinstance(seal, dict) and seal.get("format") == SEAL_FORMAT else None


def verify_export(path: Path, keys: AuditKeys) -> tuple[ChainReport, dict[str, Any] | None]:
    """Check an export on its own: every row's chain, and the seal's count and end points.
    Returns the report and the seal (None if the file has none that verifies)."""
    try:
        last: dict[str, Any] | None = None
        for record in read_export(path):
            last = record
    except FileNotFoundError:
        raise ConfigError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    report = ChainReport()
    seal = _seal_of(last) if last is not None else None
    if seal is not None and not keys.equal(keys.seal_mac(seal), str(last.get("chain"))):  # type: ignore[union-attr]
        report.add(None, "the closing seal does not match its MAC (edited, or another master key)")
        seal = None
    rows = (r for r in read_export(path) if _seal_of(r) is None)
    if seal is None:
        first = next(read_export(path), None)
        start = str(first.get("prev_chain") or GENESIS) if first else GENESIS
        first_id = _int(first.get("id")) if first else None
        check_rows(keys, rows, base_id=(first_id or 1) - 1, base_chain=start, report=report)
        if not any(p.message.startswith("the closing seal") for p in report.problems):
            after = report.last_id if report.last_id is not None else 0
            report.add(after + 1, "the export has no closing seal: it was cut short here")
        return report, None
    first_id = _int(seal.get("first_id"))
    base_id = first_id - 1 if first_id is not None else 0
    check_rows(keys, rows, base_id=base_id, base_chain=str(seal["prev_chain"]), report=report)
    _compare_seal(report, seal)
    return report, seal


def _compare_seal(report: ChainReport, seal: Mapping[str, Any]) -> None:
    last_id, first_id = _int(seal.get("last_id")), _int(seal.get("first_id"))
    if last_id is not None and (report.last_id or 0) < last_id:
        after = (report.last_id or (first_id or 1) - 1) + 1
        report.add(
            after, f"{span(after, last_id)} missing from the end (the seal ends at row {last_id})"
        )
    elif last_id is not None and report.last_id is not None and report.last_id > last_id:
        report.add(last_id + 1, f"rows after row {last_id} were added (the seal ends there)")
    elif report.rows != seal.get("rows"):
        report.add(
            None, f"the file holds {report.rows} rows where the seal counts {seal.get('rows')}"
        )
    elif report.rows and not AuditKeys.equal(report.last_chain, str(seal.get("last_chain"))):
        report.add(report.last_id, "the last row is not the one the seal names (replaced)")


def _int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- archiving -------------------------------------------------------------------------------


def archive(
    log: AuditLog, before_us: int, out: Path, fmt: str = "jsonl", *, now_us: int | None = None
) -> ArchiveResult | None:
    """Move the rows before ``before_us`` (the leading run of them) to ``out``, verified, and
    leave a row naming the file. Returns None, writing nothing, if there is nothing to move."""
    db, keys = log.db, log.keys
    with read_snapshot(db):
        head = log.head()
        if head is None:
            raise VaultError("the audit trail has no head record: run `seks audit verify`")
        newer = _scalar(db, "SELECT min(id) FROM audit WHERE ts_us >= ?", before_us, "min")
        through = head.last_id if newer is None else newer - 1
        if through <= head.base_id:
            return None
        with create_private(out) as f:
            written = _write(
                db,
                keys,
                f,
                fmt,
                head.base_id + 1,
                through,
                {"archive_before_us": before_us},
                now_us,
            )
            f.flush()
            os.fsync(f.fileno())
    try:
        report, _ = verify_export(out, keys)
        if not report.ok or written.last_id != through:
            found = report.problems[0] if report.problems else "incomplete"
            raise VaultError(
                f"the rows to archive do not verify ({found}): nothing was removed; "
                "run `seks audit verify`"
            )
        sha = file_sha256(out)
        with write_tx(db):
            removed = log.remove_through(head.base_id + 1, through, written.last_chain)
            log.append(
                AuditEvent(
                    ARCHIVED_EVENT,
                    actor=os_user(),
                    detail=detail_json(
                        file=out.name,
                        sha256=sha,
                        rows=removed,
                        first_id=head.base_id + 1,
                        through_id=through,
                        chain=written.last_chain,
                        before_us=before_us,
                    ),
                )
            )
    except BaseException:
        with suppress(OSError):
            out.unlink()  # the rows are still in the vault: the file would only confuse
        raise
    return ArchiveResult(out, sha, removed, head.base_id + 1, through)


def check_archives(
    paths: list[Path], keys: AuditKeys, recorded: Iterable[Mapping[str, Any]]
) -> dict[Path, ChainReport]:
    """Verify archive files, each on its own and against the ``audit.archived`` row that
    names its SHA-256 (in the vault, or in another of the files, when a later archive took it).
    ``recorded``: the archive rows in the vault."""
    reports: dict[Path, ChainReport] = {}
    rows = list(recorded)
    for path in paths:
        rows.extend(r for r in read_export(path) if r.get("event") == ARCHIVED_EVENT)
    by_sha: dict[str, dict[str, Any]] = {}
    for row in rows:
        facts = detail_facts(row.get("detail"))
        if isinstance(facts.get("sha256"), str):
            by_sha[facts["sha256"]] = facts
    for path in paths:
        report, seal = verify_export(path, keys)
        named = by_sha.get(file_sha256(path))
        if named is None:
            report.add(
                None, "no audit.archived row records this file's SHA-256 (not the archive made)"
            )
        elif seal is not None and (
            named.get("through_id") != seal.get("last_id")
            or named.get("chain") != seal.get("last_chain")
        ):
            report.add(None, "the audit.archived row names another end point than the file's seal")
        reports[path] = report
    return reports
