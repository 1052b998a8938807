"""End-to-end harness: drive the real `seks` CLI and proxy as subprocesses, and the agents'
real clients, and look for leaked secrets. Fixtures built from these live in conftest.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import resource
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import trustme
import yaml
from upstreams import Upstream

REPO = Path(__file__).parents[2]
AGENTS = Path(__file__).parent / "agents"
SEKS = Path(sys.executable).parent / "seks"
AGENT = "agent-1"
READY_RE = re.compile(r"seks proxy listening on 127\.0\.0\.1:(\d+)")
GATEWAY_RE = re.compile(rb"seks gateway listening on 127\.0\.0\.1:(\d+)")
# Generous: the proxy starts in about a second here, but CI machines can be slow.
STARTUP_TIMEOUT = 30
AGENT_TIMEOUT = 60  # seconds an agent script may run
PROVIDER_HOSTS = ("api.openai.com", "api.anthropic.com", "api.github.com")


# --- environment --------------------------------------------------------------------------


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: nothing inherited that could route or authenticate a request."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


# --- upstreams ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCA:
    """The CA that signs the local upstreams' certificates; the proxy is told to trust it."""

    __test__ = False  # not a test class, despite the name
    ca: trustme.CA
    pem: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert = self.ca.issue_cert(*PROVIDER_HOSTS, "localhost", "127.0.0.1")
        cert.configure_cert(ctx)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


# --- the seks CLI -------------------------------------------------------------------------


@dataclass
class Seks:
    """Drives the real `seks` CLI against one SEKS home, keeping every byte it printed."""

    home: Path
    transcript: list[bytes] = field(default_factory=list, repr=False)

    @property
    def env(self) -> dict[str, str]:
        return {**base_env(self.home.parent), "SEKS_HOME": str(self.home)}

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(  # noqa: PLW1510 (the caller checks the exit code)
            [str(SEKS), *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        self.transcript += [proc.stdout.encode(), proc.stderr.encode()]
        if check and proc.returncode != 0:
            pytest.fail(
                f"seks {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def issue(self, provider: str, *, agent: str = AGENT, ttl: str | None = None) -> str:
        args = ["token", "issue", "--agent", agent, "--provider", provider]
        token = self.run(*args, *(["--ttl", ttl] if ttl else [])).stdout
        assert token.endswith("\n") and token.count("\n") == 1, token
        return token.strip()

    def tokens(self, *, agent: str | None = None) -> list[dict[str, Any]]:
        return self.json("token", "list", *(["--agent", agent] if agent else []))

    def audit(self, n: int = 500) -> list[dict[str, Any]]:
        out = self.run("audit", "tail", "-n", str(n), "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def ca_path(self) -> Path:
        return Path(self.run("ca", "path").stdout.strip())

    def agent_env(self, proxy_url: str, *, agent: str = AGENT) -> dict[str, str]:
        """The environment `seks env` hands an agent, on top of a clean base."""
        out = self.run("env", "--agent", agent, "--proxy", proxy_url).stdout
        return {**base_env(self.home.parent), **parse_exports(out)}


def parse_exports(text: str) -> dict[str, str]:
    """`export NAME=value` lines (shell-quoted), as a shell would read them."""
    env = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        words = shlex.split(line)
        assert words[0] == "export" and len(words) == 2, f"not an export line: {line!r}"
        name, sep, value = words[1].partition("=")
        assert sep, f"not an export line: {line!r}"
        env[name] = value
    return env


def timestamp(value: Any) -> float:
    """A time from seks JSON output (epoch seconds or ISO 8601) as epoch seconds."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


# --- the proxy ----------------------------------------------------------------------------


class ProxyProcess:
    """`seks proxy` on a free port; both pipes drained by threads and kept for leak checks."""

    running: ClassVar[list[ProxyProcess]] = []  # a failed test's report shows their output

    def __init__(self, seks: Seks, config: Path) -> None:
        self.stdout: list[bytes] = []
        self.stderr: list[bytes] = []
        self._ready = threading.Event()
        self.port = 0
        self.proc = subprocess.Popen(
            [str(SEKS), "proxy", "--listen", "127.0.0.1:0", "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=seks.env,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()
        ProxyProcess.running.append(self)

    def _drain(self, pipe: Any, sink: list[bytes]) -> None:
        for line in iter(pipe.readline, b""):
            sink.append(line)
            if sink is self.stdout and not self._ready.is_set():
                m = READY_RE.fullmatch(line.decode(errors="replace").rstrip("\r\n"))
                if m:
                    self.port = int(m[1])
                    self._ready.set()
        pipe.close()
        if sink is self.stdout:
            self._ready.set()  # the process ended: wake the waiter, which sees no port

    def wait_ready(self) -> None:
        ready = self._ready.wait(STARTUP_TIMEOUT)
        if not ready or not self.port:
            self.proc.kill()
            self.proc.wait()
            for t in self._threads:
                t.join(5)
            pytest.fail(
                "seks proxy did not print 'seks proxy listening on 127.0.0.1:PORT' "
                f"(exit code {self.proc.returncode})\n{self.output().decode(errors='replace')}"
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> bytes:
        return b"".join(self.stdout) + b"".join(self.stderr)

    def last_log_lines(self, n: int) -> str:
        """The end of what the proxy logged (stderr), for a failed test's report."""
        return b"".join(self.stderr[-n:]).decode(errors="replace")

    @property
    def gateway_url(self) -> str:
        """The base_url gateway (announced on stderr before the ready line)."""
        deadline = time.monotonic() + 5  # stderr is drained by its own thread
        while not (m := GATEWAY_RE.search(b"".join(self.stderr))):
            assert time.monotonic() < deadline, "seks proxy announced no gateway"
            time.sleep(0.01)
        return f"http://127.0.0.1:{int(m[1])}"

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self in ProxyProcess.running:
            ProxyProcess.running.remove(self)
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = -9
        for t in self._threads:
            t.join(5)
        return code


def write_config(
    seks: Seks,
    openai_upstream: Upstream,
    anthropic_upstream: Upstream,
    test_ca: TestCA,
    *,
    name: str = "config.yaml",
    **extra: Any,
) -> Path:
    """A config file in the SEKS home routing the provider hosts to the local upstreams."""
    config = {
        **extra,
        "providers": {
            "openai": {"upstream": openai_upstream.url, "upstream_ca": str(test_ca.pem)},
            "anthropic": {"upstream": anthropic_upstream.url, "upstream_ca": str(test_ca.pem)},
        },
    }
    path = seks.home / name
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def running_proxy(seks: Seks, config: Path) -> Iterator[ProxyProcess]:
    """A proxy for the duration; it must then exit 0 on SIGTERM."""
    proxy = ProxyProcess(seks, config)
    try:
        proxy.wait_ready()
        yield proxy
    finally:
        code = proxy.stop()
    assert code == 0, f"seks proxy exited {code} on SIGTERM\n{proxy.output().decode()}"


# --- clients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> Any:
        assert self.returncode == 0, f"agent failed ({self.returncode}):\n{self.stderr}"
        return json.loads(self.stdout)


def run_agent(
    agent_python: Path,
    script: str,
    *args: str,
    env: dict[str, str],
    timeout: float = AGENT_TIMEOUT,
) -> AgentRun:
    """Run an agent script to its end. Each script bounds its own waits well inside
    AGENT_TIMEOUT; one still running then is stuck, and the test fails with the stack of each of
    its threads (faulthandler prints them on SIGABRT), so the failure says where it hung."""
    proc = subprocess.Popen(
        [str(agent_python), str(AGENTS / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONFAULTHANDLER": "1"},
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # it may have ended just now
            resource.prlimit(proc.pid, resource.RLIMIT_CORE, (0, 0))  # the stacks, not a core
        proc.send_signal(signal.SIGABRT)
        try:
            stdout, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # not even SIGABRT ended it
            proc.kill()
            stdout, stderr = proc.communicate()
        pytest.fail(
            f"agent {script} was still running after {timeout:g} s; "
            f"where its threads were:\n{stderr}\nits stdout:\n{stdout}"
        )
    return AgentRun(proc.returncode, stdout, stderr)


@dataclass(frozen=True)
class CurlResult:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def curl(*args: str, headers: tuple[str, ...] = (), env: dict[str, str]) -> CurlResult:
    """curl with headers read from stdin, so tokens stay out of argv."""
    proc = subprocess.run(  # noqa: PLW1510 (the caller checks the exit code)
        ["curl", "-sS", "-i", "--suppress-connect-headers", "--max-time", "30", "-H", "@-", *args],
        input="".join(h + "\n" for h in headers).encode(),
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, f"curl failed ({proc.returncode}): {proc.stderr.decode()}"
    head, _, body = proc.stdout.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return CurlResult(int(status_line.split()[1]), parsed, body, proc.stdout + proc.stderr)


def wait_until_expired(seks: Seks, token_id: str) -> None:
    """Wait for a token's own deadline (read from `seks token list`) to pass."""
    (row,) = [t for t in seks.tokens() if t["id"] == token_id]
    deadline = timestamp(row["expires_at"])
    while (left := deadline - time.time()) >= 0:
        time.sleep(left + 0.05)


def token_id_of(seks: Seks, before: list[dict[str, Any]]) -> str:
    """The id of the one token issued since `before` was listed."""
    known = {t["id"] for t in before}
    (new,) = [t for t in seks.tokens() if t["id"] not in known]
    return str(new["id"])


# --- refusals --------------------------------------------------------------------------


def assert_refused(result: CurlResult, status: int, kind: str, token: str) -> None:
    """The agent-facing refusal: status, stable type and code, a SEKS message, no token."""
    assert result.status == status, result.raw
    body = result.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == body["error"]["code"] == kind
    assert body["error"]["message"].startswith("SEKS: ")
    assert token.encode() not in result.raw


def audit_rows(
    seks: Seks, after_id: int, event: str, *, count: int = 1, timeout: float = 10
) -> list[dict[str, Any]]:
    """Audit rows of one event written after `after_id`, once `count` of them are there.

    The proxy commits a refusal's or an outcome's row shortly after answering (it rides along
    with the next group commit), so a test waits for the row to appear, up to `timeout`.
    """
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in seks.audit() if r["id"] > after_id and r["event"] == event]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows


def denials_since(seks: Seks, after_id: int) -> list[dict[str, Any]]:
    return audit_rows(seks, after_id, "request.denied")


def last_audit_id(seks: Seks) -> int:
    return max((r["id"] for r in seks.audit()), default=0)


# --- leak search --------------------------------------------------------------------------


def encoded_forms(secret: str) -> dict[str, bytes]:
    """The forms in which a secret could leak: raw, hex, percent and base64 at each alignment.

    Base64 depends on where the secret starts in the encoded stream: the first whole 3-byte
    group begins at offset 0, 1 or 2 of the secret, and only whole groups encode the same way
    whatever surrounds them, so each alignment is cut to whole groups.
    """
    raw = secret.encode()
    forms = {
        "raw": raw,
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        "percent": "".join(f"%{b:02X}" for b in raw).encode(),
        "percent-lower": "".join(f"%{b:02x}" for b in raw).encode(),
    }
    for k in range(3):
        part = raw[k:]
        part = part[: len(part) // 3 * 3]
        forms[f"base64@{k}"] = base64.b64encode(part)
        forms[f"base64url@{k}"] = base64.urlsafe_b64encode(part)
    return forms


def find_leaks(secrets: Iterable[str], places: dict[str, bytes]) -> list[str]:
    """Where each secret appears, in any encoded form: an empty list means no leak."""
    found = []
    for secret in secrets:
        for form, needle in encoded_forms(secret).items():
            for where, data in places.items():
                if needle in data:
                    found.append(f"{secret[:6]}… as {form} in {where}")
    return found


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under root, as bytes: the vault and its -wal/-shm, keys, CA, config, logs."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
