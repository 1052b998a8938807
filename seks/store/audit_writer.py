"""The proxy's audit rows: durable, fail-closed, group-committed, and off the event loop.

A request may use a credential only after its audit row is committed with ``synchronous=FULL``.
One fsync per request on the proxy's event loop cost more than the rest of SEKS together
(bench/overhead.py), and a writer thread cost the loop its GIL several times per commit. So the
rows go to a writer process (``seks.store.audit_process``) over a socket pair, which commits the
rows that queue while its previous commit runs in one transaction: under load many requests share
one fsync, and an idle proxy pays one commit per request. The event loop reads the answers like
any other socket.

``commit`` returns an awaitable that resolves once the row is on disk, or fails with
:class:`AuditUnavailable` (the caller then refuses the request). ``submit`` queues a row nobody
waits for (an outcome, a refusal): it rides along with the next commit, or is committed within
``audit_process.FLUSH_INTERVAL_S``, and at shutdown. If the process stops, every row not yet
confirmed fails, and the proxy starts a new writer for the next request (``alive``).

``SEKS_BENCH_ONLY_DISCARD_AUDIT=1`` makes the writer drop every row and answer at once: it exists
only so bench/overhead.py can measure what the audit costs, and it breaks SEKS's promise that
every credential use is audited. The proxy says so loudly at start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path

import seks
from seks.errors import AuditUnavailable
from seks.store.audit_append import AuditEvent, event_values
from seks.store.audit_process import FrameReader, WireError, frame

__all__ = ["BENCH_DISCARD_ENV", "AuditWriter", "discarding_for_bench"]

log = logging.getLogger("seks")

BENCH_DISCARD_ENV = "SEKS_BENCH_ONLY_DISCARD_AUDIT"
CLOSE_GRACE_S = 5.0  # at shutdown, beyond the busy timeout, for the last commit and the exit
# The writer imports the same seks as the proxy, whatever the environment says: -I ignores
# PYTHON* variables and the user's site-packages.
_START = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from seks.store.audit_process import main; sys.exit(main())"
)
_NO_ENVIRONMENT: dict[str, str] = {}  # no SEKS_MASTER_KEY, nor anything else
_SEKS_ROOT = str(Path(seks.__file__).resolve().parent.parent)


def discarding_for_bench() -> bool:
    """True if the benchmark switch is on; then logs why nobody should ever see this."""
    if os.environ.get(BENCH_DISCARD_ENV) != "1":
        return False
    log.critical(
        "SEKS: %s=1: AUDIT ROWS ARE DISCARDED. Credentials are used with no audit trail. "
        "This switch exists only for bench/overhead.py; never run a real proxy with it.",
        BENCH_DISCARD_ENV,
    )
    return True


class AuditWriter:
    """The proxy's end of the writer process. Used from the event loop's thread only."""

    def __init__(
        self, path: Path, key: bytes, loop: asyncio.AbstractEventLoop, *, busy_timeout: float
    ) -> None:
        """``busy_timeout``: how long a commit waits for another writer's lock; past it, the
        rows fail and the requests waiting on them are refused. Raises AuditUnavailable if the
        writer cannot be started."""
        self._loop = loop
        self._busy_timeout = busy_timeout
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._seq = 0
        self._unsent = bytearray()  # frames the socket did not take yet
        self._answers = FrameReader()
        self._closing = False
        self._stopped = False
        self._discard = discarding_for_bench()
        if self._discard:
            return
        ours, theirs = socket.socketpair()
        try:
            with theirs:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-c", _START, _SEKS_ROOT],
                    stdin=theirs.fileno(),
                    stdout=subprocess.DEVNULL,
                    env=_NO_ENVIRONMENT,
                    start_new_session=True,  # no Ctrl-C from the terminal: the proxy stops it
                )
        except OSError as e:
            ours.close()
            raise AuditUnavailable(f"the audit writer could not be started ({e})") from e
        try:
            ours.sendall(frame(("hello", str(path), key, float(busy_timeout))))
        except OSError as e:
            ours.close()  # the writer sees the end of its input and exits
            self._proc.wait()
            raise AuditUnavailable(f"the audit writer could not be started ({e})") from e
        ours.setblocking(False)
        self._sock = ours
        self._writing = False  # waiting for the socket to take ``_unsent``
        loop.add_reader(ours.fileno(), self._readable)

    def commit(self, event: AuditEvent) -> Awaitable[None]:
        """Queue a row; the result resolves when it is durably committed."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        if self._discard:
            waiter.set_result(None)
            return waiter
        self._seq += 1
        self._waiters[self._seq] = waiter
        try:
            self._send(self._seq, event, wait=True)
        except AuditUnavailable:
            del self._waiters[self._seq]
            raise
        return waiter

    def submit(self, event: AuditEvent) -> None:
        """Queue a row nobody waits for."""
        if not self._discard:
            self._seq += 1
            self._send(self._seq, event, wait=False)

    @property
    def alive(self) -> bool:
        return self._discard or not (self._closing or self._stopped)

    def close(self) -> None:
        """Have the writer commit what it was sent, then stop it."""
        if self._discard or self._stopped:
            return
        self._closing = True
        self._loop.remove_reader(self._sock.fileno())
        self._forget_writer()
        try:
            self._sock.settimeout(self._busy_timeout + CLOSE_GRACE_S)
            self._sock.sendall(self._unsent)
            self._unsent.clear()
            self._sock.shutdown(socket.SHUT_WR)  # the writer commits the rest and exits
            while data := self._sock.recv(1 << 20):
                self._received(data)
        except (OSError, WireError) as e:
            log.error("SEKS: the audit writer did not finish cleanly (%s)", e)
        self._stop("the audit writer is shutting down", expected=True)

    # -- the socket ------------------------------------------------------------------------

    def _send(self, seq: int, event: AuditEvent, *, wait: bool) -> None:
        if self._stopped or self._closing:
            raise AuditUnavailable("the audit writer is not running")
        try:
            data = frame(("row", seq, wait, event_values(event)))
        except ValueError:  # a value marshal cannot carry: a bug, not a reason to stop
            log.error(
                "SEKS: an audit row (%s) could not be written: a value is not text or a number",
                event.event,
            )
            raise AuditUnavailable("internal error: the audit row could not be written") from None
        self._unsent += data
        if not self._writing:  # else the loop sends it when the socket takes more
            self._flush()

    def _flush(self) -> None:
        """Send what the socket takes now; wait for it to take the rest."""
        try:
            sent = self._sock.send(self._unsent)
        except BlockingIOError:
            sent = 0
        except OSError as e:
            self._stop(f"the audit writer stopped ({e})")
            return
        del self._unsent[:sent]
        if not self._unsent:
            self._forget_writer()
        elif not self._writing:
            self._loop.add_writer(self._sock.fileno(), self._flush)
            self._writing = True

    def _forget_writer(self) -> None:
        if self._writing:
            self._loop.remove_writer(self._sock.fileno())
            self._writing = False

    def _readable(self) -> None:
        try:
            data = self._sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as e:
            self._stop(f"the audit writer stopped ({e})")
            return
        if not data:
            self._stop("the audit writer stopped")
            return
        try:
            self._received(data)
        except WireError as e:
            self._stop(f"the audit writer sent a bad message ({e})")

    def _received(self, data: bytes) -> None:
        for message in self._answers.feed(data):
            kind = message[0]
            if kind == "done" and len(message) == 2:
                for seq, error in message[1]:  # type: ignore[attr-defined]
                    self._settle(seq, error)
            elif kind == "log" and len(message) == 3:
                log.log(int(message[1]), "SEKS: %s", message[2])  # type: ignore[call-overload]
            elif kind == "fatal" and len(message) == 2:
                self._stop(str(message[1]))
            else:
                raise WireError(f"an unknown message {str(kind)[:20]!r}")

    def _settle(self, seq: int, error: str | None) -> None:
        waiter = self._waiters.pop(seq, None)
        if waiter is None or waiter.done():  # the request was cancelled (client gone) meanwhile
            return
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(AuditUnavailable(error))

    def _stop(self, reason: str, *, expected: bool = False) -> None:
        """The writer is gone or going: every row not confirmed fails, the process is reaped."""
        if self._stopped:
            return
        self._stopped = True
        if not expected:
            log.error("SEKS: %s; audit rows not yet committed are refused", reason)
        self._loop.remove_reader(self._sock.fileno())
        self._forget_writer()
        self._sock.close()
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(AuditUnavailable(reason))
        try:
            self._proc.wait(CLOSE_GRACE_S if expected else 0.5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
