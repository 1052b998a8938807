"""``seks secret add|list|rm|rotate|approval``."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from seks.cli.common import (
    PROVIDER_CHOICE,
    emit_json,
    open_vault,
    read_aws_value,
    read_secret_value,
    tenant_option,
)
from seks.store import approvals, tenants
from seks.store.vault import APPROVAL_MODES

_approval_choice = click.Choice(APPROVAL_MODES)


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
@click.option(
    "--approval",
    type=_approval_choice,
    default="none",
    show_default=True,
    help="required: every request using it waits for `seks approve`.",
)
@click.option(
    "--aws-regions",
    metavar="LIST",
    help="aws: the regions its tokens may reach, comma-separated (default: any).",
)
@click.option(
    "--aws-services",
    metavar="LIST",
    help="aws: the services its tokens may reach, e.g. s3,sts (default: any).",
)
@click.option("--aws-region", metavar="REGION", help="aws: the region `seks env` gives agents.")
@tenant_option
def secret_add(
    name: str,
    provider: str,
    approval: str,
    aws_regions: str | None,
    aws_services: str | None,
    aws_region: str | None,
    tenant: str,
) -> None:
    """Store a credential. The value comes from a hidden prompt, or stdin when piped.

    An aws secret is an access key id, a secret access key and an optional session token:
    three prompts, or one JSON object on stdin
    {"access_key_id": …, "secret_access_key": …, "session_token": …}.

    \b
    Example:
      seks secret add openai-main --provider openai
      pass show openai | seks secret add openai-main --provider openai
      seks secret add prod-key --provider openai --approval required --tenant acme
      seks secret add aws-dev --provider aws --aws-regions eu-west-1 --aws-services s3,sts
    """
    aws = {"regions": aws_regions, "services": aws_services, "region": aws_region}
    if provider.lower() == "aws":
        value = read_aws_value(name, aws)
    elif any(aws.values()):
        raise click.UsageError("--aws-regions, --aws-services and --aws-region are for aws secrets")
    else:
        value = read_secret_value(f"value for {name}")
    with open_vault() as vault:
        info = vault.add_secret(name, provider.lower(), value, tenant=tenant, approval=approval)
    needs = ", approval required" if info.approval == "required" else ""
    click.echo(f"stored {info.name} ({info.provider}, version {info.version}{needs})")


@secret.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@tenant_option
def secret_list(as_json: bool, tenant: str) -> None:
    """List stored secrets: name, provider, version, created, approval. Never values.

    \b
    Example:
      seks secret list --json
    """
    with open_vault() as vault:
        tenants.require_tenant(vault, tenant)
        items = vault.list_secrets(tenant=tenant)
    if as_json:
        emit_json(items)
        return
    for s in items:
        click.echo(
            f"{s.name}\t{s.provider}\tv{s.version}\t{_when(s.created_at)}\tapproval {s.approval}"
        )


@secret.command("rm")
@click.argument("name")
@tenant_option
def secret_rm(name: str, tenant: str) -> None:
    """Delete a secret and revoke every token bound to it.

    \b
    Example:
      seks secret rm openai-old
    """
    with open_vault() as vault:
        revoked = vault.remove_secret(name, tenant=tenant)
    click.echo(f"removed {name}; revoked {revoked} token(s)")


@secret.command("rotate")
@click.argument("name")
@tenant_option
def secret_rotate(name: str, tenant: str) -> None:
    """Store a new value for a secret. Existing tokens keep working and get the new value.

    \b
    Example:
      seks secret rotate openai-main      # paste the new key at the prompt
    """
    with open_vault() as vault:
        current = vault.get_secret_info(name, tenant=tenant)
    if current.provider == "aws":
        value = read_aws_value(name, {})
    else:
        value = read_secret_value(f"new value for {name}")
    with open_vault() as vault:
        info = vault.rotate_secret(name, value, tenant=tenant)
    click.echo(f"rotated {info.name} to version {info.version}")


@secret.command("approval")
@click.argument("name")
@click.argument("mode", type=_approval_choice)
@tenant_option
def secret_approval(name: str, mode: str, tenant: str) -> None:
    """Set whether requests using a secret wait for a person (required) or not (none).

    \b
    Example:
      seks secret approval prod-key required
    """
    with open_vault() as vault:
        approvals.set_secret_approval(vault, name, mode, tenant=tenant)
    click.echo(f"{name}: approval {mode}")


COMMANDS = [secret]
