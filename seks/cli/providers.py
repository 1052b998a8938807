"""``seks providers list``: the built-in providers and the config's custom ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from seks.addon.providers import Provider
from seks.cli.common import emit_json, load_cli_config


def _as_json(p: Provider) -> dict[str, Any]:
    return {
        "name": p.name,
        "hosts": list(p.hosts),
        "places": [
            {"kind": pl.kind, "name": pl.name, "scheme": pl.scheme, "describe": pl.describe()}
            for pl in p.places
        ],
        "paths": list(p.paths),
        "env": p.env_var,
        "custom": p.custom,
    }


@click.group()
def providers() -> None:
    """The providers SEKS knows: where each one's credential goes.

    \b
    Example:
      seks providers list
    """


@providers.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $SEKS_HOME/config.yaml).",
)
def providers_list(as_json: bool, config_path: Path | None) -> None:
    """Built-in and custom providers: hosts, credential places and the variable `seks env` sets.

    \b
    Example:
      seks providers list
      seks providers list --json --config ./config.yaml
    """
    known = load_cli_config(config_path).all_providers.values()
    if as_json:
        emit_json([_as_json(p) for p in known])
        return
    for p in known:
        hosts = ", ".join(p.hosts) + (f" (paths {', '.join(p.paths)})" if p.paths else "")
        places = " or ".join(pl.describe() for pl in p.places)
        origin = "custom" if p.custom else "built-in"
        click.echo(f"{p.name:<12} {origin:<8} {p.env_var:<22} {hosts}  {places}")


COMMANDS = [providers]
