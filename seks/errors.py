"""The one SEKS error tree, and the one map from an error to what an agent sees.

    SeksError
    ├── ConfigError            bad config file, option or CLI value
    ├── VaultError             the vault cannot do what was asked
    │   ├── WrongMasterKey     the master key does not open this vault
    │   ├── TamperedBlob       a ciphertext failed authentication (any kind of tampering)
    │   ├── NotFound
    │   └── AlreadyExists
    └── RequestRefused         a request the proxy will not forward; carries status and type
        ├── MalformedToken     401 seks_unknown_token (bad shape or checksum: a typo)
        ├── UnknownToken       401 seks_unknown_token
        ├── TokenExpired       401 seks_token_expired
        ├── TokenRevoked       401 seks_token_revoked
        ├── HostNotAllowed     403 seks_host_not_allowed
        ├── TokenMisplaced     403 seks_token_misplaced
        ├── UsesExhausted      403 seks_uses_exhausted (a --max-uses/--single-use token used up)
        ├── IpNotAllowed       403 seks_ip_not_allowed (client outside the token's --allow-ip)
        ├── ScopeNotAllowed    403 seks_scope_not_allowed (method/path outside its --allow)
        ├── RateLimited        429 seks_rate_limited (over the token's --rate; Retry-After)
        ├── ApprovalDenied     403 seks_approval_denied (a person said no)
        │   └── ApprovalExpired    403 seks_approval_denied (nobody answered in time)
        ├── ProxyAuthRequired  407 seks_proxy_auth_required (the agent must authenticate)
        ├── ProxyAuthFailed    407 seks_proxy_auth_failed (its proxy credentials are wrong)
        ├── AgentMismatch      403 seks_agent_mismatch (authenticated as another agent)
        ├── BadSignature       400 seks_bad_signature (AWS: a signature the proxy cannot re-sign)
        │   ├── MalformedSignature   a SigV4 Authorization or presigned URL that does not parse
        │   ├── SignatureUnsupported SigV2, SigV4a, event-stream bodies
        │   └── PresignExpired       403: the presigned URL's own expiry has passed
        ├── AuditUnavailable   503 seks_audit_unavailable
        ├── VaultUnavailable   503 seks_vault_error (the credential could not be decrypted)
        └── UpstreamError      502 seks_upstream_error

Messages never contain a token or a secret: they are written for the person or agent reading
them, and end up in CLI output, audit rows and HTTP bodies.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "AgentMismatch",
    "AlreadyExists",
    "ApprovalDenied",
    "ApprovalExpired",
    "AuditUnavailable",
    "BadSignature",
    "ConfigError",
    "HostNotAllowed",
    "IpNotAllowed",
    "MalformedSignature",
    "MalformedToken",
    "NotFound",
    "PresignExpired",
    "ProxyAuthFailed",
    "ProxyAuthRequired",
    "RateLimited",
    "RequestRefused",
    "ScopeNotAllowed",
    "SeksError",
    "SignatureUnsupported",
    "TamperedBlob",
    "TokenExpired",
    "TokenMisplaced",
    "TokenRevoked",
    "UnknownToken",
    "UpstreamError",
    "UsesExhausted",
    "VaultError",
    "VaultUnavailable",
    "WrongMasterKey",
    "agent_error_body",
]


class SeksError(Exception):
    """Base of every error SEKS raises on purpose. ``str(e)`` is safe to show."""


class ConfigError(SeksError):
    """A config key, option or CLI value is invalid; the message names it."""


class VaultError(SeksError):
    pass


class WrongMasterKey(VaultError):
    def __init__(self) -> None:
        super().__init__(
            "the master key does not open this vault "
            "(check SEKS_MASTER_KEY or the key file in the SEKS home)"
        )


class TamperedBlob(VaultError):
    """One opaque error for every kind of tampering, as in Fernet: no oracle for the attacker."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} failed authentication: the vault was modified or is corrupt")


class NotFound(VaultError):
    pass


class AlreadyExists(VaultError):
    pass


class RequestRefused(SeksError):
    """A request the proxy will not forward. ``reason`` is a short stable word for the audit.

    ``token`` is the record of the token involved, when it is known (an expired or revoked
    token still says whose it was), so the audit row can name it.
    """

    status = 403
    type = "seks_refused"
    reason = "refused"

    def __init__(self, message: str, *, token: Any = None) -> None:
        super().__init__(message)
        self.token = token

    def response_headers(self) -> dict[str, str]:
        """Headers the refusal's HTTP response carries besides its content type."""
        return {}


class MalformedToken(RequestRefused):
    status = 401
    type = "seks_unknown_token"
    reason = "malformed_token"


class UnknownToken(RequestRefused):
    status = 401
    type = "seks_unknown_token"
    reason = "unknown_token"


class TokenExpired(RequestRefused):
    status = 401
    type = "seks_token_expired"
    reason = "token_expired"


class TokenRevoked(RequestRefused):
    status = 401
    type = "seks_token_revoked"
    reason = "token_revoked"


class HostNotAllowed(RequestRefused):
    status = 403
    type = "seks_host_not_allowed"
    reason = "host_not_allowed"


class TokenMisplaced(RequestRefused):
    status = 403
    type = "seks_token_misplaced"
    reason = "token_misplaced"


class BadSignature(RequestRefused):
    status = 400
    type = "seks_bad_signature"
    reason = "bad_signature"


class MalformedSignature(BadSignature):
    reason = "malformed_signature"


class SignatureUnsupported(BadSignature):
    reason = "signature_unsupported"


class PresignExpired(BadSignature):
    status = 403
    reason = "presign_expired"


class AuditUnavailable(RequestRefused):
    status = 503
    type = "seks_audit_unavailable"
    reason = "audit_unavailable"


class VaultUnavailable(RequestRefused):
    status = 503
    type = "seks_vault_error"
    reason = "vault_error"


class UpstreamError(RequestRefused):
    status = 502
    type = "seks_upstream_error"
    reason = "upstream_error"


class UsesExhausted(RequestRefused):
    status = 403
    type = "seks_uses_exhausted"
    reason = "uses_exhausted"


class IpNotAllowed(RequestRefused):
    status = 403
    type = "seks_ip_not_allowed"
    reason = "ip_not_allowed"


class ScopeNotAllowed(RequestRefused):
    status = 403
    type = "seks_scope_not_allowed"
    reason = "scope_not_allowed"


class RateLimited(RequestRefused):
    status = 429
    type = "seks_rate_limited"
    reason = "rate_limited"

    def __init__(self, message: str, *, retry_after: float = 1.0, token: Any = None) -> None:
        super().__init__(message, token=token)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        # Whole seconds, rounded up (RFC 9110 §10.2.3); the SDKs wait this long before a retry.
        return {"retry-after": str(max(1, int(-(-self.retry_after // 1))))}


class ApprovalDenied(RequestRefused):
    status = 403
    type = "seks_approval_denied"
    reason = "approval_denied"


class ApprovalExpired(ApprovalDenied):
    reason = "approval_expired"


class ProxyAuthRequired(RequestRefused):
    status = 407
    type = "seks_proxy_auth_required"
    reason = "proxy_auth_required"

    def response_headers(self) -> dict[str, str]:
        return {"proxy-authenticate": 'Basic realm="seks"'}


class ProxyAuthFailed(ProxyAuthRequired):
    type = "seks_proxy_auth_failed"
    reason = "proxy_auth_failed"


class AgentMismatch(RequestRefused):
    status = 403
    type = "seks_agent_mismatch"
    reason = "agent_mismatch"


def agent_error_body(err: RequestRefused) -> bytes:
    """The JSON body an agent gets for a refusal.

    One shape that both the OpenAI SDKs (``error.message``/``error.type``/``error.code``) and the
    Anthropic SDKs (top-level ``type: "error"`` and ``error.type``) parse into their own errors.
    """
    body = {
        "type": "error",
        "error": {"type": err.type, "code": err.type, "message": f"SEKS: {err}"},
    }
    return json.dumps(body).encode()
