"""`seks exec` runs an agent with its proxy, CA and fresh tokens, revokes those tokens when the
agent ends, and exits with the agent's exit code.
"""

from __future__ import annotations

import json

from harness import AGENT, AGENTS, assert_refused, curl, find_leaks
from upstreams import reply_text


def new_tokens(seks, before):
    known = {t["id"] for t in before}
    return [t for t in seks.tokens() if t["id"] not in known]


def is_revoked(token: dict) -> bool:
    return token.get("revoked_at") is not None or token.get("state") == "revoked"


def test_exec_runs_an_agent_with_both_sdks_then_revokes_its_tokens(
    seks, proxy, agent_env, agent_python, openai_upstream, anthropic_upstream, canaries
):
    before = seks.tokens()

    run = seks.run(
        "exec",
        "--agent",
        AGENT,
        "--proxy",
        proxy.url,
        "--",
        str(agent_python),
        str(AGENTS / "both.py"),
    )

    report = json.loads(run.stdout)
    assert report["calls"]["openai_chat"]["content"] == reply_text("ping from both.py")
    assert report["calls"]["anthropic_message"]["content"] == reply_text("ping from both.py")
    held = report["env"]
    assert held["OPENAI_API_KEY"].startswith("seks_openai_")
    assert held["ANTHROPIC_API_KEY"].startswith("seks_anthropic_")
    assert find_leaks(canaries.values(), {"agent output": (run.stdout + run.stderr).encode()}) == []
    (to_openai,) = openai_upstream.requests
    (to_anthropic,) = anthropic_upstream.requests
    assert to_openai.header("Authorization") == f"Bearer {canaries['openai']}"
    assert to_anthropic.header("Authorization") == f"Bearer {canaries['anthropic']}"
    # The session's tokens are revoked once the agent has ended ...
    session = new_tokens(seks, before)
    assert sorted(t["provider"] for t in session) == ["anthropic", "openai"]
    assert all(is_revoked(t) for t in session), session
    # ... so a token copied out of the agent no longer works.
    token = held["OPENAI_API_KEY"]
    result = curl(
        "https://api.openai.com/v1/models",
        headers=(f"Authorization: Bearer {token}",),
        env=agent_env,
    )
    assert_refused(result, 401, "seks_token_revoked", token)


def test_exec_exits_with_the_agents_exit_code_and_still_revokes(seks, proxy, agent_python):
    before = seks.tokens()

    run = seks.run(
        "exec",
        "--agent",
        AGENT,
        "--proxy",
        proxy.url,
        "--",
        str(agent_python),
        "-c",
        "import os, sys; assert os.environ['OPENAI_API_KEY'].startswith('seks_'); sys.exit(7)",
        check=False,
    )

    assert run.returncode == 7, run.stderr
    session = new_tokens(seks, before)
    assert session
    assert all(is_revoked(t) for t in session), session
