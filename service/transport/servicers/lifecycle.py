"""Invoice lifecycle: finalize, void, cancel, reverse, write off, recalculate."""

from __future__ import annotations

from invoices.v1 import invoice_service_pb2 as svc

from service.domain import money
from service.domain.errors import Violations
from service.domain.push import AsyncRun
from service.domain.values import check_text
from service.transport import convert as c
from service.transport import requests as r
from service.transport.document import write_answer
from service.transport.requests import Ctx
from service.transport.servicers.base import Resources


def _memo_args(request: svc.ReverseInvoiceRequest | svc.WriteOffInvoiceRequest) -> str:
    v = Violations()
    key = r.invoice_key(v, "invoice_id", request.invoice_id)
    check_text(v, "comment", request.comment)
    check_text(v, "reason_code", request.reason_code)
    v.raise_if_any()
    return key


class LifecycleRpcs(Resources):
    async def FinalizeInvoice(
        self, request: svc.FinalizeInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.FinalizeInvoiceResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        issue_date = r.optional_datetime(v, "issue_date", request.issue_date)
        v.raise_if_any()
        stored = await self.h.finalize(request.company_id, key, request.etag, issue_date, run=run)
        return write_answer(svc.FinalizeInvoiceResponse, stored.document, c.push_out(stored.operation))

    async def BatchFinalizeInvoices(
        self, request: svc.BatchFinalizeInvoicesRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.BatchFinalizeInvoicesResponse:
        v = Violations()
        items = []
        for i, item in enumerate(request.requests):
            r.same_company(v, i, request.company_id, item.company_id)
            key = r.invoice_key(v, f"requests[{i}].invoice_id", item.invoice_id)
            items.append((key, item.etag, r.optional_datetime(v, f"requests[{i}].issue_date", item.issue_date)))
        v.raise_if_any()
        out, op = await self.h.batch_finalize(request.company_id, items, run=run)
        return svc.BatchFinalizeInvoicesResponse(
            invoices=[c.invoice_out(i) for i in out], push_operation=c.push_out(op)
        )

    async def VoidInvoice(
        self, request: svc.VoidInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.VoidInvoiceResponse:
        key = r.invoice_key_only(request.invoice_id)
        inv, op, credited = await self.h.void(request.company_id, key, request.etag, run=run)
        return svc.VoidInvoiceResponse(
            invoice=c.invoice_out(inv), push_operation=c.push_out(op), credited_amount=money.fmt(credited, inv.currency)
        )

    async def CancelInvoice(
        self, request: svc.CancelInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.CancelInvoiceResponse:
        key = r.invoice_key_only(request.invoice_id)
        stored = await self.h.cancel(request.company_id, key, request.etag, run=run)
        return write_answer(svc.CancelInvoiceResponse, stored.document, c.push_out(stored.operation))

    async def ReverseInvoice(
        self, request: svc.ReverseInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.ReverseInvoiceResponse:
        key = _memo_args(request)
        inv, op, memo = await self.h.reverse(
            request.company_id, key, request.etag, request.comment, request.reason_code, run=run
        )
        return svc.ReverseInvoiceResponse(
            invoice=c.invoice_out(inv), push_operation=c.push_out(op), credit_memo=c.memo_out(memo)
        )

    async def WriteOffInvoice(
        self, request: svc.WriteOffInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.WriteOffInvoiceResponse:
        key = _memo_args(request)
        inv, op, memo = await self.h.write_off(
            request.company_id, key, request.etag, request.comment, request.reason_code, run=run
        )
        return svc.WriteOffInvoiceResponse(
            invoice=c.invoice_out(inv), push_operation=c.push_out(op), credit_memo=c.memo_out(memo)
        )

    async def RecalculateInvoice(
        self, request: svc.RecalculateInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.RecalculateInvoiceResponse:
        key = r.invoice_key_only(request.invoice_id)
        stored = await self.h.recalculate(request.company_id, key, request.finalize, run=run)
        return write_answer(svc.RecalculateInvoiceResponse, stored.document, c.push_out(stored.operation))
