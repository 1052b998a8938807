"""moto as the AWS upstream, checked directly (no proxy): it must refuse what AWS refuses, and
serve requests addressed to the AWS host names, as the proxy forwards them (see
aws_upstream.py for what these tests found).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from aws_upstream import REGION, USER, MotoUpstream, moto_client
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"  # moto's default account
UNKNOWN_KEY_ID = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture(params=["moto_http", "moto_https"], ids=["http", "https"])
def moto(request: pytest.FixtureRequest) -> MotoUpstream:
    upstream: MotoUpstream = request.getfixturevalue(request.param)
    return upstream


@pytest.fixture
def direct(moto: MotoUpstream) -> Iterator[Callable[..., BaseClient]]:
    """Clients addressing moto by its own URL."""
    clients: list[BaseClient] = []

    def make(service: str, **kwargs: Any) -> BaseClient:
        clients.append(moto.client(service, **kwargs))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


class Forwarder:
    """Sends a botocore client's signed request to moto unchanged, the AWS host name in Host.

    The client is built for the AWS name (``endpoint_url="https://sts.amazonaws.com"``) and
    signs for it; this ``before-send`` handler then does what the SEKS proxy does with it.
    """

    def __init__(self, moto: MotoUpstream) -> None:
        self.moto = moto
        self.sent: list[dict[str, str]] = []  # the headers of each request, as sent
        self.pool = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED" if moto.ca_pem else "CERT_NONE",
            ca_certs=str(moto.ca_pem) if moto.ca_pem else None,
            retries=False,
        )
        self.clients: list[BaseClient] = []

    def client(self, service: str, aws_url: str, **config: Any) -> BaseClient:
        client = moto_client(
            service,
            endpoint_url=aws_url,
            aws_access_key_id=self.moto.access_key_id,
            aws_secret_access_key=self.moto.secret_access_key,
            verify=True,  # botocore itself connects nowhere
            config=Config(**config) if config else None,
        )
        client.meta.events.register("before-send", self.send)
        self.clients.append(client)
        return client

    def send(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        aws = urlsplit(request.url)
        body = request.body.read() if hasattr(request.body, "read") else request.body
        # botocore signs `host` as the URL's netloc, and leaves the header to the HTTP library.
        headers = {"Host": aws.netloc}
        headers |= {
            k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        self.sent.append(headers)
        target = self.moto.url + aws.path + (f"?{aws.query}" if aws.query else "")
        answer = self.pool.request(
            request.method, target, body=body, headers=headers, preload_content=False
        )
        return AWSResponse(request.url, answer.status, answer.headers, answer)

    def hosts(self) -> list[str]:
        return [h["Host"] for h in self.sent]

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.pool.clear()


@pytest.fixture
def aws(moto: MotoUpstream) -> Iterator[Forwarder]:
    forwarder = Forwarder(moto)
    yield forwarder
    forwarder.close()


def error_of(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]["Code"]


def unique(prefix: str) -> str:
    """A fresh resource name: the moto servers live for the whole session."""
    return f"{prefix}-{secrets.token_hex(4)}"


# --- it checks signatures as AWS does -------------------------------------------------------


def test_the_bootstrapped_key_is_accepted(direct: Callable[..., BaseClient]) -> None:
    identity = direct("sts").get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{USER}"
    bucket = unique("direct")
    direct("s3").create_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in direct("s3").list_buckets()["Buckets"]]


@pytest.mark.parametrize("service", ["sts", "s3"])
def test_a_wrong_secret_is_refused(service: str, direct: Callable[..., BaseClient]) -> None:
    client = direct(service, aws_secret_access_key="not-the-secret")
    call = client.get_caller_identity if service == "sts" else client.list_buckets
    assert error_of(call) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize(
    ("service", "code"), [("sts", "InvalidClientTokenId"), ("s3", "InvalidAccessKeyId")]
)
def test_an_unknown_key_is_refused(
    service: str, code: str, direct: Callable[..., BaseClient], moto: MotoUpstream
) -> None:
    client = direct(
        service, aws_access_key_id=UNKNOWN_KEY_ID, aws_secret_access_key=moto.secret_access_key
    )
    call = client.get_caller_identity if service == "sts" else client.list_buckets
    assert error_of(call) == (403, code)


def test_the_host_header_is_checked_as_signed(moto: MotoUpstream) -> None:
    """Signed for sts.amazonaws.com: accepted with that Host, refused with moto's own."""
    request = AWSRequest(
        "POST",
        moto.url + "/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={
            "Host": "sts.amazonaws.com",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        },
    )
    credentials = Credentials(moto.access_key_id, moto.secret_access_key)
    SigV4Auth(credentials, "sts", REGION).add_auth(request)
    headers = dict(request.headers.items())
    pool = urllib3.PoolManager(ca_certs=str(moto.ca_pem) if moto.ca_pem else None, retries=False)
    try:
        ok = pool.request("POST", moto.url + "/", body=request.body, headers=headers)
        assert ok.status == 200, ok.data
        assert f":user/{USER}</Arn>".encode() in ok.data

        headers["Host"] = urlsplit(moto.url).netloc
        refused = pool.request("POST", moto.url + "/", body=request.body, headers=headers)
        assert refused.status == 403, refused.data
        assert b"<Code>SignatureDoesNotMatch</Code>" in refused.data
    finally:
        pool.clear()


# --- it serves the AWS host names -----------------------------------------------------------


@pytest.mark.parametrize(
    ("aws_url", "style", "host"),
    [
        ("https://s3.us-east-1.amazonaws.com", "virtual", "{bucket}.s3.us-east-1.amazonaws.com"),
        ("https://s3.amazonaws.com", "virtual", "{bucket}.s3.amazonaws.com"),
        ("https://s3.amazonaws.com", "path", "s3.amazonaws.com"),
        ("https://s3.us-east-1.amazonaws.com", "path", "s3.us-east-1.amazonaws.com"),
    ],
)
def test_s3_by_host_name(
    aws_url: str,
    style: str,
    host: str,
    aws: Forwarder,
    direct: Callable[..., BaseClient],
) -> None:
    bucket, body = unique("seks-e2e"), secrets.token_bytes(1000)
    s3 = aws.client("s3", aws_url, s3={"addressing_style": style})
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/object.bin", Body=body)
    assert s3.get_object(Bucket=bucket, Key="dir/object.bin")["Body"].read() == body
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["dir/object.bin"]

    assert set(aws.hosts()) == {host.format(bucket=bucket)}
    (put,) = [h for h in aws.sent if h.get("Content-Encoding") == "aws-chunked"]
    assert put["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    # The same bucket as moto's own URL names it: the bucket came from Host, or from the path.
    assert direct("s3").get_object(Bucket=bucket, Key="dir/object.bin")["Body"].read() == body


@pytest.mark.parametrize(
    "aws_url", ["https://sts.amazonaws.com", "https://sts.us-east-1.amazonaws.com"]
)
def test_sts_by_host_name(aws_url: str, aws: Forwarder) -> None:
    identity = aws.client("sts", aws_url).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{USER}"
    assert aws.hosts() == [urlsplit(aws_url).netloc]


def test_dynamodb_by_host_name(aws: Forwarder) -> None:
    table = unique("seks-e2e")
    dynamodb = aws.client("dynamodb", "https://dynamodb.us-east-1.amazonaws.com")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=table, Item={"id": {"S": "1"}, "v": {"S": "one"}})
    item = dynamodb.get_item(TableName=table, Key={"id": {"S": "1"}})["Item"]
    assert item == {"id": {"S": "1"}, "v": {"S": "one"}}
    assert set(aws.hosts()) == {"dynamodb.us-east-1.amazonaws.com"}


def test_sqs_by_host_name(aws: Forwarder, moto: MotoUpstream) -> None:
    sqs = aws.client("sqs", "https://sqs.us-east-1.amazonaws.com")
    name = unique("seks-e2e")
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    # The Host it was sent, with the scheme of moto's own socket.
    scheme = urlsplit(moto.url).scheme
    assert queue_url == f"{scheme}://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{name}"
    sqs.send_message(QueueUrl=queue_url, MessageBody="through the AWS name")
    messages = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in messages] == ["through the AWS name"]
    assert set(aws.hosts()) == {"sqs.us-east-1.amazonaws.com"}


def test_the_service_comes_from_the_credential_scope_not_the_host(aws: Forwarder) -> None:
    """Why any AWS name works: moto routes by the signed service, not by Host."""
    sts = aws.client("sts", "https://dynamodb.us-east-1.amazonaws.com")
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{USER}")
