"""What the proxy inspects. By default only TLS to provider hosts is intercepted and any other
CONNECT is tunnelled untouched; with `intercept: all` every host is inspected, so a fake token
sent to any other HTTPS host is refused before it leaves the proxy.
"""

from __future__ import annotations

import pytest
from harness import (
    assert_refused,
    base_env,
    curl,
    denials_since,
    last_audit_id,
    running_proxy,
    write_config,
)


@pytest.fixture(scope="module")
def proxy_all(seks, openai_upstream, anthropic_upstream, test_ca):
    config = write_config(
        seks, openai_upstream, anthropic_upstream, test_ca, name="all.yaml", intercept="all"
    )
    with running_proxy(seks, config) as p:
        yield p


def test_by_default_other_https_hosts_are_tunnelled_untouched(
    seks, proxy, https_recorder, test_ca, tmp_path
):
    token = seks.issue("openai")

    # Trusting only the upstream's own CA: this succeeds only if the proxy did not intercept.
    result = curl(
        "-x",
        proxy.url,
        "--noproxy",
        "",
        "--cacert",
        str(test_ca.pem),
        f"{https_recorder.url}/tunnelled",
        headers=(f"Authorization: Bearer {token}",),
        env=base_env(tmp_path),
    )

    assert result.status == 200
    (seen,) = https_recorder.requests
    assert seen.path == "/tunnelled"
    assert seen.header("Authorization") == f"Bearer {token}"  # nothing was injected


def test_intercept_all_refuses_a_token_sent_to_another_https_host(
    seks, proxy_all, https_recorder, tmp_path
):
    token = seks.issue("openai")
    last = last_audit_id(seks)

    result = curl(
        "-x",
        proxy_all.url,
        "--noproxy",
        "",
        "--cacert",
        str(seks.ca_path()),
        f"{https_recorder.url}/collect",
        headers=(f"Authorization: Bearer {token}",),
        env=base_env(tmp_path),
    )

    assert_refused(result, 403, "seks_host_not_allowed", token)
    assert https_recorder.requests == []
    (row,) = denials_since(seks, last)
    assert (row["reason"], row["host"]) == ("host_not_allowed", "127.0.0.1")


def test_intercept_all_still_injects_for_provider_hosts(
    seks, proxy_all, openai_upstream, canaries, tmp_path
):
    token = seks.issue("openai")

    result = curl(
        "-x",
        proxy_all.url,
        "--cacert",
        str(seks.ca_path()),
        "https://api.openai.com/v1/models",
        headers=(f"Authorization: Bearer {token}",),
        env=base_env(tmp_path),
    )

    assert result.status == 200
    assert result.json()["data"][0]["id"] == "gpt-4o-mini"
    (seen,) = openai_upstream.requests
    assert seen.header("Authorization") == f"Bearer {canaries['openai']}"
