"""Tenants and agent identity through the real proxy with real clients.

A token of one tenant resolves only that tenant's secret, even when another tenant has a secret
of the same name; listings stay per tenant. An agent created with --proxy-auth gets its proxy
credentials in HTTPS_PROXY from `seks env`, and its tokens work only on connections that
authenticated as it: the openai SDK and curl with those credentials succeed; no credentials,
wrong ones or another agent's are refused with their own type and audit reason.
"""

from __future__ import annotations

import pytest
from harness import (
    AGENT,
    assert_refused,
    audit_rows,
    base_env,
    curl,
    find_leaks,
    last_audit_id,
    parse_exports,
    run_agent,
)
from upstreams import reply_text

MODELS = "https://api.openai.com/v1/models"


# -- tenants ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acme_key(seks) -> str:
    """Tenant acme, with its own key under the same secret name as the default tenant's."""
    value = "sk-acme-" + "7" * 24
    seks.run("tenant", "create", "acme")
    seks.run("secret", "add", "openai-main", "-p", "openai", "--tenant", "acme", input=value)
    seks.run("agent", "create", "acme-bot", "--tenant", "acme")
    return value


def test_a_tokens_tenant_decides_which_secret_is_injected(
    seks, proxy, agent_env, openai_upstream, acme_key, canaries
):
    token = seks.run(
        "token", "issue", "--agent", "acme-bot", "-p", "openai", "--tenant", "acme"
    ).stdout.strip()
    last = last_audit_id(seks)

    result = curl(MODELS, headers=(f"Authorization: Bearer {token}",), env=agent_env)

    (seen,) = openai_upstream.requests
    assert seen.header("Authorization") == f"Bearer {acme_key}"  # acme's own key
    assert canaries["openai"] not in seen.raw().decode()  # never the default tenant's
    assert result.status == 401  # the local upstream knows only the default tenant's key
    assert find_leaks([acme_key], {"agent's response": result.raw}) == []
    (row,) = audit_rows(seks, last, "request.injected")
    assert (row["tenant"], row["agent"]) == ("acme", "acme-bot")


def test_a_token_cannot_be_issued_for_another_tenants_agent_or_secret(seks, acme_key):
    cross = seks.run(
        "token", "issue", "--agent", AGENT, "-p", "openai", "--tenant", "acme", check=False
    )
    assert cross.returncode == 1
    assert cross.stderr.startswith("Error: no agent")
    seks.run("tenant", "create", "empty")
    seks.run("agent", "create", "lonely", "--tenant", "empty")
    named = seks.run(
        "token", "issue", "--agent", "lonely", "-p", "openai", "--secret", "openai-main",
        "--tenant", "empty", check=False,
    )  # fmt: skip
    assert named.returncode == 1
    assert named.stderr.strip() == "Error: no secret 'openai-main' in tenant 'empty'"


def test_listings_never_show_another_tenants_names(seks, acme_key):
    default_view = seks.run("agent", "list").stdout + seks.run("token", "list").stdout
    acme_view = seks.run("agent", "list", "--tenant", "acme").stdout
    assert "acme-bot" not in default_view
    assert "acme-bot" in acme_view and AGENT not in acme_view
    assert [s["tenant"] for s in seks.json("secret", "list", "--tenant", "acme")] == ["acme"]


# -- agent identity at the proxy ----------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded(seks) -> str:
    """An agent created with --proxy-auth; returns its long-lived proxy password."""
    created = seks.run("agent", "create", "guarded", "--proxy-auth")
    return created.stdout.strip()


def guarded_env(seks, proxy) -> dict[str, str]:
    out = seks.run("env", "--agent", "guarded", "--proxy", proxy.url).stdout
    return {**base_env(seks.home.parent), **parse_exports(out)}


def test_an_agent_with_proxy_auth_works_through_its_own_credentials(
    seks, proxy, guarded, agent_python, openai_upstream, canaries
):
    env = guarded_env(seks, proxy)
    assert env["HTTPS_PROXY"].startswith("http://guarded:seksp_")

    run = run_agent(agent_python, "openai_agent.py", "chat", env=env)
    by_curl = curl(MODELS, headers=(f"Authorization: Bearer {env['OPENAI_API_KEY']}",), env=env)

    assert run.report["calls"]["chat"]["content"] == reply_text("ping from the openai agent")
    assert by_curl.status == 200, by_curl.raw
    assert len(openai_upstream.requests) == 2
    for seen in openai_upstream.requests:
        assert "proxy-authorization" not in {k.lower() for k, _ in seen.headers}
    leaks = find_leaks(
        [env["HTTPS_PROXY"].split(":")[2].split("@")[0]],
        {"upstream": b"".join(r.raw() for r in openai_upstream.requests)},
    )
    assert leaks == []


@pytest.mark.parametrize(
    ("how", "status", "kind", "reason"),
    [
        ("no credentials", 407, "seks_proxy_auth_required", "proxy_auth_required"),
        ("wrong password", 407, "seks_proxy_auth_failed", "proxy_auth_failed"),
        ("another agent's", 403, "seks_agent_mismatch", "agent_mismatch"),
    ],
)
def test_a_proxy_auth_agents_token_is_refused_on_other_connections(
    seks, proxy, guarded, openai_upstream, tmp_path, how, status, kind, reason
):
    env = guarded_env(seks, proxy)
    token = env["OPENAI_API_KEY"]
    host = proxy.url.removeprefix("http://")
    if how == "another agent's":
        seks.run("agent", "create", "other-guarded", "--proxy-auth", check=False)
        other = seks.run("agent", "password", "other-guarded").stdout.strip()
        proxy_url = f"http://other-guarded:{other}@{host}"
    elif how == "wrong password":
        proxy_url = f"http://guarded:seksp_{'x' * 32}@{host}"
    else:
        proxy_url = proxy.url
    last = last_audit_id(seks)

    result = curl(
        "-x",
        proxy_url,
        "--cacert",
        env["CURL_CA_BUNDLE"],
        MODELS,
        headers=(f"Authorization: Bearer {token}",),
        env=base_env(tmp_path),
    )

    assert_refused(result, status, kind, token)
    assert openai_upstream.requests == []
    (row,) = audit_rows(seks, last, "request.denied")
    assert (row["reason"], row["agent"]) == (reason, "guarded")
    assert guarded not in result.raw.decode(errors="replace")
