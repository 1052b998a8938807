"""An AWS secret: access key id, secret access key, optional session token, and limits.

Stored in the vault as one JSON object (the secret's encrypted value)::

    {"access_key_id": "AKIA…", "secret_access_key": "…", "session_token": "…",
     "region": "eu-west-1", "regions": ["eu-west-1"], "services": ["s3", "sts"]}

``session_token``, ``region`` (what ``seks env`` tells the agent's SDK), ``regions`` and
``services`` (the allow-lists: empty means any) are optional. Only the secret access key and
the session token are secrets; the access key id identifies, and is scrubbed from nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from seks.errors import ConfigError

__all__ = [
    "FAKE_SECRET_KEY",
    "FAKE_SESSION_TOKEN",
    "REGION_RE",
    "SERVICE_RE",
    "AwsCredentials",
    "parse_list",
]

# What the agent holds beside its seks_aws_… access key id: botocore needs a secret key and
# signs with it, the proxy re-signs with the real one. Not a credential anywhere.
FAKE_SECRET_KEY = "seks-placeholder-secret-key-not-a-credential"  # noqa: S105
FAKE_SESSION_TOKEN = "seks-placeholder-session-token-not-a-credential"  # noqa: S105

_KEYS = ("access_key_id", "secret_access_key", "session_token", "region", "regions", "services")
_AKID_RE = re.compile(r"[A-Z0-9]{16,128}")
_SECRET_RE = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII, no spaces
_TOKEN_RE = re.compile(r"[\x21-\x7e]{1,16384}")
REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
SERVICE_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True, repr=False)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    region: str | None = None
    regions: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"AwsCredentials(access_key_id={self.access_key_id[:4]}…, secret_access_key=<redacted>"
            f", session_token={'<redacted>' if self.session_token else None}"
            f", regions={self.regions}, services={self.services})"
        )

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("AWS credentials cannot be pickled")

    @classmethod
    def from_json(cls, text: str) -> AwsCredentials:
        """Parse and check a stored or entered value; errors name the key, never a value."""
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(
                "an aws secret is a JSON object: "
                '{"access_key_id": …, "secret_access_key": …, "session_token": …}'
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("an aws secret is a JSON object with access_key_id and friends")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ConfigError(
                f"an aws secret has no key {unknown[0]!r}; known keys: {', '.join(_KEYS)}"
            )
        akid = _text(data, "access_key_id", _AKID_RE, "16 to 128 upper-case letters or digits")
        secret = _text(data, "secret_access_key", _SECRET_RE, "printable text without spaces")
        if akid is None or secret is None:
            missing = "access_key_id" if akid is None else "secret_access_key"
            raise ConfigError(f"an aws secret needs {missing}")
        token = _text(data, "session_token", _TOKEN_RE, "printable text without spaces")
        region = _text(data, "region", REGION_RE, "a region name such as eu-west-1")
        return cls(
            akid,
            secret,
            token,
            region,
            parse_list(data.get("regions"), "regions", REGION_RE),
            parse_list(data.get("services"), "services", SERVICE_RE),
        )

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
        }
        if self.session_token:
            data["session_token"] = self.session_token
        if self.region:
            data["region"] = self.region
        if self.regions:
            data["regions"] = list(self.regions)
        if self.services:
            data["services"] = list(self.services)
        return json.dumps(data)

    def secret_values(self) -> list[str]:
        """What the response scrubber looks for."""
        return [self.secret_access_key, *([self.session_token] if self.session_token else [])]


def _text(data: dict[str, Any], key: str, pattern: re.Pattern[str], expected: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"aws secret {key}: expected {expected}")
    return value


def parse_list(value: object, key: str, pattern: re.Pattern[str]) -> tuple[str, ...]:
    """An allow-list, as a JSON list or comma-separated text; empty means any."""
    if value is None or value == "":
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"aws {key}: expected a list of names")
    names = tuple(dict.fromkeys(i.strip().lower() for i in items if i.strip()))
    bad = next((n for n in names if not pattern.fullmatch(n)), None)
    if bad is not None:
        raise ConfigError(f"aws {key}: {bad!r} is not a valid name")
    return names
