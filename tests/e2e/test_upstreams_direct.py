"""The stand-in upstreams are faithful enough for the other tests to mean something: reached
directly (no proxy), they answer the real SDKs only when the real key is in the real place.
"""

from __future__ import annotations

from pathlib import Path

from harness import base_env, curl, run_agent
from upstreams import Upstream, reply_text


def direct_env(
    tmp_path: Path, ca_pem: Path, openai: Upstream, anthropic: Upstream, keys: dict[str, str]
) -> dict[str, str]:
    return {
        **base_env(tmp_path),
        "SSL_CERT_FILE": str(ca_pem),
        "OPENAI_BASE_URL": openai.url + "/v1",
        "ANTHROPIC_BASE_URL": anthropic.url,
        "OPENAI_API_KEY": keys["openai"],
        "ANTHROPIC_API_KEY": keys["anthropic"],
    }


def test_sdks_parse_every_answer_given_the_real_keys(
    tmp_path, agent_python, test_ca, openai_upstream, anthropic_upstream, canaries
):
    env = direct_env(tmp_path, test_ca.pem, openai_upstream, anthropic_upstream, canaries)

    openai = run_agent(agent_python, "openai_agent.py", env=env).report["calls"]
    anthropic = run_agent(agent_python, "anthropic_agent.py", env=env).report["calls"]

    assert openai["models"]["ids"] == ["gpt-4o-mini", "gpt-4o"]
    assert openai["chat"]["content"] == reply_text("ping from the openai agent")
    assert openai["stream"]["content"] == reply_text("ping from the openai agent")
    assert openai["stream"]["finish_reason"] == "stop"
    for call in ("message", "stream", "stream_helper"):
        assert anthropic[call]["content"] == reply_text("ping from the anthropic agent"), call
    assert anthropic["stream"]["event_types"][0] == "message_start"
    assert anthropic["stream"]["event_types"][-3:] == [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    # Keep-alive works: the SDKs' pooled connections carried every request.
    assert len(openai_upstream.requests) == 3
    assert len(anthropic_upstream.requests) == 3


def test_sdks_get_the_providers_401_without_the_real_key(
    tmp_path, agent_python, test_ca, openai_upstream, anthropic_upstream
):
    wrong = {"openai": "sk-wrong", "anthropic": "sk-ant-wrong"}
    env = direct_env(tmp_path, test_ca.pem, openai_upstream, anthropic_upstream, wrong)

    openai = run_agent(agent_python, "openai_agent.py", "models", env=env).report["calls"]
    anthropic = run_agent(agent_python, "anthropic_agent.py", "message", env=env).report["calls"]

    assert openai["models"]["error"]["class"] == "AuthenticationError"
    assert openai["models"]["error"]["code"] == "invalid_api_key"
    assert anthropic["message"]["error"]["class"] == "AuthenticationError"
    assert anthropic["message"]["error"]["body"]["error"]["type"] == "authentication_error"


def test_each_key_only_counts_in_its_providers_place(
    tmp_path, test_ca, openai_upstream, anthropic_upstream, canaries
):
    env = base_env(tmp_path)
    ca = ("--cacert", str(test_ca.pem))

    as_x_api_key = curl(
        *ca,
        openai_upstream.url + "/v1/models",
        headers=(f"x-api-key: {canaries['openai']}",),
        env=env,
    )
    anthropic_x_api_key = curl(
        *ca,
        anthropic_upstream.url + "/v1/messages",
        "--json",
        '{"messages": [{"role": "user", "content": "hi"}]}',
        headers=(f"x-api-key: {canaries['anthropic']}",),
        env=env,
    )

    assert as_x_api_key.status == 401
    assert anthropic_x_api_key.status == 200
    assert anthropic_x_api_key.json()["content"][0]["text"] == reply_text("hi")
