"""Find fake tokens in a request and swap them, in place, for the real credential.

A token is swapped only where its provider puts a credential; a token anywhere else (another
header, another query parameter, elsewhere in the path) is refused, so an agent cannot smuggle
the real key into a place that the upstream echoes back or logs. Basic credentials are decoded
first: git puts the token inside the base64 of ``Authorization: Basic``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from mitmproxy.http import Headers

from seks.addon.providers import CredentialPlace, Provider
from seks.errors import TokenMisplaced
from seks.store.secret import Secret
from seks.store.tokens import TOKEN_CANDIDATE_RE

__all__ = [
    "FoundToken",
    "basic_credentials",
    "credential_value",
    "find_tokens",
    "headers_mentioning_seks",
    "injected_target",
    "require_place",
]

Where = Literal["header", "basic", "query", "path"]


@dataclass(frozen=True)
class FoundToken:
    token: str
    header: str | None  # the header it was found in (also for Basic); None in the URL
    value: str  # the whole header value, the query parameter's raw value, or the path segment
    where: Where = "header"
    param: str | None = None  # the query parameter's (decoded) name

    def __repr__(self) -> str:
        return f"FoundToken(where={self.where!r}, header={self.header!r}, token=<redacted>)"

    def describe(self) -> str:
        if self.where == "basic":
            return f"the Basic credentials of the {self.header} header"
        if self.where == "header":
            return f"the {self.header} header"
        if self.where == "query":
            return f"the query parameter {self.param!r} of the URL"
        return "the URL path"


def headers_mentioning_seks(headers: Headers) -> list[tuple[str, str]]:
    """Only headers whose raw bytes hold "seks_": decoding every header of every request
    showed up in profiles. Decoded as mitmproxy's Headers does. Basic credentials are
    base64: git puts a token there."""
    return [
        (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
        for k, v in headers.fields
        if b"seks_" in v or v[:6].lower() == b"basic "
    ]


def basic_credentials(value: str) -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic`` value (RFC 7617), if it is one."""
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def find_tokens(headers: Iterable[tuple[str, str]], url: str) -> list[FoundToken]:
    """Every ``seks_…`` candidate in header values (Basic credentials decoded) and the request
    target's path segments and query parameters, in that order."""
    found: list[FoundToken] = []
    for name, value in headers:
        found += [FoundToken(m.group(), name, value) for m in TOKEN_CANDIDATE_RE.finditer(value)]
        basic = basic_credentials(value)
        if basic is not None:
            found += [
                FoundToken(m.group(), name, value, "basic")
                for m in TOKEN_CANDIDATE_RE.finditer(":".join(basic))
            ]
    path, _, query = url.partition("?")
    for segment in path.split("/"):
        found += [
            FoundToken(m.group(), None, segment, "path")
            for m in TOKEN_CANDIDATE_RE.finditer(segment)
        ]
    for item in query.split("&") if query else ():
        param, _, raw = item.partition("=")
        found += [
            FoundToken(m.group(), None, raw, "query", unquote(param))
            for m in TOKEN_CANDIDATE_RE.finditer(item)
        ]
    return found


def _place_of(provider: Provider, found: FoundToken) -> CredentialPlace | None:
    if found.where == "header":
        assert found.header is not None
        return provider.place_for(found.header, found.value, found.token)
    candidates = provider.places_of(found.where)
    if found.where == "basic":
        basic = basic_credentials(found.value)
        header = (found.header or "").lower()
        ok = basic is not None and basic[1] == found.token and header == "authorization"
        return candidates[0] if ok and candidates else None
    if found.where == "query":
        return next(
            (p for p in candidates if p.name == found.param and found.value == found.token), None
        )
    return next((p for p in candidates if found.value == p.name + found.token), None)


def require_place(provider: Provider, found: FoundToken) -> CredentialPlace:
    place = _place_of(provider, found)
    if place is None:
        expected = " or ".join(p.describe() for p in provider.places)
        raise TokenMisplaced(
            f"a {provider.name} token was found in {found.describe()}; "
            f"it is only accepted as {expected}"
        )
    return place


def credential_value(
    place: CredentialPlace, secret: Secret, found: FoundToken | None = None
) -> str:
    """The header value that carries the real credential. Call only at injection time."""
    value = secret.reveal()
    if place.kind == "basic":
        basic = basic_credentials(found.value) if found is not None else None
        user = basic[0] if basic is not None else ""
        return "Basic " + base64.b64encode(f"{user}:{value}".encode()).decode("ascii")
    return f"{place.scheme} {value}" if place.scheme else value


def injected_target(target: str, found: FoundToken, place: CredentialPlace, secret: Secret) -> str:
    """The request target with the real credential where ``found`` sits (query or path)."""
    path, sep, query = target.partition("?")
    if place.kind == "query":
        real = quote(secret.reveal(), safe="")
        items = [
            f"{param}={real}"
            if param_raw == "=" and unquote(param) == place.name and raw == found.token
            else f"{param}{param_raw}{raw}"
            for param, param_raw, raw in (item.partition("=") for item in query.split("&"))
        ]
        return f"{path}?{'&'.join(items)}"
    if place.kind == "path":
        real = quote(secret.reveal(), safe=":@!$&'()*+,;=-._~")
        segments = [
            place.name + real if s == place.name + found.token else s for s in path.split("/")
        ]
        return "/".join(segments) + sep + query
    raise ValueError(f"{place.kind} places are not in the request target")
