"""Checking the whole audit trail in the vault: every row against its chain, the end against the
head, and the start against the newest archive row. (Exported files: seks.store.audit_export.)"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from seks.store.audit_chain import GENESIS, AuditKeys, ChainReport, Head, check_rows, span
from seks.store.audit_read import read_snapshot

__all__ = ["ARCHIVED_EVENT", "verify"]

ARCHIVED_EVENT = "audit.archived"


def verify(db: sqlite_utils.Database, keys: AuditKeys) -> ChainReport:
    """Check the whole trail against its chain and its head, in one consistent snapshot."""
    report = ChainReport()
    with read_snapshot(db):
        row = db.execute(
            "SELECT rows, base_id, base_chain, last_id, last_chain, started_us, mac "
            "FROM audit_head WHERE id = 1"
        ).fetchone()
        if row is None:
            report.add(None, "the head record is missing (removed): the end cannot be checked")
            head = Head(0, 0, GENESIS, 0, GENESIS, 0)
        else:
            head = Head(*row[:6])
            if not keys.equal(keys.head_mac(head), row[6]):
                report.add(None, "the head record does not match its MAC (edited)")
        check_rows(
            keys,
            db.query("SELECT * FROM audit ORDER BY id"),
            base_id=head.base_id,
            base_chain=head.base_chain,
            report=report,
        )
        if row is not None:
            _check_head(report, head)
            _check_base(db, report, head)
    return report


def _check_head(report: ChainReport, head: Head) -> None:
    last = report.last_id if report.last_id is not None else head.base_id
    if last < head.last_id:
        report.add(
            last + 1,
            f"{span(last + 1, head.last_id)} missing from the end "
            f"(the head says the trail ends at row {head.last_id})",
        )
    elif last > head.last_id:
        report.add(
            head.last_id + 1,
            f"rows after row {head.last_id} were not written by SEKS (the head ends there)",
        )
    elif report.rows != head.rows:
        report.add(None, f"the trail holds {report.rows} rows where the head counts {head.rows}")
    elif report.rows and not AuditKeys.equal(report.last_chain, head.last_chain):
        report.add(last, "the last row is not the one the head names (replaced)")


def _check_base(db: sqlite_utils.Database, report: ChainReport, head: Head) -> None:
    """The newest archive row must name the point the trail now starts from."""
    if head.base_id == 0:
        return
    row = db.execute(
        "SELECT id, detail FROM audit WHERE event = ? ORDER BY id DESC LIMIT 1", [ARCHIVED_EVENT]
    ).fetchone()
    facts = detail_facts(row[1]) if row else {}
    if facts.get("through_id") != head.base_id or facts.get("chain") != head.base_chain:
        report.add(
            head.base_id + 1 if row is None else int(row[0]),
            f"the trail starts after row {head.base_id}, but no archive row says so",
        )


def detail_facts(text: object) -> dict[str, Any]:
    """A row's ``detail`` JSON object; empty if it is none (missing, not JSON, not an object)."""
    try:
        value = json.loads(str(text))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
