"""The vault's token operations: issue, list, revoke, resolve. Mixed into :class:`Vault`.

Kept apart from tenants, secrets and agents (vault.py) because tokens answer another question:
who holds what, until when, within which limits.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import sqlite_utils

from seks.errors import AlreadyExists, ConfigError, NotFound
from seks.limits import TokenLimits
from seks.store import proxy_auth, tokens
from seks.store.audit import AuditLog
from seks.store.db import write_tx
from seks.store.tokens import TokenInfo, check_ttl

if TYPE_CHECKING:
    from seks.store.vault import SecretInfo

__all__ = ["DEFAULT_TENANT", "TokenOps", "in_tenant", "tenant_flag"]

DEFAULT_TENANT = "default"


def in_tenant(tenant: str) -> str:
    """Where, in a message: only a tenant other than the default is named."""
    return "" if tenant == DEFAULT_TENANT else f" in tenant {tenant!r}"


def tenant_flag(tenant: str) -> str:
    return "" if tenant == DEFAULT_TENANT else f" --tenant {tenant}"


class TokenOps:
    """Needs from the vault it is mixed into: its connection, audit log, token pepper, and
    the agent and secret lookups below."""

    db: sqlite_utils.Database
    audit: AuditLog
    _pepper: bytes

    if TYPE_CHECKING:

        def _agent_exists(self, tenant: str, name: str) -> bool: ...
        def _require_secret(self, tenant: str, name: str) -> SecretInfo: ...
        def list_secrets(self, *, tenant: str = DEFAULT_TENANT) -> list[SecretInfo]: ...

    def issue_token(
        self,
        agent: str,
        provider: str,
        *,
        secret_name: str | None = None,
        ttl: float | None = None,
        tenant: str = DEFAULT_TENANT,
        session: str | None = None,
        limits: TokenLimits | None = None,
        max_ttl: float | None = None,
        now: float | None = None,
    ) -> tuple[str, TokenInfo]:
        """Mint a token bound to one secret. Returns the token (shown once) and its record."""
        (token,) = self.issue_tokens(
            agent,
            [(provider, secret_name)],
            ttl=ttl,
            tenant=tenant,
            session=session,
            limits=limits,
            max_ttl=max_ttl,
            now=now,
        )
        return token, self._token_info_of(token)

    def issue_tokens(
        self,
        agent: str,
        wanted: list[tuple[str, str | None]],
        *,
        ttl: float | None = None,
        tenant: str = DEFAULT_TENANT,
        session: str | None = None,
        limits: TokenLimits | None = None,
        max_ttl: float | None = None,
        now: float | None = None,
    ) -> list[str]:
        """Mint one token per (provider, secret or None), all in one transaction: all or none.

        ``max_ttl`` is the config's ``max_token_ttl``: a longer ttl is refused, and a token
        without a ttl gets that one."""
        now = time.time() if now is None else now
        ttl = check_ttl(ttl, max_ttl)
        limits = limits or TokenLimits()
        minted = []
        with write_tx(self.db):
            if not self._agent_exists(tenant, agent):
                raise NotFound(
                    f"no agent {agent!r}{in_tenant(tenant)}: "
                    f"create it with `seks agent create {agent}{tenant_flag(tenant)}`"
                )
            for provider, secret_name in wanted:
                secret = self._secret_for(tenant, provider, secret_name)
                token = tokens.mint(provider)
                info = TokenInfo(
                    id=tokens.new_public_id(),
                    tenant=tenant,
                    agent=agent,
                    provider=provider,
                    secret_name=secret,
                    created_at=now,
                    expires_at=None if ttl is None else now + ttl,
                    revoked_at=None,
                    session=session,
                    max_uses=limits.max_uses,
                    uses_left=limits.max_uses,
                    allow_ips=limits.allow_ips,
                    scopes=limits.scopes,
                    rate=limits.rate,
                    aws_regions=limits.aws_regions if provider == "aws" else (),
                    aws_services=limits.aws_services if provider == "aws" else (),
                )
                tokens.insert_record(
                    self.db, self.audit, tokens.token_hash(self._pepper, token), info, token=token
                )
                minted.append(token)
        return minted

    def _token_info_of(self, token: str) -> TokenInfo:
        return tokens.lookup(self.db, tokens.token_hash(self._pepper, token))

    def _secret_for(self, tenant: str, provider: str, secret_name: str | None) -> str:
        if secret_name is not None:
            info = self._require_secret(tenant, secret_name)
            if info.provider != provider:
                raise ConfigError(
                    f"secret {secret_name!r} is for provider {info.provider!r}, not {provider!r}"
                )
            return secret_name
        names = [s.name for s in self.list_secrets(tenant=tenant) if s.provider == provider]
        if not names:
            raise NotFound(
                f"no secret for provider {provider!r}{in_tenant(tenant)}: "
                f"add one with `seks secret add NAME --provider {provider}{tenant_flag(tenant)}`"
            )
        if len(names) > 1:
            raise ConfigError(
                f"several secrets for provider {provider!r} ({', '.join(names)}): "
                "choose one with --secret"
            )
        return names[0]

    def providers_with_secrets(self, *, tenant: str = DEFAULT_TENANT) -> list[str]:
        return sorted({s.provider for s in self.list_secrets(tenant=tenant)})

    def has_secrets_for(self, provider: str) -> bool:
        """Whether any tenant has a secret for ``provider``."""
        row = self.db.execute("SELECT 1 FROM secrets WHERE provider = ? LIMIT 1", [provider])
        return row.fetchone() is not None

    def list_tokens(
        self, *, tenant: str = DEFAULT_TENANT, agent: str | None = None
    ) -> list[TokenInfo]:
        return tokens.list_records(self.db, tenant=tenant, agent=agent)

    def revoke_token(
        self, token_id: str, *, tenant: str = DEFAULT_TENANT, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        with write_tx(self.db):
            row = self.db.execute(
                "SELECT revoked_at FROM tokens WHERE id = ? AND tenant = ?", [token_id, tenant]
            ).fetchone()
            if row is None:
                raise NotFound(f"no token with id {token_id!r}")
            if row[0] is not None:
                raise AlreadyExists(f"token {token_id} is already revoked")
            tokens.revoke_where(self.db, self.audit, "id = ?", [token_id], now)

    def revoke_session(self, session: str, *, now: float | None = None) -> int:
        """Revoke the tokens (and proxy password) of one `seks env`/`seks exec` session (ids are
        random). Returns how many tokens were revoked."""
        now = time.time() if now is None else now
        with write_tx(self.db):
            proxy_auth.revoke_where(self.db, self.audit, "session = ?", [session], now)
            return tokens.revoke_where(self.db, self.audit, "session = ?", [session], now)

    def token_hash(self, token: str) -> bytes:
        """How the vault finds a token: HMAC-SHA256 under the token pepper."""
        return tokens.token_hash(self._pepper, token)

    def resolve_token(self, token: str, *, now: float | None = None) -> TokenInfo:
        """The record behind a fake token, or the refusal an agent should see."""
        return tokens.resolve(self.db, self._pepper, token, time.time() if now is None else now)
