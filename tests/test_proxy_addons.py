"""Which of mitmproxy's addons `seks proxy` loads (seks/proxy.py): those a credential broker
needs, and none that could store, replay or rewrite an injected request. The proxy itself runs
with them in every test under tests/e2e."""

from __future__ import annotations

import asyncio

import pytest
from mitmproxy import options
from mitmproxy.master import Master

from seks.proxy import MITMPROXY_ADDONS

# Options of mitmproxy's default addons that `seks proxy` leaves out: each would write flows
# (with real credentials in them) to disk, or change a request after SEKS checked it.
LEFT_OUT = [
    "save_stream_file",  # save
    "hardump",  # savehar
    "map_remote",  # mapremote
    "map_local",  # maplocal
    "modify_headers",  # modifyheaders
    "modify_body",  # modifybody
    "server_replay",  # serverplayback
    "client_replay",  # clientplayback
    "stickycookie",  # stickycookie
    "proxyauth",  # proxyauth (SEKS's gate checks Proxy-Authorization per agent)
    "scripts",  # script loader
]


def loaded_options() -> options.Options:
    """The options of a mitmproxy master holding the addons as `seks proxy` adds them."""

    async def build() -> options.Options:
        master = Master(options.Options())
        master.addons.add(*(make() for make in MITMPROXY_ADDONS))
        return master.options

    return asyncio.run(build())


@pytest.fixture(scope="module")
def option_names() -> set[str]:
    return set(loaded_options().keys())


@pytest.mark.parametrize("name", LEFT_OUT)
def test_no_addon_that_stores_or_rewrites_flows_is_loaded(
    option_names: set[str], name: str
) -> None:
    assert name not in option_names


@pytest.mark.parametrize(
    "name",
    [
        "block_global",
        "stream_large_bodies",
        "ssl_verify_upstream_trusted_ca",
        "keep_alt_svc_header",
    ],
)
def test_the_addons_the_proxy_needs_are_loaded(option_names: set[str], name: str) -> None:
    assert name in option_names


def test_clients_from_other_networks_are_blocked_by_default() -> None:
    assert loaded_options().block_global is True
