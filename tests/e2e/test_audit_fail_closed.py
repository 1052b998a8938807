"""No audit row, no credential: while the audit trail cannot be written the proxy answers 503
seks_audit_unavailable and nothing reaches the upstream; once it can, requests work again. The
same holds when the proxy's audit writer process dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import time
from pathlib import Path

from harness import (
    ProxyProcess,
    assert_refused,
    audit_rows,
    curl,
    last_audit_id,
    running_proxy,
    write_config,
)

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


def audit_writers(proxy: ProxyProcess) -> list[int]:
    """The proxy's audit writer processes (seks/store/audit_writer.py)."""
    found = []
    for task in Path(f"/proc/{proxy.proc.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):  # ended meanwhile
                if b"seks.store.audit_process" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
    return found


def test_a_killed_audit_writer_is_replaced_and_no_credential_goes_unaudited(
    seks, proxy, agent_env, openai_upstream
):
    token = seks.issue("openai")
    auth = (f"Authorization: Bearer {token}",)
    start = last_audit_id(seks)
    assert curl(MODELS, headers=auth, env=agent_env).status == 200
    (old,) = audit_writers(proxy)

    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{old}").exists():  # until the proxy has noticed and reaped it
        assert time.monotonic() < deadline, "the proxy never reaped its killed audit writer"
        time.sleep(0.01)
    seen = len(openai_upstream.requests)
    after = curl(MODELS, headers=auth, env=agent_env)

    assert after.status == 200
    assert len(openai_upstream.requests) == seen + 1
    (new,) = audit_writers(proxy)
    assert new != old
    assert "the audit writer stopped" in proxy.last_log_lines(200)
    injected = audit_rows(seks, start, "request.injected", count=2)
    assert len(injected) == 2
    assert seks.run("audit", "verify").returncode == 0


def test_the_audit_writer_starts_with_the_proxy_and_ends_with_it(
    seks, openai_upstream, anthropic_upstream, test_ca
):
    """Ready before the first request (it takes ~0.1 s to start), gone after a clean stop."""
    config = write_config(seks, openai_upstream, anthropic_upstream, test_ca)
    with running_proxy(seks, config) as fresh:  # ready: it printed its listening line
        (writer,) = audit_writers(fresh)
    assert not Path(f"/proc/{writer}").exists()  # ended, and reaped by the proxy
