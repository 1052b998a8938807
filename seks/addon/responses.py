"""Scrubbing what comes back: status line, headers, body and WebSocket messages (step 7).

Which responses: every response to a request that had a credential injected (its tenant's
secrets), or every intercepted response with ``scrub: all`` (all tenants' secrets). Bodies
that could be long-lived or large (SSE, no Content-Length, over 1 MiB) stream through a
:class:`~seks.addon.scrub.StreamScrubber` chunk by chunk; the rest are scrubbed whole, which
costs less per response (shared notes: a per-chunk callable on every response is most of an
addon's overhead).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections import Counter
from dataclasses import dataclass, field

from mitmproxy import http

from seks.addon.flow import SeksAddon
from seks.addon.records import audit_event, console_line
from seks.addon.response_bodies import (
    DECODABLE,
    StreamBody,
    decoder,
    refuse_unscanned,
    replace_with_refusal,
)
from seks.addon.scrub import Matcher, StreamScrubber, scrub
from seks.errors import UpstreamError, agent_error_body
from seks.store.read_cache import ReadCache
from seks.store.tokens import TokenInfo
from seks.store.vault import Vault

__all__ = ["MatcherCache", "ResponseScrubber", "ScrubPlan", "plan_response", "scrub_message"]

log = logging.getLogger("seks")

STREAM_OVER = 1024 * 1024  # bodies larger than this stream instead of being buffered

Counts = Counter[tuple[str, str, str]]  # (secret name, encoding, where) → matches


class MatcherCache:
    """One matcher per tenant (or for all tenants), rebuilt when that tenant's secrets change.

    Secrets are decrypted only to build a matcher and dropped right after; the matcher keeps
    the encodings it must look for.
    """

    def __init__(self) -> None:
        self._cache: dict[str | None, tuple[object, Matcher]] = {}

    async def get(self, vault: Vault, reads: ReadCache, tenant: str | None) -> Matcher:
        reads.refresh()
        fingerprint = reads.secrets_fingerprint(tenant)
        cached = self._cache.get(tenant)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        values = [(s.name, v.encode()) for s in vault.reveal_all(tenant) for v in s.scrub_values()]
        # Compiling a thousand secrets' patterns takes a while: not on the event loop.
        matcher = await asyncio.to_thread(Matcher, values)
        del values
        self._cache[tenant] = (fingerprint, matcher)
        return matcher

    def clear(self) -> None:
        self._cache.clear()


@dataclass
class ScrubPlan:
    """What scrubbing a response needs after its headers: the body's treatment and counts."""

    matcher: Matcher
    streamed: StreamScrubber | None
    counts: Counts = field(default_factory=Counter)
    refused: UpstreamError | None = None
    token: TokenInfo | None = None  # whose request it answers, for the audit

    def scrub_buffered_body(self, response: http.Response) -> None:
        if self.streamed is not None or self.refused is not None or not response.raw_content:
            return
        encoding = response.headers.get("content-encoding", "identity")
        try:
            # Strict: a body that fails to decode would otherwise go on raw, its compressed
            # bytes unscanned (and a lenient decompressor on the agent's side recovers them).
            response.decode(strict=True)
        except ValueError:
            self.refused = UpstreamError(
                f"the upstream's {encoding} body could not be decoded, so it cannot be scanned"
            )
            response.headers.pop("content-encoding", None)
            response.status_code = self.refused.status
            response.reason = "Bad Gateway"
            response.headers["content-type"] = "application/json"
            response.content = agent_error_body(self.refused)
            return
        body, counts = scrub(self.matcher, response.content or b"")
        if counts:
            response.content = body
        self._add(counts, "body")

    def finish(self) -> Counts:
        if self.streamed is not None:
            self._add(self.streamed.counts, "body")
            self.streamed.counts.clear()
        return self.counts

    def _add(self, counts: Counter[tuple[str, str]], where: str) -> None:
        for (secret, encoding), n in counts.items():
            self.counts[(secret, encoding, where)] += n


def _scrub_text(matcher: Matcher, text: str, counts: Counter[tuple[str, str]]) -> str:
    raw = text.encode("utf-8", "surrogateescape")
    out, found = scrub(matcher, raw)
    if not found:
        return text
    counts.update(found)
    return out.decode("utf-8", "surrogateescape")


def plan_response(flow: http.HTTPFlow, matcher: Matcher) -> ScrubPlan:
    """At response headers: scrub the status reason and headers now, and set up the body."""
    response = flow.response
    assert response is not None
    found: Counter[tuple[str, str]] = Counter()
    # One scan of the whole head first: any match in one value is a match here too.
    head = b"\n".join([response.data.reason, *(v for _, v in response.headers.fields)])
    if matcher.find(head):
        response.reason = _scrub_text(matcher, response.reason, found)
        for name in list(response.headers.keys()):
            values = response.headers.get_all(name)
            scrubbed = [_scrub_text(matcher, v, found) for v in values]
            if scrubbed != values:
                response.headers.set_all(name, scrubbed)
    plan = ScrubPlan(matcher, streamed=None)
    plan._add(found, "header")

    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in DECODABLE:
        # Unknown encodings are refused, not passed on unscanned.
        plan.refused = UpstreamError(
            f"the upstream answered in an encoding SEKS cannot scan: {encoding}"
        )
        replace_with_refusal(response, plan.refused)
        return plan
    content_type = response.headers.get("content-type", "")
    length = response.headers.get("content-length")
    stream = not flow.metadata.get("seks_buffer") and (
        content_type.startswith("text/event-stream")
        or length is None
        or not length.isdigit()
        or int(length) > STREAM_OVER
    )
    if not stream:
        return plan  # buffered: scrubbed whole in the response hook
    plan.streamed = StreamScrubber(matcher)
    decode = decoder(encoding)
    if decode is not None:
        # The body is passed on decoded; its length is no longer known in advance.
        del response.headers["content-encoding"]
        response.headers.pop("content-length", None)
        if response.http_version == "HTTP/1.1":
            response.headers["transfer-encoding"] = "chunked"
    response.stream = StreamBody(plan.streamed, decode)
    return plan


def scrub_message(matcher: Matcher, message_content: bytes) -> tuple[bytes, Counts]:
    """One server-to-client WebSocket message, whole."""
    out, found = scrub(matcher, message_content)
    return out, Counter({(s, e, "ws"): n for (s, e), n in found.items()})


class ResponseScrubber:
    """The addon for step 7. Goes right after :class:`SeksAddon`, whose ``responseheaders``
    has put the fake token back by then, and reads which credentials went out from it."""

    def __init__(self, seks: SeksAddon) -> None:
        self.seks = seks
        self._matchers = MatcherCache()
        self._plans: dict[str, ScrubPlan] = {}  # responses being scrubbed
        self._websockets: dict[str, tuple[Matcher, TokenInfo | None]] = {}

    def configure(self, updated: set[str]) -> None:
        if {"seks_home", "seks_config"} & updated:
            self._matchers.clear()

    # mitmproxy logs an exception from a hook and carries on: here that would pass the response
    # on unscanned. So each hook refuses the response instead (fail closed).

    async def responseheaders(self, flow: http.HTTPFlow) -> None:
        try:
            await self._plan(flow)
        except Exception:
            self._unscanned(flow, streaming=True)

    def response(self, flow: http.HTTPFlow) -> None:
        try:
            self._scrub_body(flow)
        except Exception:
            self._unscanned(flow, streaming=False)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        try:
            self._scrub_message(flow)
        except Exception:
            log.exception("SEKS: internal error while scanning a WebSocket message; dropped")
            if flow.websocket is not None and flow.websocket.messages:
                flow.websocket.messages[-1].drop()

    async def _plan(self, flow: http.HTTPFlow) -> None:
        vault, reads = self.seks.vault, self.seks.reads
        tokens = self.seks.injected_tokens(flow)
        if vault is None or reads is None or (not tokens and self.seks.config.scrub != "all"):
            return
        # A response to an injected request is scrubbed with its tenant's secrets; with
        # `scrub: all`, any response with every tenant's.
        tenants = {info.tenant for info in tokens}
        matcher = await self._matchers.get(
            vault, reads, tenants.pop() if len(tenants) == 1 else None
        )
        if not matcher or flow.response is None:
            return
        plan = plan_response(flow, matcher)
        plan.token = tokens[0] if tokens else None
        self._plans[flow.id] = plan
        if flow.response.status_code == 101:
            self._websockets[flow.id] = (matcher, plan.token)

    def _scrub_body(self, flow: http.HTTPFlow) -> None:
        plan = self._plans.get(flow.id)
        if plan is None or flow.response is None:
            return
        plan.scrub_buffered_body(flow.response)
        del self._plans[flow.id]
        self._audit(flow, plan.token, plan.finish())
        if plan.refused is not None:
            log.warning("SEKS: %s", plan.refused)
            self._audit_refusal(flow, plan.token, plan.refused)

    def _unscanned(self, flow: http.HTTPFlow, *, streaming: bool) -> None:
        """An internal error while scanning: the agent gets a 502 instead of the response."""
        log.exception("SEKS: internal error while scanning a response; refused")
        plan = self._plans.pop(flow.id, None)
        self._websockets.pop(flow.id, None)
        token = plan.token if plan else next(iter(self.seks.injected_tokens(flow)), None)
        err = UpstreamError("the response could not be scanned (internal error); not passed on")
        if flow.response is not None:
            refuse_unscanned(flow.response, err, streaming=streaming)
        self._audit_refusal(flow, token, err)

    def _audit_refusal(
        self, flow: http.HTTPFlow, token: TokenInfo | None, err: UpstreamError
    ) -> None:
        # Said apart from request.completed, so a reviewer can tell it from the upstream's own
        # 502.
        row = audit_event(
            flow,
            "response.refused",
            token,
            keys=self.seks.audit_keys,
            decision="deny",
            reason=err.reason,
            status=err.status,
        )
        detail = json.dumps({"message": str(err)})
        self.seks.submit(dataclasses.replace(row, detail=detail))

    def error(self, flow: http.HTTPFlow) -> None:
        plan = self._plans.pop(flow.id, None)
        if plan is not None:
            self._audit(flow, plan.token, plan.finish())

    def _scrub_message(self, flow: http.HTTPFlow) -> None:
        scrubbing = self._websockets.get(flow.id)
        if scrubbing is None or flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        if message.from_client:
            return
        matcher, token = scrubbing
        content, counts = scrub_message(matcher, message.content)
        if counts:
            message.content = content
            self._audit(flow, token, counts)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._websockets.pop(flow.id, None)

    def _audit(self, flow: http.HTTPFlow, token: TokenInfo | None, counts: Counts) -> None:
        """One row per secret, encoding and place; names and counts, never values."""
        for (secret, encoding, where), count in sorted(counts.items()):
            row = audit_event(flow, "response.redacted", token, keys=self.seks.audit_keys)
            detail = json.dumps({"encoding": encoding, "where": where, "count": count})
            self.seks.submit(dataclasses.replace(row, secret_name=secret, detail=detail))
        if counts:
            total = sum(counts.values())
            log.info(console_line(flow, f"redacted {total} occurrence(s) of a secret"))
