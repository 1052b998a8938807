"""Envelope encryption: master key → per-tenant KEK → per-secret-version DEK → AES-256-GCM.

Every blob is ``format(1) | key_version(4, big-endian) | nonce(12) | ciphertext+tag``. The header
and a purpose-specific context (tenant, secret name, version) are the GCM associated data, so a
blob moved to another tenant, swapped with another secret's, or replayed from an older version
fails authentication. Every failure is one opaque :class:`TamperedBlob`, as Fernet does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from seks.errors import ConfigError, TamperedBlob, WrongMasterKey

__all__ = [
    "MasterKey",
    "check_value",
    "new_key",
    "open_secret",
    "seal_secret",
    "unwrap_dek",
    "unwrap_kek",
    "verify_check_value",
    "wrap_dek",
    "wrap_kek",
]

FORMAT_V1 = 1
_HEADER = struct.Struct(">BI")
_NONCE_LEN = 12
_TAG_LEN = 16
KEY_LEN = 32
_CHECK_MESSAGE = b"seks master key check v1"


class MasterKey:
    """The 256-bit root key. Its bytes never leave this class except through HKDF."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ConfigError(f"a master key is {KEY_LEN} bytes, got {len(key)}")
        self._key = key

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(os.urandom(KEY_LEN))

    @classmethod
    def from_hex(cls, text: str, *, source: str = "master key") -> MasterKey:
        text = text.strip()
        if len(text) != 2 * KEY_LEN:
            raise ConfigError(f"{source} must be {2 * KEY_LEN} hex characters, got {len(text)}")
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise ConfigError(f"{source} must be hex characters (0-9, a-f)") from None

    def to_hex(self) -> str:
        """Only for writing the key file at ``seks init``."""
        return self._key.hex()

    def derive(self, purpose: str) -> bytes:
        """A 256-bit subkey for one purpose (HKDF-SHA256, RFC 5869)."""
        return HKDF(
            algorithm=hashes.SHA256(), length=KEY_LEN, salt=None, info=b"seks/" + purpose.encode()
        ).derive(self._key)

    def __repr__(self) -> str:
        return "MasterKey(<redacted>)"


def new_key() -> bytes:
    return AESGCM.generate_key(256)


def check_value(master: MasterKey) -> bytes:
    """A value stored in the vault that tells a wrong master key from tampering."""
    return hmac.new(master.derive("check"), _CHECK_MESSAGE, hashlib.sha256).digest()


def verify_check_value(master: MasterKey, stored: bytes) -> None:
    if not hmac.compare_digest(check_value(master), stored):
        raise WrongMasterKey()


def _context(*fields: str | int) -> bytes:
    # JSON gives an unambiguous encoding: ("a|b", "c") and ("a", "b|c") differ.
    return json.dumps(fields, separators=(",", ":")).encode()


def _seal(key: bytes, key_version: int, context: bytes, plaintext: bytes) -> bytes:
    header = _HEADER.pack(FORMAT_V1, key_version)
    nonce = os.urandom(_NONCE_LEN)
    return header + nonce + AESGCM(key).encrypt(nonce, plaintext, header + context)


def _open(key: bytes, context: bytes, blob: bytes, what: str) -> bytes:
    if len(blob) < _HEADER.size + _NONCE_LEN + _TAG_LEN:
        raise TamperedBlob(what)
    header = blob[: _HEADER.size]
    fmt, _key_version = _HEADER.unpack(header)
    if fmt != FORMAT_V1:
        raise TamperedBlob(what)
    nonce = blob[_HEADER.size : _HEADER.size + _NONCE_LEN]
    try:
        return AESGCM(key).decrypt(nonce, blob[_HEADER.size + _NONCE_LEN :], header + context)
    except InvalidTag:
        raise TamperedBlob(what) from None


def blob_key_version(blob: bytes) -> int:
    """The key version a blob says it was sealed under (authenticated when opened)."""
    return int(_HEADER.unpack(blob[: _HEADER.size])[1])


def wrap_kek(master: MasterKey, tenant: str, version: int, kek: bytes) -> bytes:
    return _seal(master.derive("kek-wrap"), 1, _context("kek", tenant, version), kek)


def unwrap_kek(master: MasterKey, tenant: str, version: int, blob: bytes) -> bytes:
    return _open(master.derive("kek-wrap"), _context("kek", tenant, version), blob, "tenant key")


def wrap_dek(
    kek: bytes, kek_version: int, tenant: str, secret: str, version: int, dek: bytes
) -> bytes:
    return _seal(kek, kek_version, _context("dek", tenant, secret, version), dek)


def unwrap_dek(kek: bytes, tenant: str, secret: str, version: int, blob: bytes) -> bytes:
    return _open(kek, _context("dek", tenant, secret, version), blob, f"key of secret {secret!r}")


def seal_secret(dek: bytes, tenant: str, secret: str, version: int, plaintext: bytes) -> bytes:
    return _seal(dek, 0, _context("secret", tenant, secret, version), plaintext)


def open_secret(dek: bytes, tenant: str, secret: str, version: int, blob: bytes) -> bytes:
    return _open(dek, _context("secret", tenant, secret, version), blob, f"secret {secret!r}")
