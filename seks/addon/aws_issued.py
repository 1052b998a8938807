"""Real AWS credentials in a response, swapped for broker-issued fake ones.

STS ``AssumeRole``/``GetSessionToken``/``GetFederationToken``, IAM ``CreateAccessKey`` and S3
Express ``CreateSession`` answer with a new access key id and secret key (and a session token,
and an expiry). The agent must not get them: the proxy stores them in the vault as a new aws
secret, issues the agent a new ``seks_aws_…`` token bound to it that expires with them (or with
the token that asked, whichever is first) and keeps that token's allow-lists, and answers with
the token as access key id and placeholders for the secret key and session token. The agent
then uses them through the proxy like any other aws token, never holding the real ones.

Those responses are buffered (they are small) so the swap happens before anything is sent.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from mitmproxy import http

from seks.addon.records import console_line, refusal_response
from seks.errors import RequestRefused, SeksError, UpstreamError
from seks.store.aws_credentials import FAKE_SECRET_KEY, FAKE_SESSION_TOKEN, AwsCredentials
from seks.store.tokens import TokenInfo
from seks.store.vault import Vault

__all__ = ["IssuedCredentials", "may_carry_credentials", "swap_credentials", "swap_in_response"]

log = logging.getLogger("seks")

_FIELDS = ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")
_ELEMENT = {f: re.compile(rf"<{f}>([^<]*)</{f}>".encode()) for f in _FIELDS}
_JSON = {f: re.compile(rf'"{f}"\s*:\s*("([^"\\]*)"|[0-9.]+)'.encode()) for f in _FIELDS}


def may_carry_credentials(service: str, target: str) -> bool:
    """Responses worth buffering to look for credentials: STS and IAM answers, and S3
    Express's CreateSession (``GET /?session``)."""
    if service in ("sts", "iam"):
        return True
    query = target.partition("?")[2]
    return service in ("s3", "s3express") and "session" in query.split("&")


@dataclass(frozen=True, repr=False)
class IssuedCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    expires_at: float | None

    def __repr__(self) -> str:
        return "IssuedCredentials(<redacted>)"


def _value(body: bytes, field: str) -> list[bytes]:
    found = [m.group(1) for m in _ELEMENT[field].finditer(body)]
    found += [
        m.group(2) if m.group(2) is not None else m.group(1) for m in _JSON[field].finditer(body)
    ]
    return found


def _expiry(raw: bytes | None) -> float | None:
    if raw is None:
        return None
    text = raw.decode("ascii", "replace").strip('"')
    try:
        return float(text)  # JSON protocols: epoch seconds
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise UpstreamError(
            "the credentials' Expiration in the AWS answer does not parse"
        ) from None


def find_credentials(body: bytes) -> IssuedCredentials | None:
    """The one set of credentials in an answer. More than one is refused, not guessed at."""
    secrets_found = _value(body, "SecretAccessKey")
    if not secrets_found:
        return None
    keys, tokens, expiries = (
        _value(body, f) for f in ("AccessKeyId", "SessionToken", "Expiration")
    )
    if len(secrets_found) != 1 or len(keys) != 1 or len(tokens) > 1 or len(expiries) > 1:
        raise UpstreamError("the AWS answer holds credentials SEKS cannot tell apart; withheld")
    return IssuedCredentials(
        keys[0].decode(),
        secrets_found[0].decode(),
        tokens[0].decode() if tokens else None,
        _expiry(expiries[0] if expiries else None),
    )


def swap_credentials(vault: Vault, body: bytes, asked_with: TokenInfo) -> bytes | None:
    """Store the answer's real credentials and issue the agent a token for them; return the
    body with the token and placeholders in their place (None: no credentials in it)."""
    issued = find_credentials(body)
    if issued is None:
        return None
    parent = AwsCredentials.from_json(
        vault.reveal_secret(asked_with.secret_name, tenant=asked_with.tenant).reveal()
    )
    real = AwsCredentials(
        issued.access_key_id,
        issued.secret_access_key,
        issued.session_token,
        parent.region,
        parent.regions,
        parent.services,
    )
    ends = [t for t in (issued.expires_at, asked_with.expires_at) if t is not None]
    ttl = None
    if ends:
        ttl = min(ends) - time.time()
        if ttl <= 0:
            raise UpstreamError("the AWS answer's credentials have already expired")
    name = f"{asked_with.secret_name[:40]}.issued.{secrets.token_hex(4)}"
    vault.add_secret(name, "aws", real.to_json(), tenant=asked_with.tenant)
    token, _ = vault.issue_token(
        asked_with.agent,
        "aws",
        secret_name=name,
        ttl=ttl,
        tenant=asked_with.tenant,
        session=asked_with.session,
        limits=asked_with.limits,
    )
    replaced = {
        issued.access_key_id: token,
        issued.secret_access_key: FAKE_SECRET_KEY,
        **({issued.session_token: FAKE_SESSION_TOKEN} if issued.session_token else {}),
    }
    for real_value, fake in replaced.items():
        body = body.replace(real_value.encode(), fake.encode())
    return body


def swap_in_response(flow: http.HTTPFlow, vault: Vault, asked_with: TokenInfo) -> None:
    """The ``response`` hook's part: swap, or withhold the answer if the swap fails."""
    if flow.response is None:
        return
    try:
        swapped = swap_credentials(vault, flow.response.content or b"", asked_with)
    except SeksError as e:
        log.warning("SEKS: AWS credentials in a response were withheld: %s", e)
        flow.response = refusal_response(
            flow, e if isinstance(e, RequestRefused) else UpstreamError(str(e))
        )
        return
    except Exception:
        # Anything else too (the vault locked, bytes that do not decode): mitmproxy would log
        # an exception from the response hook and send the answer on, real credentials and all.
        log.exception("SEKS: internal error while swapping AWS credentials in a response; withheld")
        flow.response = refusal_response(
            flow, UpstreamError("internal error while swapping the answer's AWS credentials")
        )
        return
    if swapped is not None:
        flow.response.content = swapped
        log.info(console_line(flow, "swapped AWS credentials for a SEKS token"))
