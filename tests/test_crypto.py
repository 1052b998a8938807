"""Envelope encryption: any tampering is one clean TamperedBlob; keys and secrets never print."""

from __future__ import annotations

import pickle
import secrets
import sqlite3
import traceback
from pathlib import Path

import pytest

from seks.errors import ConfigError, SeksError, TamperedBlob, WrongMasterKey
from seks.store import MasterKey, Secret, Vault
from seks.store.crypto import (
    check_value,
    new_key,
    open_secret,
    seal_secret,
    unwrap_dek,
    unwrap_kek,
    verify_check_value,
    wrap_dek,
    wrap_kek,
)

HEADER, NONCE, TAG = 5, 12, 16  # format byte + key version, GCM nonce, GCM tag


def assert_clean(err: BaseException) -> None:
    """A SEKS error whose traceback shows nothing of the cryptography library."""
    assert isinstance(err, SeksError)
    text = "".join(traceback.format_exception(err))
    assert "InvalidTag" not in text
    assert "cryptography" not in text


def flip_bit(blob: bytes, bit: int) -> bytes:
    out = bytearray(blob)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# -- blobs, directly ----------------------------------------------------------------------


@pytest.fixture
def sealed(canary: str) -> tuple[bytes, bytes]:
    dek = new_key()
    return dek, seal_secret(dek, "acme", "openai-key", 1, canary.encode())


def test_sealed_secret_opens_to_its_plaintext_and_does_not_contain_it(
    sealed: tuple[bytes, bytes], canary: str
) -> None:
    dek, blob = sealed
    assert canary.encode() not in blob
    assert open_secret(dek, "acme", "openai-key", 1, blob) == canary.encode()


def test_sealing_twice_gives_different_blobs(canary: str) -> None:
    dek = new_key()
    a = seal_secret(dek, "acme", "k", 1, canary.encode())
    b = seal_secret(dek, "acme", "k", 1, canary.encode())
    assert a != b  # a fresh nonce each time


@pytest.mark.parametrize(
    "region",
    [
        pytest.param(lambda n: range(0, HEADER), id="header"),
        pytest.param(lambda n: range(HEADER, HEADER + NONCE), id="nonce"),
        pytest.param(lambda n: range(HEADER + NONCE, n - TAG), id="ciphertext"),
        pytest.param(lambda n: range(n - TAG, n), id="tag"),
    ],
)
def test_every_flipped_bit_is_a_clean_tampered_blob(sealed: tuple[bytes, bytes], region) -> None:
    dek, blob = sealed
    byte_range = region(len(blob))
    assert len(byte_range) > 0
    for byte in byte_range:
        for bit in range(8):
            with pytest.raises(TamperedBlob) as e:
                open_secret(dek, "acme", "openai-key", 1, flip_bit(blob, byte * 8 + bit))
            assert_clean(e.value)


def test_every_truncation_and_an_extension_are_tampered_blobs(sealed: tuple[bytes, bytes]) -> None:
    dek, blob = sealed
    for cut in range(len(blob)):
        with pytest.raises(TamperedBlob) as e:
            open_secret(dek, "acme", "openai-key", 1, blob[:cut])
        assert_clean(e.value)
    with pytest.raises(TamperedBlob):
        open_secret(dek, "acme", "openai-key", 1, blob + b"\x00")


@pytest.mark.parametrize(
    ("tenant", "secret", "version"),
    [
        pytest.param("globex", "openai-key", 1, id="other-tenant"),
        pytest.param("acme", "github-key", 1, id="other-secret"),
        pytest.param("acme", "openai-key", 2, id="other-version"),
    ],
)
def test_blob_opened_in_another_context_is_tampered(
    sealed: tuple[bytes, bytes], tenant: str, secret: str, version: int
) -> None:
    dek, blob = sealed
    with pytest.raises(TamperedBlob) as e:
        open_secret(dek, tenant, secret, version, blob)
    assert_clean(e.value)


def test_dek_wrapped_for_one_tenant_does_not_unwrap_for_another() -> None:
    acme_kek, globex_kek, dek = new_key(), new_key(), new_key()
    wrapped = wrap_dek(acme_kek, 1, "acme", "k", 1, dek)
    assert unwrap_dek(acme_kek, "acme", "k", 1, wrapped) == dek
    with pytest.raises(TamperedBlob):
        unwrap_dek(globex_kek, "acme", "k", 1, wrapped)  # another tenant's KEK
    with pytest.raises(TamperedBlob):
        unwrap_dek(acme_kek, "globex", "k", 1, wrapped)  # tenant field differs in AAD


def test_kek_is_bound_to_master_key_tenant_and_version(master: MasterKey) -> None:
    kek = new_key()
    wrapped = wrap_kek(master, "acme", 1, kek)
    assert unwrap_kek(master, "acme", 1, wrapped) == kek
    for args in [(MasterKey.generate(), "acme", 1), (master, "globex", 1), (master, "acme", 2)]:
        with pytest.raises(TamperedBlob) as e:
            unwrap_kek(*args, wrapped)
        assert_clean(e.value)


def test_check_value_tells_a_wrong_master_key(master: MasterKey) -> None:
    verify_check_value(master, check_value(master))
    with pytest.raises(WrongMasterKey):
        verify_check_value(MasterKey.generate(), check_value(master))


# -- blobs tampered in the vault file -----------------------------------------------------


def raw_update(path: Path, sql: str, params: list[object]) -> None:
    """Edit the file behind the vault's back, as an attacker with the file would."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, params)
    conn.close()


def version_row(vault: Vault, name: str, version: int, tenant: str = "default") -> tuple:
    return vault.db.execute(
        "SELECT kek_version, wrapped_dek, ciphertext FROM secret_versions "
        "WHERE tenant = ? AND name = ? AND version = ?",
        [tenant, name, version],
    ).fetchone()


@pytest.mark.parametrize("column", ["wrapped_dek", "ciphertext"])
def test_flipped_bit_in_a_stored_blob_fails_reveal(
    vault: Vault, vault_path: Path, canary: str, column: str
) -> None:
    vault.add_secret("k", "openai", canary)
    _, wrapped_dek, ciphertext = version_row(vault, "k", 1)
    blob = {"wrapped_dek": wrapped_dek, "ciphertext": ciphertext}[column]
    raw_update(
        vault_path,
        f"UPDATE secret_versions SET {column} = ? WHERE name = 'k'",  # noqa: S608
        [flip_bit(blob, 8 * (len(blob) - 1))],
    )
    with pytest.raises(TamperedBlob) as e:
        vault.reveal_secret("k")
    assert_clean(e.value)
    assert canary not in str(e.value)


@pytest.mark.parametrize(
    "columns", [["ciphertext"], ["wrapped_dek"], ["wrapped_dek", "ciphertext"]]
)
def test_two_secrets_blobs_swapped_in_the_db_fail_reveal(
    vault: Vault, vault_path: Path, canary: str, columns: list[str]
) -> None:
    vault.add_secret("a", "openai", canary)
    vault.add_secret("b", "openai", canary + "-b")
    rows = {}
    for n in "ab":
        _, wrapped_dek, ciphertext = version_row(vault, n, 1)
        rows[n] = {"wrapped_dek": wrapped_dek, "ciphertext": ciphertext}
    for column in columns:
        for name, other in [("a", "b"), ("b", "a")]:
            raw_update(
                vault_path,
                f"UPDATE secret_versions SET {column} = ? WHERE name = ?",  # noqa: S608
                [rows[other][column], name],
            )
    for name in "ab":
        with pytest.raises(TamperedBlob) as e:
            vault.reveal_secret(name)
        assert_clean(e.value)


def test_old_version_replayed_as_the_new_one_fails_reveal(
    vault: Vault, vault_path: Path, canary: str
) -> None:
    vault.add_secret("k", "openai", canary + "-old")
    vault.rotate_secret("k", canary)
    kek_version, wrapped_dek, ciphertext = version_row(vault, "k", 1)
    raw_update(
        vault_path,
        "UPDATE secret_versions SET kek_version = ?, wrapped_dek = ?, ciphertext = ? "
        "WHERE name = 'k' AND version = 2",
        [kek_version, wrapped_dek, ciphertext],
    )
    with pytest.raises(TamperedBlob) as e:
        vault.reveal_secret("k")
    assert_clean(e.value)


def test_secret_blob_moved_to_another_tenant_fails_reveal(
    vault: Vault, vault_path: Path, canary: str
) -> None:
    vault.create_tenant("acme")
    vault.create_tenant("globex")
    vault.add_secret("k", "openai", canary, tenant="acme")
    vault.add_secret("k", "openai", canary + "-globex", tenant="globex")
    _, wrapped_dek, ciphertext = version_row(vault, "k", 1, tenant="acme")
    raw_update(
        vault_path,
        "UPDATE secret_versions SET wrapped_dek = ?, ciphertext = ? WHERE tenant = 'globex'",
        [wrapped_dek, ciphertext],
    )
    with pytest.raises(TamperedBlob) as e:
        vault.reveal_secret("k", tenant="globex")
    assert_clean(e.value)
    assert vault.reveal_secret("k", tenant="acme").reveal() == canary


def test_tenant_key_moved_to_another_tenant_fails_reveal(
    vault: Vault, vault_path: Path, master: MasterKey, canary: str
) -> None:
    vault.create_tenant("acme")
    vault.create_tenant("globex")
    vault.add_secret("k", "openai", canary, tenant="globex")
    vault.close()
    raw_update(
        vault_path,
        "UPDATE tenant_keys SET wrapped_kek = "
        "(SELECT wrapped_kek FROM tenant_keys WHERE tenant = 'acme') WHERE tenant = 'globex'",
        [],
    )
    reopened = Vault.open(vault_path, master)
    try:
        with pytest.raises(TamperedBlob) as e:
            reopened.reveal_secret("k", tenant="globex")
        assert_clean(e.value)
    finally:
        reopened.close()


def test_wrong_master_key_is_one_clean_line_and_leaves_the_vault_usable(
    vault: Vault, vault_path: Path, master: MasterKey, canary: str
) -> None:
    vault.add_secret("k", "openai", canary)
    vault.close()
    with pytest.raises(WrongMasterKey) as e:
        Vault.open(vault_path, MasterKey.generate())
    message = str(e.value)
    assert message and "\n" not in message
    assert "master key" in message
    assert_clean(e.value)
    reopened = Vault.open(vault_path, master)
    try:
        assert reopened.reveal_secret("k").reveal() == canary
    finally:
        reopened.close()


# -- the master key -----------------------------------------------------------------------


def test_master_key_hex_roundtrip_tolerates_surrounding_whitespace(master: MasterKey) -> None:
    again = MasterKey.from_hex(f"  {master.to_hex()}\n")
    assert again.to_hex() == master.to_hex()


@pytest.mark.parametrize("length", [0, 32, 63, 65, 128])
def test_master_key_hex_of_wrong_length_is_a_config_error(length: int) -> None:
    text = secrets.token_hex(64)[:length]
    with pytest.raises(ConfigError) as e:
        MasterKey.from_hex(text, source="SEKS_MASTER_KEY")
    message = str(e.value)
    assert "SEKS_MASTER_KEY" in message
    assert "64 hex characters" in message
    assert f"got {length}" in message
    if text:
        assert text not in message


@pytest.mark.parametrize("bad", ["zz", "0x", "g0", "é0", " 0"])
def test_master_key_with_non_hex_characters_is_a_config_error(bad: str) -> None:
    text = secrets.token_hex(31) + bad
    assert len(text) == 64
    with pytest.raises(ConfigError) as e:
        MasterKey.from_hex(text)
    assert "hex characters" in str(e.value)
    assert text not in str(e.value)
    assert e.value.__cause__ is None


def test_master_key_of_wrong_byte_length_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        MasterKey(b"\x00" * 16)


def test_master_key_repr_and_str_do_not_show_the_key() -> None:
    hex_key = secrets.token_hex(32)
    key = MasterKey.from_hex(hex_key)
    for shown in (repr(key), str(key), f"{key}", repr([key])):
        assert hex_key not in shown.lower()
        assert repr(bytes.fromhex(hex_key)) not in shown


# -- the Secret type ----------------------------------------------------------------------


def test_secret_repr_and_str_never_show_the_value(canary: str) -> None:
    secret = Secret("openai-key", "openai", 3, canary)
    for shown in (repr(secret), str(secret), f"{secret}", "%s" % secret, repr({"s": secret})):  # noqa: UP031
        assert canary not in shown
        assert "openai-key" in shown
    assert secret.reveal() == canary


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_secret_raises_type_error(canary: str, protocol: int) -> None:
    with pytest.raises(TypeError) as e:
        pickle.dumps(Secret("k", "openai", 1, canary), protocol=protocol)
    assert canary not in str(e.value)
