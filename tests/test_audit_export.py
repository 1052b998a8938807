"""Exports an auditor can verify without the vault, and archives that keep the chain whole."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from seks.errors import ConfigError, VaultError
from seks.store import MasterKey, Vault
from seks.store.audit import AuditEvent, verify
from seks.store.audit_chain import AuditKeys
from seks.store.audit_export import (
    archive,
    check_archives,
    create_private,
    export,
    file_sha256,
    read_export,
    verify_export,
)


@pytest.fixture
def trail(vault: Vault) -> Vault:
    """Rows 1-11: tenant.created at T0, then one row every 100 µs (row n at T0 + 100(n-1))."""
    for i in range(10):
        vault.audit.record(
            AuditEvent(
                "request.completed",
                agent="bot",
                provider="openai",
                status=200,
                latency_ms=1.25 + i,
                path=f'/v1/x,"{i}"\n',  # quotes, a comma and a newline survive CSV
                ts_us=t0(vault) + 100 * (i + 1),
            )
        )
    return vault


def t0(vault: Vault) -> int:
    return int(vault.db.execute("SELECT ts_us FROM audit WHERE id = 1").fetchone()[0])


def write_export(vault: Vault, path: Path, fmt: str, **window: int) -> Path:
    with create_private(path) as f:
        export(vault.db, vault.audit.keys, f, fmt, **window)
    return path


def verified(path: Path, keys: AuditKeys) -> tuple[bool, int | None]:
    report, _ = verify_export(path, keys)
    return report.ok, report.first_bad_id


# -- export and verify -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_verifies_on_its_own(trail: Vault, tmp_path: Path, fmt: str) -> None:
    path = write_export(trail, tmp_path / f"all.{fmt}", fmt)

    report, seal = verify_export(path, trail.audit.keys)

    assert report.ok, report.problems
    assert (report.rows, report.first_id, report.last_id) == (11, 1, 11)
    assert seal is not None and seal["rows"] == 11
    records = list(read_export(path))
    assert records[-1]["event"] == "audit.export"
    assert {"prev_chain", "chain", "time"} <= set(records[0])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_time_window_exports_a_contiguous_run(trail: Vault, tmp_path: Path) -> None:
    start = t0(trail)
    path = write_export(
        trail, tmp_path / "w.jsonl", "jsonl", since_us=start + 300, until_us=start + 550
    )

    report, _ = verify_export(path, trail.audit.keys)

    assert report.ok and (report.first_id, report.last_id) == (4, 6)


def test_an_empty_window_is_an_empty_export_that_verifies(trail: Vault, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "none.csv", "csv", since_us=10**18)

    report, seal = verify_export(path, trail.audit.keys)

    assert report.ok and report.rows == 0 and seal is not None


def test_an_export_needs_the_same_master_key(trail: Vault, tmp_path: Path) -> None:
    path = write_export(trail, tmp_path / "all.jsonl", "jsonl")

    report, seal = verify_export(path, AuditKeys(MasterKey.generate().derive("audit")))

    assert not report.ok and seal is None


def edit_jsonl(path: Path, change: Callable[[list[dict[str, object]]], None]) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    change(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def edit_csv(path: Path, change: Callable[[list[dict[str, object]]], None]) -> None:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        records: list[dict[str, object]] = list(reader)
    change(records)
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    path.write_text(out.getvalue())


def set_field(index: int, name: str, value: object) -> Callable[[list[dict[str, object]]], None]:
    return lambda records: records[index].__setitem__(name, value)


def seal_rows(n: int) -> Callable[[list[dict[str, object]]], None]:
    def change(records: list[dict[str, object]]) -> None:
        seal = json.loads(str(records[-1]["detail"]))
        seal["rows"] = n
        records[-1]["detail"] = json.dumps(seal)

    return change


EDITS: dict[str, tuple[Callable[[list[dict[str, object]]], None], int | None]] = {
    "edited status": (set_field(4, "status", 500), 5),
    "edited agent": (set_field(2, "agent", "someone-else"), 3),
    "edited time column": (set_field(6, "time", "2020-01-01T00:00:00.000000Z"), 7),
    "deleted middle row": (lambda r: r.pop(5), 6),
    "swapped rows": (lambda r: r.__setitem__(slice(3, 5), [r[4], r[3]]), 4),
    "duplicated row": (lambda r: r.insert(3, r[3]), 4),
    "dropped trailing rows": (lambda r: r.__delitem__(slice(8, 11)), 9),
    "dropped trailing rows and the seal": (lambda r: r.__delitem__(slice(8, None)), 9),
    "dropped the seal only": (lambda r: r.pop(), 12),
    "edited seal": (seal_rows(10), None),
}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("case", EDITS, ids=list(EDITS))
def test_a_tampered_export_fails_at_its_first_bad_row(
    trail: Vault, tmp_path: Path, fmt: str, case: str
) -> None:
    path = write_export(trail, tmp_path / f"all.{fmt}", fmt)
    change, bad_id = EDITS[case]

    (edit_jsonl if fmt == "jsonl" else edit_csv)(path, change)

    ok, first_bad = verified(path, trail.audit.keys)
    assert not ok
    assert first_bad == bad_id


def test_garbage_is_one_clear_error(tmp_path: Path, trail: Vault) -> None:
    (tmp_path / "x.jsonl").write_text('{"id": 1}\nnot json\n')
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")

    with pytest.raises(ConfigError, match="line 2 is not JSON"):
        verify_export(tmp_path / "x.jsonl", trail.audit.keys)
    with pytest.raises(ConfigError, match="not a SEKS audit export"):
        verify_export(tmp_path / "x.csv", trail.audit.keys)
    with pytest.raises(ConfigError, match="no such file"):
        verify_export(tmp_path / "missing.jsonl", trail.audit.keys)


def test_an_export_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("precious")

    with pytest.raises(ConfigError, match="already exists"):
        create_private(tmp_path / "taken")

    assert (tmp_path / "taken").read_text() == "precious"


# -- archive ---------------------------------------------------------------------------------


def test_archive_moves_the_older_rows_and_the_rest_still_verifies(
    trail: Vault, tmp_path: Path
) -> None:
    out = tmp_path / "old.jsonl"

    result = archive(trail.audit, t0(trail) + 550, out)

    assert result is not None
    assert (result.rows, result.first_id, result.through_id) == (6, 1, 6)
    assert result.sha256 == file_sha256(out)
    ids = [r["id"] for r in trail.db.query("SELECT id FROM audit ORDER BY id")]
    assert ids == [7, 8, 9, 10, 11, 12]
    row = trail.db.execute("SELECT event, detail FROM audit WHERE id = 12").fetchone()
    assert row[0] == "audit.archived"
    facts = json.loads(row[1])
    assert (facts["sha256"], facts["through_id"], facts["rows"]) == (result.sha256, 6, 6)
    report = verify(trail.db, trail.audit.keys)
    assert report.ok, report.problems
    assert verified(out, trail.audit.keys) == (True, None)
    archived = check_archives([out], trail.audit.keys, trail.db.query("SELECT * FROM audit"))
    assert archived[out].ok, archived[out].problems


def test_archiving_twice_chains_the_archives(trail: Vault, tmp_path: Path) -> None:
    first = archive(trail.audit, t0(trail) + 350, tmp_path / "a.jsonl")
    trail.audit.record(AuditEvent("request.completed"))
    second = archive(trail.audit, 10**18, tmp_path / "b.csv", "csv")  # everything, archive row too

    assert first is not None and second is not None
    assert second.first_id == first.through_id + 1
    assert verify(trail.db, trail.audit.keys).ok
    # a.jsonl's archive row now lives in b.csv: both files check out against each other.
    found = check_archives(
        [tmp_path / "a.jsonl", tmp_path / "b.csv"],
        trail.audit.keys,
        trail.db.query("SELECT * FROM audit"),
    )
    assert all(r.ok for r in found.values()), {p: r.problems for p, r in found.items()}
    assert trail.db.execute("SELECT count(*) FROM audit").fetchone()[0] == 1


def test_archive_with_nothing_before_the_date_writes_nothing(trail: Vault, tmp_path: Path) -> None:
    assert archive(trail.audit, 0, tmp_path / "none.jsonl") is None
    assert not (tmp_path / "none.jsonl").exists()


def test_archive_of_a_tampered_trail_removes_nothing(
    trail: Vault, tmp_path: Path, vault_path: Path
) -> None:
    with closing(sqlite3.connect(vault_path, isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET status = 201 WHERE id = 3")
    before = trail.db.execute("SELECT count(*) FROM audit").fetchone()[0]

    with pytest.raises(VaultError, match=r"do not verify .*row 3"):
        archive(trail.audit, t0(trail) + 550, tmp_path / "old.jsonl")

    assert trail.db.execute("SELECT count(*) FROM audit").fetchone()[0] == before
    assert not (tmp_path / "old.jsonl").exists()


def test_an_archive_file_edited_later_is_found(trail: Vault, tmp_path: Path) -> None:
    out = tmp_path / "old.jsonl"
    archive(trail.audit, t0(trail) + 550, out)
    edit_jsonl(out, set_field(2, "agent", "nobody"))

    found = check_archives([out], trail.audit.keys, trail.db.query("SELECT * FROM audit"))

    assert not found[out].ok
    assert found[out].first_bad_id == 3
    assert any("SHA-256" in str(p) for p in found[out].problems)


def test_a_file_that_is_not_the_archive_made_is_found(trail: Vault, tmp_path: Path) -> None:
    archive(trail.audit, t0(trail) + 550, tmp_path / "old.jsonl")
    other = write_export(trail, tmp_path / "other.jsonl", "jsonl")  # valid, but no archive

    found = check_archives([other], trail.audit.keys, trail.db.query("SELECT * FROM audit"))

    assert not found[other].ok
    assert "SHA-256" in str(found[other].problems[0])


def test_archive_takes_only_the_leading_run_of_older_rows(trail: Vault, tmp_path: Path) -> None:
    """Rows from two processes commit slightly out of time order; an archive is a prefix, so
    an old row after a newer one stays (and is archived next time)."""
    late = t0(trail) + 250  # row 12 is older than rows 3-11
    trail.audit.record(AuditEvent("request.completed", ts_us=late))

    result = archive(trail.audit, late + 1, tmp_path / "old.jsonl")

    assert result is not None and result.through_id == 3
    assert trail.db.execute("SELECT min(id) FROM audit").fetchone()[0] == 4


def test_rows_removed_by_another_archive_meanwhile_stop_this_one(trail: Vault) -> None:
    with pytest.raises(VaultError, match="another archive"):
        trail.audit.remove_through(2, 5, "00" * 32)
    with pytest.raises(VaultError, match="changed since it was exported"):
        trail.audit.remove_through(1, 5, "00" * 32)
    assert verify(trail.db, trail.audit.keys).ok
