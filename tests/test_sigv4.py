"""Re-signing, checked against botocore itself: botocore signs a request with the fake key (as
the agent would), SEKS re-signs it with the real key, and botocore signing the same request
with the real key at the same fixed clock must give exactly the same signature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from seks.addon.sigv4 import (
    canonical_query,
    find_signature,
    parse_authorization,
    resign_headers,
    resign_presigned,
)
from seks.errors import MalformedSignature, PresignExpired, SignatureUnsupported
from seks.store.aws_credentials import FAKE_SECRET_KEY, FAKE_SESSION_TOKEN, AwsCredentials
from seks.store.tokens import mint

T0 = datetime(2026, 11, 23, 4, 0, 0, tzinfo=UTC)
REAL = AwsCredentials("AKIAREALREALREAL0001", "real/Secret+Key0000000000000000000000000")
REAL_SESSION = AwsCredentials(
    "ASIAREALREALREAL0002", "anotherRealSecretKey00000000000000000000", "RealSessionToken//x=="
)


@pytest.fixture
def fake_token() -> str:
    return mint("aws")


def _at(when: datetime) -> mock._patch[mock.MagicMock]:
    return mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None))


def _signed(
    signer: SigV4Auth, request: AWSRequest, when: datetime, context: dict[str, object] | None = None
) -> AWSRequest:
    request.context.update(context or {})
    with _at(when):
        signer.add_auth(request)
    return request


def _copy(request: AWSRequest) -> AWSRequest:
    return AWSRequest(
        method=request.method, url=request.url, headers=dict(request.headers), data=request.data
    )


def _target(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path + (
        f"?{parts.query}" if parts.query else ""
    )


CASES = [
    # (service, method, url, headers, body, signer class, context)
    (
        "s3",
        "PUT",
        "https://bkt.s3.us-east-1.amazonaws.com/a%20b%2Bc%25d~e/%C3%A9t%C3%A9.txt",
        {"content-type": "text/plain"},
        b"hello",
        S3SigV4Auth,
        None,
    ),
    (
        "s3",
        "GET",
        "https://s3.us-east-1.amazonaws.com/bkt?list-type=2&prefix=a%2Fb&delimiter=%2F",
        {},
        b"",
        S3SigV4Auth,
        None,
    ),
    (
        "s3",
        "PUT",
        "https://bkt.s3.amazonaws.com/big.bin",
        {"content-md5": "x", "x-amz-meta-a": "1"},
        b"data",
        S3SigV4Auth,
        {"checksum": {"request_algorithm": {"in": "trailer", "name": "x-amz-checksum-crc32"}}},
    ),
    ("s3", "POST", "https://bkt.s3.amazonaws.com/k?uploads", {}, b"", S3SigV4Auth, None),
    (
        "sts",
        "POST",
        "https://sts.amazonaws.com/",
        {"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        b"Action=GetCallerIdentity&Version=2011-06-15",
        SigV4Auth,
        None,
    ),
    (
        "lambda",
        "POST",
        "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations",
        {"content-type": "application/json"},
        b"{}",
        SigV4Auth,
        None,
    ),
    (
        "dynamodb",
        "POST",
        "https://dynamodb.us-east-1.amazonaws.com/",
        {
            "x-amz-target": "DynamoDB_20120810.ListTables",
            "content-type": "application/x-amz-json-1.0",
        },
        b"{}",
        SigV4Auth,
        None,
    ),
]


@pytest.mark.parametrize("real", [REAL, REAL_SESSION], ids=["key", "session"])
@pytest.mark.parametrize(
    ("service", "method", "url", "headers", "body", "cls", "context"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)],
)
def test_resigned_headers_equal_botocore_signing_with_the_real_key(
    fake_token: str,
    real: AwsCredentials,
    service: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    cls: type[SigV4Auth],
    context: dict[str, object] | None,
) -> None:
    region = "us-east-1"
    original = AWSRequest(method=method, url=url, headers=headers, data=body)
    fake = Credentials(fake_token, FAKE_SECRET_KEY, FAKE_SESSION_TOKEN)
    agent = _signed(cls(fake, service, region), _copy(original), T0 - timedelta(hours=3), context)
    host = urlsplit(url).netloc
    sent = [("host", host), *agent.headers.items()]
    sig = find_signature(agent.headers["Authorization"], urlsplit(url).query)
    assert sig.access_key_id == fake_token and sig.service == service

    origin, target = _target(url)
    resigned = resign_headers(method, origin, target, sent, sig, real, T0, body)

    expected_request = _copy(original)
    expected_request.headers["host"] = host
    if "X-Amz-Content-SHA256" in agent.headers:  # the agent's declared payload mode stays
        expected_request.headers["X-Amz-Content-SHA256"] = agent.headers["X-Amz-Content-SHA256"]
    creds = Credentials(real.access_key_id, real.secret_access_key, real.session_token)
    expected = _signed(cls(creds, service, region), expected_request, T0, context)
    assert resigned.headers["authorization"] == expected.headers["Authorization"]
    assert resigned.headers["x-amz-date"] == expected.headers["X-Amz-Date"]
    assert resigned.headers["x-amz-security-token"] == real.session_token
    assert resigned.target is None  # botocore's query encoding is already canonical
    assert FAKE_SESSION_TOKEN not in str(resigned.headers)


def test_only_the_agents_signed_headers_are_signed(fake_token: str) -> None:
    url = "https://bkt.s3.amazonaws.com/k"
    agent = _signed(
        S3SigV4Auth(Credentials(fake_token, FAKE_SECRET_KEY), "s3", "us-east-1"),
        AWSRequest(method="GET", url=url),
        T0,
    )
    sent = [("host", "bkt.s3.amazonaws.com"), *agent.headers.items(), ("x-added-later", "1")]
    sig = find_signature(agent.headers["Authorization"], "")
    resigned = resign_headers("GET", "https://bkt.s3.amazonaws.com", "/k", sent, sig, REAL, T0)
    assert (
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date," in resigned.headers["authorization"]
    )


def test_a_signed_header_missing_from_the_request_is_a_clear_refusal(fake_token: str) -> None:
    sig = parse_authorization(
        f"AWS4-HMAC-SHA256 Credential={fake_token}/20261123/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-meta-gone, Signature=" + "0" * 64
    )
    with pytest.raises(MalformedSignature, match="signed header x-amz-meta-gone is not in"):
        resign_headers(
            "GET", "https://s3.amazonaws.com", "/", [("host", "s3.amazonaws.com")], sig, REAL, T0
        )


def test_a_query_in_another_encoding_is_sent_and_signed_in_the_canonical_one() -> None:
    assert canonical_query("prefix=a b&x=%7e&acl") == "prefix=a%20b&x=~&acl"
    sig = parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AK/20261123/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64
    )
    resigned = resign_headers(
        "GET",
        "https://s3.amazonaws.com",
        "/b?prefix=a b",
        [("host", "s3.amazonaws.com")],
        sig,
        REAL,
        T0,
    )
    assert resigned.target == "/b?prefix=a%20b"


@pytest.mark.parametrize("real", [REAL, REAL_SESSION], ids=["key", "session"])
@pytest.mark.parametrize(
    ("service", "url", "cls"),
    [
        (
            "s3",
            "https://bkt.s3.us-east-1.amazonaws.com/a%20b%2Bc/%C3%A9?versionId=v1",
            S3SigV4QueryAuth,
        ),
        (
            "sts",
            "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
            SigV4QueryAuth,
        ),
    ],
)
def test_presigned_urls_are_resigned_as_botocore_presigns_with_the_real_key(
    fake_token: str, real: AwsCredentials, service: str, url: str, cls: type[SigV4QueryAuth]
) -> None:
    fake = Credentials(fake_token, FAKE_SECRET_KEY, FAKE_SESSION_TOKEN)
    agent = _signed(cls(fake, service, "us-east-1", expires=3600), AWSRequest("GET", url), T0)
    origin, target = _target(agent.url)
    host = urlsplit(url).netloc
    sig = find_signature(None, urlsplit(agent.url).query)
    assert sig.presigned and sig.access_key_id == fake_token

    later = T0 + timedelta(seconds=100)
    resigned = resign_presigned("GET", origin, target, [("host", host)], sig, real, later)

    creds = Credentials(real.access_key_id, real.secret_access_key, real.session_token)
    expected = _signed(
        cls(creds, service, "us-east-1", expires=3500), AWSRequest("GET", url), later
    )
    assert resigned.target is not None
    got = dict(parse_qsl(urlsplit(resigned.target).query))
    want = dict(parse_qsl(urlsplit(expected.url).query))
    assert got == want  # same signature, same expiry instant (3600 - 100 s), same parameters
    assert got["X-Amz-Expires"] == "3500"
    assert fake_token not in resigned.target and FAKE_SESSION_TOKEN not in resigned.target


def test_an_expired_presigned_url_is_refused(fake_token: str) -> None:
    fake = Credentials(fake_token, FAKE_SECRET_KEY)
    url = "https://bkt.s3.amazonaws.com/k"
    agent = _signed(
        S3SigV4QueryAuth(fake, "s3", "us-east-1", expires=60), AWSRequest("GET", url), T0
    )
    origin, target = _target(agent.url)
    sig = find_signature(None, urlsplit(agent.url).query)
    with pytest.raises(PresignExpired, match="the presigned URL has expired"):
        resign_presigned(
            "GET",
            origin,
            target,
            [("host", "bkt.s3.amazonaws.com")],
            sig,
            REAL,
            T0 + timedelta(seconds=60),
        )


@pytest.mark.parametrize(
    ("authorization", "query", "error", "message"),
    [
        ("AWS seks_aws_x:c2lnbmF0dXJl", "", SignatureUnsupported, "SigV2 signatures .* s3v4"),
        (
            None,
            "AWSAccessKeyId=seks_aws_x&Signature=x&Expires=1",
            SignatureUnsupported,
            "SigV2 presigned URLs .* s3v4",
        ),
        (
            "AWS4-ECDSA-P256-SHA256 Credential=a/20261123/s3/aws4_request, SignedHeaders=host, "
            "Signature=00",
            "",
            SignatureUnsupported,
            "SigV4a",
        ),
        (None, "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256", SignatureUnsupported, "SigV4a"),
        ("Bearer x", "", MalformedSignature, "is not an AWS4-HMAC-SHA256 signature"),
        ("AWS4-HMAC-SHA256 Credential=a/b", "", MalformedSignature, "needs exactly Credential"),
        (
            "AWS4-HMAC-SHA256 Credential=a/2026/us-east-1/s3/aws4_request, SignedHeaders=host, "
            "Signature=0",
            "",
            MalformedSignature,
            "YYYYMMDD",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=a/20261123/us-east-1/s3/aws4_request, "
            "SignedHeaders=x-amz-date, Signature=0",
            "",
            MalformedSignature,
            "must include host",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=a/20261123/us-east-1/s3/aws4_request, "
            "SignedHeaders=Host;X, Signature=0",
            "",
            MalformedSignature,
            "lower-case headers",
        ),
        (
            None,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20261123%2Fus-east-1%2Fs3%2Faws4_request",
            MalformedSignature,
            "has no X-Amz-Date",
        ),
        (
            None,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20261123%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=20261123T000000Z&X-Amz-Expires=999999&X-Amz-SignedHeaders=host&X-Amz-Signature=0",
            MalformedSignature,
            "X-Amz-Expires must be 1 to 604800",
        ),
        (
            None,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2F20261123%2Fus-east-1%2Fs3%2Faws4_request"
            "&X-Amz-Date=yesterday&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=0",
            MalformedSignature,
            "X-Amz-Date is not",
        ),
    ],
)
def test_signatures_that_cannot_be_resigned_are_refused_with_the_reason(
    authorization: str | None, query: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        find_signature(authorization, query)
    assert "seks_aws_x" not in str(caught.value)


def test_what_holds_a_key_does_not_print_it() -> None:
    assert "Secret" not in repr(REAL) and REAL.secret_access_key not in repr(REAL)
    assert REAL_SESSION.session_token not in str(REAL_SESSION)  # type: ignore[operator]
    sig = parse_authorization(
        "AWS4-HMAC-SHA256 Credential=seks_aws_abc/20261123/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64
    )
    assert "seks_aws_abc" not in repr(sig)
    resigned = resign_headers(
        "GET",
        "https://s3.amazonaws.com",
        "/",
        [("host", "s3.amazonaws.com")],
        sig,
        REAL_SESSION,
        T0,
    )
    assert resigned.signature not in repr(resigned)
    assert REAL_SESSION.session_token not in repr(resigned)  # type: ignore[operator]
