"""``seks agent …`` and ``seks token …``."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict
from datetime import UTC, datetime

import click

from seks.cli.common import (
    PROVIDER_CHOICE,
    duration,
    emit_json,
    load_cli_config,
    open_vault,
    option_errors,
    tenant_option,
)
from seks.errors import ConfigError
from seks.limits import TokenLimits, parse_cidr, parse_rate, parse_scope
from seks.store import proxy_auth, tenants
from seks.store.aws_credentials import REGION_RE, SERVICE_RE, parse_list
from seks.store.tokens import TokenInfo


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
@click.option(
    "--proxy-auth",
    "proxy_auth_",
    is_flag=True,
    help="Its tokens work only through proxy connections that log in as it; prints the "
    "agent's proxy password once.",
)
@tenant_option
def agent_create(name: str, proxy_auth_: bool, tenant: str) -> None:
    """Create an agent.

    With --proxy-auth the agent's proxy password is printed once, alone on stdout; `seks env`
    and `seks exec` put fresh session credentials into the proxy URL themselves.

    \b
    Example:
      seks agent create research-bot
      seks agent create ci-bot --proxy-auth --tenant acme
    """
    with open_vault() as vault:
        vault.create_agent(name, tenant=tenant, proxy_auth=proxy_auth_)
        password = (
            proxy_auth.issue_password(
                vault.db, vault.audit, vault.proxy_auth_key, name, tenant=tenant
            )
            if proxy_auth_
            else None
        )
    if password is None:
        click.echo(f"created agent {name}")
        return
    click.echo(
        f"created agent {name}; its proxy password (user {name}) follows, shown only now",
        err=True,
    )
    click.echo(password)


@agent.command("password")
@click.argument("name")
@tenant_option
def agent_password(name: str, tenant: str) -> None:
    """Print a new proxy password for an agent, replacing its earlier long-lived ones.

    The agent's tokens then work only through proxy connections that log in as it.

    \b
    Example:
      seks agent password ci-bot
    """
    with open_vault() as vault:
        password = proxy_auth.issue_password(
            vault.db,
            vault.audit,
            vault.proxy_auth_key,
            name,
            tenant=tenant,
            replace_long_lived=True,
        )
    click.echo(f"new proxy password for {name} follows, shown only now", err=True)
    click.echo(password)


@agent.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@tenant_option
def agent_list(as_json: bool, tenant: str) -> None:
    """List agents.

    \b
    Example:
      seks agent list
    """
    with open_vault() as vault:
        tenants.require_tenant(vault, tenant)
        items = vault.list_agents(tenant=tenant)
    if as_json:
        emit_json(items)
        return
    for a in items:
        auth = "proxy auth" if a.proxy_auth else "-"
        click.echo(f"{a.name}\t{_when(a.created_at)}\t{auth}")


@agent.command("rm")
@click.argument("name")
@tenant_option
def agent_rm(name: str, tenant: str) -> None:
    """Remove an agent and revoke all its tokens.

    \b
    Example:
      seks agent rm research-bot
    """
    with open_vault() as vault:
        revoked = vault.remove_agent(name, tenant=tenant)
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
@click.option(
    "--ttl",
    **duration,
    help="Lifetime: 30s, 15m, 8h, 7d. Default: no expiry, or max_token_ttl from the config.",
)
@click.option("--max-uses", type=int, metavar="N", help="Refused after N requests.")
@click.option("--single-use", is_flag=True, help="Same as --max-uses 1.")
@click.option(
    "--allow-ip",
    "allow_ips",
    multiple=True,
    metavar="CIDR",
    help="Only from clients in this network, as the proxy sees them (repeatable).",
)
@click.option(
    "--allow",
    "scopes",
    multiple=True,
    metavar="'METHOD PATH-GLOB'",
    help="Only these requests, e.g. 'POST /v1/chat/*' (repeatable). * stays inside one path "
    "segment, ** spans segments; method * is any.",
)
@click.option("--rate", metavar="N/min", help="At most N requests per minute (also N/s, N/h).")
@click.option(
    "--aws-regions", metavar="LIST", help="aws: only these regions, e.g. eu-west-1,us-east-1."
)
@click.option("--aws-services", metavar="LIST", help="aws: only these services, e.g. s3,sts.")
@tenant_option
def token_issue(
    agent_name: str,
    provider: str,
    secret_name: str | None,
    ttl: float | None,
    max_uses: int | None,
    single_use: bool,
    allow_ips: tuple[str, ...],
    scopes: tuple[str, ...],
    rate: str | None,
    aws_regions: str | None,
    aws_services: str | None,
    tenant: str,
) -> None:
    """Mint a fake token and print it, once, alone on a line (so $(…) works).

    \b
    Example:
      export OPENAI_API_KEY=$(seks token issue --agent research-bot --provider openai --ttl 8h)
      seks token issue --agent bot -p openai --single-use --allow 'POST /v1/chat/completions'
      seks token issue --agent bot -p openai --allow-ip 10.0.0.0/8 --rate 30/min
      seks token issue --agent bot -p aws --aws-regions eu-west-1 --aws-services s3
    """
    if provider.lower() != "aws" and (aws_regions or aws_services):
        raise click.UsageError("--aws-regions and --aws-services are for aws tokens")
    limits = _limits(max_uses, single_use, allow_ips, scopes, rate)
    with option_errors("--aws-regions"):
        regions = parse_list(aws_regions, "regions", REGION_RE)
    with option_errors("--aws-services"):
        services = parse_list(aws_services, "services", SERVICE_RE)
    limits = dataclasses.replace(limits, aws_regions=regions, aws_services=services)
    max_ttl = load_cli_config(None).max_token_ttl
    with open_vault() as vault:
        value, _ = vault.issue_token(
            agent_name,
            provider.lower(),
            secret_name=secret_name,
            ttl=ttl,
            tenant=tenant,
            limits=limits,
            max_ttl=max_ttl,
        )
    click.echo(value)


def _limits(
    max_uses: int | None,
    single_use: bool,
    allow_ips: tuple[str, ...],
    scopes: tuple[str, ...],
    rate: str | None,
) -> TokenLimits:
    if single_use and max_uses not in (None, 1):
        raise ConfigError("--single-use means --max-uses 1: give one or the other")
    with option_errors("--max-uses"):
        TokenLimits.parse(max_uses=1 if single_use else max_uses)
    with option_errors("--allow-ip"):
        networks = [parse_cidr(c) for c in allow_ips]
    with option_errors("--allow"):
        allowed = [parse_scope(s) for s in scopes]
    with option_errors("--rate"):
        per = None if rate is None else str(parse_rate(rate))
    return TokenLimits(
        1 if single_use else max_uses,
        tuple(dict.fromkeys(networks)),
        tuple(dict.fromkeys(allowed)),
        per,
    )


def _limits_text(t: TokenInfo) -> str:
    parts = []
    if t.max_uses is not None:
        parts.append(f"uses {t.uses_left}/{t.max_uses} left")
    if t.allow_ips:
        parts.append("from " + ",".join(t.allow_ips))
    if t.scopes:
        parts.append("allow " + "; ".join(t.scopes))
    if t.rate:
        parts.append(f"rate {t.rate}")
    if t.aws_regions:
        parts.append("regions " + ",".join(t.aws_regions))
    if t.aws_services:
        parts.append("services " + ",".join(t.aws_services))
    return " · ".join(parts) or "no limits"


@token.command("list")
@click.option("--agent", "agent_name", help="Only this agent's tokens.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@tenant_option
def token_list(agent_name: str | None, as_json: bool, tenant: str) -> None:
    """List tokens by public id (never the tokens themselves), with state and limits.

    \b
    Example:
      seks token list --agent research-bot
    """
    now = time.time()
    with open_vault() as vault:
        tenants.require_tenant(vault, tenant)
        items = vault.list_tokens(agent=agent_name, tenant=tenant)
    if as_json:
        emit_json([{**asdict(t), "state": t.state(now)} for t in items])
        return
    for t in items:
        click.echo(
            f"{t.id}\t{t.agent}\t{t.provider}\t{t.secret_name}\t{t.state(now)}"
            f"\texpires {_when(t.expires_at)}\t{_limits_text(t)}"
        )


@token.command("revoke")
@click.argument("token_id")
@tenant_option
def token_revoke(token_id: str, tenant: str) -> None:
    """Revoke a token by its public id (from `seks token list`).

    \b
    Example:
      seks token revoke tok_3kTqE0u9xYb2LmNa
    """
    with open_vault() as vault:
        vault.revoke_token(token_id, tenant=tenant)
    click.echo(f"revoked {token_id}")


COMMANDS = [agent, token]
