"""Several curl processes at once, and waiting on the `seks` CLI for a condition: helpers for the
end-to-end tests of token limits and approvals (harness.py has the one-at-a-time `curl`)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

from harness import CurlResult, Seks

T = TypeVar("T")
CURL = ["curl", "-sS", "-i", "--suppress-connect-headers", "--max-time", "60", "-H", "@-"]


def start_curl(*args: str, headers: tuple[str, ...] = (), env: dict[str, str]) -> Any:
    """curl in the background, headers (tokens) on stdin, never in argv."""
    proc = subprocess.Popen(
        [*CURL, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write("".join(h + "\n" for h in headers).encode())
    proc.stdin.close()
    proc.stdin = None  # written and closed: communicate() has nothing more to send
    return proc


def result_of(proc: Any, timeout: float = 90) -> CurlResult:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"curl failed ({proc.returncode}): {err.decode()}"
    head, _, body = out.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return CurlResult(int(status_line.split()[1]), headers, body, out + err)


def curl_all(*runs: tuple[tuple[str, ...], dict[str, Any]]) -> list[CurlResult]:
    """Start every (args, keywords) curl before waiting for any: results in start order."""
    procs = [start_curl(*args, **kw) for args, kw in runs]
    return [result_of(p) for p in procs]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30) -> T:
    """Poll ``probe`` until it returns something (a condition, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pending_approvals(seks: Seks, *, tenant: str = "default") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = seks.json("approvals", "--tenant", tenant)
    return items


def wait_for_pending(seks: Seks, count: int = 1, **kw: Any) -> list[dict[str, Any]]:
    """The approvals a person would see in `seks approvals --json`, once ``count`` wait."""
    return wait_for(
        f"{count} pending approval(s)",
        lambda: found if len(found := pending_approvals(seks, **kw)) >= count else None,
    )
