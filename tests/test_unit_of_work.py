"""The one write path (issue 15, items 1 and "the write path becomes the fast path").

Every write is a unit of work: a draft create is one statement with no transaction around it; a
FinalizeInvoice or a RecordPayment is two statements and no transaction: one read (the whole invoice, and
for a finalization the number its sequence would give next) and one write statement (header, payment,
push operation, events, NOTIFY) guarded by what was read, drawing the number in it. The counts are of the
statements the connection sends, read from asyncpg's query log; BEGIN and COMMIT are counted apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import asyncpg
import pytest
from asyncpg.connection import LoggedQuery

from service.config import Settings
from service.domain.models import PaymentAllocation, Status
from service.handlers import unit_of_work
from service.handlers.invoices import InvoiceHandlers
from service.store.db import create_pool
from service.transport.document import render
from tests.conftest import Database
from tests.domain.builders import line, new

D = Decimal
TRANSACTION = ("BEGIN", "COMMIT")


@asynccontextmanager
async def _handlers(url: str, size: int = 1) -> AsyncIterator[tuple[InvoiceHandlers, asyncpg.Pool]]:
    pool = await create_pool(url, size, size)
    try:
        settings = Settings.from_env().model_copy(update={"database_url": url, "write_statement_timeout_ms": 5000})
        yield InvoiceHandlers(pool, settings, render), pool
    finally:
        await pool.close()


async def _logged(pool: asyncpg.Pool, sent: list[str]) -> None:
    """Logs every statement of the pool's one connection into `sent`."""

    def log(query: LoggedQuery) -> None:
        sent.append(query.query)

    async with pool.acquire() as conn:
        conn.add_query_logger(log)


def _split(sent: list[str]) -> tuple[list[str], list[str]]:
    control = [q for q in sent if q.split(";")[0].strip().upper() in TRANSACTION]
    return control, [q for q in sent if q not in control]


async def _cycle(h: InvoiceHandlers, company: str, sent: list[str]) -> dict[str, tuple[int, int]]:
    """(BEGIN/COMMIT, other statements) of a draft create, its finalization and a payment."""
    out = {}
    sent.clear()
    inv = (await h.create(company, new(id="", lines=[line(), line("2", "5")]))).invoice
    out["create"] = tuple(map(len, _split(sent)))
    sent.clear()
    inv = (await h.finalize(company, inv.id)).invoice
    assert inv.invoice_number and inv.status is Status.SUBMITTED
    out["finalize"] = tuple(map(len, _split(sent)))
    sent.clear()
    paid = await h.record_payment(company, inv.id, _paying("10.00"))
    inv, op = paid.invoice, paid.operation
    assert inv.amount_paid == D("10.00") and op.status.value == "SUCCESS"
    out["payment"] = tuple(map(len, _split(sent)))
    return out  # type: ignore[return-value]


async def _count(url: str, company: str) -> dict[str, tuple[int, int]]:
    async with _handlers(url) as (h, pool):
        await h.load_money_defaults()  # fresh: no refresh in the background meanwhile
        sent: list[str] = []
        await _logged(pool, sent)
        await _cycle(h, company, sent)  # the connection learns the types (asyncpg's introspection) once
        return await _cycle(h, company, sent)


def test_the_write_path_takes_the_fewest_round_trips(database_url: str, company: str) -> None:
    counts = asyncio.run(_count(database_url, company))
    assert counts["create"] == (0, 1)  # a draft: one statement, committing on its own
    assert counts["finalize"] == (0, 2)  # read (and the next number), guarded write drawing it
    assert counts["payment"] == (0, 2)  # read, guarded write


def _paying(amount: str) -> PaymentAllocation:
    return PaymentAllocation(amount=D(amount), currency="USD", applied_amount=D(amount))


async def _race(url: str, company: str) -> list[str]:
    """Two payments read the invoice and queue, in their guarded writes, on the row lock another holds; the
    first writes, the second finds the version it read gone and runs again on a fresh read."""
    async with _handlers(url, 3) as (h, pool):
        inv = (await h.create(company, new(id="", lines=[line()]))).invoice
        inv = (await h.finalize(company, inv.id)).invoice
        async with pool.acquire() as holder, holder.transaction():
            await holder.execute("SELECT 1 FROM invoices WHERE id = $1 FOR UPDATE", inv.id)
            payments = [
                asyncio.ensure_future(
                    h.record_payment(
                        company, inv.id, PaymentAllocation(amount=D(a), currency="USD", applied_amount=D(a))
                    )
                )
                for a in ("10.00", "15.00")
            ]
            await asyncio.sleep(0.5)  # both have read, and their writes wait for the lock
        await asyncio.gather(*payments)
        final = await h.get(company, inv.id)
        assert final.amount_paid == D("25.00") and final.amount_due == D("75.00")
        return sorted(str(a.applied_amount) for a in final.allocations)


def test_a_write_that_waited_for_the_lock_sees_what_the_other_wrote(
    database_url: str, company: str, db: Database
) -> None:
    """No payment is lost and the invariants hold (a write from a stale read would fail them)."""
    assert asyncio.run(_race(database_url, company)) == ["10.00", "15.00"]
    rows = db.fetch("SELECT count(*) AS n FROM payment_allocations WHERE company_id = $1", company)
    assert rows[0]["n"] == 2


async def _finalize_behind_another(url: str, company: str) -> tuple[str, list[tuple[int, ...]], int]:
    """A company's first finalization while another transaction inserts its number sequence (holding the
    new row until it commits): the finalization read no sequence and so means to draw 1; its guarded
    write waits, finds the sequence taken, writes nothing; the finalization runs again on a fresh read
    under row locks and takes the next number. The company's next finalization, within CONTENDED_SECONDS,
    takes row locks from the start; once that has passed, it is optimistic again."""
    async with _handlers(url) as (h, pool):
        await h.load_money_defaults()
        sent: list[str] = []
        await _logged(pool, sent)
        await _cycle(h, f"{company}-warm", sent)  # the connection learns the types
        draft = (await h.create(company, new(id="", lines=[line()]))).invoice
        holder = await asyncpg.connect(url)
        try:
            sent.clear()
            async with holder.transaction():
                await holder.execute(
                    "INSERT INTO invoice_number_sequences (company_id, last_value) VALUES ($1, 1)", company
                )
                finalizing = asyncio.ensure_future(h.finalize(company, draft.id))
                await asyncio.sleep(0.5)  # it has read no sequence and waits in its write
            inv = (await finalizing).invoice
        finally:
            await holder.close()
        counts = [tuple(map(len, _split(sent)))]
        rows = await pool.fetch("SELECT count(*) AS n FROM invoice_events WHERE invoice_id = $1", draft.id)
        for wait in (0.0, unit_of_work.CONTENDED_SECONDS):
            await asyncio.sleep(wait)
            draft = (await h.create(company, new(id="", lines=[line()]))).invoice
            sent.clear()
            await h.finalize(company, draft.id)
            counts.append(tuple(map(len, _split(sent))))
        return inv.invoice_number, counts, rows[0]["n"]


def test_a_finalization_that_lost_its_number_runs_again_and_takes_the_next(
    database_url: str, company: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unit_of_work, "CONTENDED_SECONDS", 0.3)
    number, counts, events = asyncio.run(_finalize_behind_another(database_url, company))
    assert number == "INV-000002"  # 1 went to the other transaction
    assert counts[0] == (2, 4)  # read, write (not applied); BEGIN, locked read drawing, write, COMMIT
    assert events == 2  # created, finalized: the write that did not apply left none
    assert counts[1] == (2, 2)  # contended: row locks from the start
    assert counts[2] == (0, 2)  # quiet again: read, guarded write


async def _finalize_from_two_processes(url: str, company: str) -> list[str]:
    """Two handler sets (as two processes would have: each its own pool and its own turns) finalize drafts
    of one company at once: their writes conflict in the database, where the guards decide."""
    async with _handlers(url, 4) as (a, _), _handlers(url, 4) as (b, _):
        drafts = [(await a.create(company, new(id="", lines=[line()]))).invoice for _ in range(20)]
        done = await asyncio.gather(*((a if n % 2 else b).finalize(company, d.id) for n, d in enumerate(drafts)))
        return [d.invoice.invoice_number for d in done]


def test_finalizations_from_two_processes_get_gapless_unique_numbers(
    database_url: str, company: str, db: Database
) -> None:
    numbers = asyncio.run(_finalize_from_two_processes(database_url, company))
    assert sorted(numbers) == [f"INV-{n:06d}" for n in range(1, 21)]
    rows = db.fetch("SELECT last_value FROM invoice_number_sequences WHERE company_id = $1", company)
    assert rows[0]["last_value"] == 20
