"""Real agent clients work through the proxy unchanged: the upstream gets the real key in the
provider's place, while the agent only ever holds and sees `seks_` tokens.
"""

from __future__ import annotations

from pathlib import Path

from harness import AGENT, audit_rows, curl, find_leaks, last_audit_id, run_agent, token_id_of
from upstreams import reply_text

OPENAI_PROMPT = "ping from the openai agent"
ANTHROPIC_PROMPT = "ping from the anthropic agent"
CA_VARS = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
)


def no_seks_token_upstream(requests) -> bool:
    return all(b"seks_" not in r.raw() for r in requests)


def test_seks_env_gives_proxy_ca_and_one_token_per_provider_with_a_secret(
    seks, proxy, agent_env, canaries
):
    ca_pem = seks.ca_path().read_text().strip()

    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert agent_env[name] == proxy.url, name
    # Each variable names a file holding the SEKS CA (alone, or in a bundle with public roots).
    for name in CA_VARS:
        assert ca_pem in Path(agent_env[name]).read_text(), name
    for name in ("NO_PROXY", "no_proxy"):
        assert {"127.0.0.1", "localhost"} <= set(agent_env[name].split(",")), name
    assert agent_env["OPENAI_API_KEY"].startswith("seks_openai_")
    assert agent_env["ANTHROPIC_API_KEY"].startswith("seks_anthropic_")
    assert "GITHUB_TOKEN" not in agent_env  # no github secret in this vault
    assert find_leaks(canaries.values(), {"seks env": repr(agent_env).encode()}) == []


def test_openai_sdk_list_chat_and_stream(agent_python, agent_env, openai_upstream, canaries):
    run = run_agent(agent_python, "openai_agent.py", env=agent_env)
    report = run.report
    calls = report["calls"]

    assert calls["models"]["ids"] == ["gpt-4o-mini", "gpt-4o"]
    assert calls["chat"]["content"] == reply_text(OPENAI_PROMPT)
    assert calls["stream"]["content"] == reply_text(OPENAI_PROMPT)
    assert calls["stream"]["finish_reason"] == "stop"
    seen = openai_upstream.requests
    assert [(r.method, r.path) for r in seen] == [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    assert {r.header("Authorization") for r in seen} == {f"Bearer {canaries['openai']}"}
    assert no_seks_token_upstream(seen)
    assert report["env"]["OPENAI_API_KEY"] == agent_env["OPENAI_API_KEY"]
    assert find_leaks(canaries.values(), {"agent output": (run.stdout + run.stderr).encode()}) == []


def test_anthropic_sdk_message_and_streams(agent_python, agent_env, anthropic_upstream, canaries):
    run = run_agent(agent_python, "anthropic_agent.py", env=agent_env)
    calls = run.report["calls"]

    for call in ("message", "stream", "stream_helper"):
        assert calls[call]["content"] == reply_text(ANTHROPIC_PROMPT), calls[call]
    words = len(reply_text(ANTHROPIC_PROMPT).split(" "))
    assert calls["stream"]["event_types"] == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * words,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert calls["stream_helper"]["stop_reason"] == "end_turn"
    seen = anthropic_upstream.requests
    assert [(r.method, r.path) for r in seen] == [("POST", "/v1/messages")] * 3
    # anthropic 2.x sends its key as a bearer token; the real key goes back in that same place.
    assert {r.header("Authorization") for r in seen} == {f"Bearer {canaries['anthropic']}"}
    assert {r.header("x-api-key") for r in seen} == {None}
    assert no_seks_token_upstream(seen)
    assert find_leaks(canaries.values(), {"agent output": (run.stdout + run.stderr).encode()}) == []


def test_httpx_with_x_api_key_gets_the_key_in_x_api_key(
    agent_python, agent_env, anthropic_upstream, canaries
):
    run = run_agent(
        agent_python,
        "fetch.py",
        "POST",
        "https://api.anthropic.com/v1/messages",
        "x-api-key: $ANTHROPIC_API_KEY",
        "anthropic-version: 2023-06-01",
        "--json",
        '{"model": "claude-sonnet-4-5", "max_tokens": 8, '
        '"messages": [{"role": "user", "content": "hello"}]}',
        env=agent_env,
    )

    assert run.report["status"] == 200
    assert "hello" in run.report["text"]
    (seen,) = anthropic_upstream.requests
    assert seen.header("x-api-key") == canaries["anthropic"]
    assert seen.header("Authorization") is None
    assert no_seks_token_upstream([seen])
    assert find_leaks(canaries.values(), {"agent output": (run.stdout + run.stderr).encode()}) == []


def test_curl_streams_sse_through_the_proxy(agent_env, openai_upstream, canaries):
    # curl reads HTTPS_PROXY and CURL_CA_BUNDLE from the environment seks env printed.
    result = curl(
        "-N",
        "https://api.openai.com/v1/chat/completions",
        "--json",
        '{"model": "gpt-4o-mini", "stream": true, '
        '"messages": [{"role": "user", "content": "from curl"}]}',
        headers=(f"Authorization: Bearer {agent_env['OPENAI_API_KEY']}",),
        env=agent_env,
    )

    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    events = [line for line in result.body.decode().split("\n") if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert len(events) >= 4
    (seen,) = openai_upstream.requests
    assert seen.header("Authorization") == f"Bearer {canaries['openai']}"
    assert find_leaks(canaries.values(), {"curl output": result.raw}) == []


def test_each_forwarded_request_is_audited_with_its_outcome(seks, proxy, agent_env):
    before = seks.tokens()
    token = seks.issue("openai")
    token_id = token_id_of(seks, before)
    last = last_audit_id(seks)

    result = curl(
        "https://api.openai.com/v1/models?limit=1",
        headers=(f"Authorization: Bearer {token}",),
        env=agent_env,
    )

    assert result.status == 200
    completed = audit_rows(seks, last, "request.completed")
    injected = audit_rows(seks, last, "request.injected")
    rows = injected + completed
    expected = {
        "agent": AGENT,
        "provider": "openai",
        "secret_name": "openai-main",
        "token_id": token_id,
        "method": "GET",
        "host": "api.openai.com",
        "path": "/v1/models",  # never the query string
        "client_ip": "127.0.0.1",
        "decision": "allow",
    }
    assert len(injected) == 1, rows
    assert {k: injected[0][k] for k in expected} == expected
    assert len(completed) == 1, rows
    assert completed[0]["status"] == 200
    assert completed[0]["latency_ms"] >= 0
    assert token not in str(rows)
