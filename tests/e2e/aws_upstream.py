"""moto's server as a real AWS upstream, with signature checking on.

`start_moto` runs ``INITIAL_NO_AUTH_ACTION_COUNT=3 moto_server -H 127.0.0.1 -p PORT`` (HTTPS
with a leaf certificate from the session test CA when given one), spends the three unchecked
calls on IAM CreateUser, PutUserPolicy (Allow ``*`` on ``*``) and CreateAccessKey, and hands
back that key. From then on every request must be SigV4-signed with it, as on AWS: a wrong
secret gets 403 SignatureDoesNotMatch, an unknown key id 403 InvalidClientTokenId (S3:
InvalidAccessKeyId).

The SEKS proxy forwards requests to it keeping the AWS host name in the Host header (it is
signed). What moto 5.2.5 makes of that, measured by test_aws_upstream.py:
- It picks the service from the credential scope in Authorization (``…/us-east-1/sts/…``),
  not from Host (``DomainDispatcherApplication.get_application`` reads Host only to tell S3
  Control from S3): STS, DynamoDB and SQS work under any host name, even each other's, as long
  as Host is the name that was signed. Host ``127.0.0.1:PORT`` on a request signed for
  ``sts.amazonaws.com`` gets 403 SignatureDoesNotMatch.
- S3 takes the bucket from Host unless Host is ``s3.amazonaws.com``,
  ``s3.REGION.amazonaws.com`` (or ``s3-REGION``, dualstack, fips), an IP address or
  ``localhost…`` (``S3Response.subdomain_based_buckets``). Virtual-hosted style
  (``mybucket.s3.us-east-1.amazonaws.com``, ``mybucket.s3.amazonaws.com``) and path style
  (``s3.amazonaws.com/mybucket``) all work with no settings and reach the same buckets.
  MOTO_S3_CUSTOM_ENDPOINTS is for non-AWS names only (it turns virtual-hosted style off for
  them); S3_IGNORE_SUBDOMAIN_BUCKETNAME would break virtual-hosted style. moto therefore runs
  with a clean environment (`harness.base_env`), nothing inherited.
- PutObject signed for an ``https://`` AWS URL arrives as botocore ≥ 1.36 sends it
  (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``, aws-chunked, ``Transfer-Encoding: chunked``); moto
  decodes it over HTTP and HTTPS alike.
- SQS (JSON protocol) answers QueueUrl ``<scheme>://sqs.us-east-1.amazonaws.com/123456789012/
  NAME``: the Host it was sent, with the scheme of moto's own socket (``http`` from moto_http).
- ``--ssl-cert``/``--ssl-key`` go to werkzeug's ``run_simple`` as ``(cert, key)`` and
  ``load_cert_chain``, so the cert file may hold the chain; ``--ssl`` alone makes an adhoc
  self-signed certificate. Every response carries ``Connection: close``.
- The free calls are counted across all services, before the action runs (a call that then
  fails has spent one); a TCP connect costs none. So readiness is a connect loop, and the
  clients here never retry.

Timings here: moto_server listens 0.25 s after exec and is bootstrapped by 0.4-0.5 s; it exits
0 within 0.5 s of SIGTERM (werkzeug's serve_forever polls at that interval).
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.client import BaseClient
from botocore.config import Config
from harness import REPO, TestCA, base_env

__all__ = ["REGION", "USER", "MotoUpstream", "moto_client", "start_moto"]

# moto listens within a second here (it imports its backends lazily); CI machines are slower.
STARTUP_TIMEOUT = 30
REGION = "us-east-1"
USER = "seks-e2e"
ALLOW_ALL = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
)
# A retry would hide the first answer, and during the bootstrap spend a free call.
NO_RETRIES = Config(retries={"total_max_attempts": 1})


@dataclass(frozen=True)
class MotoUpstream:
    """A moto_server process and the one access key it accepts."""

    url: str
    access_key_id: str
    secret_access_key: str
    process: subprocess.Popen[bytes]
    ca_pem: Path | None = None  # what a client must trust, for HTTPS
    log: Path | None = None  # moto's stdout and stderr

    @property
    def verify(self) -> str | bool:
        """botocore's ``verify=`` for this server."""
        return _verify(self.ca_pem)

    def client(self, service: str, **kwargs: Any) -> BaseClient:
        """A botocore client for this server, signing with its key unless told otherwise."""
        kwargs.setdefault("aws_access_key_id", self.access_key_id)
        kwargs.setdefault("aws_secret_access_key", self.secret_access_key)
        kwargs.setdefault("endpoint_url", self.url)
        return moto_client(service, verify=self.verify, **kwargs)

    def stop(self) -> None:
        _stop(self.process)


def moto_client(
    service: str,
    *,
    endpoint_url: str,
    aws_access_key_id: str,
    aws_secret_access_key: str,
    verify: str | bool,
    config: Config | None = None,
) -> BaseClient:
    return _botocore_session().create_client(
        service,
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        verify=verify,
        config=NO_RETRIES.merge(config) if config else NO_RETRIES,
    )


@functools.cache
def _botocore_session() -> botocore.session.Session:
    """One session for all clients: it loads each service model once (s3's takes 0.2 s)."""
    return botocore.session.get_session()


def moto_server_path() -> Path:
    path = Path(
        os.environ.get("SEKS_TEST_MOTO_SERVER") or REPO / ".venv-moto" / "bin" / "moto_server"
    )
    if not path.exists():
        pytest.fail(
            f"moto_server {path} is missing: run ./scripts/setup (it creates .venv-moto with "
            "moto[server]), or point SEKS_TEST_MOTO_SERVER at a moto_server"
        )
    return path


def start_moto(workdir: Path, *, ca: TestCA | None = None) -> MotoUpstream:
    """moto_server on a free port of 127.0.0.1, bootstrapped with one allow-all access key.

    HTTPS when given the test CA; `workdir` receives its log and, for HTTPS, its certificate.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [str(moto_server_path()), "-H", "127.0.0.1", "-p", str(port)]
    if ca is not None:
        args += _write_leaf_cert(ca, workdir)
    url = f"{'https' if ca else 'http'}://127.0.0.1:{port}"
    ca_pem = ca.pem if ca else None
    log = workdir / "moto.log"
    env = {**base_env(workdir), "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    with log.open("wb") as out:  # a file, not a pipe: moto logs every request
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        _wait_listening(process, port, log)
        key_id, secret = _bootstrap_key(url, _verify(ca_pem))
    except BaseException:
        _stop(process)
        raise
    return MotoUpstream(url, key_id, secret, process, ca_pem, log)


def free_port() -> int:
    """A port nothing listens on now. moto_server says which port it took only in its log
    (`-p 0`), so it is handed one, with a short race; losing the race makes moto exit, which
    `_wait_listening` reports.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _write_leaf_cert(ca: TestCA, workdir: Path) -> list[str]:
    leaf = ca.ca.issue_cert("127.0.0.1", "localhost")
    cert, key = workdir / "moto-cert.pem", workdir / "moto-key.pem"
    cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(leaf.private_key_pem.bytes())
    return ["--ssl-cert", str(cert), "--ssl-key", str(key)]


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until moto accepts TCP connections; a connect costs none of the free calls."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"moto_server exited {process.returncode}\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"moto_server not listening after {STARTUP_TIMEOUT}s\n{log.read_text()}"
                )
            time.sleep(0.02)


def _bootstrap_key(url: str, verify: str | bool) -> tuple[str, str]:
    """The three unchecked calls: a user, an allow-all inline policy, its access key."""
    iam = moto_client(
        "iam",
        endpoint_url=url,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
        verify=verify,
    )
    try:
        iam.create_user(UserName=USER)
        iam.put_user_policy(UserName=USER, PolicyName="allow-all", PolicyDocument=ALLOW_ALL)
        key = iam.create_access_key(UserName=USER)["AccessKey"]
    finally:
        iam.close()
    return key["AccessKeyId"], key["SecretAccessKey"]


def _verify(ca_pem: Path | None) -> str | bool:
    return str(ca_pem) if ca_pem else False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # moto exits 0 on SIGTERM
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
