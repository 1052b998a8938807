"""After a full end-to-end run (SDK calls, streams, refusals, `seks exec`, a rotation) the real
keys appear nowhere but as vault ciphertext: not in any file under the SEKS home or the agents'
home, not in the proxy's output at debug level, not in any CLI or agent output, in no encoding.
Nor does a whole fake token reach the proxy's console or the audit trail.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

import pytest
from harness import (
    AGENT,
    AGENTS,
    base_env,
    curl,
    files_under,
    find_leaks,
    run_agent,
    running_proxy,
    write_config,
)
from upstreams import reply_text

from seks.store.tokens import mint


@dataclass
class Scenario:
    canaries: list[str]
    tokens: list[str] = field(default_factory=list)
    outputs: dict[str, bytes] = field(default_factory=dict)
    files_while_running: dict[str, bytes] = field(default_factory=dict)
    proxy_output: dict[str, bytes] = field(default_factory=dict)
    audit: bytes = b""


@pytest.fixture(scope="module")
def scenario(
    seks, agent_python, openai_upstream, anthropic_upstream, http_recorder, test_ca, canaries
):
    run = Scenario(canaries=list(canaries.values()))
    config = write_config(seks, openai_upstream, anthropic_upstream, test_ca, log_level="debug")

    def keep(name: str, out: str | bytes) -> None:
        run.outputs[name] = out.encode() if isinstance(out, str) else out

    with running_proxy(seks, config) as proxy:
        env = seks.agent_env(proxy.url)
        run.tokens += [env["OPENAI_API_KEY"], env["ANTHROPIC_API_KEY"]]

        for script in ("openai_agent.py", "anthropic_agent.py"):
            agent = run_agent(agent_python, script, env=env)
            assert all(c["ok"] for c in agent.report["calls"].values()), agent.stdout
            keep(script, agent.stdout + agent.stderr)
        fetched = run_agent(
            agent_python,
            "fetch.py",
            "POST",
            "https://api.anthropic.com/v1/messages",
            "x-api-key: $ANTHROPIC_API_KEY",
            "--json",
            '{"messages": [{"role": "user", "content": "x-api-key"}]}',
            env=env,
        )
        assert fetched.report["status"] == 200
        keep("fetch.py", fetched.stdout + fetched.stderr)
        streamed = curl(
            "-N",
            "https://api.openai.com/v1/chat/completions",
            "--json",
            '{"stream": true, "messages": [{"role": "user", "content": "curl"}]}',
            headers=(f"Authorization: Bearer {env['OPENAI_API_KEY']}",),
            env=env,
        )
        assert streamed.status == 200
        keep("curl stream", streamed.raw)

        # Refusals: outside the provider, unknown, a typo, in the query string.
        token = seks.issue("openai")
        typo = token[:-1] + ("a" if token[-1] != "a" else "b")
        unknown = mint("anthropic")
        run.tokens += [token, typo, unknown]
        refusals = [
            curl(
                "-x",
                proxy.url,
                "--noproxy",
                "",
                http_recorder.url,
                headers=(f"Authorization: Bearer {token}",),
                env=base_env(seks.home.parent),
            ),
            curl(
                "https://api.openai.com/v1/models",
                headers=(f"Authorization: Bearer {typo}",),
                env=env,
            ),
            curl(
                "https://api.anthropic.com/v1/messages",
                "--json",
                "{}",
                headers=(f"x-api-key: {unknown}",),
                env=env,
            ),
            curl(f"https://api.openai.com/v1/models?key={token}", env=env),
        ]
        assert [r.status for r in refusals] == [403, 401, 401, 403]
        for i, r in enumerate(refusals):
            keep(f"refusal {i}", r.raw)

        exec_run = seks.run(
            "exec", "--agent", AGENT, "--proxy", proxy.url, "--",
            str(agent_python), str(AGENTS / "both.py"),
        )  # fmt: skip
        keep("seks exec", exec_run.stdout + exec_run.stderr)
        run.tokens += [t for t in json.loads(exec_run.stdout)["env"].values() if t]

        # Rotate: the agent's existing token keeps working and now carries the new key.
        rotated = "sk-ant-canary-" + secrets.token_hex(16)
        run.canaries.append(rotated)
        seks.run("secret", "rotate", "anthropic-main", input=rotated)
        original, anthropic_upstream.real_key = anthropic_upstream.real_key, rotated
        try:
            after = run_agent(agent_python, "anthropic_agent.py", "message", env=env)
        finally:
            anthropic_upstream.real_key = original
        message = after.report["calls"]["message"]
        assert message.get("content") == reply_text("ping from the anthropic agent"), message
        keep("after rotation", after.stdout + after.stderr)

        for listing in (["secret", "list"], ["token", "list"], ["agent", "list"]):
            seks.run(*listing)
            seks.run(*listing, "--json")
        audit = seks.run("audit", "tail", "-n", "10000", "--json").stdout
        run.audit = audit.encode() + seks.run("audit", "tail", "-n", "10000").stdout.encode()
        # The vault's -wal and -shm files exist only while the proxy has the vault open.
        run.files_while_running = {
            f"file (proxy running) {name}": data
            for name, data in files_under(seks.home.parent).items()
        }
    # The proxy has exited (0): everything it wrote to its home is on disk now.
    run.proxy_output = {
        "proxy stdout": b"".join(proxy.stdout),
        "proxy stderr": b"".join(proxy.stderr),
    }
    keep("seks CLI", b"".join(seks.transcript))
    return run


def test_canaries_appear_in_no_file_and_no_output(seks, scenario):
    files = {f"file {name}": data for name, data in files_under(seks.home.parent).items()}
    files |= scenario.files_while_running
    assert any(name.endswith("vault.db") for name in files)  # the vault was scanned
    assert any(name.endswith("vault.db-wal") for name in files)  # and its write-ahead log

    leaks = find_leaks(scenario.canaries, files | scenario.outputs | scenario.proxy_output)

    assert leaks == []


def test_no_whole_token_in_the_proxy_console_or_the_audit_trail(scenario):
    places = scenario.proxy_output | {"audit tail": scenario.audit}

    found = [
        f"{token[:12]}… in {where}"
        for token in scenario.tokens
        for where, data in places.items()
        if token.encode() in data
    ]

    assert found == []
