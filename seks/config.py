"""``config.yaml`` → frozen dataclasses, validated once.

Every problem raises one :class:`ConfigError` naming the key and what is wrong with its value.
``config.example.yaml`` documents each option with its default.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from seks.addon.custom_providers import CUSTOM_KEYS, check_env_vars, parse_custom_provider
from seks.addon.providers import BUILTIN, Provider
from seks.errors import ConfigError
from seks.limits import format_duration, parse_duration

__all__ = ["Config", "ProviderSettings", "Upstream", "load_config", "parse_config", "parse_listen"]

INTERCEPT_MODES = ("providers", "all")
SCRUB_MODES = ("injected", "all")
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Upstream:
    """Where to connect instead of the provider's own host."""

    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ProviderSettings:
    upstream: Upstream | None = None
    upstream_ca: Path | None = None
    custom: Provider | None = None  # a provider defined in the config, not built in


@dataclass(frozen=True)
class Config:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    gateway_host: str | None = "127.0.0.1"  # None: no gateway listener
    gateway_port: int = 8081
    intercept: str = "providers"
    log_level: str = "info"
    audit_timeout: float = 5.0
    scrub: str = "injected"
    approval_timeout: float = 300.0
    max_token_ttl: float | None = None  # None: tokens may be issued without expiry
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)

    @property
    def all_providers(self) -> dict[str, Provider]:
        """The built-in providers and the config's own."""
        custom = {n: s.custom for n, s in self.providers.items() if s.custom is not None}
        return {**BUILTIN, **custom}

    @property
    def gateway_url(self) -> str | None:
        if self.gateway_host is None:
            return None
        host = f"[{self.gateway_host}]" if ":" in self.gateway_host else self.gateway_host
        return f"http://{host}:{self.gateway_port}"

    @property
    def proxy_url(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"http://{host}:{self.listen_port}"


def parse_listen(text: str, *, key: str = "listen") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{key}: expected HOST:PORT, got {text!r}")
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key}: port must be a number from 0 to 65535, got {port!r}")
    return host.strip("[]"), int(port)


def _parse_upstream(value: object, key: str) -> Upstream:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a URL such as https://host:port")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http"):
        raise ConfigError(f"{key}: must be an https:// URL, got {value!r}")
    if not parts.hostname:
        raise ConfigError(f"{key}: has no host name: {value!r}")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        # A real credential in plain text on a network: only to a server on this host.
        raise ConfigError(
            f"{key}: http:// is only for a server on this host (127.0.0.1, ::1, localhost); "
            f"use https:// for {parts.hostname}"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"{key}: only scheme, host and port are allowed, got {value!r}")
    try:
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from e
    if port == 0:
        raise ConfigError(f"{key}: port 0 is not a port to connect to")
    port = port or (443 if parts.scheme == "https" else 80)
    return Upstream(parts.scheme, parts.hostname, port)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mapping(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    return value


def _unknown_keys(data: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for k in data:
        if k not in known:
            raise ConfigError(f"{where}{k}: unknown key (known keys: {', '.join(known)})")


def _parse_provider(
    name: str, value: object, base: Path | None, *, custom: bool = False
) -> ProviderSettings:
    where = f"providers.{name}"
    data = _mapping(value if value is not None else {}, where)
    _unknown_keys(data, ("upstream", "upstream_ca", *(CUSTOM_KEYS if custom else ())), f"{where}.")
    upstream = (
        _parse_upstream(data["upstream"], f"{where}.upstream") if "upstream" in data else None
    )
    ca = None
    if "upstream_ca" in data:
        raw = data["upstream_ca"]
        if not isinstance(raw, str):
            raise ConfigError(f"{where}.upstream_ca: expected a file path")
        ca = Path(raw).expanduser()
        if not ca.is_absolute() and base is not None:
            ca = base / ca
        if not ca.is_file():
            raise ConfigError(f"{where}.upstream_ca: no such file: {ca}")
        if upstream is None or upstream.scheme != "https":
            raise ConfigError(
                f"{where}.upstream_ca: only makes sense with an https:// {where}.upstream"
            )
    provider = parse_custom_provider(name, data, where) if custom else None
    return ProviderSettings(upstream=upstream, upstream_ca=ca, custom=provider)


def parse_config(
    data: object, *, known_providers: tuple[str, ...], base: Path | None = None
) -> Config:
    """Validate a loaded YAML document. ``base`` resolves relative file paths."""
    if data is None:
        return Config()
    top = _mapping(data, "config")
    _unknown_keys(
        top,
        (
            "listen",
            "gateway_listen",
            "intercept",
            "log_level",
            "audit_timeout",
            "scrub",
            "approval_timeout",
            "max_token_ttl",
            "providers",
        ),
        "",
    )
    listen_host, listen_port = Config.listen_host, Config.listen_port
    if "listen" in top:
        if not isinstance(top["listen"], str):
            raise ConfigError("listen: expected HOST:PORT as a string")
        listen_host, listen_port = parse_listen(top["listen"])
    gateway_host, gateway_port = _gateway_listen(top)
    intercept = top.get("intercept", Config.intercept)
    if intercept not in INTERCEPT_MODES:
        raise ConfigError(
            f"intercept: must be one of {', '.join(INTERCEPT_MODES)}, got {intercept!r}"
        )
    scrub = top.get("scrub", Config.scrub)
    if scrub not in SCRUB_MODES:
        raise ConfigError(f"scrub: must be one of {', '.join(SCRUB_MODES)}, got {scrub!r}")
    log_level = top.get("log_level", Config.log_level)
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level: must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    audit_timeout = top.get("audit_timeout", Config.audit_timeout)
    if isinstance(audit_timeout, bool) or not isinstance(audit_timeout, int | float):
        raise ConfigError("audit_timeout: expected a number of seconds")
    if not 0 < audit_timeout <= 600:
        raise ConfigError(
            f"audit_timeout: must be more than 0 and at most 600, got {audit_timeout}"
        )
    providers: dict[str, ProviderSettings] = {}
    for name, value in _mapping(top.get("providers") or {}, "providers").items():
        custom = name not in known_providers
        if custom and not (isinstance(value, Mapping) and "hosts" in value):
            raise ConfigError(
                f"providers.{name}: unknown provider (known: {', '.join(known_providers)}; "
                "a custom provider needs hosts)"
            )
        providers[name] = _parse_provider(str(name), value, base, custom=custom)
    check_env_vars(BUILTIN | {n: s.custom for n, s in providers.items() if s.custom})
    return Config(
        listen_host=listen_host,
        listen_port=listen_port,
        gateway_host=gateway_host,
        gateway_port=gateway_port,
        intercept=intercept,
        log_level=log_level,
        audit_timeout=float(audit_timeout),
        scrub=scrub,
        approval_timeout=_seconds(top, "approval_timeout", Config.approval_timeout, 86400),
        max_token_ttl=_seconds(top, "max_token_ttl", Config.max_token_ttl, None),
        providers=providers,
    )


def _gateway_listen(top: Mapping[str, Any]) -> tuple[str | None, int]:
    """``gateway_listen``: HOST:PORT, or null for no gateway."""
    if "gateway_listen" not in top:
        return Config.gateway_host, Config.gateway_port
    raw = top["gateway_listen"]
    if raw is None:
        return None, Config.gateway_port
    if not isinstance(raw, str):
        raise ConfigError("gateway_listen: expected HOST:PORT as a string, or null for none")
    return parse_listen(raw, key="gateway_listen")


def _seconds(top: Mapping[str, Any], key: str, default: float | None, most: float | None) -> Any:
    """A duration key: seconds, or text such as 30s, 5m, 8h, 7d; null where the default is."""
    if key not in top:
        return default
    value = top[key]
    if value is None and default is None:
        return None
    if isinstance(value, str):
        try:
            value = parse_duration(value)
        except ConfigError as e:
            raise ConfigError(f"{key}: {e}") from e
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: expected a duration such as 30s, 5m, 8h or 7d, or seconds")
    if not 0 < value <= (most or float("inf")):
        limit = f" and at most {format_duration(most)}" if most else ""
        raise ConfigError(f"{key}: must be more than 0{limit}, got {value}")
    return float(value)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's message spans several lines with a code excerpt; keep it to one."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        return f"{e.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(e).split())


def load_config(path: Path, *, known_providers: tuple[str, ...], required: bool) -> Config:
    """Read and validate ``path``; a missing optional file gives the defaults."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file not found: {path}") from None
        return Config()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text ({e})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from e
    try:
        return parse_config(data, known_providers=known_providers, base=path.parent)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e
