"""Every InvoiceService RPC: the happy path and each rule it enforces, over a real channel."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import grpc
from google.protobuf import field_mask_pb2
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import push_operation_pb2 as push_pb

from tests.helpers import create, error_info, finalized, invoice, line, pay, rpc_error, violations

OK = push_pb.PUSH_OPERATION_STATUS_SUCCESS
INV = grpc.StatusCode.INVALID_ARGUMENT
PRE = grpc.StatusCode.FAILED_PRECONDITION


def test_create_computes_totals_and_persists_push_operation(stub, company, db):
    inv = invoice(
        lines=[
            line(
                "3",
                "10.00",
                discount_percentage="10",
                taxation_items=[pb.TaxationItem(name="VAT", tax_rate="20")],
            ),
            line("1", "5.5", tax_amount="0.55"),
        ]
    )
    resp = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=inv))
    out = resp.invoice
    assert out.status == pb.INVOICE_STATUS_DRAFT and out.invoice_number == ""
    assert (out.line_items[0].discount_amount, out.line_items[0].sub_total) == ("3.00", "27.00")
    assert (out.line_items[0].tax_amount, out.line_items[0].total_amount) == ("5.40", "32.40")
    assert (out.sub_total, out.total_tax_amount, out.total_discount) == ("32.50", "5.95", "3.00")
    assert out.total_amount == out.amount_due == "38.45"
    assert resp.push_operation.status == OK and resp.push_operation.operation == "CreateInvoice"
    assert resp.push_operation.changes[0].type == push_pb.PUSH_CHANGE_TYPE_CREATED
    assert resp.push_operation.changes[0].record_ref.id == out.id
    rows = db.fetch(
        "SELECT status FROM push_operations WHERE push_operation_key = $1",
        resp.push_operation.push_operation_key,
    )
    assert rows[0]["status"] == "SUCCESS"
    stored = db.fetch("SELECT total_amount, amount_due FROM invoices WHERE id = $1", out.id)[0]
    assert stored["total_amount"] == Decimal("38.45") == stored["amount_due"]


def test_create_refuses_disagreeing_totals_and_records_failed_operation(stub, company, db):
    inv = invoice(total_amount="999.00", lines=[line("2", "10", sub_total="25")])
    err = rpc_error(lambda: stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=inv)), INV)
    v = violations(err)
    assert "invoice.total_amount" in v and "invoice.line_items[0].sub_total" in v
    key = error_info(err).metadata["pushOperationKey"]
    row = db.fetch("SELECT status, status_code, validation FROM push_operations WHERE push_operation_key = $1", key)[0]
    assert row["status"] == "FAILED" and row["status_code"] == 400
    assert {e["itemId"] for e in row["validation"]["errors"]} == set(v)
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 0


def test_create_submitted_assigns_number_and_zero_total_is_paid(stub, company):
    posted = create(stub, company, invoice(status=pb.INVOICE_STATUS_SUBMITTED))
    assert posted.status == pb.INVOICE_STATUS_SUBMITTED and posted.invoice_number == "INV-000001"
    zero = finalized(stub, company, invoice(lines=[line("1", "0")]))
    assert zero.status == pb.INVOICE_STATUS_PAID and zero.amount_due == "0.00" and zero.HasField("paid_on_date")
    rpc_error(lambda: create(stub, company, invoice(status=pb.INVOICE_STATUS_VOID)), INV)


def test_create_without_lines_keeps_consistent_totals(stub, company):
    out = create(stub, company, invoice(lines=[], sub_total="90", total_tax_amount="10", total_amount="100"))
    assert (out.sub_total, out.total_tax_amount, out.total_amount, out.amount_due) == (
        "90.00",
        "10.00",
        "100.00",
        "100.00",
    )
    err = rpc_error(
        lambda: create(stub, company, invoice(lines=[], sub_total="90", total_amount="100", total_tax_amount="1")),
        INV,
    )
    assert "invoice.total_amount" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(lines=[])), INV)
    assert "invoice.total_amount" in violations(err)


def test_create_posted_with_allocation_derives_partially_paid(stub, company):
    inv = invoice(
        lines=[],
        total_amount="100",
        amount_due="60",
        status=pb.INVOICE_STATUS_SUBMITTED,
        payment_allocations=[pb.PaymentAllocation(allocation=pb.Allocation(total_amount="40"))],
    )
    out = create(stub, company, inv)
    assert out.status == pb.INVOICE_STATUS_PARTIALLY_PAID and out.amount_paid == "40.00"
    draft_paid = invoice(payment_allocations=[pb.PaymentAllocation(allocation=pb.Allocation(total_amount="1"))])
    assert "invoice.payment_allocations" in violations(rpc_error(lambda: create(stub, company, draft_paid), INV))
    wrong = invoice(lines=[], total_amount="100", status=pb.INVOICE_STATUS_PAID)
    assert "invoice.status" in violations(rpc_error(lambda: create(stub, company, wrong), INV))


def test_client_invoice_number_is_unique_per_company(stub, company):
    create(stub, company, invoice(invoice_number="18/04 15.26"))
    err = rpc_error(
        lambda: create(stub, company, invoice(invoice_number="18/04 15.26")), grpc.StatusCode.ALREADY_EXISTS
    )
    assert "invoice.invoice_number" in violations(err)
    create(stub, company + "-other", invoice(invoice_number="18/04 15.26"))  # another company may reuse it


def test_batch_create_is_atomic_and_limited(stub, company, db):
    reqs = [svc.CreateInvoiceRequest(invoice=invoice(customer=f"c{i}")) for i in range(3)]
    resp = stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs))
    assert len(resp.invoices) == 3 and len(resp.push_operation.changes) == 3
    before = db.snapshot(company)
    bad = [*reqs, svc.CreateInvoiceRequest(invoice=invoice(total_amount="1"))]
    err = rpc_error(
        lambda: stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=bad)),
        INV,
    )
    assert "requests[3].invoice.total_amount" in violations(err)
    assert db.snapshot(company) == before
    too_many = [svc.CreateInvoiceRequest(invoice=invoice(lines=[line()])) for _ in range(51)]
    err = rpc_error(
        lambda: stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=too_many)),
        INV,
    )
    assert "requests" in violations(err)
    many_items = [svc.CreateInvoiceRequest(invoice=invoice(lines=[line()] * 250)) for _ in range(5)]
    err = rpc_error(
        lambda: stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=many_items)),
        INV,
    )
    assert "1000 line items" in violations(err)["requests"]
    assert db.snapshot(company) == before


def test_get_by_id_and_number_and_not_found(stub, company):
    inv = finalized(stub, company)
    by_id = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
    by_number = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_number=inv.invoice_number)).invoice
    assert by_id == by_number == inv
    rpc_error(
        lambda: stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id="nope")),
        grpc.StatusCode.NOT_FOUND,
    )
    other = company + "-x"
    rpc_error(
        lambda: stub.GetInvoice(svc.GetInvoiceRequest(company_id=other, invoice_id=inv.id)),
        grpc.StatusCode.NOT_FOUND,
    )
    rpc_error(lambda: stub.GetInvoice(svc.GetInvoiceRequest(company_id=company)), INV)


def test_update_draft_with_mask_and_etag(stub, company):
    inv = create(stub, company)
    patch = pb.Invoice(id=inv.id, etag=inv.etag, note="updated", line_items=[line("4", "2.50")])
    resp = stub.UpdateInvoice(
        svc.UpdateInvoiceRequest(
            company_id=company,
            invoice=patch,
            update_mask=field_mask_pb2.FieldMask(paths=["note", "line_items"]),
        )
    )
    out = resp.invoice
    assert out.note == "updated" and out.total_amount == out.amount_due == "10.00" and len(out.line_items) == 1
    assert out.etag != inv.etag and out.customer_ref.id == inv.customer_ref.id
    stale = pb.Invoice(id=inv.id, etag=inv.etag, note="again")
    rpc_error(
        lambda: stub.UpdateInvoice(
            svc.UpdateInvoiceRequest(
                company_id=company, invoice=stale, update_mask=field_mask_pb2.FieldMask(paths=["note"])
            )
        ),
        grpc.StatusCode.ABORTED,
    )
    err = rpc_error(
        lambda: stub.UpdateInvoice(
            svc.UpdateInvoiceRequest(
                company_id=company,
                invoice=pb.Invoice(id=inv.id),
                update_mask=field_mask_pb2.FieldMask(paths=["bogus"]),
            )
        ),
        INV,
    )
    assert "update_mask.paths" in violations(err)
    err = rpc_error(
        lambda: stub.UpdateInvoice(
            svc.UpdateInvoiceRequest(
                company_id=company,
                invoice=pb.Invoice(id=inv.id, status=pb.INVOICE_STATUS_PAID),
                update_mask=field_mask_pb2.FieldMask(paths=["status"]),
            )
        ),
        INV,
    )
    assert "FinalizeInvoice" in violations(err)["update_mask.paths"]


def test_update_after_finalization_only_due_date_note_metadata(stub, company):
    inv = finalized(stub, company)
    ok = stub.UpdateInvoice(
        svc.UpdateInvoiceRequest(
            company_id=company,
            invoice=pb.Invoice(id=inv.id, due_date="2030-01-31", note="n", metadata={"k": "v"}),
        )
    ).invoice
    assert ok.due_date == "2030-01-31T00:00:00Z" and ok.note == "n" and ok.metadata["k"] == "v"
    # Sending the whole invoice back unchanged (read-modify-write) is not an error.
    ok.note = "n2"
    again = stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=ok)).invoice
    assert again.note == "n2" and again.total_amount == inv.total_amount
    for patch, path in (
        (pb.Invoice(id=inv.id, total_amount="1"), "total_amount"),
        (pb.Invoice(id=inv.id, line_items=[line()]), "line_items"),
        (pb.Invoice(id=inv.id, currency="EUR"), "currency"),
    ):
        err = rpc_error(
            partial(
                stub.UpdateInvoice,
                svc.UpdateInvoiceRequest(
                    company_id=company, invoice=patch, update_mask=field_mask_pb2.FieldMask(paths=[path])
                ),
            ),
            PRE,
        )
        assert path in (err.details() or "")


def test_batch_update_is_atomic(stub, company, db):
    a, b = create(stub, company), finalized(stub, company)
    ok = stub.BatchUpdateInvoices(
        svc.BatchUpdateInvoicesRequest(
            company_id=company,
            requests=[
                svc.UpdateInvoiceRequest(invoice=pb.Invoice(id=a.id, note="a")),
                svc.UpdateInvoiceRequest(invoice=pb.Invoice(id=b.id, note="b")),
            ],
        )
    )
    assert [i.note for i in ok.invoices] == ["a", "b"]
    before = db.snapshot(company)
    rpc_error(
        lambda: stub.BatchUpdateInvoices(
            svc.BatchUpdateInvoicesRequest(
                company_id=company,
                requests=[
                    svc.UpdateInvoiceRequest(invoice=pb.Invoice(id=a.id, note="changed")),
                    svc.UpdateInvoiceRequest(
                        invoice=pb.Invoice(id=b.id, currency="EUR"),
                        update_mask=field_mask_pb2.FieldMask(paths=["currency"]),
                    ),
                ],
            )
        ),
        PRE,
    )
    assert db.snapshot(company) == before
    rpc_error(
        lambda: stub.BatchUpdateInvoices(
            svc.BatchUpdateInvoicesRequest(
                company_id=company,
                requests=[svc.UpdateInvoiceRequest(invoice=pb.Invoice(id=a.id, note="x"))] * 51,
            )
        ),
        INV,
    )


def test_delete_drafts_and_canceled_only(stub, company, db):
    draft = create(stub, company)
    op = stub.DeleteInvoice(svc.DeleteInvoiceRequest(company_id=company, invoice_id=draft.id)).push_operation
    assert op.changes[0].type == push_pb.PUSH_CHANGE_TYPE_DELETED
    assert not db.fetch("SELECT 1 FROM invoices WHERE id = $1", draft.id)
    assert not db.fetch("SELECT 1 FROM line_items WHERE invoice_id = $1", draft.id)
    canceled = create(stub, company)
    stub.CancelInvoice(svc.CancelInvoiceRequest(company_id=company, invoice_id=canceled.id))
    stub.DeleteInvoice(svc.DeleteInvoiceRequest(company_id=company, invoice_id=canceled.id))
    posted = finalized(stub, company)
    rpc_error(lambda: stub.DeleteInvoice(svc.DeleteInvoiceRequest(company_id=company, invoice_id=posted.id)), PRE)
    rpc_error(
        lambda: stub.DeleteInvoice(svc.DeleteInvoiceRequest(company_id=company, invoice_id=draft.id)),
        grpc.StatusCode.NOT_FOUND,
    )
    other = create(stub, company)
    rpc_error(
        lambda: stub.DeleteInvoice(svc.DeleteInvoiceRequest(company_id=company, invoice_id=other.id, etag='W/"99"')),
        grpc.StatusCode.ABORTED,
    )


def test_preview_stores_nothing(stub, company, db):
    out = stub.PreviewInvoice(svc.PreviewInvoiceRequest(company_id=company, invoice=invoice())).invoice
    assert out.total_amount == "100.00" and out.id == ""
    assert db.snapshot(company)["invoices"].startswith("0:")
    rpc_error(
        lambda: stub.PreviewInvoice(svc.PreviewInvoiceRequest(company_id=company, invoice=invoice(total_amount="5"))),
        INV,
    )


def test_get_invoice_model_is_derived_from_schema(stub, company):
    model = stub.GetInvoiceModel(svc.GetInvoiceModelRequest(company_id=company)).model
    assert model.properties["customerRef"].required and model.properties["currency"].required
    assert model.properties["amountDue"].type == svc.PUSH_OPTION_TYPE_NUMBER
    assert model.properties["issueDate"].type == svc.PUSH_OPTION_TYPE_DATE_TIME
    assert model.properties["lineItems"].properties["quantity"].required
    assert "INVOICE_STATUS_SUBMITTED" in [o.value for o in model.properties["status"].options]
    assert "id" not in model.properties and "amountPaid" not in model.properties  # output only
    assert model.properties["note"].description


def test_finalize_rules(stub, company):
    inv = finalized(stub, company)
    assert inv.status == pb.INVOICE_STATUS_SUBMITTED and inv.invoice_number.startswith("INV-")
    assert inv.HasField("finalize_time") and inv.issue_date
    rpc_error(lambda: stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=inv.id)), PRE)
    kept = finalized(stub, company, invoice(invoice_number="MY-1"))
    assert kept.invoice_number == "MY-1"
    dated = create(stub, company)
    out = stub.FinalizeInvoice(
        svc.FinalizeInvoiceRequest(company_id=company, invoice_id=dated.id, issue_date="2024-03-01T10:00:00+02:00")
    ).invoice
    assert out.issue_date == "2024-03-01T08:00:00Z"


def test_batch_finalize_is_atomic_and_numbers_gapless(stub, company, db):
    drafts = [create(stub, company) for _ in range(3)]
    posted = finalized(stub, company)
    before = db.snapshot(company)
    reqs = [svc.FinalizeInvoiceRequest(invoice_id=d.id) for d in drafts] + [
        svc.FinalizeInvoiceRequest(invoice_id=posted.id)
    ]
    rpc_error(
        lambda: stub.BatchFinalizeInvoices(svc.BatchFinalizeInvoicesRequest(company_id=company, requests=reqs)),
        PRE,
    )
    assert db.snapshot(company) == before
    out = stub.BatchFinalizeInvoices(svc.BatchFinalizeInvoicesRequest(company_id=company, requests=reqs[:3])).invoices
    assert [i.invoice_number for i in out] == ["INV-000002", "INV-000003", "INV-000004"]


def test_void_moves_paid_part_to_credit_balance(stub, company):
    inv = finalized(stub, company)
    pay(stub, company, inv.id, "30.00")
    resp = stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id))
    assert resp.invoice.status == pb.INVOICE_STATUS_VOID and resp.invoice.void_reason == pb.VOID_REASON_VOIDED
    assert resp.invoice.amount_due == "0.00" and resp.credited_amount == "30.00"
    balances = stub.GetCustomerCreditBalance(
        svc.GetCustomerCreditBalanceRequest(company_id=company, customer_id="cust-1")
    ).credit_balances
    assert [(b.currency, b.balance) for b in balances] == [("USD", "30.00")]
    rpc_error(lambda: stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id)), PRE)
    paid = finalized(stub, company)
    pay(stub, company, paid.id, paid.total_amount)
    rpc_error(lambda: stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=paid.id)), PRE)
    draft = create(stub, company)
    err = rpc_error(lambda: stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=draft.id)), PRE)
    assert "cancel" in (err.details() or "")


def test_cancel_drafts_only(stub, company):
    draft = create(stub, company)
    out = stub.CancelInvoice(svc.CancelInvoiceRequest(company_id=company, invoice_id=draft.id)).invoice
    assert (
        out.status == pb.INVOICE_STATUS_VOID and out.void_reason == pb.VOID_REASON_CANCELED and out.amount_due == "0.00"
    )
    posted = finalized(stub, company)
    rpc_error(lambda: stub.CancelInvoice(svc.CancelInvoiceRequest(company_id=company, invoice_id=posted.id)), PRE)
    rpc_error(lambda: stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=draft.id)), PRE)


def test_reverse_issues_credit_memo_for_total(stub, company):
    inv = finalized(stub, company)
    resp = stub.ReverseInvoice(svc.ReverseInvoiceRequest(company_id=company, invoice_id=inv.id, comment="oops"))
    assert (
        resp.credit_memo.total_amount == inv.total_amount and resp.credit_memo.reason == pb.CREDIT_MEMO_REASON_REVERSAL
    )
    assert resp.credit_memo.reason_code == "Invoice reversal" and resp.credit_memo.comment == "oops"
    assert resp.invoice.void_reason == pb.VOID_REASON_REVERSED and resp.invoice.amount_credited == inv.total_amount
    partly = finalized(stub, company)
    pay(stub, company, partly.id, "1")
    rpc_error(lambda: stub.ReverseInvoice(svc.ReverseInvoiceRequest(company_id=company, invoice_id=partly.id)), PRE)
    draft = create(stub, company)
    rpc_error(lambda: stub.ReverseInvoice(svc.ReverseInvoiceRequest(company_id=company, invoice_id=draft.id)), PRE)
    err = rpc_error(
        lambda: stub.ReverseInvoice(
            svc.ReverseInvoiceRequest(company_id=company, invoice_id=partly.id, comment="x" * 300)
        ),
        INV,
    )
    assert "comment" in violations(err)


def test_write_off_issues_credit_memo_for_balance(stub, company):
    inv = finalized(stub, company)
    pay(stub, company, inv.id, "25.00")
    resp = stub.WriteOffInvoice(svc.WriteOffInvoiceRequest(company_id=company, invoice_id=inv.id))
    assert resp.credit_memo.total_amount == "75.00" and resp.invoice.void_reason == pb.VOID_REASON_WRITTEN_OFF
    assert resp.invoice.amount_due == "0.00" and resp.invoice.amount_paid == "25.00"
    rpc_error(lambda: stub.WriteOffInvoice(svc.WriteOffInvoiceRequest(company_id=company, invoice_id=inv.id)), PRE)
    draft = create(stub, company)
    rpc_error(lambda: stub.WriteOffInvoice(svc.WriteOffInvoiceRequest(company_id=company, invoice_id=draft.id)), PRE)


def test_record_payment_partial_then_paid_and_refusals(stub, company):
    inv = finalized(stub, company)
    part = pay(stub, company, inv.id, "40.00").invoice
    assert part.status == pb.INVOICE_STATUS_PARTIALLY_PAID and part.amount_due == "60.00"
    full = pay(stub, company, inv.id, "60.00").invoice
    assert full.status == pb.INVOICE_STATUS_PAID and full.amount_due == "0.00" and full.HasField("paid_on_date")
    assert full.payment_status == pb.PAYMENT_STATUS_SUCCEEDED
    rpc_error(lambda: pay(stub, company, inv.id, "0.01"), PRE)
    other = finalized(stub, company)
    err = rpc_error(lambda: pay(stub, company, other.id, "100.01"), PRE)
    assert "overpayment" in (err.details() or "")
    err = rpc_error(lambda: pay(stub, company, other.id, "10", currency="EUR"), INV)
    assert "payment_allocation.allocation.currency_rate" in violations(err)
    fx = pay(stub, company, other.id, "10", currency="EUR", rate="1.1").invoice
    assert fx.amount_due == "89.00" and fx.payment_allocations[0].applied_amount == "11.00"
    draft = create(stub, company)
    rpc_error(lambda: pay(stub, company, draft.id, "1"), PRE)
    assert "payment_allocation.allocation.total_amount" in violations(
        rpc_error(lambda: pay(stub, company, other.id, "-5"), INV)
    )


def test_update_payment_status(stub, company):
    inv = finalized(stub, company)
    out = stub.UpdatePaymentStatus(
        svc.UpdatePaymentStatusRequest(
            company_id=company, invoice_id=inv.id, payment_status=pb.PAYMENT_STATUS_PROCESSING
        )
    ).invoice
    assert out.payment_status == pb.PAYMENT_STATUS_PROCESSING and out.amount_due == inv.amount_due
    out = stub.UpdatePaymentStatus(
        svc.UpdatePaymentStatusRequest(
            company_id=company, invoice_id=inv.id, payment_status=pb.PAYMENT_STATUS_SUCCEEDED, amount="30"
        )
    ).invoice
    assert out.status == pb.INVOICE_STATUS_PARTIALLY_PAID and out.amount_due == "70.00"
    out = stub.UpdatePaymentStatus(
        svc.UpdatePaymentStatusRequest(
            company_id=company, invoice_id=inv.id, payment_status=pb.PAYMENT_STATUS_SUCCEEDED
        )
    ).invoice
    assert out.status == pb.INVOICE_STATUS_PAID and out.payment_status == pb.PAYMENT_STATUS_SUCCEEDED
    rpc_error(
        lambda: stub.UpdatePaymentStatus(
            svc.UpdatePaymentStatusRequest(
                company_id=company, invoice_id=inv.id, payment_status=pb.PAYMENT_STATUS_PENDING
            )
        ),
        PRE,
    )
    rpc_error(
        lambda: stub.UpdatePaymentStatus(
            svc.UpdatePaymentStatusRequest(
                company_id=company, invoice_id=inv.id, payment_status=pb.PAYMENT_STATUS_OVERPAID
            )
        ),
        INV,
    )
    rpc_error(
        lambda: stub.UpdatePaymentStatus(svc.UpdatePaymentStatusRequest(company_id=company, invoice_id=inv.id)),
        INV,
    )
    draft = create(stub, company)
    rpc_error(
        lambda: stub.UpdatePaymentStatus(
            svc.UpdatePaymentStatusRequest(
                company_id=company, invoice_id=draft.id, payment_status=pb.PAYMENT_STATUS_SUCCEEDED
            )
        ),
        PRE,
    )


def test_attempt_payment_draws_on_credit_balance(stub, company):
    inv = finalized(stub, company)
    rpc_error(lambda: stub.AttemptPayment(svc.AttemptPaymentRequest(company_id=company, invoice_id=inv.id)), PRE)
    stub.AddCustomerCredit(
        svc.AddCustomerCreditRequest(company_id=company, customer_id="cust-1", currency="USD", amount="60")
    )
    resp = stub.AttemptPayment(svc.AttemptPaymentRequest(company_id=company, invoice_id=inv.id))
    assert resp.amount_applied == "60.00" and resp.credit_balance.balance == "0.00"
    assert resp.invoice.status == pb.INVOICE_STATUS_PARTIALLY_PAID and resp.invoice.amount_due == "40.00"
    assert resp.invoice.payment_allocations[0].source == "CREDIT_BALANCE"
    stub.AddCustomerCredit(
        svc.AddCustomerCreditRequest(company_id=company, customer_id="cust-1", currency="USD", amount="500")
    )
    resp = stub.AttemptPayment(svc.AttemptPaymentRequest(company_id=company, invoice_id=inv.id))
    assert resp.amount_applied == "40.00" and resp.credit_balance.balance == "460.00"
    assert resp.invoice.status == pb.INVOICE_STATUS_PAID
    eur = finalized(stub, company, invoice(currency="EUR"))
    rpc_error(lambda: stub.AttemptPayment(svc.AttemptPaymentRequest(company_id=company, invoice_id=eur.id)), PRE)


def test_add_customer_credit_validates(stub, company):
    for bad in ({"amount": "-1"}, {"amount": "0"}, {"currency": "ZZZ"}, {"customer_id": ""}):
        args = {"company_id": company, "customer_id": "c", "currency": "USD", "amount": "1"} | bad
        err = rpc_error(partial(stub.AddCustomerCredit, svc.AddCustomerCreditRequest(**args)), INV)
        assert set(violations(err)) & set(bad)


def test_credit_balances_stay_within_the_decimal_limit(stub, company, db):
    """A balance the API could not take back as input (more than 20 integer digits) is never stored."""
    near = "99999999999999999999.00"  # 20 integer digits: the largest amount a request carries
    add = svc.AddCustomerCreditRequest(company_id=company, customer_id="big", currency="USD", amount=near)
    assert stub.AddCustomerCredit(add).credit_balance.balance == near
    err = rpc_error(partial(stub.AddCustomerCredit, add), INV)
    assert "amount" in violations(err)
    rows = db.fetch("SELECT balance FROM customer_credit_balances WHERE company_id = $1", company)
    assert [f"{r['balance']:.2f}" for r in rows] == [near]  # the refused addition changed nothing


def test_recalculate_draft_and_optionally_finalize(stub, company, db):
    inv = create(stub, company)
    db.fetch("UPDATE line_items SET quantity = 5 WHERE invoice_id = $1 AND position = 0", inv.id)
    out = stub.RecalculateInvoice(svc.RecalculateInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
    assert (
        out.line_items[0].sub_total == "75.00"
        and out.total_amount == "145.00"
        and out.status == pb.INVOICE_STATUS_DRAFT
    )
    out = stub.RecalculateInvoice(
        svc.RecalculateInvoiceRequest(company_id=company, invoice_id=inv.id, finalize=True)
    ).invoice
    assert out.status == pb.INVOICE_STATUS_SUBMITTED and out.invoice_number
    rpc_error(
        lambda: stub.RecalculateInvoice(svc.RecalculateInvoiceRequest(company_id=company, invoice_id=inv.id)),
        PRE,
    )


def test_list_invoice_items_pages(stub, company):
    inv = create(stub, company, invoice(lines=[line(str(i + 1), "1", description=f"L{i}") for i in range(7)]))
    seen, token = [], ""
    while True:
        resp = stub.ListInvoiceItems(
            svc.ListInvoiceItemsRequest(company_id=company, invoice_id=inv.id, page_size=3, page_token=token)
        )
        seen += [x.description for x in resp.line_items]
        token = resp.next_page_token
        if not token:
            break
    assert seen == [f"L{i}" for i in range(7)]
    err = rpc_error(
        lambda: stub.ListInvoiceItems(
            svc.ListInvoiceItemsRequest(company_id=company, invoice_id=inv.id, page_token="garbage")
        ),
        INV,
    )
    assert "page_token" in violations(err)
    rpc_error(
        lambda: stub.ListInvoiceItems(svc.ListInvoiceItemsRequest(company_id=company, invoice_id="x")),
        grpc.StatusCode.NOT_FOUND,
    )


def test_taxation_items_create_and_list(stub, company):
    inv = create(stub, company)
    line_id = inv.line_items[0].id
    resp = stub.CreateTaxationItems(
        svc.CreateTaxationItemsRequest(
            company_id=company,
            invoice_id=inv.id,
            taxation_items=[
                pb.TaxationItem(line_item_id=line_id, name="State", tax_rate="10", jurisdiction="CA"),
                pb.TaxationItem(
                    line_item_id=line_id, name="Flat", tax_rate="1.5", tax_rate_type=pb.TAX_RATE_TYPE_FLAT_FEE
                ),
            ],
        )
    )
    assert [t.tax_amount for t in resp.taxation_items] == ["3.00", "1.50"]
    assert resp.invoice.total_tax_amount == "4.50" and resp.invoice.total_amount == "104.50"
    listed = stub.ListTaxationItems(
        svc.ListTaxationItemsRequest(company_id=company, invoice_id=inv.id, line_item_id=line_id)
    )
    assert [t.name for t in listed.taxation_items] == ["State", "Flat"] and listed.taxation_items[0].id
    err = rpc_error(
        lambda: stub.CreateTaxationItems(
            svc.CreateTaxationItemsRequest(
                company_id=company,
                invoice_id=inv.id,
                taxation_items=[pb.TaxationItem(line_item_id="nope", tax_amount="1")],
            )
        ),
        INV,
    )
    assert "taxation_items[0].line_item_id" in violations(err)
    err = rpc_error(
        lambda: stub.CreateTaxationItems(
            svc.CreateTaxationItemsRequest(
                company_id=company,
                invoice_id=inv.id,
                taxation_items=[pb.TaxationItem(line_item_id=line_id, tax_amount="1")] * 4,
            )
        ),
        INV,
    )
    posted = finalized(stub, company)
    rpc_error(
        lambda: stub.CreateTaxationItems(
            svc.CreateTaxationItemsRequest(
                company_id=company,
                invoice_id=posted.id,
                taxation_items=[pb.TaxationItem(line_item_id=posted.line_items[0].id, tax_amount="1")],
            )
        ),
        PRE,
    )
    rpc_error(
        lambda: stub.ListTaxationItems(
            svc.ListTaxationItemsRequest(company_id=company, invoice_id=inv.id, line_item_id="nope")
        ),
        grpc.StatusCode.NOT_FOUND,
    )


def test_list_invoice_applications(stub, company):
    inv = finalized(stub, company)
    pay(stub, company, inv.id, "10")
    stub.AddCustomerCredit(
        svc.AddCustomerCreditRequest(company_id=company, customer_id="cust-1", currency="USD", amount="5")
    )
    stub.AttemptPayment(svc.AttemptPaymentRequest(company_id=company, invoice_id=inv.id))
    stub.WriteOffInvoice(svc.WriteOffInvoiceRequest(company_id=company, invoice_id=inv.id))
    parts = stub.ListInvoiceApplications(
        svc.ListInvoiceApplicationsRequest(company_id=company, invoice_id=inv.id)
    ).application_parts
    assert [(p.source, p.applied_amount) for p in parts] == [
        ("PAYMENT", "10.00"),
        ("CREDIT_BALANCE", "5.00"),
        ("CREDIT_MEMO", "85.00"),
    ]
    assert parts[0].payment_id and parts[2].credit_memo_id
