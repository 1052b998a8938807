"""No audit row, no credential: while the audit trail cannot be written the proxy answers 503
seks_audit_unavailable and nothing reaches the upstream; once it can, requests work again.
"""

from __future__ import annotations

import sqlite3

from harness import assert_refused, curl

MODELS = "https://api.openai.com/v1/models"


def test_request_fails_closed_while_the_audit_cannot_be_written(
    seks, agent_env, openai_upstream, canaries
):
    token = seks.issue("openai")
    auth = (f"Authorization: Bearer {token}",)

    # Another writer holds the vault's write lock for longer than the proxy will wait.
    holder = sqlite3.connect(seks.home / "vault.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        blocked = curl(MODELS, headers=auth, env=agent_env)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    after = curl(MODELS, headers=auth, env=agent_env)

    assert_refused(blocked, 503, "seks_audit_unavailable", token)
    assert after.status == 200
    (seen,) = openai_upstream.requests  # only the request made after the lock was released
    assert seen.header("Authorization") == f"Bearer {canaries['openai']}"
