"""Presigned URLs and signed-chunked uploads through the real proxy, checked by an upstream
that verifies them as S3 does. moto's server cannot: with signature checking on it answers
presigned URLs 500, and of a signed-chunked body it checks only the seed signature.

The verifier below is written from AWS's SigV4 documentation, apart from SEKS's code and from
botocore's signer, so the two cannot share a mistake. An agent signs with boto3 (or as the
Java/Go/.NET SDKs do, chunk by chunk) with its fake key and sends through the proxy; the
upstream must find everything signed with the real key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
import yaml
from harness import AGENT, ProxyProcess, Seks, TestCA, find_leaks, run_agent, running_proxy
from upstreams import SeenRequest, Upstream, _Handler

REAL_KEY_ID = "AKIA" + secrets.token_hex(8).upper()
REAL_SECRET = "presign/" + secrets.token_hex(16)
REAL_SESSION = "presignSession" + secrets.token_hex(24)


def _key(date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + REAL_SECRET).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _sign(key: bytes, *lines: str) -> str:
    return hmac.new(key, "\n".join(lines).encode(), hashlib.sha256).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs))


def verify_presigned(method: str, target: str, host: str) -> str | None:
    """None if ``target`` is a valid, unexpired SigV4 presigned URL for the real key; else why."""
    path, _, query = target.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return "not a SigV4 presigned URL"
    key_id, date, region, service, _ = params["X-Amz-Credential"].split("/")
    if key_id != REAL_KEY_ID or params.get("X-Amz-Security-Token") != REAL_SESSION:
        return "not the real access key id and session token"
    signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if signed_at.timestamp() + int(params["X-Amz-Expires"]) <= time.time():
        return "expired"
    if params["X-Amz-SignedHeaders"] != "host":
        return "signed headers other than host"
    query_signed = _canonical_query([(k, v) for k, v in pairs if k != "X-Amz-Signature"])
    canonical = "\n".join(
        [method, path, query_signed, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    expected = _sign(
        _key(date, region, service), "AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
        _sha256(canonical.encode()),
    )  # fmt: skip
    return None if hmac.compare_digest(expected, params["X-Amz-Signature"]) else "bad signature"


def verify_signed_chunks(request: SeenRequest) -> str | None:
    """None if the Authorization header and every chunk signature of a
    STREAMING-AWS4-HMAC-SHA256-PAYLOAD body verify with the real key; else why."""
    auth = request.header("authorization") or ""
    fields = dict(p.strip().partition("=")[::2] for p in auth.split(" ", 1)[1].split(","))
    key_id, date, region, service, _ = fields["Credential"].split("/")
    if key_id != REAL_KEY_ID or request.header("x-amz-security-token") != REAL_SESSION:
        return "not the real access key id and session token"
    names = fields["SignedHeaders"].split(";")
    headers = "".join(f"{n}:{' '.join((request.header(n) or '').split())}\n" for n in names)
    path, _, query = request.path.partition("?")
    canonical = "\n".join(
        [
            request.method, path, _canonical_query(parse_qsl(query)), headers,
            fields["SignedHeaders"], request.header("x-amz-content-sha256") or "",
        ]
    )  # fmt: skip
    stamp = request.header("x-amz-date") or ""
    scope = f"{date}/{region}/{service}/aws4_request"
    key = _key(date, region, service)
    previous = _sign(key, "AWS4-HMAC-SHA256", stamp, scope, _sha256(canonical.encode()))
    if not hmac.compare_digest(previous, fields["Signature"]):
        return "bad seed signature"
    body, chunks = request.body, 0
    while True:
        head, _, body = body.partition(b"\r\n")
        size_hex, _, signature = head.decode().partition(";chunk-signature=")
        data, body = body[: int(size_hex, 16)], body[int(size_hex, 16) + 2 :]
        previous = _sign(
            key, "AWS4-HMAC-SHA256-PAYLOAD", stamp, scope, previous, _sha256(b""), _sha256(data)
        )
        if not hmac.compare_digest(previous, signature):
            return f"bad signature on chunk {chunks}"
        chunks += 1
        if not data:
            return None if not body else "data after the final chunk"


class SignatureCheckingS3(_Handler):
    def respond(self, request: SeenRequest) -> None:
        if request.header("x-amz-content-sha256") == "STREAMING-AWS4-HMAC-SHA256-PAYLOAD":
            problem = verify_signed_chunks(request)
        else:
            problem = verify_presigned(request.method, request.path, request.header("host") or "")
        body = b"verified" if problem is None else problem.encode()
        self.send_response(200 if problem is None else 403)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def s3(test_ca: TestCA) -> Iterator[Upstream]:
    server = Upstream(SignatureCheckingS3, ssl_context=test_ca.server_context())
    yield server
    server.close()


@pytest.fixture(scope="module")
def presign_env(
    tmp_path_factory: pytest.TempPathFactory, s3: Upstream, test_ca: TestCA
) -> Iterator[tuple[Seks, ProxyProcess, dict[str, str]]]:
    seks = Seks(tmp_path_factory.mktemp("seks-presign") / "home")
    seks.run("init")
    real = {
        "access_key_id": REAL_KEY_ID,
        "secret_access_key": REAL_SECRET,
        "session_token": REAL_SESSION,
    }
    seks.run("secret", "add", "aws-main", "--provider", "aws", input=json.dumps(real))
    seks.run("agent", "create", AGENT)
    config = seks.home / "config.yaml"
    aws = {"upstream": s3.url, "upstream_ca": str(test_ca.pem)}
    config.write_text(yaml.safe_dump({"providers": {"aws": aws}}))
    with running_proxy(seks, config) as proxy:
        yield seks, proxy, seks.agent_env(proxy.url)


def fetch(agent_python: Path, env: dict[str, str], call: str) -> tuple[dict[str, Any], str]:
    run = run_agent(agent_python, "aws_agent.py", call, env=env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)[call], run.stdout + run.stderr


def test_a_presigned_url_is_signed_again_with_the_real_key(
    agent_python: Path, presign_env: tuple[Seks, ProxyProcess, dict[str, str]], s3: Upstream
) -> None:
    seks, proxy, env = presign_env
    answer, output = fetch(agent_python, env, "sigv4_presigned_get")
    assert (answer["status"], answer["body"]) == (200, "verified")
    (seen,) = [r for r in s3.requests if "X-Amz-Signature" in r.path]
    assert seen.path.startswith("/presigned%20key%2B1.txt?")  # the agent's key encoding kept
    assert seen.header("host") == "seks-e2e.s3.amazonaws.com"  # as signed: virtual-hosted
    assert env["AWS_ACCESS_KEY_ID"] not in seen.path  # the fake key id did not go upstream
    secrets_ = [REAL_SECRET, REAL_SESSION, REAL_KEY_ID]
    places = {"agent": output.encode(), "proxy": proxy.output(), "CLI": b"".join(seks.transcript)}
    assert find_leaks(secrets_, places) == []


def test_an_expired_presigned_url_is_refused_before_any_upstream(
    agent_python: Path, presign_env: tuple[Seks, ProxyProcess, dict[str, str]], s3: Upstream
) -> None:
    _, _, env = presign_env
    before = len(s3.requests)
    answer, _ = fetch(agent_python, env, "sigv4_presigned_expired")
    assert answer["status"] == 403
    assert "<Code>AccessDenied</Code>" in answer["body"]
    assert "the presigned URL has expired: presign it again" in answer["body"]
    assert len(s3.requests) == before


def test_a_signed_chunked_upload_has_every_chunk_signed_again(
    agent_python: Path, presign_env: tuple[Seks, ProxyProcess, dict[str, str]], s3: Upstream
) -> None:
    _, _, env = presign_env
    answer, _ = fetch(agent_python, env, "signed_chunked_put_only")
    assert (answer["status"], answer["body"]) == (200, "verified")
    (seen,) = [r for r in s3.requests if r.method == "PUT"]
    assert seen.body.count(b";chunk-signature=") == 5  # 4 data chunks and the final one
