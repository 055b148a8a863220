"""The company profile and the invoice's parties (issue 16) end to end: gRPC, PostgreSQL, the PDF."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from invoices.v1 import company_profile_pb2 as cpb
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import party_pb2 as ppb
from invoices.v1 import push_operation_pb2 as push_pb
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc
from pypdf import PdfReader

from tests.helpers import create, finalized, invoice, line, rpc_error, violations

INV = grpc.StatusCode.INVALID_ARGUMENT
ABORTED = grpc.StatusCode.ABORTED
ROOT = Path(__file__).resolve().parents[1]
IBAN = "DE89370400440532013000"
# A 2x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000020000000108020000007b40e8dd0000000f49444154789c633cc1c0c0c0c0000004be"
    "00cab7e2e5330000000049454e44ae426082"
)


def _profile(**kw: Any) -> cpb.CompanyProfile:
    base: dict[str, Any] = {
        "legal_name": "Acme Widgets GmbH",
        "trading_name": "Acme",
        "address": ppb.PostalAddress(
            address_lines=["Hauptstr. 1"], city="Berlin", postal_code="10115", country_code="DE"
        ),
        "tax_registrations": [ppb.TaxRegistration(scheme="VAT", id="DE123456789")],
        "legal_registration_id": "HRB 12345",
        "contact": ppb.Contact(email="billing@acme.example", phone="+49 30 123456"),
        "default_currency": "EUR",
        "payment_terms": ppb.PaymentTerms(net_days=14, text="Net 14 days"),
        "payment_means": ppb.PaymentMeans(
            iban="DE89 3704 0044 0532 0130 00",
            bic="COBADEFFXXX",
            account_name="Acme Widgets GmbH",
            payment_reference_rule=ppb.PAYMENT_REFERENCE_RULE_INVOICE_NUMBER,
        ),
    }
    base.update(kw)
    return cpb.CompanyProfile(**base)


def _update(stub: Any, company: str, profile: cpb.CompanyProfile, *paths: str) -> cpb.UpdateCompanyProfileResponse:
    mask = field_mask_pb2.FieldMask(paths=list(paths)) if paths else None
    request = cpb.UpdateCompanyProfileRequest(company_id=company, profile=profile, update_mask=mask)
    answer: cpb.UpdateCompanyProfileResponse = stub.UpdateCompanyProfile(request)
    return answer


def _get(stub: Any, company: str) -> cpb.CompanyProfile:
    profile: cpb.CompanyProfile = stub.GetCompanyProfile(cpb.GetCompanyProfileRequest(company_id=company)).profile
    return profile


def _pdf_text(stub: Any, company: str, invoice_id: str) -> str:
    request = svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=invoice_id)
    data = b"".join(m.chunk for m in stub.DownloadInvoicePdf(request))
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _buyer() -> ppb.Party:
    return ppb.Party(
        name="Globex Corporation",
        address=ppb.PostalAddress(
            address_lines=["1 Main St"],
            city="Springfield",
            postal_code="12345",
            country_subdivision="OR",
            country_code="US",
        ),
        tax_registrations=[ppb.TaxRegistration(scheme="EIN", id="12-3456789")],
        contact=ppb.Contact(name="Accounts payable", email="ap@globex.example"),
    )


def test_a_company_without_a_profile_reads_an_empty_one(stub, company):
    profile = _get(stub, company)
    assert profile.name == f"companies/{company}/profile" and profile.company_id == company
    assert profile.etag == 'W/"0"' and profile.legal_name == ""


def test_update_with_a_mask_and_etag_then_get(stub, company):
    answer = _update(stub, company, _profile(logo=PNG))
    assert answer.push_operation.data_type == "companyProfiles"
    assert answer.push_operation.status == 2  # SUCCESS
    assert answer.profile.etag == 'W/"1"'
    stored = _get(stub, company)
    assert stored.legal_name == "Acme Widgets GmbH" and stored.address.country_code == "DE"
    assert stored.payment_means.iban == IBAN and stored.payment_means.bic == "COBADEFFXXX"
    assert stored.logo == PNG and stored.logo_content_type == "image/png"
    assert stored.default_currency == "EUR" and stored.payment_terms.net_days == 14

    # Only the masked field changes; the etag must be the current one.
    changed = _update(
        stub, company, cpb.CompanyProfile(trading_name="Acme Berlin", etag='W/"1"', legal_name="x"), "trading_name"
    ).profile
    assert (changed.trading_name, changed.legal_name, changed.etag) == ("Acme Berlin", "Acme Widgets GmbH", 'W/"2"')
    err = rpc_error(
        lambda: _update(stub, company, cpb.CompanyProfile(locale="de-DE", etag='W/"1"')), grpc.StatusCode.ABORTED
    )
    assert "etag" in (err.details() or "")
    err = rpc_error(lambda: _update(stub, company, cpb.CompanyProfile(locale="de-DE"), "locale", "colour"), INV)
    assert "colour" in violations(err)["update_mask.paths"]
    assert _get(stub, company).etag == 'W/"2"' and _get(stub, company).locale == ""


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        (_profile(payment_means=ppb.PaymentMeans(iban="DE89370400440532013001")), "profile.payment_means.iban"),
        (_profile(payment_means=ppb.PaymentMeans(iban=IBAN, bic="NOTABIC")), "profile.payment_means.bic"),
        (_profile(payment_means=ppb.PaymentMeans(account_number="12345678")), "profile.payment_means.routing_code"),
        (_profile(address=ppb.PostalAddress(city="Atlantis", country_code="XX")), "profile.address.country_code"),
        (_profile(address=ppb.PostalAddress(city="Berlin", country_code="de")), "profile.address.country_code"),
        (_profile(address=ppb.PostalAddress(city="Berlin")), "profile.address.country_code"),
        (_profile(default_currency="EURO"), "profile.default_currency"),
        (_profile(tax_registrations=[ppb.TaxRegistration(scheme="VAT", id="123")]), "profile.tax_registrations[0].id"),
        (_profile(contact=ppb.Contact(email="not-an-address")), "profile.contact.email"),
        (_profile(payment_terms=ppb.PaymentTerms(net_days=-1)), "profile.payment_terms.net_days"),
        (_profile(invoice_numbering=cpb.NumberFormat(prefix="A", width=0)), "profile.invoice_numbering.width"),
        (_profile(logo=b"GIF89a....."), "profile.logo"),
        (_profile(logo=PNG[:40]), "profile.logo"),
        (_profile(locale="english"), "profile.locale"),
    ],
)
def test_bad_values_are_refused_naming_the_field_and_change_nothing(stub, company, profile, field):
    _update(stub, company, cpb.CompanyProfile(legal_name="Before"), "legal_name")
    err = rpc_error(lambda: _update(stub, company, profile), INV)
    assert field in violations(err), violations(err)
    after = _get(stub, company)
    assert (after.legal_name, after.etag) == ("Before", 'W/"1"')


def test_profile_edit_after_finalization_leaves_the_issued_invoice(stub, company):
    _update(stub, company, _profile())
    draft = create(stub, company, invoice(issue_date="2030-03-01", buyer=_buyer()))
    assert not draft.HasField("seller")  # drafts carry no seller: their PDF shows the live profile
    assert "Acme Widgets GmbH" in _pdf_text(stub, company, draft.id)
    issued = stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=draft.id)).invoice
    assert issued.seller.name == "Acme Widgets GmbH" and issued.seller.tax_registrations[0].id == "DE123456789"
    assert issued.payment_means.iban == IBAN
    assert issued.payment_means.payment_reference == issued.invoice_number
    assert issued.payment_terms.net_days == 14
    assert issued.due_date.startswith("2030-03-15")  # no due date sent: issue date + net days

    _update(
        stub,
        company,
        _profile(legal_name="Acme Renamed AG", payment_means=ppb.PaymentMeans(iban="GB82WEST12345698765432")),
    )
    again = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=issued.id)).invoice
    assert again.seller == issued.seller and again.payment_means == issued.payment_means
    text = _pdf_text(stub, company, issued.id)
    assert "Acme Widgets GmbH" in text and "Acme Renamed AG" not in text
    assert IBAN in text and "GB82WEST12345698765432" not in text
    assert "Globex Corporation" in text and "DE123456789" in text and "Springfield" in text
    # The next invoice is issued under the new name.
    later = finalized(stub, company)
    assert later.seller.name == "Acme Renamed AG" and later.payment_means.iban == "GB82WEST12345698765432"


def test_every_finalization_path_snapshots_the_seller(stub, company):
    _update(stub, company, _profile())
    submitted = create(stub, company, invoice(status=pb.INVOICE_STATUS_SUBMITTED))
    assert submitted.seller.name == "Acme Widgets GmbH"
    drafts = [create(stub, company) for _ in range(2)]
    batch = stub.BatchFinalizeInvoices(
        svc.BatchFinalizeInvoicesRequest(
            company_id=company,
            requests=[svc.FinalizeInvoiceRequest(company_id=company, invoice_id=d.id) for d in drafts],
        )
    ).invoices
    assert [i.seller.name for i in batch] == ["Acme Widgets GmbH"] * 2
    draft = create(stub, company)
    recalculated = stub.RecalculateInvoice(
        svc.RecalculateInvoiceRequest(company_id=company, invoice_id=draft.id, finalize=True)
    ).invoice
    assert recalculated.seller.legal_registration_id == "HRB 12345"


def test_without_a_profile_the_seller_is_seller_name(stub, company):
    issued = finalized(stub, company)
    assert issued.seller.name == "Invoice Service" and not issued.HasField("payment_means")
    assert issued.invoice_number.startswith("INV-")


def test_invoice_numbers_take_the_profile_prefix_and_width(stub, company):
    _update(stub, company, cpb.CompanyProfile(invoice_numbering=cpb.NumberFormat(prefix="ACME-2030/", width=4)))
    first, second = finalized(stub, company), finalized(stub, company)
    assert (first.invoice_number, second.invoice_number) == ("ACME-2030/0001", "ACME-2030/0002")
    # Numbers of the profile's form are the service's to give.
    err = rpc_error(lambda: create(stub, company, invoice(invoice_number="ACME-2030/0007")), INV)
    assert "invoice.invoice_number" in violations(err)
    assert create(stub, company, invoice(invoice_number="INV-000007")).invoice_number == "INV-000007"


def test_profile_rounding_modes_are_the_money_defaults(stub, company):
    _update(
        stub,
        company,
        cpb.CompanyProfile(
            rounding_mode=pb.ROUNDING_MODE_HALF_EVEN, tax_rounding_mode=pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE
        ),
    )
    got = _get(stub, company)
    assert (got.rounding_mode, got.tax_rounding_mode) == (
        pb.ROUNDING_MODE_HALF_EVEN,
        pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE,
    )
    inv = create(stub, company)
    assert (inv.rounding_mode, inv.tax_rounding_mode) == (
        pb.ROUNDING_MODE_HALF_EVEN,
        pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE,
    )


def test_buyer_party_round_trip_and_validation(stub, company):
    delivery = ppb.Delivery(
        name="Warehouse 7", delivery_date="2030-02-27", address=ppb.PostalAddress(city="Shelbyville", country_code="US")
    )
    draft = create(
        stub,
        company,
        invoice(buyer=_buyer(), buyer_reference="LEITWEG-991", purchase_order_reference="PO-4711", delivery=delivery),
    )
    got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=draft.id)).invoice
    assert got.buyer == _buyer() and got.delivery == delivery
    assert (got.buyer_reference, got.purchase_order_reference) == ("LEITWEG-991", "PO-4711")

    # A draft's buyer changes like any field; the mask names it.
    patch = pb.Invoice(id=draft.id, buyer=ppb.Party(name="Initech"))
    updated = stub.UpdateInvoice(
        svc.UpdateInvoiceRequest(
            company_id=company, invoice=patch, update_mask=field_mask_pb2.FieldMask(paths=["buyer"])
        )
    ).invoice
    assert updated.buyer.name == "Initech" and updated.purchase_order_reference == "PO-4711"

    bad = ppb.Party(name="Globex", address=ppb.PostalAddress(city="Nowhere", country_code="QQ"))
    err = rpc_error(lambda: create(stub, company, invoice(buyer=bad)), INV)
    assert "invoice.buyer.address.country_code" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(buyer=ppb.Party(trading_name="no legal name"))), INV)
    assert "invoice.buyer.name" in violations(err)
    err = rpc_error(lambda: create(stub, company, invoice(delivery=ppb.Delivery(delivery_date="27.02.2030"))), INV)
    assert "invoice.delivery.delivery_date" in violations(err)

    # After finalization the buyer is part of the issued document.
    issued = stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=draft.id)).invoice
    err = rpc_error(
        lambda: stub.UpdateInvoice(
            svc.UpdateInvoiceRequest(
                company_id=company,
                invoice=pb.Invoice(id=issued.id, buyer=ppb.Party(name="Someone else")),
                update_mask=field_mask_pb2.FieldMask(paths=["buyer"]),
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "buyer" in (err.details() or "")


def test_the_pdf_shows_seller_buyer_terms_and_bank_details(stub, company):
    _update(stub, company, _profile(logo=PNG))
    issued = finalized(stub, company, invoice(buyer=_buyer(), purchase_order_reference="PO-4711"))
    text = _pdf_text(stub, company, issued.id)
    for expected in (
        "Acme Widgets GmbH",
        "Hauptstr. 1",
        "VAT DE123456789",
        "Globex Corporation",
        "ap@globex.example",
        "PO-4711",
        "Net 14 days",
        f"IBAN {IBAN}",
        "BIC COBADEFFXXX",
        f"Payment reference: {issued.invoice_number}",
    ):
        assert expected in text, expected


def test_money_defaults_cli_moves_the_profile_etag(stub, company, database_url):
    _update(stub, company, cpb.CompanyProfile(legal_name="Acme"))
    cli = [sys.executable, "-m", "service", "money-defaults", "--company", company, "--rounding", "DOWN"]
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run(cli, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = _get(stub, company)
    assert (got.rounding_mode, got.etag, got.legal_name) == (pb.ROUNDING_MODE_DOWN, 'W/"2"', "Acme")
    err = rpc_error(lambda: _update(stub, company, cpb.CompanyProfile(locale="en-GB", etag='W/"1"')), ABORTED)
    assert violations(err) == {}


def test_an_asynchronous_update_is_applied_by_a_worker(stub, channel, company):
    request = cpb.UpdateCompanyProfileRequest(company_id=company, profile=_profile(), request_id="profile-1")
    pending = stub.UpdateCompanyProfile(request, metadata=(("prefer", "respond-async"),)).push_operation
    assert pending.status == push_pb.PUSH_OPERATION_STATUS_PENDING and pending.data_type == "companyProfiles"
    ops = ps_grpc.PushOperationServiceStub(channel)
    deadline = time.time() + 20
    while time.time() < deadline:
        op = ops.GetPushOperation(
            ps.GetPushOperationRequest(company_id=company, push_operation_key=pending.push_operation_key)
        )
        if op.push_operation.status != push_pb.PUSH_OPERATION_STATUS_PENDING:
            break
        time.sleep(0.05)
    assert op.push_operation.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
    assert [c.record_ref.id for c in op.push_operation.changes] == [f"companies/{company}/profile"]
    assert _get(stub, company).legal_name == "Acme Widgets GmbH"


def test_credit_note_numbers_take_the_profile_credit_note_format(stub, company):
    _update(stub, company, cpb.CompanyProfile(credit_note_numbering=cpb.NumberFormat(prefix="GUT-", width=3)))
    numbers = [
        stub.CreateCreditNote(
            svc.CreateCreditNoteRequest(
                company_id=company, invoice_id=finalized(stub, company).id, whole_invoice=True, issue=True
            )
        ).credit_note.credit_note_number
        for _ in range(2)
    ]
    assert numbers == ["GUT-001", "GUT-002"]


def test_a_credit_note_pdf_carries_the_corrected_invoice_parties(stub, company):
    _update(stub, company, _profile())
    inv = finalized(stub, company, invoice(buyer=_buyer()))
    note = stub.CreateCreditNote(
        svc.CreateCreditNoteRequest(company_id=company, invoice_id=inv.id, whole_invoice=True, issue=True)
    ).credit_note
    data = b"".join(
        c.chunk
        for c in stub.DownloadCreditNotePdf(
            svc.DownloadCreditNotePdfRequest(company_id=company, credit_note_id=note.id)
        )
    )
    text = " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())
    for expected in (
        "Acme Widgets GmbH",
        "DE123456789",
        "Hauptstr. 1",
        inv.buyer.name,
        f"for invoice {inv.invoice_number}",
    ):
        assert expected in text, expected


# -- hostile input (review of issue 16) -------------------------------------------------------------


@pytest.mark.parametrize("logo", [PNG[:33] + bytes(30), b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff" + b"\x00" * 100])
def test_an_unreadable_logo_is_refused_without_internals_in_the_answer(stub, company, logo):
    err = rpc_error(lambda: _update(stub, company, cpb.CompanyProfile(logo=logo), "logo"), INV)
    text = violations(err)["profile.logo"] + (err.details() or "")
    assert "PNG or JPEG" in text
    for leak in ("0x", "BytesIO", "ImageReader", "fileName", "identity"):
        assert leak not in text, text
    assert _get(stub, company).etag == 'W/"0"'


def test_a_wildcard_mask_with_an_unknown_path_is_refused_and_changes_nothing(stub, company):
    _update(stub, company, cpb.CompanyProfile(legal_name="Before", locale="de-DE"), "legal_name", "locale")
    err = rpc_error(lambda: _update(stub, company, cpb.CompanyProfile(legal_name="After"), "*", "colour"), INV)
    assert "colour" in violations(err)["update_mask.paths"]
    after = _get(stub, company)
    assert (after.legal_name, after.locale, after.etag) == ("Before", "de-DE", 'W/"1"')
    # The wildcard alone replaces the whole profile (AIP-134): fields not sent are cleared.
    replaced = _update(stub, company, cpb.CompanyProfile(legal_name="After"), "*").profile
    assert (replaced.legal_name, replaced.locale) == ("After", "")


def test_parties_at_every_length_limit_still_render_the_pdf(stub, company):
    """Seller and buyer blocks of the longest values the API takes (255 characters without a space) are taller
    than a page: the PDF continues them on the next page instead of failing with INTERNAL."""
    w = "W" * 255
    address = ppb.PostalAddress(address_lines=[w] * 3, city=w, postal_code=w, country_subdivision=w, country_code="DE")
    tax_ids = [ppb.TaxRegistration(scheme="S" * 20, id="I" * 50)] * 5
    contact = ppb.Contact(name=w, email="a" * 240 + "@b.example", phone="1" * 30)
    profile = cpb.CompanyProfile(
        legal_name=w,
        trading_name=w,
        address=address,
        tax_registrations=tax_ids,
        legal_registration_id="L" * 50,
        contact=contact,
        payment_terms=ppb.PaymentTerms(net_days=30, text="T" * 1000),
        payment_means=ppb.PaymentMeans(account_number="1" * 34, routing_code="2" * 34, account_name=w, bank_name=w),
    )
    _update(stub, company, profile)
    buyer = ppb.Party(
        name=w,
        trading_name=w,
        address=address,
        tax_registrations=tax_ids,
        legal_registration_id="L" * 50,
        contact=contact,
    )
    draft = create(stub, company, invoice(buyer=buyer, buyer_reference=w, purchase_order_reference=w))
    assert "W" * 40 in _pdf_text(stub, company, draft.id).replace("\n", "")
    issued = finalized(stub, company, invoice(buyer=buyer))
    assert "W" * 40 in _pdf_text(stub, company, issued.id).replace("\n", "")
    note = stub.CreateCreditNote(
        svc.CreateCreditNoteRequest(company_id=company, invoice_id=issued.id, whole_invoice=True, issue=True)
    ).credit_note
    request = svc.DownloadCreditNotePdfRequest(company_id=company, credit_note_id=note.id)
    data = b"".join(c.chunk for c in stub.DownloadCreditNotePdf(request))
    assert "W" * 40 in "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).replace("\n", "")


def _png(width: int, height: int) -> bytes:
    """An RGBA PNG of 16 bits a channel, all zero: a few KiB that decode to width x height x 8 bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = (b"\x00" + bytes(width * 8)) * height
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def test_a_large_logo_is_drawn_shrunk_so_pdfs_do_not_decode_it_whole(stub, company):
    """A logo within the limits (256 KiB, 4,000 pixels a side) can decode to 128 MB; each PDF used to decode and
    embed it whole (8 concurrent PDFs took 1.4 GB). The PDF draws it at most 600 pixels a side."""
    logo = _png(4000, 2000)
    assert len(logo) < 256 * 1024
    _update(stub, company, cpb.CompanyProfile(logo=logo), "logo")
    draft = create(stub, company, invoice())
    request = svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=draft.id)
    data = b"".join(m.chunk for m in stub.DownloadInvoicePdf(request))
    images = [image for page in PdfReader(io.BytesIO(data)).pages for image in page.images]
    assert len(images) == 1
    drawn = images[0].image
    assert drawn is not None and drawn.size == (600, 300)


def test_a_number_format_that_reaches_numbers_clients_hold_is_refused(stub, company):
    """A client may have chosen "ACME-3" while the format was the default; a profile making "ACME-" the prefix
    would stop every finalization at 3 (ALREADY_EXISTS on each): it is refused and changes nothing."""
    finalized(stub, company, invoice())  # the sequence is at 1
    create(stub, company, invoice(invoice_number="ACME-3"))
    create(stub, company, invoice(invoice_number="B-1"))  # below the sequence: never reached
    form = cpb.CompanyProfile(invoice_numbering=cpb.NumberFormat(prefix="ACME-", width=1))
    err = rpc_error(lambda: _update(stub, company, form), grpc.StatusCode.FAILED_PRECONDITION)
    assert "ACME-3" in (err.details() or "")
    assert _get(stub, company).etag == 'W/"0"'
    # Another width never makes "ACME-3"; a prefix whose numbers the sequence has passed is fine.
    _update(stub, company, cpb.CompanyProfile(invoice_numbering=cpb.NumberFormat(prefix="ACME-", width=2)))
    assert [finalized(stub, company, invoice()).invoice_number for _ in range(3)] == ["ACME-02", "ACME-03", "ACME-04"]
    _update(stub, company, cpb.CompanyProfile(invoice_numbering=cpb.NumberFormat(prefix="B-", width=1)))
    assert finalized(stub, company, invoice()).invoice_number == "B-5"


def _pdf_image_sizes(stub: Any, company: str, invoice_id: str) -> list[tuple[int, int]]:
    request = svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=invoice_id)
    data = b"".join(m.chunk for m in stub.DownloadInvoicePdf(request))
    images = [image.image for page in PdfReader(io.BytesIO(data)).pages for image in page.images]
    return [image.size for image in images if image is not None]


def test_an_issued_invoice_keeps_the_logo_it_was_issued_with(stub, company, db):
    _update(stub, company, cpb.CompanyProfile(legal_name="Acme", logo=_png(40, 20)), "legal_name", "logo")
    issued = finalized(stub, company)
    _update(stub, company, cpb.CompanyProfile(logo=_png(30, 30)), "logo")
    draft = create(stub, company, invoice())
    assert _pdf_image_sizes(stub, company, issued.id) == [(40, 20)]  # as issued
    assert _pdf_image_sizes(stub, company, draft.id) == [(30, 30)]  # drafts draw the live profile
    _update(stub, company, cpb.CompanyProfile(logo=b""), "logo")
    assert _pdf_image_sizes(stub, company, issued.id) == [(40, 20)]  # removing the logo later changes nothing
    without = finalized(stub, company)
    _update(stub, company, cpb.CompanyProfile(logo=_png(30, 30)), "logo")
    assert _pdf_image_sizes(stub, company, without.id) == []  # issued without a logo: none added later
    kept = db.fetch("SELECT count(*) AS n FROM company_logos WHERE company_id = $1", company)
    assert kept[0]["n"] == 2


def test_documents_write_amounts_and_dates_in_the_profile_locale(stub, company):
    lines = [line("1000", "1234.5", description="Beratung")]
    before = finalized(stub, company, invoice(currency="EUR", lines=lines, issue_date="2030-03-01"))
    assert "1,234,500.00 EUR" in _pdf_text(stub, company, before.id)  # no locale: the API's digits
    _update(stub, company, cpb.CompanyProfile(locale="de-DE"), "locale")
    issued = finalized(stub, company, invoice(currency="EUR", lines=lines, issue_date="2030-03-01"))
    text = _pdf_text(stub, company, issued.id)
    assert issued.total_amount == "1234500.00"  # the API keeps its form
    assert "1.234.500,00 EUR" in text and "01.03.2030" in text and "1.234,5" in text
    note = stub.CreateCreditNote(
        svc.CreateCreditNoteRequest(company_id=company, invoice_id=issued.id, whole_invoice=True, issue=True)
    ).credit_note
    request = svc.DownloadCreditNotePdfRequest(company_id=company, credit_note_id=note.id)
    data = b"".join(c.chunk for c in stub.DownloadCreditNotePdf(request))
    assert "1.234.500,00 EUR" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def test_nested_mask_paths_change_one_field_of_a_message(stub, company):
    _update(stub, company, _profile())
    before = _get(stub, company)
    patch = cpb.CompanyProfile(
        address=ppb.PostalAddress(city="Hamburg"),
        payment_means=ppb.PaymentMeans(bic="DEUTDEFFXXX"),
        etag=before.etag,
    )
    after = _update(stub, company, patch, "address.city", "payment_means.bic").profile
    assert after.address.city == "Hamburg" and after.payment_means.bic == "DEUTDEFFXXX"
    # Everything else in those messages stays as it was.
    assert list(after.address.address_lines) == list(before.address.address_lines)
    assert after.address.country_code == before.address.country_code
    assert after.payment_means.iban == before.payment_means.iban
    assert after.legal_name == before.legal_name
    # A nested path left unset in the patch clears that field (AIP-134), and the merged message is checked.
    cleared = _update(stub, company, cpb.CompanyProfile(), "address.postal_code").profile
    assert cleared.address.postal_code == "" and cleared.address.city == "Hamburg"
    bad = cpb.CompanyProfile(address=ppb.PostalAddress(country_code="ZZ"))
    err = rpc_error(lambda: _update(stub, company, bad, "address.country_code"), INV)
    assert "profile.address.country_code" in violations(err)
    for mask in (("address.planet",), ("legal_name.first",), ("address", "address.city")):
        err = rpc_error(partial(_update, stub, company, cpb.CompanyProfile(), *mask), INV)
        assert "update_mask.paths" in violations(err), mask
    assert _get(stub, company).etag == cleared.etag  # refusals changed nothing
