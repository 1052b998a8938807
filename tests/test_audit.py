"""The audit trail as a reviewer relies on it: append-only, chained, and every edit found.

Tamper tests drop the triggers by hand first, as an attacker with write access to the file
would, then change the table with plain SQL; `verify` must name the first bad row.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
import sqlite_utils
from hypothesis import given
from hypothesis import strategies as st

from seks.errors import AuditUnavailable
from seks.store import MasterKey, Vault
from seks.store.audit import (
    AuditEvent,
    AuditFilter,
    AuditLog,
    rows_after,
    stats,
    tail,
    verify,
)
from seks.store.audit_chain import GENESIS, AuditKeys, Head, canonical
from seks.store.audit_writer import BENCH_DISCARD_ENV, AuditWriter
from seks.store.crypto import check_value
from seks.store.db import HEAD_MOVED, MIGRATIONS, connect, write_tx


def rows(vault: Vault) -> list[dict[str, object]]:
    return list(vault.db.query("SELECT * FROM audit ORDER BY id"))


@pytest.fixture
def trail(vault: Vault, canary: str) -> Vault:
    """A vault with a few changes audited: rows 1 (tenant.created) to 6."""
    vault.add_secret("k", "openai", canary)
    vault.create_agent("bot")
    vault.issue_token("bot", "openai")
    vault.create_agent("other")
    vault.remove_agent("other")
    vault.create_agent("third")
    assert [r["id"] for r in rows(vault)] == [1, 2, 3, 4, 5, 6, 7]
    return vault


@pytest.fixture
def raw(vault_path: Path) -> Iterator[sqlite3.Connection]:
    """Plain SQL on the vault file, as anyone who can write the file has it."""
    with closing(sqlite3.connect(vault_path, isolation_level=None)) as conn:
        yield conn


def drop_triggers(conn: sqlite3.Connection) -> None:
    for name in ("audit_no_update", "audit_no_delete", "audit_head_no_delete"):
        conn.execute(f"DROP TRIGGER {name}")


def first_bad(vault: Vault) -> int | None:
    report = verify(vault.db, vault.audit.keys)
    assert not report.ok
    return report.first_bad_id


# -- chained and append-only -----------------------------------------------------------------


def test_every_change_adds_a_chained_row_and_the_trail_verifies(trail: Vault) -> None:
    report = verify(trail.db, trail.audit.keys)

    assert report.ok, report.problems
    assert (report.rows, report.first_id, report.last_id) == (7, 1, 7)
    chains = [r["chain"] for r in rows(trail)]
    assert all(isinstance(c, str) and len(c) == 64 for c in chains)
    assert len(set(chains)) == 7
    head = trail.audit.head()
    assert head is not None
    assert (head.rows, head.last_id, head.last_chain) == (7, 7, chains[-1])
    assert trail.audit.head_mac_ok()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit SET event = 'nothing.happened'",
        "UPDATE audit SET chain = NULL WHERE id = 2",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE id = 7",
        "DELETE FROM audit_head",
    ],
)
def test_update_and_delete_are_rejected(trail: Vault, raw: sqlite3.Connection, sql: str) -> None:
    before = rows(trail)

    with pytest.raises(sqlite3.DatabaseError, match=r"append-only|cannot be removed"):
        raw.execute(sql)

    assert rows(trail) == before
    assert verify(trail.db, trail.audit.keys).ok


def test_the_chain_holds_across_two_connections_writing_at_once(
    vault: Vault, vault_path: Path, master: MasterKey
) -> None:
    """The CLI and the proxy's writer thread are two connections; rows interleave."""
    errors: list[BaseException] = []

    def cli_writer() -> None:
        own = Vault.open(vault_path, master)
        try:
            for i in range(60):
                own.create_agent(f"bot{i}")
        except BaseException as e:  # asserted on below
            errors.append(e)
        finally:
            own.close()

    def proxy_writer() -> None:
        db = connect(vault_path)
        log = AuditLog(db, vault.audit_key)
        seen = None  # as the writer thread does: one statement while the head is the one it left
        try:
            for i in range(30):
                events = [AuditEvent("request.injected", flow_id=f"{i}-{j}") for j in range(3)]
                if i % 2:
                    seen = log.append_after(seen, events)
                else:
                    with write_tx(db):
                        log.append_many(events)
        except BaseException as e:
            errors.append(e)
        finally:
            db.conn.close()

    threads = [threading.Thread(target=cli_writer), threading.Thread(target=proxy_writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    report = verify(vault.db, vault.audit.keys)
    assert report.ok, report.problems
    assert report.rows == 1 + 60 + 90


def test_rows_appended_after_a_head_that_moved_follow_the_new_head(
    trail: Vault, vault_path: Path
) -> None:
    """The writer thread remembers the head it left; a CLI command appends meanwhile."""
    with closing(connect(vault_path).conn) as conn:
        log = AuditLog(sqlite_utils.Database(conn), trail.audit_key)
        seen = log.append_after(None, [AuditEvent("request.injected", flow_id="a")])
        trail.create_agent("meanwhile")
        seen = log.append_after(seen, [AuditEvent("request.injected", flow_id="b")])

    assert [(r["id"], r["event"]) for r in rows(trail)][-3:] == [
        (8, "request.injected"),
        (9, "agent.created"),
        (10, "request.injected"),
    ]
    assert seen[0] == trail.audit.head()
    assert trail.audit.head_mac_ok()
    assert verify(trail.db, trail.audit.keys).ok


def test_a_batch_that_does_not_follow_the_head_writes_nothing(
    trail: Vault, raw: sqlite3.Connection
) -> None:
    before, head = rows(trail), trail.audit.head()
    batch = (
        "INSERT INTO audit_append (id, event, chain, prev_mac, head_mac) VALUES "
        "(8, 'a', 'c8', {prev}, NULL), (9, 'b', 'c9', NULL, 'forged')"
    )

    with pytest.raises(sqlite3.IntegrityError, match=HEAD_MOVED):
        raw.execute(batch.format(prev="'not the MAC of the head'"))
    raw.execute("INSERT INTO audit (id, event) VALUES (8, 'added by hand')")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):  # the right MAC; 8 is taken
        raw.execute(batch.format(prev="(SELECT mac FROM audit_head)"))

    assert rows(trail)[:-1] == before
    assert trail.audit.head() == head
    assert trail.audit.head_mac_ok()


def test_the_append_view_takes_every_column_of_the_audit_table(vault: Vault) -> None:
    audit = [c.name for c in vault.db.table("audit").columns]
    view = [c[1] for c in vault.db.execute("PRAGMA table_info(audit_append)")]

    assert sorted(view) == sorted([*audit, "prev_mac", "head_mac"])


def test_values_are_chained_as_stored_so_odd_types_still_verify(vault: Vault) -> None:
    vault.audit.record(
        AuditEvent("request.completed", status="200", latency_ms=5, bytes=12.0, reason="")  # type: ignore[arg-type]
    )
    (row,) = [r for r in rows(vault) if r["event"] == "request.completed"]

    assert (row["status"], row["latency_ms"], row["bytes"], row["reason"]) == (200, 5.0, 12, None)
    assert verify(vault.db, vault.audit.keys).ok


def test_a_column_added_later_leaves_older_rows_verifying(trail: Vault) -> None:
    with write_tx(trail.db):
        trail.db.execute("ALTER TABLE audit ADD COLUMN approval_id TEXT")
    log = AuditLog(trail.db, trail.audit_key)  # a new process sees the new column
    log.record(AuditEvent("approval.granted"))

    assert verify(trail.db, trail.audit.keys).ok


def test_canonical_form_ignores_empty_values_and_export_only_columns() -> None:
    row = {"id": 3, "event": "x", "agent": None, "reason": "", "status": 200, "latency_ms": 1.5}
    same = {**row, "time": "…", "chain": "ab", "prev_chain": "cd", "reason": None}
    as_text = {"id": "3", "event": "x", "status": "200", "latency_ms": "1.5"}  # from CSV

    assert canonical(row) == canonical(same) == canonical(as_text)
    assert canonical(row) != canonical({**row, "status": 201})


# A row, its canonical bytes, its chain value and a head's MAC, as SEKS wrote them before the
# writer built canonical bytes by hand: trails and exports already on disk must keep verifying.
GOLDEN_ROW = {
    "id": 7,
    "event": "request.injected",
    "agent": "bot-\u00e9",
    "path": '/v1/"q"\\\udcff',
    "status": 200,
    "latency_ms": 0.1,
    "reason": "",
    "detail": None,
    "host": "api.openai.com",
    "chain": "zz",
}
GOLDEN_CANONICAL = (
    b'["seks-audit-row-v1",[["agent","bot-\\u00e9"],["event","request.injected"],'
    b'["host","api.openai.com"],["id","7"],["latency_ms","0.1"],'
    b'["path","/v1/\\"q\\"\\\\\\udcff"],["status","200"]]]'
)


def test_the_canonical_form_and_macs_are_the_ones_already_on_disk() -> None:
    keys = AuditKeys(b"k" * 32)

    assert canonical(GOLDEN_ROW) == GOLDEN_CANONICAL
    assert keys.chain(GENESIS, GOLDEN_ROW) == (
        "00feea1435a8ff9d689ac8b2a849ab3475de736fdae9ab7cf8de2a120cfd456c"
    )
    head = Head(3, 0, GENESIS, 3, "ab" * 32, 1_700_000_000_000_000)
    assert keys.head_mac(head) == (
        "d5f7e4200b4951caffd9e6f4b0f466520c87fa185ec209b43db79cbee5e734dc"
    )


_COLUMN = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)
_VALUE = st.one_of(
    st.none(),
    st.text(),  # lone surrogates included: a path's undecodable bytes
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(st.dictionaries(_COLUMN, _VALUE, max_size=8))
def test_the_canonical_form_is_the_json_the_format_names(row: dict[str, object]) -> None:
    def text(value: object) -> str:
        return repr(value) if isinstance(value, float) else str(value)

    names = sorted(n for n in row if n not in {"chain", "prev_chain", "time"})
    items = [[n, text(row[n])] for n in names if row[n] is not None and row[n] != ""]
    expected = json.dumps(["seks-audit-row-v1", items], separators=(",", ":")).encode()

    assert canonical(row) == expected


def test_search_hash_is_keyed_and_stable(master: MasterKey) -> None:
    keys = AuditKeys(master.derive("audit"))
    other = AuditKeys(MasterKey.generate().derive("audit"))

    value = keys.search_hash("seks_openai_x")
    assert value.startswith("hmac-sha256:") and len(value) == len("hmac-sha256:") + 64
    assert value == keys.search_hash("seks_openai_x")
    assert value != other.search_hash("seks_openai_x")
    assert "seks_openai_x" not in value
    assert "redacted" in repr(keys)


# -- tampering, found ------------------------------------------------------------------------


def swap_rows(conn: sqlite3.Connection, a: int, b: int) -> None:
    conn.execute("UPDATE audit SET id = -1 WHERE id = ?", [a])
    conn.execute("UPDATE audit SET id = ? WHERE id = ?", [a, b])
    conn.execute("UPDATE audit SET id = ? WHERE id = -1", [b])


def insert_copy_at(conn: sqlite3.Connection, new_id: int, of_id: int) -> None:
    """A forged row: a copy of another with a new id (its chain value copied too)."""
    columns = [r[1] for r in conn.execute("PRAGMA table_info(audit)") if r[1] != "id"]
    cols = ", ".join(columns)
    conn.execute(
        f"INSERT INTO audit (id, {cols}) SELECT ?, {cols} FROM audit WHERE id = ?",  # noqa: S608
        [new_id, of_id],
    )


def shift_up_from(conn: sqlite3.Connection, first: int) -> None:
    conn.execute("UPDATE audit SET id = id + 1000 WHERE id >= ?", [first])
    conn.execute("UPDATE audit SET id = id - 999 WHERE id >= 1000")


TAMPERING: dict[str, tuple[Callable[[sqlite3.Connection], None], int]] = {
    "edited row": (lambda c: c.execute("UPDATE audit SET agent = 'someone' WHERE id = 3"), 3),
    "edited time": (lambda c: c.execute("UPDATE audit SET ts_us = ts_us - 1 WHERE id = 5"), 5),
    "row given another's chain value": (
        lambda c: c.execute(
            "UPDATE audit SET chain = (SELECT chain FROM audit WHERE id = 2) WHERE id = 4"
        ),
        4,
    ),
    "deleted middle row": (lambda c: c.execute("DELETE FROM audit WHERE id = 4"), 4),
    "deleted middle rows, renumbered": (
        lambda c: (
            c.execute("DELETE FROM audit WHERE id IN (3, 4)"),
            c.execute("UPDATE audit SET id = id - 2 WHERE id > 4"),
        ),
        3,
    ),
    "reordered rows": (lambda c: swap_rows(c, 3, 4), 3),
    "inserted row in the middle": (lambda c: (shift_up_from(c, 4), insert_copy_at(c, 4, 2)), 4),
    "inserted row at the end": (lambda c: insert_copy_at(c, 8, 7), 8),
    "inserted row before the first": (lambda c: insert_copy_at(c, 0, 1), 0),
    "dropped trailing rows": (lambda c: c.execute("DELETE FROM audit WHERE id >= 6"), 6),
    "dropped last row": (lambda c: c.execute("DELETE FROM audit WHERE id = 7"), 7),
    "dropped first rows": (lambda c: c.execute("DELETE FROM audit WHERE id <= 2"), 1),
    "dropped trailing rows, head rewound": (
        lambda c: (
            c.execute("DELETE FROM audit WHERE id >= 6"),
            c.execute(
                "UPDATE audit_head SET rows = 5, last_id = 5, "
                "last_chain = (SELECT chain FROM audit WHERE id = 5)"
            ),
        ),
        None,  # the head's MAC fails: a finding about no single row
    ),
}


@pytest.mark.parametrize("case", TAMPERING, ids=list(TAMPERING))
def test_verify_finds_tampering_and_names_the_first_bad_row(
    trail: Vault, raw: sqlite3.Connection, case: str
) -> None:
    tamper, bad_id = TAMPERING[case]
    drop_triggers(raw)
    tamper(raw)

    report = verify(trail.db, trail.audit.keys)

    assert not report.ok
    assert report.first_bad_id == bad_id, report.problems


def test_the_archive_door_used_from_plain_sql_is_found(
    trail: Vault, raw: sqlite3.Connection
) -> None:
    """The DELETE trigger lets rows go only under a permit; anyone can write a permit, but not
    move the MACed head, so rows removed that way show."""
    raw.execute("INSERT INTO audit_archive_permit (through_id) VALUES (3)")
    raw.execute("DELETE FROM audit WHERE id <= 3")

    assert first_bad(trail) == 1


def test_an_edited_head_is_found(trail: Vault, raw: sqlite3.Connection) -> None:
    raw.execute("UPDATE audit_head SET rows = rows + 1")

    report = verify(trail.db, trail.audit.keys)

    assert not report.ok
    assert any("head" in str(p) for p in report.problems)


def test_a_removed_head_is_found_and_nothing_more_is_written(
    trail: Vault, raw: sqlite3.Connection, vault_path: Path, master: MasterKey
) -> None:
    drop_triggers(raw)
    raw.execute("DELETE FROM audit_head")
    count = len(rows(trail))

    reopened = Vault.open(vault_path, master)  # the head is not quietly created again
    try:
        with pytest.raises(AuditUnavailable, match="no head record"):
            reopened.create_agent("after")
        assert "after" not in [a.name for a in reopened.list_agents()]
    finally:
        reopened.close()
    report = verify(trail.db, trail.audit.keys)
    assert not report.ok and "head record is missing" in str(report.problems[0])
    assert len(rows(trail)) == count


def test_rows_added_after_tampering_do_not_hide_it(trail: Vault, raw: sqlite3.Connection) -> None:
    drop_triggers(raw)
    raw.execute("DELETE FROM audit WHERE id = 7")  # the newest row, gone

    trail.create_agent("later")  # SEKS goes on from the head, not from the table

    assert first_bad(trail) == 7
    assert [r["id"] for r in rows(trail)][-1] == 8  # ids are never reused


def test_another_master_key_does_not_verify(trail: Vault) -> None:
    report = verify(trail.db, AuditKeys(MasterKey.generate().derive("audit")))

    assert not report.ok and report.first_bad_id == 1


# -- vaults from before the chain ------------------------------------------------------------


def test_a_vault_from_before_the_chain_gets_its_rows_chained_once(
    vault_path: Path, master: MasterKey
) -> None:
    db = connect(vault_path)
    with write_tx(db):
        db.table("_migrations").create({"name": str, "applied_at": float}, pk="name")
        MIGRATIONS[0][1](db)  # m001 only: an older SEKS
        db.execute("INSERT INTO _migrations VALUES ('m001_initial', 0)")
        db.execute("INSERT INTO meta (key, value) VALUES ('check', ?)", [check_value(master)])
        db.execute("INSERT INTO tenants (name, kek_version, created_at) VALUES ('default', 1, 0)")
        for event in ("tenant.created", "agent.created"):
            db.execute("INSERT INTO audit (ts_us, event, actor) VALUES (1, ?, 'old')", [event])
    db.conn.close()

    vault = Vault.open(vault_path, master)
    try:
        vault.create_agent("new")
        report = verify(vault.db, vault.audit.keys)
        assert report.ok, report.problems
        events = [r["event"] for r in rows(vault)]
        assert events == ["tenant.created", "agent.created", "audit.chain_started", "agent.created"]
        started = json.loads(str(rows(vault)[2]["detail"]))
        assert started == {"adopted_rows": 2}
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            vault.db.execute("UPDATE audit SET actor = 'x' WHERE id = 1")
    finally:
        vault.close()
    Vault.open(vault_path, master).close()  # opening again adopts nothing more
    with closing(sqlite3.connect(vault_path)) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM audit WHERE event = 'audit.chain_started'"
        ).fetchone()
    assert n == 1


# -- the proxy's writer ----------------------------------------------------------------------


def test_the_group_writer_chains_every_row_of_a_batch(vault: Vault, vault_path: Path) -> None:
    async def burst() -> None:
        writer = AuditWriter(
            vault_path, vault.audit_key, asyncio.get_running_loop(), busy_timeout=5
        )
        try:
            await asyncio.gather(
                *(writer.commit(AuditEvent("request.injected", flow_id=str(i))) for i in range(200))
            )
            for i in range(50):
                writer.submit(AuditEvent("request.completed", flow_id=str(i)))
        finally:
            writer.close()

    asyncio.run(burst())

    report = verify(vault.db, vault.audit.keys)
    assert report.ok, report.problems
    assert report.rows == 1 + 250
    (commits,) = vault.db.execute("SELECT count(DISTINCT ts_us) FROM audit").fetchone()
    assert commits > 1


def test_the_group_writer_refuses_rows_once_the_head_is_gone(
    vault: Vault, vault_path: Path, raw: sqlite3.Connection
) -> None:
    drop_triggers(raw)
    raw.execute("DELETE FROM audit_head")

    async def one() -> None:
        writer = AuditWriter(
            vault_path, vault.audit_key, asyncio.get_running_loop(), busy_timeout=5
        )
        try:
            await writer.commit(AuditEvent("request.injected"))
        finally:
            writer.close()

    with pytest.raises(AuditUnavailable, match="no head record"):
        asyncio.run(one())


def test_a_row_the_writer_cannot_store_fails_alone_and_the_writer_goes_on(
    vault: Vault, vault_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug that puts a value of the wrong type in a row must not stop the writer: every
    later request would wait for its row for ever."""

    async def mixed() -> list[object]:
        writer = AuditWriter(
            vault_path, vault.audit_key, asyncio.get_running_loop(), busy_timeout=5
        )
        try:
            batch = asyncio.gather(
                writer.commit(AuditEvent("request.injected", flow_id="a")),
                writer.commit(AuditEvent("request.injected", flow_id="bad", detail=b"bytes")),  # type: ignore[arg-type]
                writer.commit(AuditEvent("request.injected", flow_id="b")),
                return_exceptions=True,
            )
            results = await asyncio.wait_for(batch, 10)
            await asyncio.wait_for(writer.commit(AuditEvent("request.injected", flow_id="c")), 10)
        finally:
            writer.close()
        return results

    with caplog.at_level(logging.ERROR, logger="seks"):
        results = asyncio.run(mixed())

    assert results[0] is None and results[2] is None
    assert isinstance(results[1], AuditUnavailable)
    assert str(results[1]) == "internal error: the audit row could not be written"
    assert [r["flow_id"] for r in rows(vault)][1:] == ["a", "b", "c"]
    assert verify(vault.db, vault.audit.keys).ok
    assert "an audit row (request.injected) could not be written" in caplog.text


def test_the_bench_only_switch_discards_rows_and_says_so(
    vault: Vault,
    vault_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(BENCH_DISCARD_ENV, "1")

    async def one() -> None:
        writer = AuditWriter(
            vault_path, vault.audit_key, asyncio.get_running_loop(), busy_timeout=5
        )
        try:
            await writer.commit(AuditEvent("request.injected"))
            writer.submit(AuditEvent("request.completed"))
        finally:
            writer.close()

    with caplog.at_level(logging.CRITICAL, logger="seks"):
        asyncio.run(one())

    assert [r["event"] for r in rows(vault)] == ["tenant.created"]
    assert "AUDIT ROWS ARE DISCARDED" in caplog.text


# -- reading ---------------------------------------------------------------------------------


def test_filters_combine_values_with_or_and_fields_with_and(vault: Vault) -> None:
    for event, agent, provider, decision, ts in [
        ("request.injected", "a", "openai", "allow", 100),
        ("request.denied", "a", "openai", "deny", 200),
        ("request.denied", "b", "github", "deny", 300),
        ("response.redacted", "b", "openai", None, 400),
    ]:
        vault.audit.record(
            AuditEvent(event, agent=agent, provider=provider, decision=decision, ts_us=ts)
        )

    def events(where: AuditFilter) -> list[tuple[object, object]]:
        return [(r["event"], r["ts_us"]) for r in tail(vault.db, 10, where=where)]

    assert events(AuditFilter(events=("request.*",), decisions=("deny",))) == [
        ("request.denied", 200),
        ("request.denied", 300),
    ]
    assert events(AuditFilter(agents=("a", "b"), providers=("openai",), since_us=150)) == [
        ("request.denied", 200),
        ("response.redacted", 400),
    ]
    assert events(AuditFilter(events=("response.redacted", "request.injected"))) == [
        ("request.injected", 100),
        ("response.redacted", 400),
    ]
    first = rows(vault)[0]["id"]
    assert [
        r["ts_us"] for r in rows_after(vault.db, int(first), where=AuditFilter(agents=("b",)))
    ] == [300, 400]


def test_stats_count_per_agent_provider_decision_and_event(vault: Vault) -> None:
    for agent, decision, ts in [("a", "allow", 10), ("a", "deny", 20), ("b", "allow", 30)]:
        vault.audit.record(
            AuditEvent("request.x", agent=agent, provider="openai", decision=decision, ts_us=ts)
        )

    everything = stats(vault.db)
    recent = stats(vault.db, since_us=15)

    assert everything["rows"] == 4
    assert everything["agent"] == {"a": 2, "b": 1, None: 1}
    assert everything["decision"] == {"allow": 2, "deny": 1, None: 1}
    assert recent["agent"] == {"a": 1, "b": 1, None: 1}  # tenant.created is recent too
    assert recent["provider"] == {"openai": 2, None: 1}


def test_a_read_only_connection_cannot_append(vault: Vault, vault_path: Path) -> None:
    with closing(
        sqlite3.connect(f"file:{vault_path}?mode=ro", uri=True, isolation_level=None)
    ) as ro:
        log = AuditLog(sqlite_utils.Database(ro), vault.audit_key)
        with pytest.raises(AuditUnavailable):
            log.record(AuditEvent("request.injected"))
    assert GENESIS == "0" * 64


def test_a_row_added_after_the_head_stops_further_writes_loudly(
    trail: Vault, raw: sqlite3.Connection
) -> None:
    insert_copy_at(raw, 8, 7)  # plain SQL adds a row past the head's last row

    with pytest.raises(AuditUnavailable, match="did not write"):
        trail.create_agent("after")

    assert first_bad(trail) == 8


def test_a_batch_larger_than_one_insert_statement_is_chained_whole(vault: Vault) -> None:
    with write_tx(vault.db):
        vault.audit.append_many(
            [AuditEvent("request.completed", flow_id=str(i)) for i in range(1000)]
        )

    report = verify(vault.db, vault.audit.keys)
    assert report.ok, report.problems
    assert report.rows == 1001
