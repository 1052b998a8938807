"""The mitmproxy hooks. ``requestheaders`` is DESIGN.md's data flow, one call per step:

1 find fake tokens · 2 resolve them · 3 policy · 4 audit (fail closed) · 5 decrypt · 6 inject;
then 8: put the fake token back into the flow as soon as the request has gone, audit the outcome.

The swap happens in ``requestheaders``, not ``request``: with a streamed request body the
headers are already on the wire when ``request`` fires (shared notes).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mitmproxy import connection, ctx, exceptions, http
from mitmproxy.addonmanager import Loader

from seks.addon.audited import Audited
from seks.addon.aws import RESTORED_HEADERS, AwsUse, check_aws, resign, sign_buffered
from seks.addon.aws_hosts import load_botocore_data, parse_aws_host
from seks.addon.aws_issued import may_carry_credentials, swap_in_response
from seks.addon.gate import TokenGate
from seks.addon.gateway import is_gateway, route_gateway
from seks.addon.inject import (
    FoundToken,
    credential_value,
    find_tokens,
    headers_mentioning_seks,
    injected_target,
    require_place,
)
from seks.addon.policy import check_destination, route_to_upstream
from seks.addon.providers import BUILTIN, CredentialPlace, Provider
from seks.addon.records import audit_event, console_line, requested_host
from seks.addon.upstream_tls import TlsHooks
from seks.config import Config, ProviderSettings, load_config
from seks.errors import (
    HostNotAllowed,
    RequestRefused,
    SeksError,
    VaultUnavailable,
)
from seks.home import Home
from seks.store.audit_writer import discarding_for_bench
from seks.store.aws_credentials import AwsCredentials
from seks.store.read_cache import ReadCache
from seks.store.vault import TokenInfo, Vault

__all__ = ["DestinationGuard", "SeksAddon"]

log = logging.getLogger("seks")

AwsStep = tuple[AwsUse, AwsCredentials]  # what step 3 learnt about an AWS request, for step 6


@dataclass
class _Injected:
    """What an in-flight request needs to be put back and audited. Holds no secret."""

    flow: http.HTTPFlow
    started: float
    restore: dict[str, list[str]]  # lower-case header name → its original (fake) values
    tokens: list[TokenInfo] = field(default_factory=list)
    destination: tuple[str, str, int] = ("", "", 0)  # scheme, host, port it was approved for
    target: str | None = None  # the original (fake) path and query, when a token sat there
    sign_later: tuple[AwsUse, TokenInfo] | None = None  # AWS: re-signed once the body is in


class SeksAddon(TlsHooks, Audited):
    """Swaps fake tokens for real credentials. Put it first in the addon chain, so its
    ``responseheaders``/``error``/``done`` hooks restore the fake token before any addon that
    saves or prints flows runs; :class:`DestinationGuard` goes last."""

    def __init__(self) -> None:
        super().__init__()
        self.vault: Vault | None = None
        self.reads: ReadCache | None = None  # what each request reads, until the vault changes
        self.config = Config()
        self.providers: dict[str, Provider] = dict(BUILTIN)
        self._gate = TokenGate()  # who may use a token, from where, for what, how often
        self._inflight: dict[str, _Injected] = {}  # injected, request not yet answered
        self._answered: dict[str, _Injected] = {}  # fake token back, outcome not yet audited

    # -- set-up ----------------------------------------------------------------------------

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "seks_home", str, "", "SEKS home directory (default: $SEKS_HOME, ~/.seks)"
        )
        loader.add_option("seks_config", str, "", "SEKS config file (default: HOME/config.yaml)")

    def configure(self, updated: set[str]) -> None:
        if self.vault is not None and not {"seks_home", "seks_config"} & updated:
            return
        home = Path(ctx.options.seks_home) if ctx.options.seks_home else None
        the_home = Home(home) if home else Home.from_env()
        config_path = Path(ctx.options.seks_config) if ctx.options.seks_config else None
        if home is None and config_path is None and not the_home.vault_path.exists():
            # The defaults, with nothing there (also what mitmproxy rolls back to after a
            # failed update, which must not hide that update's error): stay closed, and
            # refuse every token until a vault is configured.
            self._close()
            log.warning("SEKS: no vault at %s; set seks_home. Tokens are refused.", the_home.root)
            return
        try:
            self.config = load_config(
                config_path or the_home.config_path,
                known_providers=tuple(BUILTIN),
                required=config_path is not None,
            )
            vault = Vault.open(the_home.vault_path, the_home.master_key())
        except SeksError as e:
            raise exceptions.OptionsError(f"SEKS: {e}") from None
        self._close()
        self.providers = self.config.all_providers
        self.vault, self.reads = vault, ReadCache(vault)
        self._gate.open(vault, self.reads, the_home.vault_path, self.config)
        self._open_audit(the_home.vault_path, vault.audit_key, vault.audit.keys)

    def running(self) -> None:
        # Refused requests must never reach an upstream: connect only when a request is sent
        # (the default, eager, connects at CONNECT time). Set here for `mitmdump -s` too.
        if ctx.options.connection_strategy != "lazy":
            ctx.options.update(connection_strategy="lazy")
        discarding_for_bench()  # says so loudly, at start, if the bench-only switch is on
        self._start_audit()  # the audit writer process, ready before the first request
        if self.vault is not None and self.vault.has_secrets_for("aws"):
            # botocore's service metadata, for AWS host names: ~0.5 s to read, off the loop.
            threading.Thread(target=load_botocore_data, name="seks-models", daemon=True).start()

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._gate.remember_connect(flow)  # Proxy-Authorization names the tunnel's agent

    def client_disconnected(self, client: connection.Client) -> None:
        self._gate.client_gone(client)  # its requests held for approval stop waiting

    def done(self) -> None:
        # Requests still in flight get their fake token back before addons after us (save)
        # write them out at shutdown.
        for injected in list(self._inflight.values()):
            self._restore(injected.flow)
        self._answered.clear()
        self._close()

    def _close(self) -> None:
        self._close_audit()
        self._gate.close()
        if self.vault is not None:
            self.vault.close()
            self.vault = self.reads = None

    def _settings(self, provider: str) -> ProviderSettings:
        return self.config.providers.get(provider, ProviderSettings())

    # -- the data flow ---------------------------------------------------------------------

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        if is_gateway(flow):
            try:
                route_gateway(flow, self.providers)  # /api/<provider>/… → https://<host>/…
            except RequestRefused as e:
                await self._refuse(flow, e, None)
                return
        credential = self._gate.credential_for(flow)  # and Proxy-Authorization goes no further
        found = find_tokens(headers_mentioning_seks(flow.request.headers), flow.request.path)  # 1
        if not found:
            self._route_to_upstream(flow, self._provider_serving(flow.request.host))
            if self.config.scrub == "all":
                flow.request.headers["accept-encoding"] = "identity"
            return
        if self.vault is None or self.reads is None:
            await self._refuse(flow, VaultUnavailable("the SEKS vault is not open"), None)
            return
        started = time.monotonic()
        info: TokenInfo | None = None
        presented: str | None = None  # the token being handled, for the audit's token_hash
        try:
            self.reads.refresh()  # one picture of the vault for this request
            uses = []
            for token in found:
                info, presented = None, token.token
                info = self.reads.resolve_token(token.token)  # 2
                provider = self.providers.get(info.provider)
                if provider is None:  # a custom provider since removed from the config
                    raise HostNotAllowed(f"provider {info.provider} is not in the SEKS config")
                uses.append((token, *self._authorize(flow, provider, token, info), info))  # 3
            infos = [info for *_, info in uses]
            await self._gate.admit(flow, infos, credential, self._audit())  # 3: limits, approval
            commits = [  # 4: durably committed before any credential is used
                self._audit().commit(
                    audit_event(
                        flow,
                        "request.injected",
                        info,
                        keys=self.audit_keys,
                        token=token.token,
                        decision="allow",
                    )
                )
                for token, _, _, info in uses
            ]
            # gather() costs a loop iteration more: measurable for the common single token.
            await (commits[0] if len(commits) == 1 else asyncio.gather(*commits))
            endpoint = parse_aws_host(requested_host(flow))
            if endpoint and may_carry_credentials(endpoint.service, flow.request.path):
                # Held whole when it comes, to swap the credentials in it. Decided here, where
                # any error refuses the request: at response time it would let the answer out.
                flow.metadata["seks_buffer"] = True
            self._inject(flow, uses, started)  # 5, 6
            # Responses to it are scrubbed: ask for them unencoded (notes: simplest, cheapest).
            flow.request.headers["accept-encoding"] = "identity"
        except RequestRefused as e:
            self._restore(flow)
            await self._refuse(flow, e, info or e.token, token=presented)
        except Exception:
            # Never forward a half-handled request: put the fake token back and refuse. The
            # traceback carries no request data (our messages never hold a credential).
            log.exception("SEKS: internal error while handling a request; refused")
            self._restore(flow)
            await self._refuse(
                flow, VaultUnavailable("internal error in the SEKS proxy"), info, token=presented
            )

    def _authorize(
        self, flow: http.HTTPFlow, provider: Provider, token: FoundToken, info: TokenInfo
    ) -> tuple[CredentialPlace, AwsStep | None]:
        """Step 3's checks on the request itself. For AWS also the secret's allow-lists, so
        its credentials are read here, once, and kept for step 6."""
        if flow.request.scheme != "https":
            raise HostNotAllowed(
                f"a {provider.name} token is only sent over HTTPS, not {flow.request.scheme}"
            )
        check_destination(
            provider, flow.request.host, flow.client_conn.sni, flow.request.host_header
        )
        if not provider.serves_path(flow.request.path):
            raise HostNotAllowed(
                f"a {provider.name} token may only be sent to paths under "
                f"{', '.join(provider.paths)}"
            )
        if provider.places_of("sigv4"):
            creds = self._aws_credentials(info)
            return provider.places[0], (check_aws(flow, token, info, creds), creds)
        return require_place(provider, token), None

    def _aws_credentials(self, info: TokenInfo) -> AwsCredentials:
        assert self.reads is not None
        try:
            secret = self.reads.reveal_secret(info.secret_name, tenant=info.tenant)
            return AwsCredentials.from_json(secret.reveal())
        except SeksError as e:
            raise VaultUnavailable(f"the credential could not be read: {e}") from None

    def _inject(
        self,
        flow: http.HTTPFlow,
        uses: list[tuple[FoundToken, CredentialPlace, AwsStep | None, TokenInfo]],
        started: float,
    ) -> None:
        assert self.reads is not None
        headers = flow.request.headers
        # Every header that will change is saved before the first change, under its lower-case
        # name (Authorization and authorization are one header), so any failure can restore.
        names = {token.header.lower() for token, *_ in uses if token.header is not None}
        if any(aws is not None for _, _, aws, _ in uses):
            names.update(RESTORED_HEADERS)
        injected = _Injected(
            flow, started, {n: headers.get_all(n) for n in names}, [info for *_, info in uses]
        )
        if any(token.header is None for token, *_ in uses):
            injected.target = flow.request.path
        self._inflight[flow.id] = injected
        for token, place, aws, info in uses:
            if aws is not None:  # 6: re-sign with the real key
                injected.target = flow.request.path
                if not resign(flow, *aws):
                    injected.sign_later = (aws[0], info)
                continue
            try:
                secret = self.reads.reveal_secret(info.secret_name, tenant=info.tenant)  # 5
            except SeksError as e:
                raise VaultUnavailable(f"the credential could not be read: {e}") from None
            if token.header is None:  # 6: in the query or the path
                flow.request.path = injected_target(flow.request.path, token, place, secret)
                continue
            real = credential_value(place, secret, token)  # 6
            values = headers.get_all(token.header)
            headers.set_all(token.header, [real if v == token.value else v for v in values])
        self._route_to_upstream(flow, self.providers[uses[0][-1].provider])
        injected.destination = (flow.request.scheme, flow.request.host, flow.request.port)

    def _provider_serving(self, host: str) -> Provider | None:
        return next((p for p in self.providers.values() if p.serves(host)), None)

    def _route_to_upstream(self, flow: http.HTTPFlow, provider: Provider | None) -> None:
        if provider is not None:
            route_to_upstream(flow, provider, self._settings(provider.name).upstream)

    def _restore(self, flow: http.HTTPFlow) -> _Injected | None:
        """Put the fake token back: nothing after this point holds the real credential."""
        injected = self._inflight.pop(flow.id, None)
        if injected is not None:
            for name, values in injected.restore.items():
                flow.request.headers.set_all(name, values)
            if injected.target is not None:
                flow.request.path = injected.target
        return injected

    async def check_unchanged(self, flow: http.HTTPFlow) -> None:
        """Called last in ``request``: refuse if another addon redirected an injected request."""
        injected = self._inflight.get(flow.id)
        now_to = (flow.request.scheme, flow.request.host, flow.request.port)
        if injected and now_to != injected.destination:
            self._restore(flow)
            await self._refuse(
                flow,
                HostNotAllowed("the request was redirected after the credential was injected"),
                injected.tokens[0],
            )
        elif injected and injected.sign_later is not None:
            use, info = injected.sign_later
            try:
                sign_buffered(flow, use, self._aws_credentials(info))
            except Exception as e:  # never forward a half-signed request
                if not isinstance(e, RequestRefused):
                    log.exception("SEKS: internal error while signing a request; refused")
                    e = VaultUnavailable("internal error in the SEKS proxy")
                self._restore(flow)
                await self._refuse(flow, e, info)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        injected = self._restore(flow)  # 8: the fake token is back before anything else runs
        if injected is not None:
            self._answered[flow.id] = injected

    def response(self, flow: http.HTTPFlow) -> None:
        injected = self._answered.get(flow.id)
        if injected and flow.metadata.get("seks_buffer") and self.vault:
            swap_in_response(flow, self.vault, injected.tokens[0])
        self._finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def injected_tokens(self, flow: http.HTTPFlow) -> list[TokenInfo]:
        """The tokens whose credentials went out with this flow's request (until its end)."""
        injected = self._answered.get(flow.id) or self._inflight.get(flow.id)
        return injected.tokens if injected else []

    def _finish(self, flow: http.HTTPFlow) -> None:
        injected = self._restore(flow) or self._answered.pop(flow.id, None)
        if injected is None:
            if not flow.metadata.get("seks_refused"):
                log.info(console_line(flow, "passed through"))
            return
        latency_ms = (time.monotonic() - injected.started) * 1000
        status = flow.response.status_code if flow.response else None
        for info in injected.tokens:
            self._submit(
                audit_event(
                    flow,
                    "request.completed",
                    info,
                    keys=self.audit_keys,
                    status=status,
                    latency_ms=latency_ms,
                    reason=None if flow.error is None else "upstream_error",
                )
            )
        summary = ", ".join(f"{i.provider} agent={i.agent} token={i.id}" for i in injected.tokens)
        log.info(console_line(flow, f"injected {summary}"))


class DestinationGuard:
    """Goes last in the addon chain: re-checks, after every other ``request`` hook, that an
    injected request still goes where it was approved to go (under mitmdump, ``map_remote``
    and friends run between injection and sending; ``seks proxy`` does not load them)."""

    def __init__(self, seks: SeksAddon) -> None:
        self.seks = seks

    async def request(self, flow: http.HTTPFlow) -> None:
        await self.seks.check_unchanged(flow)
