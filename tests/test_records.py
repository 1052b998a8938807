"""What the audit says about a flow: keyed hashes for the token and query, never the values."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.test import tflow, tutils

from seks.addon.records import audit_event, response_bytes, safe_path
from seks.store import MasterKey
from seks.store.audit_chain import AuditKeys
from seks.store.tokens import mint


def flow_for(path: str, response: http.Response | None = None) -> http.HTTPFlow:
    flow = tflow.tflow(req=tutils.treq(host="api.openai.com", path=path.encode()))
    flow.response = response
    return flow


def test_the_query_string_and_token_are_stored_only_as_keyed_hashes() -> None:
    keys = AuditKeys(MasterKey.generate().derive("audit"))
    token = mint("openai")
    flow = flow_for(f"/v1/models/{token}?key=sk-live-123&limit=5")

    event = audit_event(flow, "request.denied", None, keys=keys, token=token, decision="deny")

    assert event.query_hash == keys.search_hash("key=sk-live-123&limit=5")
    assert event.token_hash == keys.search_hash(token)
    assert event.path == "/v1/models/seks_…" == safe_path(flow)
    assert "sk-live-123" not in repr(event) and token not in repr(event)


def test_without_keys_or_a_query_nothing_is_hashed() -> None:
    keys = AuditKeys(MasterKey.generate().derive("audit"))

    plain = audit_event(flow_for("/v1/models"), "request.injected", None, keys=keys)
    keyless = audit_event(flow_for("/v1/models?x=1"), "request.injected", None, token="t")

    assert (plain.query_hash, plain.token_hash) == (None, None)
    assert (keyless.query_hash, keyless.token_hash) == (None, None)


def test_bytes_is_the_body_the_agent_got_when_it_is_known() -> None:
    buffered = tutils.tresp(content=b"x" * 123)
    streamed = tutils.tresp(content=None)
    streamed.headers["content-length"] = "4567"
    chunked = tutils.tresp(content=None)
    del chunked.headers["content-length"]

    assert response_bytes(flow_for("/", buffered)) == 123
    assert response_bytes(flow_for("/", streamed)) == 4567
    assert response_bytes(flow_for("/", chunked)) is None
    assert response_bytes(flow_for("/")) is None
    assert audit_event(flow_for("/", buffered), "request.completed", None).bytes == 123
