"""``seks proxy``, ``seks env`` and ``seks exec``: running the proxy and the agents behind it."""

from __future__ import annotations

import secrets
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import click

from seks.certs import CA_BUNDLE_VARS, CA_ONLY_VARS, ca_bundle_path, ca_cert_path, create_ca
from seks.cli.common import duration, home, load_cli_config, open_vault, tenant_option
from seks.cli.gateway_env import gateway_environment
from seks.config import Config, parse_listen
from seks.errors import ConfigError
from seks.store import proxy_auth
from seks.store.aws_credentials import FAKE_SECRET_KEY, AwsCredentials
from seks.store.vault import Vault

DEFAULT_AGENT_TTL = 8 * 3600.0

_secret_option = click.option(
    "--secret",
    "secrets_chosen",
    multiple=True,
    metavar="NAME",
    help="Use this secret for its provider (repeatable; needed if a provider has several).",
)
_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $SEKS_HOME/config.yaml).",
)


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where to listen (default from config, else 127.0.0.1:8080).",
)
@click.option(
    "--gateway-listen",
    metavar="HOST:PORT",
    help="Where the base_url gateway listens (default from config, else 127.0.0.1:8081).",
)
@_config_option
def proxy(listen: str | None, gateway_listen: str | None, config_path: Path | None) -> None:
    """Run the SEKS proxy in the foreground. Stop it with Ctrl-C or SIGTERM.

    Agents reach it with HTTPS_PROXY and trust its CA (`seks env` prints both). TLS is
    intercepted only for provider hosts unless the config says `intercept: all`.

    \b
    Example:
      seks proxy --listen 127.0.0.1:8080
    """
    import dataclasses

    from seks.proxy import run_proxy

    config = load_cli_config(config_path)
    if listen is not None:
        host, port = parse_listen(listen, key="--listen")
        config = dataclasses.replace(config, listen_host=host, listen_port=port)
        if port == 0 and gateway_listen is None and config.gateway_host is not None:
            # A proxy on any free port (tests, benchmarks, several proxies on one host) must
            # not collide on the gateway's fixed default port.
            config = dataclasses.replace(config, gateway_port=0)
    if gateway_listen is not None:
        host, port = parse_listen(gateway_listen, key="--gateway-listen")
        config = dataclasses.replace(config, gateway_host=host, gateway_port=port)
    h = home()
    Vault.open(h.vault_path, h.master_key()).close()  # a clear error now, not from mitmproxy
    create_ca(h.confdir)

    def announce(host: str, port: int) -> None:
        click.echo(f"seks proxy listening on {host}:{port}")
        sys.stdout.flush()

    def announce_gateway(host: str, port: int) -> None:
        # stderr: the ready line stays the only line on stdout, for service managers.
        click.echo(f"seks gateway listening on {host}:{port}", err=True)

    run_proxy(h, config, config_path, announce, announce_gateway)


def with_credentials(proxy_url: str, user: str, password: str) -> str:
    """The proxy URL with ``user:password@`` (percent-encoded, as URL userinfo must be)."""
    parts = urlsplit(proxy_url)
    if parts.username is not None or parts.hostname is None:
        raise ConfigError(f"--proxy: expected a URL such as http://host:port, got {proxy_url!r}")
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def _agent_environment(
    vault: Vault,
    agent: str,
    ttl: float,
    proxy_url: str,
    session: str,
    ca_file: Path | None,
    secrets_chosen: tuple[str, ...],
    *,
    tenant: str,
    max_ttl: float | None,
    env_vars: Mapping[str, str],
) -> dict[str, str]:
    """Proxy, CA and token variables for an agent. The tokens (and the session's proxy
    password, for an agent created with --proxy-auth) are issued all or none: on any failure
    the session is revoked."""
    try:
        confdir = home().confdir
        if proxy_auth.requires_proxy_auth(vault.db, tenant, agent):
            password = proxy_auth.issue_password(
                vault.db,
                vault.audit,
                vault.proxy_auth_key,
                agent,
                tenant=tenant,
                ttl=ttl,
                session=session,
            )
            proxy_url = with_credentials(proxy_url, agent, password)
        bundle = ca_file or ca_bundle_path(confdir)
        env = {
            "HTTPS_PROXY": proxy_url,
            "HTTP_PROXY": proxy_url,
            "https_proxy": proxy_url,  # curl reads only the lower-case http_proxy
            "http_proxy": proxy_url,
            "NO_PROXY": "localhost,127.0.0.1,::1",
            "no_proxy": "localhost,127.0.0.1,::1",
        }
        env |= {var: str(bundle) for var in CA_BUNDLE_VARS}
        env |= {var: str(ca_file or ca_cert_path(confdir)) for var in CA_ONLY_VARS}
        chosen = {
            vault.get_secret_info(name, tenant=tenant).provider: name for name in secrets_chosen
        }
        providers = [p for p in vault.providers_with_secrets(tenant=tenant) if p in env_vars]
        issued = vault.issue_tokens(
            agent,
            [(p, chosen.get(p)) for p in providers],
            ttl=ttl,
            session=session,
            tenant=tenant,
            max_ttl=max_ttl,
        )
        for provider, token in zip(providers, issued, strict=True):
            env[env_vars[provider]] = token
        if "aws" in providers:
            env |= _aws_environment(vault, chosen.get("aws"), tenant)
        return env
    except BaseException:
        vault.revoke_session(session)
        raise


def _aws_environment(vault: Vault, secret_name: str | None, tenant: str) -> dict[str, str]:
    """Beside the token (the access key id): a placeholder secret key for the SDK to sign
    with, and the secret's region if it names one (otherwise the agent's own setting stays)."""
    env = {"AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY}
    name = secret_name or next(
        s.name for s in vault.list_secrets(tenant=tenant) if s.provider == "aws"
    )
    region = AwsCredentials.from_json(vault.reveal_secret(name, tenant=tenant).reveal()).region
    if region:
        env |= {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    return env


def _env_vars(config: Config) -> dict[str, str]:
    """Each provider's variable for its token, custom providers of the config included."""
    return {p.name: p.env_var for p in config.all_providers.values()}


def _agent_ttl(ttl: float | None, config: Config) -> float:
    """--ttl, else 8h, or the config's max_token_ttl if that is shorter."""
    if ttl is not None:
        return ttl
    most = config.max_token_ttl
    return DEFAULT_AGENT_TTL if most is None else min(DEFAULT_AGENT_TTL, most)


_ttl_option = click.option(
    "--ttl", **duration, help="Token lifetime. Default: 8h, or max_token_ttl if shorter."
)


@click.command()
@click.option("--agent", "agent_name", required=True, help="The agent the tokens are for.")
@_ttl_option
@click.option("--proxy", "proxy_url", metavar="URL", help="Proxy URL (default from config).")
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path),
    help="Where the CA bundle is as the agent sees it (e.g. inside its container).",
)
@click.option(
    "--gateway",
    is_flag=True,
    help="Point SDKs at the gateway (OPENAI_BASE_URL, …) instead of setting a proxy and CA.",
)
@_secret_option
@_config_option
@tenant_option
def env(
    agent_name: str,
    ttl: float | None,
    proxy_url: str | None,
    ca_file: Path | None,
    gateway: bool,
    secrets_chosen: tuple[str, ...],
    config_path: Path | None,
    tenant: str,
) -> None:
    """Print `export` lines for an agent: proxy, CA and a fresh token per provider.

    For an agent created with --proxy-auth the proxy URL carries a session password too.

    \b
    Example:
      eval "$(seks env --agent research-bot --ttl 8h)"
      seks env --agent bot --proxy http://seks:8080 --ca-file /etc/seks/ca.pem > agent.env
      seks env --agent bot --gateway     # base URLs for the SDKs, no proxy, no CA
    """
    config = load_cli_config(config_path)
    if gateway and config.gateway_url is None:
        raise ConfigError("--gateway: the config turns the gateway off (gateway_listen: null)")
    with open_vault() as vault:
        variables = _agent_environment(
            vault,
            agent_name,
            _agent_ttl(ttl, config),
            proxy_url or config.proxy_url,
            "env-" + secrets.token_hex(8),
            ca_file,
            secrets_chosen,
            tenant=tenant,
            max_ttl=config.max_token_ttl,
            env_vars=_env_vars(config),
        )
    if gateway:
        variables = gateway_environment(variables, config)
    for name, value in variables.items():
        click.echo(f"export {name}={shlex.quote(value)}")


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--agent", "agent_name", required=True, help="The agent the tokens are for.")
@_ttl_option
@click.option("--proxy", "proxy_url", metavar="URL", help="Proxy URL (default from config).")
@_secret_option
@_config_option
@tenant_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(
    agent_name: str,
    ttl: float | None,
    proxy_url: str | None,
    secrets_chosen: tuple[str, ...],
    config_path: Path | None,
    tenant: str,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND with the agent's environment; revoke its tokens when it ends.

    Exits with COMMAND's exit code.

    \b
    Example:
      seks exec --agent research-bot -- python agent.py --task "summarise"
    """
    import os

    config = load_cli_config(config_path)
    session = "exec-" + secrets.token_hex(8)
    # The agent gets nothing of SEKS's own: SEKS_MASTER_KEY would open the whole vault.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SEKS_")}
    with open_vault() as vault:
        variables = _agent_environment(
            vault,
            agent_name,
            _agent_ttl(ttl, config),
            proxy_url or config.proxy_url,
            session,
            None,
            secrets_chosen,
            tenant=tenant,
            max_ttl=config.max_token_ttl,
            env_vars=_env_vars(config),
        )
        try:
            code = subprocess.call(list(command), env=inherited | variables)
        except FileNotFoundError:
            raise click.ClickException(f"command not found: {command[0]}") from None
        except PermissionError:
            raise click.ClickException(f"command not executable: {command[0]}") from None
        finally:
            vault.revoke_session(session)
    sys.exit(code if code >= 0 else 128 - code)


exec_.name = "exec"

COMMANDS = [proxy, env, exec_]
