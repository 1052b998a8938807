"""``seks env --gateway``: the agent's tokens, and base URLs pointing its SDKs at the gateway."""

from __future__ import annotations

from collections.abc import Mapping

from seks.addon.gateway import base_url_variables
from seks.certs import CA_BUNDLE_VARS, CA_ONLY_VARS
from seks.config import Config

__all__ = ["gateway_environment"]

_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy")


def gateway_environment(variables: Mapping[str, str], config: Config) -> dict[str, str]:
    """Drop the proxy and CA variables; add each issued provider's ``*_BASE_URL``."""
    assert config.gateway_url is not None
    dropped = {*_PROXY_VARS, *CA_BUNDLE_VARS, *CA_ONLY_VARS}
    kept = {k: v for k, v in variables.items() if k not in dropped}
    issued = {n: p for n, p in config.all_providers.items() if p.env_var in kept}
    return kept | base_url_variables(issued, config.gateway_url)
