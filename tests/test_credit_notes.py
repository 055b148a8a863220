"""Credit notes end to end through gRPC against PostgreSQL (issue 16)."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from pypdf import PdfReader

from tests.helpers import finalized, invoice, line, pay, rpc_error, violations

FAILED = grpc.StatusCode.FAILED_PRECONDITION


def note_line(unit: str, quantity: str = "1", **kw: Any) -> svc.CreditNoteLineInput:
    return svc.CreditNoteLineInput(unit_amount=unit, quantity=quantity, **kw)


def draft(stub: Any, company: str, invoice_id: str, **kw: Any) -> pb.CreditNote:
    resp = stub.CreateCreditNote(svc.CreateCreditNoteRequest(company_id=company, invoice_id=invoice_id, **kw))
    assert resp.push_operation.status == 2 or resp.push_operation.push_operation_key
    return resp.credit_note  # type: ignore[no-any-return]


def issue(stub: Any, company: str, note_id: str) -> svc.IssueCreditNoteResponse:
    return stub.IssueCreditNote(svc.IssueCreditNoteRequest(company_id=company, credit_note_id=note_id))  # type: ignore[no-any-return]


def get_invoice(stub: Any, company: str, invoice_id: str) -> pb.Invoice:
    return stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=invoice_id)).invoice  # type: ignore[no-any-return]


def balance(stub: Any, company: str, customer: str = "cust-1") -> str:
    out = stub.GetCustomerCreditBalance(svc.GetCustomerCreditBalanceRequest(company_id=company, customer_id=customer))
    return str({b.currency: b.balance for b in out.credit_balances}.get("USD", "0.00"))


def test_a_partial_credit_note_on_a_partly_paid_invoice(stub, company, db):
    inv = finalized(stub, company)  # 100.00 USD
    pay(stub, company, inv.id, "30.00")
    note = draft(
        stub,
        company,
        inv.id,
        lines=[note_line("10.00", "2", description="Returned widgets", tax_rate="20")],
        reason="returned goods",
        reason_code="order_change",
    )
    assert note.status == pb.CREDIT_NOTE_STATUS_DRAFT and not note.credit_note_number
    assert (note.sub_total, note.total_tax_amount, note.total_amount) == ("20.00", "4.00", "24.00")
    assert get_invoice(stub, company, inv.id).amount_due == "70.00"  # a draft changes nothing

    resp = issue(stub, company, note.id)
    n, after = resp.credit_note, resp.invoice
    assert n.status == pb.CREDIT_NOTE_STATUS_ISSUED and n.credit_note_number == "CN-000001"
    assert (n.credit_amount, n.balance_amount, n.refund_amount) == ("24.00", "0.00", "0.00")
    assert (n.invoice_number, n.invoice_id) == (inv.invoice_number, inv.id)
    assert (after.amount_due, after.amount_paid, after.amount_credited) == ("46.00", "30.00", "24.00")
    assert after.status == pb.INVOICE_STATUS_PARTIALLY_PAID
    memo = after.credit_memos[0]
    assert (memo.credit_note_id, memo.credit_note_number, memo.total_amount) == (n.id, "CN-000001", "24.00")
    assert memo.reason == pb.CREDIT_MEMO_REASON_CREDIT_NOTE
    stored = get_invoice(stub, company, inv.id)
    assert stored.amount_due == "46.00" and stored.credit_memos[0].credit_note_id == n.id
    events = db.fetch(
        "SELECT type, invoice_id FROM invoice_events WHERE company_id = $1 AND type LIKE 'CREDIT%' ORDER BY id", company
    )
    assert [(e["type"], e["invoice_id"]) for e in events] == [
        ("CREDIT_NOTE_CREATED", inv.id),
        ("CREDIT_NOTE_ISSUED", inv.id),
    ]
    op = resp.push_operation
    assert op.data_type == "creditNotes" and op.operation == "IssueCreditNote"
    request = svc.DownloadCreditNotePdfRequest(company_id=company, credit_note_id=n.id)
    text = " ".join(pdf_text(b"".join(c.chunk for c in stub.DownloadCreditNotePdf(request))).split())
    assert "Tax breakdown" in text and "S 20% 20.00 USD 4.00 USD" in text  # a rate the invoice lacks: standard


def test_a_full_credit_of_an_open_invoice_leaves_nothing_due(stub, company):
    inv = finalized(stub, company, invoice(lines=[line("2", "15.00", description="Widget", tax_amount="3.00")]))
    note = draft(stub, company, inv.invoice_number, whole_invoice=True)
    assert note.total_amount == "33.00" and note.lines[0].invoice_line_item_id == inv.line_items[0].id
    after = issue(stub, company, note.id).invoice
    assert (after.amount_due, after.amount_credited, after.status) == ("0.00", "33.00", pb.INVOICE_STATUS_PAID)
    # Nothing is left to credit: another note is refused and changes nothing.
    again = draft(stub, company, inv.id, lines=[note_line("1.00")])
    err = rpc_error(partial(issue, stub, company, again.id), FAILED)
    assert "total_amount" in (err.details() or "")
    assert get_credit_note(stub, company, again.id).status == pb.CREDIT_NOTE_STATUS_DRAFT


def get_credit_note(stub: Any, company: str, key: str) -> pb.CreditNote:
    return stub.GetCreditNote(svc.GetCreditNoteRequest(company_id=company, credit_note_id=key)).credit_note  # type: ignore[no-any-return]


def test_credit_of_a_paid_invoice_goes_to_the_balance_or_is_refunded(stub, company):
    inv = finalized(stub, company)
    pay(stub, company, inv.id, "100.00")
    to_balance = issue(stub, company, draft(stub, company, inv.id, lines=[note_line("30.00")]).id)
    assert (to_balance.credit_note.credit_amount, to_balance.credit_note.balance_amount) == ("0.00", "30.00")
    assert balance(stub, company) == "30.00"
    assert to_balance.invoice.status == pb.INVOICE_STATUS_PAID and to_balance.invoice.amount_due == "0.00"
    refunded = issue(stub, company, draft(stub, company, inv.id, lines=[note_line("70.00")], refund_amount="70.00").id)
    assert refunded.credit_note.refund_amount == "70.00"
    after = refunded.invoice
    assert (after.amount_refunded, after.payment_status) == ("70.00", pb.PAYMENT_STATUS_PARTIALLY_REFUNDED)
    assert balance(stub, company) == "30.00"
    # Everything paid has gone back (30 to the balance, 70 refunded): nothing more can be credited.
    err = rpc_error(partial(issue, stub, company, draft(stub, company, inv.id, lines=[note_line("0.01")]).id), FAILED)
    assert "total_amount" in (err.details() or "")


def test_over_crediting_is_refused_naming_the_field_and_changes_nothing(stub, company, db):
    inv = finalized(stub, company)
    pay(stub, company, inv.id, "40.00")
    err = rpc_error(
        partial(draft, stub, company, inv.id, lines=[note_line("10.00")], credit_amount="5.00"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "credit_amount" in violations(err)
    err = rpc_error(
        partial(draft, stub, company, inv.id, lines=[note_line("10.001")]), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "lines[0].unit_amount" in violations(err)
    big = draft(stub, company, inv.id, lines=[note_line("70.00")], credit_amount="70.00")
    err = rpc_error(partial(issue, stub, company, big.id), FAILED)
    assert "credit_amount" in (err.details() or "")  # 60.00 is due
    out = draft(stub, company, inv.id, lines=[note_line("50.00")], balance_amount="50.00")
    err = rpc_error(partial(issue, stub, company, out.id), FAILED)
    assert "balance_amount" in (err.details() or "")  # 40.00 was paid
    assert get_invoice(stub, company, inv.id).amount_due == "60.00"
    assert (
        db.fetch("SELECT count(*) AS n FROM credit_note_number_sequences WHERE company_id = $1", company)[0]["n"] == 0
    )
    assert balance(stub, company) == "0.00"


def test_drafts_only_are_voided_and_drafts_need_a_finalized_invoice(stub, company):
    inv = finalized(stub, company)
    note = draft(stub, company, inv.id, lines=[note_line("5.00")])
    voided = stub.VoidCreditNote(svc.VoidCreditNoteRequest(company_id=company, credit_note_id=note.id, etag=note.etag))
    assert voided.credit_note.status == pb.CREDIT_NOTE_STATUS_VOID
    rpc_error(partial(issue, stub, company, note.id), FAILED)
    issued = issue(stub, company, draft(stub, company, inv.id, lines=[note_line("5.00")]).id).credit_note
    rpc_error(
        lambda: stub.VoidCreditNote(svc.VoidCreditNoteRequest(company_id=company, credit_note_id=issued.id)), FAILED
    )
    stale = draft(stub, company, inv.id, lines=[note_line("1.00")])
    rpc_error(
        lambda: stub.IssueCreditNote(
            svc.IssueCreditNoteRequest(company_id=company, credit_note_id=stale.id, etag='W/"9"')
        ),
        grpc.StatusCode.ABORTED,
    )
    open_draft = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice())).invoice
    rpc_error(partial(draft, stub, company, open_draft.id, lines=[note_line("1.00")]), FAILED)
    rpc_error(partial(get_credit_note, stub, company, "CN-999999"), grpc.StatusCode.NOT_FOUND)


def test_concurrent_issues_never_over_credit_and_numbers_stay_gapless(stub, company, db):
    inv = finalized(stub, company)  # 100.00 due
    notes = [draft(stub, company, inv.id, lines=[note_line("30.00")]).id for _ in range(6)]
    others = [finalized(stub, company) for _ in range(3)]
    notes += [draft(stub, company, o.id, lines=[note_line("1.00")]).id for o in others]

    def attempt(note_id: str) -> str:
        try:
            return issue(stub, company, note_id).credit_note.credit_note_number
        except grpc.RpcError as err:
            assert err.code() == FAILED, err.details()
            return ""

    with ThreadPoolExecutor(9) as pool:
        numbers = [n for n in pool.map(attempt, notes) if n]
    assert len(numbers) == 6  # three of 30.00 fit in 100.00, and the three others
    assert sorted(numbers) == [f"CN-{i:06d}" for i in range(1, 7)]
    after = get_invoice(stub, company, inv.id)
    assert (after.amount_due, after.amount_credited) == ("10.00", "90.00")


def test_list_page_and_pdf(stub, company):
    inv = finalized(stub, company)
    other = finalized(stub, company, invoice(customer="cust-2"))
    ids = [draft(stub, company, inv.id, lines=[note_line("1.00")]).id for _ in range(3)]
    draft(stub, company, other.id, lines=[note_line("1.00")])
    first = stub.ListCreditNotes(svc.ListCreditNotesRequest(company_id=company, invoice_id=inv.id, page_size=2))
    assert len(first.credit_notes) == 2 and first.next_page_token
    rest = stub.ListCreditNotes(
        svc.ListCreditNotesRequest(company_id=company, invoice_id=inv.id, page_size=2, page_token=first.next_page_token)
    )
    assert not rest.next_page_token
    assert sorted(n.id for n in [*first.credit_notes, *rest.credit_notes]) == sorted(ids)
    by_customer = stub.ListCreditNotes(svc.ListCreditNotesRequest(company_id=company, customer_id="cust-2"))
    assert [n.invoice_id for n in by_customer.credit_notes] == [other.id]
    err = rpc_error(
        lambda: stub.ListCreditNotes(
            svc.ListCreditNotesRequest(company_id=company, customer_id="cust-2", page_token=first.next_page_token)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "page_token" in violations(err)
    note = issue(stub, company, ids[0]).credit_note
    chunks = list(
        stub.DownloadCreditNotePdf(
            svc.DownloadCreditNotePdfRequest(company_id=company, credit_note_id=note.credit_note_number)
        )
    )
    data = b"".join(c.chunk for c in chunks)
    assert chunks[0].file_name == f"credit-note-{note.credit_note_number}.pdf" and data.startswith(b"%PDF")
    assert chunks[0].size == len(data)
    text = " ".join(pdf_text(data).split())  # the title wraps
    issued = inv.issue_date[:10]
    assert f"Credit note {note.credit_note_number} for invoice {inv.invoice_number} (issued {issued})" in text


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_reverse_and_write_off_issue_a_numbered_credit_note(stub, company):
    a = finalized(stub, company)
    rev = stub.ReverseInvoice(svc.ReverseInvoiceRequest(company_id=company, invoice_id=a.id, comment="wrong customer"))
    b = finalized(stub, company)
    pay(stub, company, b.id, "25.00")
    off = stub.WriteOffInvoice(svc.WriteOffInvoiceRequest(company_id=company, invoice_id=b.id))
    for resp, amount, number in ((rev, "100.00", "CN-000001"), (off, "75.00", "CN-000002")):
        memo = resp.credit_memo
        assert (memo.credit_note_number, memo.total_amount) == (number, amount)
        note = get_credit_note(stub, company, memo.credit_note_id)
        assert note.status == pb.CREDIT_NOTE_STATUS_ISSUED and note.credit_note_number == number
        assert (note.total_amount, note.credit_amount, note.invoice_id) == (amount, amount, resp.invoice.id)
        assert len(note.lines) == 1 and note.lines[0].total_amount == amount
        assert resp.invoice.credit_memos[0].credit_note_id == note.id


def test_create_and_issue_in_one_call(stub, company, db):
    inv = finalized(stub, company)
    resp = stub.CreateCreditNote(
        svc.CreateCreditNoteRequest(company_id=company, invoice_id=inv.id, lines=[note_line("12.50")], issue=True)
    )
    note = resp.credit_note
    assert (note.status, note.credit_note_number, note.credit_amount) == (
        pb.CREDIT_NOTE_STATUS_ISSUED,
        "CN-000001",
        "12.50",
    )
    assert resp.invoice.amount_due == "87.50" and resp.invoice.credit_memos[0].credit_note_id == note.id
    assert get_credit_note(stub, company, "CN-000001").version == note.version
    changes = [(c.type, c.record_ref.data_type) for c in resp.push_operation.changes]
    assert len(changes) == len(set(changes)) == 2  # the note and the invoice, once each


def export(stub: Any, company: str, key: str, vendor: Any) -> dict[str, Any]:
    out = stub.ExportCreditNote(svc.ExportCreditNoteRequest(company_id=company, credit_note_id=key, vendor=vendor))
    return json.loads(out.credit_note_json, parse_float=Decimal)  # type: ignore[no-any-return]


def test_export_as_zuora_credit_memo_and_codat_credit_note(stub, company):
    inv = finalized(stub, company)
    pay(stub, company, inv.id, "100.00")
    note = issue(
        stub,
        company,
        draft(
            stub,
            company,
            inv.id,
            lines=[note_line("25.00", "2", tax_rate="10")],
            reason="broken",
            reason_code="product_unsatisfactory",
            refund_amount="15.00",
            balance_amount="40.00",
        ).id,
    ).credit_note
    zuora = export(stub, company, note.credit_note_number, svc.VENDOR_ZUORA)
    assert (zuora["number"], zuora["status"], zuora["referredInvoiceId"]) == (note.credit_note_number, "Posted", inv.id)
    assert (zuora["amount"], zuora["taxAmount"]) == (Decimal("55.00"), Decimal("5.00"))
    assert (zuora["appliedAmount"], zuora["refundAmount"], zuora["unappliedAmount"]) == (
        Decimal("0.00"),
        Decimal("15.00"),
        Decimal("40.00"),
    )
    assert zuora["reasonCode"] == "product_unsatisfactory"
    assert zuora["items"][0]["amountWithoutTax"] == Decimal("50.00") and zuora["items"][0]["amount"] == Decimal("55.00")
    codat = export(stub, company, note.id, svc.VENDOR_CODAT)
    assert (codat["creditNoteNumber"], codat["status"], codat["totalAmount"]) == (
        note.credit_note_number,
        "Submitted",
        Decimal("55.00"),
    )
    assert codat["remainingCredit"] == Decimal("40.00") and codat["customerRef"]["id"] == "cust-1"
    assert codat["supplementalData"]["content"]["invoice"]["number"] == inv.invoice_number
    assert codat["lineItems"][0]["unitAmount"] == Decimal("25.00")
    err = rpc_error(partial(export, stub, company, note.id, svc.VENDOR_FLEXPRICE), grpc.StatusCode.INVALID_ARGUMENT)
    assert "vendor" in violations(err)


def test_update_a_draft_by_field_mask_and_etag(stub, company):
    inv = finalized(stub, company)
    note = draft(stub, company, inv.id, lines=[note_line("10.00")], reason="first", memo="keep me")

    def update(etag: str, paths: list[str], **kw: Any) -> svc.UpdateCreditNoteResponse:
        return stub.UpdateCreditNote(  # type: ignore[no-any-return]
            svc.UpdateCreditNoteRequest(
                company_id=company,
                credit_note_id=note.id,
                etag=etag,
                update_mask=field_mask_pb2.FieldMask(paths=paths),
                **kw,
            )
        )

    out = update(
        note.etag, ["lines", "reason"], lines=[note_line("5.00", "3", tax_rate="10")], reason="second"
    ).credit_note
    assert (out.total_amount, out.reason, out.memo, out.version) == ("16.50", "second", "keep me", note.version + 1)
    assert len(out.lines) == 1 and get_credit_note(stub, company, note.id).total_amount == "16.50"
    rpc_error(partial(update, note.etag, ["memo"], memo="stale"), grpc.StatusCode.ABORTED)
    err = rpc_error(partial(update, out.etag, ["currency"]), grpc.StatusCode.INVALID_ARGUMENT)
    assert "update_mask" in violations(err)
    err = rpc_error(
        partial(update, out.etag, ["credit_amount"], credit_amount="1.00"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "credit_amount" in violations(err)
    issued = issue(stub, company, note.id).credit_note
    assert issued.credit_amount == "16.50"
    rpc_error(partial(update, issued.etag, ["memo"], memo="late"), FAILED)
