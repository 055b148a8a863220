"""The stored invoice document: rendered, framed and answered here, and nowhere else.

Beside each invoice the store keeps its serialized `Invoice` framed as one entry of
`ListInvoicesResponse.invoices` (with the format version, store.schema.DOCUMENT_VERSION; a document of
another version is never read, so it is rendered again from the rows). A ListInvoices batch is stored
documents end to end and a GetInvoice answer is one, sent without building messages: converting an
invoice costs ~55 µs, parsing and serializing its document again ~2.7 µs, sending it as stored nothing
(ListInvoices streams hundreds of thousands a second). Answers are typed as their response message
(wire.prepared). A single-invoice write answers the document it stored (the use case hands it back) with
its push operation (write_answer), so a write converts its invoice once, for the store.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import push_operation_pb2 as ppb

from service.domain import models as m
from service.transport.convert import invoice_out
from service.transport.wire import length_delimited, prepared, unframe, varint_field

M = TypeVar("M", bound=Message)
_LIST = svc.ListInvoicesResponse
DOCUMENT_FIELD = _LIST.INVOICES_FIELD_NUMBER


def render(inv: m.Invoice) -> bytes:
    """The document stored with every change of `inv`."""
    return length_delimited(DOCUMENT_FIELD, invoice_out(inv).SerializeToString())


def invoice_of(document: bytes) -> pb.Invoice:
    """The invoice a document holds (an event's snapshot)."""
    return pb.Invoice.FromString(unframe(document))


def _field(message_type: type[Message], name: str) -> int:
    return int(message_type.DESCRIPTOR.fields_by_name[name].number)


def _framed_for(message_type: type[Message], field: str, documents: bytes) -> bytes:
    """`documents` as the `field` entries of `message_type`: as stored when the field numbers agree."""
    number = _field(message_type, field)
    if number == DOCUMENT_FIELD:
        return documents
    return b"".join(length_delimited(number, i.SerializeToString()) for i in _LIST.FromString(documents).invoices)


def get_answer(document: bytes) -> svc.GetInvoiceResponse:
    return prepared(svc.GetInvoiceResponse, _framed_for(svc.GetInvoiceResponse, "invoice", document))


@cache
def _operation_field(descriptor: Descriptor) -> int:
    """The push operation's field of a response holding an invoice and then a push operation, only."""
    fields = sorted(descriptor.fields, key=lambda f: int(f.number))
    if [f.name for f in fields] != ["invoice", "push_operation"]:
        raise TypeError(f"{descriptor.full_name} is not an answer of an invoice and then a push operation")
    return int(fields[1].number)


def write_answer(response_type: type[M], document: bytes, push_operation: ppb.PushOperation) -> M:
    """A single-invoice write's answer: the document the write stored as `invoice`, then `push_operation`,
    the bytes the converted message serializes to (fields in number order)."""
    operation = _operation_field(response_type.DESCRIPTOR)
    framed = _framed_for(response_type, "invoice", document)
    return prepared(response_type, framed + length_delimited(operation, push_operation.SerializeToString()))


def list_answer(documents: bytes, next_page_token: str, total: int | None) -> svc.ListInvoicesResponse:
    """One streamed batch: its documents, then the page token and the total when there are."""
    token = length_delimited(_LIST.NEXT_PAGE_TOKEN_FIELD_NUMBER, next_page_token.encode()) if next_page_token else b""
    size = varint_field(_LIST.TOTAL_SIZE_FIELD_NUMBER, total) if total is not None else b""
    return prepared(_LIST, documents + token + size)
