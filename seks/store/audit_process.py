"""The proxy's audit writer process: group commit, durable, fail-closed, beside the proxy.

``seks.store.audit_writer`` starts this and hands it rows. Why a process and not a thread: a
writer thread needs Python's GIL four to six times per commit (woken, after the fsync, to answer
the event loop, ...), and on a busy proxy each time stops the event loop while the GIL changes
hands. Measured with bench/overhead.py --audit: the loop thread was busy 90-94% of the time with
a writer thread and 97-99% with this process, as with no audit at all (bench/README.md).

It imports only the standard library and the audit's lean modules (not the vault's cryptography
or sqlite-utils) to stay small, and it never sees the master key: the proxy sends it the audit
key over the socket, not through its environment or arguments.

Wire (both ways): frames of a 4-byte little-endian length and a ``marshal``-ed tuple.

- proxy → writer: ``("hello", vault path, audit key, busy timeout)`` once, then
  ``("row", seq, wait, values)``: an AuditEvent's values in field order; ``wait`` if a request
  waits for it.
- writer → proxy: ``("done", [(seq, error or None), ...])`` for the rows waited for, once they
  are committed (or failed); ``("log", level, message)`` for the proxy's log; ``("fatal",
  message)`` just before it exits for a reason of its own.

It commits whatever rows arrived while the previous commit ran, in one transaction (one fsync):
under load many requests share one fsync, and a lone request pays one commit.
Rows nobody waits for ride along with the next commit, or are committed within
``FLUSH_INTERVAL_S``. When the proxy closes its end, the writer commits what it has and exits.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import socket
import sqlite3
import stat
import struct
import sys
import time
from pathlib import Path

from seks.errors import AuditUnavailable
from seks.store.audit_append import Appender, AuditEvent, HeadSeen
from seks.store.audit_chain import AuditKeys
from seks.store.conn import open_connection

__all__ = ["FLUSH_INTERVAL_S", "MAX_FRAME", "FrameReader", "WireError", "frame", "main"]

FLUSH_INTERVAL_S = 0.2
MAX_FRAME = 16 << 20  # far above any batch of rows or answers; a longer frame is a bug
_LENGTH = struct.Struct("<I")

Row = tuple[int, bool, tuple[object, ...]]  # seq, wait, values
Outcome = tuple[int, str | None]  # seq, and the error its request is told (None: committed)
ERROR = 40  # logging.ERROR, for the proxy's log (logging itself is 1 MB of this process's RSS)


class WireError(Exception):
    """The other end sent something that is not a frame of this protocol."""


def frame(message: tuple[object, ...]) -> bytes:
    """One message as a frame. Raises ValueError for a value marshal cannot carry."""
    body = marshal.dumps(message)  # type: ignore[arg-type]  # ValueError if it cannot
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Cuts received bytes into messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[object, ...]]:
        self._buffer += data
        messages = []
        start = 0
        while len(self._buffer) - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer, start)
            if length > MAX_FRAME:
                raise WireError(f"a frame of {length} bytes")
            end = start + _LENGTH.size + length
            if end > len(self._buffer):
                break
            try:
                # Only ever from the other end of our own socket pair: the proxy or its writer.
                message = marshal.loads(self._buffer[start + _LENGTH.size : end])  # noqa: S302
            except (EOFError, ValueError, TypeError) as e:
                raise WireError(f"an undecodable frame ({e})") from None
            if not isinstance(message, tuple) or not message:
                raise WireError("a frame that is not a message")
            messages.append(message)
            start = end
        del self._buffer[:start]
        return messages


class _Writer:
    """The writer's side of the socket: rows in, answers and log lines out."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._frames = FrameReader()
        self.pending: list[Row] = []
        self.urgent = False  # a pending row has a request waiting for it
        self.closing = False  # the proxy closed its end

    def send(self, message: tuple[object, ...]) -> None:
        self._sock.sendall(frame(message))

    def log(self, level: int, message: str) -> None:
        self.send(("log", level, message))

    def receive(self, timeout: float | None) -> list[tuple[object, ...]]:
        """Wait up to ``timeout`` (None: for ever) for bytes; rows go to ``pending``, any
        other message is returned."""
        readable, _, _ = select.select([self._sock], [], [], timeout)
        if not readable:
            return []
        data = self._sock.recv(1 << 20)
        if not data:
            self.closing = True
            return []
        others = []
        for message in self._frames.feed(data):
            if message[0] == "row" and len(message) == 4:
                _, seq, wait, values = message
                self.pending.append((seq, bool(wait), values))  # type: ignore[arg-type]
                self.urgent = self.urgent or bool(wait)
            else:
                others.append(message)
        return others

    def wait_for_work(self) -> None:
        """Until a row is waited for, rows nobody waits for have waited FLUSH_INTERVAL_S,
        or the proxy closes its end."""
        deadline: float | None = None
        while not self.urgent and not self.closing:
            if self.pending and deadline is None:
                deadline = time.monotonic() + FLUSH_INTERVAL_S
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            self.receive(left)

    def take(self) -> list[Row]:
        batch, self.pending, self.urgent = self.pending, [], False
        return batch


def run(wire: _Writer, append: _Batches) -> None:
    """Commit what has arrived as soon as a request waits for it. No delay to gather more: the
    rows that arrive during a commit are the next batch. (The writer thread waited 10 ms after
    a shared commit; here that wait cost the proxy 0.84x of its requests/s, bench/README.md.)"""
    while True:
        wire.wait_for_work()
        batch = wire.take()
        if not batch:
            if wire.closing:
                return
            continue
        outcomes = _write(append, batch, wire)
        if outcomes:
            wire.send(("done", outcomes))


def _write(append: _Batches, batch: list[Row], wire: _Writer) -> list[Outcome]:
    """Commit a batch at once (one fsync; each row chained to the one before). Returns what
    each waiting request is told."""
    try:
        error = append([AuditEvent(*values) for _, _, values in batch])  # type: ignore[arg-type]
    except Exception:
        # A bug (a row holding something that is not text or a number, say) must not stop
        # the writer: every later request would wait for ever. One at a time, the bad row
        # fails alone and the rest are written.
        wire.log(
            ERROR,
            "internal error while writing audit rows; writing them one by one\n" + _traceback(),
        )
        outcomes = []
        for seq, wait, values in batch:
            try:
                error = append([AuditEvent(*values)])  # type: ignore[arg-type]
            except Exception:
                name = values[0] if values and isinstance(values[0], str) else "?"
                wire.log(
                    ERROR,
                    f"an audit row ({name}) could not be written\n" + _traceback(),
                )
                error = "internal error: the audit row could not be written"
            else:
                if error is not None:
                    wire.log(ERROR, f"{error}; a row not written")
            if wait:
                outcomes.append((seq, error))
        return outcomes
    if error is not None:
        wire.log(ERROR, f"{error}; {len(batch)} row(s) not written")
    return [(seq, error) for seq, wait, _ in batch if wait]


class _Batches:
    """Appends batches, remembering the head it left (Appender.append_after): while no other
    connection writes, a batch is one statement that commits by itself."""

    def __init__(self, rows: Appender) -> None:
        self._rows = rows
        self._seen: HeadSeen | None = None

    def __call__(self, events: list[AuditEvent]) -> str | None:
        """None if the rows are committed; else the error a request should see."""
        seen, self._seen = self._seen, None  # after any failure, the head is read afresh
        try:
            self._seen = self._rows.append_after(seen, events)
        except sqlite3.Error as e:
            return str(AuditUnavailable(f"the audit trail cannot be written ({e})"))
        except AuditUnavailable as e:
            return str(e)
        return None


def main() -> int:
    """The process: the socket to the proxy is its standard input."""
    if not stat.S_ISSOCK(os.fstat(0).st_mode):
        return _by_hand()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the proxy says when to stop, by closing
    sock = socket.socket(fileno=0)
    wire = _Writer(sock)
    try:
        hello: list[tuple[object, ...]] = []
        while not hello and not wire.closing:
            hello = wire.receive(None)
        match hello:
            case [("hello", str(path), bytes(key), float(busy_timeout))]:
                pass
            case _:
                return _by_hand()
        try:
            conn = open_connection(Path(path), busy_timeout=busy_timeout)
        except (OSError, sqlite3.Error) as e:
            wire.send(("fatal", f"the audit trail cannot be opened ({e})"))
            return 1
        append = _Batches(Appender(conn, AuditKeys(key)))
        del key, hello
        try:
            run(wire, append)
        finally:
            conn.close()
    except (BrokenPipeError, ConnectionResetError):
        return 1  # the proxy is gone; what it waited for was never confirmed to it
    except WireError as e:
        wire.send(("fatal", f"the audit writer got a bad message: {e}"))
        return 1
    return 0


def _traceback() -> str:
    import traceback  # only when something went wrong

    return traceback.format_exc()


def _by_hand() -> int:
    print(
        "seks.store.audit_process is the proxy's audit writer: `seks proxy` starts it",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
