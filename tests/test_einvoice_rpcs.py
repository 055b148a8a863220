"""E-invoices end to end (issue 17): ExportInvoice / ExportCreditNote in UBL, CII and Factur-X, ValidateInvoice,
the company's requirement at finalization, and ImportInvoice of inbound UBL and CII, through gRPC against
PostgreSQL, every document checked by the real validators (XSD, CEN schematron) and factur-x's own reader."""

from __future__ import annotations

import io
from functools import partial
from typing import Any

import facturx
import grpc
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from invoices.v1 import company_profile_pb2 as cpb
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import party_pb2 as ppb
from lxml import etree
from pypdf import PdfReader

from service.einvoice.validation import Syntax, fatal, validate
from tests.helpers import create, finalized, invoice, line, pay, rich_status, rpc_error, violations

INVALID = grpc.StatusCode.INVALID_ARGUMENT
FAILED = grpc.StatusCode.FAILED_PRECONDITION
UBL, CII, FACTURX = pb.E_INVOICE_FORMAT_UBL, pb.E_INVOICE_FORMAT_CII, pb.E_INVOICE_FORMAT_FACTURX


def _profile(company: str, stub: Any, **kw: Any) -> None:
    profile = cpb.CompanyProfile(
        legal_name="Acme Widgets GmbH",
        address=ppb.PostalAddress(address_lines=["Hauptstr. 1"], city="Berlin", postal_code="10115", country_code="DE"),
        tax_registrations=[ppb.TaxRegistration(scheme="VAT", id="DE123456789")],
        contact=ppb.Contact(name="Billing", email="billing@acme.example", phone="+49 30 123456"),
        payment_terms=ppb.PaymentTerms(net_days=30, text="Net 30 days"),
        payment_means=ppb.PaymentMeans(iban="DE89370400440532013000", bic="COBADEFFXXX", account_name="Acme"),
        **kw,
    )
    paths = ["legal_name", "address", "tax_registrations", "contact", "payment_terms", "payment_means", *kw]
    stub.UpdateCompanyProfile(
        cpb.UpdateCompanyProfileRequest(
            company_id=company, profile=profile, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
    )


def _buyer() -> ppb.Party:
    return ppb.Party(
        name="Globex SARL",
        address=ppb.PostalAddress(
            address_lines=["1 rue de la Paix"], city="Paris", postal_code="75002", country_code="FR"
        ),
        tax_registrations=[ppb.TaxRegistration(scheme="VAT", id="FR12345678901")],
        contact=ppb.Contact(email="ap@globex.example"),
    )


def _vat(rate: str = "19") -> list[pb.TaxationItem]:
    return [pb.TaxationItem(name="VAT", tax_rate=rate, tax_category=pb.TAX_CATEGORY_S)]


def _invoice(**kw: Any) -> pb.Invoice:
    lines = [
        line("2", "15.00", description="Widget", taxation_items=_vat()),
        line("1", "70.00", description="Service", taxation_items=_vat("7")),
    ]
    kw.setdefault("buyer", _buyer())
    return invoice(currency="EUR", lines=lines, purchase_order_reference="PO-4711", **kw)


def _export(stub: Any, company: str, invoice_id: str, fmt: Any) -> svc.ExportInvoiceResponse:
    out: svc.ExportInvoiceResponse = stub.ExportInvoice(
        svc.ExportInvoiceRequest(company_id=company, invoice_id=invoice_id, format=fmt)
    )
    return out


def _rules(err: grpc.RpcError) -> list[str]:
    for detail in rich_status(err).details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            pre = error_details_pb2.PreconditionFailure()
            detail.Unpack(pre)
            return [v.type for v in pre.violations]
    raise AssertionError("no PreconditionFailure")


def _text(root: Any, xpath: str) -> list[str]:
    return [str(x) for x in root.xpath(xpath)]


def test_ubl_and_cii_exports_are_valid_and_carry_the_invoice(stub, company):
    _profile(company, stub)
    inv = finalized(stub, company, _invoice())
    for fmt, syntax in ((UBL, Syntax.UBL), (CII, Syntax.CII)):
        out = _export(stub, company, inv.id, fmt)
        assert out.content_type == "application/xml" and out.file_name == f"invoice-{inv.invoice_number}.xml"
        xml = out.invoice_xml.encode()
        assert fatal(validate(syntax, xml)) == []  # the real XSD and CEN schematron
        root = etree.fromstring(xml)
        texts = " ".join(str(t) for t in root.itertext())
        expected_texts = (inv.invoice_number, "Acme Widgets GmbH", "DE123456789", "Globex SARL", "FR12345678901")
        for expected in (*expected_texts, "PO-4711", "DE89370400440532013000", inv.total_amount, inv.total_tax_amount):
            assert expected in texts, (fmt, expected)
    ubl = etree.fromstring(_export(stub, company, inv.id, UBL).invoice_xml.encode())
    assert _text(ubl, "/*/*[local-name()='CustomizationID']/text()") == [
        "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
    ]


def test_a_draft_is_not_exported_but_validated_as_its_finalization_would_issue_it(stub, company):
    draft = create(stub, company, _invoice())
    err = rpc_error(lambda: _export(stub, company, draft.id, UBL), FAILED)
    assert "DRAFT" in str(err.details())
    # No profile yet: the seller has no address and no VAT id.
    check = stub.ValidateInvoice(svc.ValidateInvoiceRequest(company_id=company, invoice_id=draft.id))
    assert not check.valid
    fatal_rules = {(f.rule_id, f.format) for f in check.findings if f.severity == svc.E_INVOICE_FINDING_SEVERITY_FATAL}
    assert ("BR-S-02", UBL) in fatal_rules and ("BR-S-02", CII) in fatal_rules
    assert any(f.field == "seller.tax_registrations[scheme=VAT].id" for f in check.findings)
    assert check.findings[0].severity == svc.E_INVOICE_FINDING_SEVERITY_FATAL  # fatal first
    _profile(company, stub)
    check = stub.ValidateInvoice(svc.ValidateInvoiceRequest(company_id=company, invoice_id=draft.id, format=CII))
    assert check.valid, [f.message for f in check.findings]
    assert {f.format for f in check.findings} <= {CII}
    after = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=draft.id)).invoice
    assert after.status == pb.INVOICE_STATUS_DRAFT and not after.invoice_number  # nothing changed


def test_an_invalid_invoice_is_never_exported_and_the_rules_are_listed(stub, company):
    inv = finalized(stub, company, _invoice())  # no profile: no seller VAT id, no seller address
    for fmt in (UBL, CII, FACTURX):
        err = rpc_error(partial(_export, stub, company, inv.id, fmt), FAILED)
        rules = _rules(err)
        assert "BR-S-02" in rules and "BR-08" in rules, rules


def test_finalization_can_require_a_valid_e_invoice(stub, company):
    _profile(company, stub)
    stub.UpdateCompanyProfile(
        cpb.UpdateCompanyProfileRequest(
            company_id=company,
            profile=cpb.CompanyProfile(required_e_invoice_format=UBL),
            update_mask=field_mask_pb2.FieldMask(paths=["required_e_invoice_format"]),
        )
    )
    got = stub.GetCompanyProfile(cpb.GetCompanyProfileRequest(company_id=company)).profile
    assert got.required_e_invoice_format == UBL
    # A buyer without an address cannot receive an EN 16931 invoice (BR-10).
    draft = create(stub, company, _invoice(buyer=ppb.Party(name="No Address Ltd")))
    err = rpc_error(
        lambda: stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=draft.id)), FAILED
    )
    assert "BR-10" in _rules(err)
    after = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=draft.id)).invoice
    assert after.status == pb.INVOICE_STATUS_DRAFT
    good = finalized(stub, company, _invoice())
    assert good.status == pb.INVOICE_STATUS_SUBMITTED


def test_facturx_embeds_the_cii_export_in_a_pdf_a3(stub, company):
    _profile(company, stub)
    inv = finalized(stub, company, _invoice())
    out = _export(stub, company, inv.id, FACTURX)
    assert out.content_type == "application/pdf" and out.file_name == f"invoice-{inv.invoice_number}.pdf"
    cii = _export(stub, company, inv.id, CII).invoice_xml.encode()
    name, embedded = facturx.get_xml_from_pdf(out.invoice_pdf, check_xsd=True)
    assert name == "factur-x.xml" and embedded == cii
    streamed = b"".join(
        m.chunk
        for m in stub.DownloadInvoicePdf(
            svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=inv.id, format=FACTURX)
        )
    )
    assert facturx.get_xml_from_pdf(streamed)[1] == cii
    assert inv.invoice_number in "".join(p.extract_text() for p in PdfReader(io.BytesIO(streamed)).pages)
    err = rpc_error(
        lambda: list(
            stub.DownloadInvoicePdf(svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=inv.id, format=UBL))
        ),
        INVALID,
    )
    assert "format" in violations(err)


def test_vendor_and_format_together_are_refused(stub, company):
    inv = finalized(stub, company, _invoice())
    err = rpc_error(
        lambda: stub.ExportInvoice(
            svc.ExportInvoiceRequest(company_id=company, invoice_id=inv.id, vendor=svc.VENDOR_CODAT, format=UBL)
        ),
        INVALID,
    )
    assert "vendor" in violations(err)
    err = rpc_error(lambda: _export(stub, company, inv.id, 42), INVALID)
    assert "format" in violations(err)


def _import(stub: Any, company: str, xml: str, fmt: Any) -> svc.ImportInvoiceResponse:
    out: svc.ImportInvoiceResponse = stub.ImportInvoice(
        svc.ImportInvoiceRequest(company_id=company, format=fmt, invoice_xml=xml)
    )
    return out


def _supplier(company: str, stub: Any) -> None:
    """A supplier whose numbers are not of the importing company's form (those are its own to give)."""
    _profile(
        company,
        stub,
        invoice_numbering=cpb.NumberFormat(prefix="ACME-", width=4),
        credit_note_numbering=cpb.NumberFormat(prefix="ACME-CN-", width=4),
    )


def test_an_inbound_e_invoice_imports_as_issued_and_exports_the_same_terms(stub, company):
    _supplier(company, stub)
    inv = finalized(stub, company, _invoice())
    pay(stub, company, inv.id, "20.00")
    for fmt in (UBL, CII):
        xml = _export(stub, company, inv.id, fmt).invoice_xml
        other = f"{company}-in{fmt}"
        got = _import(stub, other, xml, fmt).invoice
        assert got.invoice_number == inv.invoice_number
        assert got.status == pb.INVOICE_STATUS_PARTIALLY_PAID
        assert (got.total_amount, got.total_tax_amount, got.amount_due) == (
            inv.total_amount,
            inv.total_tax_amount,
            "90.60",
        )
        assert got.seller.name == "Acme Widgets GmbH" and got.buyer.name == "Globex SARL"
        again = _export(stub, other, got.id, fmt).invoice_xml
        assert fatal(validate(Syntax.UBL if fmt == UBL else Syntax.CII, again.encode())) == []


def test_broken_inbound_documents_are_invalid_argument_and_store_nothing(stub, company, db):
    _supplier(company, stub)
    inv = finalized(stub, company, _invoice())
    good = _export(stub, company, inv.id, UBL).invoice_xml
    other = f"{company}-x"
    cases = {
        "not xml": "this is not <xml",
        "another root": "<Order xmlns='urn:example'/>",
        "cii given as ubl": _export(stub, company, inv.id, CII).invoice_xml,
        "entities": '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbbbbbb"><!ENTITY c "&b;&b;&b;&b;">]><a>&c;</a>',
        "deep": "<a>" * 5000 + "</a>" * 5000,
        "totals that do not add up": good.replace(
            f">{inv.total_amount}</cbc:TaxInclusiveAmount>", ">999.99</cbc:TaxInclusiveAmount>"
        ),
    }
    for name, xml in cases.items():
        err = rpc_error(partial(_import, stub, other, xml, UBL), INVALID)
        fields = violations(err)
        assert fields and all(f.startswith("invoice_xml") for f in fields), (name, fields)
        if name == "totals that do not add up":
            assert any("[BR-CO-15]" in d for d in fields.values()), fields
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", other)[0]["n"] == 0


def test_credit_notes_export_valid_and_import_against_their_invoice(stub, company):
    _supplier(company, stub)
    inv = finalized(stub, company, _invoice())
    note = stub.CreateCreditNote(
        svc.CreateCreditNoteRequest(
            company_id=company,
            invoice_id=inv.id,
            lines=[
                svc.CreditNoteLineInput(
                    unit_amount="15.00",
                    quantity="1",
                    description="Widget",
                    tax_rate="19",
                    invoice_line_item_id=inv.line_items[0].id,
                )
            ],
            reason="returned",
        )
    ).credit_note
    err = rpc_error(
        lambda: stub.ExportCreditNote(
            svc.ExportCreditNoteRequest(company_id=company, credit_note_id=note.id, format=UBL)
        ),
        FAILED,
    )
    assert "DRAFT" in str(err.details())
    assert stub.ValidateInvoice(svc.ValidateInvoiceRequest(company_id=company, credit_note_id=note.id)).valid
    issued = stub.IssueCreditNote(svc.IssueCreditNoteRequest(company_id=company, credit_note_id=note.id)).credit_note
    docs = {}
    for fmt, syntax in ((UBL, Syntax.UBL), (CII, Syntax.CII)):
        out = stub.ExportCreditNote(
            svc.ExportCreditNoteRequest(company_id=company, credit_note_id=issued.id, format=fmt)
        )
        xml = out.credit_note_xml.encode()
        assert fatal(validate(syntax, xml)) == []
        assert issued.credit_note_number in xml.decode() and inv.invoice_number in xml.decode()
        docs[fmt] = out.credit_note_xml
    assert etree.fromstring(docs[UBL].encode()).tag.endswith("}CreditNote")
    assert "<ram:TypeCode>381</ram:TypeCode>" in str(docs[CII])
    pdf = b"".join(
        m.chunk
        for m in stub.DownloadCreditNotePdf(
            svc.DownloadCreditNotePdfRequest(company_id=company, credit_note_id=issued.id, format=FACTURX)
        )
    )
    assert facturx.get_xml_from_pdf(pdf)[1] == docs[CII].encode()
    # Inbound: the invoice first, then its credit note, in another company.
    other = f"{company}-cn"
    _import(stub, other, _export(stub, company, inv.id, UBL).invoice_xml, UBL)
    got = _import(stub, other, docs[UBL], UBL)
    assert got.credit_note.credit_note_number == issued.credit_note_number
    assert got.credit_note.total_amount == issued.total_amount
    assert got.credit_note.status == pb.CREDIT_NOTE_STATUS_ISSUED
    assert got.invoice.amount_credited == issued.total_amount


def test_lines_without_a_vat_category_are_named_in_both_syntaxes(stub, company):
    _profile(company, stub)
    plain = invoice(
        currency="EUR", lines=[line("1", "10.00"), line("2", "5.00", taxation_items=_vat())], buyer=_buyer()
    )
    inv = finalized(stub, company, plain)
    for fmt in (UBL, CII):
        err = rpc_error(partial(_export, stub, company, inv.id, fmt), FAILED)
        assert _rules(err) == ["BR-CO-04"]
        assert "line_items[0].taxation_items[0].tax_category" in str(rich_status(err))
    check = stub.ValidateInvoice(svc.ValidateInvoiceRequest(company_id=company, invoice_id=inv.id))
    assert not check.valid
    assert {(f.rule_id, f.field, f.format) for f in check.findings} == {
        ("BR-CO-04", "line_items[0].taxation_items[0].tax_category", UBL),
        ("BR-CO-04", "line_items[0].taxation_items[0].tax_category", CII),
    }
