"""The proxy CA: created at ``seks init``, private key 0600, exported for agent containers.

The CA lives in mitmproxy's confdir inside the SEKS home, under the file names mitmproxy reads
(``mitmproxy-ca.pem`` holds key and certificate). Next to it, ``seks-ca-bundle.pem`` holds the
SEKS CA plus the public roots: most tools read one bundle *instead of* the system store, and
connections SEKS does not intercept still present the real site's certificate.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CA_BUNDLE_VARS", "CA_ONLY_VARS", "ca_bundle_path", "ca_cert_path", "create_ca"]

_BASENAME = "mitmproxy"  # the name mitmproxy's tlsconfig looks for in its confdir
KEY_SIZE = 2048

# Variables that replace the trust store: they get the bundle (SEKS CA + public roots).
CA_BUNDLE_VARS = (
    "SSL_CERT_FILE",  # OpenSSL, Python ssl, httpx (openai, anthropic SDKs)
    "REQUESTS_CA_BUNDLE",  # requests
    "CURL_CA_BUNDLE",  # curl
    "GIT_SSL_CAINFO",  # git
    "AWS_CA_BUNDLE",  # botocore, aws-cli
)
# Variables that add to the trust store: the SEKS CA alone.
CA_ONLY_VARS = ("NODE_EXTRA_CA_CERTS",)


def ca_cert_path(confdir: Path) -> Path:
    return confdir / f"{_BASENAME}-ca-cert.pem"


def ca_bundle_path(confdir: Path) -> Path:
    return confdir / "seks-ca-bundle.pem"


def create_ca(confdir: Path) -> Path:
    """Create the CA unless it exists; always (re)write the bundle. Returns the cert path."""
    import certifi
    from mitmproxy.certs import CertStore

    confdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    confdir.chmod(0o700)
    if not ca_cert_path(confdir).exists():
        CertStore.create_store(
            confdir, _BASENAME, KEY_SIZE, organization="SEKS", cn="SEKS proxy CA"
        )
    key_file = confdir / f"{_BASENAME}-ca.pem"
    key_file.chmod(0o600)
    cert = ca_cert_path(confdir).read_bytes()
    ca_bundle_path(confdir).write_bytes(cert + b"\n" + Path(certifi.where()).read_bytes())
    return ca_cert_path(confdir)
