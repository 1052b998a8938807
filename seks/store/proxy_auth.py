"""Agent proxy passwords: who is on the other end of a proxy connection.

An agent created with ``--proxy-auth`` has its tokens honoured only on connections that
authenticated to the proxy as that agent (``Proxy-Authorization: Basic agent:password``), so a
token copied into another container is useless there. Passwords are random (``seksp_`` and 32
base62 characters, ≈ 190 bits) and stored only as HMAC-SHA256 under a key derived from the
master key, like tokens: a fast keyed hash is enough for a random secret of that size.

``seks agent create --proxy-auth`` and ``seks agent password`` print a long-lived password once;
``seks env``/``seks exec`` issue one per session that expires with its tokens (and is revoked
when ``exec`` ends).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from seks.errors import NotFound, ProxyAuthFailed
from seks.store.audit import AuditEvent, AuditLog, os_user
from seks.store.db import write_tx
from seks.store.tokens import BASE62

__all__ = [
    "ProxyIdentity",
    "identify",
    "issue_password",
    "password_hash",
    "requires_proxy_auth",
    "revoke_where",
]

PASSWORD_RE = re.compile(r"seksp_[0-9A-Za-z]{32}")


@dataclass(frozen=True)
class ProxyIdentity:
    tenant: str
    agent: str
    password_id: str


def password_hash(key: bytes, password: str) -> bytes:
    return hmac.new(key, password.encode(), hashlib.sha256).digest()


def requires_proxy_auth(db: sqlite_utils.Database, tenant: str, agent: str) -> bool:
    row = db.execute(
        "SELECT proxy_auth FROM agents WHERE tenant = ? AND name = ?", [tenant, agent]
    ).fetchone()
    return bool(row and row[0])


def issue_password(
    db: sqlite_utils.Database,
    audit: AuditLog,
    key: bytes,
    agent: str,
    *,
    tenant: str,
    ttl: float | None = None,
    session: str | None = None,
    replace_long_lived: bool = False,
    now: float | None = None,
) -> str:
    """A new proxy password for the agent (which from now on needs one). Returns it, once.

    ``replace_long_lived`` revokes the agent's earlier passwords that belong to no session."""
    now = time.time() if now is None else now
    password = "seksp_" + "".join(secrets.choice(BASE62) for _ in range(32))
    password_id = "pxp_" + "".join(secrets.choice(BASE62) for _ in range(16))
    with write_tx(db):
        changed = db.execute(
            "UPDATE agents SET proxy_auth = 1 WHERE tenant = ? AND name = ?", [tenant, agent]
        ).rowcount
        if changed != 1:
            raise NotFound(f"no agent {agent!r} in tenant {tenant!r}")
        if replace_long_lived:
            revoke_where(
                db, audit, "tenant = ? AND agent = ? AND session IS NULL", [tenant, agent], now
            )
        db.execute(
            "INSERT INTO proxy_passwords (id, password_hash, tenant, agent, created_at, "
            "expires_at, revoked_at, session) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            [
                password_id,
                password_hash(key, password),
                tenant,
                agent,
                now,
                None if ttl is None else now + ttl,
                session,
            ],
        )
        audit.append(
            AuditEvent(
                "proxy_password.issued",
                actor=os_user(),
                tenant=tenant,
                agent=agent,
                reason=password_id,
            )
        )
    return password


def revoke_where(
    db: sqlite_utils.Database, audit: AuditLog, where: str, params: list[Any], now: float
) -> int:
    """Revoke the live passwords matching ``where`` (inside the caller's transaction)."""
    rows = db.execute(
        f"SELECT id, tenant, agent FROM proxy_passwords WHERE {where} "  # noqa: S608
        "AND revoked_at IS NULL",
        params,
    ).fetchall()
    for password_id, tenant, agent in rows:
        db.execute("UPDATE proxy_passwords SET revoked_at = ? WHERE id = ?", [now, password_id])
        audit.append(
            AuditEvent(
                "proxy_password.revoked",
                actor=os_user(),
                tenant=tenant,
                agent=agent,
                reason=password_id,
            )
        )
    return len(rows)


def identify(
    db: sqlite_utils.Database, key: bytes, username: str, password: str, now: float
) -> ProxyIdentity:
    """The agent these proxy credentials belong to, or ProxyAuthFailed (one message for every
    way they can be wrong: no oracle for someone guessing)."""
    failed = ProxyAuthFailed(
        "the proxy credentials are not valid: use the proxy URL `seks env` prints"
    )
    if not PASSWORD_RE.fullmatch(password):
        raise failed
    digest = password_hash(key, password)
    row = db.execute(
        "SELECT p.id, p.tenant, p.agent, p.expires_at, p.revoked_at, p.password_hash "
        "FROM proxy_passwords p JOIN agents a ON a.tenant = p.tenant AND a.name = p.agent "
        "WHERE p.password_hash = ?",
        [digest],
    ).fetchone()
    if row is None or not hmac.compare_digest(row[5], digest):
        raise failed
    password_id, tenant, agent, expires_at, revoked_at, _ = row
    if revoked_at is not None or (expires_at is not None and expires_at <= now):
        raise failed
    if not hmac.compare_digest(username.encode(), agent.encode()):
        raise failed
    return ProxyIdentity(tenant, agent, password_id)
