"""Regression tests for inputs a fuzzer finds: each gets a clear status, never INTERNAL or UNKNOWN, and
money stays exact at the limits of the input format."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from functools import partial

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from tests.helpers import create, error_info, finalized, invoice, line, pay, rich_status, rpc_error, violations

INV = grpc.StatusCode.INVALID_ARGUMENT
BIG = "12345678901234567890.123456789"  # the largest shape accepted: 20 + 9 digits


def test_nul_characters_anywhere_are_refused_naming_the_field(stub, company, db):
    struct = struct_pb2.Struct()
    struct.update({"a": {"b": "x\x00y"}})
    cases = [
        (invoice(metadata={"k": "a\x00b"}), "invoice.metadata['k']"),
        (invoice(metadata={"k\x00": "v"}), "invoice.metadata['k\\x00']"),
        (invoice(lines=[line(item_ref=pb.ItemRef(id="\x00"))]), "invoice.line_items[0].item_ref.id"),
        (invoice(sales_order_refs=[pb.SalesOrderRef(id="\x00")]), "invoice.sales_order_refs[0].id"),
        (
            invoice(supplemental_data=struct),
            "invoice.supplemental_data.fields['a'].struct_value.fields['b'].string_value",
        ),
    ]
    for inv, path in cases:
        err = rpc_error(partial(create, stub, company, inv), INV)
        assert path in violations(err), violations(err)
    rpc_error(lambda: stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_number="a\x00")), INV)
    rpc_error(lambda: stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id="a\x00")), INV)
    rpc_error(
        lambda: stub.AddCustomerCredit(
            svc.AddCustomerCreditRequest(company_id=company, customer_id="c\x00", currency="USD", amount="1")
        ),
        INV,
    )
    assert db.snapshot(company)["invoices"].startswith("0:")


def test_non_finite_numbers_in_supplemental_data(stub, company):
    for bad in (float("nan"), float("inf")):
        struct = struct_pb2.Struct()
        struct.update({"rate": bad})
        err = rpc_error(partial(create, stub, company, invoice(supplemental_data=struct)), INV)
        assert any(k.startswith("invoice.supplemental_data") for k in violations(err))


def test_many_violations_fit_in_the_trailer(stub, company):
    err = rpc_error(lambda: create(stub, company, invoice(lines=[line("1", "abc")] * 1000)), INV)
    found = violations(err)
    assert 20 <= len(found) <= 21 and "more violations not shown" in found[""]
    assert len(rich_status(err).SerializeToString()) < 16_000
    inv = create(stub, company)
    err = rpc_error(
        lambda: stub.FinalizeInvoice(
            svc.FinalizeInvoiceRequest(company_id=company, invoice_id=inv.id, etag="x" * 100_000)
        ),
        grpc.StatusCode.ABORTED,
    )
    assert len(err.details() or "") < 1000


def test_money_is_exact_at_29_significant_digits(stub, company):
    # XXX has no minor unit (issue 13): its amounts keep 9 decimals, so all 29 significant digits count.
    out = create(stub, company, invoice(lines=[], total_amount=BIG, currency="XXX", status=pb.INVOICE_STATUS_SUBMITTED))
    assert out.total_amount == out.amount_due == BIG
    paid = pay(stub, company, out.id, "0.000000001").invoice
    assert Decimal(paid.amount_due) == Decimal(BIG) - Decimal("0.000000001")
    lined = create(stub, company, invoice(lines=[line("1", BIG)], currency="XXX"))
    assert lined.line_items[0].sub_total == BIG and lined.total_amount == BIG
    usd = rpc_error(lambda: create(stub, company, invoice(lines=[], total_amount=BIG)), INV)
    assert "invoice.total_amount" in violations(usd)  # 9 decimals are more than USD has
    rounded = create(stub, company, invoice(lines=[line("1", BIG)]))
    assert rounded.total_amount == "12345678901234567890.12"
    err = rpc_error(lambda: create(stub, company, invoice(lines=[line("99999999999", "99999999999")])), INV)
    assert "invoice.line_items[0].total_amount" in violations(err)


def test_small_amounts_come_back_in_plain_notation_and_round_trip(stub, company):
    out = create(stub, company, invoice(lines=[line("1", "0.0000002")]))
    assert out.line_items[0].unit_amount == "0.0000002" and "E" not in out.total_amount
    again = stub.UpdateInvoice(
        svc.UpdateInvoiceRequest(
            company_id=company,
            invoice=pb.Invoice(id=out.id, line_items=out.line_items),
            update_mask=field_mask_pb2.FieldMask(paths=["line_items"]),
        )
    ).invoice
    assert again.total_amount == out.total_amount


def test_fx_payment_worth_nothing_is_refused(stub, company):
    inv = finalized(stub, company)
    err = rpc_error(lambda: pay(stub, company, inv.id, "0.000000001", currency="EUR", rate="0.1"), INV)
    assert "payment_allocation.allocation.total_amount" in violations(err)


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_dates_at_the_edges_of_the_calendar(stub, company, raw):
    assert "invoice.issue_date" in violations(rpc_error(lambda: create(stub, company, invoice(issue_date=raw)), INV))


def test_non_canonical_uuid_forms_are_just_unknown_keys(stub, company):
    key = "urn:uuid:12345678-1234-5678-1234-567812345678"
    rpc_error(
        lambda: stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=key)), grpc.StatusCode.NOT_FOUND
    )
    rpc_error(
        lambda: stub.BatchFinalizeInvoices(
            svc.BatchFinalizeInvoicesRequest(company_id=company, requests=[svc.FinalizeInvoiceRequest(invoice_id=key)])
        ),
        grpc.StatusCode.NOT_FOUND,
    )


def test_bad_payment_timestamp(stub, company):
    inv = finalized(stub, company)
    alloc = pb.PaymentAllocation(allocation=pb.Allocation(total_amount="1"))
    alloc.payment.paid_on_date.seconds = 10**13
    err = rpc_error(
        lambda: stub.RecordPayment(
            svc.RecordPaymentRequest(company_id=company, invoice_id=inv.id, payment_allocation=alloc)
        ),
        INV,
    )
    assert "payment_allocation.payment.paid_on_date" in violations(err)


def test_crafted_item_page_tokens(stub, company):
    inv = create(stub, company)
    for token in (
        base64.urlsafe_b64encode(json.dumps({"s": inv.id, "p": 10**12}).encode()).decode(),
        base64.urlsafe_b64encode(b"[" * 300).decode(),
        "A" * 100_000,
    ):
        err = rpc_error(
            partial(
                stub.ListInvoiceItems,
                svc.ListInvoiceItemsRequest(company_id=company, invoice_id=inv.id, page_token=token),
            ),
            INV,
        )
        assert "page_token" in violations(err)


def test_undecodable_request_bytes_are_invalid_argument(channel):
    raw = channel.unary_unary(
        "/invoices.v1.InvoiceService/GetInvoice", request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    # field 1 (company_id), a string with an invalid UTF-8 byte
    err = rpc_error(lambda: raw(b"\x0a\x02\xff\xfe"), INV)
    assert "request" in violations(err)
    nested = b"\x08\x00"
    for _ in range(200):
        nested = b"\x0a" + bytes([len(nested)]) + nested if len(nested) < 127 else nested
    rpc_error(lambda: raw(b"\x0a\x01x\x12\x04\xff\xff\xff\xff"), INV)


def test_refusals_before_the_handler_leave_failed_operations(stub, company, db):
    err = rpc_error(lambda: create(stub, company, invoice(lines=[line("1", "abc")])), INV)
    key = error_info(err).metadata["pushOperationKey"]
    row = db.fetch("SELECT status, operation, validation FROM push_operations WHERE push_operation_key = $1", key)[0]
    assert (row["status"], row["operation"]) == ("FAILED", "CreateInvoice")
    assert row["validation"]["errors"][0]["itemId"] == "invoice.line_items[0].unit_amount"
    rpc_error(lambda: stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company)), INV)
    rpc_error(lambda: create(stub, company, invoice(note="\x00")), INV)
    ops = db.fetch("SELECT operation FROM push_operations WHERE company_id = $1 AND status = 'FAILED'", company)
    assert sorted(r["operation"] for r in ops) == ["BatchCreateInvoices", "CreateInvoice", "CreateInvoice"]


def test_sequence_numbers_are_reserved_so_numbering_stays_gapless(stub, company):
    err = rpc_error(lambda: create(stub, company, invoice(invoice_number="INV-000001")), INV)
    assert "invoice.invoice_number" in violations(err)
    draft = create(stub, company, invoice(invoice_number="MANUAL-1"))
    patch = pb.Invoice(id=draft.id, invoice_number="INV-7")
    rpc_error(lambda: stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=patch)), INV)
    assert [finalized(stub, company).invoice_number for _ in range(2)] == ["INV-000001", "INV-000002"]


def test_batch_update_counts_line_items(stub, company):
    drafts = [create(stub, company) for _ in range(3)]
    reqs = [
        svc.UpdateInvoiceRequest(
            invoice=pb.Invoice(id=d.id, line_items=[line()] * 400),
            update_mask=field_mask_pb2.FieldMask(paths=["line_items"]),
        )
        for d in drafts
    ]
    err = rpc_error(
        lambda: stub.BatchUpdateInvoices(svc.BatchUpdateInvoicesRequest(company_id=company, requests=reqs)), INV
    )
    assert "1000 line items" in violations(err)["requests"]


def test_invoice_level_percentages_are_applied(stub, company):
    out = create(
        stub,
        company,
        invoice(
            lines=[line("1", "100"), line("1", "100", discount_amount="5")],
            discount_percentage="10",
            additional_tax_percentage="20",
        ),
    )
    assert out.line_items[0].discount_amount == "10.00" and out.line_items[1].discount_amount == "5.00"
    assert out.sub_total == "185.00" and out.additional_tax_amount == "37.00"
    assert Decimal(out.total_amount) == Decimal("222")
    err = rpc_error(
        lambda: create(stub, company, invoice(additional_tax_percentage="20", additional_tax_amount="1")), INV
    )
    assert "invoice.additional_tax_amount" in violations(err)


def test_void_is_terminal_but_annotatable(stub, company):
    inv = finalized(stub, company)
    stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id))
    noted = stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=pb.Invoice(id=inv.id, note="why")))
    assert noted.invoice.note == "why"
    patch = pb.Invoice(id=inv.id, due_date="2031-01-01")
    rpc_error(
        lambda: stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=patch)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


def test_year_one_formats_as_iso(stub, company):
    out = create(stub, company, invoice(due_date="0001-01-01T00:00:00Z"))
    assert out.due_date == "0001-01-01T00:00:00Z"
