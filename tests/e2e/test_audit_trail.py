"""The audit trail through the real proxy and CLI: followed live, exported and verified, written
by several processes at once without a lock error, and never holding a secret or a whole token.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
from typing import Any

from harness import SEKS, curl, files_under, find_leaks

from seks.store.tokens import mint

MODELS = "https://api.openai.com/v1/models"
WAIT_S = 30


def bearer(token: str) -> tuple[str, ...]:
    return (f"Authorization: Bearer {token}",)


def lines_of(pipe: Any) -> queue.Queue[bytes]:
    """Each line a process prints, as it prints it."""
    lines: queue.Queue[bytes] = queue.Queue()

    def pump() -> None:
        for line in iter(pipe.readline, b""):
            lines.put(line)
        lines.put(b"")  # the end

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_tail_follow_shows_a_proxy_row_as_it_commits_and_stops_on_ctrl_c(seks, proxy, agent_env):
    token = seks.issue("openai")
    token_hash = seks.run("audit", "hash", input=token + "\n").stdout.strip()
    with subprocess.Popen(
        [str(SEKS), "audit", "tail", "-f", "--json", "-n", "1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=seks.env,
    ) as tail:
        try:
            lines = lines_of(tail.stdout)
            assert lines.get(timeout=WAIT_S), "tail printed nothing"  # the newest row: following

            assert curl(MODELS, headers=bearer(token), env=agent_env).status == 200

            seen: list[dict[str, Any]] = []
            while not any(r["event"] == "request.completed" for r in seen):
                line = lines.get(timeout=WAIT_S)
                assert line, "tail ended early"
                seen.append(json.loads(line))
            tail.send_signal(signal.SIGINT)
            code = tail.wait(timeout=WAIT_S)
            while lines.get(timeout=WAIT_S):  # to the end of its output
                pass
            assert tail.stderr is not None
            stderr = tail.stderr.read()
        finally:
            if tail.poll() is None:
                tail.kill()

    assert code == 0
    assert stderr == b""  # no traceback, no "Aborted!"
    injected = next(r for r in seen if r["event"] == "request.injected")
    assert injected["token_hash"] == token_hash
    assert (injected["decision"], injected["agent"], injected["host"]) == (
        "allow",
        "agent-1",
        "api.openai.com",
    )
    assert [r["flow_id"] for r in seen if r["event"].startswith("request.")] == [
        injected["flow_id"]
    ] * 2


def test_a_burst_of_cli_writes_while_the_proxy_serves_never_locks(seks, proxy, agent_env):
    token = seks.issue("openai")
    statuses: list[int] = []

    def agent() -> None:
        for _ in range(25):
            statuses.append(curl(MODELS, headers=bearer(token), env=agent_env).status)

    requests = threading.Thread(target=agent)
    requests.start()
    writers = [
        subprocess.Popen(
            [str(SEKS), "token", "issue", "--agent", "agent-1", "--provider", "openai"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=seks.env,
        )
        for _ in range(12)
    ]
    outputs = [w.communicate(timeout=120) for w in writers]
    requests.join(timeout=120)

    errors = [err.decode() for _, err in outputs]
    assert [w.returncode for w in writers] == [0] * 12, errors
    assert not any("locked" in e for e in errors)
    assert b"locked" not in proxy.output()
    assert statuses == [200] * 25
    verified = seks.run("audit", "verify")
    assert verified.stdout.startswith("OK the audit trail")


def test_real_traffic_exports_verify_and_a_tampered_export_fails(seks, proxy, agent_env, tmp_path):
    token = seks.issue("openai")
    assert curl(MODELS, headers=bearer(token), env=agent_env).status == 200
    assert curl(MODELS, headers=bearer(mint("openai")), env=agent_env).status == 401
    out = tmp_path / "audit.jsonl"

    seks.run("audit", "export", "--out", str(out))
    ok = seks.run("audit", "verify", "--file", str(out))
    lines = out.read_text().splitlines()
    denied = next(i for i, line in enumerate(lines) if '"request.denied"' in line)
    row = json.loads(lines[denied])
    lines[denied] = json.dumps({**row, "status": 200, "decision": "allow"})
    out.write_text("\n".join(lines) + "\n")
    bad = seks.run("audit", "verify", "--file", str(out), check=False)

    assert ok.stdout.startswith(f"OK {out}")
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        f"Error: {out} does not verify: first bad row {row['id']} (1 finding)"
    )


def test_archive_while_the_proxy_writes_keeps_the_chain_whole(seks, proxy, agent_env, tmp_path):
    token = seks.issue("openai")
    assert curl(MODELS, headers=bearer(token), env=agent_env).status == 200
    out = tmp_path / "old.csv"

    archived = seks.run(
        "audit", "archive", "--before", "2099-01-01", "--format", "csv", "--out", str(out)
    )
    assert curl(MODELS, headers=bearer(token), env=agent_env).status == 200
    checked = seks.run("audit", "verify", "--archive", str(out))

    assert archived.stdout.startswith("archived ")
    assert checked.stdout.count("OK ") == 2, checked.stdout


def test_no_audit_row_or_export_holds_a_secret_or_a_whole_token(
    seks, proxy, agent_env, canaries, tmp_path
):
    token = seks.issue("openai")
    stranger = mint("openai")
    assert curl(MODELS, headers=bearer(token), env=agent_env).status == 200
    assert curl(MODELS, headers=bearer(stranger), env=agent_env).status == 401
    in_query = curl(f"{MODELS}?key={token}&limit=5", headers=bearer(token), env=agent_env)
    assert in_query.status == 403  # a token outside its provider's credential place
    # A query string is kept only as a keyed hash, whatever it holds.
    with_query = curl(
        f"{MODELS}?api_key={canaries['openai']}", headers=bearer(token), env=agent_env
    )
    assert with_query.status == 200
    seks.run("audit", "export", "--out", str(tmp_path / "all.jsonl"))
    seks.run("audit", "export", "--format", "csv", "--out", str(tmp_path / "all.csv"))
    places = {
        "audit tail --json": seks.run("audit", "tail", "-n", "100000", "--json").stdout.encode(),
        "audit tail": seks.run("audit", "tail", "-n", "100000").stdout.encode(),
        **files_under(tmp_path),
    }

    assert find_leaks([*canaries.values(), token, stranger], places) == []
    rows = [json.loads(line) for line in places["audit tail --json"].splitlines()]
    query_rows = [r for r in rows if r.get("query_hash")]
    assert len(query_rows) >= 3  # the refusal; the injection and outcome with the canary
    assert all(r["query_hash"].startswith("hmac-sha256:") for r in query_rows)
