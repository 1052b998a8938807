"""Human approval for sensitive secrets: pending requests and the decisions on them.

A secret added with ``approval: required`` makes the proxy hold each request that would use it:
it writes a *pending* row here and waits. ``seks approve``/``seks deny`` (another process) turn
it *granted* or *denied*; the proxy turns it *expired* when nobody answered in time. Every change
is one conditional UPDATE on ``state = 'pending'`` inside BEGIN IMMEDIATE, so a decision and a
timeout that race cannot both win. A grant may open a *window* (``--for 30m``): until then that
agent's requests to that secret pass without asking again.

Rows stay after the decision, as history; the audit trail has one row per request, decision and
timeout.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, fields, replace
from typing import Any

import sqlite_utils

from seks.errors import ConfigError, NotFound
from seks.store.audit import AuditEvent, AuditLog, os_user
from seks.store.db import write_tx
from seks.store.tokens import BASE62
from seks.store.vault import DEFAULT_TENANT, Vault, check_approval

__all__ = [
    "Approval",
    "active_window",
    "decide",
    "deny_pending_where",
    "expire",
    "list_pending",
    "new_approval_id",
    "open_request",
    "requires_approval",
    "set_secret_approval",
    "states",
]

PENDING, GRANTED, DENIED, EXPIRED = "pending", "granted", "denied", "expired"


@dataclass(frozen=True)
class Approval:
    id: str
    tenant: str
    agent: str
    token_id: str | None
    provider: str | None
    secret_name: str
    method: str | None
    host: str | None
    path: str | None
    client_ip: str | None
    flow_id: str | None
    requested_at: float
    expires_at: float
    state: str = PENDING
    decided_at: float | None = None
    decided_by: str | None = None
    window_until: float | None = None

    def event(self, event: str, **fields_: Any) -> AuditEvent:
        """An audit row about this approval, naming the request it holds; ``detail`` names the
        approval (the id `seks approve` took) and any window it opened."""
        facts: dict[str, Any] = {"approval_id": self.id}
        if self.window_until is not None:
            facts["window_until"] = self.window_until
        return AuditEvent(
            event,
            tenant=self.tenant,
            agent=self.agent,
            token_id=self.token_id,
            provider=self.provider,
            secret_name=self.secret_name,
            client_ip=self.client_ip,
            method=self.method,
            host=self.host,
            path=self.path,
            flow_id=self.flow_id,
            detail=json.dumps(facts, sort_keys=True, separators=(",", ":")),
            **fields_,
        )


_COLUMNS = ", ".join(f.name for f in fields(Approval))  # our own names only


def new_approval_id() -> str:
    """Short enough to type: ``apr_`` and 10 base62 characters (≈ 60 bits)."""
    return "apr_" + "".join(secrets.choice(BASE62) for _ in range(10))


def _rows(db: sqlite_utils.Database, where: str, params: list[Any]) -> list[Approval]:
    sql = f"SELECT {_COLUMNS} FROM approvals WHERE {where}"  # noqa: S608
    return [Approval(*r) for r in db.execute(sql, params).fetchall()]


# -- the secret's setting ------------------------------------------------------------------


def set_secret_approval(
    vault: Vault, name: str, approval: str, *, tenant: str = DEFAULT_TENANT
) -> None:
    check_approval(approval)
    with write_tx(vault.db):
        info = vault.get_secret_info(name, tenant=tenant)
        vault.db.execute(
            "UPDATE secrets SET approval = ? WHERE tenant = ? AND name = ?",
            [approval, tenant, name],
        )
        vault.audit.append(
            AuditEvent(
                "secret.approval_set",
                actor=os_user(),
                tenant=tenant,
                provider=info.provider,
                secret_name=name,
                reason=approval,
            )
        )


def requires_approval(db: sqlite_utils.Database, tenant: str, secret_name: str) -> bool:
    row = db.execute(
        "SELECT approval FROM secrets WHERE tenant = ? AND name = ?", [tenant, secret_name]
    ).fetchone()
    return row is not None and row[0] == "required"


# -- the proxy's side ------------------------------------------------------------------------


def open_request(db: sqlite_utils.Database, approval: Approval) -> None:
    with write_tx(db):
        values = [getattr(approval, f.name) for f in fields(Approval)]
        db.execute(
            f"INSERT INTO approvals ({_COLUMNS}) VALUES ({', '.join('?' * len(values))})",  # noqa: S608
            values,
        )


def active_window(
    db: sqlite_utils.Database, tenant: str, agent: str, secret_name: str, now: float
) -> Approval | None:
    """The grant whose window covers this agent's use of this secret now, if any."""
    found = _rows(
        db,
        "tenant = ? AND agent = ? AND secret_name = ? AND state = 'granted' "
        "AND window_until > ? ORDER BY window_until DESC LIMIT 1",
        [tenant, agent, secret_name, now],
    )
    return found[0] if found else None


def states(db: sqlite_utils.Database, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    sql = f"SELECT id, state FROM approvals WHERE id IN ({marks})"  # noqa: S608
    return dict(db.execute(sql, ids).fetchall())


def expire(db: sqlite_utils.Database, approval_id: str, now: float) -> str:
    """Stop waiting: pending → expired. Returns the final state, which is a person's decision
    if one came in first."""
    with write_tx(db):
        db.execute(
            "UPDATE approvals SET state = 'expired', decided_at = ? "
            "WHERE id = ? AND state = 'pending'",
            [now, approval_id],
        )
        row = db.execute("SELECT state FROM approvals WHERE id = ?", [approval_id]).fetchone()
    if row is None:
        raise NotFound(f"no approval {approval_id!r}")
    return str(row[0])


# -- the person's side ---------------------------------------------------------------------


def list_pending(
    db: sqlite_utils.Database, *, tenant: str = DEFAULT_TENANT, now: float | None = None
) -> list[Approval]:
    """Requests a proxy is holding now, oldest first. A row whose proxy stopped waiting
    (timed out, or the proxy ended) is not listed."""
    now = time.time() if now is None else now
    return _rows(
        db,
        "tenant = ? AND state = 'pending' AND expires_at > ? ORDER BY requested_at, id",
        [tenant, now],
    )


def decide(
    vault: Vault,
    approval_id: str,
    *,
    grant: bool,
    tenant: str = DEFAULT_TENANT,
    window: float | None = None,
    now: float | None = None,
) -> list[Approval]:
    """Grant or deny a pending request. A grant with ``window`` (seconds) also lets that agent's
    requests to that secret through until then, including the others pending now. Returns the
    approvals decided, the named one first."""
    if window is not None and not grant:
        raise ConfigError("a window is only for approvals, not denials")
    if window is not None and window <= 0:
        raise ConfigError("the approval window must be positive")
    now = time.time() if now is None else now
    actor = os_user()
    state = GRANTED if grant else DENIED
    until = None if window is None else now + window
    with write_tx(vault.db):
        found = _rows(vault.db, "id = ? AND tenant = ?", [approval_id, tenant])
        if not found:
            raise NotFound(f"no approval {approval_id!r} in tenant {tenant!r}")
        (this,) = found
        if this.state != PENDING or this.expires_at <= now:
            what = this.state if this.state != PENDING else "no longer waited for"
            raise NotFound(f"approval {approval_id} is {what}: nothing to decide")
        decided = [this]
        if until is not None:
            decided += _rows(
                vault.db,
                "tenant = ? AND agent = ? AND secret_name = ? AND state = 'pending' "
                "AND expires_at > ? AND id != ? ORDER BY requested_at",
                [tenant, this.agent, this.secret_name, now, this.id],
            )
        for approval in decided:
            vault.db.execute(
                "UPDATE approvals SET state = ?, decided_at = ?, decided_by = ?, window_until = ? "
                "WHERE id = ? AND state = 'pending'",
                [state, now, actor, until, approval.id],
            )
            vault.audit.append(
                replace(approval, window_until=until).event(
                    f"approval.{state}",
                    actor=actor,
                    decision="allow" if grant else "deny",
                    reason=_reason(grant, until, approval is this),
                )
            )
    return decided


def _reason(grant: bool, until: float | None, named: bool) -> str:
    if not grant:
        return "denied"
    if until is None:
        return "approved"
    return "approved_with_window" if named else "released_by_window"


def deny_pending_where(
    db: sqlite_utils.Database,
    audit: AuditLog,
    where: str,
    params: list[Any],
    now: float,
    actor: str,
) -> int:
    """Deny the pending requests matching ``where`` (inside the caller's transaction)."""
    pending = _rows(db, f"{where} AND state = 'pending'", params)
    for approval in pending:
        db.execute(
            "UPDATE approvals SET state = 'denied', decided_at = ?, decided_by = ? WHERE id = ?",
            [now, actor, approval.id],
        )
        audit.append(
            approval.event("approval.denied", actor=actor, decision="deny", reason="removed")
        )
    return len(pending)
