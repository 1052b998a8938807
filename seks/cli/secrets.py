"""``seks secret add|list|rm|rotate``."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from seks.cli.common import PROVIDER_CHOICE, emit_json, open_vault, read_secret_value


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@click.group()
def secret() -> None:
    """Store, list, rotate and remove real credentials.

    \b
    Example:
      seks secret add openai-main --provider openai
      seks secret list
    """


@secret.command("add")
@click.argument("name")
@click.option("--provider", "-p", required=True, type=PROVIDER_CHOICE, help="Who the key is for.")
def secret_add(name: str, provider: str) -> None:
    """Store a credential. The value comes from a hidden prompt, or stdin when piped.

    \b
    Example:
      seks secret add openai-main --provider openai
      pass show openai | seks secret add openai-main --provider openai
    """
    value = read_secret_value(f"value for {name}")
    with open_vault() as vault:
        info = vault.add_secret(name, provider.lower(), value)
    click.echo(f"stored {info.name} ({info.provider}, version {info.version})")


@secret.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
def secret_list(as_json: bool) -> None:
    """List stored secrets: name, provider, version, created. Never values.

    \b
    Example:
      seks secret list --json
    """
    with open_vault() as vault:
        items = vault.list_secrets()
    if as_json:
        emit_json(items)
        return
    for s in items:
        click.echo(f"{s.name}\t{s.provider}\tv{s.version}\t{_when(s.created_at)}")


@secret.command("rm")
@click.argument("name")
def secret_rm(name: str) -> None:
    """Delete a secret and revoke every token bound to it.

    \b
    Example:
      seks secret rm openai-old
    """
    with open_vault() as vault:
        revoked = vault.remove_secret(name)
    click.echo(f"removed {name}; revoked {revoked} token(s)")


@secret.command("rotate")
@click.argument("name")
def secret_rotate(name: str) -> None:
    """Store a new value for a secret. Existing tokens keep working and get the new value.

    \b
    Example:
      seks secret rotate openai-main      # paste the new key at the prompt
    """
    value = read_secret_value(f"new value for {name}")
    with open_vault() as vault:
        info = vault.rotate_secret(name, value)
    click.echo(f"rotated {info.name} to version {info.version}")


COMMANDS = [secret]
