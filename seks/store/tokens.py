"""Fake tokens: their shape, checksum and keyed hash.

``seks_<provider>_<32 base62 random><6 base62 CRC32>``. The checksum lets the proxy and secret
scanners reject a typo before any lookup; it is not an authenticator. The vault stores only
``HMAC-SHA256(pepper, token)``, the pepper derived from the master key, so a stolen vault file
yields no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import zlib
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from seks.errors import (
    ConfigError,
    MalformedToken,
    TokenExpired,
    TokenRevoked,
    UnknownToken,
    UsesExhausted,
)
from seks.limits import TokenLimits, format_duration
from seks.store.audit import AuditEvent, AuditLog, os_user
from seks.store.db import write_tx

__all__ = [
    "PROVIDER_NAME_RE",
    "TOKEN_CANDIDATE_RE",
    "ParsedToken",
    "TokenInfo",
    "check_ttl",
    "insert_record",
    "list_records",
    "live",
    "lookup",
    "mint",
    "new_public_id",
    "parse",
    "redact",
    "redeem_use",
    "resolve",
    "revoke_where",
    "token_hash",
]

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_LEN = 32  # 32 base62 characters ≈ 190 bits
_CHECK_LEN = 6  # 62**6 > 2**32
PROVIDER_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,30}")
_TOKEN_RE = re.compile(
    rf"seks_(?P<provider>{PROVIDER_NAME_RE.pattern})_(?P<body>[0-9A-Za-z]{{{_RANDOM_LEN}}})"
    rf"(?P<check>[0-9A-Za-z]{{{_CHECK_LEN}}})"
)
# Anything that looks like an attempt at a token, well-formed or not, so a typo is reported
# instead of forwarded upstream.
TOKEN_CANDIDATE_RE = re.compile(r"seks_[A-Za-z0-9_-]+")


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(BASE62[r])
    return "".join(reversed(out))


def _checksum(prefix: str) -> str:
    return _base62(zlib.crc32(prefix.encode()), _CHECK_LEN)


def mint(provider: str) -> str:
    if not PROVIDER_NAME_RE.fullmatch(provider):
        raise ValueError(f"provider name {provider!r} cannot appear in a token")
    body = "".join(secrets.choice(BASE62) for _ in range(_RANDOM_LEN))
    prefix = f"seks_{provider}_{body}"
    return prefix + _checksum(prefix)


@dataclass(frozen=True)
class ParsedToken:
    provider: str


def parse(token: str) -> ParsedToken:
    """Check shape and checksum. The message names the problem, never the token."""
    m = _TOKEN_RE.fullmatch(token)
    if m is None:
        raise MalformedToken(
            "this is not a SEKS token: expected seks_<provider>_ and 38 letters or digits "
            f"(got {len(token)} characters); was it copied whole?"
        )
    prefix = token[:-_CHECK_LEN]
    if not hmac.compare_digest(_checksum(prefix), m["check"]):
        raise MalformedToken("the token's checksum does not match: it has a typo or was cut")
    return ParsedToken(provider=m["provider"])


def token_hash(pepper: bytes, token: str) -> bytes:
    return hmac.new(pepper, token.encode(), hashlib.sha256).digest()


def new_public_id() -> str:
    return "tok_" + "".join(secrets.choice(BASE62) for _ in range(16))


def redact(token: str) -> str:
    """A form safe for logs: provider and nothing of the random part."""
    m = _TOKEN_RE.fullmatch(token)
    return f"seks_{m['provider']}_…" if m else "seks_…"


def check_ttl(ttl: float | None, max_ttl: float | None) -> float | None:
    """A token's lifetime under the config's ``max_token_ttl`` (None: no maximum)."""
    if ttl is not None and ttl <= 0:
        raise ConfigError("the token's ttl must be positive")
    if max_ttl is None:
        return ttl
    if ttl is None:
        return max_ttl
    if ttl > max_ttl:
        raise ConfigError(
            f"a ttl of {format_duration(ttl)} exceeds max_token_ttl "
            f"({format_duration(max_ttl)}) in the config"
        )
    return ttl


# -- token records in the vault -------------------------------------------------------------


@dataclass(frozen=True)
class TokenInfo:
    id: str
    tenant: str
    agent: str
    provider: str
    secret_name: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    session: str | None
    # Limits (seks/limits.py), as canonical text; None or empty: no limit.
    max_uses: int | None = None
    uses_left: int | None = None  # as of when this record was read
    allow_ips: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    rate: str | None = None
    aws_regions: tuple[str, ...] = ()
    aws_services: tuple[str, ...] = ()

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.uses_left is not None and self.uses_left <= 0:
            return "exhausted"
        return "active"

    @property
    def limits(self) -> TokenLimits:
        return TokenLimits(
            self.max_uses,
            self.allow_ips,
            self.scopes,
            self.rate,
            self.aws_regions,
            self.aws_services,
        )


# Column names, not a password.
_COLUMNS = (
    "id, tenant, agent, provider, secret_name, created_at, expires_at, revoked_at, session, "
    "max_uses, uses_left, allow_ips, scopes, rate, aws_regions, aws_services"
)


def _info(row: Any) -> TokenInfo:
    id_, tenant, agent, provider, secret_name, created, expires, revoked, session = row[:9]
    max_uses, uses_left, allow_ips, scopes, rate, aws_regions, aws_services = row[9:]
    return TokenInfo(
        id_,
        tenant,
        agent,
        provider,
        secret_name,
        created,
        expires,
        revoked,
        session,
        max_uses=max_uses,
        uses_left=uses_left,
        allow_ips=_json_list(allow_ips),
        scopes=_json_list(scopes),
        rate=rate,
        aws_regions=_json_list(aws_regions),
        aws_services=_json_list(aws_services),
    )


def _json_list(text: str | None) -> tuple[str, ...]:
    return tuple(json.loads(text)) if text else ()


def _text_list(items: tuple[str, ...]) -> str | None:
    return json.dumps(list(items)) if items else None


def insert_record(
    db: sqlite_utils.Database,
    audit: AuditLog,
    digest: bytes,
    info: TokenInfo,
    *,
    token: str | None = None,
) -> None:
    """Store a new token's hash and record, with its audit row (inside the caller's tx).
    With ``token``, the row carries its audit search hash, so a leaked token leads to the row
    that says whose it is (`seks audit hash`)."""
    db.execute(
        f"INSERT INTO tokens (token_hash, {_COLUMNS}) "  # noqa: S608
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            digest,
            info.id,
            info.tenant,
            info.agent,
            info.provider,
            info.secret_name,
            info.created_at,
            info.expires_at,
            info.revoked_at,
            info.session,
            info.max_uses,
            info.uses_left,
            _text_list(info.allow_ips),
            _text_list(info.scopes),
            info.rate,
            _text_list(info.aws_regions),
            _text_list(info.aws_services),
        ],
    )
    audit.append(
        AuditEvent(
            "token.issued",
            actor=os_user(),
            tenant=info.tenant,
            agent=info.agent,
            token_id=info.id,
            provider=info.provider,
            secret_name=info.secret_name,
            token_hash=audit.keys.search_hash(token) if token else None,
        ),
    )


def list_records(
    db: sqlite_utils.Database, *, tenant: str, agent: str | None = None
) -> list[TokenInfo]:
    sql = f"SELECT {_COLUMNS} FROM tokens WHERE tenant = ?"  # noqa: S608
    params: list[Any] = [tenant]
    if agent is not None:
        sql += " AND agent = ?"
        params.append(agent)
    rows = db.execute(sql + " ORDER BY created_at, id", params).fetchall()
    return [_info(r) for r in rows]


def revoke_where(
    db: sqlite_utils.Database, audit: AuditLog, where: str, params: list[Any], now: float
) -> int:
    """Revoke the live tokens matching ``where``, one audit row each (inside the caller's tx)."""
    rows = db.execute(
        f"SELECT id, tenant, agent, provider, secret_name FROM tokens "  # noqa: S608
        f"WHERE {where} AND revoked_at IS NULL",
        params,
    ).fetchall()
    for token_id, tenant, agent, provider, secret_name in rows:
        db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", [now, token_id])
        audit.append(
            AuditEvent(
                "token.revoked",
                actor=os_user(),
                tenant=tenant,
                agent=agent,
                token_id=token_id,
                provider=provider,
                secret_name=secret_name,
            ),
        )
    return len(rows)


def lookup(db: sqlite_utils.Database, digest: bytes) -> TokenInfo:
    """The record with this token hash, whatever its state."""
    row = db.execute(
        f"SELECT {_COLUMNS}, token_hash FROM tokens WHERE token_hash = ?",  # noqa: S608
        [digest],
    ).fetchone()
    if row is None or not hmac.compare_digest(row[-1], digest):
        raise UnknownToken("this token is not known to the SEKS vault")
    return _info(row[:-1])


def resolve(db: sqlite_utils.Database, pepper: bytes, token: str, now: float) -> TokenInfo:
    """The live record behind a fake token, or the refusal an agent should see."""
    parsed = parse(token)  # a typo is refused before any lookup
    return live(lookup(db, token_hash(pepper, token)), parsed, now)


def live(info: TokenInfo, parsed: ParsedToken, now: float) -> TokenInfo:
    """``info`` if the token it was looked up for may be used at ``now``; else the refusal."""
    if info.provider != parsed.provider:  # cannot happen: the provider is part of the token
        raise UnknownToken("this token is not known to the SEKS vault")
    state = info.state(now)
    if state == "revoked":
        raise TokenRevoked(f"token {info.id} was revoked", token=info)
    if state == "expired":
        raise TokenExpired(f"token {info.id} expired; ask for a new one", token=info)
    if state == "exhausted":
        raise _exhausted(info)
    return info


def redeem_use(db: sqlite_utils.Database, info: TokenInfo, now: float) -> int:
    """Spend one use of a use-limited token; returns the uses left after it.

    One conditional UPDATE inside BEGIN IMMEDIATE, and exactly one row must change: racing
    proxies or processes can never spend more uses than were issued (shared notes: 8 processes
    racing on 200 single-use tokens redeemed exactly 200). Refused if none are left, or if the
    token was revoked or expired since it was resolved.
    """
    with write_tx(db):
        changed = db.execute(
            "UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0 "
            "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
            [info.id, now],
        ).rowcount
        row = db.execute(
            "SELECT uses_left, revoked_at, expires_at FROM tokens WHERE id = ?", [info.id]
        ).fetchone()
    if changed == 1:
        return int(row[0])
    if row is None:
        raise UnknownToken("this token is not known to the SEKS vault")
    if row[1] is not None:
        raise TokenRevoked(f"token {info.id} was revoked", token=info)
    if row[2] is not None and row[2] <= now:
        raise TokenExpired(f"token {info.id} expired; ask for a new one", token=info)
    raise _exhausted(info)


def _exhausted(info: TokenInfo) -> UsesExhausted:
    return UsesExhausted(
        f"token {info.id} has no uses left (it allowed {info.max_uses}); ask for a new one",
        token=info,
    )
