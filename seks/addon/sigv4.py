"""AWS SigV4: read the signature an agent made with its fake key, and make it again with the real.

The agent signs with its ``seks_aws_…`` access key id and a placeholder secret key. The proxy
keeps everything the agent signed (method, path, query, the headers in its SignedHeaders, the
payload hash it declared, its region and service) and signs it again with botocore's signers
and the real key: only ``Authorization`` (or the presigned URL's ``X-Amz-*`` parameters),
``X-Amz-Date`` and ``X-Amz-Security-Token`` change. Facts behind the details: shared notes,
aws-sigv4.md.

- S3 signs the path as sent; other services encode it once more (botocore's signers know).
- ``S3SigV4Auth.add_auth`` would rewrite ``X-Amz-Content-SHA256``; building the signature from
  ``canonical_request``/``string_to_sign``/``signature`` keeps the agent's payload mode.
- A presigned URL keeps its original expiry instant; an expired one is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from seks.errors import MalformedSignature, PresignExpired, SignatureUnsupported
from seks.store.aws_credentials import AwsCredentials

__all__ = [
    "ClientSignature",
    "Resigned",
    "find_signature",
    "resign_headers",
    "resign_presigned",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# Headers the proxy sets itself; everything else the agent signed is signed again as it is.
_REPLACED = ("authorization", "x-amz-date", "x-amz-security-token")
_AUTH_QUERY = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
)
_S3_SERVICES = ("s3", "s3-object-lambda")
_SCOPE_RE = re.compile(
    r"(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request"
)
_HEADER_NAME_RE = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")
_MAX_PRESIGN = 7 * 24 * 3600  # AWS's own limit on X-Amz-Expires
S3V4_HINT = (
    "sign with SigV4: in boto3, Config(signature_version='s3v4'); in the AWS CLI, "
    "`aws configure set default.s3.signature_version s3v4`"
)


@dataclass(frozen=True)
class ClientSignature:
    """What the agent signed: its scope, its SignedHeaders, and for a presigned URL its own
    date and lifetime. Holds no key (the access key id is the agent's fake token)."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    presigned: bool = False
    amz_date: str | None = None  # a presigned URL's X-Amz-Date
    expires: int | None = None  # a presigned URL's X-Amz-Expires

    def __repr__(self) -> str:
        return (
            f"ClientSignature(service={self.service!r}, region={self.region!r}, "
            f"presigned={self.presigned}, access_key_id=<redacted>)"
        )


@dataclass(frozen=True, repr=False)
class Resigned:
    """The result of re-signing: header values to set (None: remove the header), the new
    request target for a presigned URL, and what a signed-chunked body needs."""

    headers: dict[str, str | None]
    target: str | None
    signature: str
    timestamp: str
    scope: str  # DATE/REGION/SERVICE/aws4_request

    def __repr__(self) -> str:
        return f"Resigned(scope={self.scope!r}, headers={sorted(self.headers)}, values=<redacted>)"


def _scope(credential: str, where: str) -> re.Match[str]:
    m = _SCOPE_RE.fullmatch(credential)
    if m is None:
        raise MalformedSignature(
            f"the {where} is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request"
        )
    return m


def _signed_headers(text: str, where: str) -> tuple[str, ...]:
    names = tuple(text.split(";")) if text else ()
    if not names or not all(_HEADER_NAME_RE.fullmatch(n) for n in names):
        raise MalformedSignature(f"the {where} is not a ;-separated list of lower-case headers")
    if "host" not in names:
        raise MalformedSignature(f"the {where} must include host")
    return names


def parse_authorization(value: str) -> ClientSignature:
    """``AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``; anything else is refused
    with the reason (SigV2 and SigV4a have their own)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme == "AWS":
        raise SignatureUnsupported(
            f"SigV2 signatures (Authorization: AWS …) are refused; {S3V4_HINT}"
        )
    if scheme == "AWS4-ECDSA-P256-SHA256":
        raise SignatureUnsupported("SigV4a signatures are refused: sign with SigV4 (one region)")
    if scheme != ALGORITHM:
        raise MalformedSignature(f"the Authorization header is not an {ALGORITHM} signature")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep or key in fields:
            raise MalformedSignature("the Authorization header's fields do not parse")
        fields[key] = val
    if set(fields) != {"Credential", "SignedHeaders", "Signature"}:
        raise MalformedSignature(
            "the Authorization header needs exactly Credential, SignedHeaders and Signature"
        )
    m = _scope(fields["Credential"], "Authorization header's Credential")
    return ClientSignature(
        m["akid"],
        m["date"],
        m["region"],
        m["service"],
        _signed_headers(fields["SignedHeaders"], "Authorization header's SignedHeaders"),
    )


def _query_pairs(query: str) -> list[tuple[str, str]]:
    return [
        (unquote(k), unquote(v)) for k, _, v in (p.partition("=") for p in query.split("&") if p)
    ]


def parse_presigned(query: str) -> ClientSignature:
    params = dict(_query_pairs(query))
    algorithm = params.get("X-Amz-Algorithm")
    if algorithm == "AWS4-ECDSA-P256-SHA256":
        raise SignatureUnsupported("SigV4a presigned URLs are refused: presign with SigV4")
    if algorithm != ALGORITHM:
        raise MalformedSignature(f"the presigned URL's X-Amz-Algorithm is not {ALGORITHM}")
    missing = [k for k in _AUTH_QUERY[:-1] if k not in params]
    if missing:
        raise MalformedSignature(f"the presigned URL has no {missing[0]}")
    m = _scope(params["X-Amz-Credential"], "presigned URL's X-Amz-Credential")
    expires = params["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= _MAX_PRESIGN:
        raise MalformedSignature(f"X-Amz-Expires must be 1 to {_MAX_PRESIGN} seconds")
    _parse_timestamp(params["X-Amz-Date"])
    return ClientSignature(
        m["akid"],
        m["date"],
        m["region"],
        m["service"],
        _signed_headers(params["X-Amz-SignedHeaders"], "presigned URL's X-Amz-SignedHeaders"),
        presigned=True,
        amz_date=params["X-Amz-Date"],
        expires=int(expires),
    )


def find_signature(authorization: str | None, query: str) -> ClientSignature:
    """The agent's signature: the Authorization header, or a presigned URL's parameters."""
    if authorization is not None:
        return parse_authorization(authorization)
    names = {k for k, _ in _query_pairs(query)}
    if "AWSAccessKeyId" in names:
        raise SignatureUnsupported(
            f"SigV2 presigned URLs (AWSAccessKeyId=…) are refused; {S3V4_HINT}, then presign again"
        )
    return parse_presigned(query)


def _parse_timestamp(text: str) -> datetime:
    try:
        return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise MalformedSignature("X-Amz-Date is not YYYYMMDDTHHMMSSZ") from None


def canonical_query(query: str) -> str:
    """The query with every name and value encoded as SigV4 expects (RFC 3986 unreserved
    characters bare, everything else %XX): what is sent is exactly what is signed."""
    items = []
    for part in query.split("&") if query else ():
        key, sep, value = part.partition("=")
        encoded = quote(unquote(key), safe="-_.~")
        items.append(f"{encoded}={quote(unquote(value), safe='-_.~')}" if sep else encoded)
    return "&".join(items)


def _signer(
    creds: AwsCredentials, sig: ClientSignature, *, expires: int | None = None
) -> SigV4Auth:
    credentials = Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token)
    s3 = sig.service in _S3_SERVICES
    if expires is not None:
        cls = S3SigV4QueryAuth if s3 else SigV4QueryAuth
        return cls(credentials, sig.service, sig.region, expires=expires)
    return (S3SigV4Auth if s3 else SigV4Auth)(credentials, sig.service, sig.region)


def _signature(signer: SigV4Auth, request: AWSRequest) -> str:
    """botocore's signature of exactly this request (not ``add_auth``: it would rewrite the
    payload header and take its own clock)."""
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _request(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    sig: ClientSignature,
    timestamp: str,
    body: bytes,
) -> AWSRequest:
    """A botocore request carrying exactly the headers the agent signed (all their values)."""
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        lname = name.lower()
        if lname in sig.signed_headers and lname not in _REPLACED:
            request.headers[lname] = value  # email.message headers: this appends a value
    missing = [h for h in sig.signed_headers if h not in _REPLACED and h not in request.headers]
    if missing:
        raise MalformedSignature(f"the signed header {missing[0]} is not in the request")
    request.context["timestamp"] = timestamp
    return request


def resign_headers(
    method: str,
    origin: str,
    target: str,
    headers: list[tuple[str, str]],
    sig: ClientSignature,
    creds: AwsCredentials,
    now: datetime,
    body: bytes = b"",
) -> Resigned:
    """Sign again what the agent signed in its Authorization header. ``origin`` is the scheme
    and the Host the agent sent, ``target`` the raw path and query as sent; ``body`` is needed
    only when the agent did not sign an ``x-amz-content-sha256`` header (its hash is then
    computed). A query in a non-canonical encoding comes back as a new ``target``."""
    timestamp = now.strftime(TIMESTAMP_FORMAT)
    path, sep, query = target.partition("?")
    normal = f"{path}{sep}{canonical_query(query)}"
    request = _request(method, origin + normal, headers, sig, timestamp, body)
    request.headers["X-Amz-Date"] = timestamp
    if creds.session_token:
        request.headers["X-Amz-Security-Token"] = creds.session_token
    signer = _signer(creds, sig)
    signature = _signature(signer, request)
    scope = signer.credential_scope(request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    authorization = (
        f"{ALGORITHM} Credential={creds.access_key_id}/{scope}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return Resigned(
        {
            "authorization": authorization,
            "x-amz-date": timestamp,
            "x-amz-security-token": creds.session_token,
        },
        normal if normal != target else None,
        signature,
        timestamp,
        scope,
    )


def resign_presigned(
    method: str,
    origin: str,
    target: str,
    headers: list[tuple[str, str]],
    sig: ClientSignature,
    creds: AwsCredentials,
    now: datetime,
) -> Resigned:
    """Sign again a presigned URL, valid until the instant the agent's URL expires."""
    assert sig.amz_date is not None and sig.expires is not None
    expiry = _parse_timestamp(sig.amz_date).timestamp() + sig.expires
    left = int(expiry - now.timestamp())
    if left <= 0:
        raise PresignExpired("the presigned URL has expired: presign it again")
    path, _, query = target.partition("?")
    kept = "&".join(
        p for p in query.split("&") if p and unquote(p.partition("=")[0]) not in _AUTH_QUERY
    )
    timestamp = now.strftime(TIMESTAMP_FORMAT)
    request = _request(method, origin + path, headers, sig, timestamp, b"")
    signer = _signer(creds, sig, expires=left)
    auth = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{creds.access_key_id}/{signer.credential_scope(request)}",
        "X-Amz-Date": timestamp,
        "X-Amz-Expires": str(left),
        "X-Amz-SignedHeaders": signer.signed_headers(signer.headers_to_sign(request)),
    }
    if creds.session_token:
        auth["X-Amz-Security-Token"] = creds.session_token
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='-_.~')}" for k, v in auth.items())
    new_query = "&".join(p for p in (canonical_query(kept), encoded) if p)
    request.url = f"{origin}{path}?{new_query}"
    signature = _signature(signer, request)
    return Resigned(
        {},
        f"{path}?{new_query}&X-Amz-Signature={signature}",
        signature,
        timestamp,
        signer.credential_scope(request),
    )
