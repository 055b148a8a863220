"""The domain's invariants guard every write (issue 15, item 6): an invoice breaking one is never stored.

The unit of work, which every write storing an invoice goes through, calls lifecycle.check_invariants on
each invoice it stores before it commits; a breach is a bug in a rule, so the transaction rolls back and
the client gets INTERNAL without details (the error map's answer to anything unexpected). The invariants themselves are
tabled in tests/domain/test_lifecycle_rules.py::test_invariant_breaches.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from google.rpc import code_pb2

from service.config import Settings
from service.domain.errors import InvariantBreach
from service.domain.models import PaymentAllocation
from service.handlers.invoices import InvoiceHandlers
from service.handlers.unit_of_work import Numbering, UnitOfWorkFactory
from service.store import invoices as store
from service.store.db import create_pool
from service.transport.document import render
from service.transport.errors import to_status
from tests.conftest import Database
from tests.domain.builders import line, new, submitted

D = Decimal


async def _with_handlers(url: str, company: str, step: str, invoice_id: str = "") -> str:
    pool = await create_pool(url, 1, 2)
    try:
        h = InvoiceHandlers(pool, Settings.from_env().model_copy(update={"database_url": url}), render)
        if step == "create":
            inv = (await h.create(company, new(id="", lines=[line()]))).invoice  # the one-statement draft create
            inv = (await h.finalize(company, inv.id)).invoice
            return inv.id

        async with h.uow(company, "RecordPayment") as uow:
            inv = await uow.invoices.get_for_update(invoice_id)
            # A rule with a bug: it adds a payment but forgets to settle amount_due.
            alloc = PaymentAllocation(amount=D("10.00"), currency="USD", applied_amount=D("10.00"), create_time=uow.now)
            inv.allocations.append(alloc)
            h._save(uow, inv)
            await uow.commit()
        return invoice_id
    finally:
        await pool.close()


def test_a_breach_stops_the_write_and_nothing_is_committed(database_url: str, db: Database, company: str) -> None:
    invoice_id = asyncio.run(_with_handlers(database_url, company, "create"))
    before = db.snapshot(company)
    operations = db.fetch("SELECT count(*) AS n FROM push_operations WHERE company_id = $1", company)[0]["n"]

    with pytest.raises(InvariantBreach) as info:
        asyncio.run(_with_handlers(database_url, company, "breach", invoice_id))

    assert info.value.breaches == ["amount_due 100.00 != payable 100.00 - paid 10.00 - credited 0.00"]
    assert db.snapshot(company) == before  # the allocation inserted before the check was rolled back
    after = db.fetch("SELECT count(*) AS n FROM push_operations WHERE company_id = $1", company)[0]["n"]
    assert after == operations  # no SUCCESS operation for a write that did not happen
    row = db.fetch("SELECT amount_due, version FROM invoices WHERE id = $1", invoice_id)[0]
    assert (row["amount_due"], row["version"]) == (D("100.00"), 2)


@pytest.mark.parametrize("how", ["add", "save"])
def test_every_stored_form_is_checked(how: str) -> None:
    """New invoices (one statement or a transaction) and saved ones alike: the commit checks them before it
    touches the database (this unit of work has no pool: reaching it would fail otherwise)."""
    factory = UnitOfWorkFactory(None, Numbering("INV-", 6))
    broken = submitted()
    broken.amount_due = D("1.00")
    store.assign_ids(broken)
    uow = factory("co", "CreateInvoice")
    if how == "add":
        uow.invoices.add(broken, b"")
    else:
        uow.invoices.save(broken, b"")
    with pytest.raises(InvariantBreach):
        asyncio.run(uow.commit())


def test_a_breach_reaches_the_client_as_internal_without_details() -> None:
    status = to_status(InvariantBreach("inv-1", ["amount_due 1.00 outside [0, 0.00]"]))
    assert status.code == code_pb2.INTERNAL
    assert status.message == "internal error"
    assert not status.details
