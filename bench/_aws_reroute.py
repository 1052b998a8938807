"""``mitmdump -s`` addon for bench/aws.py: AWS host names go to the local S3 upstream, as
``seks proxy``'s ``providers.aws.upstream`` sends them, so bare mitmproxy does the same routing.

    mitmdump -s bench/_aws_reroute.py --set bench_upstream=127.0.0.1:PORT ...

It reroutes in ``requestheaders``: a streamed request's headers go upstream before ``request``
fires, so ``--map-remote`` (a ``request`` hook) would come too late and mitmproxy would connect
to the real host. The Host header stays the one the client signed (mitmproxy's ``host`` setter
rewrites it). Needs ``connection_strategy=lazy``, or mitmproxy connects at CONNECT time.
"""

from __future__ import annotations

from mitmproxy import ctx, http
from mitmproxy.addonmanager import Loader


class RerouteAws:
    def load(self, loader: Loader) -> None:
        loader.add_option("bench_upstream", str, "", "host:port the AWS requests go to")

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not flow.request.host.endswith(".amazonaws.com"):
            return
        host, _, port = str(ctx.options.bench_upstream).rpartition(":")
        signed_host = flow.request.host_header
        flow.request.host, flow.request.port = host, int(port)
        flow.request.host_header = signed_host


addons = [RerouteAws()]
