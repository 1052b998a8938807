"""The CLI for tenants, token limits, approvals and agent proxy passwords, as a person at a
terminal sees it. Helpers and fixtures (a fresh SEKS home per test, output recorded and checked
for stored secrets) come from test_cli."""

# The fixtures come from test_cli, imported by name, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from test_cli import (  # noqa: F401 (fixtures, found by pytest by name)
    bot,
    exports,
    home,
    initialised,
    issue,
    new_canary,
    one_line_error,
    open_vault,
    seks,
    seks_binary,
    token_list,
)

from seks.errors import ProxyAuthFailed
from seks.store import approvals
from seks.store.approvals import Approval
from seks.store.proxy_auth import PASSWORD_RE, identify


def store(name: str, provider: str, *extra: str) -> None:
    """`seks secret add` with options; the value is a fresh canary, as in test_cli."""
    value = new_canary()
    seks("secret", "add", name, "--provider", provider, *extra, input=value + "\n")


# -- tenants -------------------------------------------------------------------------------------


def test_tenant_create_list_and_rm(initialised: Path) -> None:
    seks("tenant", "create", "acme")
    store("acme-key", "openai", "--tenant", "acme")
    seks("agent", "create", "bot", "--tenant", "acme")

    listed = json.loads(seks("tenant", "list", "--json").stdout)
    assert [(t["name"], t["secrets"], t["agents"]) for t in listed] == [
        ("acme", 1, 1),
        ("default", 0, 0),
    ]
    assert "acme-key" not in seks("tenant", "list").stdout  # counts, never names

    one_line_error(seks("tenant", "rm", "acme", code=1), "1 secret(s) and 1 agent(s)", "--force")
    out = seks("tenant", "rm", "acme", "--force").stdout
    assert "1 secret(s), 1 agent(s)" in out
    assert [t["name"] for t in json.loads(seks("tenant", "list", "--json").stdout)] == ["default"]


def test_tenant_errors_are_one_line(initialised: Path) -> None:
    seks("tenant", "create", "acme")
    one_line_error(seks("tenant", "create", "acme", code=1), "already exists")
    one_line_error(seks("tenant", "create", "a b", code=1), "not valid")
    one_line_error(seks("tenant", "rm", "default", code=1), "cannot be removed")
    one_line_error(seks("tenant", "rm", "ghost", code=1), "ghost")
    for listing in (("secret", "list"), ("agent", "list"), ("token", "list"), ("approvals",)):
        one_line_error(seks(*listing, "--tenant", "ghost", code=1), "no tenant 'ghost'")


def test_listings_show_only_the_tenant_asked_for(initialised: Path) -> None:
    seks("tenant", "create", "acme")
    store("default-key", "openai")
    store("acme-key", "openai", "--tenant", "acme")
    seks("agent", "create", "default-bot")
    seks("agent", "create", "acme-bot", "--tenant", "acme")
    issue("acme-bot", "openai", "--tenant", "acme")

    default_view = "".join(
        seks(*cmd).stdout for cmd in (("secret", "list"), ("agent", "list"), ("token", "list"))
    )
    acme_view = "".join(
        seks(*cmd, "--tenant", "acme").stdout
        for cmd in (("secret", "list"), ("agent", "list"), ("token", "list"))
    )

    assert "acme" not in default_view
    assert "default-key" in default_view and "default-bot" in default_view
    assert "default" not in acme_view
    assert "acme-key" in acme_view and "acme-bot" in acme_view
    assert token_list() == []
    assert [t["tenant"] for t in token_list("--tenant", "acme")] == ["acme"]


def test_a_token_cannot_be_issued_for_another_tenants_secret(initialised: Path) -> None:
    seks("tenant", "create", "acme")
    store("default-key", "openai")
    seks("agent", "create", "bot", "--tenant", "acme")

    result = seks(
        "token", "issue", "--agent", "bot", "-p", "openai", "--secret", "default-key",
        "--tenant", "acme", code=1,
    )  # fmt: skip

    one_line_error(result, "no secret 'default-key' in tenant 'acme'")
    one_line_error(seks("token", "issue", "--agent", "bot", "-p", "openai", code=1), "no agent")


# -- token limits -------------------------------------------------------------------------------


def test_limits_are_issued_and_listed_in_text_and_json(bot: str) -> None:
    token = issue(
        "bot", "openai",
        "--max-uses", "3", "--allow-ip", "10.0.0.0/8", "--allow-ip", "127.0.0.1",
        "--allow", "post /v1/chat/*", "--allow", "GET /v1/models", "--rate", "30/min",
    )  # fmt: skip

    (item,) = token_list()
    assert (item["max_uses"], item["uses_left"], item["rate"]) == (3, 3, "30/min")
    assert item["allow_ips"] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert item["scopes"] == ["POST /v1/chat/*", "GET /v1/models"]
    text = seks("token", "list").stdout
    for shown in ("uses 3/3 left", "10.0.0.0/8", "POST /v1/chat/*", "rate 30/min"):
        assert shown in text
    assert token not in text


def test_single_use_is_max_uses_one(bot: str) -> None:
    issue("bot", "openai", "--single-use")
    issue("bot", "openai")
    assert [(t["max_uses"], t["uses_left"]) for t in token_list()] == [(1, 1), (None, None)]
    assert "no limits" in seks("token", "list").stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--allow-ip", "10.0.0.0/33"), "--allow-ip: '10.0.0.0/33' is not a network"),
        (("--allow-ip", "10.0.0.1/8"), "did you mean 10.0.0.0/8?"),
        (("--allow", "FETCH /x"), "--allow: 'FETCH /x': 'FETCH' is not an HTTP method"),
        (("--allow", "GET /v1/chat-*/**x"), "'**' must be a whole segment"),
        (("--rate", "0/min"), "--rate: '0/min': the number of requests must be 1 to"),
        (("--rate", "10/day"), "--rate: '10/day' is not a rate such as 60/min"),
        (("--max-uses", "0"), "--max-uses: 0 is not a number of uses"),
        (("--single-use", "--max-uses", "3"), "give one or the other"),
    ],
)
def test_bad_limit_values_are_one_clear_line_and_issue_nothing(
    bot: str, args: tuple[str, ...], says: str
) -> None:
    result = seks("token", "issue", "--agent", "bot", "--provider", "openai", *args, code=1)

    one_line_error(result, says)
    assert token_list() == []


def test_ttl_is_capped_by_max_token_ttl_from_the_config(bot: str, home: Path) -> None:
    (home / "config.yaml").write_text("max_token_ttl: 1h\n")

    one_line_error(
        seks("token", "issue", "--agent", "bot", "-p", "openai", "--ttl", "2h", code=1),
        "a ttl of 2h exceeds max_token_ttl (1h)",
    )
    issue("bot", "openai")  # no --ttl: the maximum
    env = exports(seks("env", "--agent", "bot").stdout)  # 8h by default, capped
    one_line_error(seks("env", "--agent", "bot", "--ttl", "8h", code=1), "max_token_ttl")

    lifetimes = [t["expires_at"] - t["created_at"] for t in token_list()]
    assert lifetimes == [pytest.approx(3600), pytest.approx(3600)]
    assert env["OPENAI_API_KEY"].startswith("seks_openai_")
    (home / "config.yaml").write_text("max_token_ttl: forever\n")
    one_line_error(
        seks("token", "issue", "--agent", "bot", "-p", "openai", code=1), "max_token_ttl"
    )


# -- approvals ----------------------------------------------------------------------------------


def test_secret_approval_is_set_at_add_and_changed_later(initialised: Path) -> None:
    store("prod-key", "openai", "--approval", "required")
    store("dev-key", "anthropic")

    assert "approval required" in seks("secret", "list").stdout
    seks("secret", "approval", "prod-key", "none")
    seks("secret", "approval", "dev-key", "required")

    listed = {s["name"]: s["approval"] for s in json.loads(seks("secret", "list", "--json").stdout)}
    assert listed == {"dev-key": "required", "prod-key": "none"}
    assert seks("secret", "approval", "dev-key", "maybe", code=2).exit_code == 2
    one_line_error(seks("secret", "approval", "ghost", "required", code=1), "ghost")


def _hold(home: Path, agent: str = "bot", *, path: str = "/v1/chat/completions") -> Approval:
    """A request as a proxy holds it, written as the proxy would."""
    now = time.time()
    approval = Approval(
        approvals.new_approval_id(), "default", agent, "tok_x", "openai", "openai-main",
        "POST", "api.openai.com", path, "127.0.0.1", "flow-1", now - 3, now + 300,
    )  # fmt: skip
    with open_vault(home) as vault:
        approvals.open_request(vault.db, approval)
    return approval


def test_approvals_lists_held_requests_and_approve_releases_one(bot: str, home: Path) -> None:
    seks("tenant", "create", "acme")
    assert json.loads(seks("approvals", "--json").stdout) == []
    held = _hold(home)

    (item,) = json.loads(seks("approvals", "--json").stdout)
    assert {k: item[k] for k in ("id", "agent", "provider", "method", "host", "path")} == {
        "id": held.id,
        "agent": "bot",
        "provider": "openai",
        "method": "POST",
        "host": "api.openai.com",
        "path": "/v1/chat/completions",
    }
    assert 3 <= item["age"] < 60
    assert held.id in seks("approvals").stdout
    assert json.loads(seks("approvals", "--json", "--tenant", "acme").stdout) == []

    out = seks("approve", held.id).stdout
    assert out.startswith(f"approved {held.id}: bot POST api.openai.com/v1/chat/completions")
    assert json.loads(seks("approvals", "--json").stdout) == []
    one_line_error(seks("approve", held.id, code=1), "is granted")


def test_approve_for_a_window_releases_that_agents_other_held_requests(
    bot: str, home: Path
) -> None:
    first, second = _hold(home), _hold(home, path="/v1/models")

    out = seks("approve", first.id, "--for", "30m").stdout

    assert "bot's requests to openai-main pass for 30m; released 1 more waiting" in out
    with open_vault(home) as vault:
        assert approvals.states(vault.db, [second.id]) == {second.id: "granted"}


def test_deny_and_the_errors_of_deciding(bot: str, home: Path) -> None:
    held = _hold(home)

    assert seks("deny", held.id).stdout.startswith(f"denied {held.id}")
    one_line_error(seks("deny", held.id, code=1), "is denied")
    one_line_error(seks("approve", "apr_nothere", code=1), "no approval 'apr_nothere'")
    seks("tenant", "create", "acme")
    one_line_error(seks("approve", _hold(home).id, "--tenant", "acme", code=1), "in tenant 'acme'")


# -- proxy passwords ----------------------------------------------------------------------------


def test_agent_create_with_proxy_auth_prints_the_password_once_alone(
    initialised: Path, home: Path
) -> None:
    result = seks("agent", "create", "guarded", "--proxy-auth")

    password = result.stdout.strip()
    assert PASSWORD_RE.fullmatch(password)
    assert result.stdout == password + "\n"
    assert "shown only now" in result.stderr
    (agent,) = json.loads(seks("agent", "list", "--json").stdout)
    assert agent["proxy_auth"] is True
    with open_vault(home) as vault:
        assert identify(vault.db, vault.proxy_auth_key, "guarded", password, time.time())

    new = seks("agent", "password", "guarded").stdout.strip()
    with open_vault(home) as vault:
        identify(vault.db, vault.proxy_auth_key, "guarded", new, time.time())
        with pytest.raises(ProxyAuthFailed):
            identify(vault.db, vault.proxy_auth_key, "guarded", password, time.time())


def test_env_puts_session_credentials_in_the_proxy_url(bot: str, home: Path) -> None:
    seks("agent", "create", "guarded", "--proxy-auth")

    env = exports(seks("env", "--agent", "guarded", "--proxy", "http://10.0.0.2:8080").stdout)
    plain = exports(seks("env", "--agent", "bot").stdout)

    user, _, rest = env["HTTPS_PROXY"].removeprefix("http://").partition(":")
    password, _, where = rest.partition("@")
    assert (user, where) == ("guarded", "10.0.0.2:8080")
    assert env["HTTP_PROXY"] == env["https_proxy"] == env["HTTPS_PROXY"]
    assert plain["HTTPS_PROXY"] == "http://127.0.0.1:8080"  # no credentials for others
    with open_vault(home) as vault:
        who = identify(vault.db, vault.proxy_auth_key, "guarded", password, time.time())
    assert who.agent == "guarded"


def test_exec_revokes_its_session_proxy_password_at_the_end(bot: str, home: Path) -> None:
    seks("agent", "create", "guarded", "--proxy-auth")
    child = "import os; print(os.environ['HTTPS_PROXY'])"

    run = seks_binary("exec", "--agent", "guarded", "--", sys.executable, "-c", child)

    password = run.stdout.strip().removeprefix("http://guarded:").partition("@")[0]
    assert PASSWORD_RE.fullmatch(password)
    with open_vault(home) as vault, pytest.raises(ProxyAuthFailed):
        identify(vault.db, vault.proxy_auth_key, "guarded", password, time.time())
