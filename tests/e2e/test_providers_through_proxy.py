"""Every built-in provider through the real proxy with a real client: the local upstream accepts
only the real key in the provider's own place (header and scheme, ``?key=``, ``/bot<key>/``,
Basic password), and a fake token anywhere else is refused before any upstream sees it.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest
import yaml
from harness import (
    AGENT,
    ProxyProcess,
    Seks,
    TestCA,
    assert_refused,
    base_env,
    curl,
    denials_since,
    files_under,
    find_leaks,
    last_audit_id,
    run_agent,
    running_proxy,
)
from provider_upstreams import HANDLERS
from upstreams import Upstream, reply_text

# Real-looking keys in each provider's own format, fresh per run.
KEYS = {
    "gemini": "AIzaSyCanary" + secrets.token_hex(12),
    "groq": "gsk_canary" + secrets.token_hex(16),
    "brave": "BSAcanary" + secrets.token_hex(10),
    "notion": "ntn_canary" + secrets.token_hex(16),
    "cloudflare": "cfcanary" + secrets.token_hex(16),
    "discord": "MTcanary." + secrets.token_hex(12),
    "telegram": "123456789:AAcanary-" + secrets.token_hex(12),
    "github": "ghp_canary" + secrets.token_hex(16),
}


@pytest.fixture(scope="module")
def upstreams(test_ca: TestCA) -> Iterator[dict[str, Upstream]]:
    servers = {
        name: Upstream(handler, ssl_context=test_ca.server_context(), real_key=KEYS[name])
        for name, handler in HANDLERS.items()
    }
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture(autouse=True)
def _fresh_records(upstreams: dict[str, Upstream]) -> None:
    for server in upstreams.values():
        server.clear()


@pytest.fixture(scope="module")
def providers_seks(tmp_path_factory: pytest.TempPathFactory) -> Seks:
    cli = Seks(tmp_path_factory.mktemp("seks-providers") / "home")
    cli.run("init")
    for name, key in KEYS.items():
        cli.run("secret", "add", f"{name}-main", "--provider", name, input=key)
    cli.run("agent", "create", AGENT)
    return cli


@pytest.fixture(scope="module")
def providers_proxy(
    providers_seks: Seks, upstreams: dict[str, Upstream], test_ca: TestCA
) -> Iterator[ProxyProcess]:
    config = {
        "providers": {
            name: {"upstream": server.url, "upstream_ca": str(test_ca.pem)}
            for name, server in upstreams.items()
        }
    }
    path = providers_seks.home / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with running_proxy(providers_seks, path) as p:
        yield p


@pytest.fixture(scope="module")
def env(providers_seks: Seks, providers_proxy: ProxyProcess) -> dict[str, str]:
    return providers_seks.agent_env(providers_proxy.url)


def test_seks_env_gives_each_provider_its_sdk_variable(env: dict[str, str]) -> None:
    for var, provider in [
        ("GEMINI_API_KEY", "gemini"),
        ("GROQ_API_KEY", "groq"),
        ("BRAVE_API_KEY", "brave"),
        ("NOTION_TOKEN", "notion"),
        ("CLOUDFLARE_API_TOKEN", "cloudflare"),
        ("DISCORD_BOT_TOKEN", "discord"),
        ("TELEGRAM_BOT_TOKEN", "telegram"),
        ("GITHUB_TOKEN", "github"),
    ]:
        assert env[var].startswith(f"seks_{provider}_"), var


def test_every_provider_answers_its_real_client_through_the_proxy(
    agent_python, env, upstreams, providers_seks, providers_proxy
) -> None:
    run = run_agent(agent_python, "providers_agent.py", env=env)
    report = run.report

    assert report["groq"]["content"] == reply_text("ping from groq")
    assert report["gemini_sdk"]["content"] == reply_text("ping from gemini")
    gemini_query = report["gemini_query"]
    assert gemini_query["status"] == 200, gemini_query
    assert gemini_query["body"]["candidates"][0]["content"]["parts"][0]["text"] == reply_text(
        "ping by query"
    )
    for call in ("brave", "notion", "cloudflare", "discord", "github_api", "github_git"):
        assert report[call]["status"] == 200, (call, report[call])
        assert report[call]["body"]["ok"] is True, call
    assert report["telegram"] == {
        "status": 200,
        "body": {"ok": True, "result": {"method": "getMe", "is_bot": True}},
    }

    gemini = upstreams["gemini"].requests
    assert [r.header("x-goog-api-key") for r in gemini] == [KEYS["gemini"], None]
    assert f"key={KEYS['gemini']}" in gemini[1].path  # the query form, swapped in place
    (telegram,) = upstreams["telegram"].requests
    assert telegram.path == f"/bot{KEYS['telegram']}/getMe"
    for name, server in upstreams.items():
        assert server.requests, name
        assert all(b"seks_" not in r.raw() for r in server.requests), name

    # The agent, the console and the audit never held a real key; the path and query that
    # carried one are logged without it.
    places = {
        "agent output": (run.stdout + run.stderr).encode(),
        "proxy output": providers_proxy.output(),
        **files_under(providers_seks.home),
    }
    assert find_leaks(KEYS.values(), places) == []
    assert b"/bot" in providers_proxy.output()


def _curl(proxy: ProxyProcess, seks: Seks, url: str, *headers: str, tmp_path):
    return curl(
        "-x",
        proxy.url,
        "--noproxy",
        "",
        "--cacert",
        str(seks.ca_path()),
        url,
        headers=headers,
        env=base_env(tmp_path),
    )


@pytest.mark.parametrize(
    ("provider", "url", "header"),
    [
        ("telegram", "https://api.telegram.org/getMe?token={t}", None),
        ("telegram", "https://api.telegram.org/bot123/getMe", "X-Bot-Token: {t}"),
        ("gemini", "https://generativelanguage.googleapis.com/v1/models?api_key={t}", None),
        ("gemini", "https://generativelanguage.googleapis.com/v1/models", "X-Api-Key: {t}"),
        ("brave", "https://api.search.brave.com/res/v1/web/search?q={t}", None),
        ("discord", "https://discord.com/api/v10/users/@me", "Authorization: Bearer {t}"),
        ("github", "https://github.com/o/r.git/info/refs", "Authorization: Basic {user}"),
    ],
)
def test_a_token_outside_its_provider_s_place_is_refused(
    providers_seks, providers_proxy, upstreams, tmp_path, provider, url, header
) -> None:
    token = providers_seks.issue(provider)
    last = last_audit_id(providers_seks)
    as_user = base64.b64encode(f"{token}:x".encode()).decode()
    headers = [header.format(t=token, user=as_user)] if header else []

    result = _curl(
        providers_proxy, providers_seks, url.format(t=token), *headers, tmp_path=tmp_path
    )

    assert_refused(result, 403, "seks_token_misplaced", token)
    assert upstreams[provider].requests == []
    (row,) = denials_since(providers_seks, last)
    assert row["reason"] == "token_misplaced"
    assert token not in repr(row)


def test_a_discord_token_outside_api_paths_is_refused(
    providers_seks, providers_proxy, upstreams, tmp_path
) -> None:
    token = providers_seks.issue("discord")
    result = _curl(
        providers_proxy,
        providers_seks,
        "https://discord.com/channels/@me",
        f"Authorization: Bot {token}",
        tmp_path=tmp_path,
    )
    assert_refused(result, 403, "seks_host_not_allowed", token)
    assert upstreams["discord"].requests == []
