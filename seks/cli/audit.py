"""``seks audit``: read, follow, export, verify, count and archive the audit trail."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from seks.cli.audit_files import audit_archive, audit_export_cmd, audit_verify
from seks.cli.common import home, open_vault, quiet_exit, when
from seks.store import audit as audit_log
from seks.store.audit_chain import AuditKeys, iso_time
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

    with quiet_exit(), open_vault() as vault:
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


for _command in (audit_export_cmd, audit_verify, audit_archive):
    audit.add_command(_command)

COMMANDS = [audit]
