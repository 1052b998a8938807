"""TLS to a configured upstream that is signed by its own CA (``providers.X.upstream_ca``).

mitmproxy's ``ssl_verify_upstream_trusted_ca`` is global and replaces the system bundle, so a
corporate or test CA set there would be trusted for every host. Instead, connections to that one
upstream get a context that trusts exactly that CA, with hostname verification as mitmproxy's
own ``tlsconfig`` addon does it (same pyOpenSSL calls).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mitmproxy import connection, ctx, tls
from mitmproxy.addons.tlsconfig import DEFAULT_HOSTFLAGS
from mitmproxy.net import tls as net_tls
from mitmproxy.tls import TlsData
from OpenSSL import SSL

__all__ = ["TlsHooks", "start_tls_trusting"]


def start_tls_trusting(tls_start: TlsData, ca_file: Path) -> None:
    server = tls_start.conn
    assert isinstance(server, connection.Server) and server.address
    client = tls_start.context.client
    if server.sni is None:
        server.sni = server.address[0]
    if not server.alpn_offers:
        offers = client.alpn_offers or ()
        server.alpn_offers = tuple(a for a in offers if ctx.options.http2 or a != b"h2")
    ssl_ctx = net_tls.create_proxy_server_context(
        method=net_tls.Method.TLS_CLIENT_METHOD,
        min_version=net_tls.Version[ctx.options.tls_version_server_min],
        max_version=net_tls.Version[ctx.options.tls_version_server_max],
        cipher_list=None,
        ecdh_curve=ctx.options.tls_ecdh_curve_server,
        verify=net_tls.Verify.VERIFY_PEER,
        ca_path=None,
        ca_pemfile=str(ca_file),
        client_cert=None,
        legacy_server_connect=False,
    )
    conn = SSL.Connection(ssl_ctx)
    lib: Any = SSL._lib  # type: ignore[attr-defined]
    param = lib.SSL_get0_param(conn._ssl)
    lib.X509_VERIFY_PARAM_set_hostflags(param, DEFAULT_HOSTFLAGS)
    try:
        ip = ipaddress.ip_address(server.sni).packed
    except ValueError:
        name = server.sni.encode("idna")
        conn.set_tlsext_host_name(name)
        ok = lib.X509_VERIFY_PARAM_set1_host(param, name, len(name))
    else:
        # RFC 6066: no IP literals in SNI; verify the IP SAN instead.
        ok = lib.X509_VERIFY_PARAM_set1_ip(param, ip, len(ip))
    if ok != 1:
        raise ValueError(f"cannot set up hostname verification for {server.sni!r}")
    if server.alpn_offers:
        conn.set_alpn_protos(list(server.alpn_offers))
    conn.set_connect_state()
    tls_start.ssl_conn = conn


class TlsHooks:
    """The SEKS addon's TLS hooks: what to intercept, and how to reach a configured upstream."""

    if TYPE_CHECKING:
        from seks.addon.providers import Provider
        from seks.config import Config

        config: Config
        providers: dict[str, Provider]

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        if self.config.intercept == "all":
            return
        names = [data.client_hello.sni]
        if data.context.server.address:
            names.append(data.context.server.address[0])
        if not any(n and p.serves(n) for n in names for p in self.providers.values()):
            data.ignore_connection = True  # tunnel untouched: not ours to inspect

    def tls_start_server(self, tls_start: tls.TlsData) -> None:
        address = tls_start.conn.address  # type: ignore[attr-defined]  # a Server here
        for settings in self.config.providers.values():
            up = settings.upstream
            if up and settings.upstream_ca and address == (up.host, up.port):
                start_tls_trusting(tls_start, settings.upstream_ca)
                return
