"""Tenants, secrets, agents and tokens, over the encrypted SQLite file.

Every change commits together with its audit row, in one ``BEGIN IMMEDIATE`` transaction, so a
half-written change cannot exist and no change goes unaudited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from seks.errors import (
    AlreadyExists,
    ConfigError,
    NotFound,
)
from seks.store import crypto, tokens
from seks.store.audit import CHAIN_MIGRATION, AuditEvent, AuditLog, os_user
from seks.store.aws_credentials import AwsCredentials
from seks.store.db import connect, migrate, write_tx
from seks.store.secret import Secret
from seks.store.tokens import TokenInfo
from seks.store.vault_agents import AgentInfo, AgentOps, check_name
from seks.store.vault_tokens import DEFAULT_TENANT, TokenOps

__all__ = ["DEFAULT_TENANT", "AgentInfo", "SecretInfo", "TokenInfo", "Vault"]


APPROVAL_MODES = ("none", "required")


def check_approval(approval: str) -> str:
    if approval not in APPROVAL_MODES:
        raise ConfigError(f"approval must be one of {', '.join(APPROVAL_MODES)}, not {approval!r}")
    return approval


def _checked_value(provider: str, value: str) -> str:
    """A secret value as stored: an AWS secret's JSON checked and in its canonical form."""
    if not value:
        raise ConfigError("the secret value is empty")
    if provider == "aws":
        return AwsCredentials.from_json(value).to_json()
    return value


@dataclass(frozen=True, repr=False)
class SealedSecret:
    """A secret's newest version as the vault stores it: encrypted, and its tenant key wrapped
    under the master key. Reading it reveals nothing; :meth:`Vault.open_sealed` decrypts it."""

    tenant: str
    name: str
    provider: str
    version: int
    kek_version: int
    wrapped_dek: bytes
    ciphertext: bytes
    wrapped_kek: bytes

    def __repr__(self) -> str:
        return f"SealedSecret({self.tenant}/{self.name} v{self.version}, <encrypted>)"


@dataclass(frozen=True)
class SecretInfo:
    tenant: str
    name: str
    provider: str
    version: int
    created_at: float
    updated_at: float
    approval: str = "none"  # "required": each use waits for a person (seks approve)


class Vault(AgentOps, TokenOps):
    """The vault. Open it with :meth:`create` (at ``seks init``) or :meth:`open`."""

    def __init__(self, db: sqlite_utils.Database, master: crypto.MasterKey) -> None:
        self.db = db
        self._master = master
        self._pepper = master.derive("token-pepper")
        self.audit_key = master.derive("audit")
        self.proxy_auth_key = master.derive("proxy-auth")
        self.audit = AuditLog(db, self.audit_key)
        # Unwrapped tenant keys stay in memory for the life of the process, as Vault's keyring
        # does; plaintext secrets are decrypted per use and never cached. Cached with the
        # wrapped key they came from: a tenant removed and created again under the same name
        # (by another process, while the proxy runs) has a new key under the same version.
        self._keks: dict[tuple[str, int], tuple[bytes, bytes]] = {}

    def __repr__(self) -> str:
        return "Vault(<open>)"

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, master: crypto.MasterKey) -> Vault:
        db = connect(path)
        try:
            migrate(db)
            with write_tx(db):
                if db.execute("SELECT 1 FROM meta WHERE key = 'check'").fetchone():
                    raise AlreadyExists(f"a vault already exists at {path}")
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('check', ?)",
                    [crypto.check_value(master)],
                )
                AuditLog(db, master.derive("audit")).start_chain()  # the audit chain's birth
            vault = cls(db, master)
            vault.create_tenant(DEFAULT_TENANT)
        except BaseException:
            db.conn.close()
            raise
        return vault

    @classmethod
    def open(cls, path: Path, master: crypto.MasterKey) -> Vault:
        if not path.exists():
            raise NotFound(f"no vault at {path}: run `seks init` first")
        db = connect(path)
        try:
            applied = migrate(db)
            row = db.execute("SELECT value FROM meta WHERE key = 'check'").fetchone()
            if row is None:
                raise NotFound(f"the vault at {path} was never initialised: run `seks init`")
            crypto.verify_check_value(master, row[0])
            if CHAIN_MIGRATION in applied:
                # This process upgraded a vault from before the audit chain: chain its rows
                # now, with the key just checked. Only here, never for a head gone missing.
                with write_tx(db):
                    AuditLog(db, master.derive("audit")).start_chain()
        except BaseException:
            db.conn.close()
            raise
        return cls(db, master)

    def close(self) -> None:
        self.db.conn.close()

    # -- tenants ---------------------------------------------------------------------------

    def create_tenant(self, name: str, *, now: float | None = None) -> None:
        check_name("tenant", name)
        now = time.time() if now is None else now
        kek = crypto.new_key()
        with write_tx(self.db):
            if self.db.execute("SELECT 1 FROM tenants WHERE name = ?", [name]).fetchone():
                raise AlreadyExists(f"tenant {name!r} already exists")
            self.db.execute(
                "INSERT INTO tenants (name, kek_version, created_at) VALUES (?, 1, ?)", [name, now]
            )
            self.db.execute(
                "INSERT INTO tenant_keys (tenant, version, wrapped_kek, created_at) "
                "VALUES (?, 1, ?, ?)",
                [name, crypto.wrap_kek(self._master, name, 1, kek), now],
            )
            self.audit.append(AuditEvent("tenant.created", actor=os_user(), tenant=name))

    def _require_tenant(self, tenant: str) -> None:
        if not self.db.execute("SELECT 1 FROM tenants WHERE name = ?", [tenant]).fetchone():
            raise NotFound(f"no tenant {tenant!r}")

    def _tenant_kek(self, tenant: str, version: int | None = None) -> tuple[int, bytes]:
        if version is None:
            row = self.db.execute(
                "SELECT kek_version FROM tenants WHERE name = ?", [tenant]
            ).fetchone()
            if row is None:
                raise NotFound(f"no tenant {tenant!r}")
            version = int(row[0])
        row = self.db.execute(
            "SELECT wrapped_kek FROM tenant_keys WHERE tenant = ? AND version = ?",
            [tenant, version],
        ).fetchone()
        if row is None:
            raise NotFound(f"tenant {tenant!r} has no key version {version}")
        return version, self._unwrapped_kek(tenant, version, row[0])

    def _unwrapped_kek(self, tenant: str, version: int, wrapped: bytes) -> bytes:
        cached = self._keks.get((tenant, version))
        if cached is None or cached[0] != wrapped:
            cached = self._keks[(tenant, version)] = (
                wrapped,
                crypto.unwrap_kek(self._master, tenant, version, wrapped),
            )
        return cached[1]

    # -- secrets ---------------------------------------------------------------------------

    def _write_version(self, tenant: str, name: str, version: int, value: str, now: float) -> None:
        kek_version, kek = self._tenant_kek(tenant)
        dek = crypto.new_key()
        self.db.execute(
            "INSERT INTO secret_versions "
            "(tenant, name, version, kek_version, wrapped_dek, ciphertext, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                tenant,
                name,
                version,
                kek_version,
                crypto.wrap_dek(kek, kek_version, tenant, name, version, dek),
                crypto.seal_secret(dek, tenant, name, version, value.encode()),
                now,
            ],
        )

    def add_secret(
        self,
        name: str,
        provider: str,
        value: str,
        *,
        tenant: str = DEFAULT_TENANT,
        approval: str = "none",
        now: float | None = None,
    ) -> SecretInfo:
        check_name("secret", name)
        check_approval(approval)
        if not tokens.PROVIDER_NAME_RE.fullmatch(provider):
            raise ConfigError(
                f"provider name {provider!r} is not valid: use lower-case letters, digits and '-'"
            )
        value = _checked_value(provider, value)
        now = time.time() if now is None else now
        with write_tx(self.db):
            self._require_tenant(tenant)
            if self._secret_row(tenant, name) is not None:
                raise AlreadyExists(
                    f"secret {name!r} already exists: use `seks secret rotate {name}`"
                )
            self.db.execute(
                "INSERT INTO secrets "
                "(tenant, name, provider, version, created_at, updated_at, approval) "
                "VALUES (?, ?, ?, 1, ?, ?, ?)",
                [tenant, name, provider, now, now, approval],
            )
            self._write_version(tenant, name, 1, value, now)
            self.audit.append(
                AuditEvent(
                    "secret.added",
                    actor=os_user(),
                    tenant=tenant,
                    provider=provider,
                    secret_name=name,
                ),
            )
        return self.get_secret_info(name, tenant=tenant)

    def rotate_secret(
        self, name: str, value: str, *, tenant: str = DEFAULT_TENANT, now: float | None = None
    ) -> SecretInfo:
        now = time.time() if now is None else now
        with write_tx(self.db):
            info = self._require_secret(tenant, name)
            value = _checked_value(info.provider, value)
            version = info.version + 1
            self._write_version(tenant, name, version, value, now)
            self.db.execute(
                "UPDATE secrets SET version = ?, updated_at = ? WHERE tenant = ? AND name = ?",
                [version, now, tenant, name],
            )
            self.audit.append(
                AuditEvent(
                    "secret.rotated",
                    actor=os_user(),
                    tenant=tenant,
                    provider=info.provider,
                    secret_name=name,
                ),
            )
        return self.get_secret_info(name, tenant=tenant)

    def remove_secret(
        self, name: str, *, tenant: str = DEFAULT_TENANT, now: float | None = None
    ) -> int:
        """Delete every version of a secret and revoke the tokens bound to it."""
        now = time.time() if now is None else now
        with write_tx(self.db):
            info = self._require_secret(tenant, name)
            self.db.execute(
                "DELETE FROM secret_versions WHERE tenant = ? AND name = ?", [tenant, name]
            )
            self.db.execute("DELETE FROM secrets WHERE tenant = ? AND name = ?", [tenant, name])
            revoked = tokens.revoke_where(
                self.db, self.audit, "tenant = ? AND secret_name = ?", [tenant, name], now
            )
            self.audit.append(
                AuditEvent(
                    "secret.removed",
                    actor=os_user(),
                    tenant=tenant,
                    provider=info.provider,
                    secret_name=name,
                ),
            )
        return revoked

    def _secret_row(self, tenant: str, name: str) -> SecretInfo | None:
        row = self.db.execute(
            "SELECT tenant, name, provider, version, created_at, updated_at, approval "
            "FROM secrets WHERE tenant = ? AND name = ?",
            [tenant, name],
        ).fetchone()
        return SecretInfo(*row) if row else None

    def _require_secret(self, tenant: str, name: str) -> SecretInfo:
        info = self._secret_row(tenant, name)
        if info is None:
            raise NotFound(f"no secret {name!r} in tenant {tenant!r}")
        return info

    def get_secret_info(self, name: str, *, tenant: str = DEFAULT_TENANT) -> SecretInfo:
        return self._require_secret(tenant, name)

    def list_secrets(self, *, tenant: str = DEFAULT_TENANT) -> list[SecretInfo]:
        rows = self.db.execute(
            "SELECT tenant, name, provider, version, created_at, updated_at, approval "
            "FROM secrets WHERE tenant = ? ORDER BY name",
            [tenant],
        ).fetchall()
        return [SecretInfo(*r) for r in rows]

    def reveal_secret(self, name: str, *, tenant: str = DEFAULT_TENANT) -> Secret:
        """Decrypt the newest version. Only the injection step calls this."""
        return self.open_sealed(self.sealed_secret(name, tenant=tenant))

    def sealed_secret(self, name: str, *, tenant: str = DEFAULT_TENANT) -> SealedSecret:
        """The newest version as stored, still encrypted, with its tenant key as stored."""
        row = self.db.execute(
            "SELECT s.provider, s.version, v.kek_version, v.wrapped_dek, v.ciphertext, "
            "k.wrapped_kek FROM secrets s JOIN secret_versions v "
            "ON v.tenant = s.tenant AND v.name = s.name AND v.version = s.version "
            "LEFT JOIN tenant_keys k ON k.tenant = s.tenant AND k.version = v.kek_version "
            "WHERE s.tenant = ? AND s.name = ?",
            [tenant, name],
        ).fetchone()
        if row is None:
            raise NotFound(f"no secret {name!r} in tenant {tenant!r}")
        if row[5] is None:
            raise NotFound(f"tenant {tenant!r} has no key version {row[2]}")
        return SealedSecret(tenant, name, *row)

    def open_sealed(self, sealed: SealedSecret) -> Secret:
        """Decrypt a sealed secret (checking every layer's tag and associated data)."""
        tenant, name, version = sealed.tenant, sealed.name, sealed.version
        kek = self._unwrapped_kek(tenant, sealed.kek_version, sealed.wrapped_kek)
        dek = crypto.unwrap_dek(kek, tenant, name, version, sealed.wrapped_dek)
        value = crypto.open_secret(dek, tenant, name, version, sealed.ciphertext)
        return Secret(name, sealed.provider, version, value.decode())

    def secrets_fingerprint(self, tenant: str | None) -> tuple[object, ...]:
        """Changes whenever a secret of ``tenant`` (None: any tenant) is added, rotated or
        removed: the proxy rebuilds its scrubbing matcher then."""
        where, params = ("WHERE tenant = ?", [tenant]) if tenant is not None else ("", [])
        row = self.db.execute(
            "SELECT count(*), total(version), max(updated_at), "  # noqa: S608
            f"group_concat(tenant || '/' || name) FROM secrets {where}",
            params,
        ).fetchone()
        return tuple(row)

    def reveal_all(self, tenant: str | None) -> list[Secret]:
        """Every secret of ``tenant`` (None: of every tenant), decrypted: for scrubbing."""
        where, params = ("WHERE tenant = ?", [tenant]) if tenant is not None else ("", [])
        rows = self.db.execute(f"SELECT tenant, name FROM secrets {where}", params).fetchall()  # noqa: S608
        return [self.reveal_secret(name, tenant=t) for t, name in rows]
