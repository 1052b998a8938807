"""``seks agent …`` and ``seks token …``."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime

import click

from seks.cli.common import PROVIDER_CHOICE, duration, emit_json, open_vault


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group()
def agent() -> None:
    """Create, list and remove agents (the holders of fake tokens).

    \b
    Example:
      seks agent create research-bot
    """


@agent.command("create")
@click.argument("name")
def agent_create(name: str) -> None:
    """Create an agent.

    \b
    Example:
      seks agent create research-bot
    """
    with open_vault() as vault:
        vault.create_agent(name)
    click.echo(f"created agent {name}")


@agent.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def agent_list(as_json: bool) -> None:
    """List agents.

    \b
    Example:
      seks agent list
    """
    with open_vault() as vault:
        items = vault.list_agents()
    if as_json:
        emit_json(items)
        return
    for a in items:
        click.echo(f"{a.name}\t{_when(a.created_at)}")


@agent.command("rm")
@click.argument("name")
def agent_rm(name: str) -> None:
    """Remove an agent and revoke all its tokens.

    \b
    Example:
      seks agent rm research-bot
    """
    with open_vault() as vault:
        revoked = vault.remove_agent(name)
    click.echo(f"removed agent {name}; revoked {revoked} token(s)")


@click.group()
def token() -> None:
    """Issue, list and revoke fake tokens.

    \b
    Example:
      seks token issue --agent research-bot --provider openai --ttl 8h
      seks token list --agent research-bot
    """


@token.command("issue")
@click.option("--agent", "agent_name", required=True, help="The agent that will hold it.")
@click.option("--provider", "-p", required=True, type=PROVIDER_CHOICE)
@click.option("--secret", "secret_name", help="Which secret (needed if the provider has several).")
@click.option("--ttl", **duration, help="Lifetime: 30s, 15m, 8h, 7d. Default: no expiry.")
def token_issue(agent_name: str, provider: str, secret_name: str | None, ttl: float | None) -> None:
    """Mint a fake token and print it, once, alone on a line (so $(…) works).

    \b
    Example:
      export OPENAI_API_KEY=$(seks token issue --agent research-bot --provider openai --ttl 8h)
    """
    with open_vault() as vault:
        value, _ = vault.issue_token(agent_name, provider.lower(), secret_name=secret_name, ttl=ttl)
    click.echo(value)


@token.command("list")
@click.option("--agent", "agent_name", help="Only this agent's tokens.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def token_list(agent_name: str | None, as_json: bool) -> None:
    """List tokens by public id (never the tokens themselves).

    \b
    Example:
      seks token list --agent research-bot
    """
    now = time.time()
    with open_vault() as vault:
        items = vault.list_tokens(agent=agent_name)
    if as_json:
        emit_json([{**asdict(t), "state": t.state(now)} for t in items])
        return
    for t in items:
        click.echo(
            f"{t.id}\t{t.agent}\t{t.provider}\t{t.secret_name}\t{t.state(now)}"
            f"\texpires {_when(t.expires_at)}"
        )


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its public id (from `seks token list`).

    \b
    Example:
      seks token revoke tok_3kTqE0u9xYb2LmNa
    """
    with open_vault() as vault:
        vault.revoke_token(token_id)
    click.echo(f"revoked {token_id}")


COMMANDS = [agent, token]
