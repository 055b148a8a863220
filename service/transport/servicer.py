"""InvoiceService: parse the request, call the handler, convert the answer. Nothing else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any, cast

import grpc
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from service import vendors
from service.domain import models as m
from service.domain import money
from service.domain.errors import DomainError, FieldViolation, InvalidArgument, Violations
from service.domain.push import AsyncRun, PushOperation
from service.domain.values import ZERO, check_text, parse_currency, parse_datetime, parse_decimal
from service.handlers.attachments import PDF_CHUNK, AttachmentHandlers, UploadMeta
from service.handlers.auth import check_company
from service.handlers.idempotency import Idempotency
from service.handlers.invoices import CreditBalance, InvoiceHandlers, UpdateSpec
from service.handlers.listing import ListingHandlers, ListQuery
from service.transport import convert as c
from service.transport.errors import to_status
from service.transport.guard import ReplayedStatus, Undecodable, scan
from service.transport.model import invoice_model, vendor_model
from service.transport.tracing import describe_answer
from service.transport.wire import length_delimited, varint_field

Ctx = grpc.aio.ServicerContext[Any, Any]
INVOICE_FIELD = svc.GetInvoiceResponse.INVOICE_FIELD_NUMBER
assert INVOICE_FIELD == svc.ListInvoicesResponse.INVOICES_FIELD_NUMBER, "stored documents are framed for both"
TOKEN_FIELD = svc.ListInvoicesResponse.NEXT_PAGE_TOKEN_FIELD_NUMBER
TOTAL_FIELD = svc.ListInvoicesResponse.TOTAL_SIZE_FIELD_NUMBER
DOWNLOAD_ATTACHMENT = svc.DownloadAttachmentResponse.ATTACHMENT_FIELD_NUMBER
DOWNLOAD_OFFSET = svc.DownloadAttachmentResponse.OFFSET_FIELD_NUMBER
DOWNLOAD_CHUNK = svc.DownloadAttachmentResponse.CHUNK_FIELD_NUMBER
PUSH_FIELD = svc.CreateInvoiceResponse.PUSH_OPERATION_FIELD_NUMBER
END_OF_STREAM_GRACE = 0.05  # seconds an upload waits after its last message for a cancellation to arrive
# The writes answered with stored documents (wire.PRESERIALIZED): invoice(s) field 1, push_operation field 2.
for _answer_type in (svc.CreateInvoiceResponse, svc.FinalizeInvoiceResponse, svc.RecordPaymentResponse):
    assert (_answer_type.INVOICE_FIELD_NUMBER, _answer_type.PUSH_OPERATION_FIELD_NUMBER) == (INVOICE_FIELD, PUSH_FIELD)
assert svc.BatchCreateInvoicesResponse.INVOICES_FIELD_NUMBER == INVOICE_FIELD
assert svc.BatchCreateInvoicesResponse.PUSH_OPERATION_FIELD_NUMBER == PUSH_FIELD


def _require(v: Violations, path: str, value: str) -> str:
    if not value:
        v.add(path, "is required")
    elif len(value) > 255:
        v.add(path, "must be at most 255 characters")
    return value


def _invoice_input(req: svc.CreateInvoiceRequest | svc.PreviewInvoiceRequest, path: str = "invoice") -> m.Invoice:
    v = Violations()
    if not req.HasField("invoice"):
        v.add(path, "is required")
        v.raise_if_any()
    inv = c.invoice_in(req.invoice, v, path)
    v.raise_if_any()
    return inv


def _update_spec(req: svc.UpdateInvoiceRequest, v: Violations, path: str) -> UpdateSpec:
    if not req.HasField("invoice"):
        v.add(path, "is required")
    _require(v, f"{path}.id", req.invoice.id)
    paths = set(req.update_mask.paths) if req.update_mask.paths else c.implicit_paths(req.invoice)
    if "*" in paths:
        paths = {f.name for f in pb.Invoice.DESCRIPTOR.fields} - c.OUTPUT_ONLY
    patch = c.invoice_in(req.invoice, v, path, paths)
    patch.id = req.invoice.id
    return UpdateSpec(patch=patch, paths=frozenset(paths), etag=req.invoice.etag)


def _vendor(v: Violations, number: int, required: bool = True) -> str:
    """The vendor enum as the name service.vendors knows it."""
    if number == 0:
        if required:
            v.add("vendor", "is required: VENDOR_CODAT, VENDOR_FLEXPRICE or VENDOR_ZUORA")
        return ""
    if number not in svc.Vendor.values():
        v.add("vendor", f"unknown vendor {number}")
        return ""
    return svc.Vendor.Name(cast(Any, number)).removeprefix("VENDOR_").lower()


def _metadata_value(ctx: Ctx | None, key: str) -> str:
    for k, v in (ctx.invocation_metadata() or ()) if ctx is not None else ():
        if k == key:
            return str(v)
    return ""


def _same_company(v: Violations, index: int, batch_company: str, item_company: str) -> None:
    if item_company and item_company != batch_company:
        v.add(f"requests[{index}].company_id", "must be empty or equal to the batch's company_id")


def _balance_out(b: CreditBalance) -> pb.CustomerCreditBalance:
    out = pb.CustomerCreditBalance(
        company_id=b.company_id,
        customer_id=b.customer_id,
        currency=b.currency,
        balance=money.fmt(b.balance, b.currency),
    )
    c.ts_out(out, "update_time", b.update_time)
    return out


def _ids(invoice_id: str) -> None:
    v = Violations()
    _require(v, "invoice_id", invoice_id)
    v.raise_if_any()


def _opt_date(v: Violations, path: str, raw: str) -> datetime | None:
    return parse_datetime(v, path, raw) if raw else None


# Documents rendered during this call (a context variable: each RPC runs in its own task), so a write's
# answer reuses the bytes it stored instead of converting and serializing the invoice a second time.
_RENDERED: ContextVar[dict[int, tuple[m.Invoice, int, datetime | None, bytes]] | None] = ContextVar(
    "rendered_documents", default=None
)


def render(inv: m.Invoice) -> bytes:
    """What the store keeps beside each invoice: the serialized Invoice framed as field 1, which is
    GetInvoiceResponse.invoice and ListInvoicesResponse.invoices alike. A GetInvoice answer is the
    stored bytes; a ListInvoices batch is stored bytes end to end."""
    document = length_delimited(INVOICE_FIELD, c.invoice_out(inv).SerializeToString())
    rendered = _RENDERED.get()
    if rendered is None:
        _RENDERED.set(rendered := {})
    rendered[id(inv)] = (inv, inv.version, inv.modified_date, document)
    return document


def _document(inv: m.Invoice) -> bytes:
    """The document this call stored for `inv` if it still describes it (same version and modification
    time: a save renders last), else a fresh rendering."""
    hit = (_RENDERED.get() or {}).get(id(inv))
    if hit is not None and hit[0] is inv and hit[1] == inv.version and hit[2] == inv.modified_date:
        return hit[3]
    return render(inv)


def _answer(documents: bytes, op: PushOperation, invoice_id: str = "") -> bytes:
    """A write's response (invoice or invoices as field 1, push_operation as field 2), serialized."""
    describe_answer(invoice_id, op.key)
    return documents + length_delimited(PUSH_FIELD, c.push_out(op).SerializeToString())


def _upload_message(msg: svc.UploadAttachmentRequest | Undecodable) -> svc.UploadAttachmentRequest:
    """A client-streamed message, or INVALID_ARGUMENT for bytes that did not parse (as unary calls get)."""
    if isinstance(msg, Undecodable):
        raise InvalidArgument(
            [FieldViolation("request", f"is not a valid invoices.v1.UploadAttachmentRequest: {msg.reason}")]
        )
    return msg


class InvoiceServicer:
    """Registered by wire.add_invoice_service; GetInvoice and ListInvoices return serialized bytes."""

    def __init__(
        self,
        handlers: InvoiceHandlers,
        listing: ListingHandlers,
        attachments: AttachmentHandlers,
        idempotency: Idempotency,
    ) -> None:
        self.h = handlers
        self.listing = listing
        self.attachments = attachments
        self.idempotency = idempotency  # UploadAttachment's own: client streams do not pass through the guard

    async def CreateInvoice(self, req: svc.CreateInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None) -> bytes:
        inv, op = await self.h.create(req.company_id, _invoice_input(req), run=run)
        return _answer(_document(inv), op, inv.id)

    async def BatchCreateInvoices(
        self, req: svc.BatchCreateInvoicesRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> bytes:
        v = Violations()
        invoices = []
        for i, r in enumerate(req.requests):
            _same_company(v, i, req.company_id, r.company_id)
            if not r.HasField("invoice"):
                v.add(f"requests[{i}].invoice", "is required")
            invoices.append(c.invoice_in(r.invoice, v, f"requests[{i}].invoice"))
        v.raise_if_any()
        created, op = await self.h.batch_create(req.company_id, invoices, run=run)
        return _answer(b"".join(_document(i) for i in created), op)

    async def GetInvoice(self, req: svc.GetInvoiceRequest, ctx: Ctx) -> bytes:
        return await self.h.get_document(req.company_id, req.invoice_id, req.invoice_number)

    async def ListInvoices(self, req: svc.ListInvoicesRequest, ctx: Ctx) -> AsyncIterator[bytes]:
        query = ListQuery(
            company_id=req.company_id, filter=req.filter, order_by=req.order_by, page_size=req.page_size,
            page_token=req.page_token, max_results=req.max_results, include_total=req.include_total,
        )  # fmt: skip
        async for batch in self.listing.stream(query):
            token = length_delimited(TOKEN_FIELD, batch.next_page_token.encode()) if batch.next_page_token else b""
            total = varint_field(TOTAL_FIELD, batch.total) if batch.total is not None else b""
            yield batch.body + token + total

    async def GetCustomerInvoiceSummary(
        self, req: svc.GetCustomerInvoiceSummaryRequest, ctx: Ctx
    ) -> svc.GetCustomerInvoiceSummaryResponse:
        v = Violations()
        _require(v, "customer_id", req.customer_id)
        v.raise_if_any()
        out = svc.GetCustomerInvoiceSummaryResponse(customer_id=req.customer_id)
        for s in await self.listing.customer_summary(req.company_id, req.customer_id):
            cur = s.currency  # sums of no invoice are 0 from SQL: shown at the currency's exponent like any amount
            out.summaries.add(
                currency=cur, total_invoice_count=s.invoiced_count,
                total_invoiced_amount=money.fmt(s.invoiced_amount, cur), unpaid_invoice_count=s.unpaid_count,
                total_unpaid_amount=money.fmt(s.unpaid_amount, cur), overdue_invoice_count=s.overdue_count,
                total_overdue_amount=money.fmt(s.overdue_amount, cur),
            )  # fmt: skip
        return out

    async def UpdateInvoice(
        self, req: svc.UpdateInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.UpdateInvoiceResponse:
        v = Violations()
        spec = _update_spec(req, v, "invoice")
        v.raise_if_any()
        inv, op = await self.h.update(req.company_id, spec, run=run)
        return svc.UpdateInvoiceResponse(invoice=c.invoice_out(inv), push_operation=c.push_out(op))

    async def BatchUpdateInvoices(
        self, req: svc.BatchUpdateInvoicesRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.BatchUpdateInvoicesResponse:
        v = Violations()
        specs = []
        for i, r in enumerate(req.requests):
            _same_company(v, i, req.company_id, r.company_id)
            specs.append(_update_spec(r, v, f"requests[{i}].invoice"))
        v.raise_if_any()
        out, op = await self.h.batch_update(req.company_id, specs, run=run)
        return svc.BatchUpdateInvoicesResponse(invoices=[c.invoice_out(i) for i in out], push_operation=c.push_out(op))

    async def DeleteInvoice(
        self, req: svc.DeleteInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.DeleteInvoiceResponse:
        _ids(req.invoice_id)
        op = await self.h.delete(req.company_id, req.invoice_id, req.etag, run=run)
        return svc.DeleteInvoiceResponse(push_operation=c.push_out(op))

    async def PreviewInvoice(self, req: svc.PreviewInvoiceRequest, ctx: Ctx) -> svc.PreviewInvoiceResponse:
        inv = await self.h.preview(req.company_id, _invoice_input(req))
        return svc.PreviewInvoiceResponse(invoice=c.invoice_out(inv))

    async def GetInvoiceModel(self, req: svc.GetInvoiceModelRequest, ctx: Ctx) -> svc.GetInvoiceModelResponse:
        v = Violations()
        _require(v, "company_id", req.company_id)
        vendor = _vendor(v, req.vendor, required=False)
        v.raise_if_any()
        return svc.GetInvoiceModelResponse(model=vendor_model(vendor) if vendor else invoice_model())

    async def ImportInvoice(
        self, req: svc.ImportInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.ImportInvoiceResponse:
        v = Violations()
        vendor = _vendor(v, req.vendor)
        payload: Any = None
        try:
            payload = json.loads(req.invoice_json, parse_float=vendors.json_decimal)
        except (ValueError, RecursionError) as exc:
            v.add("invoice_json", f"is not JSON: {str(exc)[:200]}")
        v.raise_if_any()
        inv = vendors.import_invoice(vendor, payload)
        created, op = await self.h.create(req.company_id, inv, "ImportInvoice", run=run)
        return svc.ImportInvoiceResponse(invoice=c.invoice_out(created), push_operation=c.push_out(op))

    async def ExportInvoice(self, req: svc.ExportInvoiceRequest, ctx: Ctx) -> svc.ExportInvoiceResponse:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        vendor = _vendor(v, req.vendor)
        v.raise_if_any()
        inv = await self.h.get(req.company_id, req.invoice_id)
        return svc.ExportInvoiceResponse(invoice_json=vendors.dumps(vendors.export_invoice(vendor, inv)))

    async def FinalizeInvoice(self, req: svc.FinalizeInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None) -> bytes:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        issue_date = _opt_date(v, "issue_date", req.issue_date)
        v.raise_if_any()
        inv, op = await self.h.finalize(req.company_id, req.invoice_id, req.etag, issue_date, run=run)
        return _answer(_document(inv), op, inv.id)

    async def BatchFinalizeInvoices(
        self, req: svc.BatchFinalizeInvoicesRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.BatchFinalizeInvoicesResponse:
        v = Violations()
        items = []
        for i, r in enumerate(req.requests):
            _same_company(v, i, req.company_id, r.company_id)
            _require(v, f"requests[{i}].invoice_id", r.invoice_id)
            items.append((r.invoice_id, r.etag, _opt_date(v, f"requests[{i}].issue_date", r.issue_date)))
        v.raise_if_any()
        out, op = await self.h.batch_finalize(req.company_id, items, run=run)
        return svc.BatchFinalizeInvoicesResponse(
            invoices=[c.invoice_out(i) for i in out], push_operation=c.push_out(op)
        )

    async def VoidInvoice(
        self, req: svc.VoidInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.VoidInvoiceResponse:
        _ids(req.invoice_id)
        inv, op, credited = await self.h.void(req.company_id, req.invoice_id, req.etag, run=run)
        return svc.VoidInvoiceResponse(
            invoice=c.invoice_out(inv), push_operation=c.push_out(op), credited_amount=money.fmt(credited, inv.currency)
        )

    async def CancelInvoice(
        self, req: svc.CancelInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.CancelInvoiceResponse:
        _ids(req.invoice_id)
        inv, op = await self.h.cancel(req.company_id, req.invoice_id, req.etag, run=run)
        return svc.CancelInvoiceResponse(invoice=c.invoice_out(inv), push_operation=c.push_out(op))

    def _memo_args(self, req: svc.ReverseInvoiceRequest | svc.WriteOffInvoiceRequest) -> None:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        check_text(v, "comment", req.comment)
        check_text(v, "reason_code", req.reason_code)
        v.raise_if_any()

    async def ReverseInvoice(
        self, req: svc.ReverseInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.ReverseInvoiceResponse:
        self._memo_args(req)
        inv, op, memo = await self.h.reverse(
            req.company_id, req.invoice_id, req.etag, req.comment, req.reason_code, run=run
        )
        return svc.ReverseInvoiceResponse(
            invoice=c.invoice_out(inv), push_operation=c.push_out(op), credit_memo=c.memo_out(memo)
        )

    async def WriteOffInvoice(
        self, req: svc.WriteOffInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.WriteOffInvoiceResponse:
        self._memo_args(req)
        inv, op, memo = await self.h.write_off(
            req.company_id, req.invoice_id, req.etag, req.comment, req.reason_code, run=run
        )
        return svc.WriteOffInvoiceResponse(
            invoice=c.invoice_out(inv), push_operation=c.push_out(op), credit_memo=c.memo_out(memo)
        )

    async def RecordPayment(self, req: svc.RecordPaymentRequest, ctx: Ctx, *, run: AsyncRun | None = None) -> bytes:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        if not req.HasField("payment_allocation"):
            v.add("payment_allocation", "is required")
        alloc = c.allocation_in(req.payment_allocation, v, "payment_allocation")
        v.raise_if_any()
        inv, op = await self.h.record_payment(req.company_id, req.invoice_id, alloc, run=run)
        return _answer(_document(inv), op, inv.id)

    async def UpdatePaymentStatus(
        self, req: svc.UpdatePaymentStatusRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.UpdatePaymentStatusResponse:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        status = c.enum_in(v, "payment_status", pb.PaymentStatus, req.payment_status, m.PaymentStatus)
        if status is None and not v:
            v.add("payment_status", "is required")
        amount = parse_decimal(v, "amount", req.amount, positive=True)
        v.raise_if_any()
        assert status is not None
        inv, op = await self.h.update_payment_status(req.company_id, req.invoice_id, status, amount, run=run)
        return svc.UpdatePaymentStatusResponse(invoice=c.invoice_out(inv), push_operation=c.push_out(op))

    async def AttemptPayment(
        self, req: svc.AttemptPaymentRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.AttemptPaymentResponse:
        _ids(req.invoice_id)
        inv, op, applied, balance = await self.h.attempt_payment(req.company_id, req.invoice_id, run=run)
        return svc.AttemptPaymentResponse(
            invoice=c.invoice_out(inv), push_operation=c.push_out(op), amount_applied=money.fmt(applied, inv.currency),
            credit_balance=_balance_out(balance),
        )  # fmt: skip

    async def AddCustomerCredit(
        self, req: svc.AddCustomerCreditRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.AddCustomerCreditResponse:
        v = Violations()
        _require(v, "customer_id", req.customer_id)
        currency = parse_currency(v, "currency", req.currency)
        amount = parse_decimal(v, "amount", req.amount, required=True, positive=True)
        if amount is not None and currency and not money.fits(amount, currency):
            v.add("amount", f"has more decimals than {currency} allows ({money.exponent(currency)}); got {amount:f}")
        check_text(v, "note", req.note)
        v.raise_if_any()
        balance, op = await self.h.add_credit(
            req.company_id, req.customer_id, currency or "", amount or ZERO, req.note, run=run
        )
        return svc.AddCustomerCreditResponse(credit_balance=_balance_out(balance), push_operation=c.push_out(op))

    async def GetCustomerCreditBalance(
        self, req: svc.GetCustomerCreditBalanceRequest, ctx: Ctx
    ) -> svc.GetCustomerCreditBalanceResponse:
        v = Violations()
        _require(v, "customer_id", req.customer_id)
        v.raise_if_any()
        balances = await self.h.credit_balances(req.company_id, req.customer_id)
        return svc.GetCustomerCreditBalanceResponse(credit_balances=[_balance_out(b) for b in balances])

    async def RecalculateInvoice(
        self, req: svc.RecalculateInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.RecalculateInvoiceResponse:
        _ids(req.invoice_id)
        inv, op = await self.h.recalculate(req.company_id, req.invoice_id, req.finalize, run=run)
        return svc.RecalculateInvoiceResponse(invoice=c.invoice_out(inv), push_operation=c.push_out(op))

    async def ListInvoiceItems(self, req: svc.ListInvoiceItemsRequest, ctx: Ctx) -> svc.ListInvoiceItemsResponse:
        _ids(req.invoice_id)
        lines, token = await self.h.list_items(req.company_id, req.invoice_id, req.page_size, req.page_token)
        return svc.ListInvoiceItemsResponse(line_items=[c.line_out(x) for x in lines], next_page_token=token)

    async def CreateTaxationItems(
        self, req: svc.CreateTaxationItemsRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.CreateTaxationItemsResponse:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        if not req.taxation_items:
            v.add("taxation_items", "at least one taxation item is required")
        items = []
        for i, t in enumerate(req.taxation_items):
            _require(v, f"taxation_items[{i}].line_item_id", t.line_item_id)
            items.append(c.taxation_in(t, v, f"taxation_items[{i}]"))
        v.raise_if_any()
        created, inv, op = await self.h.create_taxation_items(req.company_id, req.invoice_id, items, run=run)
        return svc.CreateTaxationItemsResponse(
            taxation_items=[c.taxation_out(t, inv.currency) for t in created],
            invoice=c.invoice_out(inv),
            push_operation=c.push_out(op),
        )

    async def ListTaxationItems(self, req: svc.ListTaxationItemsRequest, ctx: Ctx) -> svc.ListTaxationItemsResponse:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        _require(v, "line_item_id", req.line_item_id)
        v.raise_if_any()
        items = await self.h.list_taxation_items(req.company_id, req.invoice_id, req.line_item_id)
        return svc.ListTaxationItemsResponse(taxation_items=[c.taxation_out(t) for t in items])

    async def ListInvoiceApplications(
        self, req: svc.ListInvoiceApplicationsRequest, ctx: Ctx
    ) -> svc.ListInvoiceApplicationsResponse:
        _ids(req.invoice_id)
        parts = await self.h.list_applications(req.company_id, req.invoice_id)
        out = svc.ListInvoiceApplicationsResponse()
        for p in parts:
            part = out.application_parts.add(
                payment_id=p.payment_id, credit_memo_id=p.credit_memo_id, applied_amount=str(p.applied_amount),
                source=p.source,
            )  # fmt: skip
            c.ts_out(part, "create_time", p.create_time)
        return out

    # -- attachments, PDF, e-mail -----------------------------------------------------------

    async def UploadAttachment(
        self, requests: AsyncIterator[svc.UploadAttachmentRequest | Undecodable], ctx: Ctx
    ) -> svc.UploadAttachmentResponse:
        stream = requests.__aiter__()
        received = await self.attachments.next_message(stream)
        # An empty stream is refused below for its missing metadata.
        first = svc.UploadAttachmentRequest() if received is None else _upload_message(received)
        meta = None
        if first.HasField("metadata"):
            first.metadata.company_id = check_company(first.metadata.company_id)
            found = scan(first.metadata, "metadata")
            if found:
                raise InvalidArgument(found)
            md = first.metadata
            meta = UploadMeta(md.company_id, md.invoice_id, md.name, md.content_type, md.include_when_sent)

        async def chunks() -> AsyncIterator[bytes]:
            async for raw in stream:
                msg = _upload_message(raw)
                if msg.HasField("metadata"):
                    raise InvalidArgument([FieldViolation("metadata", "only the first message carries metadata")])
                yield msg.chunk
            # A client that cancels (or whose deadline passes) also ends the request stream, and grpc.aio
            # delivers the cancellation a moment after that end: wait that moment, so a cancelled upload is
            # never committed as a complete (truncated) file.
            await asyncio.sleep(END_OF_STREAM_GRACE)
            if ctx.cancelled():
                raise asyncio.CancelledError

        key = first.metadata.request_id or _metadata_value(ctx, "idempotency-key") if meta is not None else ""
        if not key:
            att, op = await self.attachments.upload(meta, chunks())
            return svc.UploadAttachmentResponse(attachment=c.attachment_out(att), push_operation=c.push_out(op))
        # The claim covers the metadata: the bytes are only known once they have streamed in.
        assert meta is not None
        body = svc.AttachmentUpload()
        body.CopyFrom(first.metadata)
        body.request_id = ""
        replay = await self.idempotency.begin(
            meta.company_id, key, "UploadAttachment", body.SerializeToString(deterministic=True)
        )
        if replay is not None:
            if replay.response is not None:
                return svc.UploadAttachmentResponse.FromString(replay.response)
            raise ReplayedStatus(replay.status or b"")
        try:
            att, op = await self.attachments.upload(meta, chunks())
        except DomainError as exc:
            await self.idempotency.finish(meta.company_id, key, None, to_status(exc).SerializeToString())
            raise
        except BaseException:
            await asyncio.shield(self.idempotency.release(meta.company_id, key))
            raise
        result = svc.UploadAttachmentResponse(attachment=c.attachment_out(att), push_operation=c.push_out(op))
        await self.idempotency.finish(meta.company_id, key, result.SerializeToString(), None)
        return result

    def _attachment_ids(
        self, req: svc.GetAttachmentRequest | svc.DeleteAttachmentRequest | svc.DownloadAttachmentRequest
    ) -> None:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        _require(v, "attachment_id", req.attachment_id)
        v.raise_if_any()

    async def ListAttachments(self, req: svc.ListAttachmentsRequest, ctx: Ctx) -> svc.ListAttachmentsResponse:
        _ids(req.invoice_id)
        found = await self.attachments.list_for(req.company_id, req.invoice_id)
        return svc.ListAttachmentsResponse(attachments=[c.attachment_out(a) for a in found])

    async def GetAttachment(self, req: svc.GetAttachmentRequest, ctx: Ctx) -> svc.GetAttachmentResponse:
        self._attachment_ids(req)
        att = await self.attachments.get(req.company_id, req.invoice_id, req.attachment_id)
        return svc.GetAttachmentResponse(attachment=c.attachment_out(att))

    async def DeleteAttachment(
        self, req: svc.DeleteAttachmentRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.DeleteAttachmentResponse:
        self._attachment_ids(req)
        op = await self.attachments.delete(req.company_id, req.invoice_id, req.attachment_id, run=run)
        return svc.DeleteAttachmentResponse(push_operation=c.push_out(op))

    async def DownloadAttachment(self, req: svc.DownloadAttachmentRequest, ctx: Ctx) -> AsyncIterator[bytes]:
        """Framed by hand (pre-serialized): a megabyte of file is copied once, not three times."""
        self._attachment_ids(req)
        async for att, offset, data in self.attachments.download(
            req.company_id, req.invoice_id, req.attachment_id, req.offset
        ):
            head = (
                b"" if att is None else length_delimited(DOWNLOAD_ATTACHMENT, c.attachment_out(att).SerializeToString())
            )
            yield head + varint_field(DOWNLOAD_OFFSET, offset) + length_delimited(DOWNLOAD_CHUNK, data)

    async def DownloadInvoicePdf(
        self, req: svc.DownloadInvoicePdfRequest, ctx: Ctx
    ) -> AsyncIterator[svc.DownloadInvoicePdfResponse]:
        _ids(req.invoice_id)
        name, data = await self.attachments.pdf(req.company_id, req.invoice_id)
        for start in range(0, len(data), PDF_CHUNK):
            out = svc.DownloadInvoicePdfResponse(chunk=data[start : start + PDF_CHUNK])
            if start == 0:
                out.file_name, out.content_type, out.size = name, "application/pdf", len(data)
            yield out

    async def TriggerInvoiceCommunication(
        self, req: svc.TriggerInvoiceCommunicationRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.TriggerInvoiceCommunicationResponse:
        _ids(req.invoice_id)
        op = await self.h.trigger_communication(req.company_id, req.invoice_id, run=run)
        return svc.TriggerInvoiceCommunicationResponse(push_operation=c.push_out(op))

    async def SendInvoice(
        self, req: svc.SendInvoiceRequest, ctx: Ctx, *, run: AsyncRun | None = None
    ) -> svc.SendInvoiceResponse:
        v = Violations()
        _require(v, "invoice_id", req.invoice_id)
        check_text(v, "subject", req.subject)
        check_text(v, "message", req.message, limit=10_000)
        v.raise_if_any()
        inv, op = await self.attachments.send(
            req.company_id, req.invoice_id, list(req.email_addresses), req.subject, req.message,
            req.SerializeToString(), req.request_id or _metadata_value(ctx, "idempotency-key"), run=run
        )  # fmt: skip
        return svc.SendInvoiceResponse(invoice=c.invoice_out(inv), push_operation=c.push_out(op))
