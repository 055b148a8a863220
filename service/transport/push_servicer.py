"""PushOperationService: reads and the live feeds. Registered by wire.add_service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import push_operation_pb2 as push_pb
from invoices.v1 import push_operation_service_pb2 as ps

from service.domain.errors import Violations
from service.handlers.events import EventHub
from service.handlers.listing import ListQuery
from service.handlers.push_operations import PushOperationHandlers
from service.transport import convert as c
from service.transport.wire import unframe

Ctx = grpc.aio.ServicerContext[Any, Any]


def _require(v: Violations, path: str, value: str) -> None:
    if not value:
        v.add(path, "is required")


class PushOperationServicer:
    def __init__(self, handlers: PushOperationHandlers, hub: EventHub) -> None:
        self.h = handlers
        self.hub = hub

    async def GetPushOperation(self, req: ps.GetPushOperationRequest, ctx: Ctx) -> ps.GetPushOperationResponse:
        v = Violations()
        _require(v, "push_operation_key", req.push_operation_key)
        v.raise_if_any()
        op = await self.h.get(req.company_id, req.push_operation_key)
        return ps.GetPushOperationResponse(push_operation=c.push_out(op))

    async def ListPushOperations(self, req: ps.ListPushOperationsRequest, ctx: Ctx) -> ps.ListPushOperationsResponse:
        query = ListQuery(company_id=req.company_id, filter=req.filter, order_by=req.order_by,
                          page_size=req.page_size, page_token=req.page_token)  # fmt: skip
        ops, token = await self.h.list(query)
        return ps.ListPushOperationsResponse(push_operations=[c.push_out(op) for op in ops], next_page_token=token)

    async def WatchPushOperations(
        self, req: ps.WatchPushOperationsRequest, ctx: Ctx
    ) -> AsyncIterator[ps.WatchPushOperationsResponse]:
        statuses = set()
        v = Violations()
        for i, status in enumerate(req.statuses):
            name = push_pb.PushOperationStatus.Name(status) if status in push_pb.PushOperationStatus.values() else ""
            if not name or status == 0:
                v.add(f"statuses[{i}]", f"unknown status {status}")
            statuses.add(name.removeprefix("PUSH_OPERATION_STATUS_"))
        v.raise_if_any()
        async for batch in self.hub.watch_push_operations(req.company_id, req.after_cursor, req.from_now, statuses):
            for cursor, op in batch:
                yield ps.WatchPushOperationsResponse(cursor=cursor, push_operation=c.push_out(op))

    async def WatchInvoiceEvents(
        self, req: ps.WatchInvoiceEventsRequest, ctx: Ctx
    ) -> AsyncIterator[ps.WatchInvoiceEventsResponse]:
        types = []
        v = Violations()
        for i, kind in enumerate(req.types):
            if kind == 0 or kind not in ps.InvoiceEventType.values():
                v.add(f"types[{i}]", f"unknown event type {kind}")
            else:
                types.append(ps.InvoiceEventType.Name(kind).removeprefix("INVOICE_EVENT_TYPE_"))
        v.raise_if_any()
        async for batch in self.hub.watch(req.company_id, req.after_cursor, req.from_now, types, req.invoice_id):
            out = ps.WatchInvoiceEventsResponse()
            for e in batch:
                event = out.events.add(
                    cursor=e.cursor, type=ps.InvoiceEventType.Value(f"INVOICE_EVENT_TYPE_{e.type.value}"),
                    company_id=e.company_id, invoice_id=e.invoice_id, push_operation_key=e.push_operation_key,
                    attachment_id=e.attachment_id,
                )  # fmt: skip
                event.create_time.FromDatetime(e.create_time)
                if e.invoice:
                    event.invoice.CopyFrom(pb.Invoice.FromString(unframe(e.invoice)))
            yield out
