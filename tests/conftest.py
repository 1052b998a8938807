"""Fixtures shared by the unit tests: a fresh vault in tmp_path and canary secrets."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from seks.store import MasterKey, Vault


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "vault.db"


@pytest.fixture
def vault(vault_path: Path, master: MasterKey) -> Iterator[Vault]:
    v = Vault.create(vault_path, master)
    yield v
    v.close()


@pytest.fixture
def canary() -> str:
    """A fresh secret value per test, so no committed constant can make a search pass."""
    return "sk-canary-" + secrets.token_hex(16)
