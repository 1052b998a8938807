"""Custom providers from ``config.yaml``: validated once into the same :class:`Provider` the
built-in ones are.

```yaml
providers:
  acme:
    hosts: [api.acme.example, "*.acme.example"]
    place: header            # header | query | path | basic
    header: Authorization    # place: header
    format: "Bearer {secret}"
    env: ACME_API_KEY        # default: ACME_API_KEY from the name
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from seks.addon.providers import BUILTIN, PLACE_KINDS, CredentialPlace, Provider, host_matches
from seks.errors import ConfigError
from seks.store.tokens import PROVIDER_NAME_RE

__all__ = ["CUSTOM_KEYS", "check_env_vars", "parse_custom_provider"]

CUSTOM_KEYS = ("hosts", "place", "header", "parameter", "format", "env", "paths")

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})+")
_TOKEN_CHARS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_ENV_RE = re.compile(r"[A-Z_][A-Z0-9_]*")
_PATH_PREFIX_RE = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]*")  # RFC 3986 pchar, unescaped
# Headers whose meaning to the proxy or the upstream's framing must not carry a credential.
_RESERVED_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "proxy-authorization",
    "te",
    "upgrade",
}
# What `seks env` sets itself, or what a process needs to run.
_RESERVED_ENV = {
    "PATH",
    "HOME",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
}
PLACEHOLDER = "{secret}"


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key}: expected a non-empty string")
    return value


def _only_for(
    data: Mapping[str, Any], key: str, place: str, allowed: tuple[str, ...], where: str
) -> None:
    if key in data and place not in allowed:
        raise ConfigError(f"{where}.{key}: only for place: {' or '.join(allowed)}, not {place}")


def _hosts(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    raw = data.get("hosts")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}.hosts: expected a list of host names such as api.example.com")
    hosts = []
    for host in raw:
        if not isinstance(host, str) or not _HOST_RE.fullmatch(host.lower()):
            raise ConfigError(
                f"{where}.hosts: {host!r} is not a host name (a name with a dot, optionally "
                "starting with '*.' for any subdomain)"
            )
        for builtin in BUILTIN.values():
            covered = any(host_matches(host, h) for h in builtin.hosts)
            if covered or builtin.serves(host.lower().removeprefix("*.")):
                raise ConfigError(
                    f"{where}.hosts: {host} is served by the built-in provider {builtin.name}"
                )
        hosts.append(host.lower())
    return tuple(hosts)


def _place(data: Mapping[str, Any], where: str) -> CredentialPlace:
    kind = data.get("place", "header")
    if kind not in PLACE_KINDS:
        raise ConfigError(f"{where}.place: must be one of {', '.join(PLACE_KINDS)}, got {kind!r}")
    _only_for(data, "header", kind, ("header",), where)
    _only_for(data, "parameter", kind, ("query",), where)
    _only_for(data, "format", kind, ("header", "path"), where)
    fmt = _string(data, "format", where) if "format" in data else PLACEHOLDER
    if fmt.count(PLACEHOLDER) != 1:
        raise ConfigError(f"{where}.format: must hold {PLACEHOLDER} exactly once, got {fmt!r}")
    before, _, after = fmt.partition(PLACEHOLDER)
    if kind == "header":
        if "header" not in data:
            raise ConfigError(f"{where}.header: required for place: header")
        header = _string(data, "header", where)
        if not _TOKEN_CHARS.fullmatch(header) or header.lower() in _RESERVED_HEADERS:
            raise ConfigError(f"{where}.header: {header!r} cannot carry a credential")
        scheme = before.removesuffix(" ")
        if after or (before and (before != scheme + " " or not _TOKEN_CHARS.fullmatch(scheme))):
            raise ConfigError(
                f"{where}.format: for a header, {PLACEHOLDER} or a scheme word and a space before "
                f'it, such as "Bearer {PLACEHOLDER}"; got {fmt!r}'
            )
        return CredentialPlace(header.lower(), scheme or None, "header")
    if kind == "query":
        if "parameter" not in data:
            raise ConfigError(f"{where}.parameter: required for place: query")
        return CredentialPlace(_string(data, "parameter", where), None, "query")
    if kind == "path":
        if after or not _PATH_PREFIX_RE.fullmatch(before):
            raise ConfigError(
                f"{where}.format: for a path, a whole path segment: {PLACEHOLDER} after an "
                f'optional prefix, such as "bot{PLACEHOLDER}"; got {fmt!r}'
            )
        return CredentialPlace(before, None, "path")
    return CredentialPlace("", None, "basic")


def _paths(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    raw = data.get("paths", [])
    if not isinstance(raw, list) or not all(isinstance(p, str) and p.startswith("/") for p in raw):
        raise ConfigError(f"{where}.paths: expected a list of path prefixes such as /api")
    return tuple(raw)


def parse_custom_provider(name: str, data: Mapping[str, Any], where: str) -> Provider:
    """A provider defined under ``providers.NAME`` (``where``); ConfigError names the key."""
    if not PROVIDER_NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{where}: a provider name is lower-case letters, digits and '-', starting with a "
            "letter, at most 31 characters"
        )
    env = data.get("env", name.upper().replace("-", "_") + "_API_KEY")
    if not isinstance(env, str) or not _ENV_RE.fullmatch(env):
        raise ConfigError(f"{where}.env: expected an upper-case variable name, got {env!r}")
    if env in _RESERVED_ENV or env.startswith("SEKS_"):
        raise ConfigError(f"{where}.env: {env} is set by seks env for another purpose")
    return Provider(
        name,
        _hosts(data, where),
        (_place(data, where),),
        env,
        paths=_paths(data, where),
        custom=True,
    )


def check_env_vars(providers: Mapping[str, Provider]) -> None:
    """Two providers writing one variable in `seks env` would hand an agent the wrong token."""
    seen: dict[str, str] = {}
    for provider in providers.values():
        other = seen.setdefault(provider.env_var, provider.name)
        if other != provider.name:
            raise ConfigError(
                f"providers.{provider.name}.env: {provider.env_var} is already the variable "
                f"of provider {other}"
            )
