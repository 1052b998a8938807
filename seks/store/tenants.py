"""Tenants: listing them, and removing one with everything it holds.

Each tenant has its own key (KEK) wrapping its secrets' keys, and every lookup of a secret, an
agent or a token is by (tenant, name), so one tenant's token can never reach another tenant's
secret. Creating a tenant is :meth:`Vault.create_tenant`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from seks.errors import ConfigError, NotFound, VaultError
from seks.store import approvals, proxy_auth, tokens
from seks.store.audit import AuditEvent, os_user
from seks.store.db import write_tx
from seks.store.vault import DEFAULT_TENANT, Vault

__all__ = ["TenantInfo", "TenantNotEmpty", "list_tenants", "remove_tenant", "require_tenant"]


class TenantNotEmpty(VaultError):
    pass


@dataclass(frozen=True)
class TenantInfo:
    name: str
    created_at: float
    secrets: int
    agents: int


@dataclass(frozen=True)
class RemovedTenant:
    secrets: int
    agents: int
    tokens_revoked: int


def list_tenants(vault: Vault) -> list[TenantInfo]:
    rows = vault.db.execute(
        "SELECT t.name, t.created_at, "
        "(SELECT count(*) FROM secrets s WHERE s.tenant = t.name), "
        "(SELECT count(*) FROM agents a WHERE a.tenant = t.name) "
        "FROM tenants t ORDER BY t.name"
    ).fetchall()
    return [TenantInfo(*r) for r in rows]


def remove_tenant(
    vault: Vault, name: str, *, force: bool = False, now: float | None = None
) -> RemovedTenant:
    """Remove a tenant and its key. Refused while it holds secrets or agents, unless ``force``:
    then its secrets are deleted, its agents removed, their tokens and proxy passwords revoked
    and its pending approvals denied, all in one transaction. Token and approval rows stay, as
    history for the audit."""
    if name == DEFAULT_TENANT:
        raise ConfigError(f"the {DEFAULT_TENANT!r} tenant cannot be removed")
    now = time.time() if now is None else now
    db, audit, actor = vault.db, vault.audit, os_user()
    with write_tx(db):
        if not db.execute("SELECT 1 FROM tenants WHERE name = ?", [name]).fetchone():
            raise NotFound(f"no tenant {name!r}")
        secrets = db.execute(
            "SELECT name, provider FROM secrets WHERE tenant = ? ORDER BY name", [name]
        ).fetchall()
        agents = [
            r[0]
            for r in db.execute(
                "SELECT name FROM agents WHERE tenant = ? ORDER BY name", [name]
            ).fetchall()
        ]
        if (secrets or agents) and not force:
            raise TenantNotEmpty(
                f"tenant {name!r} still has {len(secrets)} secret(s) and {len(agents)} "
                "agent(s): remove them first, or use --force to remove everything in it"
            )
        revoked = tokens.revoke_where(db, audit, "tenant = ?", [name], now)
        proxy_auth.revoke_where(db, audit, "tenant = ?", [name], now)
        approvals.deny_pending_where(db, audit, "tenant = ?", [name], now, actor)
        for secret, provider in secrets:
            audit.append(
                AuditEvent(
                    "secret.removed",
                    actor=actor,
                    tenant=name,
                    provider=provider,
                    secret_name=secret,
                )
            )
        for agent in agents:
            audit.append(AuditEvent("agent.removed", actor=actor, tenant=name, agent=agent))
        db.execute("DELETE FROM secret_versions WHERE tenant = ?", [name])
        db.execute("DELETE FROM secrets WHERE tenant = ?", [name])
        db.execute("DELETE FROM agents WHERE tenant = ?", [name])
        db.execute("DELETE FROM tenant_keys WHERE tenant = ?", [name])
        db.execute("DELETE FROM tenants WHERE name = ?", [name])
        audit.append(AuditEvent("tenant.removed", actor=actor, tenant=name))
    return RemovedTenant(len(secrets), len(agents), revoked)


def require_tenant(vault: Vault, name: str) -> None:
    """NotFound for a tenant that does not exist: a typo in --tenant must not look like an
    empty tenant."""
    if not vault.db.execute("SELECT 1 FROM tenants WHERE name = ?", [name]).fetchone():
        raise NotFound(f"no tenant {name!r} (see `seks tenant list`)")
