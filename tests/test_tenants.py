"""Tenants: each with its own key and names, and removed only deliberately."""

from __future__ import annotations

import pytest

from seks.errors import ConfigError, NotFound, TokenRevoked
from seks.store import Vault, approvals, proxy_auth
from seks.store.tenants import TenantNotEmpty, list_tenants, remove_tenant


def test_tenants_are_listed_with_what_they_hold(vault: Vault, canary: str) -> None:
    vault.create_tenant("acme")
    vault.add_secret("openai-key", "openai", canary, tenant="acme")
    vault.create_agent("bot", tenant="acme")
    vault.create_agent("bot2", tenant="acme")

    listed = {t.name: (t.secrets, t.agents) for t in list_tenants(vault)}
    assert listed == {"acme": (1, 2), "default": (0, 0)}


def test_names_are_per_tenant_and_listings_show_only_the_tenant_asked_for(
    vault: Vault, canary: str
) -> None:
    vault.create_tenant("acme")
    vault.add_secret("openai-key", "openai", canary)
    vault.add_secret("openai-key", "openai", canary[::-1], tenant="acme")
    vault.add_secret("acme-only", "anthropic", canary, tenant="acme")
    vault.create_agent("bot")
    vault.create_agent("bot", tenant="acme")
    vault.issue_token("bot", "openai", tenant="acme")

    assert [s.name for s in vault.list_secrets()] == ["openai-key"]
    assert [s.name for s in vault.list_secrets(tenant="acme")] == ["acme-only", "openai-key"]
    assert vault.list_tokens() == []
    assert [t.tenant for t in vault.list_tokens(tenant="acme")] == ["acme"]


def test_a_token_resolves_only_its_own_tenants_secret(vault: Vault, canary: str) -> None:
    vault.create_tenant("acme")
    vault.add_secret("openai-key", "openai", canary)
    vault.add_secret("openai-key", "openai", "sk-acme-" + canary, tenant="acme")
    vault.create_agent("bot", tenant="acme")
    token, _ = vault.issue_token("bot", "openai", tenant="acme")

    info = vault.resolve_token(token)
    assert info.tenant == "acme"
    assert vault.reveal_secret(info.secret_name, tenant=info.tenant).reveal() == "sk-acme-" + canary


def test_a_token_cannot_be_issued_against_another_tenants_secret(vault: Vault, canary: str) -> None:
    vault.create_tenant("acme")
    vault.add_secret("openai-key", "openai", canary)  # in default
    vault.create_agent("bot", tenant="acme")

    with pytest.raises(NotFound, match="in tenant 'acme'"):
        vault.issue_token("bot", "openai", secret_name="openai-key", tenant="acme")
    with pytest.raises(NotFound, match="no secret for provider"):
        vault.issue_token("bot", "openai", tenant="acme")
    assert vault.list_tokens(tenant="acme") == []


def test_a_tenant_with_secrets_or_agents_is_removed_only_with_force(
    vault: Vault, canary: str
) -> None:
    vault.create_tenant("acme")
    vault.add_secret("openai-key", "openai", canary, tenant="acme")
    vault.create_agent("bot", tenant="acme")
    token, _ = vault.issue_token("bot", "openai", tenant="acme")

    with pytest.raises(TenantNotEmpty) as e:
        remove_tenant(vault, "acme")
    assert "1 secret(s) and 1 agent(s)" in str(e.value)
    assert "--force" in str(e.value)
    assert vault.resolve_token(token).tenant == "acme"  # nothing changed

    removed = remove_tenant(vault, "acme", force=True)

    assert (removed.secrets, removed.agents, removed.tokens_revoked) == (1, 1, 1)
    assert [t.name for t in list_tenants(vault)] == ["default"]
    with pytest.raises(TokenRevoked):
        vault.resolve_token(token)
    for table in ("secrets", "secret_versions", "agents", "tenant_keys"):
        sql = f"SELECT count(*) FROM {table} WHERE tenant = 'acme'"  # noqa: S608
        assert vault.db.execute(sql).fetchone()[0] == 0
    events = [r[0] for r in vault.db.execute("SELECT event FROM audit WHERE tenant = 'acme'")]
    assert events[-4:] == ["token.revoked", "secret.removed", "agent.removed", "tenant.removed"]


def test_an_empty_tenant_is_removed_and_its_name_can_be_used_again(
    vault: Vault, canary: str
) -> None:
    vault.create_tenant("acme")
    vault.add_secret("k", "openai", "first-" + canary, tenant="acme")
    assert vault.reveal_secret("k", tenant="acme").reveal() == "first-" + canary  # key cached
    remove_tenant(vault, "acme", force=True)

    vault.create_tenant("acme")  # a new key under the same name and version
    vault.add_secret("k", "openai", "second-" + canary, tenant="acme")
    assert vault.reveal_secret("k", tenant="acme").reveal() == "second-" + canary


def test_removing_a_tenant_revokes_its_agents_proxy_passwords_and_denies_its_approvals(
    vault: Vault, canary: str
) -> None:
    vault.create_tenant("acme")
    vault.add_secret("k", "openai", canary, tenant="acme")
    vault.create_agent("bot", tenant="acme")
    password = proxy_auth.issue_password(
        vault.db, vault.audit, vault.proxy_auth_key, "bot", tenant="acme"
    )
    approval = approvals.Approval(
        approvals.new_approval_id(), "acme", "bot", None, "openai", "k", "POST", "h", "/", None,
        None, 1.0, 2e10,
    )  # fmt: skip
    approvals.open_request(vault.db, approval)

    remove_tenant(vault, "acme", force=True)

    assert approvals.states(vault.db, [approval.id]) == {approval.id: "denied"}
    vault.create_tenant("acme")
    vault.create_agent("bot", tenant="acme")  # the same name again: not the same agent
    with pytest.raises(proxy_auth.ProxyAuthFailed):
        proxy_auth.identify(vault.db, vault.proxy_auth_key, "bot", password, 5.0)


@pytest.mark.parametrize(("name", "error"), [("default", ConfigError), ("ghost", NotFound)])
def test_the_default_tenant_and_unknown_ones_cannot_be_removed(
    vault: Vault, name: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        remove_tenant(vault, name, force=True)


def test_messages_about_another_tenant_name_it_and_the_flag_to_use(
    vault: Vault, canary: str
) -> None:
    vault.create_tenant("acme")
    with pytest.raises(NotFound) as e:
        vault.issue_token("ghost", "openai", tenant="acme")
    assert str(e.value) == (
        "no agent 'ghost' in tenant 'acme': create it with `seks agent create ghost --tenant acme`"
    )
    vault.create_agent("bot", tenant="acme")
    vault.add_secret("k", "openai", canary)  # in the default tenant: not acme's
    with pytest.raises(NotFound, match=r"in tenant 'acme'.*--provider openai --tenant acme"):
        vault.issue_token("bot", "openai", tenant="acme")
