"""The mitmproxy addon, hook by hook, over a real vault in tmp_path.

The hooks are called in the order mitmproxy calls them (``requestheaders``, every ``request``
hook with :class:`DestinationGuard` last, ``responseheaders``, ``response`` or ``error``), on
flows built with mitmproxy's own test helpers; no part of SEKS is mocked. The real-proxy runs
with real clients are in ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import shutil
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions, hooks, http, tls
from mitmproxy import flow as mflow
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.proxy import context
from mitmproxy.proxy.layers.http import (
    HttpErrorHook,
    HttpRequestHeadersHook,
    HttpRequestHook,
    HttpResponseHeadersHook,
    HttpResponseHook,
)
from mitmproxy.test import taddons, tflow, tutils

from seks.addon import responses
from seks.addon.flow import DestinationGuard, SeksAddon
from seks.addon.response_bodies import StreamBody
from seks.addon.responses import ResponseScrubber
from seks.home import Home
from seks.store import MasterKey, Vault
from seks.store.audit import rows_after
from seks.store.tokens import mint

AGENT = "bot"
UPSTREAM_PORT = 8443  # never connected to: the hooks only decide where a request would go
SAME_AS_HOST = "<the destination host>"


# -- a vault, a proxy, and requests -----------------------------------------------------------


@dataclass
class Canaries:
    openai: str
    anthropic: str
    github: str

    def all(self) -> list[str]:
        return [self.openai, self.anthropic, self.github]


@dataclass
class Chain:
    """The SEKS addon and its guard under mitmproxy's test context."""

    addon: SeksAddon
    guard: DestinationGuard
    tctx: taddons.context

    def run(self, hook: hooks.Hook) -> None:
        """Invoke one hook on the SEKS addon, then on the guard (last in the chain), as
        mitmproxy's addon manager does: sync and async hooks alike, on the proxy's loop."""
        for addon in (self.addon, self.guard):
            self.tctx.master.event_loop.run_until_complete(
                self.tctx.master.addons.invoke_addon(addon, hook)
            )


@dataclass
class Proxy(Chain):
    """The chain over a real vault, and the vault as the CLI would hold it meanwhile."""

    home: Home
    vault: Vault  # a second connection, as `seks token revoke` would have while the proxy runs
    canary: Canaries
    tokens: list[str] = field(default_factory=list)

    def token(self, provider: str = "openai", **kwargs: Any) -> str:
        token, _ = self.vault.issue_token(AGENT, provider, **kwargs)
        self.tokens.append(token)
        return token

    def last_audit_id(self) -> int:
        row = self.vault.db.execute("SELECT max(id) FROM audit").fetchone()
        return int(row[0] or 0)

    def audit_since(self, last_id: int, expect: int = 0) -> list[dict[str, Any]]:
        """The rows after ``last_id``, once at least ``expect`` are there: rows nobody waits
        for (refusals, outcomes) may be committed a moment after the hook returned."""
        wait_until(lambda: len(rows_after(self.vault.db, last_id)) >= expect)
        return rows_after(self.vault.db, last_id)

    def settle(self) -> None:
        """Shut the addon down, which commits every audit row still queued."""
        self.addon.done()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)


@dataclass
class Sent:
    """What a request that was let through would send upstream."""

    host: str
    port: int
    headers: http.Headers


@pytest.fixture
def home(tmp_path: Path, master: MasterKey, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.delenv("SEKS_MASTER_KEY", raising=False)
    home = Home(tmp_path / "home")
    home.create()
    home.write_master_key(master)
    return home


@pytest.fixture
def canaries(canary: str) -> Canaries:
    return Canaries(
        canary, "sk-ant-canary-" + secrets.token_hex(16), "ghp_canary" + secrets.token_hex(16)
    )


@pytest.fixture
def cli_vault(home: Home, master: MasterKey, canaries: Canaries) -> Iterator[Vault]:
    vault = Vault.create(home.vault_path, master)
    vault.add_secret("openai-key", "openai", canaries.openai)
    vault.add_secret("anthropic-key", "anthropic", canaries.anthropic)
    vault.add_secret("github-key", "github", canaries.github)
    vault.create_agent(AGENT)
    yield vault
    vault.close()


@pytest.fixture
def config_yaml() -> str | None:
    """Overridden by parametrize to run a test under a given config.yaml."""
    return None


@contextlib.contextmanager
def mitmproxy_context(*addons: object) -> Iterator[taddons.context]:
    tctx = taddons.context(*addons)
    try:
        yield tctx
    finally:
        for addon in addons:
            if isinstance(addon, SeksAddon):
                addon.done()
        # taddons leaves a root log handler bound to its loop, and the loop open.
        tctx.master._legacy_log_events.uninstall()
        tctx.master.event_loop.close()


@pytest.fixture
def proxy(
    home: Home, cli_vault: Vault, canaries: Canaries, config_yaml: str | None
) -> Iterator[Proxy]:
    if config_yaml is not None:
        home.config_path.write_text(config_yaml)
    addon = SeksAddon()
    guard = DestinationGuard(addon)
    with mitmproxy_context(addon, guard) as tctx:
        tctx.configure(addon, seks_home=str(home.root))
        yield Proxy(addon, guard, tctx, home, cli_vault, canaries)


UPSTREAM = pytest.mark.parametrize(
    "config_yaml", [f"providers:\n  openai:\n    upstream: https://127.0.0.1:{UPSTREAM_PORT}\n"]
)
INTERCEPT_ALL = pytest.mark.parametrize("config_yaml", ["intercept: all\n"])


def make_flow(
    host: str = "api.openai.com",
    headers: list[tuple[str, str]] | tuple[()] = (),
    *,
    path: str = "/v1/chat/completions",
    port: int = 443,
    scheme: str = "https",
    host_header: str | None = SAME_AS_HOST,
    sni: str | None = SAME_AS_HOST,
    http2: bool = False,
) -> http.HTTPFlow:
    """A request as mitmproxy hands it to addons after CONNECT host:port and TLS with SNI."""
    host_header = host if host_header == SAME_AS_HOST else host_header
    fields = [(b"host", host_header.encode())] if host_header is not None and not http2 else []
    fields += [(n.encode(), v.encode()) for n, v in headers]
    req = tutils.treq(
        host=host,
        port=port,
        scheme=scheme.encode(),
        authority=(host_header or "").encode() if http2 else b"",
        path=path.encode(),
        http_version=b"HTTP/2.0" if http2 else b"HTTP/1.1",
        headers=http.Headers(fields),
        content=b"",
    )
    flow = tflow.tflow(req=req)
    flow.client_conn.sni = (host if scheme == "https" else None) if sni == SAME_AS_HOST else sni
    return flow


def send_request(proxy: Chain, flow: http.HTTPFlow) -> Sent | None:
    """``requestheaders`` then the ``request`` hooks: what would go upstream, if anything."""
    proxy.run(HttpRequestHeadersHook(flow))
    if flow.response is None:
        proxy.run(HttpRequestHook(flow))
    if flow.response is not None:
        return None
    return Sent(flow.request.host, flow.request.port, flow.request.headers.copy())


def finish(proxy: Chain, flow: http.HTTPFlow, status: int = 200) -> None:
    """The upstream answers (or the proxy already did): the response hooks."""
    if flow.response is None:
        flow.response = tutils.tresp(status_code=status)
        proxy.run(HttpResponseHeadersHook(flow))
    proxy.run(HttpResponseHook(flow))


def fail_upstream(proxy: Chain, flow: http.HTTPFlow) -> None:
    flow.error = mflow.Error("connection reset by peer")
    proxy.run(HttpErrorHook(flow))


def roundtrip(proxy: Chain, flow: http.HTTPFlow) -> Sent | None:
    sent = send_request(proxy, flow)
    finish(proxy, flow)
    return sent


def refusal(flow: http.HTTPFlow) -> tuple[int, str]:
    assert flow.response is not None
    assert flow.response.headers["content-type"] == "application/json"
    body = json.loads(flow.response.content or b"")
    assert body["type"] == "error"
    assert body["error"]["code"] == body["error"]["type"]
    return flow.response.status_code, body["error"]["type"]


def assert_nothing_leaks(proxy: Proxy, flow: http.HTTPFlow, *extra: str) -> None:
    """No real key in the flow as dumps, the UI and saved files see it; no token in the audit."""
    state = repr(flow.get_state())
    audit = repr(proxy.audit_since(0))
    for canary in proxy.canary.all():
        assert canary not in repr(flow)
        assert canary not in state
        assert canary not in str(flow.request.headers)
        assert canary not in audit
    for token in proxy.tokens:
        assert token not in audit
    for text in extra:
        for canary in proxy.canary.all():
            assert canary not in text


# -- set-up --------------------------------------------------------------------------------


def test_configure_opens_the_vault_in_the_given_home(proxy: Proxy) -> None:
    assert proxy.addon.vault is not None
    assert proxy.addon.config.intercept == "providers"


@pytest.fixture
def no_default_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$SEKS_HOME unset and ~ empty, so the default home (~/.seks) does not exist."""
    monkeypatch.delenv("SEKS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "empty-user-home"))
    return tmp_path / "empty-user-home"


def _configure_error(seks_home: Path) -> str:
    addon = SeksAddon()
    with mitmproxy_context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError) as e:
            tctx.configure(addon, seks_home=str(seks_home))
        assert addon.vault is None  # nothing half-open: every request would find no vault
        return str(e.value)


@pytest.fixture
def wrong_key_home(tmp_path: Path, cli_vault: Vault) -> Home:
    other = Home(tmp_path / "other")
    other.create()
    other.write_master_key(MasterKey.generate())
    (other.root / "vault.db").write_bytes(cli_vault.db.conn.serialize())
    return other


def test_configure_without_a_vault_fails(home: Home, no_default_home: Path) -> None:
    assert _configure_error(home.root).startswith("SEKS: ")


def test_configure_with_the_wrong_master_key_fails(
    wrong_key_home: Home, no_default_home: Path
) -> None:
    assert _configure_error(wrong_key_home.root).startswith("SEKS: ")


def test_configure_without_a_vault_names_the_missing_vault(
    home: Home, no_default_home: Path
) -> None:
    # mitmproxy rolls a failed update back and configures again with the defaults; that
    # second pass must not replace the real error with one about ~/.seks.
    assert f"no vault at {home.vault_path}" in _configure_error(home.root)


def test_configure_with_the_wrong_master_key_says_so(
    wrong_key_home: Home, no_default_home: Path
) -> None:
    assert "the master key does not open this vault" in _configure_error(wrong_key_home.root)


def test_with_no_vault_configured_tokens_are_refused_and_the_rest_passes(
    no_default_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # `mitmdump -s seks/addon/script.py` without seks_home, and no ~/.seks.
    addon = SeksAddon()
    guard = DestinationGuard(addon)
    with mitmproxy_context(addon, guard) as tctx:
        tctx.configure(addon)
        assert "no vault" in caplog.text
        chain = Chain(addon, guard, tctx)
        token = mint("openai")
        flow = make_flow(headers=[("authorization", f"Bearer {token}")])
        assert roundtrip(chain, flow) is None
        assert refusal(flow) == (503, "seks_vault_error")
        assert flow.request.headers["authorization"] == f"Bearer {token}"
        assert roundtrip(chain, make_flow("example.org")) is not None


def test_a_bad_config_file_is_an_options_error_naming_the_key(proxy: Proxy, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("intercept: everything\n")
    with pytest.raises(exceptions.OptionsError, match="intercept: must be one of"):
        proxy.tctx.configure(proxy.addon, seks_config=str(bad))
    missing = tmp_path / "missing.yaml"
    with pytest.raises(exceptions.OptionsError, match="config file not found"):
        proxy.tctx.configure(proxy.addon, seks_config=str(missing))
    # The proxy keeps working with what it had.
    assert proxy.addon.vault is not None
    flow = make_flow(headers=[("authorization", f"Bearer {proxy.token()}")])
    assert send_request(proxy, flow) is not None


def test_running_makes_mitmproxy_connect_lazily(home: Home, cli_vault: Vault) -> None:
    # With eager connections mitmproxy would connect upstream at CONNECT time, even for a
    # request SEKS then refuses (shared notes).
    addon = SeksAddon()
    with mitmproxy_context(Proxyserver(), addon) as tctx:
        tctx.configure(addon, seks_home=str(home.root))
        assert tctx.options.connection_strategy == "eager"
        addon.running()
        assert tctx.options.connection_strategy == "lazy"


# -- the swap ----------------------------------------------------------------------------------


def test_fake_token_is_swapped_for_the_real_key_and_put_back(proxy: Proxy) -> None:
    token = proxy.token()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    proxy.run(HttpRequestHeadersHook(flow))
    assert flow.response is None
    assert flow.request.headers["authorization"] == f"Bearer {proxy.canary.openai}"
    proxy.run(HttpRequestHook(flow))
    assert flow.response is None
    assert flow.request.headers["authorization"] == f"Bearer {proxy.canary.openai}"

    flow.response = tutils.tresp()
    proxy.run(HttpResponseHeadersHook(flow))
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    proxy.run(HttpResponseHook(flow))
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    assert (flow.request.host, flow.request.port) == ("api.openai.com", 443)
    assert_nothing_leaks(proxy, flow)


def test_fake_token_is_put_back_when_the_upstream_fails(proxy: Proxy) -> None:
    token = proxy.token()
    before = proxy.last_audit_id()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    assert send_request(proxy, flow) is not None
    fail_upstream(proxy, flow)
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    rows = proxy.audit_since(before, expect=2)
    assert [(r["event"], r["reason"]) for r in rows] == [
        ("request.injected", None),
        ("request.completed", "upstream_error"),
    ]
    assert rows[1]["status"] is None
    assert_nothing_leaks(proxy, flow)


def test_only_the_token_s_own_header_value_changes(proxy: Proxy) -> None:
    # The scheme word is written as the provider spells it; scheme names are case-insensitive
    # (RFC 9110 11.1), and the agent's own spelling is what it gets back. The one header
    # added asks for an unencoded answer, which is cheaper to scrub.
    token = proxy.token()
    flow = make_flow(
        headers=[
            ("user-agent", "OpenAI/Python 1.0"),
            ("Authorization", f"bearer {token}"),
            ("x-request-id", "abc"),
        ]
    )
    sent = send_request(proxy, flow)
    assert sent is not None
    assert sent.headers.fields == (
        (b"host", b"api.openai.com"),
        (b"user-agent", b"OpenAI/Python 1.0"),
        (b"Authorization", f"Bearer {proxy.canary.openai}".encode()),
        (b"x-request-id", b"abc"),
        (b"accept-encoding", b"identity"),
    )
    finish(proxy, flow)
    assert flow.request.headers.fields[2] == (b"Authorization", f"bearer {token}".encode())


@pytest.mark.parametrize(
    ("header", "value"), [("x-api-key", "{t}"), ("authorization", "Bearer {t}")]
)
def test_anthropic_key_goes_where_the_sdk_put_the_token(
    proxy: Proxy, header: str, value: str
) -> None:
    token = proxy.token("anthropic")
    flow = make_flow("api.anthropic.com", [(header, value.format(t=token))], path="/v1/messages")
    sent = roundtrip(proxy, flow)
    assert sent is not None
    assert sent.headers[header] == value.format(t=proxy.canary.anthropic)
    assert flow.request.headers[header] == value.format(t=token)
    assert_nothing_leaks(proxy, flow)


def test_github_token_scheme_is_kept(proxy: Proxy) -> None:
    token = proxy.token("github")
    flow = make_flow("api.github.com", [("authorization", f"token {token}")], path="/user")
    sent = roundtrip(proxy, flow)
    assert sent is not None
    assert sent.headers["authorization"] == f"token {proxy.canary.github}"


def test_two_tokens_in_their_places_are_both_swapped_and_audited(proxy: Proxy) -> None:
    a, b = proxy.token("anthropic"), proxy.token("anthropic")
    before = proxy.last_audit_id()
    flow = make_flow(
        "api.anthropic.com", [("x-api-key", a), ("authorization", f"Bearer {b}")], path="/v1"
    )
    sent = roundtrip(proxy, flow)
    assert sent is not None
    assert sent.headers["x-api-key"] == proxy.canary.anthropic
    assert sent.headers["authorization"] == f"Bearer {proxy.canary.anthropic}"
    assert (flow.request.headers["x-api-key"], flow.request.headers["authorization"]) == (
        a,
        f"Bearer {b}",
    )
    events = [r["event"] for r in proxy.audit_since(before, expect=4)]
    assert events == ["request.injected"] * 2 + ["request.completed"] * 2


def test_tokens_in_same_header_spelled_differently_are_all_put_back(proxy: Proxy) -> None:
    # HTTP/1 header names are case-insensitive: Authorization and authorization are one header
    # whose two fields must both get their fake tokens back.
    a, b = proxy.token("anthropic"), proxy.token("anthropic")
    flow = make_flow(
        "api.anthropic.com",
        [("Authorization", f"Bearer {a}"), ("authorization", f"Bearer {b}")],
        path="/v1",
    )
    roundtrip(proxy, flow)
    assert flow.request.headers.get_all("authorization") == [f"Bearer {a}", f"Bearer {b}"]


def test_request_without_a_token_passes_untouched(proxy: Proxy) -> None:
    before = proxy.last_audit_id()
    for flow in (
        make_flow(headers=[("authorization", "Bearer sk-agent-own-key")]),
        make_flow("example.org", path="/"),
    ):
        sent = roundtrip(proxy, flow)
        assert sent is not None
        assert flow.response is not None
        assert flow.response.status_code == 200
    proxy.settle()
    assert proxy.audit_since(before) == []


# -- refusals: the token itself -------------------------------------------------------------


def _refused_token_case(proxy: Proxy, case: str) -> str:
    if case == "unknown":
        return mint("openai")  # well-formed, never issued
    if case == "malformed":
        token = proxy.token()
        return token[:-1] + ("A" if token[-1] != "A" else "B")
    if case == "expired":
        return proxy.token(now=time.time() - 3600, ttl=60)
    if case == "revoked":
        token, info = proxy.vault.issue_token(AGENT, "openai")
        proxy.tokens.append(token)
        proxy.vault.revoke_token(info.id)
        return token
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "type_", "reason"),
    [
        ("unknown", "seks_unknown_token", "unknown_token"),
        ("malformed", "seks_unknown_token", "malformed_token"),
        ("expired", "seks_token_expired", "token_expired"),
        ("revoked", "seks_token_revoked", "token_revoked"),
    ],
)
def test_unusable_token_gets_401_and_nothing_is_injected(
    proxy: Proxy, case: str, type_: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = _refused_token_case(proxy, case)
    before = proxy.last_audit_id()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (401, type_)
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    assert flow.response is not None
    assert token not in (flow.response.text or "")
    (row,) = proxy.audit_since(before, expect=1)
    assert (row["event"], row["decision"], row["reason"], row["status"]) == (
        "request.denied",
        "deny",
        reason,
        401,
    )
    assert row["host"] == "api.openai.com"
    # An expired or revoked token still says whose it was; an unknown one cannot.
    assert (row["token_id"] is not None, row["agent"]) == (
        (True, AGENT) if case in {"expired", "revoked"} else (False, None)
    )
    assert_nothing_leaks(proxy, flow, caplog.text)
    assert token not in caplog.text


def test_revocation_by_the_cli_takes_effect_on_the_next_request(proxy: Proxy) -> None:
    token, info = proxy.vault.issue_token(AGENT, "openai")
    first = make_flow(headers=[("authorization", f"Bearer {token}")])
    assert roundtrip(proxy, first) is not None
    proxy.vault.revoke_token(info.id)
    second = make_flow(headers=[("authorization", f"Bearer {token}")])
    assert roundtrip(proxy, second) is None
    assert refusal(second) == (401, "seks_token_revoked")


# -- refusals: where the token goes ----------------------------------------------------------


def test_token_sent_to_another_host_is_refused_naming_its_hosts(proxy: Proxy) -> None:
    token = proxy.token()
    before = proxy.last_audit_id()
    flow = make_flow("evil.example.com", [("authorization", f"Bearer {token}")])
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_host_not_allowed")
    assert flow.response is not None
    message = json.loads(flow.response.content or b"")["error"]["message"]
    assert "api.openai.com" in message
    assert "evil.example.com" in message
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    (row,) = proxy.audit_since(before, expect=1)
    assert (row["event"], row["reason"], row["host"], row["agent"], row["provider"]) == (
        "request.denied",
        "host_not_allowed",
        "evil.example.com",
        AGENT,
        "openai",
    )
    assert row["token_id"].startswith("tok_")
    assert_nothing_leaks(proxy, flow)


def test_token_for_one_provider_is_refused_at_another(proxy: Proxy) -> None:
    token = proxy.token("openai")
    flow = make_flow("api.anthropic.com", [("authorization", f"Bearer {token}")])
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_host_not_allowed")


def test_plain_http_is_refused(proxy: Proxy) -> None:
    token = proxy.token()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")], scheme="http", port=80)
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_host_not_allowed")
    assert flow.request.headers["authorization"] == f"Bearer {token}"


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ([("authorization", "Bearer {t}")], "/v1/models?api_key={t}"),
        ([], "/v1/models?api_key={t}"),
        ([], "/v1/{t}/models"),
        ([("authorization", "Bearer {t}"), ("x-debug", "{t}")], "/v1/models"),
        ([("x-debug", "Bearer {t}")], "/v1/models"),
        ([("authorization", "{t}")], "/v1/models"),
        ([("cookie", "k={t}")], "/v1/models"),
    ],
)
def test_token_outside_its_place_is_refused_and_nothing_injected(
    proxy: Proxy,
    headers: list[tuple[str, str]],
    path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = proxy.token()
    before = proxy.last_audit_id()
    sent_headers = [(n, v.format(t=token)) for n, v in headers]
    flow = make_flow(headers=sent_headers, path=path.format(t=token))
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_token_misplaced")
    assert flow.request.headers.fields[1:] == tuple(
        (n.encode(), v.encode()) for n, v in sent_headers
    )
    (row,) = proxy.audit_since(before, expect=1)
    assert (row["reason"], row["status"]) == ("token_misplaced", 403)
    assert "?" not in row["path"]
    assert token not in caplog.text
    assert_nothing_leaks(proxy, flow, caplog.text)


@pytest.mark.parametrize(
    "host_header",
    ["evil.example.com", "api.openai.com@evil.example.com", "evil.example.com:443", "[::1", ""],
)
def test_host_header_disagreeing_with_the_destination_is_refused(
    proxy: Proxy, host_header: str
) -> None:
    token = proxy.token()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")], host_header=host_header)
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_host_not_allowed")
    assert flow.request.headers["authorization"] == f"Bearer {token}"


@pytest.mark.parametrize("host_header", ["api.openai.com:443", "API.OPENAI.COM", None])
def test_host_header_naming_the_destination_is_accepted(
    proxy: Proxy, host_header: str | None
) -> None:
    flow = make_flow(
        headers=[("authorization", f"Bearer {proxy.token()}")], host_header=host_header
    )
    assert roundtrip(proxy, flow) is not None


def test_http2_authority_disagreeing_with_the_destination_is_refused(proxy: Proxy) -> None:
    token = proxy.token()
    ok = make_flow(headers=[("authorization", f"Bearer {token}")], http2=True)
    assert roundtrip(proxy, ok) is not None
    bad = make_flow(
        headers=[("authorization", f"Bearer {token}")], host_header="evil.example.com", http2=True
    )
    assert roundtrip(proxy, bad) is None
    assert refusal(bad) == (403, "seks_host_not_allowed")


def test_sni_disagreeing_with_the_destination_is_refused(proxy: Proxy) -> None:
    token = proxy.token()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")], sni="evil.example.com")
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_host_not_allowed")


@pytest.mark.parametrize(("attr", "value"), [("host", "evil.example.com"), ("port", 8443)])
def test_request_redirected_after_injection_is_refused_and_the_token_put_back(
    proxy: Proxy, attr: str, value: object
) -> None:
    token = proxy.token()
    before = proxy.last_audit_id()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    proxy.run(HttpRequestHeadersHook(flow))
    assert flow.request.headers["authorization"] == f"Bearer {proxy.canary.openai}"
    setattr(flow.request, attr, value)  # what map_remote would do between the two hooks
    proxy.run(HttpRequestHook(flow))
    assert refusal(flow) == (403, "seks_host_not_allowed")
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    finish(proxy, flow)
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    assert [(r["event"], r["reason"]) for r in proxy.audit_since(before, expect=2)] == [
        ("request.injected", None),
        ("request.denied", "host_not_allowed"),
    ]
    assert_nothing_leaks(proxy, flow)


def test_request_downgraded_to_http_after_injection_is_refused(proxy: Proxy) -> None:
    # Same host and port, but the key would cross the network in clear text.
    token = proxy.token()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    proxy.run(HttpRequestHeadersHook(flow))
    flow.request.scheme = "http"
    proxy.run(HttpRequestHook(flow))
    assert flow.response is not None
    assert flow.request.headers["authorization"] == f"Bearer {token}"


# -- fail closed: audit and vault --------------------------------------------------------------


# The proxy gives up on a held audit lock after 50 ms, not the default 5 s.
@pytest.mark.parametrize("config_yaml", ["audit_timeout: 0.05\n"])
def test_audit_that_cannot_be_written_refuses_with_503_and_injects_nothing(
    proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = proxy.token()
    before = proxy.last_audit_id()
    # Another writer (a CLI command, a second proxy) holds the vault's write lock for longer
    # than the proxy's busy timeout.
    proxy.vault.db.execute("BEGIN IMMEDIATE")
    try:
        flow = make_flow(headers=[("authorization", f"Bearer {token}")])
        sent = send_request(proxy, flow)
    finally:
        proxy.vault.db.execute("ROLLBACK")
    assert sent is None
    assert refusal(flow) == (503, "seks_audit_unavailable")
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    finish(proxy, flow)
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    assert "audit trail cannot be written" in caplog.text
    proxy.settle()
    assert "request.injected" not in {r["event"] for r in proxy.audit_since(before)}
    assert_nothing_leaks(proxy, flow, caplog.text)


def test_audit_writer_that_cannot_open_the_vault_refuses_instead_of_hanging(
    proxy: Proxy,
) -> None:
    token = proxy.token()
    shutil.rmtree(proxy.home.root)  # the vault's directory is gone (unmounted, deleted)
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    hook = proxy.tctx.master.addons.invoke_addon(proxy.addon, HttpRequestHeadersHook(flow))
    with contextlib.suppress(TimeoutError):
        proxy.tctx.master.event_loop.run_until_complete(asyncio.wait_for(hook, timeout=2))
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    assert refusal(flow) == (503, "seks_audit_unavailable")


def test_audit_rejecting_the_injection_row_refuses_and_audits_the_refusal(proxy: Proxy) -> None:
    token = proxy.token()
    # Any failure to write the row (disk full, I/O error) looks like this to the proxy.
    proxy.vault.db.execute(
        "CREATE TRIGGER fail_injected BEFORE INSERT ON audit "
        "WHEN NEW.event = 'request.injected' BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
    )
    before = proxy.last_audit_id()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (503, "seks_audit_unavailable")
    assert flow.request.headers["authorization"] == f"Bearer {token}"
    assert [(r["event"], r["reason"]) for r in proxy.audit_since(before, expect=1)] == [
        ("request.denied", "audit_unavailable")
    ]
    assert_nothing_leaks(proxy, flow)


def test_secret_that_cannot_be_decrypted_refuses_with_503(proxy: Proxy) -> None:
    token = proxy.token()
    row = proxy.vault.db.execute(
        "SELECT ciphertext FROM secret_versions WHERE name = 'openai-key'"
    ).fetchone()
    tampered = bytes(row[0][:-1]) + bytes([row[0][-1] ^ 1])
    proxy.vault.db.execute(
        "UPDATE secret_versions SET ciphertext = ? WHERE name = 'openai-key'", [tampered]
    )
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (503, "seks_vault_error")
    assert flow.request.headers["authorization"] == f"Bearer {token}"


# -- audit rows --------------------------------------------------------------------------------


def test_the_injection_row_is_committed_before_the_key_is_in_the_request(proxy: Proxy) -> None:
    token = proxy.token()
    before = proxy.last_audit_id()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    proxy.run(HttpRequestHeadersHook(flow))
    assert flow.request.headers["authorization"] == f"Bearer {proxy.canary.openai}"
    # Read at once from another connection: no waiting, the row is already durable.
    assert [r["event"] for r in rows_after(proxy.vault.db, before)] == ["request.injected"]
    finish(proxy, flow)


def test_a_completed_request_leaves_two_rows_that_name_but_never_hold_the_token(
    proxy: Proxy,
) -> None:
    token, info = proxy.vault.issue_token(AGENT, "openai")
    proxy.tokens.append(token)
    before = proxy.last_audit_id()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")], path="/v1/models?limit=5")
    sent = send_request(proxy, flow)
    assert sent is not None
    finish(proxy, flow, status=201)
    injected, completed = proxy.audit_since(before, expect=2)
    for row in (injected, completed):
        assert row["token_id"] == info.id
        assert (row["agent"], row["tenant"], row["provider"], row["secret_name"]) == (
            AGENT,
            "default",
            "openai",
            "openai-key",
        )
        assert (row["method"], row["host"], row["path"]) == ("GET", "api.openai.com", "/v1/models")
        assert row["client_ip"] == "127.0.0.1"
        assert row["flow_id"] == flow.id
    assert (injected["event"], injected["decision"]) == ("request.injected", "allow")
    assert (completed["event"], completed["status"]) == ("request.completed", 201)
    assert completed["latency_ms"] >= 0
    assert_nothing_leaks(proxy, flow)


# -- a configured upstream -------------------------------------------------------------------


@UPSTREAM
def test_upstream_setting_reroutes_an_authorized_request(proxy: Proxy) -> None:
    token = proxy.token()
    before = proxy.last_audit_id()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    sent = send_request(proxy, flow)
    assert sent is not None  # the guard accepts the upstream as the approved destination
    assert (sent.host, sent.port) == ("127.0.0.1", UPSTREAM_PORT)
    assert sent.headers["host"] == f"127.0.0.1:{UPSTREAM_PORT}"
    assert sent.headers["authorization"] == f"Bearer {proxy.canary.openai}"
    finish(proxy, flow)
    assert {r["host"] for r in proxy.audit_since(before, expect=2)} == {"api.openai.com"}


@UPSTREAM
@pytest.mark.parametrize(
    ("host", "headers", "expected"),
    [
        ("api.openai.com", [("x-debug", "{t}")], (403, "seks_token_misplaced")),
        ("api.openai.com", [("authorization", "Bearer seks_openai_typo")], None),
        ("evil.example.com", [("authorization", "Bearer {t}")], (403, "seks_host_not_allowed")),
    ],
)
def test_upstream_setting_does_not_reroute_a_refused_request(
    proxy: Proxy, host: str, headers: list[tuple[str, str]], expected: tuple[int, str] | None
) -> None:
    token = proxy.token()
    flow = make_flow(host, [(n, v.format(t=token)) for n, v in headers])
    assert send_request(proxy, flow) is None
    if expected is not None:
        assert refusal(flow) == expected
    assert (flow.request.host, flow.request.port) == (host, 443)
    assert flow.request.host_header == host


@UPSTREAM
def test_upstream_setting_leaves_other_hosts_alone(proxy: Proxy) -> None:
    flow = make_flow("api.anthropic.com", [("x-api-key", proxy.token("anthropic"))])
    sent = send_request(proxy, flow)
    assert sent is not None
    assert (sent.host, sent.port) == ("api.anthropic.com", 443)


# -- what is intercepted -------------------------------------------------------------------------


def client_hello(sni: str | None) -> tls.ClientHello:
    """A real ClientHello, as Python's TLS stack writes it."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    ssl_ctx = ssl.create_default_context()
    if sni is None:
        ssl_ctx.check_hostname = False
    conn = ssl_ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    record = outgoing.read()
    assert record[0] == 0x16  # handshake record
    assert record[5] == 0x01  # client hello
    return tls.ClientHello(record[9:])  # without the record and handshake headers


def hello_data(proxy: Proxy, sni: str | None, connect: str | None) -> tls.ClientHelloData:
    conn_ctx = context.Context(tflow.tclient_conn(), proxy.tctx.options)
    if connect is not None:
        conn_ctx.server.address = (connect, 443)
    data = tls.ClientHelloData(conn_ctx, client_hello(sni))
    assert data.client_hello.sni == sni
    return data


@pytest.mark.parametrize(
    ("sni", "connect", "ignored"),
    [
        ("api.openai.com", "api.openai.com", False),
        ("api.github.com", None, False),  # transparent mode: only the SNI is known
        (None, "api.anthropic.com", False),
        # one provider name is enough: the request hooks then refuse the disagreement
        ("evil.example.com", "api.openai.com", False),
        ("api.openai.com", "evil.example.com", False),
        ("example.org", "example.org", True),
        ("evilapi.openai.com", "evilapi.openai.com", True),
        (None, None, True),
    ],
)
def test_only_provider_hosts_are_intercepted_by_default(
    proxy: Proxy, sni: str | None, connect: str | None, ignored: bool
) -> None:
    data = hello_data(proxy, sni, connect)
    proxy.addon.tls_clienthello(data)
    assert data.ignore_connection is ignored


@INTERCEPT_ALL
@pytest.mark.parametrize(("sni", "connect"), [("example.org", "example.org"), (None, None)])
def test_intercept_all_inspects_every_host(proxy: Proxy, sni: str | None, connect: str) -> None:
    data = hello_data(proxy, sni, connect)
    proxy.addon.tls_clienthello(data)
    assert data.ignore_connection is False


# -- nothing left behind ---------------------------------------------------------------------


def test_a_full_session_leaves_no_real_key_in_flows_logs_or_audit(
    proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    openai, anthropic = proxy.token(), proxy.token("anthropic")
    flows = [
        make_flow(headers=[("authorization", f"Bearer {openai}")]),
        make_flow("api.anthropic.com", [("x-api-key", anthropic)], path="/v1/messages"),
        make_flow("evil.example.com", [("authorization", f"Bearer {openai}")]),
        make_flow(headers=[("authorization", f"Bearer {openai}")], path=f"/v1?k={openai}"),
        make_flow(headers=[("authorization", f"Bearer {mint('openai')}")]),
    ]
    for flow in flows:
        roundtrip(proxy, flow)
    errored = make_flow(headers=[("authorization", f"Bearer {openai}")])
    send_request(proxy, errored)
    fail_upstream(proxy, errored)
    flows.append(errored)

    assert [f.response.status_code if f.response else None for f in flows] == [
        200,
        200,
        403,
        403,
        401,
        None,
    ]
    assert any("injected openai" in r.getMessage() for r in caplog.records)
    proxy.settle()  # every audit row committed
    assert len(proxy.audit_since(0)) > 0
    for flow in flows:
        assert_nothing_leaks(proxy, flow, caplog.text)
        assert openai not in caplog.text
        assert anthropic not in caplog.text


def test_shutdown_puts_the_fake_token_back_into_requests_in_flight(proxy: Proxy) -> None:
    # mitmproxy's Save.done() writes the flows still in flight at shutdown (shared notes).
    token = proxy.token()
    flow = make_flow(headers=[("authorization", f"Bearer {token}")])
    assert send_request(proxy, flow) is not None  # sent; no response yet
    proxy.addon.done()
    assert flow.request.headers["authorization"] == f"Bearer {token}"


# -- credentials in the query, the path and Basic auth ------------------------------------------


def _secret(proxy: Proxy, provider: str, value: str) -> str:
    proxy.vault.add_secret(f"{provider}-key", provider, value)
    return proxy.token(provider)


def test_gemini_query_key_is_swapped_and_the_url_put_back(proxy: Proxy, canary: str) -> None:
    token = _secret(proxy, "gemini", "AIza/canary+" + canary)
    host = "generativelanguage.googleapis.com"
    path = f"/v1/models/m:generateContent?alt=sse&key={token}"
    flow = make_flow(host, path=path)
    proxy.run(HttpRequestHeadersHook(flow))
    assert flow.response is None
    real = f"AIza%2Fcanary%2B{canary}"
    assert flow.request.path == f"/v1/models/m:generateContent?alt=sse&key={real}"
    finish(proxy, flow)
    assert flow.request.path == path
    audit = repr(proxy.audit_since(0, expect=2))
    assert canary not in audit and token not in audit and "alt=sse" not in audit


def test_telegram_token_in_the_path_is_swapped_and_put_back(proxy: Proxy) -> None:
    real = "123456789:AAF-canary_" + secrets.token_hex(8)
    token = _secret(proxy, "telegram", real)
    flow = make_flow("api.telegram.org", path=f"/bot{token}/getMe?x=1")
    sent = send_request(proxy, flow)
    assert sent is not None
    assert flow.request.path == f"/bot{real}/getMe?x=1"
    fail_upstream(proxy, flow)
    assert flow.request.path == f"/bot{token}/getMe?x=1"
    assert real not in repr(flow.get_state())
    assert real not in repr(proxy.audit_since(0, expect=2))


def test_git_basic_credentials_carry_the_real_token_as_password(proxy: Proxy) -> None:
    token = proxy.token("github")
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    flow = make_flow("github.com", [("Authorization", f"Basic {basic}")], path="/o/r.git/info/refs")
    sent = send_request(proxy, flow)
    assert sent is not None
    user_pass = base64.b64decode(sent.headers["authorization"].split()[1]).decode()
    assert user_pass == f"x-access-token:{proxy.canary.github}"
    finish(proxy, flow)
    assert flow.request.headers["authorization"] == f"Basic {basic}"
    assert_nothing_leaks(proxy, flow)


@pytest.mark.parametrize(
    ("provider", "host", "headers", "path"),
    [
        ("gemini", "generativelanguage.googleapis.com", [], "/v1/models?api_key={t}"),
        ("gemini", "generativelanguage.googleapis.com", [], "/v1/{t}/models"),
        ("telegram", "api.telegram.org", [], "/bot/{t}/getMe"),
        ("telegram", "api.telegram.org", [], "/getMe?token={t}"),
        ("telegram", "api.telegram.org", [("authorization", "Bearer {t}")], "/getMe"),
        ("github", "github.com", [("authorization", "Basic {b:{t}:x}")], "/o/r.git"),
        ("openai", "api.openai.com", [("authorization", "Basic {b:u:{t}}")], "/v1/models"),
        ("discord", "discord.com", [("authorization", "Bearer {t}")], "/api/v10/users/@me"),
    ],
)
def test_tokens_outside_a_provider_s_places_are_refused(
    proxy: Proxy, provider: str, host: str, headers: list[tuple[str, str]], path: str
) -> None:
    token = (
        _secret(proxy, provider, "real-" + secrets.token_hex(8))
        if provider
        in (
            "gemini",
            "telegram",
            "discord",
        )
        else proxy.token(provider)
    )

    def fill(text: str) -> str:
        text = text.replace("{t}", token)
        if text.startswith("Basic {b:"):
            text = "Basic " + base64.b64encode(text[9:-1].encode()).decode()
        return text

    flow = make_flow(host, [(n, fill(v)) for n, v in headers], path=fill(path))
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_token_misplaced")


def test_discord_token_goes_only_to_paths_under_api(proxy: Proxy) -> None:
    token = _secret(proxy, "discord", "real-" + secrets.token_hex(8))
    flow = make_flow("discord.com", [("authorization", f"Bot {token}")], path="/apix/users")
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_host_not_allowed")
    flow = make_flow("discord.com", [("authorization", f"Bot {token}")], path="/api/v10/users")
    assert roundtrip(proxy, flow) is not None


def test_a_token_of_a_provider_no_longer_configured_is_refused_not_an_internal_error(
    proxy: Proxy,
) -> None:
    token = _secret(proxy, "acme", "real-" + secrets.token_hex(8))  # e.g. removed from config
    flow = make_flow("api.acme.example", [("authorization", f"Bearer {token}")])
    assert roundtrip(proxy, flow) is None
    assert refusal(flow) == (403, "seks_host_not_allowed")


# -- a response the scrubber fails on -----------------------------------------------------------
# mitmproxy logs an exception raised in an addon's hook and carries on with the flow, so an
# internal error in the scrubber would otherwise hand the agent the upstream's response as it
# came, real credential included. The hooks run through mitmproxy's own addon manager here,
# which swallows exceptions the same way.


def run_with_scrubber(proxy: Proxy, scrubber: ResponseScrubber, hook: object) -> None:
    """One hook on the SEKS addon, then on the scrubber: their order in `seks proxy`."""
    loop = proxy.tctx.master.event_loop
    for addon in (proxy.addon, scrubber):
        loop.run_until_complete(proxy.tctx.master.addons.invoke_addon(addon, hook))


def upstream_answer(secret: str) -> http.Response:
    """An upstream echoing the real key in a header and in the body."""
    return http.Response.make(
        200,
        json.dumps({"echo": secret}).encode(),
        {"content-type": "application/json", "x-echo": secret},
    )


def injected_with_echo(proxy: Proxy) -> http.HTTPFlow:
    flow = make_flow(headers=[("authorization", f"Bearer {proxy.token()}")])
    assert send_request(proxy, flow) is not None
    flow.response = upstream_answer(proxy.canary.openai)
    return flow


def assert_refused_whole(flow: http.HTTPFlow, body: bytes, secret: str) -> None:
    assert flow.response is not None
    assert flow.response.status_code == 502
    assert secret not in repr(flow.response.headers.fields)
    error = json.loads(body)["error"]
    assert error["type"] == "seks_upstream_error"
    assert error["message"] == (
        "SEKS: the response could not be scanned (internal error); not passed on"
    )
    assert secret.encode() not in body


def test_an_error_while_planning_refuses_the_whole_response(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scrubber = ResponseScrubber(proxy.addon)
    flow = injected_with_echo(proxy)
    before = proxy.last_audit_id()

    def broken(*args: object) -> None:
        raise RuntimeError("scanner exploded")

    monkeypatch.setattr(responses, "plan_response", broken)
    with caplog.at_level(logging.ERROR):
        run_with_scrubber(proxy, scrubber, HttpResponseHeadersHook(flow))

    assert flow.response is not None
    stream = flow.response.stream
    assert callable(stream)
    # The upstream's body still arrives; none of it goes on, only the refusal.
    sent = [stream(json.dumps({"echo": proxy.canary.openai}).encode()), stream(b"")]
    body = b"".join(part for part in sent if isinstance(part, bytes))
    assert_refused_whole(flow, body, proxy.canary.openai)
    assert "internal error while scanning a response; refused" in caplog.text
    assert "Addon error" not in caplog.text  # handled, not left to mitmproxy
    run_with_scrubber(proxy, scrubber, HttpResponseHook(flow))
    refused = [r for r in proxy.audit_since(before, expect=2) if r["event"] == "response.refused"]
    assert [(r["decision"], r["status"], r["token_id"] is not None) for r in refused] == [
        ("deny", 502, True)
    ]


def test_an_error_while_scrubbing_a_buffered_body_refuses_the_whole_response(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scrubber = ResponseScrubber(proxy.addon)
    flow = injected_with_echo(proxy)
    run_with_scrubber(proxy, scrubber, HttpResponseHeadersHook(flow))
    assert flow.response is not None and not flow.response.stream  # small: buffered

    def broken(*args: object) -> None:
        raise RuntimeError("scanner exploded")

    monkeypatch.setattr(responses.ScrubPlan, "scrub_buffered_body", broken)
    with caplog.at_level(logging.ERROR):
        run_with_scrubber(proxy, scrubber, HttpResponseHook(flow))

    assert_refused_whole(flow, flow.response.content or b"", proxy.canary.openai)
    assert flow.response.headers["content-length"] == str(len(flow.response.content or b""))
    assert "Addon error" not in caplog.text


def test_an_error_while_scanning_a_websocket_message_drops_it(
    proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    scrubber = ResponseScrubber(proxy.addon)
    flow = tflow.twebsocketflow()
    assert flow.websocket is not None
    message = flow.websocket.messages[-1]
    message.from_client = False
    message.content = proxy.canary.openai.encode()
    scrubber._websockets[flow.id] = (object(), None)  # type: ignore[assignment]

    def broken(*args: object) -> None:
        raise RuntimeError("scanner exploded")

    monkeypatch.setattr(responses, "scrub_message", broken)
    scrubber.websocket_message(flow)

    assert message.dropped


class ExplodingScrubber:
    def feed(self, data: bytes) -> bytes:
        raise RuntimeError("scanner exploded")

    def finish(self) -> bytes:
        raise AssertionError("nothing is released after a failure")


def test_an_error_while_scanning_a_streamed_body_cuts_it_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = StreamBody(ExplodingScrubber(), decode=None)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        first = body(b"data: sk-the-real-key\n\n")
        later = body(b"data: more\n\n")
    assert first == [] and later == []
    assert body.broken
    assert "internal error while scanning a streamed response; cut off" in caplog.text
