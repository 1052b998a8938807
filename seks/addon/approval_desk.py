"""Where held requests wait for a person's decision, without holding up anyone else.

Each waiting request awaits a future; every ``POLL_INTERVAL_S`` one of the waiters reads the
states of all waiting approvals in one query on the gate's worker thread and settles the futures
whose state changed. Nothing polls while nothing waits. Polling is how the proxy learns of a
decision made by another process (`seks approve`); SQLite has no cross-process notification.
"""

from __future__ import annotations

import asyncio
import logging
import time

from seks.errors import VaultUnavailable
from seks.store.approvals import PENDING
from seks.store.gate_store import GateStore

__all__ = ["POLL_INTERVAL_S", "ApprovalDesk"]

log = logging.getLogger("seks")

# A person takes seconds to answer; a quarter second more is not noticed, and 4 small reads a
# second while something waits cost nothing measurable.
POLL_INTERVAL_S = 0.25
STOPPED = "stopped"  # the proxy is shutting down
CLIENT_GONE = "client_gone"  # the agent hung up: nobody would get the answer


class ApprovalDesk:
    def __init__(self, store: GateStore, *, interval: float = POLL_INTERVAL_S) -> None:
        self._store = store
        self._interval = interval
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._polling = False
        self._last_poll = 0.0

    async def wait(self, approval_id: str, deadline: float) -> str:
        """The approval's state once it is no longer pending: granted, denied, or expired at
        ``deadline`` (epoch seconds); ``stopped`` or ``client_gone`` when :meth:`release`d.

        No task of its own: each waiter wakes every interval, and whichever wakes first reads
        the states of all that wait, in one query, for all of them."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[approval_id] = future
        try:
            while True:
                left = deadline - time.time()
                if left <= 0:
                    # A decision may have landed since the last poll: expiring is conditional
                    # on the row still being pending, and says what it found.
                    return await self._store.expire(approval_id, time.time())
                try:
                    return await asyncio.wait_for(asyncio.shield(future), min(self._interval, left))
                except TimeoutError:
                    await self._poll()
        finally:
            self._waiting.pop(approval_id, None)

    async def _poll(self) -> None:
        if self._polling or time.monotonic() - self._last_poll < self._interval / 2:
            return  # another waiter is reading, or just did
        self._polling = True
        try:
            found = await self._store.states(list(self._waiting))
        except VaultUnavailable as e:
            log.warning("SEKS: %s; trying again", e)
            return
        finally:
            self._polling = False
            self._last_poll = time.monotonic()
        for approval_id, state in found.items():
            future = self._waiting.get(approval_id)
            if state != PENDING and future is not None and not future.done():
                future.set_result(state)

    @property
    def waiting(self) -> list[str]:
        return list(self._waiting)

    def release(self, approval_id: str, state: str) -> None:
        """End one wait now with ``state``."""
        future = self._waiting.get(approval_id)
        if future is not None and not future.done():
            future.set_result(state)

    def stop(self) -> list[str]:
        """Release every waiter with ``stopped``; returns their approval ids."""
        ids = list(self._waiting)
        for approval_id in ids:
            self.release(approval_id, STOPPED)
        return ids
