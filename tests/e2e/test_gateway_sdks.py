"""Gateway mode: SDKs with only a base_url (no proxy, no CA) reach the providers through
`http://HOST:PORT/api/<provider>/…`, with the same swap, refusals and audit as the proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import (
    AGENT,
    ProxyProcess,
    assert_refused,
    audit_rows,
    base_env,
    curl,
    find_leaks,
    last_audit_id,
    parse_exports,
    run_agent,
    running_proxy,
    write_config,
)
from upstreams import reply_text

DEFAULT_GATEWAY = "http://127.0.0.1:8081"


@pytest.fixture(scope="module")
def gateway_proxy(seks, openai_upstream, anthropic_upstream, test_ca) -> Iterator[ProxyProcess]:
    config = write_config(seks, openai_upstream, anthropic_upstream, test_ca, name="gw.yaml")
    with running_proxy(seks, config) as p:
        yield p


@pytest.fixture(scope="module")
def gateway_env(seks, gateway_proxy) -> dict[str, str]:
    exports = parse_exports(seks.run("env", "--agent", AGENT, "--gateway").stdout)
    # `seks env` names the configured gateway; this proxy's gateway is on a free port.
    return base_env(seks.home.parent) | {
        k: v.replace(DEFAULT_GATEWAY, gateway_proxy.gateway_url) for k, v in exports.items()
    }


def test_seks_env_gateway_gives_base_urls_and_no_proxy_or_ca(seks, gateway_env) -> None:
    exports = parse_exports(seks.run("env", "--agent", AGENT, "--gateway").stdout)
    assert exports["OPENAI_BASE_URL"] == f"{DEFAULT_GATEWAY}/api/openai/v1"
    assert exports["ANTHROPIC_BASE_URL"] == f"{DEFAULT_GATEWAY}/api/anthropic"
    assert exports["OPENAI_API_KEY"].startswith("seks_openai_")
    assert exports["ANTHROPIC_API_KEY"].startswith("seks_anthropic_")
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "SSL_CERT_FILE", "NO_PROXY"):
        assert name not in exports


def test_openai_sdk_through_the_gateway(
    agent_python, gateway_env, openai_upstream, canaries, seks, gateway_proxy
) -> None:
    last = last_audit_id(seks)
    run = run_agent(agent_python, "openai_agent.py", env=gateway_env)
    calls = run.report["calls"]

    assert calls["models"]["ids"] == ["gpt-4o-mini", "gpt-4o"]
    assert calls["chat"]["content"] == reply_text("ping from the openai agent")
    assert calls["stream"]["content"] == reply_text("ping from the openai agent")
    seen = openai_upstream.requests
    assert [(r.method, r.path) for r in seen] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    assert {r.header("Authorization") for r in seen} == {f"Bearer {canaries['openai']}"}
    assert all(b"seks_" not in r.raw() for r in seen)
    rows = audit_rows(seks, last, "request.completed", count=3)
    assert {(r["host"], r["provider"], r["status"]) for r in rows} == {
        ("api.openai.com", "openai", 200)
    }
    places = {"agent": (run.stdout + run.stderr).encode(), "proxy": gateway_proxy.output()}
    assert find_leaks(canaries.values(), places) == []


def test_anthropic_sdk_through_the_gateway(
    agent_python, gateway_env, anthropic_upstream, canaries
) -> None:
    run = run_agent(agent_python, "anthropic_agent.py", env=gateway_env)
    calls = run.report["calls"]

    for call in ("message", "stream", "stream_helper"):
        assert calls[call]["content"] == reply_text("ping from the anthropic agent"), call
    seen = anthropic_upstream.requests
    assert [(r.method, r.path) for r in seen] == [("POST", "/v1/messages")] * 3
    assert {r.header("Authorization") for r in seen} == {f"Bearer {canaries['anthropic']}"}
    assert find_leaks(canaries.values(), {"agent": (run.stdout + run.stderr).encode()}) == []


def _gateway_curl(proxy: ProxyProcess, path: str, *headers: str, tmp_path) -> object:
    return curl(f"{proxy.gateway_url}{path}", headers=headers, env=base_env(tmp_path))


def test_a_token_for_another_provider_is_refused_at_the_gateway(
    seks, gateway_proxy, anthropic_upstream, tmp_path
) -> None:
    token = seks.issue("openai")
    result = _gateway_curl(
        gateway_proxy, "/api/anthropic/v1/messages", f"x-api-key: {token}", tmp_path=tmp_path
    )
    assert_refused(result, 403, "seks_host_not_allowed", token)
    assert anthropic_upstream.requests == []


@pytest.mark.parametrize("path", ["/", "/v1/models", "/api/nope/v1/models", "/api/"])
def test_paths_outside_a_provider_are_404(seks, gateway_proxy, tmp_path, path: str) -> None:
    token = seks.issue("openai")
    result = _gateway_curl(gateway_proxy, path, f"Authorization: Bearer {token}", tmp_path=tmp_path)
    assert_refused(result, 404, "seks_gateway_route_unknown", token)
