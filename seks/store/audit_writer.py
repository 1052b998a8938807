"""Group commit for the proxy's audit rows: durable, fail-closed, and off the event loop.

A request may use a credential only after its audit row is committed with ``synchronous=FULL``;
one fsync per request on the proxy's single event loop cost more CPU and latency than the rest
of SEKS together (bench/overhead.py). Here one writer thread commits whatever rows have queued
while the previous commit was running, in one transaction: under load many requests share one
fsync, and an idle proxy pays one commit per request, as before. When several requests shared the
last commit, the next one starts no sooner than ``GROUP_COMMIT_WINDOW_S`` after it, so that under
load batches grow (a lone client, one request at a time, never waits for this).

``commit`` returns an awaitable that resolves once the row is on disk, or fails with
:class:`AuditUnavailable` (the caller then refuses the request). ``submit`` queues a row nobody
waits for (an outcome, a refusal): it rides along with the next commit, or is flushed within
``FLUSH_INTERVAL_S`` and at shutdown, so it never costs an fsync of its own under load.

``SEKS_BENCH_ONLY_DISCARD_AUDIT=1`` makes the writer drop every row and answer at once: it exists
only so bench/overhead.py can measure what the audit costs, and it breaks SEKS's promise that
every credential use is audited. The proxy says so loudly at start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Awaitable
from pathlib import Path

from seks.errors import AuditUnavailable
from seks.store.audit import AuditLog
from seks.store.audit_append import AuditEvent, HeadSeen
from seks.store.db import connect

__all__ = ["BENCH_DISCARD_ENV", "AuditWriter", "discarding_for_bench"]

log = logging.getLogger("seks")

_Waiter = asyncio.Future[None] | None
FLUSH_INTERVAL_S = 0.2
# Under load, commits are at least this far apart, so more requests share each fsync and each
# hand-off to this thread. Measured with bench/overhead.py --audit (bench/README.md), three
# alternating runs each: 5 ms gave seks/seks-noaudit req/s 0.858, 0.885, 0.901 and 10 ms gave
# 0.956, 0.890, 0.931, with p50 latency under load unchanged (23-26 ms either way) and S3
# puts no slower. A lone client never waits for it.
GROUP_COMMIT_WINDOW_S = 0.010
BENCH_DISCARD_ENV = "SEKS_BENCH_ONLY_DISCARD_AUDIT"


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
    def __init__(
        self, path: Path, key: bytes, loop: asyncio.AbstractEventLoop, *, busy_timeout: float
    ) -> None:
        """``busy_timeout``: how long a commit waits for another writer's lock; past it, the
        rows fail and the requests waiting on them are refused."""
        self._path = path
        self._key = key
        self._busy_timeout = busy_timeout
        self._loop = loop
        self._queue: list[tuple[AuditEvent, _Waiter]] = []
        self._urgent = False  # a row in the queue has a waiter
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._discard = discarding_for_bench()
        self._thread = threading.Thread(target=self._run, name="seks-audit", daemon=True)
        if not self._discard:
            self._thread.start()

    def commit(self, event: AuditEvent) -> Awaitable[None]:
        """Queue a row; the result resolves when it is durably committed."""
        waiter: asyncio.Future[None] = self._loop.create_future()
        if self._discard:
            waiter.set_result(None)
            return waiter
        self._put(event, waiter)
        return waiter

    def submit(self, event: AuditEvent) -> None:
        """Queue a row nobody waits for."""
        if not self._discard:
            self._put(event, None)

    def _put(self, event: AuditEvent, waiter: _Waiter) -> None:
        with self._lock:
            if self._closing:
                raise AuditUnavailable("the audit writer is shutting down")
            self._queue.append((event, waiter))
            if waiter is not None or self._closing:
                self._urgent = True
                self._wake.notify()

    def close(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        with self._lock:
            self._closing = True
            self._urgent = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def alive(self) -> bool:
        with self._lock:
            return not self._closing

    def _run(self) -> None:
        try:
            db = connect(self._path, busy_timeout=self._busy_timeout)
        except (OSError, sqlite3.Error) as e:
            # Fail what is queued and refuse what comes: never leave a request waiting.
            with self._lock:
                self._closing = True
                batch, self._queue = self._queue, []
            failure = AuditUnavailable(f"the audit trail cannot be opened ({e})")
            log.error("SEKS: %s", failure)
            pending: list[_Outcome] = [(w, failure) for _, w in batch if w is not None]
            if pending:
                self._loop.call_soon_threadsafe(_settle, pending)
            return
        append = _Appender(AuditLog(db, self._key))
        last_end, last_waiters = 0.0, 0
        try:
            while True:
                with self._lock:
                    while not self._urgent and not self._closing:
                        if not self._wake.wait(FLUSH_INTERVAL_S) and self._queue:
                            break  # rows nobody waits for: flush them now
                    closing = self._closing
                if last_waiters >= 2 and not closing:
                    # Several requests shared the last commit: the proxy is busy, so let the
                    # rows of requests on their way join this one (commit_delay/commit_siblings
                    # in PostgreSQL's terms). A lone client never waits.
                    time.sleep(max(0.0, last_end + GROUP_COMMIT_WINDOW_S - time.monotonic()))
                with self._lock:
                    batch, self._queue, self._urgent = self._queue, [], False
                    if not batch and self._closing:
                        return
                outcomes = _write(append, batch)
                last_end = time.monotonic()
                last_waiters = len(outcomes)
                if outcomes:
                    self._loop.call_soon_threadsafe(_settle, outcomes)
        finally:
            db.conn.close()


_Outcome = tuple[asyncio.Future[None], AuditUnavailable | None]


def _write(append: _Appender, batch: list[tuple[AuditEvent, _Waiter]]) -> list[_Outcome]:
    """Commit a batch at once (one fsync; each row chained to the one before).
    Returns what each waiting request is told."""
    try:
        error = append([event for event, _ in batch])
    except Exception:
        # A bug (a row holding something that is not text or a number, say) must not stop
        # the writer: every later request would wait for ever. One at a time, the bad row
        # fails alone and the rest are written.
        log.exception("SEKS: internal error while writing audit rows; writing them one by one")
        outcomes = []
        for event, waiter in batch:
            try:
                error = append([event])
            except Exception:
                log.exception("SEKS: an audit row (%s) could not be written", event.event)
                error = AuditUnavailable("internal error: the audit row could not be written")
            else:
                if error is not None:
                    log.error("SEKS: %s; a %s row not written", error, event.event)
            if waiter is not None:
                outcomes.append((waiter, error))
        return outcomes
    if error is not None:
        log.error("SEKS: %s; %d row(s) not written", error, len(batch))
    return [(waiter, error) for _, waiter in batch if waiter is not None]


class _Appender:
    """Appends batches for the writer thread, remembering the head it left (AuditLog.append_after):
    while no other connection writes, a batch is one statement that commits by itself."""

    def __init__(self, log_: AuditLog) -> None:
        self._log = log_
        self._seen: HeadSeen | None = None

    def __call__(self, events: list[AuditEvent]) -> AuditUnavailable | None:
        """Rows committed; or the error a request should see if they were not."""
        seen, self._seen = self._seen, None  # after any failure, the head is read afresh
        try:
            self._seen = self._log.append_after(seen, events)
        except sqlite3.Error as e:
            return AuditUnavailable(f"the audit trail cannot be written ({e})")
        except AuditUnavailable as e:
            return e
        return None


def _settle(outcomes: list[_Outcome]) -> None:
    for waiter, error in outcomes:
        if waiter.done():  # the request was cancelled (client gone) meanwhile
            continue
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
