"""Concurrent clients on real channels: no lost update, no overpayment, gapless numbers. FinalizeInvoice
and RecordPayment write optimistically (a read, then a write guarded by what was read), the other writes
under row locks: the races below mix both."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from typing import Any

import grpc
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from tests.helpers import create, finalized, invoice, line, pay


def test_50_concurrent_payments_leave_amount_due_exact_and_never_overpaid(stub, company, db):
    # total 100.00; 50 payments of 2.50 would pay 125: exactly 40 must succeed.
    inv = finalized(stub, company, invoice(lines=[line("1", "100.00")]))

    def attempt(_: int) -> grpc.StatusCode:
        try:
            pay(stub, company, inv.id, "2.50")
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(attempt, range(50)))
    assert codes.count(grpc.StatusCode.OK) == 40, codes
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}
    final = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
    assert final.status == pb.INVOICE_STATUS_PAID and Decimal(final.amount_due) == 0
    rows = db.fetch(
        "SELECT sum(applied_amount) AS s, count(*) AS n FROM payment_allocations WHERE invoice_id = $1",
        inv.id,
    )
    assert rows[0]["s"] == Decimal("100.00") and rows[0]["n"] == 40


def test_concurrent_partial_payments_lose_no_update(stub, company, db):
    inv = finalized(stub, company, invoice(lines=[line("1", "1000")]))
    with ThreadPoolExecutor(25) as pool:
        list(pool.map(lambda _: pay(stub, company, inv.id, "7.01"), range(25)))
    final = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
    assert Decimal(final.amount_due) == Decimal(1000) - 25 * Decimal("7.01")
    assert final.status == pb.INVOICE_STATUS_PARTIALLY_PAID


def test_30_drafts_finalized_concurrently_get_distinct_gapless_numbers(stub, company):
    drafts = [create(stub, company) for _ in range(30)]
    with ThreadPoolExecutor(30) as pool:
        out = list(
            pool.map(
                lambda d: stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=d.id)).invoice,
                drafts,
            )
        )
    numbers = sorted(int(i.invoice_number.removeprefix("INV-")) for i in out)
    assert numbers == list(range(1, 31))


def test_failed_finalization_gives_its_number_back(stub, company):
    a = finalized(stub, company)
    assert a.invoice_number == "INV-000001"
    with contextlib.suppress(grpc.RpcError):  # fails inside the transaction; no number is burnt
        stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=a.id))
    assert finalized(stub, company).invoice_number == "INV-000002"


def test_concurrent_credit_draws_never_go_below_zero(stub, company, db):
    stub.AddCustomerCredit(
        svc.AddCustomerCreditRequest(company_id=company, customer_id="cust-1", currency="USD", amount="250")
    )
    invoices = [finalized(stub, company) for _ in range(5)]  # 100.00 each

    def attempt(inv: pb.Invoice) -> str:
        try:
            return str(
                stub.AttemptPayment(svc.AttemptPaymentRequest(company_id=company, invoice_id=inv.id)).amount_applied
            )
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            return "0"

    with ThreadPoolExecutor(5) as pool:
        applied = list(pool.map(attempt, invoices))
    assert sum(Decimal(a) for a in applied) == Decimal(250)
    bal = db.fetch("SELECT balance FROM customer_credit_balances WHERE company_id = $1", company)[0]["balance"]
    assert bal == 0
    ledger = db.fetch("SELECT sum(amount) AS s FROM credit_entries WHERE company_id = $1", company)[0]["s"]
    assert ledger == 0


def _outcome(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


LOSER = {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED}


def test_finalize_racing_cancel_on_one_draft_exactly_one_wins(stub, company, db):
    """Finalize (optimistic: read, then a write guarded by the version read) against Cancel (row locks, in a
    transaction) on the same drafts: per draft one wins and the other is refused, never both (a lost
    update), and the numbers given stay gapless."""
    drafts = [create(stub, company) for _ in range(15)]
    calls: list[Callable[[], Any]] = []
    for d in drafts:
        calls.append(partial(stub.FinalizeInvoice, svc.FinalizeInvoiceRequest(company_id=company, invoice_id=d.id)))
        calls.append(partial(stub.CancelInvoice, svc.CancelInvoiceRequest(company_id=company, invoice_id=d.id)))
    with ThreadPoolExecutor(len(calls)) as pool:
        codes = list(pool.map(_outcome, calls))
    finalized_ids = set()
    for n, d in enumerate(drafts):
        finalize, cancel = codes[2 * n], codes[2 * n + 1]
        assert {finalize, cancel} == {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}, (finalize, cancel)
        now = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=d.id)).invoice
        if finalize == grpc.StatusCode.OK:
            assert now.status == pb.INVOICE_STATUS_SUBMITTED and now.invoice_number
            finalized_ids.add(d.id)
        else:
            assert now.status == pb.INVOICE_STATUS_VOID and not now.invoice_number
    rows = db.fetch("SELECT invoice_number FROM invoices WHERE company_id = $1 AND invoice_number IS NOT NULL", company)
    assert sorted(int(r["invoice_number"].removeprefix("INV-")) for r in rows) == list(range(1, len(finalized_ids) + 1))


def test_finalize_racing_void_with_one_etag_exactly_one_wins(stub, company):
    """Both name the draft's etag: whichever comes second finds the invoice changed (ABORTED) or, a void of
    the draft itself, refused (FAILED_PRECONDITION)."""
    drafts = [create(stub, company) for _ in range(15)]
    calls: list[Callable[[], Any]] = []
    for d in drafts:
        request = svc.FinalizeInvoiceRequest(company_id=company, invoice_id=d.id, etag=d.etag)
        calls.append(partial(stub.FinalizeInvoice, request))
        calls.append(
            partial(stub.VoidInvoice, svc.VoidInvoiceRequest(company_id=company, invoice_id=d.id, etag=d.etag))
        )
    with ThreadPoolExecutor(len(calls)) as pool:
        codes = list(pool.map(_outcome, calls))
    for n, d in enumerate(drafts):
        finalize, void = codes[2 * n], codes[2 * n + 1]
        assert grpc.StatusCode.OK in (finalize, void) and {finalize, void} - {grpc.StatusCode.OK} <= LOSER, codes
        assert [finalize, void].count(grpc.StatusCode.OK) == 1
        now = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=d.id)).invoice
        assert now.status == (pb.INVOICE_STATUS_SUBMITTED if finalize == grpc.StatusCode.OK else pb.INVOICE_STATUS_VOID)


def test_payments_racing_a_void_lose_nothing(stub, company, db):
    """Payments (optimistic) against a void (row locks): a payment either lands before the void, and the
    void gives it back as customer credit, or is refused after it; the credit always equals what was paid."""
    invoices = [finalized(stub, company) for _ in range(8)]  # 100.00 each
    calls: list[Callable[[], Any]] = []
    for inv in invoices:
        calls += [partial(pay, stub, company, inv.id, "10.00") for _ in range(3)]
        calls.append(partial(stub.VoidInvoice, svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id)))
    with ThreadPoolExecutor(len(calls)) as pool:
        codes = list(pool.map(_outcome, calls))
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION}, codes
    for n in range(len(invoices)):
        assert codes[4 * n + 3] == grpc.StatusCode.OK  # the void
    paid = db.fetch(
        "SELECT coalesce(sum(applied_amount), 0) AS s FROM payment_allocations WHERE company_id = $1", company
    )
    credit = db.fetch("SELECT coalesce(sum(amount), 0) AS s FROM credit_entries WHERE company_id = $1", company)
    payments = codes.count(grpc.StatusCode.OK) - len(invoices)
    assert paid[0]["s"] == credit[0]["s"] == Decimal("10.00") * payments
