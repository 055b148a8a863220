"""What every InvoiceService resource servicer holds: the use cases it calls."""

from __future__ import annotations

from invoices.v1 import invoice_service_pb2_grpc as svc_grpc

from service.handlers.attachments import AttachmentHandlers
from service.handlers.idempotency import Idempotency
from service.handlers.invoices import InvoiceHandlers
from service.handlers.listing import ListingHandlers
from service.transport.auth import Callers


class Resources(svc_grpc.InvoiceServiceServicer):
    """Subclasses the generated servicer, so the type checker holds every method to its RPC's types."""

    def __init__(
        self,
        handlers: InvoiceHandlers,
        listing: ListingHandlers,
        attachments: AttachmentHandlers,
        idempotency: Idempotency,
        callers: Callers,
    ) -> None:
        self.h = handlers
        self.listing = listing
        self.attachments = attachments
        # UploadAttachment's own: client streams do not pass through the guard.
        self.idempotency = idempotency
        self.callers = callers
