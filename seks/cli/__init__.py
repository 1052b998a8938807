"""The ``seks`` command: thin click commands over the library.

Each command parses its input, calls the library, and turns a :class:`SeksError` into one clear
line on stderr and exit code 1 (click's usage errors exit 2).
"""

from __future__ import annotations

from typing import Any

import click

from seks import __version__
from seks.errors import SeksError

__all__ = ["cli", "main"]


class _SeksGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SeksError as e:
            raise click.ClickException(str(e)) from e


@click.group(cls=_SeksGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seks")
def cli() -> None:
    """SEKS keeps real API keys away from AI agents.

    Agents hold fake tokens (seks_openai_…); the SEKS proxy swaps them for the real keys from
    an encrypted vault, only for the provider's own hosts, and audits every decision.

    \b
    Quick start:
      seks init
      seks secret add openai-main --provider openai     # paste the key at the prompt
      seks agent create research-bot
      seks proxy &                                       # in another terminal
      seks exec --agent research-bot -- python agent.py
    """


def _register() -> None:
    from seks.cli import (
        agents,
        approvals,
        audit,
        ca,
        providers,
        run,
        secrets,
        setup,
        tenants,
    )

    for module in (setup, tenants, secrets, agents, run, approvals, audit, ca, providers):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="seks")
