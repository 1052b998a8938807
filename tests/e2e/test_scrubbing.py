"""An upstream that takes the real key and hands it straight back, in every encoding, in every
place: the agent must see it nowhere, see every other byte as sent, and keep its streams and
its keep-alive connections working.

The echo upstream (echo_upstream.py) stands in for api.openai.com. Its content builders tell
the test exactly which bytes were secret and which literal, so each check is byte by byte
(scrub_checks.assert_masked); the leak search (scrub_checks.find_all_leaks) is independent of
the scrubber's own list of encodings.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from functools import reduce
from operator import add

import pytest
from echo_upstream import (
    TAIL,
    EchoUpstream,
    body_echo,
    completion_echo,
    header_echoes,
    lit,
    reason_echo,
    sec,
    secret_forms,
    sse_echo,
    ws_echoes,
)
from harness import (
    curl,
    run_agent,
    running_proxy,
    token_id_of,
    write_config,
)
from scrub_checks import (
    assert_masked,
    body_of,
    find_all_leaks,
    first_line_then_rest,
    header_values,
    leniently_decoded,
    token_rows,
)

FIRST_EVENT_TIMEOUT = 30  # seconds; shorter than the upstream's own wait at the gate


@pytest.fixture(scope="module")
def echo(test_ca, canaries):
    server = EchoUpstream(
        ssl_context=test_ca.server_context(),
        real_key=canaries["openai"],
        other_keys=[canaries["anthropic"]],
    )
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_echo(echo):
    echo.clear()


@pytest.fixture(scope="module")
def echo_proxy(seks, echo, anthropic_upstream, test_ca):
    config = write_config(
        seks, echo, anthropic_upstream, test_ca, name="echo.yaml", log_level="debug"
    )
    with running_proxy(seks, config) as p:
        yield p


@pytest.fixture(scope="module")
def env(seks, echo_proxy):
    return seks.agent_env(echo_proxy.url)


@pytest.fixture
def own_token(seks, env):
    """The agent's environment with a fresh token, and that token's id for the audit."""
    before = seks.tokens()
    token = seks.issue("openai")
    return {**env, "OPENAI_API_KEY": token}, token_id_of(seks, before)


@pytest.fixture
def key(canaries):
    return canaries["openai"]


def fetch(agent_python, env, canaries, *paths):
    """The agent's httpx responses, one connection; its whole output checked for leaks."""
    run = run_agent(agent_python, "scrub_fetch.py", *paths, env=env)
    responses = run.report["responses"]
    seen = {"agent output": (run.stdout + run.stderr).encode()}
    seen |= {f"body {i}": body_of(r) for i, r in enumerate(responses)}
    assert find_all_leaks(canaries.values(), seen) == []
    return responses


def assert_one_connection(responses, echo):
    """Every response came on the agent's one connection, and the proxy used one upstream
    connection for them all: the framing of each response stayed valid."""
    assert len({r["local_port"] for r in responses}) == 1, responses
    assert len({port for _, port in echo.peers}) == 1, echo.peers


def public_echo(key):
    return lit(b"public: ") + sec(key.encode())


# --- the real openai SDK --------------------------------------------------------------------


def test_openai_sdk_gets_the_key_masked_in_headers_and_json_body(
    agent_python, env, echo, canaries, key
):
    run = run_agent(agent_python, "scrub_openai.py", "chat", env=env)
    report = run.report

    assert report["status"] == 200
    assert_masked(report["text"], completion_echo(key), "JSON body")
    # The SDK parsed the masked JSON: the masks kept it valid.
    assert report["content"] == json.loads(report["text"])["choices"][0]["message"]["content"]
    for name, sent in header_echoes(key):
        (value,) = header_values(report, name)
        assert_masked(value, sent, f"header {name}")
    assert find_all_leaks(canaries.values(), {"agent": (run.stdout + run.stderr).encode()}) == []
    (seen,) = echo.requests
    assert seen.header("Authorization") == f"Bearer {key}"  # the upstream did get the key


def test_openai_sdk_stream_with_the_key_cut_at_every_offset(agent_python, env, canaries, key):
    run = run_agent(agent_python, "scrub_openai.py", "split", env=env)
    report = run.report

    contents = report["contents"]
    assert len(contents) == len(key)  # one chunk per cut, then the finishing chunk
    for k, content in enumerate(contents[:-1], start=1):
        prefix = f"{k}:"
        assert content.startswith(prefix), content
        assert len(content) == len(prefix + key)
        assert content[len(prefix) :] != key
    assert report["finish_reason"] == "stop"
    assert find_all_leaks(canaries.values(), {"agent": (run.stdout + run.stderr).encode()}) == []


# --- httpx: every encoding, every place, every framing --------------------------------------


def test_sse_cut_at_every_offset_of_every_encoding_then_the_connection_is_reused(
    agent_python, env, echo, canaries, key
):
    sse, tail = fetch(agent_python, env, canaries, "/echo/sse", "/echo/tail")

    assert sse["status"] == 200
    assert_masked(body_of(sse), reduce(add, sse_echo(key)), "SSE stream")
    assert body_of(tail) == TAIL
    assert_one_connection([sse, tail], echo)


FRAMINGS = ("length", "chunked", "large")  # buffered; streamed; streamed with Content-Length


@pytest.mark.parametrize("encoding", ["identity", "gzip", "br", "deflate", "zstd"])
def test_bodies_in_every_framing_are_masked_and_passed_on_decoded(
    agent_python, env, echo, canaries, key, encoding
):
    paths = [f"/echo/body?framing={f}&encoding={encoding}" for f in FRAMINGS]
    *bodies, tail = fetch(agent_python, env, canaries, *paths, "/echo/tail")

    for framing, response in zip(FRAMINGS, bodies, strict=True):
        sent = body_echo(key, [canaries["anthropic"]], large=framing == "large")
        assert response["status"] == 200
        assert header_values(response, "content-encoding") == []
        assert_masked(body_of(response), sent, f"{encoding} body, {framing}")
        if encoding == "identity" and framing != "chunked":  # the declared length holds
            assert header_values(response, "content-length") == [str(len(sent.data))]
    assert body_of(tail) == TAIL
    assert_one_connection([*bodies, tail], echo)
    # The proxy asked for identity; this upstream compressed anyway.
    assert {r.header("Accept-Encoding") for r in echo.requests} == {"identity"}


def test_status_reason_phrase_is_masked(agent_python, env, echo, canaries, key):
    reason, tail = fetch(agent_python, env, canaries, "/echo/reason", "/echo/tail")

    assert reason["status"] == 200
    assert_masked(reason["reason"], reason_echo(key), "reason phrase")
    assert body_of(reason) == body_of(tail) == TAIL
    assert_one_connection([reason, tail], echo)


@pytest.mark.parametrize(
    "path", ["/echo/sse", "/echo/body?framing=chunked&encoding=gzip", "/echo/body?framing=large"]
)
def test_over_http2_to_the_agent_streams_and_bodies_are_masked(env, canaries, key, path):
    result = curl(
        "--http2",
        "https://api.openai.com" + path,
        headers=(f"Authorization: Bearer {env['OPENAI_API_KEY']}",),
        env=env,
    )

    assert result.raw.startswith(b"HTTP/2 200")
    assert "content-encoding" not in result.headers
    if path == "/echo/sse":
        sent = reduce(add, sse_echo(key))
    else:
        sent = body_echo(key, [canaries["anthropic"]], large="large" in path)
    assert_masked(result.body, sent, f"{path} over HTTP/2")
    assert find_all_leaks(canaries.values(), {"curl": result.raw}) == []


def test_unknown_content_encoding_gets_502_and_no_upstream_bytes(
    agent_python, own_token, echo, seks, canaries
):
    env, token_id = own_token
    refused, tail = fetch(
        agent_python, env, canaries, "/echo/body?framing=length&encoding=x-custom", "/echo/tail"
    )

    assert refused["status"] == 502
    error = json.loads(body_of(refused))["error"]
    assert error["type"] == error["code"] == "seks_upstream_error"
    assert "x-custom" in error["message"]
    assert b"echo" not in body_of(refused)  # nothing of the upstream's body
    assert header_values(refused, "content-encoding") == []
    assert body_of(tail) == TAIL  # the connection still works
    rows = token_rows(seks, token_id, "request.completed", count=2)
    assert sorted((r["path"], r["status"]) for r in rows) == [
        ("/echo/body", 502),
        ("/echo/tail", 200),
    ]
    # The refusal is SEKS's, and the audit says so apart from the upstream's own statuses.
    (refusal,) = token_rows(seks, token_id, "response.refused", count=1)
    assert (refusal["decision"], refusal["reason"], refusal["status"]) == (
        "deny",
        "upstream_error",
        502,
    )
    assert "x-custom" in json.loads(refusal["detail"])["message"]


@pytest.mark.parametrize(
    ("encoding", "framing"),
    [
        ("br", "length"),
        ("gzip", "length"),
        ("br", "chunked"),
        ("gzip", "chunked"),
    ],
)
def test_a_cut_compressed_body_never_reaches_the_agent_unscanned(
    agent_python, env, canaries, encoding, framing
):
    cut = 8 if encoding == "gzip" else 3  # gzip: its trailer; br: the end of its last block
    path = f"/echo/body?framing={framing}&encoding={encoding}&truncate={cut}"
    (response,) = fetch(agent_python, env, canaries, path)

    body = body_of(response)
    places = {"body": body, "body, decoded by the agent": leniently_decoded(body, encoding)}
    assert find_all_leaks(canaries.values(), places) == []


# --- WebSocket ------------------------------------------------------------------------------


def test_websocket_server_messages_are_masked_and_client_messages_pass(
    agent_python, env, echo, canaries, key
):
    run = run_agent(agent_python, "scrub_ws.py", env=env)
    report = run.report

    text, binary = ws_echoes(key)
    first, second, third = report["messages"]
    assert_masked(first["text"], text, "WebSocket text message")
    assert_masked(base64.b64decode(second["binary"]), binary, "WebSocket binary message")
    assert third == {"text": "you said: hello from the agent"}
    assert echo.ws_received == ["hello from the agent"]  # client → server, unchanged
    (handshake,) = [v for k, v in report["headers"] if k.lower() == "x-echo-ws"]
    assert_masked(handshake, lit(b"<") + sec(key.encode()) + lit(b">"), "101 header")
    places = {
        "agent": (run.stdout + run.stderr).encode(),
        "binary": base64.b64decode(second["binary"]),
    }
    assert find_all_leaks(canaries.values(), places) == []


# --- no delay -------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_event_one_reaches_the_agent_before_the_upstream_sends_event_two(
    agent_python, env, echo, key, encoding
):
    """The upstream holds event 2 back until the agent has printed event 1: a proxy that
    buffers the stream (or holds back a whole event) never lets event 1 through in time."""
    first, rest, stderr, code = first_line_then_rest(
        agent_python,
        ["scrub_openai.py", "gate", encoding],
        env,
        release=echo.gate.set,  # now, and only now, the upstream may send event 2
        timeout=FIRST_EVENT_TIMEOUT,
    )

    assert first is not None, f"event 1 did not reach the agent before event 2 was sent\n{stderr}"
    content, finish = json.loads(first)
    assert content.startswith("first ") and len(content) == len("first " + key)
    assert key not in content
    assert finish is None
    assert [json.loads(line) for line in rest] == [["second", None], [None, "stop"]]
    assert code == 0, stderr


# --- the audit trail and the default scope --------------------------------------------------


def expected_redactions(canaries):
    """Per audited message of the audit test's calls: (secret, encoding, place) → count."""
    openai, other = canaries["openai"], canaries["anthropic"]
    text, every = secret_forms(openai, text_only=True), secret_forms(openai)

    def found(secret, forms, where):
        # Basic auth's base64 of "user:<key>" is found by a base64 alignment.
        return Counter((secret, "base64" if n == "basic" else n, where) for n, _ in forms)

    return [
        found("openai-main", text, "header")  # chat: headers, and body (one more escape)
        + found("openai-main", [*text, ("json-unicode", b"")], "body"),
        found("openai-main", every, "body")
        + found("anthropic-main", secret_forms(other)[:2], "body"),
        found("openai-main", [("raw", b"")], "header"),  # the WebSocket handshake
        found("openai-main", text, "ws"),  # the text message
        found("openai-main", every, "ws"),  # the binary message
    ]


def test_every_redaction_is_audited_by_name_encoding_and_place_never_value(
    agent_python, own_token, seks, canaries
):
    env, token_id = own_token
    expected = expected_redactions(canaries)

    assert run_agent(agent_python, "scrub_openai.py", "chat", env=env).report["status"] == 200
    fetch(agent_python, env, canaries, "/echo/body?framing=chunked")
    assert run_agent(agent_python, "scrub_ws.py", env=env).returncode == 0

    # One row per secret, encoding and place of each response or message.
    count = sum(len(c) for c in expected)
    rows = token_rows(seks, token_id, "response.redacted", count=count)
    assert len(rows) == count
    found: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        detail = json.loads(row["detail"])
        found[(row["secret_name"], detail["encoding"], detail["where"])] += detail["count"]
    assert found == sum(expected, Counter())
    assert {(r["agent"], r["provider"], r["host"]) for r in rows} == {
        ("agent-1", "openai", "api.openai.com")
    }
    assert find_all_leaks(canaries.values(), {"audit": json.dumps(rows).encode()}) == []


def test_without_an_injected_credential_the_response_passes_unchanged(agent_python, env, echo, key):
    run = run_agent(agent_python, "scrub_fetch.py", "--no-auth", "/public/echo", env=env)
    (response,) = run.report["responses"]

    # `scrub: injected` (the default): nothing went out, so nothing is taken out.
    assert body_of(response) == public_echo(key).data
    (seen,) = echo.requests
    assert seen.header("Authorization") is None
    assert seen.header("Accept-Encoding") != "identity"


def test_with_scrub_all_a_response_without_an_injected_credential_is_scrubbed(
    agent_python, seks, echo, anthropic_upstream, test_ca, canaries, key
):
    config = write_config(
        seks, echo, anthropic_upstream, test_ca, name="scrub-all.yaml", scrub="all"
    )
    with running_proxy(seks, config) as proxy:
        responses = fetch(
            agent_python, seks.agent_env(proxy.url), canaries, "--no-auth", "/public/echo"
        )

    assert_masked(body_of(responses[0]), public_echo(key), "public body")
    (seen,) = echo.requests
    assert seen.header("Authorization") is None
    assert seen.header("Accept-Encoding") == "identity"
    assert find_all_leaks(canaries.values(), {"proxy output": proxy.output()}) == []


def test_the_key_is_in_no_audit_row_and_no_proxy_output(
    agent_python, env, seks, echo_proxy, canaries
):
    # Runs last in the module: everything above went through this proxy at debug level.
    fetch(agent_python, env, canaries, "/echo/body?framing=length", "/echo/sse")
    audit = seks.run("audit", "tail", "-n", "100000", "--json").stdout.encode()
    places = {"proxy output": echo_proxy.output(), "audit": audit}

    assert find_all_leaks(canaries.values(), places) == []
    assert b"redacted" in echo_proxy.output()  # the console says that it scrubbed, not what
