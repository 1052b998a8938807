"""SEKS: a credential broker for AI agents.

Agents hold only fake tokens (``seks_openai_…``); the SEKS proxy swaps them for real credentials
from an encrypted local vault, and audits every decision.
"""

__version__ = "0.1.0"
