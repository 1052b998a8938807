"""The gate's checks through the addon's hooks: proxy identity, client address, scopes, rate,
uses and approvals, over a real vault (fixtures and helpers from test_flow). The runs through
the real proxy with real clients are in tests/e2e/test_token_limits.py and friends."""

# The fixtures come from test_flow, imported by name, which ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from mitmproxy.proxy.layers.http import HttpRequestHeadersHook
from mitmproxy.test import tflow, tutils
from test_flow import (  # noqa: F401 (fixtures, found by pytest by name)
    AGENT,
    Proxy,
    canaries,
    cli_vault,
    config_yaml,
    finish,
    home,
    make_flow,
    proxy,
    refusal,
    roundtrip,
    send_request,
)

from seks.addon.gate import ProxyCredential, parse_proxy_authorization
from seks.limits import TokenLimits
from seks.store import approvals, proxy_auth
from seks.store.vault import Vault

# -- helpers ------------------------------------------------------------------------------------


def with_token(token: str, **kwargs: Any) -> Any:
    return make_flow(headers=[("authorization", f"Bearer {token}")], **kwargs)


def refused_as(proxy: Proxy, flow: Any, before: int) -> tuple[int, str, str]:
    """Status and type the agent saw, and the audit reason of the refusal's row."""
    status, type_ = refusal(flow)
    rows = [r for r in proxy.audit_since(before, expect=1) if r["event"] == "request.denied"]
    (row,) = rows
    assert row["decision"] == "deny"
    return status, type_, row["reason"]


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def connect_as(proxy: Proxy, credentials: str | None) -> Any:
    """A CONNECT through the addon; returns the client connection its tunnel's requests share."""
    headers = [(b"proxy-authorization", credentials.encode())] if credentials else []
    connect = tflow.tflow(
        req=tutils.treq(
            method=b"CONNECT", host="api.openai.com", port=443, path=b"", headers=headers
        )
    )
    proxy.addon.http_connect(connect)
    assert "proxy-authorization" not in connect.request.headers  # in no flow dump either
    connect.client_conn.sni = "api.openai.com"  # the TLS handshake in the tunnel
    return connect.client_conn


def in_tunnel(client: Any, token: str) -> Any:
    flow = with_token(token)
    flow.client_conn = client
    return flow


# -- proxy identity -----------------------------------------------------------------------------


@pytest.fixture
def guarded(proxy: Proxy) -> tuple[str, str]:
    """An agent `guarded` created with --proxy-auth: its token and its proxy password."""
    proxy.vault.create_agent("guarded", proxy_auth=True)
    password = proxy_auth.issue_password(
        proxy.vault.db, proxy.vault.audit, proxy.vault.proxy_auth_key, "guarded", tenant="default"
    )
    token, _ = proxy.vault.issue_token("guarded", "openai")
    return token, password


def test_a_guarded_agents_token_works_on_a_connection_authenticated_as_it(
    proxy: Proxy, guarded: tuple[str, str]
) -> None:
    token, password = guarded
    client = connect_as(proxy, basic("guarded", password))

    assert send_request(proxy, in_tunnel(client, token)) is not None


@pytest.mark.parametrize(
    ("credentials", "status", "type_", "reason"),
    [
        (None, 407, "seks_proxy_auth_required", "proxy_auth_required"),
        ("wrong", 407, "seks_proxy_auth_failed", "proxy_auth_failed"),
        ("Bearer xyz", 407, "seks_proxy_auth_failed", "proxy_auth_failed"),
        ("other-agent", 403, "seks_agent_mismatch", "agent_mismatch"),
    ],
)
def test_a_guarded_agents_token_is_refused_elsewhere(
    proxy: Proxy,
    guarded: tuple[str, str],
    credentials: str | None,
    status: int,
    type_: str,
    reason: str,
) -> None:
    token, password = guarded
    if credentials == "wrong":
        # One character off (a fixed "x" was the right one whenever the password ended in x).
        credentials = basic("guarded", password[:-1] + ("y" if password.endswith("x") else "x"))
    elif credentials == "other-agent":
        proxy.vault.create_agent("other")
        credentials = basic("other", proxy_auth.issue_password(
            proxy.vault.db, proxy.vault.audit, proxy.vault.proxy_auth_key, "other",
            tenant="default",
        ))  # fmt: skip
    client = connect_as(proxy, credentials)
    before = proxy.last_audit_id()
    flow = in_tunnel(client, token)

    assert roundtrip(proxy, flow) is None
    assert refused_as(proxy, flow, before) == (status, type_, reason)
    assert flow.response is not None
    if status == 407:
        assert flow.response.headers["proxy-authenticate"] == 'Basic realm="seks"'
    assert password not in (flow.response.text or "")


def test_an_authenticated_connection_carries_only_its_own_agents_tokens(
    proxy: Proxy, guarded: tuple[str, str]
) -> None:
    _, password = guarded
    client = connect_as(proxy, basic("guarded", password))
    before = proxy.last_audit_id()
    flow = in_tunnel(client, proxy.token())  # a token of AGENT, who needs no proxy auth

    assert roundtrip(proxy, flow) is None
    assert refused_as(proxy, flow, before) == (403, "seks_agent_mismatch", "agent_mismatch")


def test_proxy_credentials_never_go_upstream(proxy: Proxy, guarded: tuple[str, str]) -> None:
    _, password = guarded
    plain = make_flow(
        "example.org",
        [("proxy-authorization", basic("guarded", password))],
        scheme="http",
        port=80,
    )
    sent = send_request(proxy, plain)
    assert sent is not None
    assert "proxy-authorization" not in sent.headers


def test_proxy_authorization_is_parsed_strictly_and_never_shown() -> None:
    good = parse_proxy_authorization(basic("bot", "seksp_x:y"))
    assert (good.username, good.password, good.valid) == ("bot", "seksp_x:y", True)
    assert "seksp_" not in repr(good)
    for bad in ("Basic !!!", "Digest abc", "Basic " + base64.b64encode(b"nocolon").decode(), ""):
        assert parse_proxy_authorization(bad).valid is False
    assert ProxyCredential("a", "b") == parse_proxy_authorization(basic("a", "b"))


# -- client address, scope, rate, uses ----------------------------------------------------------


def test_a_client_outside_the_allowed_networks_is_refused(proxy: Proxy) -> None:
    token = proxy.token(limits=TokenLimits.parse(allow_ips=["127.0.0.1"]))
    inside = with_token(token)
    inside.client_conn.peername = ("127.0.0.1", 50000)
    assert send_request(proxy, inside) is not None

    before = proxy.last_audit_id()
    outside = with_token(token)
    outside.client_conn.peername = ("127.0.0.2", 50000)
    assert roundtrip(proxy, outside) is None
    assert refused_as(proxy, outside, before) == (403, "seks_ip_not_allowed", "ip_not_allowed")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v1/chat/completions", True),
        ("POST", "/v1/chat-evil", False),
        ("GET", "/v1/chat/completions", False),
        ("POST", "/v1/chat/../files", False),
    ],
)
def test_a_request_outside_the_tokens_scopes_is_refused(
    proxy: Proxy, method: str, path: str, allowed: bool
) -> None:
    token = proxy.token(limits=TokenLimits.parse(scopes=["POST /v1/chat/*"]))
    flow = with_token(token, path=path)
    flow.request.method = method
    before = proxy.last_audit_id()

    sent = send_request(proxy, flow)

    assert (sent is not None) is allowed
    if not allowed:
        finish(proxy, flow)
        assert refused_as(proxy, flow, before) == (
            403,
            "seks_scope_not_allowed",
            "scope_not_allowed",
        )
        assert "POST /v1/chat/*" in json.loads(flow.response.content)["error"]["message"]


def test_a_token_over_its_rate_gets_429_with_retry_after(proxy: Proxy) -> None:
    token = proxy.token(limits=TokenLimits.parse(rate="2/min"))
    for _ in range(2):
        assert roundtrip(proxy, with_token(token)) is not None
    before = proxy.last_audit_id()
    flow = with_token(token)

    assert roundtrip(proxy, flow) is None
    assert refused_as(proxy, flow, before) == (429, "seks_rate_limited", "rate_limited")
    assert flow.response is not None
    assert 55 <= int(flow.response.headers["retry-after"]) <= 60
    other = proxy.token(limits=TokenLimits.parse(rate="2/min"))  # counted per token
    assert roundtrip(proxy, with_token(other)) is not None


def test_uses_are_spent_only_by_requests_that_pass_every_other_check(proxy: Proxy) -> None:
    token = proxy.token(limits=TokenLimits.parse(max_uses=2, scopes=["GET /v1/chat/*"]))
    assert roundtrip(proxy, with_token(token, path="/v1/files")) is None  # refused: no use spent
    assert roundtrip(proxy, with_token(token)) is not None
    assert roundtrip(proxy, with_token(token)) is not None
    before = proxy.last_audit_id()
    flow = with_token(token)

    assert roundtrip(proxy, flow) is None
    assert refused_as(proxy, flow, before) == (403, "seks_uses_exhausted", "uses_exhausted")
    (info,) = [t for t in proxy.vault.list_tokens() if t.max_uses == 2]
    assert info.uses_left == 0


# -- approvals ----------------------------------------------------------------------------------

SHORT_TIMEOUT = pytest.mark.parametrize("config_yaml", ["approval_timeout: 0.5\n"])


@pytest.fixture
def sensitive(proxy: Proxy) -> str:
    """A token for a secret that needs approval."""
    approvals.set_secret_approval(proxy.vault, "openai-key", "required")
    return proxy.token()


@contextmanager
def person(vault: Vault, *, grant: bool, window: float | None = None) -> Iterator[list[str]]:
    """Someone at another terminal who decides each request as soon as it is listed."""
    decided: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for a in approvals.list_pending(vault.db):
                approvals.decide(vault, a.id, grant=grant, window=window)
                decided.append(a.id)
            stop.wait(0.01)

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        yield decided
    finally:
        stop.set()
        thread.join()


def events(proxy: Proxy, before: int, expect: int) -> list[tuple[str, str | None]]:
    return [(r["event"], r["reason"]) for r in proxy.audit_since(before, expect=expect)]


def test_an_approved_request_goes_through(proxy: Proxy, sensitive: str) -> None:
    before = proxy.last_audit_id()
    with person(proxy.vault, grant=True) as decided:
        assert roundtrip(proxy, with_token(sensitive)) is not None
    assert len(decided) == 1
    assert events(proxy, before, 4) == [
        ("approval.requested", "approval_required"),
        ("approval.granted", "approved"),
        ("request.injected", None),
        ("request.completed", None),
    ]


def test_a_denied_request_is_refused(proxy: Proxy, sensitive: str) -> None:
    before = proxy.last_audit_id()
    flow = with_token(sensitive)
    with person(proxy.vault, grant=False):
        assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_approval_denied")
    assert events(proxy, before, 3) == [
        ("approval.requested", "approval_required"),
        ("approval.denied", "denied"),
        ("request.denied", "approval_denied"),
    ]


@SHORT_TIMEOUT
def test_an_unanswered_request_is_refused_after_the_timeout(proxy: Proxy, sensitive: str) -> None:
    before = proxy.last_audit_id()
    flow = with_token(sensitive)
    started = time.monotonic()

    assert roundtrip(proxy, flow) is None

    assert 0.5 <= time.monotonic() - started < 5
    assert refusal(flow) == (403, "seks_approval_denied")
    assert events(proxy, before, 3) == [
        ("approval.requested", "approval_required"),
        ("approval.expired", "timeout"),
        ("request.denied", "approval_expired"),
    ]
    assert approvals.list_pending(proxy.vault.db) == []


def test_a_window_lets_the_agents_next_requests_through_without_asking(
    proxy: Proxy, sensitive: str
) -> None:
    first = proxy.last_audit_id()
    with person(proxy.vault, grant=True, window=1800):
        assert roundtrip(proxy, with_token(sensitive)) is not None
    events(proxy, first, 4)  # requested, granted, injected, completed
    before = proxy.last_audit_id()

    assert roundtrip(proxy, with_token(sensitive)) is not None  # nobody is asked now

    assert events(proxy, before, 3)[0] == ("approval.granted", "within_window")


def test_other_traffic_flows_while_a_request_waits(proxy: Proxy, sensitive: str) -> None:
    held, other = with_token(sensitive), with_token(proxy.token("anthropic"))
    other.request.host = "api.anthropic.com"
    other.request.headers["host"] = "api.anthropic.com"
    other.client_conn.sni = "api.anthropic.com"
    manager = proxy.tctx.master.addons

    async def scenario() -> None:
        waiting = asyncio.create_task(
            manager.invoke_addon(proxy.addon, HttpRequestHeadersHook(held))
        )
        while not approvals.list_pending(proxy.vault.db):
            await asyncio.sleep(0.01)
        await manager.invoke_addon(proxy.addon, HttpRequestHeadersHook(other))
        assert other.response is None  # injected and on its way
        assert not waiting.done()
        (pending,) = approvals.list_pending(proxy.vault.db)
        approvals.decide(proxy.vault, pending.id, grant=True)
        await waiting

    proxy.tctx.master.event_loop.run_until_complete(scenario())
    assert held.response is None
    assert held.request.headers["authorization"] == f"Bearer {proxy.canary.openai}"


def test_a_held_request_the_proxy_drops_stops_waiting(proxy: Proxy, sensitive: str) -> None:
    before = proxy.last_audit_id()
    manager = proxy.tctx.master.addons

    async def scenario() -> str:
        waiting = asyncio.create_task(
            manager.invoke_addon(proxy.addon, HttpRequestHeadersHook(with_token(sensitive)))
        )
        while not approvals.list_pending(proxy.vault.db):
            await asyncio.sleep(0.01)
        (pending,) = approvals.list_pending(proxy.vault.db)
        waiting.cancel()
        while approvals.states(proxy.vault.db, [pending.id])[pending.id] == "pending":
            await asyncio.sleep(0.01)
        return pending.id

    approval_id = proxy.tctx.master.event_loop.run_until_complete(scenario())
    assert approvals.states(proxy.vault.db, [approval_id]) == {approval_id: "expired"}
    assert ("approval.expired", "client_gone") in events(proxy, before, 2)


def test_a_held_request_whose_client_hung_up_goes_no_further(proxy: Proxy, sensitive: str) -> None:
    # mitmproxy does not cancel the hook when the client disconnects; the addon hears of it
    # from client_disconnected, and a later approval must not send the request anyway.
    before = proxy.last_audit_id()
    manager = proxy.tctx.master.addons
    flow = with_token(sensitive)

    async def scenario() -> None:
        waiting = asyncio.create_task(
            manager.invoke_addon(proxy.addon, HttpRequestHeadersHook(flow))
        )
        while not approvals.list_pending(proxy.vault.db):
            await asyncio.sleep(0.01)
        proxy.addon.client_disconnected(flow.client_conn)
        await waiting

    proxy.tctx.master.event_loop.run_until_complete(scenario())

    assert refusal(flow) == (403, "seks_approval_denied")
    assert flow.request.headers["authorization"] == f"Bearer {sensitive}"  # nothing injected
    assert approvals.list_pending(proxy.vault.db) == []
    assert events(proxy, before, 3) == [
        ("approval.requested", "approval_required"),
        ("approval.expired", "client_gone"),
        ("request.denied", "approval_expired"),
    ]
