"""``seks audit tail``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import click

from seks.cli.common import open_vault
from seks.store import audit as audit_log

_POLL_S = 0.5


def _format(row: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(row["ts_us"] / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S.%fZ")
    parts = [when, row["event"]]
    for key in (
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
        "actor",
    ):
        if row.get(key) is not None:
            parts.append(f"{key}={row[key]}")
    if row.get("latency_ms") is not None:
        parts.append(f"latency={row['latency_ms']:.1f}ms")
    return " ".join(str(p) for p in parts)


@click.group()
def audit() -> None:
    """Read the audit trail.

    \b
    Example:
      seks audit tail -n 50 --agent research-bot
    """


@audit.command("tail")
@click.option("-n", "count", default=20, show_default=True, type=click.IntRange(min=0))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new rows until Ctrl-C.")
@click.option("--agent", "agent_name", help="Only this agent's rows.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_tail(count: int, follow: bool, agent_name: str | None, as_json: bool) -> None:
    """Show the newest audit rows, oldest first.

    \b
    Example:
      seks audit tail -n 50 --agent research-bot
      seks audit tail -f --json | jq .
    """

    def show(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            click.echo(json.dumps(row) if as_json else _format(row))

    with open_vault() as vault:
        rows = audit_log.tail(vault.db, count, agent=agent_name)
        show(rows)
        if not follow:
            return
        last = rows[-1]["id"] if rows else _last_id(vault)
        try:
            while True:
                time.sleep(_POLL_S)  # polling a WAL database is cheap and needs no writer help
                rows = audit_log.rows_after(vault.db, last, agent=agent_name)
                if rows:
                    show(rows)
                    last = rows[-1]["id"]
        except KeyboardInterrupt:
            return


def _last_id(vault: Any) -> int:
    row = vault.db.execute("SELECT max(id) FROM audit").fetchone()
    return int(row[0] or 0)


COMMANDS = [audit]
