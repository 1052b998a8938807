"""Token limits through the real proxy with real clients: a token expires mid-session, uses are
spent exactly (8 curl processes racing through two proxy processes), a client on another
loopback address is refused, scopes match whole segments, a rate is enforced. Every refusal is
checked for its JSON type and its audit reason, and that no upstream saw it.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest
from curls import curl_all
from harness import (
    AGENT,
    AGENTS,
    assert_refused,
    audit_rows,
    curl,
    last_audit_id,
    running_proxy,
    token_id_of,
    wait_until_expired,
    write_config,
)

MODELS = "https://api.openai.com/v1/models"
CHAT = "https://api.openai.com/v1/chat/completions"


def issue(seks, *limits: str) -> tuple[str, str]:
    """A token of the module's agent with these limits, and its public id."""
    before = seks.tokens()
    token = seks.run(
        "token", "issue", "--agent", AGENT, "--provider", "openai", *limits
    ).stdout.strip()
    return token, token_id_of(seks, before)


def bearer(token: str) -> tuple[str]:
    return (f"Authorization: Bearer {token}",)


def refusal_rows(seks, after: int, count: int = 1) -> list[dict]:
    rows = audit_rows(seks, after, "request.denied", count=count)
    assert len(rows) == count, rows
    return rows


# -- ttl ----------------------------------------------------------------------------------------


def test_a_token_that_expires_mid_session_is_refused_on_the_same_connection(
    seks, proxy, agent_env, agent_python, openai_upstream
):
    # One httpx client, one connection through the proxy; the token comes on stdin when the
    # agent is ready, so its short life is spent on requests, not on starting Python.
    with subprocess.Popen(
        [str(agent_python), str(AGENTS / "session.py"), MODELS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=agent_env,
    ) as agent:

        def use(token: str) -> dict:
            agent.stdin.write(token + "\n")
            agent.stdin.flush()
            return json.loads(agent.stdout.readline())

        assert agent.stdout.readline().strip() == "ready"
        token, token_id = issue(seks, "--ttl", "3s")
        first = use(token)
        wait_until_expired(seks, token_id)
        last = last_audit_id(seks)
        second = use(token)
        agent.stdin.close()

    assert first["status"] == 200
    assert second["status"] == 401
    assert second["json"]["error"]["type"] == "seks_token_expired"
    assert second["client_addr"] == first["client_addr"]  # the same connection
    assert len(openai_upstream.requests) == 1
    (row,) = refusal_rows(seks, last)
    assert (row["reason"], row["token_id"]) == ("token_expired", token_id)


# -- uses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "uses"), [(("--max-uses", "3"), 3), (("--single-use",), 1)])
def test_racing_clients_through_two_proxies_spend_exactly_the_uses_issued(
    seks,
    proxy,
    agent_env,
    openai_upstream,
    anthropic_upstream,
    test_ca,
    limit: tuple[str, ...],
    uses: int,
):
    token, token_id = issue(seks, *limit)
    last = last_audit_id(seks)
    config = write_config(seks, openai_upstream, anthropic_upstream, test_ca, name="second.yaml")

    with running_proxy(seks, config) as second:
        # 8 curl processes at once, half through each proxy process.
        run = {"headers": bearer(token), "env": agent_env}
        results = curl_all(
            *[(("-x", p.url, MODELS), run) for p in (proxy, second) for _ in range(4)]
        )

    assert Counter(r.status for r in results) == {200: uses, 403: 8 - uses}
    for refused in (r for r in results if r.status == 403):
        assert_refused(refused, 403, "seks_uses_exhausted", token)
    assert len(openai_upstream.requests) == uses
    rows = refusal_rows(seks, last, 8 - uses)
    assert {(r["reason"], r["token_id"]) for r in rows} == {("uses_exhausted", token_id)}
    (listed,) = [t for t in seks.tokens() if t["id"] == token_id]
    assert (listed["uses_left"], listed["state"]) == (0, "exhausted")


# -- client address -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "interface", "status"),
    [("127.0.0.1", "127.0.0.2", 403), ("127.0.0.2/32", "127.0.0.2", 200), ("127.0.0.1", None, 200)],
    ids=["other-loopback-refused", "own-loopback-allowed", "default-address-allowed"],
)
def test_the_client_address_the_proxy_sees_must_be_allowed(
    seks, proxy, agent_env, openai_upstream, allowed, interface, status
):
    token, token_id = issue(seks, "--allow-ip", allowed)
    last = last_audit_id(seks)

    bind = ("--interface", interface) if interface else ()
    result = curl(*bind, MODELS, headers=bearer(token), env=agent_env)

    assert result.status == status, result.raw
    if status == 403:
        assert_refused(result, 403, "seks_ip_not_allowed", token)
        assert openai_upstream.requests == []
        (row,) = refusal_rows(seks, last)
        assert (row["reason"], row["client_ip"], row["token_id"]) == (
            "ip_not_allowed",
            "127.0.0.2",
            token_id,
        )


# -- scopes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("POST", CHAT, True),
        ("POST", "https://api.openai.com/v1/chat-evil", False),
        ("POST", "https://api.openai.com/v1/chat-evil/completions", False),
        ("GET", CHAT, False),
        ("GET", MODELS, False),
        ("POST", "https://api.openai.com/v1/chat/../models", False),
        ("POST", "https://api.openai.com/v1/chat/%2e%2e/models", False),
    ],
    ids=[
        "allowed",
        "chat-evil",
        "chat-evil-below",
        "wrong-method",
        "other-path",
        "dots",
        "dots-encoded",
    ],
)
def test_scopes_match_whole_path_segments(
    seks, proxy, agent_env, openai_upstream, method, url, allowed
):
    token, token_id = issue(seks, "--allow", "POST /v1/chat/*")
    last = last_audit_id(seks)

    result = curl(
        "--path-as-is",
        "-X",
        method,
        url,
        "-H",
        "content-type: application/json",
        "--data",
        '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}',
        headers=bearer(token),
        env=agent_env,
    )

    if allowed:
        assert result.status == 200, result.raw
        assert len(openai_upstream.requests) == 1
        return
    assert_refused(result, 403, "seks_scope_not_allowed", token)
    assert "POST /v1/chat/*" in result.json()["error"]["message"]
    assert openai_upstream.requests == []
    (row,) = refusal_rows(seks, last)
    assert (row["reason"], row["token_id"]) == ("scope_not_allowed", token_id)


# -- rate ---------------------------------------------------------------------------------------


def test_a_token_over_its_rate_is_refused_with_429_and_retry_after(
    seks, proxy, agent_env, openai_upstream
):
    token, token_id = issue(seks, "--rate", "3/min")
    last = last_audit_id(seks)

    results = [curl(MODELS, headers=bearer(token), env=agent_env) for _ in range(4)]

    assert [r.status for r in results] == [200, 200, 200, 429]
    assert_refused(results[-1], 429, "seks_rate_limited", token)
    assert 1 <= int(results[-1].headers["retry-after"]) <= 60
    assert len(openai_upstream.requests) == 3
    (row,) = refusal_rows(seks, last)
    assert (row["reason"], row["token_id"], row["status"]) == ("rate_limited", token_id, 429)
