"""The error tree and the one map from a refusal to the status and JSON body an agent sees."""

from __future__ import annotations

import json

import pytest

from seks import errors
from seks.errors import (
    AgentMismatch,
    AlreadyExists,
    ApprovalDenied,
    ApprovalExpired,
    AuditUnavailable,
    BadSignature,
    ConfigError,
    HostNotAllowed,
    IpNotAllowed,
    MalformedSignature,
    MalformedToken,
    NotFound,
    PresignExpired,
    ProxyAuthFailed,
    ProxyAuthRequired,
    RateLimited,
    RequestRefused,
    ScopeNotAllowed,
    SeksError,
    SignatureUnsupported,
    TamperedBlob,
    TokenExpired,
    TokenMisplaced,
    TokenRevoked,
    UnknownToken,
    UpstreamError,
    UsesExhausted,
    VaultError,
    VaultUnavailable,
    WrongMasterKey,
    agent_error_body,
)
from seks.store import Vault
from seks.store.tokens import mint

# DESIGN.md "Errors an agent sees", plus the refusals errors.py adds.
AGENT_ERRORS = [
    (MalformedToken, 401, "seks_unknown_token", "malformed_token"),
    (UnknownToken, 401, "seks_unknown_token", "unknown_token"),
    (TokenExpired, 401, "seks_token_expired", "token_expired"),
    (TokenRevoked, 401, "seks_token_revoked", "token_revoked"),
    (HostNotAllowed, 403, "seks_host_not_allowed", "host_not_allowed"),
    (TokenMisplaced, 403, "seks_token_misplaced", "token_misplaced"),
    (AuditUnavailable, 503, "seks_audit_unavailable", "audit_unavailable"),
    (VaultUnavailable, 503, "seks_vault_error", "vault_error"),
    (UpstreamError, 502, "seks_upstream_error", "upstream_error"),
    (UsesExhausted, 403, "seks_uses_exhausted", "uses_exhausted"),
    (IpNotAllowed, 403, "seks_ip_not_allowed", "ip_not_allowed"),
    (ScopeNotAllowed, 403, "seks_scope_not_allowed", "scope_not_allowed"),
    (RateLimited, 429, "seks_rate_limited", "rate_limited"),
    (ApprovalDenied, 403, "seks_approval_denied", "approval_denied"),
    (ApprovalExpired, 403, "seks_approval_denied", "approval_expired"),
    (ProxyAuthRequired, 407, "seks_proxy_auth_required", "proxy_auth_required"),
    (ProxyAuthFailed, 407, "seks_proxy_auth_failed", "proxy_auth_failed"),
    (AgentMismatch, 403, "seks_agent_mismatch", "agent_mismatch"),
    (BadSignature, 400, "seks_bad_signature", "bad_signature"),
    (MalformedSignature, 400, "seks_bad_signature", "malformed_signature"),
    (SignatureUnsupported, 400, "seks_bad_signature", "signature_unsupported"),
    (PresignExpired, 403, "seks_bad_signature", "presign_expired"),
]


def test_the_tree_is_as_drawn() -> None:
    for cls in (ConfigError, VaultError, RequestRefused):
        assert issubclass(cls, SeksError)
    for cls in (WrongMasterKey, TamperedBlob, NotFound, AlreadyExists):
        assert issubclass(cls, VaultError)
    for cls, *_ in AGENT_ERRORS:
        assert issubclass(cls, RequestRefused)
        assert not issubclass(cls, VaultError)


def test_every_exported_refusal_has_a_row_here() -> None:
    exported = {
        obj
        for name in errors.__all__
        if isinstance(obj := getattr(errors, name), type)
        and issubclass(obj, RequestRefused)
        and obj is not RequestRefused
    }
    assert exported == {cls for cls, *_ in AGENT_ERRORS}


@pytest.mark.parametrize(("cls", "status", "type_", "reason"), AGENT_ERRORS)
def test_status_type_and_audit_reason(
    cls: type[RequestRefused], status: int, type_: str, reason: str
) -> None:
    err = cls("why it was refused")
    assert (err.status, err.type, err.reason) == (status, type_, reason)


@pytest.mark.parametrize(("cls", "status", "type_", "reason"), AGENT_ERRORS)
def test_agent_body_is_json_both_sdk_families_parse(
    cls: type[RequestRefused], status: int, type_: str, reason: str
) -> None:
    body = json.loads(agent_error_body(cls("the reason, in words")))
    # Anthropic SDKs: top-level type "error" and error.type; OpenAI SDKs: error.message/type/code.
    assert body == {
        "type": "error",
        "error": {"type": type_, "code": type_, "message": "SEKS: the reason, in words"},
    }


def test_agent_body_is_compact_utf8_bytes() -> None:
    body = agent_error_body(HostNotAllowed("not to évil.example.com"))
    assert isinstance(body, bytes)
    assert json.loads(body.decode("utf-8"))["error"]["message"] == "SEKS: not to évil.example.com"


def test_agent_body_holds_only_the_message_not_what_travels_with_the_error() -> None:
    token = mint("openai")
    try:
        try:
            raise ValueError(f"lookup failed for {token}")
        except ValueError as inner:
            err = UnknownToken("this token is not known to the SEKS vault", token=token)
            err.add_note(f"token was {token}")
            raise err from inner
    except UnknownToken as caught:
        body = agent_error_body(caught)
    assert token not in body.decode()
    assert token[12:] not in body.decode()
    assert json.loads(body)["error"]["message"] == "SEKS: this token is not known to the SEKS vault"


def test_the_token_record_travels_with_the_refusal_but_not_into_the_body(vault: Vault) -> None:
    vault.add_secret("k", "openai", "sk-not-a-real-key")
    vault.create_agent("bot")
    token, info = vault.issue_token("bot", "openai")
    vault.revoke_token(info.id)
    with pytest.raises(TokenRevoked) as e:
        vault.resolve_token(token)
    assert e.value.token.id == info.id  # so the audit row can say whose token it was
    body = agent_error_body(e.value).decode()
    assert token not in body
    assert "sk-not-a-real-key" not in body
    assert json.loads(body)["error"]["type"] == "seks_token_revoked"


def test_vault_errors_explain_themselves() -> None:
    assert "SEKS_MASTER_KEY" in str(WrongMasterKey())
    assert str(TamperedBlob("secret 'k'")) == (
        "secret 'k' failed authentication: the vault was modified or is corrupt"
    )


def test_a_rate_refusal_says_when_to_retry_in_whole_seconds() -> None:
    assert RateLimited("slow down", retry_after=0.2).response_headers() == {"retry-after": "1"}
    assert RateLimited("slow down", retry_after=7.01).response_headers() == {"retry-after": "8"}


def test_a_proxy_auth_refusal_names_the_scheme() -> None:
    for cls in (ProxyAuthRequired, ProxyAuthFailed):
        assert cls("who are you").response_headers() == {"proxy-authenticate": 'Basic realm="seks"'}
    assert UnknownToken("no").response_headers() == {}
