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
    "AlreadyExists",
    "AuditUnavailable",
    "ConfigError",
    "HostNotAllowed",
    "MalformedToken",
    "NotFound",
    "RequestRefused",
    "SeksError",
    "TamperedBlob",
    "TokenExpired",
    "TokenMisplaced",
    "TokenRevoked",
    "UnknownToken",
    "UpstreamError",
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
