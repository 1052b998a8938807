"""Find fake tokens in a request and swap them, in place, for the real credential.

A token is swapped only where its provider puts a credential; a token anywhere else (another
header, the URL) is refused, so an agent cannot smuggle the real key into a place that the
upstream echoes back or logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from seks.addon.providers import CredentialPlace, Provider
from seks.errors import TokenMisplaced
from seks.store.secret import Secret
from seks.store.tokens import TOKEN_CANDIDATE_RE

__all__ = ["FoundToken", "credential_value", "find_tokens", "require_place"]


@dataclass(frozen=True)
class FoundToken:
    token: str
    header: str | None  # the header it was found in; None for the URL
    value: str  # the whole header value (or the URL), to restore after the request

    def __repr__(self) -> str:
        return f"FoundToken(header={self.header!r}, token=<redacted>)"


def find_tokens(headers: Iterable[tuple[str, str]], url: str) -> list[FoundToken]:
    """Every ``seks_…`` candidate in header values and the request target, in order."""
    found = [
        FoundToken(m.group(), name, value)
        for name, value in headers
        for m in TOKEN_CANDIDATE_RE.finditer(value)
    ]
    found += [FoundToken(m.group(), None, url) for m in TOKEN_CANDIDATE_RE.finditer(url)]
    return found


def require_place(provider: Provider, found: FoundToken) -> CredentialPlace:
    place = (
        provider.place_for(found.header, found.value, found.token)
        if found.header is not None
        else None
    )
    if place is None:
        where = f"the {found.header} header" if found.header is not None else "the URL"
        expected = " or ".join(p.describe() for p in provider.places)
        raise TokenMisplaced(
            f"a {provider.name} token was found in {where}; it is only accepted as {expected}"
        )
    return place


def credential_value(place: CredentialPlace, secret: Secret) -> str:
    """The header value that carries the real credential. Call only at injection time."""
    value = secret.reveal()
    return f"{place.scheme} {value}" if place.scheme else value
