"""Tenants, secrets, agents and tokens, over the encrypted SQLite file.

Every change commits together with its audit row, in one ``BEGIN IMMEDIATE`` transaction, so a
half-written change cannot exist and no change goes unaudited.
"""

from __future__ import annotations

import getpass
import hmac
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from seks.errors import (
    AlreadyExists,
    ConfigError,
    NotFound,
    TokenExpired,
    TokenRevoked,
    UnknownToken,
)
from seks.store import crypto, tokens
from seks.store.audit import AuditEvent, append
from seks.store.db import connect, migrate, write_tx
from seks.store.secret import Secret

__all__ = ["DEFAULT_TENANT", "AgentInfo", "SecretInfo", "TokenInfo", "Vault"]

DEFAULT_TENANT = "default"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{kind} name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class SecretInfo:
    tenant: str
    name: str
    provider: str
    version: int
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class AgentInfo:
    tenant: str
    name: str
    created_at: float


@dataclass(frozen=True)
class TokenInfo:
    id: str
    tenant: str
    agent: str
    provider: str
    secret_name: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    session: str | None

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Vault:
    """The vault. Open it with :meth:`create` (at ``seks init``) or :meth:`open`."""

    def __init__(self, db: sqlite_utils.Database, master: crypto.MasterKey) -> None:
        self.db = db
        self._master = master
        self._pepper = master.derive("token-pepper")
        # Unwrapped tenant keys stay in memory for the life of the process, as Vault's keyring
        # does; plaintext secrets are decrypted per use and never cached.
        self._keks: dict[tuple[str, int], bytes] = {}

    def __repr__(self) -> str:
        return "Vault(<open>)"

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, master: crypto.MasterKey) -> Vault:
        db = connect(path)
        migrate(db)
        with write_tx(db):
            if db.execute("SELECT 1 FROM meta WHERE key = 'check'").fetchone():
                raise AlreadyExists(f"a vault already exists at {path}")
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('check', ?)", [crypto.check_value(master)]
            )
        vault = cls(db, master)
        vault.create_tenant(DEFAULT_TENANT)
        return vault

    @classmethod
    def open(cls, path: Path, master: crypto.MasterKey) -> Vault:
        if not path.exists():
            raise NotFound(f"no vault at {path}: run `seks init` first")
        db = connect(path)
        migrate(db)
        row = db.execute("SELECT value FROM meta WHERE key = 'check'").fetchone()
        if row is None:
            raise NotFound(f"the vault at {path} was never initialised: run `seks init`")
        crypto.verify_check_value(master, row[0])
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
            append(self.db, AuditEvent("tenant.created", actor=_os_user(), tenant=name))

    def _tenant_kek(self, tenant: str, version: int | None = None) -> tuple[int, bytes]:
        if version is None:
            row = self.db.execute(
                "SELECT kek_version FROM tenants WHERE name = ?", [tenant]
            ).fetchone()
            if row is None:
                raise NotFound(f"no tenant {tenant!r}")
            version = int(row[0])
        key = (tenant, version)
        if key not in self._keks:
            row = self.db.execute(
                "SELECT wrapped_kek FROM tenant_keys WHERE tenant = ? AND version = ?",
                [tenant, version],
            ).fetchone()
            if row is None:
                raise NotFound(f"tenant {tenant!r} has no key version {version}")
            self._keks[key] = crypto.unwrap_kek(self._master, tenant, version, row[0])
        return version, self._keks[key]

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
        now: float | None = None,
    ) -> SecretInfo:
        check_name("secret", name)
        if not value:
            raise ConfigError("the secret value is empty")
        now = time.time() if now is None else now
        with write_tx(self.db):
            if self._secret_row(tenant, name) is not None:
                raise AlreadyExists(
                    f"secret {name!r} already exists: use `seks secret rotate {name}`"
                )
            self.db.execute(
                "INSERT INTO secrets (tenant, name, provider, version, created_at, updated_at) "
                "VALUES (?, ?, ?, 1, ?, ?)",
                [tenant, name, provider, now, now],
            )
            self._write_version(tenant, name, 1, value, now)
            append(
                self.db,
                AuditEvent(
                    "secret.added",
                    actor=_os_user(),
                    tenant=tenant,
                    provider=provider,
                    secret_name=name,
                ),
            )
        return self.get_secret_info(name, tenant=tenant)

    def rotate_secret(
        self, name: str, value: str, *, tenant: str = DEFAULT_TENANT, now: float | None = None
    ) -> SecretInfo:
        if not value:
            raise ConfigError("the secret value is empty")
        now = time.time() if now is None else now
        with write_tx(self.db):
            info = self._require_secret(tenant, name)
            version = info.version + 1
            self._write_version(tenant, name, version, value, now)
            self.db.execute(
                "UPDATE secrets SET version = ?, updated_at = ? WHERE tenant = ? AND name = ?",
                [version, now, tenant, name],
            )
            append(
                self.db,
                AuditEvent(
                    "secret.rotated",
                    actor=_os_user(),
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
            revoked = self.db.execute(
                "UPDATE tokens SET revoked_at = ? "
                "WHERE tenant = ? AND secret_name = ? AND revoked_at IS NULL",
                [now, tenant, name],
            ).rowcount
            append(
                self.db,
                AuditEvent(
                    "secret.removed",
                    actor=_os_user(),
                    tenant=tenant,
                    provider=info.provider,
                    secret_name=name,
                ),
            )
        return int(revoked)

    def _secret_row(self, tenant: str, name: str) -> SecretInfo | None:
        row = self.db.execute(
            "SELECT tenant, name, provider, version, created_at, updated_at FROM secrets "
            "WHERE tenant = ? AND name = ?",
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
            "SELECT tenant, name, provider, version, created_at, updated_at FROM secrets "
            "WHERE tenant = ? ORDER BY name",
            [tenant],
        ).fetchall()
        return [SecretInfo(*r) for r in rows]

    def reveal_secret(self, name: str, *, tenant: str = DEFAULT_TENANT) -> Secret:
        """Decrypt the newest version. Only the injection step calls this."""
        info = self._require_secret(tenant, name)
        row = self.db.execute(
            "SELECT kek_version, wrapped_dek, ciphertext FROM secret_versions "
            "WHERE tenant = ? AND name = ? AND version = ?",
            [tenant, name, info.version],
        ).fetchone()
        if row is None:
            raise NotFound(f"secret {name!r} has no version {info.version}")
        _, kek = self._tenant_kek(tenant, int(row[0]))
        dek = crypto.unwrap_dek(kek, tenant, name, info.version, row[1])
        value = crypto.open_secret(dek, tenant, name, info.version, row[2])
        return Secret(name, info.provider, info.version, value.decode())

    # -- agents ----------------------------------------------------------------------------

    def create_agent(
        self, name: str, *, tenant: str = DEFAULT_TENANT, now: float | None = None
    ) -> AgentInfo:
        check_name("agent", name)
        now = time.time() if now is None else now
        with write_tx(self.db):
            if self._agent_exists(tenant, name):
                raise AlreadyExists(f"agent {name!r} already exists")
            self.db.execute(
                "INSERT INTO agents (tenant, name, created_at) VALUES (?, ?, ?)",
                [tenant, name, now],
            )
            append(
                self.db, AuditEvent("agent.created", actor=_os_user(), tenant=tenant, agent=name)
            )
        return AgentInfo(tenant, name, now)

    def _agent_exists(self, tenant: str, name: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM agents WHERE tenant = ? AND name = ?", [tenant, name]
        ).fetchone()
        return row is not None

    def list_agents(self, *, tenant: str = DEFAULT_TENANT) -> list[AgentInfo]:
        rows = self.db.execute(
            "SELECT tenant, name, created_at FROM agents WHERE tenant = ? ORDER BY name", [tenant]
        ).fetchall()
        return [AgentInfo(*r) for r in rows]

    def remove_agent(
        self, name: str, *, tenant: str = DEFAULT_TENANT, now: float | None = None
    ) -> int:
        """Remove an agent and revoke all its tokens. Returns how many were revoked."""
        now = time.time() if now is None else now
        with write_tx(self.db):
            if not self._agent_exists(tenant, name):
                raise NotFound(f"no agent {name!r}")
            revoked = self._revoke_where("tenant = ? AND agent = ?", [tenant, name], now)
            self.db.execute("DELETE FROM agents WHERE tenant = ? AND name = ?", [tenant, name])
            append(
                self.db, AuditEvent("agent.removed", actor=_os_user(), tenant=tenant, agent=name)
            )
        return revoked

    # -- tokens ----------------------------------------------------------------------------

    def issue_token(
        self,
        agent: str,
        provider: str,
        *,
        secret_name: str | None = None,
        ttl: float | None = None,
        tenant: str = DEFAULT_TENANT,
        session: str | None = None,
        now: float | None = None,
    ) -> tuple[str, TokenInfo]:
        """Mint a token bound to one secret. Returns the token (shown once) and its record."""
        now = time.time() if now is None else now
        if ttl is not None and ttl <= 0:
            raise ConfigError("the token's ttl must be positive")
        with write_tx(self.db):
            if not self._agent_exists(tenant, agent):
                raise NotFound(f"no agent {agent!r}: create it with `seks agent create {agent}`")
            secret = self._secret_for(tenant, provider, secret_name)
            token = tokens.mint(provider)
            info = TokenInfo(
                id=tokens.new_public_id(),
                tenant=tenant,
                agent=agent,
                provider=provider,
                secret_name=secret,
                created_at=now,
                expires_at=None if ttl is None else now + ttl,
                revoked_at=None,
                session=session,
            )
            self.db.execute(
                "INSERT INTO tokens (id, token_hash, tenant, agent, provider, secret_name, "
                "created_at, expires_at, revoked_at, session) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    info.id,
                    tokens.token_hash(self._pepper, token),
                    tenant,
                    agent,
                    provider,
                    secret,
                    now,
                    info.expires_at,
                    None,
                    session,
                ],
            )
            append(
                self.db,
                AuditEvent(
                    "token.issued",
                    actor=_os_user(),
                    tenant=tenant,
                    agent=agent,
                    token_id=info.id,
                    provider=provider,
                    secret_name=secret,
                ),
            )
        return token, info

    def _secret_for(self, tenant: str, provider: str, secret_name: str | None) -> str:
        if secret_name is not None:
            info = self._require_secret(tenant, secret_name)
            if info.provider != provider:
                raise ConfigError(
                    f"secret {secret_name!r} is for provider {info.provider!r}, not {provider!r}"
                )
            return secret_name
        names = [s.name for s in self.list_secrets(tenant=tenant) if s.provider == provider]
        if not names:
            raise NotFound(
                f"no secret for provider {provider!r}: "
                f"add one with `seks secret add NAME --provider {provider}`"
            )
        if len(names) > 1:
            raise ConfigError(
                f"several secrets for provider {provider!r} ({', '.join(names)}): "
                "choose one with --secret"
            )
        return names[0]

    def providers_with_secrets(self, *, tenant: str = DEFAULT_TENANT) -> list[str]:
        return sorted({s.provider for s in self.list_secrets(tenant=tenant)})

    def list_tokens(
        self, *, tenant: str = DEFAULT_TENANT, agent: str | None = None
    ) -> list[TokenInfo]:
        sql = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE tenant = ?"  # noqa: S608
        params: list[Any] = [tenant]
        if agent is not None:
            sql += " AND agent = ?"
            params.append(agent)
        rows = self.db.execute(sql + " ORDER BY created_at, id", params).fetchall()
        return [TokenInfo(*r) for r in rows]

    def revoke_token(
        self, token_id: str, *, tenant: str = DEFAULT_TENANT, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        with write_tx(self.db):
            row = self.db.execute(
                "SELECT revoked_at FROM tokens WHERE id = ? AND tenant = ?", [token_id, tenant]
            ).fetchone()
            if row is None:
                raise NotFound(f"no token with id {token_id!r}")
            if row[0] is not None:
                raise AlreadyExists(f"token {token_id} is already revoked")
            self._revoke_where("id = ?", [token_id], now)

    def revoke_session(self, session: str, *, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with write_tx(self.db):
            return self._revoke_where("session = ?", [session], now)

    def _revoke_where(self, where: str, params: list[Any], now: float) -> int:
        rows = self.db.execute(
            f"SELECT id, tenant, agent, provider FROM tokens WHERE {where} AND revoked_at IS NULL",  # noqa: S608
            params,
        ).fetchall()
        for token_id, tenant, agent, provider in rows:
            self.db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", [now, token_id])
            append(
                self.db,
                AuditEvent(
                    "token.revoked",
                    actor=_os_user(),
                    tenant=tenant,
                    agent=agent,
                    token_id=token_id,
                    provider=provider,
                ),
            )
        return len(rows)

    def resolve_token(self, token: str, *, now: float | None = None) -> TokenInfo:
        """The record behind a fake token, or the refusal an agent should see."""
        parsed = tokens.parse(token)  # a typo is refused before any lookup
        digest = tokens.token_hash(self._pepper, token)
        row = self.db.execute(
            f"SELECT {_TOKEN_COLUMNS}, token_hash FROM tokens WHERE token_hash = ?",  # noqa: S608
            [digest],
        ).fetchone()
        if row is None or not hmac.compare_digest(row[-1], digest):
            raise UnknownToken("this token is not known to the SEKS vault")
        info = TokenInfo(*row[:-1])
        assert info.provider == parsed.provider  # the provider is part of the hashed token
        now = time.time() if now is None else now
        state = info.state(now)
        if state == "revoked":
            raise TokenRevoked(f"token {info.id} was revoked")
        if state == "expired":
            raise TokenExpired(f"token {info.id} expired; ask for a new one")
        return info


# Column names, not a password.
_TOKEN_COLUMNS = (
    "id, tenant, agent, provider, secret_name, created_at, expires_at, revoked_at, session"  # noqa: E501, S105
)
