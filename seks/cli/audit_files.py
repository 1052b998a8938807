"""``seks audit export|verify|archive``: the audit trail as files that verify on their own."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from seks.cli.common import home, open_vault, quiet_exit, when
from seks.store import audit as audit_log
from seks.store import audit_export
from seks.store.audit_chain import AuditKeys, ChainReport, iso_time

__all__ = ["audit_archive", "audit_export_cmd", "audit_verify"]


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(audit_export.FORMATS),
    default="jsonl",
    show_default=True,
)
@click.option("--since", **when, help="From the first row at or after this time.")
@click.option("--until", **when, help="To the last row before this time.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="A new file (0600).")
def audit_export_cmd(fmt: str, since: int | None, until: int | None, out: Path | None) -> None:
    """Write audit rows with their chain values, closed by a seal record, so that
    `seks audit verify --file` can check the file on its own (with the master key).

    The rows are contiguous: every row between the first at or after --since and the last
    before --until, even one whose time is slightly out of order.

    \b
    Example:
      seks audit export --since 2026-11-01 --until 2026-12-01 --out nov.jsonl
      seks audit export --format csv --since 7d > week.csv
    """
    with open_vault() as vault:
        if out is None:
            with quiet_exit():  # `| head` is fine
                audit_export.export(
                    vault.db, vault.audit.keys, sys.stdout, fmt, since_us=since, until_us=until
                )
            return
        with audit_export.create_private(out) as f:
            summary = audit_export.export(
                vault.db, vault.audit.keys, f, fmt, since_us=since, until_us=until
            )
    span = f" (ids {summary.first_id}-{summary.last_id})" if summary.rows else ""
    click.echo(f"exported {summary.rows} rows{span} to {out}", err=True)


@click.command("verify")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Check this export on its own (needs only the master key).",
)
@click.option(
    "--archive",
    "archives",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also check this archive file and that the trail records it (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="The findings as one JSON object.")
def audit_verify(file: Path | None, archives: tuple[Path, ...], as_json: bool) -> None:
    """Check the audit trail's chain and head, or an export file; exit 1 at the first finding.

    Finds rows edited, added, removed or moved, and rows dropped from the end, and names the
    first bad row. It cannot tell the whole vault file put back to an older copy.

    \b
    Example:
      seks audit verify
      seks audit verify --file nov.jsonl
      seks audit verify --archive 2026-q3.jsonl
    """
    reports: dict[str, ChainReport] = {}
    if file is not None:
        if archives:
            raise click.UsageError("--file and --archive do not go together")
        keys = AuditKeys(home().master_key().derive("audit"))
        reports[str(file)] = audit_export.verify_export(file, keys)[0]
    else:
        with open_vault() as vault:
            reports["the audit trail"] = audit_log.verify(vault.db, vault.audit.keys)
            if archives:
                recorded = list(
                    vault.db.query(
                        "SELECT detail FROM audit WHERE event = ?", [audit_log.ARCHIVED_EVENT]
                    )
                )
                found = audit_export.check_archives(list(archives), vault.audit.keys, recorded)
                reports.update({str(p): r for p, r in found.items()})
    _report(reports, as_json)


def _report(reports: dict[str, ChainReport], as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    name: {
                        "ok": r.ok,
                        "rows": r.rows,
                        "first_id": r.first_id,
                        "last_id": r.last_id,
                        "last_chain": r.last_chain,
                        "first_bad_id": r.first_bad_id,
                        "problems": [str(p) for p in r.problems],
                        "more_problems": r.more_problems,
                    }
                    for name, r in reports.items()
                }
            )
        )
    bad = [(name, r) for name, r in reports.items() if not r.ok]
    if not as_json:
        for name, r in reports.items():
            if r.ok:
                chain = f", ends with chain {r.last_chain[:16]}…" if r.last_chain else ""
                click.echo(f"OK {name}: {r.summary()}{chain}")
            for problem in r.problems:
                click.echo(f"BAD {name}: {problem}")
            if r.more_problems:
                click.echo(f"BAD {name}: … and {r.more_problems} more")
    if bad:
        name, r = bad[0]
        where = f"first bad row {r.first_bad_id}" if r.first_bad_id is not None else r.problems[0]
        total = len(r.problems) + r.more_problems
        raise click.ClickException(
            f"{name} does not verify: {where} ({total} finding{'s' * (total != 1)})"
        )


@click.command("archive")
@click.option("--before", required=True, **when, help="Move rows older than this.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The archive: a new file (0600).",
)
@click.option(
    "--format", "fmt", type=click.Choice(audit_export.FORMATS), default="jsonl", show_default=True
)
def audit_archive(before: int, out: Path, fmt: str) -> None:
    """Move the oldest rows to a verified export file and leave a row with its SHA-256.

    The rows before --before (the leading run of them) are written to --out, the file is
    verified, and only then are they removed, in one transaction with an `audit.archived`
    row that names the file's SHA-256 and the chain value it ends at. `seks audit verify`
    goes on checking the rest; `--archive FILE` checks the file too.

    \b
    Example:
      seks audit archive --before 2026-10-01 --out audit-2026-q3.jsonl
      seks audit archive --before 90d --out old.jsonl
    """
    with open_vault() as vault:
        result = audit_export.archive(vault.audit, before, out, fmt)
    if result is None:
        click.echo(f"nothing to archive: no rows before {iso_time(before)}")
        return
    click.echo(
        f"archived {result.rows} rows (ids {result.first_id}-{result.through_id}) to {out}, "
        f"sha256 {result.sha256}"
    )
