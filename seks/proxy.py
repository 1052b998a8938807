"""``seks proxy``: mitmproxy embedded with the SEKS addon and SEKS's options.

Addon order matters (shared notes): :class:`SeksAddon` first, so it puts the fake token back
before anything that prints or saves flows; :class:`ResponseScrubber` right after it, so
responses are scrubbed before anything else sees them; the mitmproxy addons SEKS needs
(``tlsconfig`` after us, so our per-upstream CA wins); :class:`DestinationGuard` last, after
every ``request`` hook. There is no Dumper: one log line per request comes from the addon,
never headers.

Of mitmproxy's default addons only those a credential broker needs are loaded
(:data:`MITMPROXY_ADDONS`). The others are features SEKS does not offer (replay, map, modify,
save, sticky cookies, the onboarding app, mitmproxy's own proxy auth and scripts) and no
``seks`` option reaches them, yet about twenty of their hooks ran on every flow; several could
store or rewrite an injected request if they were ever switched on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from mitmproxy import ctx, options
from mitmproxy.addons import (
    block,
    core,
    disable_h2c,
    dns_resolver,
    errorcheck,
    next_layer,
    proxyserver,
    strip_dns_https_records,
    tlsconfig,
    update_alt_svc,
)
from mitmproxy.master import Master

from seks.addon.flow import DestinationGuard, SeksAddon
from seks.addon.gateway import GATEWAY_TARGET, gateway_mode
from seks.addon.responses import ResponseScrubber
from seks.config import Config
from seks.home import Home

__all__ = ["MITMPROXY_ADDONS", "run_proxy"]

# The mitmproxy addons `seks proxy` loads, in mitmproxy's own default order.
MITMPROXY_ADDONS: tuple[Callable[[], object], ...] = (
    core.Core,  # options and commands
    block.Block,  # refuses clients from other networks (block_global)
    strip_dns_https_records.StripDnsHttpsRecords,
    disable_h2c.DisableH2C,  # no h2c upgrade or prior knowledge through the proxy
    proxyserver.Proxyserver,  # the listeners
    dns_resolver.DnsResolver,
    next_layer.NextLayer,  # which hosts are intercepted (SeksAddon.tls_clienthello decides)
    tlsconfig.TlsConfig,  # certificates for the agent, upstream verification
    update_alt_svc.UpdateAltSvc,  # the gateway (reverse mode): Alt-Svc points back at it
)


class _AnnounceReady:
    """Tells the caller where the proxy listens once the listener is bound (port 0 included)."""

    def __init__(
        self,
        announce: Callable[[str, int], None],
        announce_gateway: Callable[[str, int], None] | None = None,
    ) -> None:
        self.announce = announce
        self.announce_gateway = announce_gateway

    def running(self) -> None:
        # The gateway first: the proxy's ready line says that everything is up.
        instances = sorted(
            ctx.master.addons.get("proxyserver").servers,
            key=lambda i: i.mode.data != GATEWAY_TARGET,
        )
        for instance in instances:
            host, port, *_ = instance.listen_addrs[0]
            if instance.mode.data != GATEWAY_TARGET:
                self.announce(host, port)
            elif self.announce_gateway is not None:
                self.announce_gateway(host, port)


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # mitmproxy's own info lines are per-connection chatter
    seks = logging.getLogger("seks")
    seks.setLevel(level.upper())
    # Straight to stderr: through the root logger, mitmproxy turns every record into an
    # add_log event for all addons, which cost measurable CPU per request.
    seks.handlers[:] = [handler]
    seks.propagate = False


async def _serve(
    home: Home,
    config: Config,
    config_path: Path | None,
    announce: Callable[[str, int], None],
    announce_gateway: Callable[[str, int], None] | None = None,
) -> None:
    gateway = (
        []
        if config.gateway_host is None
        else [gateway_mode(config.gateway_host, config.gateway_port)]
    )
    opts = options.Options(
        listen_host=config.listen_host,
        listen_port=config.listen_port,
        confdir=str(home.confdir),
        mode=["regular", *gateway],  # the gateway: its own listener (README: loopback only)
    )
    master = Master(opts)
    seks = SeksAddon()
    master.addons.add(
        seks,
        ResponseScrubber(seks),
        *(make() for make in MITMPROXY_ADDONS),
        errorcheck.ErrorCheck(repeat_errors_on_stderr=True),
        DestinationGuard(seks),
        _AnnounceReady(announce, announce_gateway),
    )
    # Options owned by addons exist only once the addons are added (shared notes).
    master.options.update(
        seks_home=str(home.root),
        seks_config=str(config_path) if config_path else "",
        connection_strategy="lazy",
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)
    await master.run()


def run_proxy(
    home: Home,
    config: Config,
    config_path: Path | None,
    announce: Callable[[str, int], None],
    announce_gateway: Callable[[str, int], None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM. ``config`` has already been validated by the caller."""
    _setup_logging(config.log_level)
    asyncio.run(_serve(home, config, config_path, announce, announce_gateway))
