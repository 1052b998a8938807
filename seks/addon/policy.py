"""May this token be used here? Destination checks on the host the proxy will connect to.

The destination is the CONNECT target (or the absolute-form URL's host for plain HTTP), which
is where mitmproxy connects. The Host header and TLS SNI are client-controlled; they must agree
with it, so a request cannot be steered by a header that says one thing while the connection
goes elsewhere (shared notes: ``pretty_host`` follows the Host header).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mitmproxy import http

from seks.addon.providers import Provider
from seks.errors import HostNotAllowed

if TYPE_CHECKING:
    from seks.config import Upstream

__all__ = ["check_destination", "host_of_authority", "route_to_upstream"]


def host_of_authority(authority: str) -> str | None:
    """The host name in a Host header value (``api.openai.com:443`` → ``api.openai.com``)."""
    try:
        host = urlsplit("//" + authority).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def check_destination(
    provider: Provider, connect_host: str, sni: str | None, host_header: str | None
) -> None:
    """Raise HostNotAllowed unless every name for this request's destination is the provider's."""
    connect_host = connect_host.lower().rstrip(".")
    if not provider.serves(connect_host):
        raise HostNotAllowed(
            f"a {provider.name} token may only be sent to {', '.join(provider.hosts)}, "
            f"not to {connect_host}"
        )
    if sni is not None and sni.lower().rstrip(".") != connect_host:
        raise HostNotAllowed(
            f"the TLS server name {sni!r} differs from the proxy's destination {connect_host!r}"
        )
    if host_header is not None:
        named = host_of_authority(host_header)
        if named is None or named.lower() != connect_host:
            raise HostNotAllowed(
                f"the Host header {host_header!r} differs from the proxy's destination "
                f"{connect_host!r}"
            )


def route_to_upstream(flow: http.HTTPFlow, provider: Provider, up: Upstream | None) -> None:
    """Send a provider host's request to that provider's configured ``upstream``."""
    if up is None or flow.request.scheme != "https":
        return
    flow.metadata["seks_host"] = flow.request.host
    host_header = flow.request.host_header
    flow.request.scheme = up.scheme
    flow.request.host = up.host
    flow.request.port = up.port
    # AWS signs the Host header, and its endpoints tell buckets and services apart by it.
    flow.request.host_header = host_header if provider.name == "aws" else up.authority
