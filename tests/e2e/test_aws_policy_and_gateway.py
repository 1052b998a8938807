"""What boto3 (and a plain HTTP client) sees when the proxy refuses an AWS request: an error in
AWS's own protocol, which boto3 raises as a ClientError with a code and a message that says
what to do. The upstream (moto, checking signatures) never sees a refused request.

Also the gateway's S3 shape, ``/api/aws/s3/<region>/<bucket>/<key>`` with a bearer token,
which the proxy signs from scratch (moto checks that signature too)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_upstream import MotoUpstream
from harness import (
    AGENT,
    ProxyProcess,
    Seks,
    curl,
    parse_exports,
    run_agent,
    running_proxy,
    wait_until_expired,
)
from harness import base_env as harness_env

from seks.store.tokens import mint


@pytest.fixture(scope="module")
def aws_seks(tmp_path_factory: pytest.TempPathFactory, moto_http: MotoUpstream) -> Seks:
    cli = Seks(tmp_path_factory.mktemp("seks-aws-refusals") / "home")
    cli.run("init")
    real = {
        "access_key_id": moto_http.access_key_id,
        "secret_access_key": moto_http.secret_access_key,
    }
    cli.run("secret", "add", "aws-main", "--provider", "aws", input=json.dumps(real))
    cli.run(
        "secret",
        "add",
        "aws-s3-only",
        "--provider",
        "aws",
        "--aws-services",
        "s3",
        input=json.dumps(real),
    )
    cli.run("agent", "create", AGENT)
    return cli


@pytest.fixture(scope="module")
def aws_proxy(aws_seks: Seks, moto_http: MotoUpstream) -> Iterator[ProxyProcess]:
    config = aws_seks.home / "config.yaml"
    config.write_text(yaml.safe_dump({"providers": {"aws": {"upstream": moto_http.url}}}))
    with running_proxy(aws_seks, config) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def base_env(aws_seks: Seks, aws_proxy: ProxyProcess) -> dict[str, str]:
    out = aws_seks.run(
        "env", "--agent", AGENT, "--proxy", aws_proxy.url, "--secret", "aws-main"
    ).stdout
    return {**harness_env(aws_seks.home.parent), **parse_exports(out)}


def issue(seks: Seks, *args: str) -> str:
    out = seks.run("token", "issue", "--agent", AGENT, "--provider", "aws", *args).stdout
    return out.strip()


def calls(agent_python: Path, env: dict[str, str], token: str, *names: str) -> dict[str, Any]:
    run = run_agent(agent_python, "aws_agent.py", *names, env={**env, "AWS_ACCESS_KEY_ID": token})
    assert run.returncode == 0, run.stderr
    assert token not in run.stdout.replace(f'"AWS_ACCESS_KEY_ID": "{token}"', "")
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def client_error(report: dict[str, Any], call: str) -> tuple[str, str]:
    assert report[call]["ok"] is False, report[call]
    return report[call]["code"], report[call]["message"]


def requests_seen(moto: MotoUpstream) -> int:
    """moto logs one line per request it answered."""
    assert moto.log is not None
    return moto.log.read_text().count('" ')


def test_an_unknown_token_is_invalid_client_token_id_for_sts_and_access_key_for_s3(
    agent_python: Path, base_env: dict[str, str], moto_http: MotoUpstream
) -> None:
    before = requests_seen(moto_http)
    report = calls(agent_python, base_env, mint("aws"), "sts_identity", "s3_list_buckets")
    assert requests_seen(moto_http) == before
    code, message = client_error(report, "sts_identity")
    assert code == "InvalidClientTokenId"
    assert "SEKS: this token is not known to the SEKS vault" in message
    assert client_error(report, "s3_list_buckets")[0] == "InvalidAccessKeyId"


def test_a_revoked_and_an_expired_token_say_so(
    agent_python: Path, base_env: dict[str, str], aws_seks: Seks
) -> None:
    revoked = issue(aws_seks, "--secret", "aws-main")
    token_id = aws_seks.tokens()[-1]["id"]
    aws_seks.run("token", "revoke", token_id)
    code, message = client_error(
        calls(agent_python, base_env, revoked, "sts_identity"), "sts_identity"
    )
    assert code == "ExpiredToken" and f"token {token_id} was revoked" in message

    expired = issue(aws_seks, "--secret", "aws-main", "--ttl", "1s")
    expired_id = aws_seks.tokens()[-1]["id"]
    wait_until_expired(aws_seks, expired_id)
    code, message = client_error(
        calls(agent_python, base_env, expired, "sts_identity"), "sts_identity"
    )
    assert code == "ExpiredToken" and "expired; ask for a new one" in message


def test_a_region_or_service_outside_the_allow_lists_is_access_denied(
    agent_python: Path, base_env: dict[str, str], aws_seks: Seks
) -> None:
    eu_only = issue(aws_seks, "--secret", "aws-main", "--aws-regions", "eu-west-1")
    code, message = client_error(
        calls(agent_python, base_env, eu_only, "sts_identity"), "sts_identity"
    )
    assert code == "AccessDenied"
    assert "region us-east-1 is outside this token's allow-list (eu-west-1)" in message

    s3_secret = issue(aws_seks, "--secret", "aws-s3-only")
    report = calls(agent_python, base_env, s3_secret, "sts_identity", "s3_list_buckets")
    code, message = client_error(report, "sts_identity")
    assert code == "AccessDenied"
    assert "service sts is outside this secret's allow-list (s3)" in message
    assert report["s3_list_buckets"]["ok"], report  # the same token, inside its list


def test_signatures_the_proxy_cannot_resign_are_refused_with_what_to_do(
    agent_python: Path, base_env: dict[str, str], aws_seks: Seks, moto_http: MotoUpstream
) -> None:
    token = issue(aws_seks, "--secret", "aws-main")
    before = requests_seen(moto_http)
    report = calls(
        agent_python, base_env, token, "sigv2_presigned_get", "sigv4a_put", "event_stream_put"
    )
    assert requests_seen(moto_http) == before
    v2 = report["sigv2_presigned_get"]
    assert v2["signed_with"] and v2["status"] == 400
    assert "<Code>InvalidRequest</Code>" in v2["body"]
    assert "signature_version=&apos;s3v4&apos;" in v2["body"] or "s3v4" in v2["body"]
    assert "SigV4a signatures are refused" in report["sigv4a_put"]["body"]
    assert "event-stream bodies cannot be re-signed" in report["event_stream_put"]["body"]
    for call in ("sigv4a_put", "event_stream_put"):
        assert report[call]["status"] == 400


def test_the_gateways_s3_shape_puts_gets_lists_and_deletes(
    aws_seks: Seks, aws_proxy: ProxyProcess, tmp_path: Path, moto_http: MotoUpstream
) -> None:
    token = issue(aws_seks, "--secret", "aws-main")
    base = f"{aws_proxy.gateway_url}/api/aws/s3/us-east-1/seks-gw"
    env = harness_env(tmp_path)
    bearer = f"Authorization: Bearer {token}"

    def call(method: str, path: str = "", *args: str, headers: tuple[str, ...] = ()) -> Any:
        return curl("-X", method, *args, f"{base}{path}", headers=(bearer, *headers), env=env)

    assert call("PUT").status == 200  # CreateBucket
    body = b"through the gateway " * 1000
    (tmp_path / "up.bin").write_bytes(body)
    put = call(
        "PUT",
        "/dir/a%20b.bin",
        "--data-binary",
        f"@{tmp_path / 'up.bin'}",
        # curl's default form content type makes moto's werkzeug read the body as a form.
        headers=("Content-Type: application/octet-stream",),
    )
    assert put.status == 200, put.body
    got = call("GET", "/dir/a%20b.bin")
    assert (got.status, got.body) == (200, body)
    listed = call("GET", "", "-G", "--data-urlencode", "prefix=dir/")
    assert listed.status == 200 and b"<Key>dir/a b.bin</Key>" in listed.body
    assert call("DELETE", "/dir/a%20b.bin").status == 204
    assert b"<Key>" not in call("GET").body

    refused = curl("-X", "GET", f"{base}/x", headers=(f"x-api-key: {token}",), env=env)
    assert refused.status == 403 and b"Authorization: Bearer" in refused.body
    unknown = curl(f"{aws_proxy.gateway_url}/api/aws/sqs/us-east-1/q", headers=(bearer,), env=env)
    assert unknown.status == 404
    assert b"serves AWS as /api/aws/s3/<region>/<bucket>[/<key>] only" in unknown.body
    assert token.encode() not in refused.body + unknown.body
