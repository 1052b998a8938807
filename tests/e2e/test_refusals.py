"""The proxy refuses a fake token that is unknown, malformed, expired, revoked, misplaced or sent
outside its provider: the agent gets a JSON error naming the reason, no upstream sees the
request, and the audit trail records the refusal.
"""

from __future__ import annotations

import pytest
from harness import (
    AGENT,
    assert_refused,
    base_env,
    curl,
    denials_since,
    last_audit_id,
    run_agent,
    token_id_of,
    wait_until_expired,
)

from seks.store.tokens import mint

MODELS = "https://api.openai.com/v1/models"


@pytest.mark.parametrize("extra", [(), ("Host: api.openai.com",)], ids=["own Host", "spoofed Host"])
def test_token_sent_to_a_plain_http_host_outside_its_provider_is_403(
    seks, proxy, http_recorder, tmp_path, extra
):
    before = seks.tokens()
    token = seks.issue("openai")
    last = last_audit_id(seks)

    result = curl(
        "-x",
        proxy.url,
        "--noproxy",
        "",
        f"{http_recorder.url}/collect",
        headers=(f"Authorization: Bearer {token}", *extra),
        env=base_env(tmp_path),
    )

    assert_refused(result, 403, "seks_host_not_allowed", token)
    assert http_recorder.requests == []
    (row,) = denials_since(seks, last)
    assert row["reason"] == "host_not_allowed"
    assert row["decision"] == "deny"
    assert row["token_id"] == token_id_of(seks, before)
    assert row["agent"] == AGENT
    assert row["host"] == "127.0.0.1"  # where the request would have gone, whatever Host said


def test_token_sent_to_its_provider_over_plain_http_is_403(seks, proxy, openai_upstream, tmp_path):
    token = seks.issue("openai")
    last = last_audit_id(seks)

    # Injecting here would send the real key in clear text.
    result = curl(
        "-x",
        proxy.url,
        "http://api.openai.com/v1/models",
        headers=(f"Authorization: Bearer {token}",),
        env=base_env(tmp_path),
    )

    assert_refused(result, 403, "seks_host_not_allowed", token)
    assert openai_upstream.requests == []
    (row,) = denials_since(seks, last)
    assert row["reason"] == "host_not_allowed"


# curl CONNECTs to api.openai.com but asks for evil.example in SNI and Host.
OTHER_SNI = (
    "--connect-to",
    "evil.example:443:api.openai.com:443",
    "https://evil.example/v1/models",
)


@pytest.mark.parametrize(
    ("args", "extra"),
    [((MODELS,), ("Host: evil.example",)), (OTHER_SNI, ())],
    ids=["Host header", "TLS server name"],
)
def test_destination_that_disagrees_with_the_connect_target_is_403(
    seks, agent_env, openai_upstream, args, extra
):
    token = seks.issue("openai")
    last = last_audit_id(seks)

    result = curl(
        *args,
        headers=(f"Authorization: Bearer {token}", *extra),
        env=agent_env,
    )

    assert_refused(result, 403, "seks_host_not_allowed", token)
    assert openai_upstream.requests == []
    (row,) = denials_since(seks, last)
    assert row["reason"] == "host_not_allowed"


def test_openai_token_sent_to_anthropic_is_403(seks, agent_env, anthropic_upstream):
    token = seks.issue("openai")
    last = last_audit_id(seks)

    result = curl(
        "https://api.anthropic.com/v1/messages",
        "--json",
        '{"messages": []}',
        headers=(f"Authorization: Bearer {token}",),
        env=agent_env,
    )

    assert_refused(result, 403, "seks_host_not_allowed", token)
    assert anthropic_upstream.requests == []
    (row,) = denials_since(seks, last)
    assert (row["reason"], row["host"], row["provider"]) == (
        "host_not_allowed",
        "api.anthropic.com",
        "openai",
    )


def test_unknown_token_is_401_and_the_sdk_reports_it(
    seks, agent_python, agent_env, openai_upstream
):
    token = mint("openai")  # well formed, checksum right, never issued by this vault
    last = last_audit_id(seks)

    run = run_agent(
        agent_python, "openai_agent.py", "models", env=agent_env | {"OPENAI_API_KEY": token}
    )

    error = run.report["calls"]["models"]["error"]
    assert error["class"] == "AuthenticationError"
    assert error["status_code"] == 401
    assert error["code"] == "seks_unknown_token"
    assert "SEKS: " in error["str"]
    assert token not in error["text"]
    assert openai_upstream.requests == []
    (row,) = denials_since(seks, last)
    assert row["reason"] == "unknown_token"
    assert row["host"] == "api.openai.com"


def test_token_with_a_typo_is_401_before_any_lookup(seks, agent_env, openai_upstream):
    token = seks.issue("openai")
    i = len("seks_openai_") + 5
    typo = token[:i] + ("b" if token[i] == "a" else "a") + token[i + 1 :]
    last = last_audit_id(seks)

    result = curl(MODELS, headers=(f"Authorization: Bearer {typo}",), env=agent_env)

    assert_refused(result, 401, "seks_unknown_token", typo)
    assert openai_upstream.requests == []
    (row,) = denials_since(seks, last)
    assert row["reason"] == "malformed_token"
    assert row["token_id"] is None  # a typo resolves to no token


def test_expired_token_is_401(seks, agent_env, openai_upstream):
    before = seks.tokens()
    token = seks.issue("openai", ttl="1s")
    token_id = token_id_of(seks, before)
    wait_until_expired(seks, token_id)
    last = last_audit_id(seks)

    result = curl(MODELS, headers=(f"Authorization: Bearer {token}",), env=agent_env)

    assert_refused(result, 401, "seks_token_expired", token)
    assert openai_upstream.requests == []
    (row,) = denials_since(seks, last)
    assert (row["reason"], row["token_id"], row["agent"]) == ("token_expired", token_id, AGENT)


def test_revoked_token_stops_working_at_once(seks, agent_env, openai_upstream):
    before = seks.tokens()
    token = seks.issue("openai")
    token_id = token_id_of(seks, before)
    auth = (f"Authorization: Bearer {token}",)
    assert curl(MODELS, headers=auth, env=agent_env).status == 200
    openai_upstream.clear()

    seks.run("token", "revoke", token_id)
    last = last_audit_id(seks)
    result = curl(MODELS, headers=auth, env=agent_env)

    assert_refused(result, 401, "seks_token_revoked", token)
    assert openai_upstream.requests == []
    (row,) = denials_since(seks, last)
    assert (row["reason"], row["token_id"], row["agent"]) == ("token_revoked", token_id, AGENT)


@pytest.mark.parametrize(
    ("url", "header"),
    [(MODELS + "?api_key={token}", None), (MODELS, "x-api-key: {token}")],
    ids=["query string", "another header"],
)
def test_token_outside_the_providers_credential_place_is_403(
    seks, agent_env, openai_upstream, url, header
):
    token = seks.issue("openai")
    last = last_audit_id(seks)

    result = curl(
        url.format(token=token),
        headers=(header.format(token=token),) if header else (),
        env=agent_env,
    )

    assert_refused(result, 403, "seks_token_misplaced", token)
    assert openai_upstream.requests == []
    (row,) = denials_since(seks, last)
    assert row["reason"] == "token_misplaced"
    assert row["path"] == "/v1/models"  # the audit keeps no query string, so no token
    assert token not in str(row)
