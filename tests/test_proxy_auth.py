"""Agent proxy passwords: issued once, stored keyed-hashed, checked, revoked."""

from __future__ import annotations

import pytest

from seks.errors import NotFound, ProxyAuthFailed
from seks.store import Vault
from seks.store.proxy_auth import (
    PASSWORD_RE,
    ProxyIdentity,
    identify,
    issue_password,
    requires_proxy_auth,
)

NOW = 1_000_000.0


def issue(
    vault: Vault,
    agent: str = "bot",
    *,
    tenant: str = "default",
    ttl: float | None = None,
    session: str | None = None,
    replace_long_lived: bool = False,
) -> str:
    return issue_password(
        vault.db,
        vault.audit,
        vault.proxy_auth_key,
        agent,
        tenant=tenant,
        ttl=ttl,
        session=session,
        replace_long_lived=replace_long_lived,
        now=NOW,
    )


def test_an_agent_created_with_proxy_auth_needs_it(vault: Vault) -> None:
    vault.create_agent("bot", proxy_auth=True)
    vault.create_agent("plain")

    assert requires_proxy_auth(vault.db, "default", "bot")
    assert not requires_proxy_auth(vault.db, "default", "plain")
    assert not requires_proxy_auth(vault.db, "default", "ghost")
    assert [a.proxy_auth for a in vault.list_agents()] == [True, False]


def test_a_password_identifies_its_agent_and_is_stored_only_as_a_keyed_hash(
    vault: Vault,
) -> None:
    vault.create_tenant("acme")
    vault.create_agent("bot", tenant="acme")
    password = issue(vault, tenant="acme")

    assert PASSWORD_RE.fullmatch(password)
    who = identify(vault.db, vault.proxy_auth_key, "bot", password, NOW + 1)
    assert (who.tenant, who.agent) == ("acme", "bot")
    assert isinstance(who, ProxyIdentity)
    assert requires_proxy_auth(vault.db, "acme", "bot")  # issuing one turns it on
    dump = vault.db.conn.serialize()
    assert password.encode() not in dump
    events = [r[0] for r in vault.db.execute("SELECT event FROM audit")]
    assert "proxy_password.issued" in events


@pytest.mark.parametrize(
    ("username", "password_of"),
    [
        ("other", lambda p: p),  # right password, wrong agent name
        ("bot", lambda p: p[:-1] + ("a" if p[-1] != "a" else "b")),  # one character off
        ("bot", lambda p: "hunter2"),
        ("bot", lambda p: ""),
    ],
)
def test_wrong_credentials_all_fail_alike(vault: Vault, username: str, password_of) -> None:
    vault.create_agent("bot")
    vault.create_agent("other")
    password = issue(vault)

    with pytest.raises(ProxyAuthFailed) as e:
        identify(vault.db, vault.proxy_auth_key, username, password_of(password), NOW)
    assert str(e.value).startswith("the proxy credentials are not valid")
    assert password not in str(e.value)


def test_expired_revoked_and_replaced_passwords_fail(vault: Vault) -> None:
    vault.create_agent("bot")
    session = issue(vault, ttl=60, session="exec-1")
    first = issue(vault)

    assert identify(vault.db, vault.proxy_auth_key, "bot", session, NOW + 59).agent == "bot"
    with pytest.raises(ProxyAuthFailed):
        identify(vault.db, vault.proxy_auth_key, "bot", session, NOW + 60)

    second = issue(vault, replace_long_lived=True)
    with pytest.raises(ProxyAuthFailed):
        identify(vault.db, vault.proxy_auth_key, "bot", first, NOW)
    identify(vault.db, vault.proxy_auth_key, "bot", second, NOW)

    vault.revoke_session("exec-1")  # the session's password goes with its tokens
    with pytest.raises(ProxyAuthFailed):
        identify(vault.db, vault.proxy_auth_key, "bot", session, NOW + 1)


def test_removing_an_agent_revokes_its_passwords(vault: Vault) -> None:
    vault.create_agent("bot")
    password = issue(vault)
    vault.remove_agent("bot")
    vault.create_agent("bot")  # a new agent under the old name

    with pytest.raises(ProxyAuthFailed):
        identify(vault.db, vault.proxy_auth_key, "bot", password, NOW)


def test_a_password_for_an_unknown_agent_is_not_issued(vault: Vault) -> None:
    with pytest.raises(NotFound, match="no agent 'ghost'"):
        issue(vault, "ghost")
