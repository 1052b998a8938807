"""Human approval through the real proxy: a request using a secret that needs approval waits
(other agents' traffic keeps flowing) until a second `seks` process approves or denies it, or
until approval_timeout; an approval --for a window lets that agent's next requests through.
Every step is checked in the audit trail, and nothing reaches the upstream before a yes.
"""

from __future__ import annotations

import json
import time

import pytest
from curls import pending_approvals, result_of, start_curl, wait_for_pending
from harness import (
    assert_refused,
    audit_rows,
    curl,
    last_audit_id,
    running_proxy,
    write_config,
)

TENANT, OPS_AGENT, SECRET = "ops", "ops-bot", "openai-prod"
CHAT = "https://api.openai.com/v1/chat/completions"
MODELS = "https://api.openai.com/v1/models"
BODY = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "deploy?"}]}'


@pytest.fixture(scope="module")
def ops(seks, canaries) -> None:
    """A tenant whose OpenAI key needs a person's approval for every use."""
    seks.run("tenant", "create", TENANT)
    seks.run(
        "secret", "add", SECRET, "--provider", "openai", "--approval", "required",
        "--tenant", TENANT, input=canaries["openai"],
    )  # fmt: skip
    seks.run("agent", "create", OPS_AGENT, "--tenant", TENANT)


def ops_token(seks, agent: str = OPS_AGENT) -> str:
    return seks.run(
        "token", "issue", "--agent", agent, "--provider", "openai", "--tenant", TENANT
    ).stdout.strip()


def start_held(token: str, env: dict[str, str], *proxy: str):
    return start_curl(
        *proxy, CHAT, "-H", "content-type: application/json", "--data", BODY,
        headers=(f"Authorization: Bearer {token}",), env=env,
    )  # fmt: skip


def events_since(seks, last: int, *expected: str) -> list[dict]:
    """The rows of these events after ``last``, once one of each is there, in audit order."""
    for event in expected:
        audit_rows(seks, last, event)
    rows = [r for r in seks.audit() if r["id"] > last and r["event"] in expected]
    assert sorted(r["event"] for r in rows) == sorted(expected), rows
    return rows


def test_a_held_request_goes_through_once_approved_and_others_flow_meanwhile(
    seks, proxy, ops, agent_env, openai_upstream
):
    token = ops_token(seks)
    last = last_audit_id(seks)

    held = start_held(token, agent_env)
    (pending,) = wait_for_pending(seks, tenant=TENANT)

    assert {k: pending[k] for k in ("agent", "provider", "method", "host", "path")} == {
        "agent": OPS_AGENT,
        "provider": "openai",
        "method": "POST",
        "host": "api.openai.com",
        "path": "/v1/chat/completions",
    }
    assert pending["age"] >= 0
    assert pending_approvals(seks) == []  # the default tenant's view shows none of it
    # Another agent's request passes while this one waits.
    other = curl(MODELS, headers=(f"Authorization: Bearer {seks.issue('openai')}",), env=agent_env)
    assert other.status == 200
    assert held.poll() is None
    assert [r.path for r in openai_upstream.requests] == ["/v1/models"]

    approved = seks.run("approve", pending["id"], "--tenant", TENANT)  # a second process
    result = result_of(held)

    assert approved.stdout.startswith(f"approved {pending['id']}: {OPS_AGENT} POST")
    assert result.status == 200, result.raw
    assert [r.path for r in openai_upstream.requests] == ["/v1/models", "/v1/chat/completions"]
    rows = events_since(seks, last, "approval.requested", "approval.granted")
    requested, granted = rows
    assert (requested["event"], requested["reason"], requested["agent"]) == (
        "approval.requested",
        "approval_required",
        OPS_AGENT,
    )
    assert (granted["event"], granted["reason"], granted["decision"]) == (
        "approval.granted",
        "approved",
        "allow",
    )
    assert granted["flow_id"] == requested["flow_id"]
    assert json.loads(granted["detail"])["approval_id"] == pending["id"]
    (injected,) = [
        r for r in audit_rows(seks, last, "request.injected", count=2) if r["agent"] == OPS_AGENT
    ]
    assert (injected["tenant"], injected["flow_id"]) == (TENANT, requested["flow_id"])


def test_a_denied_request_is_refused_and_reaches_no_upstream(
    seks, proxy, ops, agent_env, openai_upstream
):
    token = ops_token(seks)
    last = last_audit_id(seks)
    held = start_held(token, agent_env)
    (pending,) = wait_for_pending(seks, tenant=TENANT)

    seks.run("deny", pending["id"], "--tenant", TENANT)
    result = result_of(held)

    assert_refused(result, 403, "seks_approval_denied", token)
    assert pending["id"] in result.json()["error"]["message"]
    assert openai_upstream.requests == []
    events_since(seks, last, "approval.requested", "approval.denied")
    (row,) = audit_rows(seks, last, "request.denied")
    assert (row["reason"], row["agent"]) == ("approval_denied", OPS_AGENT)


def test_an_unanswered_request_is_refused_after_approval_timeout(
    seks, ops, agent_env, openai_upstream, anthropic_upstream, test_ca
):
    config = write_config(
        seks, openai_upstream, anthropic_upstream, test_ca, name="short.yaml", approval_timeout=2
    )
    token = ops_token(seks)
    with running_proxy(seks, config) as short:
        last = last_audit_id(seks)
        started = time.monotonic()
        result = result_of(start_held(token, agent_env, "-x", short.url))
        waited = time.monotonic() - started

    assert_refused(result, 403, "seks_approval_denied", token)
    assert 2 <= waited < 30
    assert openai_upstream.requests == []
    rows = events_since(seks, last, "approval.requested", "approval.expired")
    assert rows[1]["reason"] == "timeout"
    (row,) = audit_rows(seks, last, "request.denied")
    assert row["reason"] == "approval_expired"
    assert pending_approvals(seks, tenant=TENANT) == []
    approval_id = json.loads(rows[0]["detail"])["approval_id"]
    late = seks.run("approve", approval_id, "--tenant", TENANT, check=False)
    assert late.returncode == 1
    assert late.stderr.strip() == f"Error: approval {approval_id} is expired: nothing to decide"


def test_an_approval_for_a_window_lets_the_agents_next_requests_through(
    seks, proxy, ops, agent_env, openai_upstream
):
    # An agent of its own: the window must not let other tests' requests through.
    seks.run("agent", "create", "ops-window-bot", "--tenant", TENANT)
    token = ops_token(seks, "ops-window-bot")
    held = start_held(token, agent_env)
    (pending,) = wait_for_pending(seks, tenant=TENANT)
    seks.run("approve", pending["id"], "--for", "5m", "--tenant", TENANT)
    assert result_of(held).status == 200
    last = last_audit_id(seks)

    again = result_of(start_held(token, agent_env))  # nobody is asked this time

    assert again.status == 200
    assert len(openai_upstream.requests) == 2
    (row,) = audit_rows(seks, last, "approval.granted")
    assert (row["reason"], json.loads(row["detail"])["approval_id"]) == (
        "within_window",
        pending["id"],
    )
    assert audit_rows(seks, last, "approval.requested", timeout=0) == []


def test_a_client_that_gives_up_leaves_nothing_to_approve(
    seks, proxy, ops, agent_env, openai_upstream
):
    token = ops_token(seks)
    last = last_audit_id(seks)
    # curl gives up after 3 s; the proxy hears the connection close.
    gives_up = start_held(token, agent_env, "--max-time", "3")
    (pending,) = wait_for_pending(seks, tenant=TENANT)
    gives_up.communicate(timeout=30)
    assert gives_up.returncode == 28  # curl: operation timed out

    rows = events_since(seks, last, "approval.requested", "approval.expired")
    late = seks.run("approve", pending["id"], "--tenant", TENANT, check=False)

    assert rows[1]["reason"] == "client_gone"
    assert pending_approvals(seks, tenant=TENANT) == []
    assert late.returncode == 1
    assert "is expired" in late.stderr
    assert openai_upstream.requests == []
