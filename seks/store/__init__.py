"""The vault: one SQLite file holding tenants, secrets, agents, tokens and the audit trail.

Nothing here knows about HTTP; the addon and the CLI call in through :class:`Vault`.

The names below are imported when first used, not with the package: the proxy's audit writer
process (``seks.store.audit_process``) imports a few modules of this package and nothing of the
vault's (cryptography, sqlite-utils), which keeps that process small.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seks.store.crypto import MasterKey
    from seks.store.secret import Secret
    from seks.store.vault import SecretInfo, TokenInfo, Vault

__all__ = ["MasterKey", "Secret", "SecretInfo", "TokenInfo", "Vault"]

_HOME = {
    "MasterKey": "seks.store.crypto",
    "Secret": "seks.store.secret",
    "SecretInfo": "seks.store.vault",
    "TokenInfo": "seks.store.vault",
    "Vault": "seks.store.vault",
}


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'seks.store' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
