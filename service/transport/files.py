"""Files the service answers: a PDF streamed in chunks (the file's name, type and size in the first), and an
e-invoice in its response's XML or PDF field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from invoices.v1 import invoice_service_pb2 as svc

from service.domain.attachments import LimitExceeded
from service.handlers.einvoices import XML, EFile

PDF_CHUNK = 64 * 1024
Chunk = TypeVar("Chunk", svc.DownloadInvoicePdfResponse, svc.DownloadCreditNotePdfResponse)
Export = TypeVar("Export", svc.ExportInvoiceResponse, svc.ExportCreditNoteResponse)


def pdf_chunks(message_type: type[Chunk], name: str, data: bytes) -> Iterator[Chunk]:
    for start in range(0, len(data), PDF_CHUNK):
        out = message_type(chunk=data[start : start + PDF_CHUNK])
        if start == 0:
            out.file_name, out.content_type, out.size = name, "application/pdf", len(data)
        yield out


def e_file_out(message_type: type[Export], f: EFile, xml_field: str, pdf_field: str, limit: int, stream: str) -> Export:
    """The file in `xml_field` (text) when it is XML, else in `pdf_field` (bytes). A file over the answer's
    `limit` is RESOURCE_EXHAUSTED naming the way out (grpc's own refusal, "Sent message larger than max",
    named neither); `stream` is the RPC that streams the PDF."""
    if len(f.data) > limit:
        way = f"download it with {stream} (streamed)" if f.content_type != XML else "raise GRPC_MAX_MESSAGE_BYTES"
        raise LimitExceeded(
            f"{f.name} is {len(f.data):,} bytes; one answer holds at most {limit:,}: {way}", "answer: size"
        )
    content: dict[str, Any] = {xml_field: f.data.decode()} if f.content_type == XML else {pdf_field: f.data}
    return message_type(file_name=f.name, content_type=f.content_type, **content)
