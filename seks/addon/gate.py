"""May this resolved token be used for this request, by this client, now? The checks beyond
the destination (policy.py), in the order a reviewer would ask them:

1. who: if the connection authenticated to the proxy, only its agent's tokens; an agent created
   with ``--proxy-auth`` only on connections that authenticated as it;
2. from where: the client address the proxy sees, against ``--allow-ip``;
3. what: method and path against ``--allow`` scopes;
4. how often: ``--rate``, counted in this proxy process's memory;
5. a person: secrets with ``approval: required`` hold the request until someone decides;
6. how many: a use of a ``--max-uses``/``--single-use`` token is spent last, atomically, so a
   request refused by any check above costs no use.

Refusals carry the token record, so the audit row names it. Proxy credentials are read here
from ``Proxy-Authorization`` (on CONNECT for HTTPS, on each request for plain HTTP) and never
forwarded; mitmproxy's own ``proxyauth`` option is not used, as it would apply to every agent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitmproxy import connection, http

from seks.addon.approval_desk import CLIENT_GONE, STOPPED, ApprovalDesk
from seks.addon.records import audit_event, client_ip, requested_host, safe_path
from seks.config import Config
from seks.errors import (
    AgentMismatch,
    ApprovalDenied,
    ApprovalExpired,
    IpNotAllowed,
    ProxyAuthFailed,
    ProxyAuthRequired,
    RateLimited,
    ScopeNotAllowed,
    VaultUnavailable,
)
from seks.limits import RateWindow, format_duration, ip_allowed, parse_rate, scope_allows
from seks.store import approvals, proxy_auth
from seks.store.approvals import GRANTED, Approval
from seks.store.audit_writer import AuditWriter
from seks.store.gate_store import GateStore
from seks.store.read_cache import ReadCache
from seks.store.vault import DEFAULT_TENANT, TokenInfo, Vault

__all__ = ["ProxyCredential", "TokenGate", "parse_proxy_authorization"]

log = logging.getLogger("seks")
PROXY_AUTHORIZATION = "proxy-authorization"


@dataclass(frozen=True)
class ProxyCredential:
    """What a client sent in Proxy-Authorization. ``valid`` is False when it was not Basic
    credentials at all (then any token on that connection is refused)."""

    username: str
    password: str = field(repr=False)
    valid: bool = True

    def __repr__(self) -> str:
        return f"ProxyCredential(username={self.username!r}, password=<redacted>)"


_MALFORMED = ProxyCredential("", "", valid=False)


def parse_proxy_authorization(value: str) -> ProxyCredential:
    scheme, _, data = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return _MALFORMED
    try:
        decoded = base64.b64decode(data.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return _MALFORMED
    username, sep, password = decoded.partition(":")
    return ProxyCredential(username, password) if sep else _MALFORMED


def _take_credential(flow: http.HTTPFlow) -> ProxyCredential | None:
    """Read and remove Proxy-Authorization: it is for SEKS, never for an upstream."""
    values = flow.request.headers.get_all(PROXY_AUTHORIZATION)
    if not values:
        return None
    del flow.request.headers[PROXY_AUTHORIZATION]
    return parse_proxy_authorization(values[0]) if len(values) == 1 else _MALFORMED


class TokenGate:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rates = RateWindow(clock)
        self._connections: weakref.WeakKeyDictionary[connection.Client, ProxyCredential] = (
            weakref.WeakKeyDictionary()
        )
        self._vault: Vault | None = None
        self._reads: ReadCache | None = None  # the vault's per-request reads
        self._store: GateStore | None = None
        self._desk: ApprovalDesk | None = None
        self._config = Config()
        self._background: set[asyncio.Task[Any]] = set()
        self._held: dict[str, connection.Client] = {}  # approval id → whose request waits

    def open(self, vault: Vault, reads: ReadCache, vault_path: Path, config: Config) -> None:
        self.close()
        self._vault, self._reads, self._config = vault, reads, config
        self._store = GateStore(vault_path, busy_timeout=config.audit_timeout)
        self._desk = ApprovalDesk(self._store)

    def close(self) -> None:
        if self._store is not None:
            assert self._desk is not None
            self._store.close(expire=self._desk.stop(), now=time.time())
        self._vault = self._store = self._desk = None
        self._reads = None

    # -- who is connected -------------------------------------------------------------------

    def remember_connect(self, flow: http.HTTPFlow) -> None:
        """On CONNECT: the credentials hold for every request in the tunnel."""
        credential = _take_credential(flow)
        if credential is not None:
            self._connections[flow.client_conn] = credential

    def client_gone(self, client: connection.Client) -> None:
        """The client hung up: its held requests stop waiting. (mitmproxy does not cancel a
        hook when its client goes away; without this a later approval would send a request
        nobody waits for.)"""
        for approval_id, holder in list(self._held.items()):
            if holder is client and self._desk is not None:
                self._desk.release(approval_id, CLIENT_GONE)

    def credential_for(self, flow: http.HTTPFlow) -> ProxyCredential | None:
        """A plain-HTTP request's own credentials, else its connection's (removing the header
        from every request, tokens or not)."""
        return _take_credential(flow) or self._connections.get(flow.client_conn)

    # -- the checks -------------------------------------------------------------------------

    async def admit(
        self,
        flow: http.HTTPFlow,
        infos: list[TokenInfo],
        credential: ProxyCredential | None,
        audit: AuditWriter,
    ) -> None:
        """Raise the refusal for the first check a token fails; spend its uses last."""
        assert self._vault is not None and self._store is not None
        for info in infos:
            self._check_identity(info, credential)
            self._check_request(flow, info)
        for info in infos:
            await self._check_approval(flow, info, audit)
        for info in infos:
            if info.uses_left is not None:
                await self._store.redeem(info, time.time())

    def _check_identity(self, info: TokenInfo, credential: ProxyCredential | None) -> None:
        assert self._vault is not None and self._reads is not None
        if credential is None:
            if self._reads.requires_proxy_auth(info.tenant, info.agent):
                raise ProxyAuthRequired(
                    f"agent {info.agent} must authenticate to the proxy: use the proxy URL "
                    "with credentials that `seks env` prints",
                    token=info,
                )
            return
        try:
            if not credential.valid:
                raise ProxyAuthFailed("the Proxy-Authorization header is not Basic credentials")
            who = proxy_auth.identify(
                self._vault.db,
                self._vault.proxy_auth_key,
                credential.username,
                credential.password,
                time.time(),
            )
        except ProxyAuthFailed as e:
            raise ProxyAuthFailed(str(e), token=info) from None
        if (who.tenant, who.agent) != (info.tenant, info.agent):
            raise AgentMismatch(
                f"this connection authenticated as another agent; token {info.id} belongs to "
                f"agent {info.agent}",
                token=info,
            )

    def _check_request(self, flow: http.HTTPFlow, info: TokenInfo) -> None:
        ip = client_ip(flow)
        if not ip_allowed(info.allow_ips, ip):
            raise IpNotAllowed(
                f"token {info.id} may not be used from this address ({ip})", token=info
            )
        if not scope_allows(info.scopes, flow.request.method, flow.request.path):
            raise ScopeNotAllowed(
                f"token {info.id} allows only {'; '.join(info.scopes)}, "
                f"not {flow.request.method} {safe_path(flow)}",
                token=info,
            )
        if info.rate is not None:
            wait = self._rates.take(info.id, parse_rate(info.rate))
            if wait is not None:
                raise RateLimited(
                    f"token {info.id} allows {info.rate}; retry in {wait:.1f}s",
                    retry_after=wait,
                    token=info,
                )

    async def _check_approval(
        self, flow: http.HTTPFlow, info: TokenInfo, audit: AuditWriter
    ) -> None:
        assert self._store is not None and self._desk is not None and self._reads is not None
        if not self._reads.requires_approval(info.tenant, info.secret_name):
            return
        now = time.time()
        window = await self._store.active_window(info.tenant, info.agent, info.secret_name, now)
        if window is not None:
            detail = {"approval_id": window.id, "window_until": window.window_until}
            audit.submit(
                audit_event(
                    flow,
                    "approval.granted",
                    info,
                    decision="allow",
                    reason="within_window",
                    detail=json.dumps(detail, sort_keys=True, separators=(",", ":")),
                )
            )
            return
        approval = Approval(
            id=approvals.new_approval_id(),
            tenant=info.tenant,
            agent=info.agent,
            token_id=info.id,
            provider=info.provider,
            secret_name=info.secret_name,
            method=flow.request.method,
            host=requested_host(flow),
            path=safe_path(flow),
            client_ip=client_ip(flow),
            flow_id=flow.id,
            requested_at=now,
            expires_at=now + self._config.approval_timeout,
        )
        # Audited before anyone can be asked: no row, no request to approve (fail closed).
        await audit.commit(
            approval.event(
                "approval.requested",
                actor=info.agent,
                decision="pending",
                reason="approval_required",
            )
        )
        await self._store.open_request(approval)
        ref = (
            approval.id
            if info.tenant == DEFAULT_TENANT
            else f"{approval.id} --tenant {info.tenant}"
        )
        log.info(
            "SEKS: %s %s %s%s waits for approval: seks approve %s (or seks deny)",
            info.agent,
            approval.method,
            approval.host,
            approval.path,
            ref,
        )
        self._held[approval.id] = flow.client_conn
        try:
            state = await self._desk.wait(approval.id, approval.expires_at)
        except asyncio.CancelledError:
            # The proxy stops (or mitmproxy dropped the flow): nobody should be asked any more.
            self._spawn(self._abandon(approval, audit))
            raise
        finally:
            self._held.pop(approval.id, None)
        if state == CLIENT_GONE:
            await self._abandon(approval, audit)
            raise ApprovalExpired(
                f"the client went away before a decision ({approval.id})", token=info
            )
        if state == GRANTED:
            return
        if state == approvals.DENIED:
            raise ApprovalDenied(f"a person denied this request ({approval.id})", token=info)
        if state == approvals.EXPIRED:
            audit.submit(approval.event("approval.expired", decision="deny", reason="timeout"))
            raise ApprovalExpired(
                f"nobody approved this request within "
                f"{format_duration(self._config.approval_timeout)} ({approval.id})",
                token=info,
            )
        assert state == STOPPED
        raise ApprovalExpired(f"the proxy stopped before approval ({approval.id})", token=info)

    async def _abandon(self, approval: Approval, audit: AuditWriter) -> None:
        """Expire a request nobody waits for; a decision that came first stands in the row,
        but the request goes no further either way."""
        if self._store is None:
            return
        try:
            state = await self._store.expire(approval.id, time.time())
        except VaultUnavailable as e:
            log.warning("SEKS: %s; %s expires by its deadline", e, approval.id)
            return
        if state == approvals.EXPIRED:
            audit.submit(approval.event("approval.expired", decision="deny", reason="client_gone"))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
