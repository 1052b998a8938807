"""Fake tokens: their shape, checksum and keyed hash.

``seks_<provider>_<32 base62 random><6 base62 CRC32>``. The checksum lets the proxy and secret
scanners reject a typo before any lookup; it is not an authenticator. The vault stores only
``HMAC-SHA256(pepper, token)``, the pepper derived from the master key, so a stolen vault file
yields no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

from seks.errors import MalformedToken

__all__ = [
    "PROVIDER_NAME_RE",
    "TOKEN_CANDIDATE_RE",
    "ParsedToken",
    "mint",
    "new_public_id",
    "parse",
    "redact",
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
