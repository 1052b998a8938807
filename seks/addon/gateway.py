"""Gateway mode: ``http://HOST:PORT/api/<provider>/<path>`` → ``https://<provider host>/<path>``.

SDKs reach it through their ``base_url`` setting, with no proxy and no CA. It is a mitmproxy
reverse-mode listener of its own (so a gateway request can never be mistaken for a proxied
one); the reverse target is a placeholder that is never connected to, because every gateway
request is rewritten to its provider's host in ``requestheaders``, before any connection is
made (the proxy connects lazily), and then goes through the same swap, policy, scrubbing and
audit as a proxied request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from mitmproxy import http
from mitmproxy.proxy.mode_specs import ReverseMode

from seks.addon.providers import Provider
from seks.errors import RequestRefused

__all__ = [
    "GATEWAY_PREFIX",
    "GATEWAY_TARGET",
    "GatewayRouteUnknown",
    "base_url_variables",
    "gateway_mode",
    "is_gateway",
    "route_gateway",
]

GATEWAY_TARGET = "http://seks-gateway.invalid"  # RFC 2606: a name that never resolves
GATEWAY_PREFIX = "/api/"


class GatewayRouteUnknown(RequestRefused):
    status = 404
    type = "seks_gateway_route_unknown"
    reason = "gateway_route_unknown"


def gateway_mode(host: str, port: int) -> str:
    """The mitmproxy mode spec of the gateway listener."""
    where = f"[{host}]" if ":" in host else host
    return f"reverse:{GATEWAY_TARGET}@{where}:{port}"


def is_gateway(flow: http.HTTPFlow) -> bool:
    mode = flow.client_conn.proxy_mode
    return isinstance(mode, ReverseMode) and mode.data == GATEWAY_TARGET


def gateway_host(provider: Provider) -> str | None:
    """Where the gateway sends a provider's requests: its first host that is not a pattern."""
    return next((h for h in provider.hosts if not h.startswith("*.")), None)


def route_gateway(flow: http.HTTPFlow, providers: Mapping[str, Provider]) -> Provider:
    """Rewrite a gateway request to go to its provider's host over HTTPS."""
    path = flow.request.path
    if not path.startswith(GATEWAY_PREFIX):
        raise GatewayRouteUnknown(
            f"the SEKS gateway serves {GATEWAY_PREFIX}<provider>/<path> only; "
            f"known providers: {', '.join(providers)}"
        )
    name, _, rest = path[len(GATEWAY_PREFIX) :].partition("/")
    name = name.split("?", 1)[0]
    if name == "aws" and "aws" in providers:
        return _route_s3(flow, providers["aws"], rest)
    provider = providers.get(name)
    host = gateway_host(provider) if provider is not None else None
    if provider is None or host is None:
        raise GatewayRouteUnknown(
            f"no provider {name!r} with a fixed host behind the SEKS gateway; known providers: "
            f"{', '.join(n for n, p in providers.items() if gateway_host(p))}"
        )
    flow.request.scheme = "https"
    flow.request.host = host
    flow.request.port = 443
    flow.request.path = "/" + rest
    flow.request.host_header = host
    flow.metadata["seks_gateway"] = provider.name
    return provider


_S3_ROUTE_RE = re.compile(
    r"s3/(?P<region>[a-z]{2}(?:-[a-z]+)+-\d{1,2})/(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])"
    r"(?P<key>/[^?]*)?(?:\?(?P<query>.*))?"
)


def _route_s3(flow: http.HTTPFlow, provider: Provider, rest: str) -> Provider:
    """The seeds' S3 shape: ``/api/aws/s3/<region>/<bucket>/<key>`` (GET, PUT, DELETE, HEAD)
    and ``/api/aws/s3/<region>/<bucket>`` (GET lists the bucket, ListObjectsV2), with the
    ``seks_aws_…`` token as a bearer token: signed from scratch by the proxy."""
    m = _S3_ROUTE_RE.fullmatch(rest)
    if m is None:
        raise GatewayRouteUnknown(
            "the SEKS gateway serves AWS as /api/aws/s3/<region>/<bucket>[/<key>] only"
        )
    query = m["query"] or ""
    key = (m["key"] or "").lstrip("/")
    if not key and flow.request.method == "GET" and "list-type=" not in query:
        query = "&".join(p for p in ("list-type=2", query) if p)
    host = f"s3.{m['region']}.amazonaws.com"
    flow.request.scheme = "https"
    flow.request.host = host
    flow.request.port = 443
    flow.request.path = (
        f"/{m['bucket']}" + (f"/{key}" if key else "") + (f"?{query}" if query else "")
    )
    flow.request.host_header = host
    flow.metadata["seks_gateway"] = provider.name
    return provider


def base_url_variables(providers: Mapping[str, Provider], gateway_url: str) -> dict[str, str]:
    """The ``*_BASE_URL`` variables SDKs read, pointing at the gateway."""
    return {
        p.base_url_var: f"{gateway_url.rstrip('/')}{GATEWAY_PREFIX}{p.name}{p.base_path}"
        for p in providers.values()
        if p.base_url_var and gateway_host(p)
    }
