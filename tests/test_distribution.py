"""Ready to distribute by company (issue 15, docs/citus.md): migration 0010 converts stored data in place, and
the change feed numbers events per company with no lock shared by all companies. Real PostgreSQL, real Alembic."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
from alembic import command
from alembic.config import Config
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc

from service.store import events, statement
from tests.helpers import create

MIGRATIONS = Path(__file__).parent.parent / "service" / "store" / "migrations"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _alembic(url: str, step: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    getattr(command, step)(cfg, revision)


def _new_database(database_url: str) -> str:
    base, sep, query = database_url.partition("?")
    server, _, _ = base.rpartition("/")
    name = f"distribution_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{server}/{name}{sep}{query}"


HEADER = (
    "INSERT INTO invoices (id, company_id, customer_id, status, currency, sub_total, additional_tax_amount, "
    "total_tax_amount, total_discount, total_amount, amount_due, amount_paid, amount_credited, version, "
    "create_time, modified_date) VALUES ($1, $2, 'cust', 'DRAFT', 'USD', 10, 0, 0, 0, 10, 10, 0, 0, 1, $3, $3)"
)


async def _seed_0009(url: str) -> dict[str, str]:
    """Rows as schema 0009 stored them: children without company_id, events numbered globally, a purged prefix."""
    ids = {k: str(uuid.uuid4()) for k in ("a", "b", "line_a", "line_b", "att_a")}
    conn = await asyncpg.connect(url)
    try:
        for inv, line, company in (("a", "line_a", "co-a"), ("b", "line_b", "co-b")):
            await conn.execute(HEADER, ids[inv], company, NOW)
            await conn.execute(
                "INSERT INTO line_items (id, invoice_id, position, quantity, unit_amount, discount_amount, sub_total, "
                "tax_amount, total_amount) VALUES ($1, $2, 0, 1, 10, 0, 10, 0, 10)",
                ids[line], ids[inv],
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO taxation_items (id, line_item_id, invoice_id, position, tax_amount, tax_rate_type, "
                "create_time) VALUES ($1, $2, $3, 0, 0, 'PERCENTAGE', $4)",
                str(uuid.uuid4()), ids[line], ids[inv], NOW,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO credit_memos (id, invoice_id, reason, total_amount, currency, create_time) "
                "VALUES ($1, $2, 'WRITE_OFF', 0, 'USD', $3)",
                str(uuid.uuid4()), ids[inv], NOW,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO payment_allocations (id, invoice_id, amount, currency, applied_amount, source, "
                "create_time) VALUES ($1, $2, 1, 'USD', 1, 'PAYMENT', $3)",
                str(uuid.uuid4()), ids[inv], NOW,
            )  # fmt: skip
        await conn.execute(
            "INSERT INTO attachments (id, invoice_id, company_id, name, content_type, file_size, sha256, "
            "include_when_sent, date_created, modified_date) VALUES ($1, $2, 'co-a', 'a.pdf', 'application/pdf', "
            "3, 'x', false, $3, $3)",
            ids["att_a"], ids["a"], NOW,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO attachment_chunks (attachment_id, seq, start, data) VALUES ($1, 0, 0, 'abc')", ids["att_a"]
        )
        # Global positions 1..6 alternating companies; retention purged 1 and 2; one event not numbered yet.
        for position in range(1, 7):
            company = "co-a" if position % 2 else "co-b"
            await conn.execute(
                "INSERT INTO invoice_events (company_id, type, position, create_time) VALUES ($1, 'CREATED', $2, $3)",
                company, position, NOW,
            )  # fmt: skip
        await conn.execute("DELETE FROM invoice_events WHERE position <= 2")
        await conn.execute(
            "INSERT INTO invoice_events (company_id, type, create_time) VALUES ('co-a', 'MODIFIED', $1)", NOW
        )
    finally:
        await conn.close()
    return ids


def test_migration_0010_converts_stored_rows_in_place(database_url: str) -> None:
    url = _new_database(database_url)
    _alembic(url, "upgrade", "0009")
    ids = asyncio.run(_seed_0009(url))
    _alembic(url, "upgrade", "0010")

    async def check() -> None:
        conn = await asyncpg.connect(url)
        try:
            # Children carry their parent's company.
            for table, column in (
                ("line_items", "invoice_id"), ("taxation_items", "invoice_id"), ("credit_memos", "invoice_id"),
                ("payment_allocations", "invoice_id"),
            ):  # fmt: skip
                rows = await conn.fetch(f"SELECT company_id, {column}::text AS parent FROM {table}")
                assert sorted((r["parent"], r["company_id"]) for r in rows) == sorted(
                    [(ids["a"], "co-a"), (ids["b"], "co-b")]
                ), table
            chunk = await conn.fetchrow("SELECT company_id, attachment_id::text AS att FROM attachment_chunks")
            assert (chunk["company_id"], chunk["att"]) == ("co-a", ids["att_a"])
            # Each known company numbers on from the global head (6) and inherits the global purge horizon (2).
            heads = {
                r["company_id"]: (r["position"], r["purged"])
                for r in await conn.fetch("SELECT company_id, position, purged FROM invoice_event_heads")
            }
            assert heads == {"co-a": (6, 2), "co-b": (6, 2)}
            # The event appended before the upgrade is numbered after every position given before it.
            assert await events.sequence(conn) == [("co-a", 7)]
            # A watcher of co-a resuming at 1 lost event 2 (purged before the upgrade): told, not silently skipped.
            rows, purged = await events.read(conn, "co-a", 1, [], "", 10, 1 << 20)
            assert purged == 2 and [r["position"] for r in rows] == [3, 5, 7]
            # A child row of another company cannot point at this invoice: the foreign key includes company_id.
            try:
                await conn.execute(
                    "INSERT INTO credit_memos (id, company_id, invoice_id, reason, total_amount, currency, "
                    "create_time) VALUES ($1, 'co-b', $2, 'WRITE_OFF', 0, 'USD', $3)",
                    str(uuid.uuid4()), ids["a"], NOW,
                )  # fmt: skip
                raise AssertionError("a cross-company child row was stored")
            except asyncpg.ForeignKeyViolationError:
                pass
        finally:
            await conn.close()

    asyncio.run(check())
    # And back: 0009's keys again, positions numbered globally once more.
    _alembic(url, "downgrade", "0009")

    async def check_down() -> list[int]:
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM line_items") == 2
            return [r["position"] for r in await conn.fetch("SELECT position FROM invoice_events ORDER BY id")]
        finally:
            await conn.close()

    assert asyncio.run(check_down()) == [1, 2, 3, 4, 5]
    _alembic(url, "upgrade", "head")


async def _append(conn: asyncpg.Connection, appended: list[events.Event], now: datetime) -> None:
    """Events as a write's statement appends them (the unit of work's commit)."""
    await statement.execute(conn, [events.append_piece(appended, now)], events.NOTIFY_NEW)


def test_positions_count_per_company_and_a_busy_company_holds_up_no_other(database_url: str) -> None:
    a, b = f"co-{uuid.uuid4().hex[:10]}", f"co-{uuid.uuid4().hex[:10]}"
    url = _new_database(database_url)  # no service sequences here but this test
    _alembic(url, "upgrade", "head")

    async def run() -> None:
        conn, other = await asyncpg.connect(url), await asyncpg.connect(url)
        now = datetime.now(UTC)
        try:
            await _append(conn, [events.Event("CREATED", a), events.Event("CREATED", b)], now)
            await _append(conn, [events.Event("MODIFIED", a)], now)
            moved = dict(await events.sequence(conn))
            assert (moved[a], moved[b]) == (2, 1)  # each company counts from 1, densely
            assert await events.head(conn, a) == 2 and await events.head(conn, b) == 1
            # Company a's head row is held by another transaction (a sequencer mid-way, elsewhere): b's events
            # are numbered at once, and a's wait for whoever holds it.
            tx = other.transaction()
            await tx.start()
            await other.execute("SELECT 1 FROM invoice_event_heads WHERE company_id = $1 FOR UPDATE", a)
            await _append(conn, [events.Event("MODIFIED", a), events.Event("MODIFIED", b)], now)
            moved = dict(await asyncio.wait_for(events.sequence(conn), 5))
            assert b in moved and moved[b] == 2 and a not in moved
            await tx.rollback()
            assert dict(await events.sequence(conn)) == {a: 3}
            rows, purged = await events.read(conn, a, 0, [], "", 10, 1 << 20)
            assert [r["position"] for r in rows] == [1, 2, 3] and purged == 0
        finally:
            await conn.close()
            await other.close()

    asyncio.run(run())


def test_retention_purges_a_prefix_per_company_and_raises_its_horizon(database_url: str) -> None:
    a, b = f"co-{uuid.uuid4().hex[:10]}", f"co-{uuid.uuid4().hex[:10]}"
    url = _new_database(database_url)  # no service sequences or purges here but this test
    _alembic(url, "upgrade", "head")

    async def run() -> None:
        conn = await asyncpg.connect(url)
        now = datetime.now(UTC)
        old = now - timedelta(days=40)
        try:
            for company in (a, b):
                await _append(conn, [events.Event("CREATED", company) for _ in range(3)], old)
            await _append(conn, [events.Event("MODIFIED", a)], now)
            await events.sequence(conn)
            # Position 2 of b was created after the cutoff, though committed before 3: b keeps 2 and 3.
            await conn.execute(
                "UPDATE invoice_events SET create_time = $2 WHERE company_id = $1 AND position = 2", b, now
            )
            purged = await events.purge(conn, now - timedelta(days=30), 1000)
            assert purged == 4  # a: 1-3; b: 1
            left = {
                c: [r["position"] for r in await conn.fetch(
                    "SELECT position FROM invoice_events WHERE company_id = $1 ORDER BY position", c
                )]
                for c in (a, b)
            }  # fmt: skip
            assert left == {a: [4], b: [2, 3]}
            sql = "SELECT company_id, purged FROM invoice_event_heads WHERE company_id IN ($1, $2)"
            horizons = dict(await conn.fetch(sql, a, b))
            assert horizons == {a: 3, b: 1}
            # Nothing left to purge; numbering goes on past the purged positions.
            assert await events.purge(conn, now - timedelta(days=30), 1000) == 0
            await _append(conn, [events.Event("MODIFIED", a)], now)
            assert dict(await events.sequence(conn)) == {a: 5}
        finally:
            await conn.close()

    asyncio.run(run())


def test_each_company_watches_its_own_dense_cursors_live(channel: grpc.Channel) -> None:
    """Through the service: two companies writing in turn each see cursors 1, 2, 3, ... of their own, and a
    live watcher of one company wakes for that company's next event."""
    stub, ops = svc_grpc.InvoiceServiceStub(channel), ps_grpc.PushOperationServiceStub(channel)
    a, b = f"co-{uuid.uuid4().hex[:10]}", f"co-{uuid.uuid4().hex[:10]}"
    for _ in range(3):
        create(stub, a)
        create(stub, b)

    def cursors(company: str, after: int, count: int) -> list[int]:
        request = ps.WatchInvoiceEventsRequest(company_id=company, after_cursor=after)
        stream = ops.WatchInvoiceEvents(request, timeout=20)
        out: list[int] = []
        for msg in stream:
            out.extend(e.cursor for e in msg.events)
            if len(out) >= count:
                stream.cancel()
                break
        return out

    # Each create is INVOICE_CREATED and its push operation's PUSH_OPERATION_STATUS_CHANGED.
    assert cursors(a, 0, 6) == [1, 2, 3, 4, 5, 6]
    assert cursors(b, 0, 6) == [1, 2, 3, 4, 5, 6]
    with ThreadPoolExecutor(1) as pool:
        live = pool.submit(cursors, a, 6, 2)  # caught up: it sleeps until company a's head moves
        time.sleep(0.5)
        create(stub, b)  # another company's event wakes nobody here
        create(stub, a)
        assert live.result(timeout=20) == [7, 8]
