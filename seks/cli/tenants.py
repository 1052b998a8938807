"""``seks tenant create|list|rm``."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from seks.cli.common import emit_json, open_vault
from seks.store import tenants


@click.group()
def tenant() -> None:
    """Create, list and remove tenants: separate sets of secrets, agents and tokens.

    Each tenant has its own encryption key; a token of one tenant never reaches another
    tenant's secrets. Other commands take --tenant NAME (default: default).

    \b
    Example:
      seks tenant create acme
      seks secret add openai-acme --provider openai --tenant acme
    """


@tenant.command("create")
@click.argument("name")
def tenant_create(name: str) -> None:
    """Create a tenant with its own key.

    \b
    Example:
      seks tenant create acme
    """
    with open_vault() as vault:
        vault.create_tenant(name)
    click.echo(f"created tenant {name}")


@tenant.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def tenant_list(as_json: bool) -> None:
    """List tenants with how many secrets and agents each holds (never their names).

    \b
    Example:
      seks tenant list
    """
    with open_vault() as vault:
        items = tenants.list_tenants(vault)
    if as_json:
        emit_json(items)
        return
    for t in items:
        when = datetime.fromtimestamp(t.created_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        click.echo(f"{t.name}\t{t.secrets} secret(s)\t{t.agents} agent(s)\t{when}")


@tenant.command("rm")
@click.argument("name")
@click.option(
    "--force",
    is_flag=True,
    help="Also delete its secrets and agents, and revoke their tokens.",
)
def tenant_rm(name: str, force: bool) -> None:
    """Remove a tenant and its key. Refused while it holds secrets or agents, unless --force.

    \b
    Example:
      seks tenant rm acme --force
    """
    with open_vault() as vault:
        removed = tenants.remove_tenant(vault, name, force=force)
    click.echo(
        f"removed tenant {name}: {removed.secrets} secret(s), {removed.agents} agent(s), "
        f"{removed.tokens_revoked} token(s) revoked"
    )


COMMANDS = [tenant]
