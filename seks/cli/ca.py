"""``seks ca path|export``."""

from __future__ import annotations

from pathlib import Path

import click

from seks.certs import ca_bundle_path, ca_cert_path
from seks.cli.common import home


def _existing(path: Path) -> Path:
    if not path.exists():
        raise click.ClickException(f"no CA at {path}: run `seks init` first")
    return path


@click.group()
def ca() -> None:
    """The proxy's CA certificate, which agents must trust.

    \b
    Example:
      seks ca export --out ./agent/seks-ca.crt
    """


@ca.command("path")
@click.option("--bundle", is_flag=True, help="The bundle: SEKS CA plus public roots.")
def ca_path(bundle: bool) -> None:
    """Print the path of the CA certificate (PEM).

    \b
    Example:
      docker cp "$(seks ca path)" agent:/usr/local/share/ca-certificates/seks.crt
    """
    confdir = home().confdir
    click.echo(_existing(ca_bundle_path(confdir) if bundle else ca_cert_path(confdir)))


@ca.command("export")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout)."
)
@click.option("--bundle", is_flag=True, help="The bundle: SEKS CA plus public roots.")
def ca_export(out: Path | None, bundle: bool) -> None:
    """Write the CA certificate (never its key) to a file or stdout.

    \b
    Example:
      seks ca export --out ./agent/seks-ca.crt
    """
    confdir = home().confdir
    pem = _existing(ca_bundle_path(confdir) if bundle else ca_cert_path(confdir)).read_bytes()
    if out is None:
        click.echo(pem.decode(), nl=False)
    else:
        out.write_bytes(pem)
        click.echo(f"wrote {out}", err=True)


COMMANDS = [ca]
