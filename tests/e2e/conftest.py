"""Fixtures for the end-to-end tests: the real `seks` CLI and proxy as subprocesses, real
agent SDKs, and local upstreams that behave like the providers (see upstreams.py).

The agent-side SDKs run from their own environment (SEKS_TEST_AGENT_PYTHON, set by
scripts/test), as agents do in their own containers. Canary secrets are generated per run and
only ever reach seks through stdin.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import trustme
from aws_upstream import MotoUpstream, start_moto
from harness import (
    AGENT,
    REPO,
    ProxyProcess,
    Seks,
    TestCA,
    running_proxy,
    write_config,
)
from upstreams import AnthropicHandler, OpenAIHandler, RecordingHandler, Upstream

PROXY_LOG_LINES = 200


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report ends with what each running proxy last logged: a hang or a
    refusal is then explained by the proxy's side as well as the client's."""
    report: pytest.TestReport = yield
    if report.failed:
        for proxy in ProxyProcess.running:
            title = f"seks proxy on port {proxy.port}: its last {PROXY_LOG_LINES} log lines"
            report.sections.append((title, proxy.last_log_lines(PROXY_LOG_LINES)))
    return report


@pytest.fixture(scope="session")
def agent_python() -> Path:
    path = Path(os.environ.get("SEKS_TEST_AGENT_PYTHON") or REPO / ".venv-agent" / "bin" / "python")
    if not path.exists():
        pytest.fail(
            f"the agent-side Python {path} is missing: run ./scripts/setup (it creates "
            ".venv-agent with openai, anthropic and httpx), or point SEKS_TEST_AGENT_PYTHON "
            "at an interpreter that has them"
        )
    return path


@pytest.fixture(scope="session")
def canaries() -> dict[str, str]:
    """Real-looking provider keys, fresh each run; their every appearance is a finding."""
    return {
        "openai": "sk-canary-" + secrets.token_hex(16),
        "anthropic": "sk-ant-canary-" + secrets.token_hex(16),
    }


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    ca = trustme.CA(organization_name="SEKS e2e upstream CA")
    pem = tmp_path_factory.mktemp("upstream-ca") / "upstream-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return TestCA(ca, pem)


@pytest.fixture(scope="session")
def openai_upstream(test_ca: TestCA, canaries: dict[str, str]) -> Iterator[Upstream]:
    server = Upstream(
        OpenAIHandler, ssl_context=test_ca.server_context(), real_key=canaries["openai"]
    )
    yield server
    server.close()


@pytest.fixture(scope="session")
def anthropic_upstream(test_ca: TestCA, canaries: dict[str, str]) -> Iterator[Upstream]:
    server = Upstream(
        AnthropicHandler, ssl_context=test_ca.server_context(), real_key=canaries["anthropic"]
    )
    yield server
    server.close()


@pytest.fixture(scope="session")
def http_recorder() -> Iterator[Upstream]:
    """A plain-HTTP host outside every provider."""
    server = Upstream(RecordingHandler)
    yield server
    server.close()


@pytest.fixture(scope="session")
def https_recorder(test_ca: TestCA) -> Iterator[Upstream]:
    """An HTTPS host outside every provider, its certificate from the test CA."""
    server = Upstream(RecordingHandler, ssl_context=test_ca.server_context())
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_upstream_records(
    openai_upstream: Upstream,
    anthropic_upstream: Upstream,
    http_recorder: Upstream,
    https_recorder: Upstream,
) -> None:
    """Each test sees only the requests it caused."""
    for server in (openai_upstream, anthropic_upstream, http_recorder, https_recorder):
        server.clear()


@pytest.fixture(scope="module")
def seks(tmp_path_factory: pytest.TempPathFactory, canaries: dict[str, str]) -> Seks:
    """An initialised SEKS home with both canary secrets and one agent."""
    cli = Seks(tmp_path_factory.mktemp("seks") / "home")
    cli.run("init")
    cli.run("secret", "add", "openai-main", "--provider", "openai", input=canaries["openai"])
    cli.run(
        "secret", "add", "anthropic-main", "--provider", "anthropic", input=canaries["anthropic"]
    )
    cli.run("agent", "create", AGENT)
    return cli


@pytest.fixture(scope="module")
def proxy(
    seks: Seks, openai_upstream: Upstream, anthropic_upstream: Upstream, test_ca: TestCA
) -> Iterator[ProxyProcess]:
    """One proxy per module, default interception (provider hosts only)."""
    config = write_config(seks, openai_upstream, anthropic_upstream, test_ca)
    with running_proxy(seks, config) as p:
        yield p


@pytest.fixture(scope="module")
def agent_env(seks: Seks, proxy: ProxyProcess) -> dict[str, str]:
    return seks.agent_env(proxy.url)


@pytest.fixture(scope="session")
def moto_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoUpstream]:
    """moto_server over plain HTTP checking SigV4 signatures, with one allow-all key."""
    moto = start_moto(tmp_path_factory.mktemp("moto-http"))
    yield moto
    moto.stop()


@pytest.fixture(scope="session")
def moto_https(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[MotoUpstream]:
    """moto_server over HTTPS (a certificate from the test CA), as `moto_http` otherwise."""
    moto = start_moto(tmp_path_factory.mktemp("moto-https"), ca=test_ca)
    yield moto
    moto.stop()
