"""Schema for token limits, approvals and agent proxy passwords (migrations m003 to m006).

Kept apart from ``db.py``'s initial schema; ``db.MIGRATIONS`` lists them in order.
"""

from __future__ import annotations

import sqlite_utils

__all__ = ["m003_token_limits", "m004_approvals", "m005_proxy_auth", "m006_aws_allow_lists"]


def m003_token_limits(db: sqlite_utils.Database) -> None:
    # NULL means "no limit"; lists are JSON arrays of canonical text (seks/limits.py).
    for column, kind in (
        ("max_uses", "INTEGER"),
        ("uses_left", "INTEGER"),
        ("allow_ips", "TEXT"),
        ("scopes", "TEXT"),
        ("rate", "TEXT"),
    ):
        db.execute(f"ALTER TABLE tokens ADD COLUMN {column} {kind}")


def m004_approvals(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE secrets ADD COLUMN approval TEXT NOT NULL DEFAULT 'none'")
    db.table("approvals").create(
        {
            "id": str,
            "tenant": str,
            "agent": str,
            "token_id": str,
            "provider": str,
            "secret_name": str,
            "method": str,
            "host": str,
            "path": str,  # as audited: no query string, no token
            "client_ip": str,
            "flow_id": str,
            "requested_at": float,
            "expires_at": float,  # the proxy stops waiting then
            "state": str,  # pending | granted | denied | expired
            "decided_at": float,
            "decided_by": str,
            "window_until": float,  # granted with --for: the agent's requests pass until then
        },
        pk="id",
        not_null={"tenant", "agent", "secret_name", "requested_at", "expires_at", "state"},
    )
    db.table("approvals").create_index(["state", "expires_at"])
    db.table("approvals").create_index(["tenant", "agent", "secret_name", "window_until"])


def m005_proxy_auth(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE agents ADD COLUMN proxy_auth INTEGER NOT NULL DEFAULT 0")
    db.table("proxy_passwords").create(
        {
            "id": str,
            "password_hash": bytes,  # HMAC-SHA256 under a key derived from the master key
            "tenant": str,
            "agent": str,
            "created_at": float,
            "expires_at": float,
            "revoked_at": float,
            "session": str,
        },
        pk="id",
        not_null={"password_hash", "tenant", "agent", "created_at"},
    )
    db.table("proxy_passwords").create_index(["password_hash"], unique=True)
    db.table("proxy_passwords").create_index(["tenant", "agent"])


def m006_aws_allow_lists(db: sqlite_utils.Database) -> None:
    """An aws token's regions and services (JSON lists; NULL: any)."""
    for column in ("aws_regions", "aws_services"):
        db.execute(f"ALTER TABLE tokens ADD COLUMN {column} TEXT")
