"""Registration of the services, the one response serializer, and protobuf framing by hand.

Every method's answer goes through `serialize`. An answer built from bytes already in protobuf form
(a stored invoice document, a file chunk) is a `prepared` message: typed as its response message,
serialized as the bytes it was given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from service.domain.errors import DomainError
from service.domain.push import AsyncRun
from service.transport.guard import GuardServices, deserializer, guarded
from service.transport.policy import INVOICE_SERVICE

M = TypeVar("M", bound=Message)
SERVICE = INVOICE_SERVICE
_FACTORIES: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler[Any, Any]]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class Prepared(Generic[M]):
    """A response message given as its serialized bytes. Serializing it returns them; reading any field
    parses them once (tracing, tests), so it stands in for the message everywhere."""

    __slots__ = ("_data", "_message", "_type")

    def __init__(self, message_type: type[M], data: bytes) -> None:
        self._type = message_type
        self._data = data
        self._message: M | None = None

    def SerializeToString(self, **_: Any) -> bytes:
        return self._data

    def ByteSize(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if self._message is None:
            self._message = self._type.FromString(self._data)
        return getattr(self._message, name)


def prepared(message_type: type[M], data: bytes) -> M:
    """`data` (the serialized form of a `message_type`) as that message, for the type checker too."""
    return cast(M, Prepared(message_type, data))


def serialize(message: Message) -> bytes:
    """The response serializer of every method."""
    return message.SerializeToString()


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


def add_service(server: grpc.aio.Server, service: ServiceDescriptor, servicer: object, services: GuardServices) -> None:
    """Registers every RPC of the descriptor; a servicer missing one fails here, at start-up."""
    handlers = {}
    for method in service.methods:
        request = message_factory.GetMessageClass(method.input_type)
        factory = _FACTORIES[(method.client_streaming, method.server_streaming)]
        behaviour = getattr(servicer, method.name)
        handlers[method.name] = factory(
            behaviour if method.client_streaming else guarded(method, behaviour, services),
            request_deserializer=deserializer(request),  # undecodable bytes: INVALID_ARGUMENT, streams too
            response_serializer=serialize,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))


def dispatcher(servicer: object, services: GuardServices) -> Callable[[str, bytes, AsyncRun], Awaitable[None]]:
    """How a worker applies a stored request: the same guard and servicer path as a live call, with the
    worker's `run` passed down to the use case."""

    async def dispatch(operation: str, payload: bytes, run: AsyncRun) -> None:
        method = SERVICE.methods_by_name[operation]
        request = deserializer(message_factory.GetMessageClass(method.input_type))(payload)
        with contextlib.suppress(DomainError):  # recorded on the operation as FAILED
            await guarded(method, getattr(servicer, operation), services)(request, None, run)

    return dispatch
