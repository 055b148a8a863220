"""Vendor formats: the invoice model, import and export as Codat, FlexPrice or Zuora JSON."""

from __future__ import annotations

import json
from typing import Any

from invoices.v1 import invoice_service_pb2 as svc

from service import vendors
from service.domain.errors import InvalidArgument, Violations
from service.domain.push import AsyncRun
from service.transport import convert as c
from service.transport import requests as r
from service.transport.model import invoice_model, vendor_model
from service.transport.requests import Ctx
from service.transport.servicers.base import Resources


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
        vendor = r.vendor(v, request.vendor)
        payload: Any = None
        try:
            payload = json.loads(request.invoice_json, parse_float=vendors.json_decimal)
        except (ValueError, RecursionError) as exc:
            v.add("invoice_json", f"is not JSON: {str(exc)[:200]}")
        v.raise_if_any()
        inv = vendors.import_invoice(vendor, payload)
        try:
            created, op = await self.h.create(request.company_id, inv, "ImportInvoice", imported=True, run=run)
        except InvalidArgument as exc:
            raise vendors.vendor_violations(vendor, exc) from exc
        return svc.ImportInvoiceResponse(invoice=c.invoice_out(created), push_operation=c.push_out(op))

    async def ExportInvoice(self, request: svc.ExportInvoiceRequest, context: Ctx) -> svc.ExportInvoiceResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        vendor = r.vendor(v, request.vendor)
        v.raise_if_any()
        inv = await self.h.get(request.company_id, key)
        return svc.ExportInvoiceResponse(invoice_json=vendors.dumps(vendors.export_invoice(vendor, inv)))
