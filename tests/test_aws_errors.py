"""aws_errors: refusals in the client's own protocol, as real botocore clients parse them.

Each client is a real botocore client whose requests never leave the process: a ``before-send``
handler stands in for the proxy and answers with :func:`aws_error_response` for the protocol
:func:`aws_protocol` reads off the request botocore really built.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.parsers import create_parser

from seks import errors
from seks.addon.aws_errors import AwsProtocol, aws_error_response, aws_protocol
from seks.addon.aws_hosts import parse_aws_host
from seks.errors import RequestRefused

CANARY_KEY = "seks_aws_CANARYCANARYCANARYCANARY123456"

# What each refusal is to AWS clients. A new refusal fails here until someone decides.
KIND: dict[type[RequestRefused], str] = {
    errors.MalformedToken: "unknown_token",
    errors.UnknownToken: "unknown_token",
    errors.TokenExpired: "expired_token",
    errors.TokenRevoked: "expired_token",
    errors.BadSignature: "bad_signature",
    errors.MalformedSignature: "bad_signature",
    errors.SignatureUnsupported: "bad_signature",
    errors.RateLimited: "throttled",
    errors.AuditUnavailable: "unavailable",
    errors.VaultUnavailable: "unavailable",
    errors.UpstreamError: "unavailable",
    errors.PresignExpired: "denied",  # S3 answers an expired presigned URL 403 AccessDenied
    errors.HostNotAllowed: "denied",
    errors.TokenMisplaced: "denied",
    errors.UsesExhausted: "denied",
    errors.IpNotAllowed: "denied",
    errors.ScopeNotAllowed: "denied",
    errors.ApprovalDenied: "denied",
    errors.ApprovalExpired: "denied",
    errors.ProxyAuthRequired: "denied",
    errors.ProxyAuthFailed: "denied",
    errors.AgentMismatch: "denied",
}
# kind → (S3, query and EC2, JSON family) codes, as AWS answers them.
CODES = {
    "unknown_token": ("InvalidAccessKeyId", "InvalidClientTokenId", "UnrecognizedClientException"),
    "expired_token": ("ExpiredToken", "ExpiredToken", "ExpiredTokenException"),
    "bad_signature": ("InvalidRequest", "IncompleteSignature", "IncompleteSignatureException"),
    "throttled": ("SlowDown", "Throttling", "ThrottlingException"),
    "unavailable": ("ServiceUnavailable", "ServiceUnavailable", "ServiceUnavailableException"),
    "denied": ("AccessDenied", "AccessDenied", "AccessDeniedException"),
}
STATUS = {  # kind → (S3, others); None: the refusal's own 5xx
    "unknown_token": (403, 403),
    "expired_token": (400, 403),
    "bad_signature": (400, 400),
    "throttled": (503, 400),
    "unavailable": (None, None),
    "denied": (403, 403),
}

# One operation per protocol botocore speaks, with what boto3 sends for it.
CALLS: list[tuple[str, str, dict[str, Any], AwsProtocol]] = [
    ("s3", "list_buckets", {}, "s3"),
    ("s3", "get_object", {"Bucket": "my.bucket", "Key": "k"}, "s3"),
    ("s3", "put_object", {"Bucket": "bucket", "Key": "k", "Body": b"x"}, "s3"),
    ("sts", "get_caller_identity", {}, "query"),
    ("iam", "list_users", {}, "query"),
    ("route53", "list_hosted_zones", {}, "query"),  # rest-xml: a GET without a body
    ("ec2", "describe_regions", {}, "ec2"),
    ("dynamodb", "list_tables", {}, "json"),
    ("sqs", "list_queues", {}, "json"),
    ("lambda", "list_functions", {}, "rest-json"),  # a GET without a body
    ("bedrock-runtime", "invoke_model", {"modelId": "m", "body": b"{}"}, "rest-json"),
    ("sagemaker-runtime", "invoke_endpoint", {"EndpointName": "e", "Body": b"x"}, "rest-json"),
    ("cloudwatch", "list_metrics", {}, "json"),  # botocore prefers json to its rpc-v2-cbor
    ("eventbridgev2", "list_event_buses", {}, "rpc-v2-cbor"),
]


def all_refusals(cls: type[RequestRefused] = RequestRefused) -> Iterator[type[RequestRefused]]:
    """The error tree's refusals (the gateway's unknown-route 404 never answers an AWS host)."""
    for sub in cls.__subclasses__():
        if sub.__module__ == "seks.errors":
            yield sub
        yield from all_refusals(sub)


def family(protocol: str) -> int:
    return 0 if protocol == "s3" else 1 if protocol in ("query", "ec2") else 2


class Proxy:
    """Answers every request with the refusal it holds, as the SEKS proxy would."""

    def __init__(self) -> None:
        self.refusal: RequestRefused = errors.UnknownToken("no token like this one")
        self.protocols: list[str] = []
        self.sent: list[tuple[int, dict[str, str], bytes]] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        endpoint = parse_aws_host(urlsplit(request.url).hostname or "")
        assert endpoint is not None, request.url
        # As they go on the wire: botocore keeps some values as bytes until it sends them.
        wire = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        protocol = aws_protocol(endpoint.service, wire)
        status, headers, body = aws_error_response(self.refusal, protocol)
        self.protocols.append(protocol)
        self.sent.append((status, headers, body))
        return AWSResponse(request.url, status, headers, _Raw(body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


MakeClient = Callable[..., tuple[Any, Proxy]]


@pytest.fixture(scope="module")
def make_client() -> MakeClient:
    session = botocore.session.get_session()
    session.set_credentials(CANARY_KEY, "fake-secret-key")

    def make(service: str, attempts: int = 1, mode: str = "standard") -> tuple[Any, Proxy]:
        config = Config(retries={"mode": mode, "total_max_attempts": attempts})
        client = session.create_client(service, region_name="us-east-1", config=config)
        proxy = Proxy()
        client.meta.events.register("before-send", proxy)
        return client, proxy

    return make


def refused(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        getattr(client, operation)(**params)
    error: dict[str, Any] = caught.value.response["Error"]
    return error


def test_every_refusal_has_an_aws_answer() -> None:
    assert set(all_refusals()) == set(KIND)


@pytest.mark.parametrize(("service", "operation", "params", "protocol"), CALLS)
def test_boto3_raises_the_aws_code_and_the_seks_message_for_every_refusal(
    make_client: MakeClient,
    service: str,
    operation: str,
    params: dict[str, Any],
    protocol: AwsProtocol,
) -> None:
    client, proxy = make_client(service)
    for cls, kind in KIND.items():
        proxy.refusal = cls("the reason, for the person reading it")
        error = refused(client, operation, params)
        status, _, body = proxy.sent[-1]
        assert proxy.protocols[-1] == protocol
        assert error["Code"] == CODES[kind][family(protocol)], cls
        assert error["Message"] == (
            f"SEKS: the reason, for the person reading it ({proxy.refusal.type})"
        )
        expected_status = STATUS[kind][0 if protocol == "s3" else 1]
        assert status == (expected_status or proxy.refusal.status), cls
        assert CANARY_KEY.encode() not in body


@pytest.mark.parametrize(
    ("service", "operation"),
    [("s3", "list_buckets"), ("sts", "get_caller_identity"), ("dynamodb", "list_tables")],
)
@pytest.mark.parametrize("mode", ["standard", "legacy"])
def test_boto3_backs_off_and_retries_only_throttling_and_unavailability(
    make_client: MakeClient, service: str, operation: str, mode: str
) -> None:
    client, proxy = make_client(service, attempts=2, mode=mode)
    for refusal, attempts in [
        (errors.RateLimited("over the token's rate"), 2),
        (errors.UpstreamError("the upstream did not answer"), 2),
        (errors.UnknownToken("no token like this one"), 1),
        (errors.HostNotAllowed("not this host"), 1),
        (errors.TokenExpired("expired"), 1),
        (errors.SignatureUnsupported("SigV2 cannot be re-signed by SEKS"), 1),
    ]:
        proxy.refusal = refusal
        proxy.sent.clear()
        refused(client, operation, {})
        assert len(proxy.sent) == attempts, refusal


def test_modelled_exceptions_are_raised_as_such(make_client: MakeClient) -> None:
    client, proxy = make_client("bedrock-runtime")
    params = {"modelId": "m", "body": b"{}"}
    for refusal, exception in [
        (errors.HostNotAllowed("not this model"), client.exceptions.AccessDeniedException),
        (errors.RateLimited("over the token's rate"), client.exceptions.ThrottlingException),
        (errors.AuditUnavailable("no audit"), client.exceptions.ServiceUnavailableException),
    ]:
        proxy.refusal = refusal
        with pytest.raises(exception):
            client.invoke_model(**params)


def test_the_refusals_own_headers_are_kept() -> None:
    for protocol in ("s3", "query", "json"):
        _, headers, _ = aws_error_response(
            errors.RateLimited("slow down", retry_after=2.5), protocol
        )
        assert headers["retry-after"] == "3"


@pytest.mark.parametrize(
    ("protocol", "model"),
    [("s3", "s3"), ("query", "sts"), ("ec2", "ec2"), ("json", "dynamodb"), ("rest-json", "lambda")],
)
def test_text_is_escaped_and_what_xml_cannot_carry_is_replaced(
    protocol: AwsProtocol, model: str
) -> None:
    err = errors.ScopeNotAllowed('POST /a?b=<c>&d="e" \x00\x1b is outside --allow')
    status, headers, body = aws_error_response(err, protocol, request_id="req-1")
    error = parse(model, status, headers, body)["Error"]
    xml = protocol in ("s3", "query", "ec2")
    clean = "\ufffd\ufffd" if xml else "\x00\x1b"
    assert error["Message"] == (
        f'SEKS: POST /a?b=<c>&d="e" {clean} is outside --allow (seks_scope_not_allowed)'
    )
    assert (b"&lt;c&gt;&amp;" in body) is xml


@pytest.mark.parametrize("size", [5, 23, 24, 255, 256, 65535, 65536, 100_000])
def test_cbor_bodies_carry_messages_of_any_length(size: int) -> None:
    err = errors.HostNotAllowed("x" * size)
    status, headers, body = aws_error_response(err, "rpc-v2-cbor")
    error = parse("eventbridgev2", status, headers, body)["Error"]
    assert error == {
        "Code": "AccessDeniedException",
        "Message": f"SEKS: {'x' * size} (seks_host_not_allowed)",
    }


def test_text_that_is_not_unicode_does_not_break_a_response() -> None:
    err = errors.ScopeNotAllowed("GET /\udc80 is outside --allow")  # a lone surrogate
    for protocol, model in [("s3", "s3"), ("json", "dynamodb"), ("rpc-v2-cbor", "eventbridgev2")]:
        status, headers, body = aws_error_response(err, protocol)
        message = parse(model, status, headers, body)["Error"]["Message"]
        assert message.startswith("SEKS: GET /") and message.endswith("(seks_scope_not_allowed)")


def test_each_response_has_its_own_request_id() -> None:
    ids = {
        aws_error_response(errors.HostNotAllowed("no"), "json")[1]["x-amzn-requestid"]
        for _ in range(3)
    }
    assert len(ids) == 3
    _, headers, body = aws_error_response(errors.HostNotAllowed("no"), "s3", request_id="r")
    assert headers["x-amz-request-id"] == "r"
    assert b"<RequestId>r</RequestId>" in body
    assert headers["content-type"] == "application/xml"


def test_json_bodies_name_the_code_for_both_json_parsers() -> None:
    """A json request misread as rest-json (or back) still parses: __type and the header."""
    for protocol in ("json", "rest-json"):
        status, headers, body = aws_error_response(errors.UnknownToken("no"), protocol)
        assert json.loads(body)["__type"] == headers["x-amzn-errortype"]
        for model in ("dynamodb", "lambda"):
            assert parse(model, status, headers, body)["Error"]["Code"] == (
                "UnrecognizedClientException"
            )


@pytest.mark.parametrize(
    ("service", "headers", "protocol"),
    [
        ("s3", {"Content-Type": "application/x-amz-json-1.0"}, "s3"),
        ("s3express", {}, "s3"),
        ("ec2", {"content-type": "application/x-www-form-urlencoded"}, "ec2"),
        ("sts", {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, "query"),
        ("sts", {}, "query"),  # a presigned GetCallerIdentity
        ("route53", {}, "query"),
        ("dynamodb", {"X-Amz-Target": "DynamoDB_20120810.ListTables"}, "json"),
        ("sagemaker", {"Content-Type": "application/x-amz-json-1.1"}, "json"),
        ("monitoring", {"Smithy-Protocol": "rpc-v2-cbor"}, "rpc-v2-cbor"),
        ("lambda", {}, "rest-json"),
        ("sagemaker", {"Content-Type": "text/csv"}, "rest-json"),
        ("iam", {}, "rest-json"),  # iam-toolbox; IAM's query API always sends a form
        ("ses", {"content-type": "application/x-www-form-urlencoded"}, "query"),
        ("no-such-service", {}, "rest-json"),
    ],
)
def test_the_protocol_comes_from_the_request_then_from_the_models(
    service: str, headers: dict[str, str], protocol: str
) -> None:
    assert aws_protocol(service, headers) == protocol


def parse(model: str, status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    service_model = botocore.session.get_session().get_service_model(model)
    operation = service_model.operation_model(service_model.operation_names[0])
    parser = create_parser(service_model.resolved_protocol)
    response = {"status_code": status, "headers": headers, "body": body}
    parsed: dict[str, Any] = parser.parse(response, operation.output_shape)
    return parsed
