"""boto3 through the real `seks proxy` with fake credentials, against moto's server checking
every signature: the proxy re-signs each request with the real key, which the agent never sees.

Runs twice: moto over plain HTTP (the `upstream: http://127.0.0.1:…` a local test server uses)
and over HTTPS with a test CA (where boto3 sends its uploads aws-chunked with a trailer).
"""

from __future__ import annotations

import json
import os
import subprocess
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
    files_under,
    find_leaks,
    run_agent,
    running_proxy,
)

from seks.home import Home
from seks.store.aws_credentials import AwsCredentials
from seks.store.vault import Vault


@pytest.fixture(scope="module", params=["http", "https"])
def moto(request: pytest.FixtureRequest) -> MotoUpstream:
    return request.getfixturevalue(f"moto_{request.param}")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def aws_seks(tmp_path_factory: pytest.TempPathFactory, moto: MotoUpstream) -> Seks:
    cli = Seks(tmp_path_factory.mktemp("seks-aws") / "home")
    cli.run("init")
    secret = {"access_key_id": moto.access_key_id, "secret_access_key": moto.secret_access_key}
    cli.run("secret", "add", "aws-main", "--provider", "aws", input=json.dumps(secret))
    cli.run("agent", "create", AGENT)
    return cli


@pytest.fixture(scope="module")
def aws_proxy(aws_seks: Seks, moto: MotoUpstream) -> Iterator[ProxyProcess]:
    settings: dict[str, Any] = {"upstream": moto.url}
    if moto.ca_pem is not None:
        settings["upstream_ca"] = str(moto.ca_pem)
    config = aws_seks.home / "config.yaml"
    config.write_text(yaml.safe_dump({"log_level": "debug", "providers": {"aws": settings}}))
    with running_proxy(aws_seks, config) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def aws_env(aws_seks: Seks, aws_proxy: ProxyProcess) -> dict[str, str]:
    return aws_seks.agent_env(aws_proxy.url)


def agent(agent_python: Path, env: dict[str, str], *calls: str, **extra: str) -> dict[str, Any]:
    run = run_agent(agent_python, "aws_agent.py", *calls, env={**env, **extra})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def test_seks_env_gives_boto3_a_fake_key_pair_and_the_ca(
    aws_seks: Seks, aws_env: dict[str, str], moto: MotoUpstream
) -> None:
    assert aws_env["AWS_ACCESS_KEY_ID"].startswith("seks_aws_")
    assert aws_env["AWS_SECRET_ACCESS_KEY"] == "seks-placeholder-secret-key-not-a-credential"
    assert aws_seks.ca_path().read_text().strip() in Path(aws_env["AWS_CA_BUNDLE"]).read_text()
    assert "AWS_REGION" not in aws_env  # the secret names no region: the agent's own stays
    real = [moto.secret_access_key, moto.access_key_id]
    assert find_leaks(real, {"seks env": repr(aws_env).encode()}) == []


def test_s3_objects_with_awkward_keys_listing_and_delete(
    agent_python: Path, aws_env: dict[str, str], aws_seks: Seks, moto: MotoUpstream
) -> None:
    report = agent(agent_python, aws_env, "s3_roundtrip")
    call = report["s3_roundtrip"]
    assert call["ok"], call
    assert call["bodies"] == {k: f"body of {k}" for k in call["bodies"]}
    assert len(call["bodies"]) == 6
    assert call["listed"] == ["dir/a.txt", "dir/b.txt"]
    assert call["prefixes"] == ["dir/sub/"]
    assert "plus+sign.txt" not in call["after_delete"]
    assert "ünï/çødé.txt" in call["after_delete"]
    rows = [r for r in aws_seks.audit() if r["event"] == "request.injected"]
    assert rows and {r["provider"] for r in rows} == {"aws"}
    details = [json.loads(r["detail"]) for r in rows]
    assert {
        "service": "s3",
        "region": "us-east-1",
        "bucket": "seks-e2e",
        "key": "ünï/çødé.txt",
        "operation": "PutObject",
    } in details
    assert any(d.get("operation") == "ListObjectsV2" for d in details)


def test_multipart_and_a_20_mib_upload_arrive_whole(
    agent_python: Path, aws_env: dict[str, str]
) -> None:
    report = agent(agent_python, aws_env, "s3_multipart", "s3_big_upload")
    assert report["s3_multipart"] == {"ok": True, "same": True, "size": 5 * 1024 * 1024 + 1024}
    big = report["s3_big_upload"]
    assert big["ok"] and big["sent"] == big["got"], big


def test_sts_dynamodb_and_sqs_round_trips(agent_python: Path, aws_env: dict[str, str]) -> None:
    report = agent(agent_python, aws_env, "sts_identity", "dynamodb_roundtrip", "sqs_roundtrip")
    assert report["sts_identity"]["arn"].endswith(":user/seks-e2e"), report
    assert report["dynamodb_roundtrip"] == {"ok": True, "v": "hello"}
    assert report["sqs_roundtrip"] == {"ok": True, "bodies": ["hello queue"]}


def test_an_agent_clock_three_hours_off_still_works(
    agent_python: Path, aws_env: dict[str, str]
) -> None:
    report = agent(agent_python, aws_env, "skewed_clock")
    assert report["skewed_clock"]["ok"], report


def test_assume_role_answers_with_fake_credentials_that_then_work(
    agent_python: Path, aws_env: dict[str, str], aws_seks: Seks
) -> None:
    run = run_agent(agent_python, "aws_agent.py", "assume_role", env=aws_env)
    report = json.loads(run.stdout)
    call = report["assume_role"]
    assert call["ok"], call
    creds = call["credentials"]
    assert creds["AccessKeyId"].startswith("seks_aws_")
    assert creds["SecretAccessKey"] == "seks-placeholder-secret-key-not-a-credential"
    assert creds["SessionToken"] == "seks-placeholder-session-token-not-a-credential"
    assert ":assumed-role/seks-role/agent" in call["assumed_arn"]  # moto saw the real ones

    # The real credentials are in the vault, bound to a new token of the same agent.
    issued = [s for s in aws_seks.json("secret", "list") if ".issued." in s["name"]]
    assert len(issued) == 1
    home = Home(aws_seks.home)
    vault = Vault.open(home.vault_path, home.master_key())
    try:
        real = AwsCredentials.from_json(vault.reveal_secret(issued[0]["name"]).reveal())
    finally:
        vault.close()
    assert real.session_token and real.access_key_id.startswith("ASIA")
    leaks = find_leaks(
        [real.secret_access_key, real.session_token, real.access_key_id],
        {"agent output": (run.stdout + run.stderr).encode()},
    )
    assert leaks == []
    tokens = aws_seks.tokens(agent=AGENT)
    child = next(t for t in tokens if t["secret_name"] == issued[0]["name"])
    assert child["expires_at"] is not None


def test_the_aws_cli_copies_a_file_up_and_down(
    agent_python: Path, aws_env: dict[str, str], tmp_path: Path
) -> None:
    aws = agent_python.parent / "aws"
    data = os.urandom(9 * 1024 * 1024 + 7)  # over the CLI's 8 MiB multipart threshold
    (tmp_path / "up.bin").write_bytes(data)
    env = {**aws_env, "AWS_DEFAULT_REGION": "us-east-1", "HOME": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(
            [str(aws), *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert run.returncode == 0, run.stdout + run.stderr
        return run

    cli("s3", "mb", "s3://seks-cli")
    cli("s3", "cp", str(tmp_path / "up.bin"), "s3://seks-cli/dir/up.bin")
    cli("s3", "cp", "s3://seks-cli/dir/up.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == data
    assert "dir/up.bin" in cli("s3", "ls", "--recursive", "s3://seks-cli").stdout


def test_a_signed_chunked_upload_as_other_sdks_send_it(
    agent_python: Path, aws_env: dict[str, str]
) -> None:
    """moto checks the seed signature and decodes the chunks, not their signatures: those are
    checked by test_aws_checked_signatures.py and AWS's vectors (test_sigv4_chunked.py)."""
    report = agent(agent_python, aws_env, "signed_chunked_put")
    assert report["signed_chunked_put"] == {"ok": True, "put": 200, "same": True, "size": 204805}


def test_the_real_keys_are_nowhere_the_agent_or_a_reviewer_looks(
    aws_seks: Seks, aws_proxy: ProxyProcess, moto: MotoUpstream
) -> None:
    """Last in the module: after every call above, at log level debug, the real access key's
    secret (and the assumed role's, read from the vault) appear in no file of the SEKS home
    (vault encrypted, audit rows hashed), no CLI output and nothing the proxy printed."""
    home = Home(aws_seks.home)
    vault = Vault.open(home.vault_path, home.master_key())
    try:
        issued = [
            AwsCredentials.from_json(vault.reveal_secret(s.name).reveal())
            for s in vault.list_secrets()
            if ".issued." in s.name
        ]
    finally:
        vault.close()
    real = [moto.secret_access_key]
    real += [v for c in issued for v in (c.secret_access_key, c.session_token) if v]
    places = {f"file {n}": d for n, d in files_under(aws_seks.home.parent).items()}
    places |= {"proxy output": aws_proxy.output(), "CLI": b"".join(aws_seks.transcript)}
    assert find_leaks(real, places) == []
    assert len(real) == 3, "run the whole module: the assume-role test stores credentials"
