"""What the commands share: opening the vault, reading durations, moments and secret values,
and ending quietly on Ctrl-C."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from seks.addon.providers import BUILTIN
from seks.config import Config, load_config
from seks.errors import ConfigError
from seks.home import Home
from seks.limits import parse_duration as parse_duration_text
from seks.store.vault import DEFAULT_TENANT, Vault

__all__ = [
    "PROVIDER_CHOICE",
    "WHEN_FORMS",
    "duration",
    "emit_json",
    "home",
    "load_cli_config",
    "open_vault",
    "option_errors",
    "parse_when",
    "quiet_exit",
    "read_aws_value",
    "read_secret_value",
    "tenant_option",
    "when",
]


class _ProviderName(click.ParamType[str]):
    """A built-in provider, or a custom one from the SEKS home's config.yaml."""

    name = "provider"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        known = load_cli_config(None).all_providers
        name = str(value).lower()
        if name not in known:
            self.fail(f"{value!r} is not a provider: one of {', '.join(sorted(known))}", param, ctx)
        return name


PROVIDER_CHOICE = _ProviderName()


def home() -> Home:
    return Home.from_env()


@contextmanager
def open_vault() -> Iterator[Vault]:
    h = home()
    vault = Vault.open(h.vault_path, h.master_key())
    try:
        yield vault
    finally:
        vault.close()


def parse_duration(value: str) -> float:
    try:
        return parse_duration_text(value)
    except ConfigError as e:
        raise click.BadParameter(str(e)) from None


def _duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return None if value is None else parse_duration(value)


duration: dict[str, Any] = {"type": str, "callback": _duration_option, "metavar": "DURATION"}


tenant_option = click.option(
    "--tenant",
    default=DEFAULT_TENANT,
    show_default=True,
    metavar="NAME",
    help="The tenant: names, secrets and tokens of other tenants are never used or shown.",
)


@contextmanager
def option_errors(option: str) -> Iterator[None]:
    """A library parser's ConfigError about a CLI value, named by its option: one error line
    (exit 1), like every other library error."""
    try:
        yield
    except ConfigError as e:
        raise ConfigError(f"{option}: {e}") from None


def read_secret_value(prompt: str) -> str:
    """A secret from a hidden prompt, or from stdin when piped; never from argv."""
    if sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))
    value = sys.stdin.read()
    if value.endswith("\n"):
        value = value[:-1]
        value = value.removesuffix("\r")
    if not value:
        raise click.ClickException("no secret value on stdin")
    return value


def read_aws_value(name: str, extra: dict[str, str | None]) -> str:
    """An aws secret's JSON: from three prompts (the secret parts hidden), or stdin when piped.
    ``extra`` adds the CLI's allow-list options; the vault checks the whole value."""
    if sys.stdin.isatty():
        data: dict[str, Any] = {
            "access_key_id": click.prompt(f"access key id for {name}"),
            "secret_access_key": click.prompt("secret access key", hide_input=True),
            "session_token": click.prompt(
                "session token (Enter for none)", default="", hide_input=True, show_default=False
            ),
        }
    else:
        text = read_secret_value(name)
        try:
            data = json.loads(text)
        except ValueError:
            raise click.ClickException(
                "stdin is not JSON: an aws secret is "
                '{"access_key_id": …, "secret_access_key": …, "session_token": …}'
            ) from None
        if not isinstance(data, dict):
            raise click.ClickException("stdin is not a JSON object with access_key_id and friends")
    data.update({k: v for k, v in extra.items() if v})
    return json.dumps(data)


def load_cli_config(config_path: Path | None) -> Config:
    return load_config(
        config_path or home().config_path,
        known_providers=tuple(BUILTIN),
        required=config_path is not None,
    )


def emit_json(items: list[Any]) -> None:
    click.echo(json.dumps([asdict(i) if hasattr(i, "__dataclass_fields__") else i for i in items]))


WHEN_FORMS = (
    "an ISO date or time (2026-11-03, 2026-11-03T14:00, UTC unless it names an offset) "
    "or a duration ago (30s, 15m, 8h, 7d)"
)


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


@contextmanager
def quiet_exit() -> Iterator[None]:
    """Ctrl-C ends a command quietly with exit 0; so does a reader that went away (`| head`)."""
    try:
        yield
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
