"""The `seks` CLI as a person at a terminal (or a script) sees it.

Every run goes through :func:`seks` (CliRunner) or :func:`seks_binary` (the installed `seks`
script, for `exec`, whose child writes to the real stdout). Both record the output and check it
against every canary secret stored so far in this module: no command may ever print one.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from seks.certs import ca_bundle_path, ca_cert_path
from seks.cli import cli
from seks.errors import TokenRevoked
from seks.home import Home
from seks.store import Vault

SEKS_BIN = Path(sys.executable).parent / "seks"
TOKEN_RE = re.compile(r"seks_(openai|anthropic|github)_[0-9A-Za-z]{38}")
DURATION_FORMS = "30s, 15m, 8h or 7d"

_CANARIES: list[str] = []  # every secret value stored by a test in this module
_OUTPUTS: list[str] = []  # everything any command printed


def _record(text: str) -> None:
    _OUTPUTS.append(text)
    for canary in _CANARIES:
        assert canary not in text, "a command printed a stored secret value"


def new_canary() -> str:
    value = "sk-canary-" + secrets.token_hex(16)
    _CANARIES.append(value)
    return value


def seks(*args: str, input: str | None = None, code: int = 0) -> Result:
    """Run `seks ARGS` in-process; an unexpected exception propagates with its traceback."""
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    _record(result.output)
    assert result.exit_code == code, result.output
    return result


def seks_binary(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the installed `seks` script, so a child process's output is captured too."""
    run = subprocess.run(
        [str(SEKS_BIN), *args], capture_output=True, text=True, timeout=60, check=False
    )
    _record(run.stdout + run.stderr)
    assert run.returncode == code, run.stdout + run.stderr
    return run


def one_line_error(result: Result, *needles: str) -> str:
    """A handled failure: exactly one `Error: …` line naming the problem, no traceback."""
    text = result.output.strip()
    assert "\n" not in text, text
    assert text.startswith("Error: "), text
    for needle in needles:
        assert needle in text
    return text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("SEKS_HOME", str(root))
    monkeypatch.delenv("SEKS_MASTER_KEY", raising=False)
    return root


@pytest.fixture
def initialised(home: Path) -> Path:
    seks("init")
    return home


@pytest.fixture
def bot(initialised: Path) -> str:
    """An initialised home with an agent `bot` and an OpenAI secret; returns the secret value."""
    value = add_secret("openai-main", "openai")
    seks("agent", "create", "bot")
    return value


def add_secret(name: str, provider: str) -> str:
    value = new_canary()
    seks("secret", "add", name, "--provider", provider, input=value + "\n")
    return value


def issue(agent: str = "bot", provider: str = "openai", *extra: str) -> str:
    return seks("token", "issue", "--agent", agent, "--provider", provider, *extra).stdout.strip()


def token_list(*extra: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(seks("token", "list", "--json", *extra).stdout)
    return items


@contextmanager
def open_vault(home: Path) -> Iterator[Vault]:
    h = Home(home)
    vault = Vault.open(h.vault_path, h.master_key())
    try:
        yield vault
    finally:
        vault.close()


def exports(text: str) -> dict[str, str]:
    """Parse `export NAME=VALUE` lines the way a POSIX shell would."""
    env = {}
    for line in text.splitlines():
        words = shlex.split(line)
        assert len(words) == 2, line
        assert words[0] == "export", line
        name, sep, value = words[1].partition("=")
        assert sep, line
        env[name] = value
    return env


# -- init -----------------------------------------------------------------------------------


def test_init_creates_an_owner_only_home_with_key_vault_and_ca(home: Path) -> None:
    out = seks("init").output

    assert mode(home) == 0o700
    assert mode(home / "master.key") == 0o600
    assert mode(home / "vault.db") == 0o600
    assert mode(home / "ca") == 0o700
    # mitmproxy's CA files holding the private key: the PEM it loads and the PKCS#12 twin.
    assert b"PRIVATE KEY" in (home / "ca" / "mitmproxy-ca.pem").read_bytes()
    assert mode(home / "ca" / "mitmproxy-ca.pem") == 0o600
    assert mode(home / "ca" / "mitmproxy-ca.p12") == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", (home / "master.key").read_text())
    for path in (home / "master.key", home / "vault.db", ca_cert_path(home / "ca")):
        assert str(path) in out


def test_init_twice_keeps_the_key_the_ca_and_the_vault(home: Path) -> None:
    seks("init")
    key = (home / "master.key").read_bytes()
    ca_key = (home / "ca" / "mitmproxy-ca.pem").read_bytes()
    add_secret("openai-main", "openai")

    out = seks("init").output

    assert "already there" in out
    assert (home / "master.key").read_bytes() == key
    assert (home / "ca" / "mitmproxy-ca.pem").read_bytes() == ca_key
    assert "openai-main" in seks("secret", "list").output


def test_init_with_master_key_in_env_writes_no_key_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEKS_MASTER_KEY", secrets.token_hex(32))

    seks("init")
    add_secret("openai-main", "openai")

    assert not (home / "master.key").exists()
    assert "openai-main" in seks("secret", "list").output
    # Without the variable there is no key at all, and the error says where one comes from.
    monkeypatch.delenv("SEKS_MASTER_KEY")
    one_line_error(seks("secret", "list", code=1), "SEKS_MASTER_KEY", "seks init")


@pytest.mark.parametrize(
    "value",
    ["abc", secrets.token_hex(31), secrets.token_hex(32) + "0", "zz" * 32, "not a key"],
    ids=["short", "31-bytes", "odd-length", "not-hex", "words"],
)
def test_init_with_a_malformed_env_key_fails_in_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SEKS_MASTER_KEY", value)

    one_line_error(seks("init", code=1), "SEKS_MASTER_KEY")

    assert not (home / "vault.db").exists()
    assert not (home / "master.key").exists()


def test_a_wrong_master_key_is_one_clear_line(
    initialised: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEKS_MASTER_KEY", secrets.token_hex(32))

    for args in (("secret", "list"), ("agent", "create", "bot"), ("init",)):
        text = one_line_error(seks(*args, code=1), "master key does not open this vault")
        assert "Traceback" not in text


def test_init_with_an_existing_vault_but_no_key_file_writes_no_new_key(initialised: Path) -> None:
    (initialised / "master.key").rename(initialised.parent / "master.key.backup")

    result = seks("init", code=1)

    assert "Error: " in result.output
    assert not (initialised / "master.key").exists()


def test_commands_before_init_say_to_run_init(home: Path) -> None:
    one_line_error(seks("secret", "list", code=1), "seks init")
    one_line_error(seks("ca", "path", code=1), "seks init")
    one_line_error(seks("ca", "export", code=1), "seks init")


# -- secrets --------------------------------------------------------------------------------


def test_secret_from_stdin_is_stored_and_listed_without_its_value(initialised: Path) -> None:
    value = new_canary()

    out = seks("secret", "add", "openai-main", "--provider", "openai", input=value + "\n").output

    assert "openai-main" in out
    listed = seks("secret", "list").output
    assert re.search(r"^openai-main\topenai\tv1\t", listed, re.MULTILINE), listed
    (item,) = json.loads(seks("secret", "list", "--json").stdout)
    assert (item["name"], item["provider"], item["version"]) == ("openai-main", "openai", 1)
    assert item["created_at"] > 0
    assert value not in json.dumps(item)
    with open_vault(initialised) as vault:  # the trailing newline of a pipe is not part of it
        assert vault.reveal_secret("openai-main").reveal() == value


@pytest.mark.parametrize("stdin", ["", "\n", "\r\n"], ids=["empty", "newline", "crlf"])
def test_adding_a_secret_with_nothing_on_stdin_is_refused(initialised: Path, stdin: str) -> None:
    one_line_error(
        seks("secret", "add", "k", "--provider", "openai", input=stdin, code=1), "no secret value"
    )
    assert json.loads(seks("secret", "list", "--json").stdout) == []


def test_an_unknown_provider_is_a_usage_error_naming_the_choices(initialised: Path) -> None:
    result = seks("secret", "add", "k", "--provider", "opneai", input=new_canary(), code=2)

    for choice in ("anthropic", "github", "openai"):
        assert choice in result.output
    assert json.loads(seks("secret", "list", "--json").stdout) == []


def test_adding_an_existing_secret_points_to_rotate_and_keeps_the_value(
    bot: str, home: Path
) -> None:
    result = seks("secret", "add", "openai-main", "-p", "openai", input=new_canary(), code=1)

    one_line_error(result, "seks secret rotate openai-main")
    with open_vault(home) as vault:
        assert vault.reveal_secret("openai-main").reveal() == bot


def test_rotated_secret_keeps_tokens_working_with_the_new_value(bot: str, home: Path) -> None:
    token = issue()
    new_value = new_canary()

    out = seks("secret", "rotate", "openai-main", input=new_value + "\n").output

    assert "version 2" in out
    (item,) = json.loads(seks("secret", "list", "--json").stdout)
    assert item["version"] == 2
    assert re.search(r"^openai-main\topenai\tv2\t", seks("secret", "list").output, re.MULTILINE)
    with open_vault(home) as vault:
        info = vault.resolve_token(token)
        assert vault.reveal_secret(info.secret_name).reveal() == new_value
    assert token_list()[0]["state"] == "active"


def test_rotating_an_unknown_secret_fails_in_one_line(initialised: Path) -> None:
    one_line_error(seks("secret", "rotate", "nope", input=new_canary(), code=1), "nope")


def test_removing_a_secret_revokes_its_tokens(bot: str, home: Path) -> None:
    tokens = [issue(), issue()]

    out = seks("secret", "rm", "openai-main").output

    assert "revoked 2 token(s)" in out
    assert json.loads(seks("secret", "list", "--json").stdout) == []
    assert [t["state"] for t in token_list()] == ["revoked", "revoked"]
    with open_vault(home) as vault:
        for token in tokens:
            with pytest.raises(TokenRevoked):
                vault.resolve_token(token)
    one_line_error(seks("secret", "rm", "openai-main", code=1), "openai-main")


# -- agents ---------------------------------------------------------------------------------


def test_agent_create_list_and_remove(bot: str, home: Path) -> None:
    seks("agent", "create", "helper")
    assert [line.split("\t")[0] for line in seks("agent", "list").output.splitlines()] == [
        "bot",
        "helper",
    ]
    assert [a["name"] for a in json.loads(seks("agent", "list", "--json").stdout)] == [
        "bot",
        "helper",
    ]
    token = issue()
    issue()

    out = seks("agent", "rm", "bot").output

    assert "revoked 2 token(s)" in out
    assert [a["name"] for a in json.loads(seks("agent", "list", "--json").stdout)] == ["helper"]
    assert {t["state"] for t in token_list()} == {"revoked"}
    with open_vault(home) as vault, pytest.raises(TokenRevoked):
        vault.resolve_token(token)
    assert "revoked 0 token(s)" in seks("agent", "rm", "helper").output


def test_agent_errors_are_one_line(initialised: Path) -> None:
    seks("agent", "create", "bot")
    one_line_error(seks("agent", "create", "bot", code=1), "already exists")
    one_line_error(seks("agent", "create", "a b", code=1), "not valid")
    one_line_error(seks("agent", "rm", "ghost", code=1), "ghost")


# -- tokens ---------------------------------------------------------------------------------


def test_token_issue_prints_only_the_token(bot: str, home: Path) -> None:
    result = seks("token", "issue", "--agent", "bot", "--provider", "openai")

    assert re.fullmatch(r"seks_openai_[0-9A-Za-z]{38}\n", result.stdout), result.stdout
    assert result.output == result.stdout  # nothing on stderr either
    with open_vault(home) as vault:
        info = vault.resolve_token(result.stdout.strip())
    assert (info.agent, info.provider, info.secret_name) == ("bot", "openai", "openai-main")


def test_token_list_shows_ids_and_states_never_tokens(bot: str) -> None:
    token = issue()

    text = seks("token", "list").output
    as_json = seks("token", "list", "--json").output

    assert token not in text
    assert token not in as_json
    assert TOKEN_RE.search(text + as_json) is None
    (item,) = json.loads(as_json)
    assert item["state"] == "active"
    assert item["agent"] == "bot"
    assert item["provider"] == "openai"
    assert item["id"] in text
    assert token_list("--agent", "someone-else") == []


def test_token_revoke_by_id(bot: str, home: Path) -> None:
    token = issue()
    (item,) = token_list()

    seks("token", "revoke", item["id"])

    assert token_list()[0]["state"] == "revoked"
    with open_vault(home) as vault, pytest.raises(TokenRevoked):
        vault.resolve_token(token)
    one_line_error(seks("token", "revoke", item["id"], code=1), "already revoked")


def test_revoking_an_unknown_token_id_fails_in_one_line(bot: str) -> None:
    one_line_error(seks("token", "revoke", "tok_doesnotexist", code=1), "tok_doesnotexist")


@pytest.mark.parametrize(
    ("ttl", "seconds"), [("30s", 30), ("15m", 900), ("8h", 28800), ("7d", 604800)]
)
def test_token_ttl_accepts_the_documented_forms(bot: str, ttl: str, seconds: int) -> None:
    issue("bot", "openai", "--ttl", ttl)

    (item,) = token_list()
    assert item["expires_at"] - item["created_at"] == pytest.approx(seconds)
    assert item["state"] == "active"


@pytest.mark.parametrize("ttl", ["0s", "8x", "-1h", "h", "", "1.5h", "8 h"])
def test_token_ttl_rejects_other_forms_naming_the_expected_ones(bot: str, ttl: str) -> None:
    result = seks("token", "issue", "--agent", "bot", "--provider", "openai", "--ttl", ttl, code=2)

    assert DURATION_FORMS in result.output
    assert TOKEN_RE.search(result.output) is None
    assert token_list() == []


def test_token_issue_errors_name_the_fix(bot: str) -> None:
    one_line_error(
        seks("token", "issue", "--agent", "ghost", "--provider", "openai", code=1),
        "seks agent create ghost",
    )
    one_line_error(
        seks("token", "issue", "--agent", "bot", "--provider", "github", code=1),
        "seks secret add",
    )
    assert token_list() == []


# -- env ------------------------------------------------------------------------------------


def test_env_prints_proxy_ca_and_a_token_for_each_provider_with_a_secret(
    bot: str, home: Path
) -> None:
    env = exports(seks("env", "--agent", "bot").stdout)

    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert env[name] == "http://127.0.0.1:8080"
    assert {"localhost", "127.0.0.1"} <= set(env["NO_PROXY"].split(","))
    bundle = ca_bundle_path(home / "ca")
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"):
        assert env[name] == str(bundle)
    assert env["AWS_CA_BUNDLE"] == str(bundle)
    assert env["NODE_EXTRA_CA_CERTS"] == str(ca_cert_path(home / "ca"))
    assert bundle.read_bytes().startswith(ca_cert_path(home / "ca").read_bytes())
    # A token only for the provider that has a secret, and one that the vault resolves.
    assert "ANTHROPIC_API_KEY" not in env
    assert "GITHUB_TOKEN" not in env
    assert re.fullmatch(r"seks_openai_[0-9A-Za-z]{38}", env["OPENAI_API_KEY"])
    with open_vault(home) as vault:
        info = vault.resolve_token(env["OPENAI_API_KEY"])
    assert info.agent == "bot"
    assert info.expires_at is not None
    assert info.expires_at - info.created_at == pytest.approx(8 * 3600)


def test_env_gives_each_provider_its_sdk_variable(bot: str, home: Path) -> None:
    add_secret("claude", "anthropic")
    add_secret("gh", "github")

    env = exports(seks("env", "--agent", "bot", "--ttl", "15m").stdout)

    with open_vault(home) as vault:
        for var, provider in [
            ("OPENAI_API_KEY", "openai"),
            ("ANTHROPIC_API_KEY", "anthropic"),
            ("GITHUB_TOKEN", "github"),
        ]:
            assert env[var].startswith(f"seks_{provider}_")
            info = vault.resolve_token(env[var])
            assert info.provider == provider
            assert info.expires_at is not None
            assert info.expires_at - info.created_at == pytest.approx(900)


def test_env_uses_the_proxy_and_ca_file_given(bot: str) -> None:
    env = exports(
        seks(
            "env",
            "--agent",
            "bot",
            "--proxy",
            "http://seks.internal:3128",
            "--ca-file",
            "/etc/my certs/seks ca.pem",
        ).stdout
    )

    assert env["HTTPS_PROXY"] == env["http_proxy"] == "http://seks.internal:3128"
    assert env["SSL_CERT_FILE"] == env["NODE_EXTRA_CA_CERTS"] == "/etc/my certs/seks ca.pem"


def test_env_takes_the_proxy_from_the_configs_listen(bot: str, home: Path) -> None:
    (home / "config.yaml").write_text("listen: 127.0.0.1:18123\n")

    env = exports(seks("env", "--agent", "bot").stdout)

    assert env["HTTPS_PROXY"] == "http://127.0.0.1:18123"


def test_env_brackets_an_ipv6_listen_address(bot: str, home: Path) -> None:
    (home / "config.yaml").write_text('listen: "[::1]:18123"\n')

    env = exports(seks("env", "--agent", "bot").stdout)

    assert env["HTTPS_PROXY"] == "http://[::1]:18123"


def test_env_for_an_unknown_agent_fails_in_one_line(bot: str) -> None:
    one_line_error(seks("env", "--agent", "ghost", code=1), "ghost")


@pytest.mark.parametrize("ttl", ["0s", "8x"])
def test_env_rejects_a_bad_ttl(bot: str, ttl: str) -> None:
    assert DURATION_FORMS in seks("env", "--agent", "bot", "--ttl", ttl, code=2).output
    assert token_list() == []


# -- exec -----------------------------------------------------------------------------------

CHILD = """
import os, sys
print("key-prefix", os.environ["OPENAI_API_KEY"][:12])
print("proxy", os.environ["HTTPS_PROXY"])
print("ca", os.environ["SSL_CERT_FILE"])
print("master-key-in-env", "SEKS_MASTER_KEY" in os.environ)
with open(sys.argv[1], "w") as f:
    f.write(os.environ["OPENAI_API_KEY"])
sys.exit(int(sys.argv[2]))
"""


def test_exec_runs_the_command_with_the_agent_env_and_its_exit_code(
    bot: str, home: Path, tmp_path: Path
) -> None:
    held = tmp_path / "held-token"

    run = seks_binary(
        "exec", "--agent", "bot", "--", sys.executable, "-c", CHILD, str(held), "7", code=7
    )

    assert run.stdout.splitlines()[:3] == [
        "key-prefix seks_openai_",
        "proxy http://127.0.0.1:8080",
        f"ca {ca_bundle_path(home / 'ca')}",
    ]
    token = held.read_text()
    assert TOKEN_RE.fullmatch(token)
    # The session's token is revoked once the command has ended.
    assert [t["state"] for t in token_list()] == ["revoked"]
    with open_vault(home) as vault, pytest.raises(TokenRevoked):
        vault.resolve_token(token)


def test_exec_uses_the_proxy_given_and_exits_zero_with_the_command(
    bot: str, tmp_path: Path
) -> None:
    run = seks_binary(
        "exec",
        "--agent",
        "bot",
        "--proxy",
        "http://127.0.0.1:18124",
        "--",
        sys.executable,
        "-c",
        CHILD,
        str(tmp_path / "held"),
        "0",
    )

    assert "proxy http://127.0.0.1:18124" in run.stdout.splitlines()


def test_exec_reports_a_command_killed_by_a_signal_as_128_plus_signal(bot: str) -> None:
    kill_self = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"

    seks_binary(
        "exec", "--agent", "bot", "--", sys.executable, "-c", kill_self, code=128 + signal.SIGTERM
    )

    assert [t["state"] for t in token_list()] == ["revoked"]


def test_exec_of_a_missing_command_is_a_clear_error_and_revokes_the_tokens(bot: str) -> None:
    run = seks_binary("exec", "--agent", "bot", "--", "no-such-command-seks-test", code=1)

    assert run.stderr.strip() == "Error: command not found: no-such-command-seks-test"
    assert "Traceback" not in run.stdout + run.stderr
    assert [t["state"] for t in token_list()] == ["revoked"]


def test_exec_without_a_command_is_a_usage_error(bot: str) -> None:
    seks("exec", "--agent", "bot", code=2)
    assert token_list() == []


def test_exec_does_not_hand_the_master_key_to_the_agent(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEKS_MASTER_KEY", secrets.token_hex(32))
    seks("init")
    add_secret("openai-main", "openai")
    seks("agent", "create", "bot")

    run = seks_binary(
        "exec", "--agent", "bot", "--", sys.executable, "-c", CHILD, str(tmp_path / "h"), "0"
    )

    assert "master-key-in-env False" in run.stdout.splitlines()


@pytest.mark.parametrize("command", ["env", "exec"])
def test_a_failed_env_or_exec_leaves_no_active_tokens(bot: str, command: str) -> None:
    add_secret("claude", "anthropic")  # issued first: providers go in name order
    add_secret("openai-second", "openai")
    args = ["--", sys.executable, "-c", "pass"] if command == "exec" else []

    result = seks(command, "--agent", "bot", *args, code=1)

    one_line_error(result, "several secrets")
    assert [t for t in token_list() if t["state"] == "active"] == []


# -- audit ----------------------------------------------------------------------------------


def test_audit_tail_json_shows_changes_without_secret_values(bot: str) -> None:
    issue()
    seks("agent", "create", "other")

    recent = [
        json.loads(line) for line in seks("audit", "tail", "-n", "5", "--json").stdout.splitlines()
    ]
    everything = [
        json.loads(line)
        for line in seks("audit", "tail", "-n", "100", "--json").stdout.splitlines()
    ]

    assert len(recent) == 5
    assert recent == everything[-5:]
    assert recent[-1]["event"] == "agent.created"
    assert recent[-1]["agent"] == "other"
    events = [row["event"] for row in everything]
    for event in ("secret.added", "agent.created", "token.issued"):
        assert event in events
    assert [row["id"] for row in everything] == sorted(row["id"] for row in everything)
    added = next(row for row in everything if row["event"] == "secret.added")
    assert (added["secret_name"], added["provider"]) == ("openai-main", "openai")


def test_audit_tail_filters_by_agent_and_reads_as_text(bot: str) -> None:
    issue()
    seks("agent", "create", "other")

    rows = [
        json.loads(line)
        for line in seks("audit", "tail", "--agent", "bot", "--json").stdout.splitlines()
    ]
    text = seks("audit", "tail", "-n", "3").output.splitlines()

    assert {row["agent"] for row in rows} == {"bot"}
    assert [row["event"] for row in rows] == ["agent.created", "token.issued"]
    assert len(text) == 3
    assert "agent.created" in text[-1]
    assert "agent=other" in text[-1]


# -- ca -------------------------------------------------------------------------------------


def test_ca_path_prints_existing_pem_files(initialised: Path) -> None:
    cert = Path(seks("ca", "path").stdout.strip())
    bundle = Path(seks("ca", "path", "--bundle").stdout.strip())

    assert cert.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in cert.read_text()
    assert bundle.read_text().startswith(cert.read_text())
    assert bundle.read_text().count("BEGIN CERTIFICATE") > 10


def test_ca_export_writes_the_certificate_never_the_key(initialised: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported" / "seks-ca.crt"
    out.parent.mkdir()
    cert = Path(seks("ca", "path").stdout.strip()).read_text()

    seks("ca", "export", "--out", str(out))
    to_stdout = seks("ca", "export").stdout

    assert out.read_text() == cert == to_stdout
    assert "PRIVATE KEY" not in out.read_text()
    assert "BEGIN CERTIFICATE" in out.read_text()


# -- help -----------------------------------------------------------------------------------


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


LEAVES = [path for path, c in _commands(cli) if not isinstance(c, click.Group)]
GROUPS = [path for path, c in _commands(cli) if isinstance(c, click.Group)]


def test_the_contract_commands_exist() -> None:
    for path in [
        ("init",),
        ("secret", "add"),
        ("secret", "list"),
        ("secret", "rm"),
        ("secret", "rotate"),
        ("agent", "create"),
        ("agent", "list"),
        ("agent", "rm"),
        ("token", "issue"),
        ("token", "list"),
        ("token", "revoke"),
        ("env",),
        ("exec",),
        ("proxy",),
        ("audit", "tail"),
        ("ca", "path"),
        ("ca", "export"),
    ]:
        assert path in LEAVES


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = seks(*path, "--help")

    assert "Example" in result.output
    assert f"seks {' '.join(path)}" in result.output


@pytest.mark.parametrize("path", [(), *GROUPS], ids=lambda p: " ".join(p) or "seks")
def test_every_group_has_help_listing_its_commands(path: tuple[str, ...]) -> None:
    result = seks(*path, "--help")

    assert "Commands:" in result.output


@pytest.mark.parametrize("path", GROUPS, ids=" ".join)
def test_every_group_help_has_an_example(path: tuple[str, ...]) -> None:
    assert "Example" in seks(*path, "--help").output


# -- leaks ----------------------------------------------------------------------------------


def test_no_output_in_this_module_contains_a_stored_secret() -> None:
    """Runs last: every output recorded by every test above, against every canary."""
    if not _CANARIES:
        pytest.skip("run with the rest of the module")
    for text in _OUTPUTS:
        for canary in _CANARIES:
            assert canary not in text


# -- providers --------------------------------------------------------------------------------

ACME_CONFIG = """providers:
  acme:
    hosts: [api.acme.example]
    place: header
    header: X-Acme-Key
    env: ACME_KEY
"""


def test_providers_list_shows_built_in_and_custom_ones(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(ACME_CONFIG)
    out = seks("providers", "list").output
    assert "telegram" in out and "the path segment /bot<key>" in out
    assert re.search(r"^acme +custom +ACME_KEY +api\.acme\.example +x-acme-key: <key>$", out, re.M)
    listed = json.loads(seks("providers", "list", "--json").output)
    acme = next(p for p in listed if p["name"] == "acme")
    assert acme == {
        "name": "acme",
        "hosts": ["api.acme.example"],
        "places": [
            {
                "kind": "header",
                "name": "x-acme-key",
                "scheme": None,
                "describe": "x-acme-key: <key>",
            }
        ],
        "paths": [],
        "env": "ACME_KEY",
        "custom": True,
    }
    assert {p["name"] for p in listed if not p["custom"]} >= {"openai", "gemini", "discord"}


def test_a_custom_provider_takes_secrets_tokens_and_gets_its_env_variable(home: Path) -> None:
    seks("init")
    (home / "config.yaml").write_text(ACME_CONFIG)
    seks("secret", "add", "acme-main", "--provider", "acme", input=new_canary() + "\n")
    seks("agent", "create", "bot")
    token = seks("token", "issue", "--agent", "bot", "--provider", "ACME").output.strip()
    assert token.startswith("seks_acme_")
    exports = seks("env", "--agent", "bot").output
    assert re.search(r"^export ACME_KEY=seks_acme_\w+$", exports, re.M)


def test_an_unknown_provider_is_a_usage_error_listing_the_known_ones(home: Path) -> None:
    seks("init")
    out = seks("secret", "add", "x", "--provider", "acme", input="v\n", code=2).output
    assert "'acme' is not a provider: one of anthropic, aws, brave" in out
