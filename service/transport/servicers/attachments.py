"""Attachments and documents: upload, list, read, delete and download files; the PDF; sending by e-mail."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from invoices.v1 import invoice_service_pb2 as svc

from service.domain.errors import DomainError, FieldViolation, InvalidArgument, Violations
from service.domain.push import AsyncRun
from service.domain.values import check_text
from service.handlers.attachments import UploadMeta
from service.transport import convert as c
from service.transport import requests as r
from service.transport.errors import to_status
from service.transport.files import pdf_chunks
from service.transport.guard import ReplayedStatus, Undecodable, scan
from service.transport.requests import Ctx
from service.transport.servicers.base import Resources
from service.transport.wire import length_delimited, prepared, varint_field

END_OF_STREAM_GRACE = 0.05  # seconds an upload waits after its last message for a cancellation to arrive
_DOWNLOAD = svc.DownloadAttachmentResponse


def _upload_message(msg: svc.UploadAttachmentRequest | Undecodable) -> svc.UploadAttachmentRequest:
    """A client-streamed message, or INVALID_ARGUMENT for bytes that did not parse (as unary calls get)."""
    if isinstance(msg, Undecodable):
        raise InvalidArgument(
            [FieldViolation("request", f"is not a valid invoices.v1.UploadAttachmentRequest: {msg.reason}")]
        )
    return msg


def _attachment_keys(
    request: svc.GetAttachmentRequest | svc.DeleteAttachmentRequest | svc.DownloadAttachmentRequest,
) -> str:
    v = Violations()
    key = r.invoice_key(v, "invoice_id", request.invoice_id)
    r.require(v, "attachment_id", request.attachment_id)
    v.raise_if_any()
    return key


class AttachmentRpcs(Resources):
    async def UploadAttachment(
        self, request_iterator: AsyncIterator[svc.UploadAttachmentRequest | Undecodable], context: Ctx
    ) -> svc.UploadAttachmentResponse:
        stream = request_iterator.__aiter__()
        received = await self.attachments.next_message(stream)
        # An empty stream is refused below for its missing metadata.
        first = svc.UploadAttachmentRequest() if received is None else _upload_message(received)
        meta = None
        if first.HasField("metadata"):
            first.metadata.company_id = await self.callers.company(context, first.metadata.company_id)
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
            if context.cancelled():
                raise asyncio.CancelledError

        key = first.metadata.request_id or r.metadata(context, "idempotency-key") if meta is not None else ""
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

    async def ListAttachments(self, request: svc.ListAttachmentsRequest, context: Ctx) -> svc.ListAttachmentsResponse:
        key = r.invoice_key_only(request.invoice_id)
        found = await self.attachments.list_for(request.company_id, key)
        return svc.ListAttachmentsResponse(attachments=[c.attachment_out(a) for a in found])

    async def GetAttachment(self, request: svc.GetAttachmentRequest, context: Ctx) -> svc.GetAttachmentResponse:
        key = _attachment_keys(request)
        att = await self.attachments.get(request.company_id, key, request.attachment_id)
        return svc.GetAttachmentResponse(attachment=c.attachment_out(att))

    async def DeleteAttachment(
        self, request: svc.DeleteAttachmentRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.DeleteAttachmentResponse:
        key = _attachment_keys(request)
        op = await self.attachments.delete(request.company_id, key, request.attachment_id, run=run)
        return svc.DeleteAttachmentResponse(push_operation=c.push_out(op))

    async def DownloadAttachment(
        self, request: svc.DownloadAttachmentRequest, context: Ctx
    ) -> AsyncIterator[svc.DownloadAttachmentResponse]:
        """Framed by hand: a megabyte of file is copied once, not three times."""
        key = _attachment_keys(request)
        async for att, offset, data in self.attachments.download(
            request.company_id, key, request.attachment_id, request.offset
        ):
            head = b"" if att is None else c.attachment_out(att).SerializeToString()
            frame = (
                (length_delimited(_DOWNLOAD.ATTACHMENT_FIELD_NUMBER, head) if head else b"")
                + varint_field(_DOWNLOAD.OFFSET_FIELD_NUMBER, offset)
                + length_delimited(_DOWNLOAD.CHUNK_FIELD_NUMBER, data)
            )
            yield prepared(_DOWNLOAD, frame)

    async def DownloadInvoicePdf(
        self, request: svc.DownloadInvoicePdfRequest, context: Ctx
    ) -> AsyncIterator[svc.DownloadInvoicePdfResponse]:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        facturx = r.pdf_format(v, request.format)
        v.raise_if_any()
        if facturx:
            f = await self.h.export_e_invoice(request.company_id, key, facturx)
            name, data = f.name, f.data
        else:
            name, data = await self.attachments.pdf(request.company_id, key)
        for out in pdf_chunks(svc.DownloadInvoicePdfResponse, name, data):
            yield out

    async def TriggerInvoiceCommunication(
        self, request: svc.TriggerInvoiceCommunicationRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.TriggerInvoiceCommunicationResponse:
        key = r.invoice_key_only(request.invoice_id)
        op = await self.h.trigger_communication(request.company_id, key, run=run)
        return svc.TriggerInvoiceCommunicationResponse(push_operation=c.push_out(op))

    async def SendInvoice(
        self, request: svc.SendInvoiceRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.SendInvoiceResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        check_text(v, "subject", request.subject)
        check_text(v, "message", request.message, limit=10_000)
        v.raise_if_any()
        inv, op = await self.attachments.send(
            request.company_id,
            key,
            list(request.email_addresses),
            request.subject,
            request.message,
            request.SerializeToString(),
            request.request_id or r.metadata(context, "idempotency-key"),
            run=run,
        )
        return svc.SendInvoiceResponse(invoice=c.invoice_out(inv), push_operation=c.push_out(op))
