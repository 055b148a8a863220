"""Registration of InvoiceService with per-method serializers, and protobuf framing of stored bytes.

GetInvoice and ListInvoices answer with invoices already serialized in the store: wrapping those bytes
as field 1 of the response is byte-for-byte what protobuf would produce, without rebuilding messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from invoices.v1 import invoice_service_pb2

from service.domain.errors import DomainError
from service.domain.push import AsyncRun
from service.transport.guard import WriteServices, deserializer, guarded

SERVICE = invoice_service_pb2.DESCRIPTOR.services_by_name["InvoiceService"]
# These handlers return bytes already framed as their response message.
PRESERIALIZED = frozenset(
    f"invoices.v1.InvoiceService.{name}"
    for name in (
        "GetInvoice", "ListInvoices", "DownloadAttachment", "CreateInvoice", "BatchCreateInvoices", "FinalizeInvoice",
        "RecordPayment",
    )
)  # fmt: skip
_FACTORIES: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field_number: int, payload: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def varint_field(field_number: int, value: int) -> bytes:
    return _varint(field_number << 3) + _varint(value) if value else b""


def unframe(framed: bytes) -> bytes:
    """The payload of one length-delimited field (undoes length_delimited)."""
    i = 1
    while framed[i] & 0x80:
        i += 1
    return framed[i + 1 :]


def _identity(payload: bytes) -> bytes:
    return payload


def add_service(server: grpc.aio.Server, service: ServiceDescriptor, servicer: object, services: WriteServices) -> None:
    """Registers every RPC of the descriptor; a servicer missing one fails here, at start-up."""
    handlers = {}
    for method in service.methods:
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        factory = _FACTORIES[(method.client_streaming, method.server_streaming)]
        behaviour = getattr(servicer, method.name)
        preserialized = method.full_name in PRESERIALIZED
        handlers[method.name] = factory(
            behaviour if method.client_streaming else guarded(method, behaviour, services, preserialized),
            request_deserializer=deserializer(request),  # undecodable bytes: INVALID_ARGUMENT, streams too
            response_serializer=_identity if preserialized else response.SerializeToString,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))


def dispatcher(servicer: object, services: WriteServices) -> Callable[[str, bytes, AsyncRun], Awaitable[None]]:
    """How a worker applies a stored request: the same guard and servicer path as a live call, with the
    worker's `run` passed down to the use case."""

    async def dispatch(operation: str, payload: bytes, run: AsyncRun) -> None:
        method = SERVICE.methods_by_name[operation]
        request = deserializer(message_factory.GetMessageClass(method.input_type))(payload)
        with contextlib.suppress(DomainError):  # recorded on the operation as FAILED
            preserialized = method.full_name in PRESERIALIZED
            await guarded(method, getattr(servicer, operation), services, preserialized)(request, None, run)

    return dispatch
