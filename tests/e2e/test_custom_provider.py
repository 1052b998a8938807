"""A provider defined only in the test's config.yaml works end to end: `secret add`, `seks env`
and the real proxy swap its token in the place the config names, and refuse it elsewhere."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

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
    files_under,
    find_leaks,
    run_agent,
    running_proxy,
)
from upstreams import SeenRequest, Upstream, _Handler

KEYS = {"acme": "acme-live-" + secrets.token_hex(16), "zeta": "zk_" + secrets.token_hex(16)}


class AcmeHandler(_Handler):
    """Only ``Authorization: Acme-Token <key>``."""

    def respond(self, request: SeenRequest) -> None:
        ok = request.header("Authorization") == f"Acme-Token {self.real_key}"
        self.send_json(200 if ok else 401, {"ok": ok})


class ZetaHandler(_Handler):
    """Only ``?apikey=<key>``."""

    def respond(self, request: SeenRequest) -> None:
        ok = parse_qs(urlsplit(request.path).query).get("apikey") == [self.real_key]
        self.send_json(200 if ok else 401, {"ok": ok})


@pytest.fixture(scope="module")
def servers(test_ca: TestCA) -> Iterator[dict[str, Upstream]]:
    started = {
        "acme": Upstream(AcmeHandler, ssl_context=test_ca.server_context(), real_key=KEYS["acme"]),
        "zeta": Upstream(ZetaHandler, ssl_context=test_ca.server_context(), real_key=KEYS["zeta"]),
    }
    yield started
    for server in started.values():
        server.close()


@pytest.fixture(scope="module")
def custom_seks(
    tmp_path_factory: pytest.TempPathFactory, servers: dict[str, Upstream], test_ca: TestCA
) -> Seks:
    cli = Seks(tmp_path_factory.mktemp("seks-custom") / "home")
    cli.run("init")
    route = {"upstream_ca": str(test_ca.pem)}
    config = {
        "providers": {
            "acme": {
                "hosts": ["*.acme.test"],
                "place": "header",
                "header": "Authorization",
                "format": "Acme-Token {secret}",
                "env": "ACME_TOKEN",
                "upstream": servers["acme"].url,
                **route,
            },
            "zeta": {
                "hosts": ["api.zeta.test"],
                "place": "query",
                "parameter": "apikey",
                "upstream": servers["zeta"].url,
                **route,
            },
        }
    }
    (cli.home / "config.yaml").write_text(yaml.safe_dump(config))
    for name, key in KEYS.items():
        cli.run("secret", "add", f"{name}-main", "--provider", name, input=key)
    cli.run("agent", "create", AGENT)
    return cli


@pytest.fixture(scope="module")
def custom_proxy(custom_seks: Seks) -> Iterator[ProxyProcess]:
    with running_proxy(custom_seks, custom_seks.home / "config.yaml") as p:
        yield p


def test_providers_list_shows_the_config_s_providers(custom_seks: Seks) -> None:
    listed = {p["name"]: p for p in custom_seks.json("providers", "list")}
    assert listed["acme"]["custom"] and listed["acme"]["env"] == "ACME_TOKEN"
    assert listed["zeta"]["places"][0]["describe"] == "the query parameter ?apikey=<key>"
    assert not listed["openai"]["custom"]


def test_custom_providers_work_through_the_proxy(
    custom_seks, custom_proxy, servers, agent_python, tmp_path
) -> None:
    env = custom_seks.agent_env(custom_proxy.url)
    assert env["ACME_TOKEN"].startswith("seks_acme_")
    assert env["ZETA_API_KEY"].startswith("seks_zeta_")

    run = run_agent(
        agent_python,
        "fetch.py",
        "GET",
        "https://eu.acme.test/v1/things",
        "Authorization: Acme-Token $ACME_TOKEN",
        env=env,
    )
    assert run.report["status"] == 200, run.report
    zeta = curl(
        "-x",
        custom_proxy.url,
        "--noproxy",
        "",
        "--cacert",
        str(custom_seks.ca_path()),
        f"https://api.zeta.test/v2/search?q=x&apikey={env['ZETA_API_KEY']}",
        env=base_env(tmp_path),
    )
    assert zeta.status == 200, zeta.raw
    for server in servers.values():
        assert server.requests and all(b"seks_" not in r.raw() for r in server.requests)
    places = {"proxy": custom_proxy.output(), "agent": run.stdout.encode(), "zeta": zeta.raw}
    assert find_leaks(KEYS.values(), places | files_under(custom_seks.home)) == []


def test_a_custom_provider_s_token_elsewhere_is_refused(
    custom_seks, custom_proxy, servers, tmp_path
) -> None:
    token = custom_seks.issue("acme")
    servers["acme"].clear()
    result = curl(
        "-x",
        custom_proxy.url,
        "--noproxy",
        "",
        "--cacert",
        str(custom_seks.ca_path()),
        "https://api.acme.test/v1/things",
        headers=(f"Authorization: Bearer {token}",),
        env=base_env(tmp_path),
    )
    assert_refused(result, 403, "seks_token_misplaced", token)
    assert b"Acme-Token <key>" in result.body
    assert servers["acme"].requests == []
