"""The vault: one SQLite file holding tenants, secrets, agents, tokens and the audit trail.

Nothing here knows about HTTP; the addon and the CLI call in through :class:`Vault`.
"""

from seks.store.crypto import MasterKey
from seks.store.secret import Secret
from seks.store.vault import SecretInfo, TokenInfo, Vault

__all__ = ["MasterKey", "Secret", "SecretInfo", "TokenInfo", "Vault"]
