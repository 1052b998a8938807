"""The SEKS home: where it is, how it is created, and where the master key comes from."""

from __future__ import annotations

import re
import secrets
import stat
from pathlib import Path

import pytest

from seks.errors import ConfigError, NotFound
from seks.home import Home
from seks.store import MasterKey


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEKS_MASTER_KEY", raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    h = Home(tmp_path / "home")
    h.create()
    return h


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_home_comes_from_seks_home_or_defaults_to_dot_seks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEKS_HOME", str(tmp_path / "elsewhere"))
    assert Home.from_env().root == tmp_path / "elsewhere"

    monkeypatch.delenv("SEKS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Home.from_env().root == tmp_path / ".seks"


def test_create_makes_the_home_owner_only_and_tightens_an_existing_one(tmp_path: Path) -> None:
    h = Home(tmp_path / "a" / "home")
    h.create()
    assert mode(h.root) == 0o700

    loose = Home(tmp_path / "loose")
    loose.root.mkdir(mode=0o755)
    loose.root.chmod(0o755)
    loose.create()
    assert mode(loose.root) == 0o700


def test_the_written_key_is_owner_only_and_reads_back(home: Home) -> None:
    key = MasterKey.generate()

    home.write_master_key(key)

    assert mode(home.key_path) == 0o600
    assert home.master_key().to_hex() == key.to_hex()


def test_the_env_key_wins_over_the_key_file(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    home.write_master_key(MasterKey.generate())
    from_env = secrets.token_hex(32)
    monkeypatch.setenv("SEKS_MASTER_KEY", from_env)

    assert home.master_key().to_hex() == from_env


def test_the_env_key_works_without_any_key_file(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = secrets.token_hex(32).upper()
    monkeypatch.setenv("SEKS_MASTER_KEY", f"  {from_env}\n")

    assert home.master_key().to_hex() == from_env.lower()


@pytest.mark.parametrize("bad", ["abc", "zz" * 32])
def test_a_malformed_env_key_names_the_variable(
    home: Home, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    home.write_master_key(MasterKey.generate())  # a good file does not hide a bad variable
    monkeypatch.setenv("SEKS_MASTER_KEY", bad)

    with pytest.raises(ConfigError, match=r"^SEKS_MASTER_KEY must be"):
        home.master_key()


@pytest.mark.parametrize("loose_mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused_with_the_chmod_to_run(
    home: Home, loose_mode: int
) -> None:
    home.write_master_key(MasterKey.generate())
    home.key_path.chmod(loose_mode)

    with pytest.raises(ConfigError) as e:
        home.master_key()
    assert f"chmod 600 {home.key_path}" in str(e.value)
    assert f"{loose_mode:o}" in str(e.value)


def test_a_missing_key_says_to_run_init(home: Home) -> None:
    with pytest.raises(NotFound) as e:
        home.master_key()
    message = str(e.value)
    assert "seks init" in message
    assert "SEKS_MASTER_KEY" in message
    assert str(home.key_path) in message


def test_a_corrupt_key_file_names_the_file(home: Home) -> None:
    home.key_path.write_text("not a key\n")
    home.key_path.chmod(0o600)

    with pytest.raises(ConfigError, match=re.escape(str(home.key_path))):
        home.master_key()


def test_writing_a_key_never_overwrites_an_existing_one(home: Home) -> None:
    home.write_master_key(MasterKey.generate())
    before = home.key_path.read_bytes()

    with pytest.raises(FileExistsError):
        home.write_master_key(MasterKey.generate())

    assert home.key_path.read_bytes() == before
    assert mode(home.key_path) == 0o600
