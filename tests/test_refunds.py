"""Refunds end to end through gRPC (issue 16): of a payment, in full or in part, and of a credit balance."""

from __future__ import annotations

from functools import partial
from typing import Any

import grpc
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from tests.helpers import finalized, pay, rpc_error, violations

FAILED = grpc.StatusCode.FAILED_PRECONDITION


def refund(stub: Any, company: str, invoice_id: str, allocation_id: str, amount: str = "") -> Any:
    return stub.RecordRefund(
        svc.RecordRefundRequest(
            company_id=company,
            invoice_id=invoice_id,
            payment_allocation_id=allocation_id,
            amount=amount,
            reason="customer asked",
            reference="re_1",
        )
    )


def test_partial_then_full_refund_of_a_payment(stub, company, db):
    inv = finalized(stub, company)  # 100.00
    first = pay(stub, company, inv.id, "60.00").invoice.payment_allocations[0]
    second = pay(stub, company, inv.id, "40.00").invoice.payment_allocations[1]
    part = refund(stub, company, inv.id, first.id, "25.00")
    after = part.invoice
    assert (part.refund.amount, part.refund.payment_allocation_id, part.refund.reference) == ("25.00", first.id, "re_1")
    assert (after.amount_refunded, after.payment_status) == ("25.00", pb.PAYMENT_STATUS_PARTIALLY_REFUNDED)
    # A refund does not reopen the debt (Stripe): still PAID, nothing due.
    assert (after.status, after.amount_due, after.amount_paid) == (pb.INVOICE_STATUS_PAID, "0.00", "100.00")
    # Never more than what is left of that payment.
    err = rpc_error(partial(refund, stub, company, inv.id, first.id, "35.01"), FAILED)
    assert "amount" in (err.details() or "")
    rest = refund(stub, company, inv.id, first.id)  # empty amount: what is left of it
    assert rest.refund.amount == "35.00"
    refunded = [(a.id, a.amount_refunded) for a in rest.invoice.payment_allocations]
    assert refunded == [(first.id, "60.00"), (second.id, "0.00")]
    full = refund(stub, company, inv.id, second.id).invoice
    assert (full.amount_refunded, full.payment_status) == ("100.00", pb.PAYMENT_STATUS_REFUNDED)
    rpc_error(partial(refund, stub, company, inv.id, second.id, "0.01"), FAILED)
    rows = db.fetch("SELECT sum(amount) AS s FROM refunds WHERE company_id = $1 AND invoice_id = $2", company, inv.id)
    assert str(rows[0]["s"]) == "100.00"
    events = db.fetch(
        "SELECT count(*) AS n FROM invoice_events WHERE company_id = $1 AND type = 'INVOICE_REFUNDED'", company
    )
    assert events[0]["n"] == 3
    assert rest.push_operation.operation == "RecordRefund"


def test_a_refund_is_refused_naming_the_field(stub, company):
    inv = finalized(stub, company)
    alloc = pay(stub, company, inv.id, "10.00").invoice.payment_allocations[0]
    err = rpc_error(partial(refund, stub, company, inv.id, alloc.id, "1.001"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "amount" in violations(err)
    err = rpc_error(partial(refund, stub, company, inv.id, "not-a-payment"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "payment_allocation_id" in violations(err)
    assert (
        stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice.amount_refunded == "0.00"
    )


def test_void_after_a_refund_credits_only_what_was_kept(stub, company):
    inv = finalized(stub, company)
    alloc = pay(stub, company, inv.id, "50.00").invoice.payment_allocations[0]
    refund(stub, company, inv.id, alloc.id, "20.00")
    voided = stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id))
    assert voided.credited_amount == "30.00"


def test_refund_from_a_credit_balance(stub, company):
    stub.AddCustomerCredit(
        svc.AddCustomerCreditRequest(company_id=company, customer_id="c-9", currency="USD", amount="50")
    )
    resp = stub.RefundCustomerCredit(
        svc.RefundCustomerCreditRequest(company_id=company, customer_id="c-9", currency="USD", amount="20.00")
    )
    assert (resp.refund.amount, resp.refund.customer_id, resp.credit_balance.balance) == ("20.00", "c-9", "30.00")
    assert resp.push_operation.data_type == "customerCreditBalances"
    err = rpc_error(
        lambda: stub.RefundCustomerCredit(
            svc.RefundCustomerCreditRequest(company_id=company, customer_id="c-9", currency="USD", amount="30.01")
        ),
        FAILED,
    )
    assert "amount" in (err.details() or "")
    balances = stub.GetCustomerCreditBalance(svc.GetCustomerCreditBalanceRequest(company_id=company, customer_id="c-9"))
    assert balances.credit_balances[0].balance == "30.00"
