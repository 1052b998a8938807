"""Agents: the holders of fake tokens. Mixed into :class:`~seks.store.vault.Vault`."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlite_utils

from seks.errors import AlreadyExists, ConfigError, NotFound
from seks.store import proxy_auth, tokens
from seks.store.audit import AuditEvent, AuditLog, os_user
from seks.store.db import write_tx
from seks.store.vault_tokens import DEFAULT_TENANT

__all__ = ["AgentInfo", "AgentOps", "check_name"]

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{kind} name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class AgentInfo:
    tenant: str
    name: str
    created_at: float
    proxy_auth: bool = False  # its tokens work only on connections authenticated as it


class AgentOps:
    """Needs from the vault it is mixed into: its connection, audit log and tenant check."""

    db: sqlite_utils.Database
    audit: AuditLog

    if TYPE_CHECKING:

        def _require_tenant(self, tenant: str) -> None: ...

    def create_agent(
        self,
        name: str,
        *,
        tenant: str = DEFAULT_TENANT,
        proxy_auth: bool = False,
        now: float | None = None,
    ) -> AgentInfo:
        check_name("agent", name)
        now = time.time() if now is None else now
        with write_tx(self.db):
            self._require_tenant(tenant)
            if self._agent_exists(tenant, name):
                raise AlreadyExists(f"agent {name!r} already exists")
            self.db.execute(
                "INSERT INTO agents (tenant, name, created_at, proxy_auth) VALUES (?, ?, ?, ?)",
                [tenant, name, now, int(proxy_auth)],
            )
            self.audit.append(
                AuditEvent("agent.created", actor=os_user(), tenant=tenant, agent=name)
            )
        return AgentInfo(tenant, name, now, proxy_auth)

    def _agent_exists(self, tenant: str, name: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM agents WHERE tenant = ? AND name = ?", [tenant, name]
        ).fetchone()
        return row is not None

    def list_agents(self, *, tenant: str = DEFAULT_TENANT) -> list[AgentInfo]:
        rows = self.db.execute(
            "SELECT tenant, name, created_at, proxy_auth FROM agents WHERE tenant = ? "
            "ORDER BY name",
            [tenant],
        ).fetchall()
        return [AgentInfo(t, n, c, bool(p)) for t, n, c, p in rows]

    def remove_agent(
        self, name: str, *, tenant: str = DEFAULT_TENANT, now: float | None = None
    ) -> int:
        """Remove an agent and revoke all its tokens. Returns how many were revoked."""
        now = time.time() if now is None else now
        with write_tx(self.db):
            if not self._agent_exists(tenant, name):
                raise NotFound(f"no agent {name!r}")
            revoked = tokens.revoke_where(
                self.db, self.audit, "tenant = ? AND agent = ?", [tenant, name], now
            )
            # Else an agent created again under this name would inherit its proxy passwords.
            proxy_auth.revoke_where(
                self.db, self.audit, "tenant = ? AND agent = ?", [tenant, name], now
            )
            self.db.execute("DELETE FROM agents WHERE tenant = ? AND name = ?", [tenant, name])
            self.audit.append(
                AuditEvent("agent.removed", actor=os_user(), tenant=tenant, agent=name)
            )
        return revoked
