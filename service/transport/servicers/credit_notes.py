"""Credit notes and refunds (issue 16): create, issue, void, read, list, PDF; refunds of payments and of
credit balances."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from service.domain import money
from service.domain.credit_notes import CreditNote, CreditNoteLine, Parts
from service.domain.errors import Violations
from service.domain.push import AsyncRun
from service.domain.values import ZERO, check_text, fmt_decimal, parse_decimal
from service.handlers.credit_notes import Refund
from service.transport import convert as c
from service.transport import requests as r
from service.transport.files import e_file_out, pdf_chunks
from service.transport.requests import Ctx
from service.transport.servicers.base import Resources
from service.transport.servicers.payments import balance_out
from service.vendors.credit_notes import export_credit_note
from service.vendors.json_payload import dumps


def note_out(n: CreditNote) -> pb.CreditNote:
    cur = n.currency

    def amount(value: Decimal | None) -> str:
        return money.fmt(value, cur) if value is not None else ""

    out = pb.CreditNote(
        id=n.id,
        company_id=n.company_id,
        credit_note_number=n.credit_note_number,
        invoice_id=n.invoice_id,
        invoice_number=n.invoice_number,
        currency=cur,
        customer_ref=pb.CustomerRef(id=n.customer_id, company_name=n.customer_name),
        status=c.enum_out(pb.CreditNoteStatus, n.status),
        lines=[
            pb.CreditNoteLine(
                id=x.id,
                invoice_line_item_id=x.invoice_line_item_id,
                description=x.description,
                quantity=fmt_decimal(x.quantity),
                unit_amount=fmt_decimal(x.unit_amount),
                tax_rate=fmt_decimal(x.tax_rate),
                sub_total=amount(x.sub_total),
                tax_amount=amount(x.tax_amount),
                total_amount=amount(x.total_amount),
            )
            for x in n.lines
        ],
        sub_total=amount(n.sub_total),
        total_tax_amount=amount(n.total_tax_amount),
        total_amount=amount(n.total_amount),
        reason=n.reason,
        reason_code=n.reason_code,
        memo=n.memo,
        credit_amount=amount(n.credit_amount),
        balance_amount=amount(n.balance_amount),
        refund_amount=amount(n.refund_amount),
        etag=n.etag,
        version=n.version,
    )
    for name in ("invoice_issue_date", "create_time", "issue_time", "void_time"):
        c.ts_out(out, name, getattr(n, name))
    return out


def refund_out(x: Refund) -> pb.Refund:
    out = pb.Refund(
        id=x.id,
        invoice_id=x.invoice_id,
        payment_allocation_id=x.payment_allocation_id,
        credit_note_id=x.credit_note_id,
        customer_id=x.customer_id,
        amount=money.fmt(x.amount, x.currency),
        currency=x.currency,
        reason=x.reason,
        reference=x.reference,
    )
    c.ts_out(out, "create_time", x.create_time)
    return out


UPDATABLE = frozenset({"lines", "reason", "reason_code", "memo", "credit_amount", "balance_amount", "refund_amount"})
NoteRequest = svc.CreateCreditNoteRequest | svc.UpdateCreditNoteRequest


def _parts_in(request: NoteRequest, v: Violations) -> Parts:
    return Parts(
        parse_decimal(v, "credit_amount", request.credit_amount),
        parse_decimal(v, "balance_amount", request.balance_amount),
        parse_decimal(v, "refund_amount", request.refund_amount),
    )


def _texts_in(request: NoteRequest, v: Violations) -> dict[str, str]:
    check_text(v, "reason", request.reason)
    check_text(v, "reason_code", request.reason_code)
    check_text(v, "memo", request.memo, limit=10_000)
    return {"reason": request.reason, "reason_code": request.reason_code, "memo": request.memo}


def _lines_in(request: NoteRequest, v: Violations) -> list[CreditNoteLine]:
    lines = []
    for i, x in enumerate(request.lines):
        path = f"lines[{i}]"
        unit = parse_decimal(v, f"{path}.unit_amount", x.unit_amount, required=True)
        quantity = parse_decimal(v, f"{path}.quantity", x.quantity)
        rate = parse_decimal(v, f"{path}.tax_rate", x.tax_rate)
        check_text(v, f"{path}.description", x.description, limit=10_000)
        if x.invoice_line_item_id:
            r.require(v, f"{path}.invoice_line_item_id", x.invoice_line_item_id)
        line = CreditNoteLine(unit_amount=unit or ZERO, quantity=Decimal(1) if quantity is None else quantity)
        line.invoice_line_item_id, line.description, line.tax_rate = x.invoice_line_item_id, x.description, rate
        lines.append(line)
    return lines


class CreditNoteRpcs(Resources):
    async def CreateCreditNote(
        self, request: svc.CreateCreditNoteRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.CreateCreditNoteResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        lines = _lines_in(request, v)
        parts = _parts_in(request, v)
        checked = _texts_in(request, v)
        v.raise_if_any()
        texts = (checked["reason"], checked["reason_code"], checked["memo"])
        note, inv, op = await self.h.create_credit_note(
            request.company_id, key, lines, request.whole_invoice, parts, texts, issue=request.issue, run=run
        )
        return svc.CreateCreditNoteResponse(
            credit_note=note_out(note), push_operation=c.push_out(op), invoice=c.invoice_out(inv)
        )

    async def UpdateCreditNote(
        self, request: svc.UpdateCreditNoteRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.UpdateCreditNoteResponse:
        v = Violations()
        key = r.require(v, "credit_note_id", request.credit_note_id)
        paths = frozenset(request.update_mask.paths)
        if not paths:
            v.add("update_mask", f"is required: name the fields to replace ({', '.join(sorted(UPDATABLE))})")
        for path in sorted(paths - UPDATABLE):
            v.add("update_mask", f"{path!r} cannot be updated; updatable: {', '.join(sorted(UPDATABLE))}")
        lines = _lines_in(request, v)
        parts = _parts_in(request, v)
        texts = _texts_in(request, v)
        v.raise_if_any()
        note, op = await self.h.update_credit_note(
            request.company_id, key, request.etag, paths, lines, parts, texts, run=run
        )
        return svc.UpdateCreditNoteResponse(credit_note=note_out(note), push_operation=c.push_out(op))

    async def IssueCreditNote(
        self, request: svc.IssueCreditNoteRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.IssueCreditNoteResponse:
        key = r.invoice_key_only(request.credit_note_id, "credit_note_id")
        note, inv, op = await self.h.issue_credit_note(request.company_id, key, request.etag, run=run)
        return svc.IssueCreditNoteResponse(
            credit_note=note_out(note), invoice=c.invoice_out(inv), push_operation=c.push_out(op)
        )

    async def VoidCreditNote(
        self, request: svc.VoidCreditNoteRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.VoidCreditNoteResponse:
        key = r.invoice_key_only(request.credit_note_id, "credit_note_id")
        note, op = await self.h.void_credit_note(request.company_id, key, request.etag, run=run)
        return svc.VoidCreditNoteResponse(credit_note=note_out(note), push_operation=c.push_out(op))

    async def GetCreditNote(self, request: svc.GetCreditNoteRequest, context: Ctx) -> svc.GetCreditNoteResponse:
        key = r.invoice_key_only(request.credit_note_id, "credit_note_id")
        return svc.GetCreditNoteResponse(credit_note=note_out(await self.h.get_credit_note(request.company_id, key)))

    async def ListCreditNotes(self, request: svc.ListCreditNotesRequest, context: Ctx) -> svc.ListCreditNotesResponse:
        v = Violations()
        if request.invoice_id:
            r.require(v, "invoice_id", request.invoice_id)
        if request.customer_id:
            r.require(v, "customer_id", request.customer_id)
        v.raise_if_any()
        found, token = await self.h.list_credit_notes(
            request.company_id, request.invoice_id, request.customer_id, request.page_size, request.page_token
        )
        return svc.ListCreditNotesResponse(credit_notes=[note_out(n) for n in found], next_page_token=token)

    async def DownloadCreditNotePdf(
        self, request: svc.DownloadCreditNotePdfRequest, context: Ctx
    ) -> AsyncIterator[svc.DownloadCreditNotePdfResponse]:
        v = Violations()
        key = r.invoice_key(v, "credit_note_id", request.credit_note_id)
        facturx = r.pdf_format(v, request.format)
        v.raise_if_any()
        if facturx:
            f = await self.h.export_credit_note_e_invoice(request.company_id, key, facturx)
            name, data = f.name, f.data
        else:
            name, data = await self.h.credit_note_pdf(request.company_id, key)
        for out in pdf_chunks(svc.DownloadCreditNotePdfResponse, name, data):
            yield out

    async def ExportCreditNote(
        self, request: svc.ExportCreditNoteRequest, context: Ctx
    ) -> svc.ExportCreditNoteResponse:
        v = Violations()
        key = r.require(v, "credit_note_id", request.credit_note_id)
        vendor, fmt = r.target_format(v, request.vendor, request.format)
        v.raise_if_any()
        if fmt is not None:
            f = await self.h.export_credit_note_e_invoice(request.company_id, key, fmt)
            return e_file_out(
                svc.ExportCreditNoteResponse,
                f,
                "credit_note_xml",
                "credit_note_pdf",
                self.h.max_answer,
                "DownloadCreditNotePdf",
            )
        note = await self.h.get_credit_note(request.company_id, key)
        return svc.ExportCreditNoteResponse(credit_note_json=dumps(export_credit_note(vendor, note)))

    async def RecordRefund(
        self, request: svc.RecordRefundRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.RecordRefundResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        r.require(v, "payment_allocation_id", request.payment_allocation_id)
        amount = parse_decimal(v, "amount", request.amount, positive=True)
        check_text(v, "reason", request.reason)
        check_text(v, "reference", request.reference)
        v.raise_if_any()
        refund, inv, op = await self.h.record_refund(
            request.company_id, key, request.payment_allocation_id, amount, request.reason, request.reference, run=run
        )
        return svc.RecordRefundResponse(
            refund=refund_out(refund), invoice=c.invoice_out(inv), push_operation=c.push_out(op)
        )

    async def RefundCustomerCredit(
        self, request: svc.RefundCustomerCreditRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.RefundCustomerCreditResponse:
        v = Violations()
        currency, amount = r.customer_amount(v, request.customer_id, request.currency, request.amount)
        check_text(v, "reason", request.reason)
        check_text(v, "reference", request.reference)
        v.raise_if_any()
        refund, balance, op = await self.h.refund_credit(
            request.company_id,
            request.customer_id,
            currency,
            amount,
            request.reason,
            request.reference,
            run=run,
        )
        return svc.RefundCustomerCreditResponse(
            refund=refund_out(refund), credit_balance=balance_out(balance), push_operation=c.push_out(op)
        )
