"""Where SEKS keeps its files, and where the master key comes from.

``$SEKS_HOME`` (default ``~/.seks``), created 0700, holds ``vault.db``, ``master.key`` (0600),
``config.yaml`` and the proxy CA in ``ca/``. ``SEKS_MASTER_KEY`` (64 hex characters) wins over
the key file, so the key can live in a secret manager instead of on disk.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from seks.errors import ConfigError, NotFound
from seks.store.crypto import MasterKey

__all__ = ["MASTER_KEY_ENV", "Home"]

MASTER_KEY_ENV = "SEKS_MASTER_KEY"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        value = os.environ.get("SEKS_HOME")
        return cls(Path(value).expanduser() if value else Path.home() / ".seks")

    @property
    def vault_path(self) -> Path:
        return self.root / "vault.db"

    @property
    def key_path(self) -> Path:
        return self.root / "master.key"

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def confdir(self) -> Path:
        """mitmproxy's confdir: the proxy CA lives here."""
        return self.root / "ca"

    def create(self) -> None:
        """Create the home directory owner-only; tighten it if it already exists."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)

    def write_master_key(self, key: MasterKey) -> None:
        # O_EXCL: never overwrite a key; losing it loses every secret.
        fd = os.open(self.key_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.to_hex() + "\n")

    def master_key(self) -> MasterKey:
        env = os.environ.get(MASTER_KEY_ENV)
        if env:
            return MasterKey.from_hex(env, source=MASTER_KEY_ENV)
        try:
            mode = self.key_path.stat().st_mode
        except FileNotFoundError:
            raise NotFound(
                f"no master key: {self.key_path} does not exist and {MASTER_KEY_ENV} is not set "
                "(run `seks init`)"
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{self.key_path} is readable by other users (mode {stat.S_IMODE(mode):o}): "
                f"run `chmod 600 {self.key_path}`"
            )
        return MasterKey.from_hex(self.key_path.read_text(), source=str(self.key_path))
