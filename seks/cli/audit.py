"""``seks audit``: read, follow, export, verify, count and archive the audit trail."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from seks.cli.common import home, open_vault, parse_duration
from seks.store import audit as audit_log
from seks.store import audit_export
from seks.store.audit_chain import AuditKeys, ChainReport, iso_time
from seks.store.tokens import TOKEN_CANDIDATE_RE

_POLL_S = 0.25
_TEXT_FIELDS = (
    "decision",
    "reason",
    "agent",
    "provider",
    "secret_name",
    "token_id",
    "client_ip",
    "method",
    "host",
    "path",
    "status",
    "bytes",
    "actor",
    "tenant",
    "detail",
)
WHEN_FORMS = (
    "an ISO date or time (2026-11-03, 2026-11-03T14:00, UTC unless it names an offset) "
    "or a duration ago (30s, 15m, 8h, 7d)"
)


# -- input -----------------------------------------------------------------------------------


def parse_when(value: str, *, now: float | None = None) -> int:
    """A moment as µs since the epoch: an ISO date/time (UTC unless it says otherwise), or a
    duration meaning that long ago."""
    now = time.time() if now is None else now
    try:
        return int((now - parse_duration(value)) * 1_000_000)
    except click.BadParameter:
        pass
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not {WHEN_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def _when_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else parse_when(value)


when: dict[str, Any] = {"type": str, "callback": _when_option, "metavar": "WHEN"}


# -- output ----------------------------------------------------------------------------------

_EVENT_COLOURS = {"request.denied": "red", "response.redacted": "yellow"}


def _style_event(row: dict[str, Any]) -> str:
    event = str(row["event"])
    if event in _EVENT_COLOURS:
        colour = _EVENT_COLOURS[event]
    elif row.get("decision") == "deny":
        colour = "red"
    elif event.startswith("request."):
        colour = "green"
    elif event.startswith("audit."):
        colour = "magenta"
    else:
        colour = "cyan"  # a change made from the CLI
    return click.style(event, fg=colour, bold=True)


def format_row(row: dict[str, Any]) -> str:
    """One row as a line of text; colour codes are removed by click.echo off a terminal."""
    parts = [click.style(iso_time(int(row["ts_us"])), dim=True), _style_event(row)]
    for key in _TEXT_FIELDS:
        value = row.get(key)
        if value is None or value == "":
            continue
        text = f"{key}={value}"
        if key == "decision":
            text = click.style(text, fg="red" if value == "deny" else "green")
        parts.append(text)
    if row.get("latency_ms") is not None:
        parts.append(f"latency={row['latency_ms']:.1f}ms")
    return " ".join(parts)


@contextmanager
def _quiet_exit() -> Iterator[None]:
    """Ctrl-C ends a command quietly with exit 0; so does a reader that went away (`| head`)."""
    try:
        yield
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# -- commands --------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """Read, follow, export, verify and archive the audit trail.

    Every decision of the proxy and every change made with the CLI leaves one row. Rows are
    chained with a key derived from the master key, so `seks audit verify` finds a row that
    was edited, added, removed or moved, and rows dropped from the end.

    \b
    Example:
      seks audit tail -n 50 --agent research-bot
      seks audit verify
    """


@audit.command("tail")
@click.option("-n", "count", default=20, show_default=True, type=click.IntRange(min=0))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new rows until Ctrl-C.")
@click.option("--agent", "agents", multiple=True, help="Only this agent's rows (repeatable).")
@click.option("--provider", "providers", multiple=True, help="Only this provider's rows.")
@click.option("--event", "events", multiple=True, help="Only these events; globs: 'request.*'.")
@click.option("--decision", "decisions", multiple=True, help="Only 'allow' or 'deny' rows.")
@click.option("--since", **when, help="Only rows from then on: ISO date/time, or 15m ago.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--color/--no-color", default=None, help="Colour (default: only on a terminal).")
def audit_tail(
    count: int,
    follow: bool,
    agents: tuple[str, ...],
    providers: tuple[str, ...],
    events: tuple[str, ...],
    decisions: tuple[str, ...],
    since: int | None,
    as_json: bool,
    color: bool | None,
) -> None:
    """Show the newest audit rows, oldest first; with -f, follow new ones as they commit.

    \b
    Example:
      seks audit tail -n 50 --agent research-bot
      seks audit tail -f --event 'request.*' --decision deny
      seks audit tail --since 15m --json | jq .
    """
    where = audit_log.AuditFilter(agents, providers, events, decisions, since_us=since)

    def show(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            click.echo(json.dumps(row) if as_json else format_row(row), color=color)

    with _quiet_exit(), open_vault() as vault:
        db = vault.db
        # Read before the snapshot: a commit in between is then seen as news, not missed.
        seen = db.execute("PRAGMA data_version").fetchone()[0]
        with audit_log.read_snapshot(db):  # rows and the id to follow from, as of one moment
            show(audit_log.tail(db, count, where=where))
            (last,) = db.execute("SELECT coalesce(max(id), 0) FROM audit").fetchone()
        while follow:
            time.sleep(_POLL_S)
            # data_version changes when another connection commits: a cheap "anything new?"
            version = db.execute("PRAGMA data_version").fetchone()[0]
            if version == seen:
                continue
            seen = version
            with audit_log.read_snapshot(db):
                rows = audit_log.rows_after(db, last, where=where)
                (last,) = db.execute("SELECT coalesce(max(id), ?) FROM audit", [last]).fetchone()
            show(rows)


@audit.command("export")
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
            with _quiet_exit():  # `| head` is fine
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


@audit.command("verify")
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


@audit.command("stats")
@click.option("--since", **when, help="Only rows from then on: ISO date/time, or 7d ago.")
@click.option("--json", "as_json", is_flag=True, help="The counts as one JSON object.")
def audit_stats(since: int | None, as_json: bool) -> None:
    """Count audit rows per agent, provider, decision and event.

    \b
    Example:
      seks audit stats --since 24h
    """
    with open_vault() as vault:
        counts = audit_log.stats(vault.db, since_us=since)
    for column in ("agent", "provider", "decision", "event"):  # rows without one: "-"
        counts[column] = {("-" if k is None else k): n for k, n in counts[column].items()}
    if as_json:
        click.echo(json.dumps(counts))
        return
    click.echo(f"{counts['rows']} rows" + (f" since {iso_time(since)}" if since else ""))
    for column in ("agent", "provider", "decision", "event"):
        click.echo(f"\nby {column}:")
        for key, n in counts[column].items():
            click.echo(f"  {n:>8}  {key}")


@audit.command("archive")
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


@audit.command("hash")
@click.argument("value", required=False)
def audit_hash(value: str | None) -> None:
    """Print the keyed hash under which the audit stores a token or a query string.

    Search the audit for it (`seks audit tail --json -n 100000 | grep HASH`). A token is a
    credential: give it on stdin or at the hidden prompt, never as an argument (argv shows in
    `ps` and shell history). A query string without a token may be an argument.

    \b
    Example:
      seks audit hash                       # paste the token at the prompt
      pbpaste | seks audit hash
      seks audit hash 'model=gpt-4o&limit=5'
    """
    if value is not None and TOKEN_CANDIDATE_RE.search(value):
        raise click.ClickException(
            "a token is a credential: give it on stdin or at the prompt, not as an argument"
        )
    if value is None:
        value = _read_hidden("Value to hash")
    keys = AuditKeys(home().master_key().derive("audit"))
    click.echo(keys.search_hash(value))


def _read_hidden(prompt: str) -> str:
    """Like a secret: a hidden prompt on a terminal, else stdin (one trailing newline off)."""
    if sys.stdin.isatty():
        value = str(click.prompt(prompt, hide_input=True))
    else:
        value = sys.stdin.read()
        if value.endswith("\n"):
            value = value[:-1].removesuffix("\r")
    if not value:
        raise click.ClickException("nothing to hash: the value is empty")
    return value


COMMANDS = [audit]
