"""What the audit trail and the console say about a flow: never a secret, never a token.

Paths lose their query string (it can carry keys) and any token in them; the query string and
the token appear in the audit only as keyed hashes. Hosts are the ones the agent asked for,
before an upstream setting sent the request elsewhere.
"""

from __future__ import annotations

from mitmproxy import http

from seks.addon.aws_audit import aws_detail
from seks.addon.aws_errors import aws_error_response, aws_protocol
from seks.addon.aws_hosts import parse_aws_host
from seks.errors import RequestRefused, agent_error_body
from seks.store.audit import AuditEvent
from seks.store.audit_chain import AuditKeys
from seks.store.tokens import TOKEN_CANDIDATE_RE, TokenInfo

__all__ = [
    "audit_event",
    "client_ip",
    "console_line",
    "refusal_response",
    "requested_host",
    "response_bytes",
    "safe_path",
]


def safe_path(flow: http.HTTPFlow) -> str:
    """The path for logs and audit: no query string, and no token if one sits in the path."""
    path = flow.request.path.split("?", 1)[0]
    return TOKEN_CANDIDATE_RE.sub("seks_…", path)


def requested_host(flow: http.HTTPFlow) -> str:
    """The host the agent asked for (the CONNECT target), even after an upstream setting."""
    return str(flow.metadata.get("seks_host", flow.request.host))


def client_ip(flow: http.HTTPFlow) -> str | None:
    peer = flow.client_conn.peername
    return str(peer[0]) if peer else None


def response_bytes(flow: http.HTTPFlow) -> int | None:
    """The size of the response body the agent got, when known (a streamed body without a
    Content-Length is not counted)."""
    response = flow.response
    if response is None:
        return None
    if response.raw_content is not None:
        return len(response.raw_content)
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def audit_event(
    flow: http.HTTPFlow,
    event: str,
    info: TokenInfo | None,
    *,
    keys: AuditKeys | None = None,
    token: str | None = None,
    **fields: object,
) -> AuditEvent:
    """The audit row for a flow. With ``keys``, the query string and the ``token`` the
    request carried are kept as keyed hashes a person can search for (`seks audit hash`).
    A request to AWS says its service, region, operation and S3 bucket and key in ``detail``."""
    query = flow.request.path.partition("?")[2]
    if "detail" not in fields:
        endpoint = parse_aws_host(requested_host(flow))
        if endpoint is not None:
            fields["detail"] = aws_detail(flow.request, endpoint)
    return AuditEvent(
        query_hash=keys.search_hash(query) if keys and query else None,
        token_hash=keys.search_hash(token) if keys and token else None,
        bytes=response_bytes(flow),
        event=event,
        actor=info.agent if info else None,
        tenant=info.tenant if info else None,
        agent=info.agent if info else None,
        token_id=info.id if info else None,
        provider=info.provider if info else None,
        secret_name=info.secret_name if info else None,
        client_ip=client_ip(flow),
        method=flow.request.method,
        host=requested_host(flow),
        path=safe_path(flow),
        flow_id=flow.id,
        **fields,  # type: ignore[arg-type]
    )


def console_line(flow: http.HTTPFlow, what: str) -> str:
    status = flow.response.status_code if flow.response else "error"
    scheme, port = flow.request.scheme, flow.request.port
    where = requested_host(flow)
    if "seks_host" not in flow.metadata and port != (443 if scheme == "https" else 80):
        where += f":{port}"
    return (
        f"{client_ip(flow)} {flow.request.method} {scheme}://{where}{safe_path(flow)}"
        f" -> {status} {what}"
    )


def refusal_response(flow: http.HTTPFlow, err: RequestRefused) -> http.Response:
    """What the agent gets for a refusal: JSON both LLM SDKs parse, or for an AWS endpoint an
    error in the AWS SDK's own protocol, so it raises its usual ClientError."""
    endpoint = parse_aws_host(requested_host(flow))
    if endpoint is not None:
        protocol = aws_protocol(endpoint.service, flow.request.headers)
        status, headers, body = aws_error_response(err, protocol)
        return http.Response.make(status, body, headers)
    return http.Response.make(
        err.status,
        agent_error_body(err),
        {"content-type": "application/json", **err.response_headers()},
    )
