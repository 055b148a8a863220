"""Each RPC's policy, in one table built from the service descriptors plus a few explicit overrides.

The guard, the auth interceptor and the registration read this table; no code tests an RPC's name.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from invoices.v1 import invoice_service_pb2, push_operation_service_pb2

from service.handlers.invoices import MAX_BATCH, MAX_BATCH_ITEMS


@dataclass(frozen=True, slots=True)
class Policy:
    name: str  # the method's short name, which is also the push operation's `operation`
    write: bool  # changes data: refused to read-only keys
    idempotent: bool  # takes an AIP-155 request_id (or `idempotency-key` metadata)
    async_capable: bool  # may answer a PENDING push operation and let a worker apply it
    client_streaming: bool
    server_streaming: bool
    has_company: bool  # names the company it acts on (`company_id`), checked against the caller's key
    data_type: str = "invoices"  # the push operation's dataType
    max_batch: int | None = None  # items per call (`requests`)
    max_batch_line_items: int | None = None  # line items over all the batch's invoices

    def batch_size(self, request: Any) -> int | None:
        """How many items `request` carries, for a batch method; None otherwise."""
        return len(request.requests) if self.max_batch is not None else None


def _is_idempotent_write(method: MethodDescriptor) -> bool:
    """Writes take an AIP-155 request_id and answer with the push operation they left."""
    return "request_id" in method.input_type.fields_by_name and "push_operation" in method.output_type.fields_by_name


def _derived(method: MethodDescriptor) -> Policy:
    idempotent = _is_idempotent_write(method)
    return Policy(
        name=method.name,
        # Every method answering with the push operation it left changes data (UploadAttachment too).
        write="push_operation" in method.output_type.fields_by_name,
        idempotent=idempotent,
        async_capable=idempotent and not method.client_streaming and not method.server_streaming,
        client_streaming=method.client_streaming,
        server_streaming=method.server_streaming,
        has_company="company_id" in method.input_type.fields_by_name,
        max_batch=MAX_BATCH if "requests" in method.input_type.fields_by_name else None,
    )


# What the descriptors do not say.
_OVERRIDES: dict[str, dict[str, Any]] = {
    "invoices.v1.InvoiceService.BatchCreateInvoices": {"max_batch_line_items": MAX_BATCH_ITEMS},
    "invoices.v1.InvoiceService.AddCustomerCredit": {"data_type": "customerCreditBalances"},
    "invoices.v1.InvoiceService.UpdateCompanyProfile": {"data_type": "companyProfiles"},
    "invoices.v1.InvoiceService.RefundCustomerCredit": {"data_type": "customerCreditBalances"},
    "invoices.v1.InvoiceService.CreateCreditNote": {"data_type": "creditNotes"},
    "invoices.v1.InvoiceService.IssueCreditNote": {"data_type": "creditNotes"},
    "invoices.v1.InvoiceService.UpdateCreditNote": {"data_type": "creditNotes"},
    "invoices.v1.InvoiceService.VoidCreditNote": {"data_type": "creditNotes"},
}


def policy_table(*services: ServiceDescriptor) -> dict[str, Policy]:
    """Every method of `services` by full name (`invoices.v1.InvoiceService.GetInvoice`)."""
    return {
        method.full_name: replace(_derived(method), **_OVERRIDES.get(method.full_name, {}))
        for service in services
        for method in service.methods
    }


INVOICE_SERVICE = invoice_service_pb2.DESCRIPTOR.services_by_name["InvoiceService"]
PUSH_SERVICE = push_operation_service_pb2.DESCRIPTOR.services_by_name["PushOperationService"]
POLICIES = policy_table(INVOICE_SERVICE, PUSH_SERVICE)


def policy_of(method: MethodDescriptor) -> Policy:
    return POLICIES.get(method.full_name) or policy_table(method.containing_service)[method.full_name]


def is_write(method: MethodDescriptor) -> bool:
    """Whether `method` is an idempotent (AIP-155) write, as the policy table says."""
    return policy_of(method).idempotent


def write_paths(service: ServiceDescriptor) -> frozenset[str]:
    """The gRPC paths (`/invoices.v1.InvoiceService/CreateInvoice`) of the methods that change data."""
    return frozenset(f"/{service.full_name}/{m.name}" for m in service.methods if policy_of(m).write)
