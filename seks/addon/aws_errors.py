"""Refusing an AWS request in the client's own protocol, so its SDK raises its usual error.

boto3 then raises ``botocore.exceptions.ClientError`` with ``Error.Code`` as below and
``Error.Message`` ``"SEKS: <the refusal's message> (<its type>)"``: nothing else from the request.
Codes follow what AWS answers in each family of protocols (S3's restxml, the XML of query and
EC2, the JSON of json, rest-json and rpc-v2-cbor), so modelled exceptions such as bedrock's
``AccessDeniedException`` are raised as such:

    refusal                           S3                          query, EC2 and JSON
    unknown or malformed token        403 InvalidAccessKeyId      403 InvalidClientTokenId *
    token expired or revoked          400 ExpiredToken            403 ExpiredToken
    bad signature (SigV2, SigV4a, …)  400 InvalidRequest          400 IncompleteSignature
    rate limited                      503 SlowDown                400 Throttling
    audit, vault or upstream failed   5xx ServiceUnavailable      5xx ServiceUnavailable
    any other (host, scope, ip, …)    403 AccessDenied            403 AccessDenied

JSON codes end in ``Exception`` (``ThrottlingException``); * JSON: UnrecognizedClientException.
A refusal not named here goes by its status (400, 401, 429, 5xx, else denied); the 5xx keep
theirs (502 upstream, 503 audit or vault). botocore backs off and retries the throttled and 5xx
answers as it does AWS's own, and no other. The refusal's own headers (``Retry-After``) are
kept. A HEAD response has no body: there botocore shows the status as the code, as with AWS.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Literal
from xml.sax.saxutils import escape

from seks.addon.aws_hosts import service_protocols
from seks.errors import RequestRefused, TokenExpired, TokenRevoked

__all__ = ["AwsProtocol", "aws_error_response", "aws_protocol"]

AwsProtocol = Literal["s3", "ec2", "query", "json", "rest-json", "rpc-v2-cbor"]

# kind → (S3 code, status), (query and EC2 code, status), (JSON code, status); status 0: the
# refusal's own.
_CODES: dict[str, tuple[tuple[str, int], tuple[str, int], tuple[str, int]]] = {
    "unknown_token": (
        ("InvalidAccessKeyId", 403),
        ("InvalidClientTokenId", 403),
        ("UnrecognizedClientException", 403),
    ),
    "expired_token": (
        ("ExpiredToken", 400),
        ("ExpiredToken", 403),
        ("ExpiredTokenException", 403),
    ),
    "bad_signature": (
        ("InvalidRequest", 400),
        ("IncompleteSignature", 400),
        ("IncompleteSignatureException", 400),
    ),
    "throttled": (("SlowDown", 503), ("Throttling", 400), ("ThrottlingException", 400)),
    "unavailable": (
        ("ServiceUnavailable", 0),
        ("ServiceUnavailable", 0),
        ("ServiceUnavailableException", 0),
    ),
    "denied": (("AccessDenied", 403), ("AccessDenied", 403), ("AccessDeniedException", 403)),
}
_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def aws_protocol(service: str, headers: Mapping[str, str]) -> AwsProtocol:
    """The protocol a request to ``service`` (its signing name) speaks, from its headers, else
    from botocore's models of the services signed as that name."""
    if service in ("s3", "s3express"):
        return "s3"
    if service == "ec2":  # the one service of botocore's "ec2" protocol
        return "ec2"
    return _protocol_from_headers(headers) or _protocol_of_models(service)


def _protocol_from_headers(headers: Mapping[str, str]) -> AwsProtocol | None:
    lower = {k.lower(): v.lower() for k, v in headers.items()}
    content_type = lower.get("content-type", "")
    if lower.get("smithy-protocol") == "rpc-v2-cbor":
        return "rpc-v2-cbor"
    if "x-amz-target" in lower or content_type.startswith("application/x-amz-json-"):
        return "json"
    if content_type.startswith("application/x-www-form-urlencoded"):
        return "query"
    return None


def _protocol_of_models(service: str) -> AwsProtocol:
    # A query request always sends a form, so only an XML-only service's other requests (a
    # presigned GET, route53's REST) are XML; every service added in the last decade is JSON.
    protocols = service_protocols(service)
    if protocols & {"query", "rest-xml"} and not protocols & {"json", "rest-json"}:
        return "query"
    return "rest-json"


def aws_error_response(
    err: RequestRefused, protocol: AwsProtocol, *, request_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the AWS error for ``err``; a random request id by default."""
    family = 0 if protocol == "s3" else 1 if protocol in ("query", "ec2") else 2
    code, status = _CODES[_kind(err)][family]
    status = status or err.status
    message = f"SEKS: {err} ({err.type})"
    request_id = request_id or str(uuid.uuid4())
    headers = {"x-amzn-requestid": request_id}
    if protocol == "s3":
        headers = {"content-type": "application/xml", "x-amz-request-id": request_id}
        body = _xml(
            "<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
            code,
            message,
            request_id,
        )
    elif protocol == "ec2":
        headers["content-type"] = "text/xml;charset=UTF-8"
        body = _xml(
            "<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors>"
            "<RequestID>{}</RequestID></Response>",
            code,
            message,
            request_id,
        )
    elif protocol == "query":
        headers["content-type"] = "text/xml"
        body = _xml(
            "<ErrorResponse><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error>"
            "<RequestId>{}</RequestId></ErrorResponse>",
            "Receiver" if status >= 500 else "Sender",
            code,
            message,
            request_id,
        )
    elif protocol == "rpc-v2-cbor":
        headers |= {"content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
        body = b"\xa2" + b"".join(map(_cbor_text, ("__type", code, "message", message)))
    else:  # json and rest-json: botocore reads the code from __type or x-amzn-ErrorType
        headers["content-type"] = (
            "application/json" if protocol == "rest-json" else "application/x-amz-json-1.1"
        )
        headers["x-amzn-errortype"] = code
        body = json.dumps({"__type": code, "message": message}).encode()
    return status, headers | err.response_headers(), body


def _kind(err: RequestRefused) -> str:
    if isinstance(err, TokenExpired | TokenRevoked):
        return "expired_token"
    by_status = {400: "bad_signature", 401: "unknown_token", 429: "throttled"}
    return by_status.get(err.status) or ("unavailable" if err.status >= 500 else "denied")


def _xml(template: str, *texts: str) -> bytes:
    escaped = (escape(_NOT_XML.sub("\ufffd", text)) for text in texts)
    return (_XML_DECLARATION + template.format(*escaped)).encode()


def _cbor_text(text: str) -> bytes:
    """A CBOR text string (RFC 8949 §3.1, major type 3)."""
    data = text.encode(errors="replace")  # a lone surrogate is no UTF-8
    size = len(data)
    if size < 24:
        head = bytes([0x60 | size])
    elif size < 0x100:
        head = bytes([0x78, size])
    elif size < 0x10000:
        head = b"\x79" + size.to_bytes(2, "big")
    else:
        head = b"\x7a" + size.to_bytes(4, "big")
    return head + data
