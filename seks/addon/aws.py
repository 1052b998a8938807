"""AWS requests in the data flow: where the token sits, what the agent may reach, re-signing.

The agent's ``seks_aws_…`` token is the access key id of its SigV4 signature (Authorization
header or presigned URL). Service and region are decided from the host the proxy connects to,
never from the scope the agent wrote; both must be inside the secret's and the token's
allow-lists. The body streams whenever the payload mode allows: a declared payload hash,
``UNSIGNED-PAYLOAD`` and the streaming modes need only the headers re-signed (the signed-chunked
modes also every chunk signature, as it passes). Only a request that signed no payload hash
(STS, SQS, DynamoDB… send small bodies) is buffered, and re-signed once its body is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

from mitmproxy import http

from seks.addon.aws_hosts import AwsEndpoint, parse_aws_host
from seks.addon.inject import FoundToken
from seks.addon.sigv4 import ClientSignature, find_signature, resign_headers, resign_presigned
from seks.addon.sigv4_chunked import ChunkResigner, signing_key
from seks.errors import HostNotAllowed, MalformedSignature, SignatureUnsupported, TokenMisplaced
from seks.store.aws_credentials import AwsCredentials
from seks.store.tokens import TokenInfo

__all__ = ["AwsUse", "check_aws", "resign", "sign_buffered"]

_SIGNED_CHUNKS = (
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
)
_REFUSED_PAYLOADS = {
    "STREAMING-AWS4-HMAC-SHA256-EVENTS": "event-stream bodies",
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD": "SigV4a signed chunks",
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER": "SigV4a signed chunks",
}


@dataclass(frozen=True)
class AwsUse:
    """What the policy step learned about an AWS request. Holds no key."""

    endpoint: AwsEndpoint
    signature: ClientSignature
    from_scratch: bool = False  # the gateway's S3 shape: the agent did not sign at all

    @property
    def needs_body(self) -> bool:
        """No signed payload hash: the canonical request needs the body's hash."""
        return not self.signature.presigned and "x-amz-content-sha256" not in (
            self.signature.signed_headers
        )


def _authorization(flow: http.HTTPFlow) -> str | None:
    values = flow.request.headers.get_all("authorization")
    if len(values) > 1:
        raise MalformedSignature("the request has more than one Authorization header")
    return values[0] if values else None


def check_aws(
    flow: http.HTTPFlow, token: FoundToken, info: TokenInfo, creds: AwsCredentials
) -> AwsUse:
    """Step 3 for AWS: a signature the proxy can re-sign, the token as its access key id and
    nowhere else, and a service and region (from the host) inside both allow-lists."""
    if flow.metadata.get("seks_gateway") == "aws":
        return _check_gateway(flow, token, info, creds)
    signature = find_signature(_authorization(flow), flow.request.path.partition("?")[2])
    in_header = token.where == "header" and (token.header or "").lower() == "authorization"
    in_query = (
        token.where == "query"
        and token.param == "X-Amz-Credential"
        and unquote(token.value).split("/", 1)[0] == token.token
    )
    if signature.access_key_id != token.token or not (in_header or in_query):
        raise TokenMisplaced(
            f"an aws token was found in {token.describe()}; it is only accepted as the access "
            "key id of a SigV4 signature (Authorization header or presigned URL)"
        )
    payload = flow.request.headers.get("x-amz-content-sha256", "")
    if payload in _REFUSED_PAYLOADS:
        raise SignatureUnsupported(f"{_REFUSED_PAYLOADS[payload]} cannot be re-signed by SEKS")
    endpoint = _endpoint(flow)
    _check_allowed("region", endpoint.region, signature.region, info.aws_regions, creds.regions)
    _check_allowed(
        "service", endpoint.service, signature.service, info.aws_services, creds.services
    )
    return AwsUse(endpoint, signature)


def _endpoint(flow: http.HTTPFlow) -> AwsEndpoint:
    endpoint = parse_aws_host(flow.request.host)
    if endpoint is None:
        raise HostNotAllowed(f"{flow.request.host} is not an AWS endpoint SEKS understands")
    return endpoint


def _check_gateway(
    flow: http.HTTPFlow, token: FoundToken, info: TokenInfo, creds: AwsCredentials
) -> AwsUse:
    """The gateway's S3 shape: the token as ``Authorization: Bearer``, nothing signed yet."""
    if (
        token.where != "header"
        or (token.header or "").lower() != "authorization"
        or (token.value != f"Bearer {token.token}")
    ):
        raise TokenMisplaced(
            f"an aws token was found in {token.describe()}; the gateway's S3 routes take it "
            "only as Authorization: Bearer <token>"
        )
    endpoint = _endpoint(flow)
    _check_allowed("region", endpoint.region, endpoint.region, info.aws_regions, creds.regions)
    _check_allowed("service", "s3", "s3", info.aws_services, creds.services)
    signed = ("host", "x-amz-content-sha256", "x-amz-date")
    signature = ClientSignature(token.token, "", endpoint.region, "s3", signed)
    return AwsUse(endpoint, signature, from_scratch=True)


def _check_allowed(
    what: str, from_host: str, signed: str, by_token: tuple[str, ...], by_secret: tuple[str, ...]
) -> None:
    for source, allowed in (("token", by_token), ("secret", by_secret)):
        if not allowed:
            continue
        if not from_host:
            raise HostNotAllowed(
                f"the host does not name its {what}; this {source} allows only {', '.join(allowed)}"
            )
        for value in dict.fromkeys((from_host, signed)):
            if value not in allowed:
                raise HostNotAllowed(
                    f"{what} {value} is outside this {source}'s allow-list ({', '.join(allowed)})"
                )


def _origin(flow: http.HTTPFlow) -> str:
    """The URL's origin as the agent signed it: its scheme and the Host header it sent."""
    return f"https://{flow.request.host_header or flow.request.host}"


def _headers(flow: http.HTTPFlow) -> list[tuple[str, str]]:
    headers = list(flow.request.headers.items(multi=True))
    if "host" not in flow.request.headers and flow.request.host_header:  # HTTP/2: :authority
        headers.append(("host", flow.request.host_header))
    return headers


def resign(flow: http.HTTPFlow, use: AwsUse, creds: AwsCredentials) -> bool:
    """Step 6 for AWS, in ``requestheaders``. Returns False when the request must wait for its
    body (:func:`sign_buffered` then signs it in the ``request`` hook)."""
    sig = use.signature
    now = datetime.now(UTC)
    if use.from_scratch:  # the body is not hashed: it streams, S3 checks it by its length
        flow.request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
    if use.needs_body:
        return False
    sign = resign_presigned if sig.presigned else resign_headers
    resigned = sign(
        flow.request.method, _origin(flow), flow.request.path, _headers(flow), sig, creds, now
    )
    payload = flow.request.headers.get("x-amz-content-sha256", "")
    if payload in _SIGNED_CHUNKS and not sig.presigned:
        key = signing_key(creds.secret_access_key, resigned.timestamp[:8], sig.region, sig.service)
        flow.request.stream = ChunkResigner(
            key,
            resigned.timestamp,
            resigned.scope,
            resigned.signature,
            trailer=payload.endswith("-TRAILER"),
        )
    else:
        # The body goes through as it comes, never held: a presigned PUT of gigabytes too.
        flow.request.stream = True
    _apply(flow, resigned.headers, resigned.target)
    return True


def sign_buffered(flow: http.HTTPFlow, use: AwsUse, creds: AwsCredentials) -> None:
    """Step 6 for a request whose body had to arrive first (``request`` hook)."""
    resigned = resign_headers(
        flow.request.method,
        _origin(flow),
        flow.request.path,
        _headers(flow),
        use.signature,
        creds,
        datetime.now(UTC),
        flow.request.raw_content or b"",
    )
    _apply(flow, resigned.headers, resigned.target)


def _apply(flow: http.HTTPFlow, headers: dict[str, str | None], target: str | None) -> None:
    for name, value in headers.items():
        if value is None:
            flow.request.headers.pop(name, None)
        else:
            flow.request.headers[name] = value
    if target is not None:
        flow.request.path = target


RESTORED_HEADERS = (
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
)
