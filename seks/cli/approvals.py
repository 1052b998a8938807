"""``seks approvals``, ``seks approve`` and ``seks deny``: a person's side of held requests."""

from __future__ import annotations

import time

import click

from seks.cli.common import duration, emit_json, open_vault, tenant_option
from seks.limits import format_duration
from seks.store import approvals as store
from seks.store import tenants


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@tenant_option
def approvals(as_json: bool, tenant: str) -> None:
    """List requests the proxy is holding for approval, oldest first.

    Each line: id, agent, provider, method, host, path (never a query string) and how long it
    has waited. Decide with `seks approve ID` or `seks deny ID`.

    \b
    Example:
      seks approvals
      seks approvals --json --tenant acme
    """
    now = time.time()
    with open_vault() as vault:
        tenants.require_tenant(vault, tenant)
        pending = store.list_pending(vault.db, tenant=tenant, now=now)
    if as_json:
        emit_json(
            [
                {
                    "id": a.id,
                    "agent": a.agent,
                    "provider": a.provider,
                    "secret": a.secret_name,
                    "method": a.method,
                    "host": a.host,
                    "path": a.path,
                    "client_ip": a.client_ip,
                    "token_id": a.token_id,
                    "requested_at": a.requested_at,
                    "expires_at": a.expires_at,
                    "age": round(now - a.requested_at, 3),
                }
                for a in pending
            ]
        )
        return
    if not pending:
        click.echo("no requests waiting for approval", err=True)
    for a in pending:
        click.echo(
            f"{a.id}\t{a.agent}\t{a.provider}\t{a.method} {a.host}{a.path}"
            f"\twaiting {now - a.requested_at:.0f}s\t(secret {a.secret_name})"
        )


@click.command()
@click.argument("approval_id", metavar="ID")
@click.option(
    "--for",
    "window",
    **duration,
    help="Also let this agent's requests to this secret through for this long (e.g. 30m).",
)
@tenant_option
def approve(approval_id: str, window: float | None, tenant: str) -> None:
    """Let a held request through (ID from `seks approvals`).

    \b
    Example:
      seks approve apr_3kTqE0u9xY
      seks approve apr_3kTqE0u9xY --for 30m
    """
    with open_vault() as vault:
        decided = store.decide(vault, approval_id, grant=True, tenant=tenant, window=window)
    this = decided[0]
    click.echo(f"approved {this.id}: {this.agent} {this.method} {this.host}{this.path}")
    if window is not None:
        others = len(decided) - 1
        click.echo(
            f"{this.agent}'s requests to {this.secret_name} pass for {format_duration(window)}"
            + (f"; released {others} more waiting" if others else "")
        )


@click.command()
@click.argument("approval_id", metavar="ID")
@tenant_option
def deny(approval_id: str, tenant: str) -> None:
    """Refuse a held request (ID from `seks approvals`); the agent gets seks_approval_denied.

    \b
    Example:
      seks deny apr_3kTqE0u9xY
    """
    with open_vault() as vault:
        (this,) = store.decide(vault, approval_id, grant=False, tenant=tenant)
    click.echo(f"denied {this.id}: {this.agent} {this.method} {this.host}{this.path}")


COMMANDS = [approvals, approve, deny]
