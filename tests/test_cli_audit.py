"""`seks audit …` as a person at a terminal (or a script) sees it.

`tail -f` against a live proxy, and Ctrl-C, are tested end to end (tests/e2e/test_audit_trail.py).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from seks.cli import cli
from seks.cli.common import parse_when
from seks.home import Home
from seks.store import Vault
from seks.store.audit import AuditEvent
from seks.store.audit_chain import AuditKeys, iso_time
from seks.store.tokens import mint

ANSI = "\x1b["


def seks(*args: str, input: str | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def one_line_error(result: Result, *needles: str) -> str:
    text = result.stderr.strip()
    assert "\n" not in text, text
    assert text.startswith("Error: "), text
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("SEKS_HOME", str(root))
    monkeypatch.delenv("SEKS_MASTER_KEY", raising=False)
    seks("init")
    return root


@contextmanager
def vault_of(home: Path) -> Iterator[Vault]:
    h = Home(home)
    vault = Vault.open(h.vault_path, h.master_key())
    try:
        yield vault
    finally:
        vault.close()


@pytest.fixture
def proxied(home: Path) -> Path:
    """Rows as the proxy writes them, among CLI changes."""
    seks("secret", "add", "k", "--provider", "openai", input="sk-canary-" + secrets.token_hex(8))
    seks("agent", "create", "bot")
    seks("agent", "create", "other")
    now = time.time_ns() // 1000
    with vault_of(home) as vault:
        for agent, provider, event, decision, ago_s in [
            ("bot", "openai", "request.injected", "allow", 7200),
            ("bot", "openai", "request.completed", None, 7200),
            ("bot", "github", "request.denied", "deny", 60),
            ("other", "openai", "request.denied", "deny", 30),
            ("other", "openai", "response.redacted", None, 10),
        ]:
            vault.audit.record(
                AuditEvent(
                    event,
                    agent=agent,
                    provider=provider,
                    decision=decision,
                    status=200,
                    ts_us=now - ago_s * 1_000_000,
                )
            )
    return home


@pytest.fixture
def ordered(home: Path) -> list[int]:
    """Rows 1-8 in time order, as a quiet day gives them; returns each row's ts_us."""
    seks("agent", "create", "bot")
    with vault_of(home) as vault:
        for agent, decision in [("bot", "allow"), ("bot", "deny"), ("x", "deny"), ("x", None)]:
            provider = "openai" if agent == "bot" else "github"
            vault.audit.record(
                AuditEvent("request.denied", agent=agent, provider=provider, decision=decision)
            )
        vault.create_agent("other")
        vault.create_agent("third")
        return [r[0] for r in vault.db.execute("SELECT ts_us FROM audit ORDER BY id")]


def at(ts_us: int) -> str:
    return iso_time(ts_us)


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- tail ------------------------------------------------------------------------------------


def test_tail_filters_by_agent_provider_event_and_decision(proxied: Path) -> None:
    def events(*args: str) -> list[tuple[str, str | None]]:
        return [
            (r["event"], r["agent"]) for r in json_lines(seks("audit", "tail", "--json", *args))
        ]

    assert events("--agent", "other", "--event", "request.*") == [("request.denied", "other")]
    assert events("--decision", "deny", "--provider", "openai") == [("request.denied", "other")]
    assert events("--event", "request.completed", "--event", "response.redacted") == [
        ("request.completed", "bot"),
        ("response.redacted", "other"),
    ]
    assert events("--agent", "nobody") == []


@pytest.mark.parametrize("since", ["45s", "2m", "1h"])
def test_tail_since_a_duration_ago(proxied: Path, since: str) -> None:
    rows = json_lines(seks("audit", "tail", "--json", "--since", since, "--event", "re*"))
    expected = {"45s": 2, "2m": 3, "1h": 3}[since]
    assert len(rows) == expected


def test_tail_since_an_iso_time(proxied: Path) -> None:
    everything = json_lines(seks("audit", "tail", "--json", "-n", "100"))
    cut = everything[-2]["ts_us"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(cut / 1e6))  # UTC, whole seconds

    rows = json_lines(seks("audit", "tail", "--json", "-n", "100", "--since", iso))

    assert [r["id"] for r in rows] == [
        r["id"] for r in everything if r["ts_us"] >= int(cut // 1e6 * 1e6)
    ]
    assert parse_when("2026-11-03") == parse_when("2026-11-03T00:00:00+00:00")
    assert parse_when("2026-11-03T02:00+02:00") == parse_when("2026-11-03T00:00Z")
    assert parse_when("15m", now=1000.0) == (1000 - 900) * 1_000_000


@pytest.mark.parametrize("value", ["yesterday", "15 minutes", "0m", "2026-13-01"])
def test_tail_with_a_bad_since_says_what_it_takes(proxied: Path, value: str) -> None:
    result = seks("audit", "tail", "--since", value, code=2)

    assert "ISO date or time" in result.output and "15m" in result.output


def test_tail_is_plain_in_a_pipe_and_coloured_on_request(proxied: Path) -> None:
    plain = seks("audit", "tail").stdout
    coloured = seks("audit", "tail", "--color").stdout
    forced_off = seks("audit", "tail", "--no-color").stdout

    assert ANSI not in plain and ANSI not in forced_off
    assert ANSI in coloured
    denied = next(line for line in coloured.splitlines() if "request.denied" in line)
    assert "\x1b[31" in denied  # refusals in red
    assert "request.denied decision=deny" in plain


# -- verify, export, archive -----------------------------------------------------------------


def test_verify_passes_then_names_the_first_bad_row(proxied: Path) -> None:
    ok = seks("audit", "verify")
    assert ok.stdout.startswith("OK the audit trail: 9 rows (ids 1-9)")

    with closing(sqlite3.connect(proxied / "vault.db", isolation_level=None)) as conn:
        conn.execute("DROP TRIGGER audit_no_update")
        conn.execute("UPDATE audit SET decision = 'allow' WHERE id = 7")
    bad = seks("audit", "verify", code=1)

    one_line_error(bad, "does not verify", "first bad row 7")
    assert "BAD the audit trail: row 7:" in bad.stdout
    as_json = json.loads(seks("audit", "verify", "--json", code=1).stdout)
    assert as_json["the audit trail"]["first_bad_id"] == 7


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_round_trip_and_a_tampered_copy_fails(
    proxied: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"audit.{fmt}"

    done = seks("audit", "export", "--format", fmt, "--out", str(out))
    checked = seks("audit", "verify", "--file", str(out))

    assert "exported 9 rows (ids 1-9)" in done.stderr
    assert checked.stdout.startswith(f"OK {out}: 9 rows (ids 1-9)")
    text = out.read_text()
    out.write_text(text.replace("request.denied", "request.injected", 1))
    one_line_error(seks("audit", "verify", "--file", str(out), code=1), "does not verify")


def test_export_to_stdout_with_a_window(ordered: list[int]) -> None:
    lines = seks("audit", "export", "--since", at(ordered[2]), "--until", at(ordered[5])).stdout

    records = [json.loads(line) for line in lines.splitlines()]
    assert [r["id"] for r in records] == [3, 4, 5, None]
    assert records[-1]["event"] == "audit.export"


def test_export_is_contiguous_even_when_times_are_not(proxied: Path) -> None:
    """Rows committed by two processes can be slightly out of time order: an export takes every
    row between the first in the window and the last, so the chain stays checkable."""
    records = [
        json.loads(line) for line in seks("audit", "export", "--since", "90s").stdout.splitlines()
    ]

    assert [r["id"] for r in records[:-1]] == list(range(1, 10))


def test_verify_file_needs_only_the_master_key(proxied: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    seks("audit", "export", "--out", str(out))
    (proxied / "vault.db").rename(tmp_path / "elsewhere.db")

    assert seks("audit", "verify", "--file", str(out)).stdout.startswith("OK")


def test_export_and_archive_refuse_to_replace_a_file(ordered: list[int], tmp_path: Path) -> None:
    taken = tmp_path / "taken.jsonl"
    taken.write_text("keep me")

    one_line_error(seks("audit", "export", "--out", str(taken), code=1), "already exists")
    one_line_error(
        seks("audit", "archive", "--before", "2099-01-01", "--out", str(taken), code=1),
        "already exists",
    )
    assert taken.read_text() == "keep me"


def test_verify_of_a_missing_or_foreign_file_is_one_line(proxied: Path, tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text('{"id": 1}\n[1]\n')

    one_line_error(
        seks("audit", "verify", "--file", str(tmp_path / "nope"), code=1), "no such file"
    )
    one_line_error(
        seks("audit", "verify", "--file", str(tmp_path / "x.jsonl"), code=1), "not a JSON object"
    )


def test_archive_then_verify_the_trail_and_the_archive(ordered: list[int], tmp_path: Path) -> None:
    out = tmp_path / "old.jsonl"

    done = seks("audit", "archive", "--before", at(ordered[5]), "--out", str(out))

    assert done.stdout.startswith("archived 5 rows (ids 1-5)") and "sha256" in done.stdout
    assert [r["id"] for r in json_lines(seks("audit", "tail", "--json"))] == [6, 7, 8, 9]
    assert seks("audit", "verify").stdout.startswith("OK the audit trail")
    both = seks("audit", "verify", "--archive", str(out)).stdout
    assert f"OK {out}" in both
    nothing = seks("audit", "archive", "--before", "2020-01-01", "--out", str(tmp_path / "n.jsonl"))
    assert nothing.stdout.startswith("nothing to archive")
    assert not (tmp_path / "n.jsonl").exists()
    out.write_text(out.read_text().replace('"bot"', '"tob"'))
    one_line_error(seks("audit", "verify", "--archive", str(out), code=1), str(out))


def test_stats_count_per_agent_provider_and_decision(ordered: list[int]) -> None:
    text = seks("audit", "stats").stdout
    counts = json.loads(seks("audit", "stats", "--json", "--since", at(ordered[2])).stdout)

    assert text.startswith("8 rows")
    assert "by agent:" in text and "by decision:" in text
    assert counts["rows"] == 6
    assert counts["agent"] == {"bot": 2, "x": 2, "other": 1, "third": 1}
    assert counts["decision"] == {"-": 3, "deny": 2, "allow": 1}
    assert counts["provider"] == {"-": 2, "github": 2, "openai": 2}


# -- hash ------------------------------------------------------------------------------------


def test_hash_reads_a_token_from_stdin_and_prints_what_the_audit_stores(home: Path) -> None:
    token = mint("openai")

    printed = seks("audit", "hash", input=token + "\n").stdout.strip()

    keys = AuditKeys(Home(home).master_key().derive("audit"))
    assert printed == keys.search_hash(token)
    assert token not in printed


def test_hash_refuses_a_token_as_an_argument(home: Path) -> None:
    token = mint("openai")

    result = seks("audit", "hash", token, code=1)

    one_line_error(result, "stdin")
    assert token not in result.output


def test_hash_takes_a_query_string_as_an_argument_and_refuses_nothing(home: Path) -> None:
    keys = AuditKeys(Home(home).master_key().derive("audit"))

    assert seks("audit", "hash", "limit=5&order=asc").stdout.strip() == keys.search_hash(
        "limit=5&order=asc"
    )
    one_line_error(seks("audit", "hash", input="", code=1), "empty")


def test_a_leaked_token_leads_by_its_hash_to_the_row_that_issued_it(home: Path) -> None:
    seks("secret", "add", "k", "--provider", "openai", input="sk-canary-" + secrets.token_hex(8))
    seks("agent", "create", "bot")
    token = seks("token", "issue", "--agent", "bot", "--provider", "openai").stdout.strip()

    wanted = seks("audit", "hash", input=token).stdout.strip()
    rows = json_lines(seks("audit", "tail", "--json", "-n", "1000"))

    (issued,) = [r for r in rows if r["token_hash"] == wanted]
    assert (issued["event"], issued["agent"]) == ("token.issued", "bot")
    assert token not in json.dumps(rows)
