"""The proxy CA: created once, private key owner-only, and a bundle agents can trust."""

from __future__ import annotations

import stat
import warnings
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from seks.certs import ca_bundle_path, ca_cert_path, create_ca


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_file(confdir: Path) -> Path:
    return confdir / "mitmproxy-ca.pem"  # where mitmproxy reads the CA key and certificate


def test_create_ca_writes_the_ca_with_an_owner_only_key(tmp_path: Path) -> None:
    confdir = tmp_path / "ca"

    cert_path = create_ca(confdir)

    assert cert_path == ca_cert_path(confdir)
    assert mode(confdir) == 0o700
    assert mode(key_file(confdir)) == 0o600
    assert b"PRIVATE KEY" in key_file(confdir).read_bytes()
    assert b"PRIVATE KEY" not in cert_path.read_bytes()
    assert b"PRIVATE KEY" not in ca_bundle_path(confdir).read_bytes()


def test_create_ca_tightens_an_existing_directory(tmp_path: Path) -> None:
    confdir = tmp_path / "ca"
    confdir.mkdir(mode=0o755)
    confdir.chmod(0o755)

    create_ca(confdir)

    assert mode(confdir) == 0o700


def test_the_certificate_is_a_ca_named_seks_matching_its_key(tmp_path: Path) -> None:
    confdir = tmp_path / "ca"
    cert = x509.load_pem_x509_certificate(create_ca(confdir).read_bytes())

    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SEKS proxy CA"
    assert cert.subject == cert.issuer  # a root, to be trusted directly
    key = serialization.load_pem_private_key(key_file(confdir).read_bytes(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_the_bundle_is_the_ca_followed_by_the_public_roots(tmp_path: Path) -> None:
    confdir = tmp_path / "ca"
    cert = x509.load_pem_x509_certificate(create_ca(confdir).read_bytes())

    with warnings.catch_warnings():
        # Newer cryptography warns about a public root with a non-positive serial number;
        # the roots are certifi's, not ours.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        bundle = x509.load_pem_x509_certificates(ca_bundle_path(confdir).read_bytes())
        roots = x509.load_pem_x509_certificates(Path(certifi.where()).read_bytes())

    assert bundle[0] == cert
    assert bundle[1:] == roots
    assert len(roots) > 50


def test_creating_twice_keeps_the_same_ca(tmp_path: Path) -> None:
    confdir = tmp_path / "ca"
    create_ca(confdir)
    cert = ca_cert_path(confdir).read_bytes()
    key = key_file(confdir).read_bytes()
    ca_bundle_path(confdir).unlink()

    create_ca(confdir)

    assert ca_cert_path(confdir).read_bytes() == cert
    assert key_file(confdir).read_bytes() == key
    assert ca_bundle_path(confdir).read_bytes().startswith(cert)
    assert mode(key_file(confdir)) == 0o600


def test_a_loosened_key_is_tightened_again(tmp_path: Path) -> None:
    confdir = tmp_path / "ca"
    create_ca(confdir)
    key_file(confdir).chmod(0o644)

    create_ca(confdir)

    assert mode(key_file(confdir)) == 0o600
