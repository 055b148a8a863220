"""E-invoices (issue 17): EN 16931 documents of issued invoices and credit notes (UBL, CII, Factur-X), each
validated before it leaves; validation on demand (a draft as its finalization would issue it); and inbound
UBL/CII invoices and credit notes imported after the same validation."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass

from service.domain import lifecycle, profile
from service.domain.credit_notes import CreditNote, CreditNoteStatus
from service.domain.errors import FailedPrecondition
from service.domain.models import Invoice, Status
from service.domain.profile import EInvoiceFormat
from service.einvoice import formats, semantic
from service.einvoice.validation import Finding, Severity, Syntax
from service.handlers.credit_notes import CreditNoteWrites
from service.handlers.writes import utcnow
from service.outbound import facturx, pdf
from service.store import profiles
from service.store.db import connection

# A draft has no number until finalization draws one; its check stands in this (BT-1 must be present).
PROVISIONAL_NUMBER = "DRAFT"
XML, PDF = "application/xml", "application/pdf"


@dataclass(frozen=True, slots=True)
class EFile:
    name: str
    content_type: str
    data: bytes


def _file(stem: str, fmt: EInvoiceFormat, xml: bytes, pdf_bytes: bytes = b"") -> EFile:
    if fmt is EInvoiceFormat.FACTURX:
        return EFile(f"{stem}.pdf", PDF, facturx.facturx_pdf(pdf_bytes, xml))
    return EFile(f"{stem}.xml", XML, xml)


def _draft(kind: str, id_: str, step: str, subject: str) -> FailedPrecondition:
    why = f"an e-invoice is an issued document; {step} it first (ValidateInvoice checks a draft)"
    return FailedPrecondition(f"{kind} {id_} is a DRAFT: {why}", subject=subject)


def _void(kind: str, id_: str, what: str, subject: str) -> FailedPrecondition:
    """A void document has no e-invoice: its amounts claim what is no longer owed (the void left amount_due at
    0, so the document failed BR-CO-16), and a note voided as a draft never had a number (BR-02)."""
    return FailedPrecondition(f"{kind} {id_} is VOID ({what}): it has no e-invoice to send or check", subject=subject)


def _exportable(inv: Invoice) -> Invoice:
    if inv.status is Status.VOID:
        reason = inv.void_reason.value if inv.void_reason else "VOIDED"
        raise _void("invoice", inv.invoice_number or inv.id, reason, f"invoices/{inv.id}")
    return inv


def _exportable_note(note: CreditNote) -> CreditNote:
    if note.status is CreditNoteStatus.VOID:
        raise _void("credit note", note.credit_note_number or note.id, "voided as a draft", f"creditNotes/{note.id}")
    return note


def ordered(found: list[tuple[Syntax, Finding]]) -> list[tuple[Syntax, Finding]]:
    """Fatal findings first, each syntax's in the rules' order."""
    return sorted(found, key=lambda sf: sf[1].severity is not Severity.FATAL)


class EInvoiceUseCases(CreditNoteWrites):
    # -- export -----------------------------------------------------------------------------

    async def export_e_invoice(self, company_id: str, key: str, fmt: EInvoiceFormat) -> EFile:
        inv = _exportable(await self.get(company_id, key))
        if inv.status is Status.DRAFT:
            raise _draft("invoice", inv.id, "finalize", f"invoices/{inv.id}")
        what = f"invoice {inv.invoice_number}"
        xml = await formats.checked(formats.SYNTAX[fmt], semantic.from_invoice(inv), what)
        shown = await self._invoice_pdf(inv) if fmt is EInvoiceFormat.FACTURX else b""
        return await asyncio.to_thread(_file, f"invoice-{inv.invoice_number}", fmt, xml, shown)

    async def export_credit_note_e_invoice(self, company_id: str, key: str, fmt: EInvoiceFormat) -> EFile:
        note = _exportable_note(await self.get_credit_note(company_id, key))
        if note.status is CreditNoteStatus.DRAFT:
            raise _draft("credit note", note.id, "issue", f"creditNotes/{note.id}")
        inv = await self.get(company_id, note.invoice_id)
        what = f"credit note {note.credit_note_number}"
        xml = await formats.checked(formats.SYNTAX[fmt], semantic.from_credit_note(note, inv), what)
        shown = (await self.credit_note_pdf(company_id, note.id))[1] if fmt is EInvoiceFormat.FACTURX else b""
        return await asyncio.to_thread(_file, f"credit-note-{note.credit_note_number}", fmt, xml, shown)

    async def _invoice_pdf(self, inv: Invoice) -> bytes:
        async with connection(self.pool) as conn:
            prof = await profiles.for_invoice(conn, inv)  # the logo it was issued with
        return await asyncio.to_thread(pdf.render, inv, self.settings.seller_name, prof)

    # -- validation ---------------------------------------------------------------------------

    async def validate_invoice(self, company_id: str, key: str, syntaxes: list[Syntax]) -> list[tuple[Syntax, Finding]]:
        inv = _exportable(await self.get(company_id, key))
        if inv.status is Status.DRAFT:
            inv = await self._as_finalized(inv)
        doc = semantic.from_invoice(inv)
        return ordered([(s, f) for s in syntaxes for f in await formats.findings(s, doc)])

    async def validate_credit_note(
        self, company_id: str, key: str, syntaxes: list[Syntax]
    ) -> list[tuple[Syntax, Finding]]:
        note = _exportable_note(await self.get_credit_note(company_id, key))
        inv = await self.get(company_id, note.invoice_id)
        if note.status is CreditNoteStatus.DRAFT:
            note = copy.deepcopy(note)
            note.credit_note_number = note.credit_note_number or PROVISIONAL_NUMBER
            note.issue_time = note.issue_time or utcnow()
        doc = semantic.from_credit_note(note, inv)
        return ordered([(s, f) for s in syntaxes for f in await formats.findings(s, doc)])

    async def _as_finalized(self, draft: Invoice) -> Invoice:
        """The draft as FinalizeInvoice would issue it now: a copy with the seller, terms and means of the
        company profile, today's issue date, the provisional number where it has none."""
        async with connection(self.pool) as conn:
            prof = await profiles.load(conn, draft.company_id)
        inv = copy.deepcopy(draft)
        lifecycle.finalize(inv, draft.invoice_number or PROVISIONAL_NUMBER, utcnow())
        profile.snapshot_seller(inv, prof, self.settings.seller_name)
        return inv

    # -- import -------------------------------------------------------------------------------

    async def read_e_invoice(self, xml: bytes, fmt: EInvoiceFormat) -> semantic.Inbound:
        """An inbound UBL or CII document, validated, as the canonical invoice (stored as issued, with its own
        number, dates, parties and paid amount: `create(..., imported=True)`) or the canonical credit note of
        the invoice its BT-25 names (`import_credit_note`)."""
        return semantic.to_canonical(await formats.read(xml, formats.SYNTAX[fmt], "invoice_xml"))
