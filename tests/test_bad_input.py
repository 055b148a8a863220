"""Bad input of every kind: a clear status, field violations naming the field, and no change stored."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any, cast

import grpc
import pytest
from google.protobuf import field_mask_pb2
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from tests.helpers import create, finalized, invoice, line, pay, rpc_error, violations

INV = grpc.StatusCode.INVALID_ARGUMENT
BAD_DECIMALS = ["abc", "1,5", "1e5", "NaN", "nan", "Infinity", "-Infinity", "-", " 1", "1.", ".5", "0x10",
                "1.1234567891", "1" * 21, "\uff11\uff12"]  # fmt: skip


@pytest.mark.parametrize("raw", BAD_DECIMALS)
def test_malformed_decimals_are_refused_naming_the_field(stub, company, db, raw):
    before = db.snapshot(company)
    err = rpc_error(lambda: create(stub, company, invoice(lines=[line("1", raw)])), INV)
    assert "invoice.line_items[0].unit_amount" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(lines=[], total_amount=raw)), INV)
    assert "invoice.total_amount" in violations(err)
    assert db.snapshot(company) == before


def test_negative_quantities_and_out_of_range_rates(stub, company, db):
    err = rpc_error(lambda: create(stub, company, invoice(lines=[line("-1", "10")])), INV)
    assert "invoice.line_items[0].quantity" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(lines=[line("1", "10", discount_percentage="101")])), INV)
    assert "invoice.line_items[0].discount_percentage" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(currency_rate="-1")), INV)
    assert "invoice.currency_rate" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(lines=[line("1", "-50")])), INV)
    assert "invoice.total_amount" in violations(err)  # negative totals would break 0 <= amount_due <= total
    assert db.snapshot(company)["invoices"].startswith("0:")


def test_unknown_enum_numbers(stub, company):
    err = rpc_error(lambda: create(stub, company, invoice(status=cast(Any, 99))), INV)
    assert "invoice.status" in violations(err)
    err = rpc_error(
        lambda: create(stub, company, invoice(payment_status=cast(Any, 42), invoice_type=cast(Any, 7))), INV
    )
    assert {"invoice.payment_status", "invoice.invoice_type"} <= set(violations(err))
    err = rpc_error(
        lambda: create(
            stub,
            company,
            invoice(lines=[line(taxation_items=[pb.TaxationItem(tax_rate="1", tax_rate_type=cast(Any, 9))])]),
        ),
        INV,
    )
    assert "invoice.line_items[0].taxation_items[0].tax_rate_type" in violations(err)
    inv = finalized(stub, company)
    rpc_error(
        lambda: stub.UpdatePaymentStatus(
            svc.UpdatePaymentStatusRequest(company_id=company, invoice_id=inv.id, payment_status=cast(Any, 77))
        ),
        INV,
    )


def test_huge_strings(stub, company, db):
    # Over the 4 MB message limit: refused by the transport before any work.
    err = rpc_error(
        lambda: create(stub, company, invoice(note="x" * (10 * 1024 * 1024))),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert err.details()
    err = rpc_error(lambda: create(stub, company, invoice(note="x" * 100_000)), INV)
    assert "10000 characters" in violations(err)["invoice.note"]
    err = rpc_error(lambda: create(stub, company, invoice(customer="c" * 1000)), INV)
    assert "invoice.customer_ref.id" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(metadata={f"k{i}": "v" for i in range(60)})), INV)
    assert "invoice.metadata" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(note="bad\x00byte")), INV)
    assert "invoice.note" in violations(err)
    assert db.snapshot(company)["invoices"].startswith("0:")


def test_missing_required_fields(stub, company):
    err = rpc_error(lambda: stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company)), INV)
    assert "invoice" in violations(err)
    err = rpc_error(
        lambda: stub.CreateInvoice(
            svc.CreateInvoiceRequest(company_id=company, invoice=pb.Invoice(line_items=[pb.LineItem()]))
        ),
        INV,
    )
    assert {
        "invoice.customer_ref.id",
        "invoice.currency",
        "invoice.line_items[0].quantity",
        "invoice.line_items[0].unit_amount",
    } <= set(violations(err))
    err = rpc_error(lambda: stub.CreateInvoice(svc.CreateInvoiceRequest(invoice=invoice())), INV)
    assert "company_id" in violations(err)
    err = rpc_error(
        lambda: stub.CreateInvoice(svc.CreateInvoiceRequest(company_id="bad company!", invoice=invoice())),
        INV,
    )
    assert "company_id" in violations(err)
    for call in (stub.FinalizeInvoice, stub.VoidInvoice, stub.CancelInvoice, stub.DeleteInvoice):
        request_type = call._method.decode().rsplit("/", 1)[1] + "Request"
        err = rpc_error(partial(call, getattr(svc, request_type)(company_id=company)), INV)
        assert "invoice_id" in violations(err)


def test_bad_dates_and_currencies(stub, company):
    err = rpc_error(
        lambda: create(stub, company, invoice(issue_date="yesterday", due_date="2023-13-45", currency="usd1")),
        INV,
    )
    assert {"invoice.issue_date", "invoice.due_date", "invoice.currency"} <= set(violations(err))
    ok = create(stub, company, invoice(issue_date="2023-04-18T11:09:01-05:00", due_date="2023-05-01", currency="eur"))
    assert (ok.issue_date, ok.due_date, ok.currency) == (
        "2023-04-18T16:09:01Z",
        "2023-05-01T00:00:00Z",
        "EUR",
    )


@pytest.mark.parametrize("unknown", [str(uuid.uuid4()), "not-a-uuid", "'; DROP TABLE invoices; --"])
def test_unknown_ids_are_not_found_and_change_nothing(stub, company, db, unknown):
    create(stub, company)
    before = db.snapshot(company)
    calls = [
        lambda: stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=unknown)),
        lambda: stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_number=unknown)),
        lambda: stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=unknown)),
        lambda: stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=unknown)),
        lambda: stub.DeleteInvoice(svc.DeleteInvoiceRequest(company_id=company, invoice_id=unknown)),
        lambda: pay(stub, company, unknown, "1"),
        lambda: stub.UpdateInvoice(
            svc.UpdateInvoiceRequest(company_id=company, invoice=pb.Invoice(id=unknown, note="x"))
        ),
        lambda: stub.ListInvoiceApplications(
            svc.ListInvoiceApplicationsRequest(company_id=company, invoice_id=unknown)
        ),
    ]
    for call in calls:
        rpc_error(call, grpc.StatusCode.NOT_FOUND)
    assert db.snapshot(company) == before


def test_bad_update_changes_nothing(stub, company, db):
    inv = create(stub, company)
    before = db.snapshot(company)
    for patch, paths in (
        (pb.Invoice(id=inv.id, line_items=[line("x", "1")]), ["line_items"]),
        (pb.Invoice(id=inv.id, total_amount="1"), ["total_amount"]),
        (pb.Invoice(id=inv.id, currency="ZZZ"), ["currency"]),
        (pb.Invoice(id=inv.id, customer_ref=pb.CustomerRef()), ["customer_ref"]),
    ):
        err = rpc_error(
            partial(
                stub.UpdateInvoice,
                svc.UpdateInvoiceRequest(
                    company_id=company, invoice=patch, update_mask=field_mask_pb2.FieldMask(paths=paths)
                ),
            ),
            INV,
        )
        assert any(k.startswith("invoice.") for k in violations(err))
    assert db.snapshot(company) == before
