"""The proxy's writes for token limits and approvals, off the event loop.

Spending a use is a write with an fsync, and opening or expiring an approval is too; on the
proxy's single event loop each would stall every other agent's traffic for its duration (and
for as long as another writer holds the lock). So they run here, on one worker thread with its
own connection, and the event loop awaits them. One thread keeps the connection's transactions
strictly one after another; only use-limited tokens and approval waits ever come here.

Every method raises :class:`VaultUnavailable` if SQLite fails: the request is then refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from seks.errors import VaultUnavailable
from seks.store import approvals, tokens
from seks.store.approvals import Approval
from seks.store.db import connect
from seks.store.tokens import TokenInfo

__all__ = ["GateStore"]

T = TypeVar("T")


class GateStore:
    def __init__(self, path: Path, *, busy_timeout: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._db: sqlite_utils.Database | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seks-gate")

    def _conn(self) -> sqlite_utils.Database:
        if self._db is None:  # opened on the worker thread, on first use
            self._db = connect(self._path, busy_timeout=self._busy_timeout)
        return self._db

    async def _run(self, what: str, fn: Callable[[sqlite_utils.Database], T]) -> T:
        def call() -> T:
            try:
                return fn(self._conn())
            except sqlite3.Error as e:
                raise VaultUnavailable(f"{what} could not be recorded ({e})") from e

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def redeem(self, info: TokenInfo, now: float) -> int:
        """Spend one use (see :func:`tokens.redeem_use`); returns the uses left."""
        return await self._run("the token's use", lambda db: tokens.redeem_use(db, info, now))

    async def open_request(self, approval: Approval) -> None:
        await self._run("the approval request", lambda db: approvals.open_request(db, approval))

    async def expire(self, approval_id: str, now: float) -> str:
        return await self._run(
            "the approval's timeout", lambda db: approvals.expire(db, approval_id, now)
        )

    async def states(self, ids: list[str]) -> dict[str, str]:
        return await self._run("reading approvals", lambda db: approvals.states(db, ids))

    async def active_window(
        self, tenant: str, agent: str, secret_name: str, now: float
    ) -> Approval | None:
        return await self._run(
            "reading approval windows",
            lambda db: approvals.active_window(db, tenant, agent, secret_name, now),
        )

    def close(self, *, expire: Sequence[str] = (), now: float = 0.0) -> None:
        """Stop the worker; first mark ``expire`` (approvals nobody will wait for) expired."""

        def finish() -> None:
            if self._db is None:
                return
            try:
                for approval_id in expire:
                    approvals.expire(self._db, approval_id, now)
            except sqlite3.Error:
                pass  # they expire by their deadline anyway: nothing lists them after it
            finally:
                self._db.conn.close()
                self._db = None

        self._executor.submit(finish).result()
        self._executor.shutdown(wait=True)
