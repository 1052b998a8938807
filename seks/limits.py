"""Token limits: how they are written, and how a request is checked against them.

Pure values and functions, no I/O: the CLI parses with them, the vault stores their canonical
text, the proxy's gate checks requests with them. A parse error is a :class:`ConfigError` whose
message names the bad value and the expected form; the caller adds which option it came from.

Scopes (``--allow 'METHOD PATH-GLOB'``) match the request path without its query string, after
percent-decoding, segment by segment:

- ``*`` stands for any run of characters inside one segment, never a ``/``: ``/v1/chat/*``
  matches ``/v1/chat/completions`` but not ``/v1/chat-evil`` nor ``/v1/chat/a/b``;
- ``**`` as a whole segment stands for zero or more segments: ``/v1/**`` matches ``/v1`` and
  everything below it, never ``/v1-evil``;
- ``*`` as the method matches any method.

A scoped token is only honoured on a path in canonical form (no ``.``/``..`` segments, no empty
segment inside the path, no encoded ``/`` or ``\\``): servers that normalise such paths would
otherwise serve a different path from the one the scope approved.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from seks.errors import ConfigError

__all__ = [
    "METHODS",
    "Rate",
    "RateWindow",
    "TokenLimits",
    "canonical_path",
    "ip_allowed",
    "parse_cidr",
    "parse_duration",
    "parse_rate",
    "parse_scope",
    "scope_allows",
]

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_USES = 1_000_000_000
MAX_RATE = 100_000  # the window keeps one timestamp per request it counts
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"(\d+)([smhd])")
_RATE_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}
_RATE_RE = re.compile(r"(\d+)/(s|min|h)")


@dataclass(frozen=True)
class TokenLimits:
    """What a token may do beyond its provider's hosts, as canonical text (the vault's form)."""

    max_uses: int | None = None
    allow_ips: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    rate: str | None = None
    aws_regions: tuple[str, ...] = ()  # an aws token: the regions and services it may reach
    aws_services: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        max_uses: int | None = None,
        allow_ips: Iterable[str] = (),
        scopes: Iterable[str] = (),
        rate: str | None = None,
    ) -> TokenLimits:
        if max_uses is not None and not 1 <= max_uses <= MAX_USES:
            raise ConfigError(f"{max_uses} is not a number of uses: use 1 to {MAX_USES}")
        return cls(
            max_uses=max_uses,
            allow_ips=tuple(dict.fromkeys(parse_cidr(c) for c in allow_ips)),
            scopes=tuple(dict.fromkeys(parse_scope(s) for s in scopes)),
            rate=None if rate is None else str(parse_rate(rate)),
        )


# -- durations ---------------------------------------------------------------------------------


def parse_duration(text: str) -> float:
    """``30s``, ``15m``, ``8h``, ``7d`` → seconds (more than zero)."""
    m = _DURATION_RE.fullmatch(text.strip())
    if not m or int(m[1]) == 0:
        raise ConfigError(f"{text!r} is not a duration such as 30s, 15m, 8h or 7d")
    return float(int(m[1]) * _DURATION_UNITS[m[2]])


def format_duration(seconds: float) -> str:
    for unit, size in sorted(_DURATION_UNITS.items(), key=lambda u: -u[1]):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# -- client networks ----------------------------------------------------------------------------


def parse_cidr(text: str) -> str:
    """A network in CIDR form (a bare address is one host) → its canonical text."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=True))
    except ValueError as e:
        if "host bits set" in str(e):
            loose = ipaddress.ip_network(text.strip(), strict=False)
            raise ConfigError(f"{text!r} has host bits set: did you mean {loose}?") from None
        raise ConfigError(
            f"{text!r} is not a network such as 10.0.0.0/8, 192.168.1.7 or fd00::/8"
        ) from None


def _client_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # a dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d
    return addr


@lru_cache(maxsize=1024)
def _networks(
    allow_ips: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in allow_ips)


def ip_allowed(allow_ips: tuple[str, ...], peer: str | None) -> bool:
    """Is the client address (as the proxy sees it) inside one of the networks?"""
    if not allow_ips:
        return True
    addr = _client_address(peer) if peer else None
    return addr is not None and any(addr in net for net in _networks(allow_ips))


# -- scopes -------------------------------------------------------------------------------------


def parse_scope(text: str) -> str:
    """``'METHOD /path/glob'`` → its canonical text (method upper-cased)."""
    parts = text.split()
    if len(parts) != 2:
        raise ConfigError(f"{text!r} is not a scope such as 'POST /v1/chat/completions'")
    method, glob = parts[0].upper(), parts[1]
    if method != "*" and method not in METHODS:
        raise ConfigError(
            f"{text!r}: {parts[0]!r} is not an HTTP method (use {', '.join(METHODS)} or *)"
        )
    if not glob.startswith("/"):
        raise ConfigError(f"{text!r}: the path must start with '/'")
    for bad, why in (("?", "scopes match the path without its query"), ("#", "no fragments")):
        if bad in glob:
            raise ConfigError(f"{text!r}: {bad!r} is not allowed ({why})")
    if "%" in glob:
        raise ConfigError(f"{text!r}: write the path decoded, without %-escapes")
    for segment in glob.split("/")[1:]:
        if "**" in segment and segment != "**":
            raise ConfigError(f"{text!r}: '**' must be a whole segment, as in /v1/**")
        if segment in (".", ".."):
            raise ConfigError(f"{text!r}: '.' and '..' segments are not allowed")
    return f"{method} {glob}"


@lru_cache(maxsize=1024)
def _compile_scope(scope: str) -> tuple[str, re.Pattern[str]]:
    method, glob = scope.split(" ", 1)
    out = []
    for segment in glob.split("/")[1:]:
        if segment == "**":
            out.append("(?:/[^/]*)*")
        else:
            out.append("/" + "[^/]*".join(re.escape(piece) for piece in segment.split("*")))
    return method, re.compile("".join(out) or "/")


def canonical_path(raw_path: str) -> str | None:
    """The decoded path (no query), or None if it is not in canonical form."""
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return None
    raw_segments = path.split("/")[1:]
    decoded = []
    for i, raw in enumerate(raw_segments):
        try:
            segment = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if segment in (".", "..") or "/" in segment or "\\" in segment:
            return None
        if not segment and i != len(raw_segments) - 1:
            return None  # an empty segment inside the path: //
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment):
            return None
        decoded.append(segment)
    return "/" + "/".join(decoded)


def scope_allows(scopes: tuple[str, ...], method: str, raw_path: str) -> bool:
    """May a request with this method and path use a token with these scopes?"""
    if not scopes:
        return True
    path = canonical_path(raw_path)
    if path is None:
        return False
    for scope in scopes:
        want, pattern = _compile_scope(scope)
        if want in ("*", method) and pattern.fullmatch(path):
            return True
    return False


# -- rates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    count: int
    period: float  # seconds

    def __str__(self) -> str:
        unit = next(u for u, s in _RATE_UNITS.items() if s == self.period)
        return f"{self.count}/{unit}"


@lru_cache(maxsize=256)
def parse_rate(text: str) -> Rate:
    """``N/s``, ``N/min`` or ``N/h``: at most N requests in any window of that length."""
    m = _RATE_RE.fullmatch(text.strip())
    if not m:
        raise ConfigError(f"{text!r} is not a rate such as 60/min (units: s, min, h)")
    count = int(m[1])
    if not 1 <= count <= MAX_RATE:
        raise ConfigError(f"{text!r}: the number of requests must be 1 to {MAX_RATE}")
    return Rate(count, _RATE_UNITS[m[2]])


class RateWindow:
    """Sliding-window request counts per key (a token id), in this process's memory.

    Exact: it keeps the times of the requests it let through in the last window, so at most
    ``count`` requests pass in any window of ``period`` seconds. Refused requests do not count.
    """

    SWEEP_EVERY_S = 60.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[str, tuple[float, deque[float]]] = {}
        self._last_sweep = clock()

    def take(self, key: str, rate: Rate) -> float | None:
        """Count one request: None if it may pass, else the seconds until one may."""
        now = self._clock()
        if now - self._last_sweep >= self.SWEEP_EVERY_S:
            self._sweep(now)
        entry = self._hits.get(key)
        if entry is None or entry[0] != rate.period:
            entry = self._hits[key] = (rate.period, deque())
        hits = entry[1]
        while hits and hits[0] <= now - rate.period:
            hits.popleft()
        if len(hits) >= rate.count:
            return max(hits[0] + rate.period - now, 0.001)
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget keys with nothing left in their window, so memory follows active tokens."""
        self._last_sweep = now
        idle = [
            k for k, (period, hits) in self._hits.items() if not hits or hits[-1] <= now - period
        ]
        for key in idle:
            del self._hits[key]

    def __len__(self) -> int:
        return len(self._hits)
