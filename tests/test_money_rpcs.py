"""Money exact to the currency (issue 13) through the real server: gRPC, PostgreSQL, the PDF and the vendor
exports, as an accounts-receivable user would try it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from functools import partial
from pathlib import Path

import grpc
from google.protobuf import field_mask_pb2
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from pypdf import PdfReader

from tests.conftest import ServerThread
from tests.helpers import create, finalized, invoice, line, pay, rpc_error, violations

INV = grpc.StatusCode.INVALID_ARGUMENT
ROOT = Path(__file__).resolve().parents[1]


def vat(rate: str) -> pb.TaxationItem:
    return pb.TaxationItem(name="VAT", tax_rate=rate)


def _pdf_text(stub: svc_grpc.InvoiceServiceStub, company: str, invoice_id: str) -> str:
    data = b"".join(
        m.chunk
        for m in stub.DownloadInvoicePdf(svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=invoice_id))
    )
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_3_x_1999_at_21_percent_is_7256_and_paying_it_settles(stub, company):
    inv = finalized(stub, company, invoice(lines=[line("3", "19.99", taxation_items=[vat("21")])]))
    assert (inv.sub_total, inv.total_tax_amount, inv.total_amount, inv.amount_due) == (
        "59.97",
        "12.59",
        "72.56",
        "72.56",
    )
    assert inv.line_items[0].taxation_items[0].tax_amount == "12.59"
    assert [(b.category, b.tax_rate, b.taxable_amount, b.tax_amount) for b in inv.tax_breakdown] == [
        ("VAT", "21", "59.97", "12.59")
    ]
    assert (inv.rounding_mode, inv.tax_rounding_mode) == (pb.ROUNDING_MODE_HALF_UP, pb.TAX_ROUNDING_MODE_LINE)
    # The PDF and every vendor export show the same digits as the API.
    assert "72.56 USD" in _pdf_text(stub, company, inv.id)
    for vendor in (svc.VENDOR_CODAT, svc.VENDOR_FLEXPRICE, svc.VENDOR_ZUORA):
        text = stub.ExportInvoice(svc.ExportInvoiceRequest(company_id=company, invoice_id=inv.id, vendor=vendor))
        assert "72.56" in text.invoice_json and "12.59" in text.invoice_json and "12.5937" not in text.invoice_json
    paid = pay(stub, company, inv.id, "72.56").invoice
    assert paid.status == pb.INVOICE_STATUS_PAID and paid.amount_due == "0.00"


def test_each_exponent_on_the_wire(stub, company):
    jpy = create(stub, company, invoice(currency="JPY", lines=[line("1", "552", taxation_items=[vat("20")])]))
    assert (jpy.total_tax_amount, jpy.total_amount, jpy.amount_due) == ("110", "662", "662")
    kwd = create(stub, company, invoice(currency="KWD", lines=[line("1", "0.9", taxation_items=[vat("12.1")])]))
    assert (kwd.total_tax_amount, kwd.total_amount) == ("0.109", "1.009")
    clf = create(stub, company, invoice(currency="CLF", lines=[line("1", "1.23456")]))
    assert clf.total_amount == "1.2346" and clf.line_items[0].unit_amount == "1.23456"  # the price keeps its digits
    xau = create(stub, company, invoice(currency="XAU", lines=[line("1", "1.123456789")]))
    assert xau.total_amount == "1.123456789"  # no minor unit: never rounded


def test_amounts_beyond_the_currency_are_refused_naming_the_field(stub, company, db):
    before = db.snapshot(company)
    cases = {
        "invoice.total_amount": invoice(currency="KWD", lines=[], total_amount="1.0001"),
        "invoice.line_items[0].discount_amount": invoice(lines=[line("1", "10", discount_amount="0.001")]),
        "invoice.line_items[0].taxation_items[0].tax_amount": invoice(
            currency="JPY", lines=[line("1", "100", taxation_items=[pb.TaxationItem(tax_amount="10.5")])]
        ),
    }
    for field, inv in cases.items():
        err = rpc_error(partial(create, stub, company, inv), INV)
        assert field in violations(err), violations(err)
    assert db.snapshot(company) == before  # refused: nothing stored
    posted = finalized(stub, company)
    before = db.snapshot(company)
    err = rpc_error(lambda: pay(stub, company, posted.id, "10.005"), INV)
    assert "payment_allocation.allocation.total_amount" in violations(err)
    err = rpc_error(
        lambda: stub.AddCustomerCredit(
            svc.AddCustomerCreditRequest(company_id=company, customer_id="c", currency="JPY", amount="1.5")
        ),
        INV,
    )
    assert "amount" in violations(err)
    assert db.snapshot(company) == before


def test_client_totals_must_be_exact_no_tolerance(stub, company):
    lines = [line("3", "19.99", taxation_items=[vat("21")])]
    err = rpc_error(lambda: create(stub, company, invoice(lines=lines, total_amount="72.57")), INV)
    assert "invoice.total_amount" in violations(err)  # within 0.01 used to be accepted and replaced
    err = rpc_error(lambda: create(stub, company, invoice(lines=[], sub_total="100", total_tax_amount="21",
                                                           total_amount="121.01")), INV)  # fmt: skip
    assert "invoice.total_amount" in violations(err)
    ok = create(stub, company, invoice(lines=lines, total_amount="72.56", total_tax_amount="12.59"))
    assert ok.total_amount == "72.56"


def test_a_client_rounding_per_rate_declares_it(stub, company):
    lines = [line("1", "0.99", taxation_items=[vat("21")]) for _ in range(100)]
    err = rpc_error(lambda: create(stub, company, invoice(lines=lines, total_tax_amount="20.79")), INV)
    assert "invoice.total_tax_amount" in violations(err)  # the default LINE mode gives 21.00
    doc = create(stub, company, invoice(lines=lines, total_tax_amount="20.79",
                                        tax_rounding_mode=pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE))  # fmt: skip
    assert doc.total_tax_amount == "20.79" and doc.tax_rounding_mode == pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE
    assert sum(Decimal(x.tax_amount) for x in doc.line_items) == Decimal("20.79")
    read = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=doc.id)).invoice
    assert (
        read.tax_rounding_mode == pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE and read.tax_breakdown[0].tax_amount == "20.79"
    )


def test_fx_payment_is_rounded_and_its_rate_kept(stub, company):
    inv = finalized(stub, company, invoice(currency="EUR", lines=[line("1", "100")]))
    out = pay(stub, company, inv.id, "50", currency="USD", rate="0.923456").invoice
    a = out.payment_allocations[0]
    assert a.applied_amount == "46.17" and out.amount_due == "53.83" and out.status == pb.INVOICE_STATUS_PARTIALLY_PAID
    fx = a.fx_conversion
    assert (fx.from_currency, fx.to_currency, fx.rate, fx.converted_amount) == ("USD", "EUR", "0.923456", "46.17")
    assert fx.HasField("rate_date")
    rest = pay(stub, company, inv.id, out.amount_due).invoice
    assert rest.status == pb.INVOICE_STATUS_PAID and rest.amount_due == "0.00"


def test_cash_rounding_is_shown_separately(stub, company):
    inv = finalized(stub, company, invoice(currency="CHF", lines=[line("1", "10.02")], cash_rounding_increment="0.05"))
    assert (inv.total_amount, inv.cash_rounding_amount, inv.payable_amount, inv.amount_due) == (
        "10.02", "-0.02", "10.00", "10.00"
    )  # fmt: skip
    assert "-0.02 CHF" in _pdf_text(stub, company, inv.id)
    paid = pay(stub, company, inv.id, "10.00").invoice
    assert paid.status == pb.INVOICE_STATUS_PAID and paid.amount_due == "0.00"


def test_write_off_leaves_exactly_zero(stub, company):
    inv = finalized(stub, company, invoice(lines=[line("3", "19.99", taxation_items=[vat("21")])]))
    pay(stub, company, inv.id, "50")
    resp = stub.WriteOffInvoice(svc.WriteOffInvoiceRequest(company_id=company, invoice_id=inv.id))
    assert resp.credit_memo.total_amount == "22.56" and resp.invoice.amount_due == "0.00"


def test_company_defaults_apply_to_new_invoices(database_url, company):
    env = {**os.environ, "DATABASE_URL": database_url}
    cli = [sys.executable, "-m", "service", "money-defaults", "--company", company]
    out = subprocess.run([*cli, "--rounding", "HALF_EVEN", "--tax-mode", "DOCUMENT_PER_RATE"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "HALF_EVEN" in out.stdout and "DOCUMENT_PER_RATE" in out.stdout
    srv = ServerThread(database_url).start()  # a process started after the change reads it at once
    try:
        with grpc.insecure_channel(srv.address) as channel:
            stub = svc_grpc.InvoiceServiceStub(channel)
            inv = create(stub, company, invoice(lines=[line("1", "105", taxation_items=[vat("10")])], currency="JPY"))
            assert (inv.rounding_mode, inv.tax_rounding_mode) == (
                pb.ROUNDING_MODE_HALF_EVEN, pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE
            )  # fmt: skip
            assert inv.total_tax_amount == "10"  # 10.5 half-even
            own = create(stub, company, invoice(lines=[line("1", "105", taxation_items=[vat("10")])], currency="JPY",
                                                rounding_mode=pb.ROUNDING_MODE_HALF_UP))  # fmt: skip
            assert own.total_tax_amount == "11" and own.tax_rounding_mode == pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE
            other = create(stub, f"{company}-other", invoice())
            assert other.rounding_mode == pb.ROUNDING_MODE_HALF_UP
    finally:
        srv.stop()
    shown = subprocess.run(cli, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "HALF_EVEN" in shown.stdout


def test_vendor_import_in_its_own_rounding_round_trips(stub, company):
    payload = {
        "customerRef": {"id": "c1"}, "currency": "USD", "status": "Submitted", "invoiceNumber": f"V-{company}",
        "lineItems": [{"quantity": 1, "unitAmount": 0.25, "discountPercentage": 10, "discountAmount": 0.02,
                       "subTotal": 0.23, "taxAmount": 0, "totalAmount": 0.23}],
        "subTotal": 0.23, "totalDiscount": 0.02, "totalTaxAmount": 0, "totalAmount": 0.23, "amountDue": 0.23,
    }  # fmt: skip
    made = stub.ImportInvoice(
        svc.ImportInvoiceRequest(company_id=company, vendor=svc.VENDOR_CODAT, invoice_json=json.dumps(payload))
    ).invoice
    assert made.rounding_mode == pb.ROUNDING_MODE_HALF_EVEN and made.total_amount == "0.23"
    back = stub.ExportInvoice(svc.ExportInvoiceRequest(company_id=company, invoice_id=made.id, vendor=svc.VENDOR_CODAT))
    out = json.loads(back.invoice_json, parse_float=Decimal)
    for key in ("subTotal", "totalDiscount", "totalAmount", "amountDue"):
        assert out[key] == Decimal(str(payload[key])), key
    assert out["lineItems"][0]["discountAmount"] == Decimal("0.02")


def test_payment_status_amount_beyond_the_currency_names_amount(stub, company, db):
    inv = finalized(stub, company)
    before = db.snapshot(company)
    request = svc.UpdatePaymentStatusRequest(
        company_id=company, invoice_id=inv.id, payment_status=pb.PAYMENT_STATUS_SUCCEEDED, amount="30.001"
    )
    err = rpc_error(lambda: stub.UpdatePaymentStatus(request), INV)
    assert "amount" in violations(err)
    assert db.snapshot(company) == before


def test_taxation_item_amount_beyond_the_currency_names_the_request_field(stub, company):
    draft = create(stub, company, invoice(currency="JPY", lines=[line("1", "100")]))
    item = pb.TaxationItem(line_item_id=draft.line_items[0].id, name="VAT", tax_amount="10.5")
    request = svc.CreateTaxationItemsRequest(company_id=company, invoice_id=draft.id, taxation_items=[item])
    err = rpc_error(lambda: stub.CreateTaxationItems(request), INV)
    assert "taxation_items[0].tax_amount" in violations(err)
    rate = pb.TaxationItem(line_item_id=draft.line_items[0].id, name="VAT", tax_rate="10")
    ok = stub.CreateTaxationItems(
        svc.CreateTaxationItemsRequest(company_id=company, invoice_id=draft.id, taxation_items=[rate])
    )
    assert ok.invoice.total_tax_amount == "10" and ok.taxation_items[0].tax_amount == "10"


def test_changing_a_drafts_discount_percentage_reprices_the_lines_inheriting_it(stub, company):
    """The invoice's percentage is copied onto the lines it applies to; a new one must reach them too."""
    lines = [line("1", "100"), line("1", "50", discount_percentage="5")]
    draft = create(stub, company, invoice(lines=lines, discount_percentage="10"))
    assert (draft.total_discount, draft.total_amount) == ("12.50", "137.50")
    mask = field_mask_pb2.FieldMask(paths=["discount_percentage"])
    patch = pb.Invoice(id=draft.id, discount_percentage="20")
    out = stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=patch, update_mask=mask)).invoice
    assert (out.total_discount, out.total_amount) == ("22.50", "127.50")
    assert [li.discount_amount for li in out.line_items] == ["20.00", "2.50"]
    stored = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=draft.id)).invoice
    assert (stored.discount_percentage, stored.total_amount, stored.amount_due) == ("20", "127.50", "127.50")
