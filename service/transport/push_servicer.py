"""PushOperationService: reads and the live feeds. Registered by wire.add_service behind the guard."""

from __future__ import annotations

from collections.abc import AsyncIterator

from invoices.v1 import push_operation_pb2 as push_pb
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc

from service.domain.errors import Violations
from service.handlers.events import EventHub
from service.handlers.listing import ListQuery
from service.handlers.push_operations import PushOperationHandlers
from service.transport import convert as c
from service.transport.document import invoice_of
from service.transport.requests import Ctx, require


class PushOperationServicer(ps_grpc.PushOperationServiceServicer):
    def __init__(self, handlers: PushOperationHandlers, hub: EventHub) -> None:
        self.h = handlers
        self.hub = hub

    async def GetPushOperation(self, request: ps.GetPushOperationRequest, context: Ctx) -> ps.GetPushOperationResponse:
        v = Violations()
        require(v, "push_operation_key", request.push_operation_key)
        v.raise_if_any()
        op = await self.h.get(request.company_id, request.push_operation_key)
        return ps.GetPushOperationResponse(push_operation=c.push_out(op))

    async def ListPushOperations(
        self, request: ps.ListPushOperationsRequest, context: Ctx
    ) -> ps.ListPushOperationsResponse:
        query = ListQuery(
            company_id=request.company_id,
            filter=request.filter,
            order_by=request.order_by,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        ops, token = await self.h.list(query)
        return ps.ListPushOperationsResponse(push_operations=[c.push_out(op) for op in ops], next_page_token=token)

    async def WatchPushOperations(
        self, request: ps.WatchPushOperationsRequest, context: Ctx
    ) -> AsyncIterator[ps.WatchPushOperationsResponse]:
        statuses = set()
        v = Violations()
        for i, status in enumerate(request.statuses):
            name = push_pb.PushOperationStatus.Name(status) if status in push_pb.PushOperationStatus.values() else ""
            if not name or status == 0:
                v.add(f"statuses[{i}]", f"unknown status {status}")
            statuses.add(name.removeprefix("PUSH_OPERATION_STATUS_"))
        v.raise_if_any()
        async for batch in self.hub.watch_push_operations(
            request.company_id, request.after_cursor, request.from_now, statuses
        ):
            for cursor, op in batch:
                yield ps.WatchPushOperationsResponse(cursor=cursor, push_operation=c.push_out(op))

    async def WatchInvoiceEvents(
        self, request: ps.WatchInvoiceEventsRequest, context: Ctx
    ) -> AsyncIterator[ps.WatchInvoiceEventsResponse]:
        types = []
        v = Violations()
        for i, kind in enumerate(request.types):
            if kind == 0 or kind not in ps.InvoiceEventType.values():
                v.add(f"types[{i}]", f"unknown event type {kind}")
            else:
                types.append(ps.InvoiceEventType.Name(kind).removeprefix("INVOICE_EVENT_TYPE_"))
        v.raise_if_any()
        async for batch in self.hub.watch(
            request.company_id, request.after_cursor, request.from_now, types, request.invoice_id
        ):
            out = ps.WatchInvoiceEventsResponse()
            for e in batch:
                event = out.events.add(
                    cursor=e.cursor,
                    type=ps.InvoiceEventType.Value(f"INVOICE_EVENT_TYPE_{e.type.value}"),
                    company_id=e.company_id,
                    invoice_id=e.invoice_id,
                    push_operation_key=e.push_operation_key,
                    attachment_id=e.attachment_id,
                )
                event.create_time.FromDatetime(e.create_time)
                if e.invoice:
                    event.invoice.CopyFrom(invoice_of(e.invoice))
            yield out
