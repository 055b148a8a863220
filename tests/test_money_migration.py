"""Migration 0008 (issue 13) on invoices stored by the old rules: amounts re-rounded to the currency, statuses
derived again, invariants intact, and a report of what changed. Real PostgreSQL, real Alembic."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config

from service.domain.lifecycle import invariant_breaches
from service.domain.models import Status
from service.store import invoices as store
from service.store.db import init_connection

MIGRATIONS = Path(__file__).parent.parent / "service" / "store" / "migrations"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
D = Decimal


def _upgrade(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = url
    command.upgrade(cfg, revision)


def _new_database(database_url: str) -> str:
    base, sep, query = database_url.partition("?")
    server, _, _ = base.rpartition("/")
    name = f"money_migration_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{server}/{name}{sep}{query}"


HEADER = (
    "INSERT INTO invoices (id, company_id, invoice_number, customer_id, status, currency, sub_total, "
    "additional_tax_amount, total_tax_amount, total_discount, total_amount, amount_due, amount_paid, "
    "amount_credited, version, create_time, modified_date, document) "
    "VALUES ($1, 'co', $2, 'cust', $3, $4, $5, 0, $6, 0, $7, $8, $9, 0, 1, $10, $10, $11)"
)


async def _old_rows(url: str) -> dict[str, str]:
    ids = {name: str(uuid.uuid4()) for name in ("open", "partial", "jpy", "line", "item", "alloc")}
    conn = await asyncpg.connect(url)
    try:
        # 3 x 19.99 at 21% as the old rules stored it: tax 12.5937, total 72.5637.
        for key, status, paid, due in (
            ("open", "SUBMITTED", D(0), D("72.5637")),
            ("partial", "PARTIALLY_PAID", D("72.56"), D("0.0037")),
        ):
            await conn.execute(HEADER, ids[key], f"N-{key}", status, "USD", D("59.97"), D("12.5937"), D("72.5637"),
                               due, paid, NOW, b"old")  # fmt: skip
            line = str(uuid.uuid4())
            await conn.execute(
                "INSERT INTO line_items (id, invoice_id, position, quantity, unit_amount, discount_amount, "
                "sub_total, tax_amount, total_amount) VALUES ($1, $2, 0, 3, 19.99, 0, 59.97, 12.5937, 72.5637)",
                line,
                ids[key],
            )
            await conn.execute(
                "INSERT INTO taxation_items (id, line_item_id, invoice_id, position, name, tax_rate, tax_amount, "
                "tax_rate_type, create_time) VALUES ($1, $2, $3, 0, 'VAT', 21, 12.5937, 'PERCENTAGE', $4)",
                str(uuid.uuid4()),
                line,
                ids[key],
                NOW,
            )
            if paid:
                await conn.execute(
                    "INSERT INTO payment_allocations (id, invoice_id, amount, currency, applied_amount, source, "
                    "create_time) VALUES ($1, $2, $3, 'USD', $3, 'PAYMENT', $4)",
                    str(uuid.uuid4()),
                    ids[key],
                    paid,
                    NOW,
                )
        # A ledger-synced JPY invoice without lines: tax 110.4.
        await conn.execute(HEADER, ids["jpy"], "N-jpy", "SUBMITTED", "JPY", D("552"), D("110.4"), D("662.4"),
                           D("662.4"), D(0), NOW, b"old")  # fmt: skip
        await conn.execute("INSERT INTO customer_credit_balances VALUES ('co', 'cust', 'USD', 1.005, $1)", NOW)
        await conn.execute(
            "INSERT INTO credit_entries (company_id, customer_id, currency, amount, reason, create_time) "
            "VALUES ('co', 'cust', 'USD', 1.005, 'MANUAL', $1)",
            NOW,
        )
    finally:
        await conn.close()
    return ids


async def _read(url: str, ids: dict[str, str]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    try:
        out: dict[str, Any] = {
            key: await store.load_invoice(conn, "co", ids[key]) for key in ("open", "partial", "jpy")
        }
        out["report"] = {str(r["invoice_id"]): r for r in await conn.fetch("SELECT * FROM invoice_rounding_report")}
        out["rows"] = {str(r["id"]): r for r in await conn.fetch("SELECT id, version, document FROM invoices")}
        out["balance"] = await conn.fetchval("SELECT balance FROM customer_credit_balances")
        out["entries"] = await conn.fetchval("SELECT sum(amount) FROM credit_entries")
        return out
    finally:
        await conn.close()


def test_migration_rounds_stored_invoices_and_reports_the_changes(database_url: str) -> None:
    url = _new_database(database_url)
    _upgrade(url, "0005")
    ids = asyncio.run(_old_rows(url))
    _upgrade(url, "head")
    got = asyncio.run(_read(url, ids))

    open_, partial, jpy = got["open"], got["partial"], got["jpy"]
    assert (str(open_.total_tax_amount), str(open_.total_amount), str(open_.amount_due)) == ("12.59", "72.56", "72.56")
    assert str(open_.lines[0].taxation_items[0].tax_amount) == "12.59"
    assert open_.status is Status.SUBMITTED
    # Paying 72.56 left 0.0037 due under the old rules: the invoice is paid now.
    assert partial.status is Status.PAID and str(partial.amount_due) == "0.00"
    assert (str(jpy.sub_total), str(jpy.total_tax_amount), str(jpy.total_amount)) == ("552", "110", "662")
    for inv in (open_, partial, jpy):
        assert invariant_breaches(inv) == [], inv.id
        assert (inv.rounding_mode.value if inv.rounding_mode else None) == "HALF_UP"

    report = got["report"]
    assert set(report) == {ids["open"], ids["partial"], ids["jpy"]}
    assert (report[ids["partial"]]["old_status"], report[ids["partial"]]["new_status"]) == ("PARTIALLY_PAID", "PAID")
    assert report[ids["open"]]["old_total_amount"] == D("72.5637")
    assert all(row["version"] == 2 and row["document"] is None for row in got["rows"].values())
    # The credit balance is rounded and stays the sum of its entries.
    assert got["balance"] == D("1.01") == got["entries"]
