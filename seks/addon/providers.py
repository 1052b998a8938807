"""Built-in providers: the hosts each one serves and the exact places its credential goes.

A credential sits in one of four kinds of place (:class:`CredentialPlace`):

- ``header``: a request header, optionally after a scheme word (``Authorization: Bearer <key>``);
- ``query``: a query parameter (``?key=<key>``);
- ``path``: a whole path segment, after a fixed prefix (Telegram's ``/bot<key>/getMe``);
- ``basic``: the password of ``Authorization: Basic`` (git over HTTPS: ``x-access-token:<key>``);
- ``sigv4``: AWS's access key id in a SigV4 signature (header or presigned URL), re-signed with
  the real key (``seks/addon/sigv4.py``); built in only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BUILTIN",
    "PLACE_KINDS",
    "CredentialPlace",
    "PlaceKind",
    "Provider",
    "host_matches",
]

PlaceKind = Literal["header", "query", "path", "basic", "sigv4"]
PLACE_KINDS: tuple[PlaceKind, ...] = ("header", "query", "path", "basic")  # for custom providers


@dataclass(frozen=True)
class CredentialPlace:
    """Where a credential goes. ``name`` is the header (lower case) for ``header``, the
    parameter for ``query``, the segment's prefix (may be empty) for ``path``; ``basic`` always
    uses the Authorization header. ``scheme`` is the word before a header's key ("Bearer",
    "token", "Bot"), compared case-insensitively."""

    name: str
    scheme: str | None = None
    kind: PlaceKind = "header"

    @property
    def header(self) -> str | None:
        """The header this place is in, if it is in one."""
        if self.kind == "header":
            return self.name
        return "authorization" if self.kind == "basic" else None

    def describe(self) -> str:
        if self.kind == "query":
            return f"the query parameter ?{self.name}=<key>"
        if self.kind == "path":
            return f"the path segment /{self.name}<key>"
        if self.kind == "basic":
            return "authorization: Basic base64(<user>:<key>)"
        if self.kind == "sigv4":
            return "the access key id of an AWS SigV4 signature (header or presigned URL)"
        return f"{self.name}: {self.scheme + ' ' if self.scheme else ''}<key>"

    def holds(self, value: str, token: str) -> bool:
        """Whether a header value (``header`` places) is exactly this place with ``token``."""
        if self.scheme is None:
            return value == token
        scheme, _, rest = value.partition(" ")
        return scheme.lower() == self.scheme.lower() and rest == token


def header_place(name: str, scheme: str | None = None) -> CredentialPlace:
    return CredentialPlace(name.lower(), scheme, "header")


@dataclass(frozen=True)
class Provider:
    name: str
    hosts: tuple[str, ...]  # exact names, or "*.example.com" for any subdomain
    places: tuple[CredentialPlace, ...]
    env_var: str  # where its SDKs read the key, for `seks env`
    paths: tuple[str, ...] = ()  # path prefixes a credential may go to; () for any path
    base_url_var: str | None = None  # where its SDKs read a base URL, for `seks env --gateway`
    base_path: str = ""  # what the SDK's default base URL adds after the host (e.g. "/v1")
    custom: bool = False  # defined in config.yaml

    def serves(self, host: str) -> bool:
        return any(host_matches(pattern, host) for pattern in self.hosts)

    def serves_path(self, path: str) -> bool:
        path = path.split("?", 1)[0]
        return not self.paths or any(
            path == p or path.startswith(p.rstrip("/") + "/") for p in self.paths
        )

    def place_for(self, header: str, value: str, token: str) -> CredentialPlace | None:
        """The place this header/value is, if the token sits exactly where a credential goes."""
        header = header.lower()
        return next(
            (
                p
                for p in self.places
                if p.kind == "header" and p.name == header and p.holds(value, token)
            ),
            None,
        )

    def places_of(self, kind: PlaceKind) -> list[CredentialPlace]:
        return [p for p in self.places if p.kind == kind]


def host_matches(pattern: str, host: str) -> bool:
    host = host.lower().rstrip(".")
    pattern = pattern.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


_BEARER = header_place("authorization", "Bearer")

BUILTIN: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "openai",
            ("api.openai.com",),
            (_BEARER,),
            "OPENAI_API_KEY",
            base_url_var="OPENAI_BASE_URL",
            base_path="/v1",
        ),
        Provider(
            "anthropic",
            ("api.anthropic.com",),
            # The anthropic SDK 2.x sends Authorization: Bearer; older ones x-api-key.
            (header_place("x-api-key"), _BEARER),
            "ANTHROPIC_API_KEY",
            base_url_var="ANTHROPIC_BASE_URL",
        ),
        Provider(
            "gemini",
            ("generativelanguage.googleapis.com",),
            # google-genai sends the header; REST examples and curl use ?key=.
            (header_place("x-goog-api-key"), CredentialPlace("key", kind="query")),
            "GEMINI_API_KEY",
            base_url_var="GOOGLE_GEMINI_BASE_URL",
        ),
        Provider(
            "groq",
            ("api.groq.com",),
            (_BEARER,),
            "GROQ_API_KEY",
            base_url_var="GROQ_BASE_URL",
        ),
        Provider(
            "github",
            ("api.github.com", "github.com"),
            # git over HTTPS sends Basic x-access-token:<token>; the REST API Bearer or token.
            (_BEARER, header_place("authorization", "token"), CredentialPlace("", kind="basic")),
            "GITHUB_TOKEN",
        ),
        Provider(
            "brave",
            ("api.search.brave.com",),
            (header_place("x-subscription-token"),),
            "BRAVE_API_KEY",
        ),
        Provider("notion", ("api.notion.com",), (_BEARER,), "NOTION_TOKEN"),
        Provider("cloudflare", ("api.cloudflare.com",), (_BEARER,), "CLOUDFLARE_API_TOKEN"),
        Provider(
            "discord",
            ("discord.com",),
            (header_place("authorization", "Bot"),),
            "DISCORD_BOT_TOKEN",
            paths=("/api",),
        ),
        Provider(
            "aws",
            ("*.amazonaws.com", "*.amazonaws.com.cn"),
            (CredentialPlace("", kind="sigv4"),),
            "AWS_ACCESS_KEY_ID",
        ),
        Provider(
            "telegram",
            ("api.telegram.org",),
            # https://core.telegram.org/bots/api#making-requests: /bot<token>/METHOD_NAME
            (CredentialPlace("bot", kind="path"),),
            "TELEGRAM_BOT_TOKEN",
        ),
    )
}
