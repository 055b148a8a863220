"""InvoiceService, one module per resource; each RPC parses its request (requests.py, convert.py), calls
one use case and converts the answer. Registered by wire.add_service behind the guard."""

from __future__ import annotations

from service.transport.servicers.attachments import AttachmentRpcs
from service.transport.servicers.credit_notes import CreditNoteRpcs
from service.transport.servicers.invoices import InvoiceRpcs
from service.transport.servicers.lifecycle import LifecycleRpcs
from service.transport.servicers.payments import PaymentRpcs
from service.transport.servicers.profiles import ProfileRpcs
from service.transport.servicers.vendors import VendorRpcs

__all__ = ["InvoiceServicer"]


class InvoiceServicer(InvoiceRpcs, LifecycleRpcs, PaymentRpcs, AttachmentRpcs, VendorRpcs, CreditNoteRpcs, ProfileRpcs):
    """Every InvoiceService RPC (each resource class subclasses the generated servicer)."""
