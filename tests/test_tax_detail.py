"""Tax detail (issue 16 items 3, 4 and 9): EN 16931 tax categories with exemption reasons, invoice-level
allowances and charges, line charges, the tax breakdown by (category, rate) and the PDF, through the real
server (gRPC, PostgreSQL)."""

from __future__ import annotations

import io
from decimal import Decimal
from functools import partial

import grpc
from google.protobuf import field_mask_pb2
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from pypdf import PdfReader

from tests.helpers import create, finalized, invoice, line, pay, rpc_error, violations

INV = grpc.StatusCode.INVALID_ARGUMENT
AE, OUT, S = "VATEX-EU-AE", pb.TAX_CATEGORY_O, pb.TAX_CATEGORY_S


def vat(rate: str, category: int = pb.TAX_CATEGORY_S, **kw: object) -> pb.TaxationItem:
    return pb.TaxationItem(name="VAT", tax_rate=rate, tax_category=category, **kw)  # type: ignore[arg-type]


def allowance(amount: str = "", **kw: object) -> pb.AllowanceCharge:
    return pb.AllowanceCharge(amount=amount, **kw)  # type: ignore[arg-type]


def charge(amount: str = "", **kw: object) -> pb.AllowanceCharge:
    return pb.AllowanceCharge(charge=True, amount=amount, **kw)  # type: ignore[arg-type]


def breakdown(inv: pb.Invoice) -> list[tuple[str, int, str, str, str, str, str]]:
    return [
        (b.category, b.tax_category, b.tax_rate, b.taxable_amount, b.tax_amount, b.exemption_reason,
         b.exemption_reason_code)
        for b in inv.tax_breakdown
    ]  # fmt: skip


def get(stub, company: str, invoice_id: str) -> pb.Invoice:
    out: pb.Invoice = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=invoice_id)).invoice
    return out


def pdf_text(stub, company: str, invoice_id: str) -> str:
    data = b"".join(
        m.chunk
        for m in stub.DownloadInvoicePdf(svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=invoice_id))
    )
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


MIXED = invoice(
    lines=[
        line("2", "50.00", description="Consulting", taxation_items=[vat("20")]),
        line(
            "1",
            "40.00",
            description="Export goods",
            taxation_items=[vat("0", pb.TAX_CATEGORY_G, exemption_reason_code="VATEX-EU-G")],
        ),
        line(
            "1",
            "30.00",
            description="Reverse charged",
            taxation_items=[vat("0", pb.TAX_CATEGORY_AE, exemption_reason="Reverse charge", exemption_reason_code=AE)],
        ),
        line("1", "10.00", description="Outside scope", taxation_items=[vat("", OUT, exemption_reason="Not subject")]),
    ],
    allowance_charges=[
        allowance("10.00", reason="Loyalty discount", reason_code="95", tax_category=pb.TAX_CATEGORY_S, tax_rate="20"),
        charge(percentage="5", base_amount="40.00", reason="Freight", reason_code="FC", tax_category=pb.TAX_CATEGORY_G,
               tax_rate="0"),
    ],
)  # fmt: skip


def test_categories_exemptions_allowances_and_charges_stored_and_broken_down(stub, company):
    inv = create(stub, company, MIXED)
    # lines 100 + 40 + 30 + 10 = 180; - 10 allowance + 2 charge (5% of 40) = 172; tax 20% of (100 - 10) = 18
    assert (inv.sub_total, inv.total_discount, inv.total_tax_amount, inv.total_amount, inv.amount_due) == (
        "172.00", "10.00", "18.00", "190.00", "190.00",
    )  # fmt: skip
    assert (inv.allowance_total_amount, inv.charge_total_amount) == ("10.00", "2.00")
    assert [(a.amount, a.tax_amount, a.reason_code) for a in inv.allowance_charges] == [
        ("10.00", "-2.00", "95"),
        ("2.00", "0.00", "FC"),
    ]
    expect = [
        ("S", pb.TAX_CATEGORY_S, "20", "90.00", "18.00", "", ""),
        ("G", pb.TAX_CATEGORY_G, "0", "42.00", "0.00", "", "VATEX-EU-G"),
        ("AE", pb.TAX_CATEGORY_AE, "0", "30.00", "0.00", "Reverse charge", "VATEX-EU-AE"),
        ("O", pb.TAX_CATEGORY_O, "", "10.00", "0.00", "Not subject", ""),
    ]
    assert breakdown(inv) == expect
    assert sum(Decimal(b.tax_amount) for b in inv.tax_breakdown) == Decimal(inv.total_tax_amount)
    read = get(stub, company, inv.id)  # stored and read back as created
    assert breakdown(read) == expect and list(read.allowance_charges) == list(inv.allowance_charges)
    item = read.line_items[2].taxation_items[0]
    assert (item.tax_category, item.exemption_reason, item.exemption_reason_code) == (
        pb.TAX_CATEGORY_AE, "Reverse charge", "VATEX-EU-AE",
    )  # fmt: skip
    items = stub.ListTaxationItems(
        svc.ListTaxationItemsRequest(company_id=company, invoice_id=inv.id, line_item_id=read.line_items[1].id)
    )
    assert [(t.tax_category, t.exemption_reason_code) for t in items.taxation_items] == [
        (pb.TAX_CATEGORY_G, "VATEX-EU-G")
    ]
    # PreviewInvoice prices the same without storing.
    preview = stub.PreviewInvoice(svc.PreviewInvoiceRequest(company_id=company, invoice=MIXED)).invoice
    assert breakdown(preview) == expect and preview.total_amount == "190.00"
    # Finalized and paid to exactly zero.
    done = stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
    paid = pay(stub, company, done.id, "190.00").invoice
    assert (paid.status, paid.amount_due, paid.amount_paid) == (pb.INVOICE_STATUS_PAID, "0.00", "190.00")
    assert breakdown(paid) == expect
    text = pdf_text(stub, company, inv.id)
    for shown in ("Tax breakdown", "VATEX-EU-AE Reverse charge", "Loyalty discount (95)", "-10.00 USD", "Freight"):
        assert shown in text, shown


def test_invalid_combinations_refused_naming_the_field_nothing_stored(stub, company, db):
    before = db.snapshot(company)
    cases = {
        "invoice.line_items[0].taxation_items[1].tax_category": invoice(
            lines=[line("1", "10", taxation_items=[vat("20"), vat("20", 42)])]
        ),
        "invoice.line_items[0].taxation_items[0].tax_rate": invoice(lines=[line("1", "10", taxation_items=[vat("0")])]),
        "invoice.line_items[0].taxation_items[0].exemption_reason": invoice(
            lines=[line("1", "10", taxation_items=[vat("0", pb.TAX_CATEGORY_E)])]
        ),
        "invoice.line_items[0].taxation_items[0].exemption_reason_code": invoice(
            lines=[line("1", "10", taxation_items=[vat("20", exemption_reason_code="VATEX-EU-AE")])]
        ),
        "invoice.allowance_charges[0].tax_rate": invoice(
            allowance_charges=[allowance("1.00", tax_category=pb.TAX_CATEGORY_S)]
        ),
        "invoice.allowance_charges[0].amount": invoice(allowance_charges=[allowance("1.001")]),
        "invoice.allowance_charges[0].percentage": invoice(allowance_charges=[allowance(percentage="101")]),
        "invoice.allowance_charges[0].tax_category": invoice(allowance_charges=[allowance("1", tax_category=99)]),
        "invoice.allowance_charges": invoice(lines=[], total_amount="10.00", allowance_charges=[allowance("1")]),
        "invoice.sub_total": invoice(sub_total="100.00", allowance_charges=[allowance("1.00")]),
        "invoice.line_items[0].charge_amount": invoice(
            lines=[line("1", "10", charge_amount="1.00", charge_percentage="20")]
        ),
    }
    for field, inv in cases.items():
        err = rpc_error(partial(create, stub, company, inv), INV)
        assert field in violations(err), (field, violations(err))
    assert db.snapshot(company) == before


def test_line_charges_and_a_percentage_allowance_in_the_totals(stub, company):
    inv = create(
        stub,
        company,
        invoice(
            lines=[
                line("1", "200.00", charge_percentage="10", charge_reason="Express", charge_reason_code="ABK",
                     taxation_items=[vat("10")]),
                line("1", "100.00", discount_percentage="10", taxation_items=[vat("10")]),
            ],
            allowance_charges=[allowance(percentage="5", reason="Volume", tax_category=S, tax_rate="10")],
        ),
    )  # fmt: skip
    first = inv.line_items[0]
    assert (first.charge_amount, first.sub_total, first.tax_amount, first.charge_reason_code) == (
        "20.00", "220.00", "22.00", "ABK",
    )  # fmt: skip
    # lines 220 + 90 = 310; allowance 5% of 310 = 15.50; tax 22 + 9 - 1.55 = 29.45
    assert (inv.sub_total, inv.total_discount, inv.total_tax_amount, inv.total_amount) == (
        "294.50", "25.50", "29.45", "323.95",
    )  # fmt: skip
    assert inv.allowance_charges[0].amount == "15.50" and inv.allowance_charges[0].base_amount == ""
    assert breakdown(inv) == [("S", pb.TAX_CATEGORY_S, "10", "294.50", "29.45", "", "")]
    # Editable on a draft: the percentage allowance follows the changed lines; RecalculateInvoice recomputes.
    patch = pb.Invoice(id=inv.id, line_items=[line("1", "100.00", taxation_items=[vat("10")])], etag=inv.etag)
    mask = field_mask_pb2.FieldMask(paths=["line_items"])
    upd = stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=patch, update_mask=mask)).invoice
    assert (upd.allowance_charges[0].amount, upd.sub_total, upd.total_tax_amount) == ("5.00", "95.00", "9.50")
    patch = pb.Invoice(id=inv.id, allowance_charges=[charge("10.00", tax_category=pb.TAX_CATEGORY_S, tax_rate="10")])
    mask = field_mask_pb2.FieldMask(paths=["allowance_charges"])
    upd = stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=patch, update_mask=mask)).invoice
    assert (upd.charge_total_amount, upd.allowance_total_amount, upd.sub_total, upd.total_amount) == (
        "10.00", "0.00", "110.00", "121.00",
    )  # fmt: skip
    again = stub.RecalculateInvoice(svc.RecalculateInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
    assert (again.total_amount, breakdown(again)) == (
        "121.00",
        [("S", pb.TAX_CATEGORY_S, "10", "110.00", "11.00", "", "")],
    )
    # Finalized: allowances and charges are locked like every other monetary field.
    done = stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
    patch = pb.Invoice(id=inv.id, allowance_charges=[allowance("1.00")])
    err = rpc_error(
        lambda: stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=patch, update_mask=mask)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "allowance_charges" in (err.details() or "")
    # Sending them back unchanged (a read-modify-write) is no change.
    same = pb.Invoice(id=inv.id, note="checked", allowance_charges=done.allowance_charges)
    mask = field_mask_pb2.FieldMask(paths=["allowance_charges", "note"])
    kept = stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=same, update_mask=mask)).invoice
    assert (kept.note, kept.total_amount, list(kept.allowance_charges)) == (
        "checked",
        "121.00",
        list(done.allowance_charges),
    )


def test_jpy_and_kwd_at_their_exponent_and_paid_to_zero(stub, company):
    jpy = finalized(
        stub,
        company,
        invoice(
            currency="JPY",
            lines=[line("3", "333", taxation_items=[vat("10")])],
            allowance_charges=[allowance(percentage="3", tax_category=pb.TAX_CATEGORY_S, tax_rate="10")],
        ),
    )
    # 999 x 3% = 29.97 -> 30 yen; tax 100 - 3
    assert (jpy.sub_total, jpy.allowance_total_amount, jpy.total_tax_amount, jpy.total_amount) == (
        "969", "30", "97", "1066",
    )  # fmt: skip
    assert breakdown(jpy) == [("S", pb.TAX_CATEGORY_S, "10", "969", "97", "", "")]
    assert pay(stub, company, jpy.id, "1066").invoice.amount_due == "0"
    kwd = finalized(
        stub,
        company,
        invoice(
            currency="KWD",
            lines=[line("1", "10.005", taxation_items=[vat("5")])],
            allowance_charges=[charge(percentage="1.5", tax_category=pb.TAX_CATEGORY_S, tax_rate="5")],
        ),
    )
    assert (kwd.sub_total, kwd.charge_total_amount, kwd.total_tax_amount, kwd.total_amount) == (
        "10.155", "0.150", "0.508", "10.663",
    )  # fmt: skip
    assert kwd.allowance_charges[0].tax_amount == "0.008"
    paid = pay(stub, company, kwd.id, "10.663").invoice
    assert (paid.status, paid.amount_due) == (pb.INVOICE_STATUS_PAID, "0.000")


def test_without_a_category_the_breakdown_is_as_before(stub, company):
    inv = create(
        stub, company, invoice(lines=[line("1", "10", taxation_items=[pb.TaxationItem(name="GST", tax_rate="5")])])
    )
    assert breakdown(inv) == [("GST", pb.TAX_CATEGORY_UNSPECIFIED, "5", "10.00", "0.50", "", "")]
    assert (inv.allowance_total_amount, inv.charge_total_amount) == ("0.00", "0.00")


def test_the_create_model_describes_the_tax_detail(stub, company):
    model = stub.GetInvoiceModel(svc.GetInvoiceModelRequest(company_id=company)).model
    ac = model.properties["allowanceCharges"].properties
    assert ac["amount"].type == ac["percentage"].type == ac["baseAmount"].type == svc.PUSH_OPTION_TYPE_NUMBER
    assert ac["charge"].type == svc.PUSH_OPTION_TYPE_BOOLEAN and "taxAmount" not in ac  # output only
    item = model.properties["lineItems"].properties["taxationItems"].properties
    assert [o.description for o in item["taxCategory"].options] == ["S", "Z", "E", "AE", "K", "G", "O", "L", "M"]
    assert item["exemptionReasonCode"].description
    assert model.properties["lineItems"].properties["chargeAmount"].type == svc.PUSH_OPTION_TYPE_NUMBER
    assert "allowanceTotalAmount" not in model.properties and "taxBreakdown" not in model.properties
