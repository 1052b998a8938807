"""What an audit row says about an AWS request: service and region (from the host the proxy
connects to), the operation where the request shows it, and for S3 the bucket and key.

The operation comes from ``X-Amz-Target`` (JSON APIs), an ``Action`` parameter in the query or
in a form body that has arrived (query APIs), or, for S3, the method and the shape of the path.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote

from mitmproxy import http

from seks.addon.aws_hosts import AwsEndpoint

__all__ = ["aws_detail"]

# (method, has bucket, has key) → S3 operation; refined by the query below.
_S3 = {
    ("GET", False, False): "ListBuckets",
    ("PUT", True, False): "CreateBucket",
    ("HEAD", True, False): "HeadBucket",
    ("DELETE", True, False): "DeleteBucket",
    ("GET", True, False): "ListObjects",
    ("PUT", True, True): "PutObject",
    ("GET", True, True): "GetObject",
    ("HEAD", True, True): "HeadObject",
    ("DELETE", True, True): "DeleteObject",
}
_S3_BY_QUERY = [  # (method, query parameter, with key) → operation, first match wins
    ("GET", "list-type", False, "ListObjectsV2"),
    ("GET", "uploads", False, "ListMultipartUploads"),
    ("GET", "location", False, "GetBucketLocation"),
    ("POST", "delete", False, "DeleteObjects"),
    ("POST", "uploads", True, "CreateMultipartUpload"),
    ("POST", "uploadId", True, "CompleteMultipartUpload"),
    ("PUT", "partNumber", True, "UploadPart"),
    ("GET", "uploadId", True, "ListParts"),
    ("DELETE", "uploadId", True, "AbortMultipartUpload"),
    ("GET", "session", False, "CreateSession"),
]


def _s3(method: str, endpoint: AwsEndpoint, path: str, query: str, copy: bool) -> dict[str, str]:
    rest = path.lstrip("/")
    bucket = endpoint.bucket
    if bucket is None and rest:  # path style: /bucket/key
        first, _, rest = rest.partition("/")
        bucket = unquote(first)
    key = unquote(rest) or None
    params = {p.partition("=")[0] for p in query.split("&") if p}
    operation = next(
        (op for m, p, k, op in _S3_BY_QUERY if m == method and p in params and k == bool(key)),
        _S3.get((method, bucket is not None, key is not None)),
    )
    if operation == "PutObject" and copy:
        operation = "CopyObject"
    out = {"bucket": bucket, "key": key, "operation": operation}
    return {k: v for k, v in out.items() if v}


def _action(query: str, request: http.Request) -> str | None:
    target = request.headers.get("x-amz-target")
    if target:
        return target.rpartition(".")[2] or None
    actions = parse_qs(query).get("Action")
    if actions:
        return actions[0]
    body = request.raw_content  # None until a buffered body has arrived
    form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    if body and form and len(body) < 65536:
        actions = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return actions[0] if actions else None


def aws_detail(request: http.Request, endpoint: AwsEndpoint) -> str:
    """The audit row's ``detail`` for a request to an AWS endpoint, as JSON."""
    path, _, query = request.path.partition("?")
    detail: dict[str, str] = {"service": endpoint.service, "region": endpoint.region}
    if endpoint.service in ("s3", "s3express"):
        detail |= _s3(request.method, endpoint, path, query, "x-amz-copy-source" in request.headers)
    else:
        operation = _action(query, request)
        if operation:
            detail["operation"] = operation
    return json.dumps(detail)
