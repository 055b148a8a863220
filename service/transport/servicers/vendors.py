"""Vendor formats: the invoice model, import and export as Codat, FlexPrice or Zuora JSON."""

from __future__ import annotations

import json
from typing import Any

from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from service import vendors
from service.domain.errors import InvalidArgument, Violations
from service.domain.profile import EInvoiceFormat
from service.domain.push import AsyncRun
from service.einvoice import formats
from service.einvoice.validation import Finding, Severity, Syntax
from service.transport import convert as c
from service.transport import requests as r
from service.transport.files import e_file_out
from service.transport.model import invoice_model, vendor_model
from service.transport.requests import Ctx
from service.transport.servicers.base import Resources
from service.transport.servicers.credit_notes import note_out


def finding_out(syntax: Syntax, f: Finding) -> svc.EInvoiceFinding:
    return svc.EInvoiceFinding(
        rule_id=f.rule_id,
        severity=c.enum_out(svc.EInvoiceFindingSeverity, f.severity),
        message=f.message,
        field=f.field,
        location=f.location,
        format=c.enum_out(pb.EInvoiceFormat, syntax),
    )


class VendorRpcs(Resources):
    async def GetInvoiceModel(self, request: svc.GetInvoiceModelRequest, context: Ctx) -> svc.GetInvoiceModelResponse:
        v = Violations()
        r.require(v, "company_id", request.company_id)
        vendor = r.vendor(v, request.vendor, required=False)
        v.raise_if_any()
        return svc.GetInvoiceModelResponse(model=vendor_model(vendor) if vendor else invoice_model())

    async def ImportInvoice(
        self, request: svc.ImportInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.ImportInvoiceResponse:
        v = Violations()
        vendor, fmt = r.target_format(v, request.vendor, request.format)
        if fmt is not None:
            if not request.invoice_xml:
                v.add("invoice_xml", "is required with format: the UBL or CII document")
            if request.invoice_json:
                v.add("invoice_json", "must be empty with format (the document is invoice_xml)")
            v.raise_if_any()
            return await self._import_e_invoice(request, fmt, run)
        payload: Any = None
        try:
            payload = json.loads(request.invoice_json, parse_float=vendors.json_decimal)
        except (ValueError, RecursionError) as exc:
            v.add("invoice_json", f"is not JSON: {str(exc)[:200]}")
        v.raise_if_any()
        inv = vendors.import_invoice(vendor, payload)
        try:
            stored = await self.h.create(request.company_id, inv, "ImportInvoice", imported=True, run=run)
        except InvalidArgument as exc:
            raise (vendors.vendor_violations(vendor, exc) if vendor else exc) from exc
        return svc.ImportInvoiceResponse(
            invoice=c.invoice_out(stored.invoice), push_operation=c.push_out(stored.operation)
        )

    async def _import_e_invoice(
        self, request: svc.ImportInvoiceRequest, fmt: EInvoiceFormat, run: AsyncRun | None
    ) -> svc.ImportInvoiceResponse:
        inbound = await self.h.read_e_invoice(request.invoice_xml.encode(), fmt)
        company, note = request.company_id, inbound.credit_note
        try:
            if note is None:
                stored = await self.h.create(company, inbound.invoice, "ImportInvoice", imported=True, run=run)
                return svc.ImportInvoiceResponse(
                    invoice=c.invoice_out(stored.invoice), push_operation=c.push_out(stored.operation)
                )
            note, inv, op = await self.h.import_credit_note(company, note, run=run)
        except InvalidArgument as exc:  # its own numbers' form, too many lines: named where the document has them
            raise formats.in_document(exc, formats.SYNTAX[fmt], note is not None, "invoice_xml") from exc
        out = svc.ImportInvoiceResponse(invoice=c.invoice_out(inv), push_operation=c.push_out(op))
        out.credit_note.CopyFrom(note_out(note))
        return out

    async def ExportInvoice(self, request: svc.ExportInvoiceRequest, context: Ctx) -> svc.ExportInvoiceResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        vendor, fmt = r.target_format(v, request.vendor, request.format)
        v.raise_if_any()
        if fmt is not None:
            f = await self.h.export_e_invoice(request.company_id, key, fmt)
            return e_file_out(
                svc.ExportInvoiceResponse, f, "invoice_xml", "invoice_pdf", self.h.max_answer, "DownloadInvoicePdf"
            )
        inv = await self.h.get(request.company_id, key)
        return svc.ExportInvoiceResponse(invoice_json=vendors.dumps(vendors.export_invoice(vendor, inv)))

    async def ValidateInvoice(self, request: svc.ValidateInvoiceRequest, context: Ctx) -> svc.ValidateInvoiceResponse:
        v = Violations()
        if bool(request.invoice_id) == bool(request.credit_note_id):
            v.add("invoice_id", "set invoice_id or credit_note_id (exactly one)")
        syntaxes = r.syntaxes(v, request.format)
        v.raise_if_any()
        if request.invoice_id:
            found = await self.h.validate_invoice(request.company_id, request.invoice_id, syntaxes)
        else:
            found = await self.h.validate_credit_note(request.company_id, request.credit_note_id, syntaxes)
        return svc.ValidateInvoiceResponse(
            valid=not any(f.severity is Severity.FATAL for _, f in found),
            findings=[finding_out(s, f) for s, f in found],
        )
