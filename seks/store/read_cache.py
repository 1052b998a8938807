"""What the proxy reads from the vault for every request, kept until the vault changes.

A request with a token read the vault five or six times (the token, the secret and its tenant
key, the secrets' fingerprint, the agent's and the secret's flags), each a read transaction of
its own: measured with bench/ablation.py, about a tenth of bare mitmproxy's CPU per request.

Every write to the tables these come from moves a counter (triggers from migration
m007_change_counter, so writes by any process and through plain SQL count). :meth:`refresh`
reads the counter, one statement, and forgets everything when it moved: the proxy refreshes
once per request (and once per response it scrubs), so a token revoked or a secret rotated
by `seks` in another process counts from the next request on, as before.

No plaintext is kept. A secret is kept as stored (ciphertext and wrapped keys) and decrypted
at each use; tenant keys are kept unwrapped by the vault itself, as they always were.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from seks.store import approvals, proxy_auth, tokens
from seks.store.db import changes
from seks.store.secret import Secret
from seks.store.tokens import TokenInfo
from seks.store.vault import Vault

__all__ = ["ReadCache"]

T = TypeVar("T")


class ReadCache:
    """Reads through one vault connection; use it from one thread (the proxy's event loop)."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._seen: int | None = None
        self._rows: dict[tuple[object, ...], object] = {}

    def __repr__(self) -> str:
        return f"ReadCache({len(self._rows)} entries)"

    def refresh(self) -> None:
        """Forget everything if the vault changed since the last refresh."""
        now = changes(self._vault.db)
        if now != self._seen:
            self._rows.clear()
            self._seen = now

    def _get(self, key: tuple[object, ...], load: Callable[[], T]) -> T:
        if self._seen is None:
            self.refresh()
        try:
            return self._rows[key]  # type: ignore[return-value]
        except KeyError:
            value = self._rows[key] = load()  # a refusal (NotFound, UnknownToken) is not kept
            return value

    def resolve_token(self, token: str, *, now: float | None = None) -> TokenInfo:
        """As :meth:`Vault.resolve_token`: revocation, expiry and uses are checked at each call."""
        parsed = tokens.parse(token)  # a typo is refused before any lookup
        digest = self._vault.token_hash(token)
        info = self._get(("token", digest), lambda: tokens.lookup(self._vault.db, digest))
        return tokens.live(info, parsed, time.time() if now is None else now)

    def reveal_secret(self, name: str, *, tenant: str) -> Secret:
        """As :meth:`Vault.reveal_secret`: decrypted now, from the row as stored."""
        sealed = self._get(
            ("secret", tenant, name), lambda: self._vault.sealed_secret(name, tenant=tenant)
        )
        return self._vault.open_sealed(sealed)

    def secrets_fingerprint(self, tenant: str | None) -> tuple[object, ...]:
        return self._get(("fingerprint", tenant), lambda: self._vault.secrets_fingerprint(tenant))

    def requires_proxy_auth(self, tenant: str, agent: str) -> bool:
        return self._get(
            ("proxy_auth", tenant, agent),
            lambda: proxy_auth.requires_proxy_auth(self._vault.db, tenant, agent),
        )

    def requires_approval(self, tenant: str, secret_name: str) -> bool:
        return self._get(
            ("approval", tenant, secret_name),
            lambda: approvals.requires_approval(self._vault.db, tenant, secret_name),
        )
