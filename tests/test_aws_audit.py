"""What the audit says about AWS requests: service and region from the host, the operation
where the request shows it, S3 bucket and key (decoded) for both addressing styles."""

from __future__ import annotations

import json

import pytest
from mitmproxy import http

from seks.addon.aws_audit import aws_detail
from seks.addon.aws_hosts import parse_aws_host


def detail(method: str, url: str, body: bytes = b"", **headers: str) -> dict[str, str]:
    request = http.Request.make(method, url, body, headers)
    endpoint = parse_aws_host(request.host)
    assert endpoint is not None
    return json.loads(aws_detail(request, endpoint))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("method", "url", "headers", "expected"),
    [
        ("GET", "https://s3.us-east-1.amazonaws.com/", {}, {"operation": "ListBuckets"}),
        (
            "PUT",
            "https://bkt.s3.us-east-1.amazonaws.com/",
            {},
            {"bucket": "bkt", "operation": "CreateBucket"},
        ),
        (
            "PUT",
            "https://bkt.s3.us-east-1.amazonaws.com/a%20b/%C3%A9.txt",
            {},
            {"bucket": "bkt", "key": "a b/é.txt", "operation": "PutObject"},
        ),
        (
            "PUT",
            "https://s3.us-east-1.amazonaws.com/bkt/k",
            {"x-amz-copy-source": "/o/k"},
            {"bucket": "bkt", "key": "k", "operation": "CopyObject"},
        ),
        (
            "GET",
            "https://s3.us-east-1.amazonaws.com/bkt?list-type=2&prefix=a",
            {},
            {"bucket": "bkt", "operation": "ListObjectsV2"},
        ),
        (
            "PUT",
            "https://bkt.s3.us-east-1.amazonaws.com/k?partNumber=1&uploadId=u",
            {},
            {"bucket": "bkt", "key": "k", "operation": "UploadPart"},
        ),
        (
            "POST",
            "https://bkt.s3.us-east-1.amazonaws.com/k?uploads",
            {},
            {"bucket": "bkt", "key": "k", "operation": "CreateMultipartUpload"},
        ),
        (
            "DELETE",
            "https://s3.us-east-1.amazonaws.com/bkt/k%2Bplus",
            {},
            {"bucket": "bkt", "key": "k+plus", "operation": "DeleteObject"},
        ),
        (
            "POST",
            "https://dynamodb.eu-west-1.amazonaws.com/",
            {"x-amz-target": "DynamoDB_20120810.PutItem"},
            {"operation": "PutItem"},
        ),
        (
            "GET",
            "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
            {},
            {"operation": "GetCallerIdentity"},
        ),
    ],
)
def test_the_operation_and_s3_object_are_named(
    method: str, url: str, headers: dict[str, str], expected: dict[str, str]
) -> None:
    got = detail(method, url, **headers)
    region = "eu-west-1" if "eu-west-1" in url else "us-east-1"
    service = url.split("//")[1].split(".", maxsplit=1)[0]
    assert got == {"service": "s3" if "s3." in url else service, "region": region, **expected}


def test_a_form_body_names_the_query_api_operation_once_it_has_arrived() -> None:
    got = detail(
        "POST",
        "https://sts.amazonaws.com/",
        b"Action=AssumeRole&RoleArn=arn&Version=2011-06-15",
        **{"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert got == {"service": "sts", "region": "us-east-1", "operation": "AssumeRole"}
