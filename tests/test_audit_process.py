"""The proxy's audit writer process (seks/store/audit_writer.py, seks/store/audit_process.py):
what it is given, what happens when it dies, and the wire between it and the proxy."""

from __future__ import annotations

import asyncio
import base64
import marshal
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from seks.errors import AuditUnavailable
from seks.store import MasterKey, Vault
from seks.store.audit import AuditEvent, verify
from seks.store.audit_process import MAX_FRAME, FrameReader, WireError, frame
from seks.store.audit_writer import AuditWriter


def writer_pids() -> list[int]:
    """This process's audit writer processes (none but the tests' own writers run here)."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"seks.store.audit_process" in cmdline:
                found.append(int(child))
    return found


def is_gone(pid: int) -> bool:
    """Exited (a zombie until its parent reaps it) or reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout} s")
        time.sleep(0.01)


@asynccontextmanager
async def started(vault: Vault, vault_path: Path) -> AsyncIterator[AuditWriter]:
    writer = AuditWriter(vault_path, vault.audit_key, asyncio.get_running_loop(), busy_timeout=5)
    try:
        yield writer
    finally:
        writer.close()


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def test_the_writer_gets_the_audit_key_over_its_socket_and_no_secret_otherwise(
    vault: Vault, vault_path: Path, master: MasterKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its environment and arguments are readable by anyone who can run `ps` as the same user:
    neither holds the master key, the audit key, nor anything else of the proxy's environment."""
    monkeypatch.setenv("SEKS_MASTER_KEY", master.to_hex())
    seen: dict[str, bytes] = {}

    async def look() -> None:
        async with started(vault, vault_path) as writer:
            await writer.commit(AuditEvent("request.injected"))
            (pid,) = writer_pids()
            seen["environ"] = Path(f"/proc/{pid}/environ").read_bytes()
            seen["cmdline"] = Path(f"/proc/{pid}/cmdline").read_bytes()

    run(look())
    assert seen["environ"] == b""
    for key in (master.to_hex().encode(), vault.audit_key):
        for form in (key, key.hex().encode(), base64.b64encode(key), base64.b64encode(key)[:20]):
            assert form not in seen["cmdline"]
    assert verify(vault.db, vault.audit.keys).ok


def test_the_writer_runs_in_its_own_session_so_ctrl_c_reaches_only_the_proxy(
    vault: Vault, vault_path: Path
) -> None:
    """Ctrl-C in the proxy's terminal signals the terminal's process group; the writer must
    outlive it to commit the rows the proxy hands it while shutting down."""
    sessions: list[int] = []

    async def look() -> None:
        async with started(vault, vault_path) as writer:
            await writer.commit(AuditEvent("request.injected"))
            (pid,) = writer_pids()
            sessions.append(os.getsid(pid))

    run(look())
    assert sessions[0] != os.getsid(0)


def test_a_writer_that_dies_fails_what_waits_and_the_proxy_starts_another(
    vault: Vault, vault_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outcome: dict[str, object] = {}

    async def kill_it() -> None:
        loop = asyncio.get_running_loop()
        first = AuditWriter(vault_path, vault.audit_key, loop, busy_timeout=5)
        await first.commit(AuditEvent("request.injected", flow_id="before"))
        (pid,) = writer_pids()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: is_gone(pid), "gone")
        with pytest.raises(AuditUnavailable, match="the audit writer stopped") as err:
            await first.commit(AuditEvent("request.injected", flow_id="lost"))
        outcome["error"] = str(err.value)
        outcome["alive"] = first.alive
        first.close()
        outcome["reaped"] = not Path(f"/proc/{pid}").exists()
        second = AuditWriter(vault_path, vault.audit_key, loop, busy_timeout=5)
        await second.commit(AuditEvent("request.injected", flow_id="after"))
        second.close()

    run(kill_it())
    assert outcome["error"].startswith("the audit writer stopped")  # type: ignore[attr-defined]
    assert outcome["alive"] is False
    assert outcome["reaped"] is True
    flows = [r["flow_id"] for r in vault.db.query("SELECT flow_id FROM audit ORDER BY id")]
    assert flows == [None, "before", "after"]  # row 1: tenant.created
    assert verify(vault.db, vault.audit.keys).ok
    assert "the audit writer stopped" in caplog.text
    assert writer_pids() == []


def test_a_writer_that_cannot_be_started_is_a_clear_refusal(
    vault: Vault, vault_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(vault_path.parent / "no-python-here"))

    async def start() -> None:
        async with started(vault, vault_path):
            pass

    with pytest.raises(AuditUnavailable) as err:
        run(start())
    assert str(err.value).startswith("the audit writer could not be started ([Errno 2] ")
    assert writer_pids() == []


def test_rows_still_in_flight_at_close_are_committed_before_close_returns(
    vault: Vault, vault_path: Path
) -> None:
    async def burst() -> None:
        async with started(vault, vault_path) as writer:
            await writer.commit(AuditEvent("request.injected", flow_id="first"))
            for i in range(300):
                writer.submit(AuditEvent("request.completed", flow_id=str(i)))

    run(burst())
    (count,) = vault.db.execute(
        "SELECT count(*) FROM audit WHERE event = 'request.completed'"
    ).fetchone()
    assert count == 300
    assert writer_pids() == []


def test_rows_beyond_what_the_socket_holds_wait_for_it_and_all_are_committed(
    vault: Vault, vault_path: Path
) -> None:
    """Far more rows than the socket buffer holds, queued without the loop running: the rest
    is sent as the writer reads, and the commit queued behind them still resolves."""

    async def flood() -> None:
        async with started(vault, vault_path) as writer:
            for i in range(6000):  # ~2 MB of frames
                writer.submit(AuditEvent("request.completed", flow_id=str(i), detail="x" * 200))
            await writer.commit(AuditEvent("request.injected", flow_id="last"))

    run(flood())
    flows = [r["flow_id"] for r in vault.db.query("SELECT flow_id FROM audit ORDER BY id")]
    assert flows[1:] == [*map(str, range(6000)), "last"]
    assert verify(vault.db, vault.audit.keys).ok


def test_a_row_marshal_cannot_carry_is_refused_at_once_and_the_writer_goes_on(
    vault: Vault, vault_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def mixed() -> None:
        async with started(vault, vault_path) as writer:
            with pytest.raises(AuditUnavailable, match="internal error: the audit row"):
                writer.commit(AuditEvent("request.injected", detail=object()))  # type: ignore[arg-type]
            await writer.commit(AuditEvent("request.injected", flow_id="next"))

    run(mixed())
    assert "an audit row (request.injected) could not be written" in caplog.text
    assert [r["flow_id"] for r in vault.db.query("SELECT flow_id FROM audit")][-1] == "next"


def test_the_writer_started_by_hand_says_who_starts_it() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "seks.store.audit_process"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "seks.store.audit_process is the proxy's audit writer: `seks proxy` starts it"
    )


# -- the wire --------------------------------------------------------------------------------


def test_frames_are_read_whole_however_the_bytes_arrive() -> None:
    messages = [("row", 1, True, ("request.injected", None, 3, 1.5)), ("done", [(1, None)])]
    data = b"".join(frame(m) for m in messages)
    reader = FrameReader()
    got = []
    for i in range(len(data)):  # one byte at a time
        got += reader.feed(data[i : i + 1])
    assert got == messages


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((MAX_FRAME + 1).to_bytes(4, "little"), f"a frame of {MAX_FRAME + 1} bytes"),
        (b"\x02\x00\x00\x00\xff\xff", "an undecodable frame"),
        (b"\x02\x00\x00\x00i\x01", "an undecodable frame"),  # an int cut short
        (frame(()), "a frame that is not a message"),
        (b"\x05\x00\x00\x00" + marshal.dumps(7), "a frame that is not a message"),
    ],
)
def test_a_frame_that_is_not_of_this_protocol_is_an_error(data: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        FrameReader().feed(data)
