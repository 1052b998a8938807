"""The SEKS addon's audit: its writer, refusals answered once their row is committed, and
rows nobody waits for."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mitmproxy import http

from seks.addon.records import audit_event, console_line, refusal_response
from seks.errors import AuditUnavailable, RequestRefused
from seks.store.audit import AuditEvent
from seks.store.audit_chain import AuditKeys
from seks.store.audit_writer import AuditWriter
from seks.store.tokens import TokenInfo

if TYPE_CHECKING:
    from seks.config import Config

__all__ = ["Audited"]

log = logging.getLogger("seks")


class Audited:
    """A base of :class:`~seks.addon.flow.SeksAddon`: owns the audit writer; mitmproxy
    loads no hooks from it."""

    if TYPE_CHECKING:
        config: Config

    def __init__(self) -> None:
        self._audit_writer: AuditWriter | None = None
        self._vault_path: Path | None = None
        self._audit_key = b""
        self.audit_keys: AuditKeys | None = None  # hashes a request's token and query string

    def _open_audit(self, vault_path: Path, key: bytes, keys: AuditKeys) -> None:
        self._vault_path, self._audit_key, self.audit_keys = vault_path, key, keys

    def _close_audit(self) -> None:
        if self._audit_writer is not None:
            self._audit_writer.close()  # commits the rows still queued
            self._audit_writer = None
        self._vault_path = None

    def _audit(self) -> AuditWriter:
        """Created on first use, inside the proxy's event loop. (Not a property: mitmproxy
        reads every attribute of an addon when it collects commands.)"""
        if self._audit_writer is None or not self._audit_writer.alive:
            # A writer that could not open the vault has refused its rows; try anew.
            assert self._vault_path is not None
            self._audit_writer = AuditWriter(
                self._vault_path,
                self._audit_key,
                asyncio.get_running_loop(),
                busy_timeout=self.config.audit_timeout,
            )
        return self._audit_writer

    def _start_audit(self) -> None:
        """Start the writer before the first request waits for it (a process: ~0.1 s)."""
        if self._vault_path is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not inside the proxy's loop: the first request starts it
        try:
            self._audit()
        except AuditUnavailable as e:
            log.warning("SEKS: %s; the first audited request tries again", e)

    def submit(self, event: AuditEvent) -> None:
        """Queue an audit row nobody waits for (for the other SEKS addons)."""
        self._submit(event)

    async def _refuse(
        self,
        flow: http.HTTPFlow,
        err: RequestRefused,
        info: TokenInfo | None,
        *,
        token: str | None = None,
    ) -> None:
        """Answer the agent with the refusal, once its audit row is committed (so an operator
        who looks right after the agent's error finds the row); the refusal stands either way."""
        flow.response = refusal_response(flow, err)
        flow.metadata["seks_refused"] = True
        log.info(console_line(flow, f"refused: {err.type}"))
        event = audit_event(
            flow,
            "request.denied",
            info,
            keys=self.audit_keys,
            token=token,
            decision="deny",
            reason=err.reason,
            status=err.status,
        )
        if isinstance(err, AuditUnavailable):
            # The audit just failed: waiting for it again would only double the agent's wait.
            self._submit(event)
            return
        if self._vault_path is None:
            log.warning("SEKS: %s not audited: no vault is open", event.event)
            return
        try:
            await self._audit().commit(event)
        except RequestRefused as e:
            log.warning("SEKS: could not audit %s: %s", event.event, e)

    def _submit(self, event: AuditEvent) -> None:
        if self._vault_path is None:
            log.warning("SEKS: %s not audited: no vault is open", event.event)
            return
        try:
            self._audit().submit(event)
        except RequestRefused as e:
            log.warning("SEKS: could not audit %s: %s", event.event, e)
