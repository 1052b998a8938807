"""Approvals in the vault: a pending request, a person's decision, a timeout, a window."""

from __future__ import annotations

import dataclasses
import json

import pytest

from seks.errors import ConfigError, NotFound
from seks.store import Vault, approvals
from seks.store.approvals import Approval

NOW = 1_000_000.0


@pytest.fixture
def sensitive(vault: Vault, canary: str) -> Vault:
    vault.add_secret("prod-key", "openai", canary, approval="required")
    vault.add_secret("dev-key", "anthropic", canary)
    vault.create_agent("bot")
    return vault


def pending(agent: str = "bot", of: str = "prod-key", *, at: float = NOW) -> Approval:
    return Approval(
        id=approvals.new_approval_id(),
        tenant="default",
        agent=agent,
        token_id="tok_x",
        provider="openai",
        secret_name=of,
        method="POST",
        host="api.openai.com",
        path="/v1/chat/completions",
        client_ip="127.0.0.1",
        flow_id="flow-1",
        requested_at=at,
        expires_at=at + 300,
    )


def audit(vault: Vault, event: str) -> list[dict[str, object]]:
    return list(vault.db.query("SELECT * FROM audit WHERE event = ? ORDER BY id", [event]))


def test_the_requirement_is_set_per_secret_and_can_be_changed(sensitive: Vault) -> None:
    assert approvals.requires_approval(sensitive.db, "default", "prod-key")
    assert not approvals.requires_approval(sensitive.db, "default", "dev-key")
    assert sensitive.get_secret_info("prod-key").approval == "required"

    approvals.set_secret_approval(sensitive, "dev-key", "required")
    approvals.set_secret_approval(sensitive, "prod-key", "none")

    assert approvals.requires_approval(sensitive.db, "default", "dev-key")
    assert not approvals.requires_approval(sensitive.db, "default", "prod-key")
    rows = audit(sensitive, "secret.approval_set")
    assert [(r["secret_name"], r["reason"]) for r in rows] == [
        ("dev-key", "required"),
        ("prod-key", "none"),
    ]


def test_a_bad_requirement_is_refused(sensitive: Vault, canary: str) -> None:
    with pytest.raises(ConfigError, match="none, required"):
        approvals.set_secret_approval(sensitive, "dev-key", "maybe")
    with pytest.raises(ConfigError):
        sensitive.add_secret("x", "openai", canary, approval="yes")
    with pytest.raises(NotFound):
        approvals.set_secret_approval(sensitive, "ghost", "required")


def test_pending_requests_are_listed_until_their_proxy_stops_waiting(sensitive: Vault) -> None:
    first, second = pending(at=NOW), pending(at=NOW + 1)
    for a in (second, first):
        approvals.open_request(sensitive.db, a)

    assert approvals.list_pending(sensitive.db, now=NOW + 2) == [first, second]
    assert approvals.list_pending(sensitive.db, now=NOW + 300.5) == [second]
    assert approvals.list_pending(sensitive.db, tenant="other", now=NOW + 2) == []


def test_a_grant_is_audited_and_releases_only_that_request(sensitive: Vault) -> None:
    a, b = pending(), pending()
    for x in (a, b):
        approvals.open_request(sensitive.db, x)

    decided = approvals.decide(sensitive, a.id, grant=True, now=NOW + 5)

    assert [d.id for d in decided] == [a.id]
    assert approvals.states(sensitive.db, [a.id, b.id]) == {a.id: "granted", b.id: "pending"}
    (row,) = audit(sensitive, "approval.granted")
    assert (row["decision"], row["reason"], row["agent"], row["flow_id"]) == (
        "allow",
        "approved",
        "bot",
        "flow-1",
    )
    assert json.loads(str(row["detail"])) == {"approval_id": a.id}
    assert approvals.active_window(sensitive.db, "default", "bot", "prod-key", NOW + 6) is None


def test_a_grant_with_a_window_covers_that_agent_and_secret_for_that_long(
    sensitive: Vault,
) -> None:
    sensitive.create_agent("other")
    a, same, other_agent, other_secret = (
        pending(),
        pending(),
        pending(agent="other"),
        pending(of="dev-key"),
    )
    for x in (a, same, other_agent, other_secret):
        approvals.open_request(sensitive.db, x)

    decided = approvals.decide(sensitive, a.id, grant=True, window=1800, now=NOW + 5)

    assert [d.id for d in decided] == [a.id, same.id]
    assert approvals.states(sensitive.db, [other_agent.id, other_secret.id]) == {
        other_agent.id: "pending",
        other_secret.id: "pending",
    }
    window = approvals.active_window(sensitive.db, "default", "bot", "prod-key", NOW + 1804)
    assert window is not None and window.window_until == NOW + 1805
    assert approvals.active_window(sensitive.db, "default", "bot", "prod-key", NOW + 1805) is None
    assert approvals.active_window(sensitive.db, "default", "other", "prod-key", NOW + 6) is None
    rows = audit(sensitive, "approval.granted")
    assert [r["reason"] for r in rows] == ["approved_with_window", "released_by_window"]
    assert json.loads(str(rows[0]["detail"])) == {"approval_id": a.id, "window_until": NOW + 1805}


def test_a_denial_is_audited(sensitive: Vault) -> None:
    a = pending()
    approvals.open_request(sensitive.db, a)

    approvals.decide(sensitive, a.id, grant=False, now=NOW + 5)

    assert approvals.states(sensitive.db, [a.id]) == {a.id: "denied"}
    (row,) = audit(sensitive, "approval.denied")
    assert (row["decision"], row["reason"]) == ("deny", "denied")
    with pytest.raises(ConfigError):
        approvals.decide(sensitive, pending().id, grant=False, window=60)


def test_only_a_pending_request_can_be_decided_once(sensitive: Vault) -> None:
    a = pending()
    approvals.open_request(sensitive.db, a)
    approvals.decide(sensitive, a.id, grant=False, now=NOW + 5)

    with pytest.raises(NotFound, match="is denied"):
        approvals.decide(sensitive, a.id, grant=True, now=NOW + 6)
    with pytest.raises(NotFound, match="no approval"):
        approvals.decide(sensitive, "apr_nope", grant=True)
    with pytest.raises(NotFound, match="in tenant 'other'"):
        approvals.decide(sensitive, a.id, grant=True, tenant="other")


def test_a_request_nobody_waits_for_any_more_cannot_be_approved(sensitive: Vault) -> None:
    a = pending()
    approvals.open_request(sensitive.db, a)

    with pytest.raises(NotFound, match="no longer waited for"):
        approvals.decide(sensitive, a.id, grant=True, now=a.expires_at)


def test_timeout_and_decision_racing_cannot_both_win(sensitive: Vault) -> None:
    decided_first, expired_first = pending(), pending()
    for x in (decided_first, expired_first):
        approvals.open_request(sensitive.db, x)

    approvals.decide(sensitive, decided_first.id, grant=True, now=NOW + 5)
    assert approvals.expire(sensitive.db, decided_first.id, NOW + 300) == "granted"

    assert approvals.expire(sensitive.db, expired_first.id, NOW + 300) == "expired"
    with pytest.raises(NotFound, match="is expired"):
        approvals.decide(sensitive, expired_first.id, grant=True, now=NOW + 6)


def test_approval_ids_are_short_and_distinct() -> None:
    ids = {approvals.new_approval_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 14 and i.startswith("apr_") for i in ids)


def test_an_approval_event_names_its_request_and_holds_no_query() -> None:
    a = dataclasses.replace(pending(), path="/v1/chat/completions")
    event = a.event("approval.requested", decision="pending")
    assert (event.method, event.host, event.path, event.token_id) == (
        "POST",
        "api.openai.com",
        "/v1/chat/completions",
        "tok_x",
    )
