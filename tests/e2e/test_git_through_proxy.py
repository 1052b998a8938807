"""`git clone` and `git push` over HTTPS through the proxy: git sends the fake token as the
Basic password (`x-access-token:<token>`), and the local smart-HTTP server behind github.com
accepts only the real one there."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import AGENT, ProxyProcess, Seks, TestCA, files_under, find_leaks, running_proxy
from provider_upstreams import GitSmartHttpHandler
from upstreams import Upstream

REAL = "ghp_canary" + secrets.token_hex(16)
# A credential helper that reads the token from the environment: it never sits in argv or in
# the remote URL (which git would store in .git/config).
HELPER = "!f() { echo username=x-access-token; echo password=$GITHUB_TOKEN; }; f"


def git(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-c", f"credential.helper={HELPER}", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def git_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("git-server")
    bare = root / "o" / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = tmp_path_factory.mktemp("git-seed")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "GIT_CONFIG_NOSYSTEM": "1"}
    for args in (
        ["init", "-q", "-b", "main"],
        [
            "-c",
            "user.name=seed",
            "-c",
            "user.email=s@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "seed",
        ],
        ["push", "-q", str(bare), "main"],
    ):
        subprocess.run(["git", *args], cwd=work, env=env, check=True)
    return root


@pytest.fixture(scope="module")
def git_server(git_root: Path, test_ca: TestCA) -> Iterator[Upstream]:
    server = Upstream(GitSmartHttpHandler, ssl_context=test_ca.server_context(), real_key=REAL)
    server.git_root = git_root  # type: ignore[attr-defined]
    yield server
    server.close()


@pytest.fixture(scope="module")
def git_seks(tmp_path_factory: pytest.TempPathFactory) -> Seks:
    cli = Seks(tmp_path_factory.mktemp("seks-git") / "home")
    cli.run("init")
    cli.run("secret", "add", "gh", "--provider", "github", input=REAL)
    cli.run("agent", "create", AGENT)
    return cli


@pytest.fixture(scope="module")
def git_proxy(git_seks: Seks, git_server: Upstream, test_ca: TestCA) -> Iterator[ProxyProcess]:
    path = git_seks.home / "config.yaml"
    github = {"upstream": git_server.url, "upstream_ca": str(test_ca.pem)}
    path.write_text(yaml.safe_dump({"providers": {"github": github}}))
    with running_proxy(git_seks, path) as p:
        yield p


def test_git_clone_and_push_through_the_proxy(
    git_seks, git_proxy, git_server, git_root, tmp_path
) -> None:
    env = git_seks.agent_env(git_proxy.url) | {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}
    assert env["GITHUB_TOKEN"].startswith("seks_github_")

    cloned = git("clone", "-q", "https://github.com/o/r.git", "r", env=env, cwd=tmp_path)
    assert cloned.returncode == 0, cloned.stderr
    work = tmp_path / "r"
    (work / "hello.txt").write_text("hi\n")
    git("add", "hello.txt", env=env, cwd=work)
    committed = git(
        "-c",
        "user.name=agent",
        "-c",
        "user.email=a@e",
        "commit",
        "-q",
        "-m",
        "hello",
        env=env,
        cwd=work,
    )
    assert committed.returncode == 0, committed.stderr
    pushed = git("push", "-q", "origin", "main", env=env, cwd=work)
    assert pushed.returncode == 0, pushed.stderr

    log = subprocess.run(
        ["git", "--git-dir", str(git_root / "o" / "r.git"), "log", "--format=%s", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert log == ["hello", "seed"]
    assert any(r.header("Authorization") for r in git_server.requests)
    assert all(b"seks_" not in r.raw() for r in git_server.requests)
    places = {
        "git output": (cloned.stderr + pushed.stderr).encode(),
        "proxy": git_proxy.output(),
        **files_under(work / ".git"),
        **files_under(git_seks.home),
    }
    assert find_leaks([REAL], places) == []
