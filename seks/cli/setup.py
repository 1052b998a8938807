"""``seks init``."""

from __future__ import annotations

import os

import click

from seks.certs import create_ca
from seks.cli.common import home
from seks.home import MASTER_KEY_ENV
from seks.store.crypto import MasterKey
from seks.store.vault import Vault


@click.command()
def init() -> None:
    """Create the SEKS home: vault, master key and the proxy's CA.

    The home is $SEKS_HOME (default ~/.seks), created 0700; the vault and key are 0600. With
    SEKS_MASTER_KEY set (64 hex characters) no key file is written. Running it again is safe:
    nothing existing is replaced.

    \b
    Example:
      SEKS_HOME=~/.seks seks init
    """
    h = home()
    h.create()
    no_key = not os.environ.get(MASTER_KEY_ENV) and not h.key_path.exists()
    if no_key and h.vault_path.exists():
        # A new key could never open the existing vault; writing one would only mislead.
        raise click.ClickException(
            f"{h.vault_path} exists but its master key is missing: restore {h.key_path} "
            f"or set {MASTER_KEY_ENV}"
        )
    if no_key:
        h.write_master_key(MasterKey.generate())
        click.echo(f"master key:  {h.key_path} (keep a copy somewhere safe)")
    master = h.master_key()
    if h.vault_path.exists():
        Vault.open(h.vault_path, master).close()  # proves the key opens it
        click.echo(f"vault:       {h.vault_path} (already there)")
    else:
        Vault.create(h.vault_path, master).close()
        click.echo(f"vault:       {h.vault_path}")
    click.echo(f"proxy CA:    {create_ca(h.confdir)}")
    click.echo("next: seks secret add NAME --provider openai")


COMMANDS = [init]
