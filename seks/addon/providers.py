"""Built-in providers: the hosts each one serves and the exact places its credential goes."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUILTIN", "CredentialPlace", "Provider", "host_matches"]


@dataclass(frozen=True)
class CredentialPlace:
    """A request header carrying the credential, optionally after an auth scheme word."""

    header: str  # lower case
    scheme: str | None = None  # "Bearer", "token", … compared case-insensitively

    def describe(self) -> str:
        return f"{self.header}: {self.scheme + ' ' if self.scheme else ''}<key>"


@dataclass(frozen=True)
class Provider:
    name: str
    hosts: tuple[str, ...]  # exact names, or "*.example.com" for any subdomain
    places: tuple[CredentialPlace, ...]
    env_var: str  # where its SDKs read the key, for `seks env`

    def serves(self, host: str) -> bool:
        return any(host_matches(pattern, host) for pattern in self.hosts)

    def place_for(self, header: str, value: str, token: str) -> CredentialPlace | None:
        """The place this header/value is, if the token sits exactly where a credential goes."""
        header = header.lower()
        for place in self.places:
            if place.header != header:
                continue
            if place.scheme is None:
                if value == token:
                    return place
                continue
            scheme, _, rest = value.partition(" ")
            if scheme.lower() == place.scheme.lower() and rest == token:
                return place
        return None


def host_matches(pattern: str, host: str) -> bool:
    host = host.lower().rstrip(".")
    pattern = pattern.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


_BEARER = CredentialPlace("authorization", "Bearer")

BUILTIN: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("openai", ("api.openai.com",), (_BEARER,), "OPENAI_API_KEY"),
        Provider(
            "anthropic",
            ("api.anthropic.com",),
            # The anthropic SDK 2.x sends Authorization: Bearer; older ones x-api-key.
            (CredentialPlace("x-api-key"), _BEARER),
            "ANTHROPIC_API_KEY",
        ),
        Provider(
            "github",
            ("api.github.com",),
            (_BEARER, CredentialPlace("authorization", "token")),
            "GITHUB_TOKEN",
        ),
    )
}
