"""Invoices: create, read, list, update, delete, preview, and their line and taxation items."""

from __future__ import annotations

from collections.abc import AsyncIterator

from invoices.v1 import invoice_service_pb2 as svc

from service.domain import money
from service.domain.errors import Violations
from service.domain.push import AsyncRun
from service.handlers.listing import ListQuery
from service.transport import convert as c
from service.transport import requests as r
from service.transport.document import get_answer, list_answer, write_answer
from service.transport.requests import Ctx
from service.transport.servicers.base import Resources


class InvoiceRpcs(Resources):
    async def CreateInvoice(
        self, request: svc.CreateInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.CreateInvoiceResponse:
        stored = await self.h.create(request.company_id, r.invoice_input(request), run=run)
        return write_answer(svc.CreateInvoiceResponse, stored.document, c.push_out(stored.operation))

    async def BatchCreateInvoices(
        self, request: svc.BatchCreateInvoicesRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.BatchCreateInvoicesResponse:
        v = Violations()
        invoices = []
        for i, item in enumerate(request.requests):
            r.same_company(v, i, request.company_id, item.company_id)
            if not item.HasField("invoice"):
                v.add(f"requests[{i}].invoice", "is required")
            invoices.append(c.invoice_in(item.invoice, v, f"requests[{i}].invoice"))
        v.raise_if_any()
        created, op = await self.h.batch_create(request.company_id, invoices, run=run)
        return svc.BatchCreateInvoicesResponse(
            invoices=[c.invoice_out(i) for i in created], push_operation=c.push_out(op)
        )

    async def GetInvoice(self, request: svc.GetInvoiceRequest, context: Ctx) -> svc.GetInvoiceResponse:
        document = await self.h.get_document(request.company_id, request.invoice_id, request.invoice_number)
        return get_answer(document)

    async def ListInvoices(
        self, request: svc.ListInvoicesRequest, context: Ctx
    ) -> AsyncIterator[svc.ListInvoicesResponse]:
        query = ListQuery(
            company_id=request.company_id,
            filter=request.filter,
            order_by=request.order_by,
            page_size=request.page_size,
            page_token=request.page_token,
            max_results=request.max_results,
            include_total=request.include_total,
        )
        async for batch in self.listing.stream(query):
            yield list_answer(batch.body, batch.next_page_token, batch.total)

    async def GetCustomerInvoiceSummary(
        self, request: svc.GetCustomerInvoiceSummaryRequest, context: Ctx
    ) -> svc.GetCustomerInvoiceSummaryResponse:
        v = Violations()
        r.require(v, "customer_id", request.customer_id)
        v.raise_if_any()
        out = svc.GetCustomerInvoiceSummaryResponse(customer_id=request.customer_id)
        for s in await self.listing.customer_summary(request.company_id, request.customer_id):
            cur = s.currency  # sums of no invoice are 0 from SQL: shown at the currency's exponent like any amount
            out.summaries.add(
                currency=cur,
                total_invoice_count=s.invoiced_count,
                total_invoiced_amount=money.fmt(s.invoiced_amount, cur),
                unpaid_invoice_count=s.unpaid_count,
                total_unpaid_amount=money.fmt(s.unpaid_amount, cur),
                overdue_invoice_count=s.overdue_count,
                total_overdue_amount=money.fmt(s.overdue_amount, cur),
            )
        return out

    async def UpdateInvoice(
        self, request: svc.UpdateInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.UpdateInvoiceResponse:
        v = Violations()
        spec = r.update_spec(request, v, "invoice")
        v.raise_if_any()
        stored = await self.h.update(request.company_id, spec, run=run)
        return write_answer(svc.UpdateInvoiceResponse, stored.document, c.push_out(stored.operation))

    async def BatchUpdateInvoices(
        self, request: svc.BatchUpdateInvoicesRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.BatchUpdateInvoicesResponse:
        v = Violations()
        specs = []
        for i, item in enumerate(request.requests):
            r.same_company(v, i, request.company_id, item.company_id)
            specs.append(r.update_spec(item, v, f"requests[{i}].invoice"))
        v.raise_if_any()
        out, op = await self.h.batch_update(request.company_id, specs, run=run)
        return svc.BatchUpdateInvoicesResponse(invoices=[c.invoice_out(i) for i in out], push_operation=c.push_out(op))

    async def DeleteInvoice(
        self, request: svc.DeleteInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.DeleteInvoiceResponse:
        key = r.invoice_key_only(request.invoice_id)
        op = await self.h.delete(request.company_id, key, request.etag, run=run)
        return svc.DeleteInvoiceResponse(push_operation=c.push_out(op))

    async def PreviewInvoice(self, request: svc.PreviewInvoiceRequest, context: Ctx) -> svc.PreviewInvoiceResponse:
        inv = await self.h.preview(request.company_id, r.invoice_input(request))
        return svc.PreviewInvoiceResponse(invoice=c.invoice_out(inv))

    async def ListInvoiceItems(
        self, request: svc.ListInvoiceItemsRequest, context: Ctx
    ) -> svc.ListInvoiceItemsResponse:
        key = r.invoice_key_only(request.invoice_id)
        lines, token = await self.h.list_items(request.company_id, key, request.page_size, request.page_token)
        return svc.ListInvoiceItemsResponse(line_items=[c.line_out(x) for x in lines], next_page_token=token)

    async def CreateTaxationItems(
        self, request: svc.CreateTaxationItemsRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.CreateTaxationItemsResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        if not request.taxation_items:
            v.add("taxation_items", "at least one taxation item is required")
        items = []
        for i, t in enumerate(request.taxation_items):
            r.require(v, f"taxation_items[{i}].line_item_id", t.line_item_id)
            items.append(c.taxation_in(t, v, f"taxation_items[{i}]"))
        v.raise_if_any()
        created, inv, op = await self.h.create_taxation_items(request.company_id, key, items, run=run)
        return svc.CreateTaxationItemsResponse(
            taxation_items=[c.taxation_out(t, inv.currency) for t in created],
            invoice=c.invoice_out(inv),
            push_operation=c.push_out(op),
        )

    async def ListTaxationItems(
        self, request: svc.ListTaxationItemsRequest, context: Ctx
    ) -> svc.ListTaxationItemsResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        r.require(v, "line_item_id", request.line_item_id)
        v.raise_if_any()
        items = await self.h.list_taxation_items(request.company_id, key, request.line_item_id)
        return svc.ListTaxationItemsResponse(taxation_items=[c.taxation_out(t) for t in items])
