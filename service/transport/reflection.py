"""Server reflection that grpcurl fully understands, as grpc.reflection.v1 and v1alpha.

Stock grpcio-reflection answers `file_containing_symbol` from the descriptor pool, which knows services,
messages, fields and enums but not methods (`invoices.v1.InvoiceService.CreateInvoice`) nor enum values
named through their enum (`invoices.v1.InvoiceStatus.INVOICE_STATUS_PAID`) (grpc/grpc#34743): `grpcurl
describe` of those said "Symbol not found". Here a symbol the pool does not know resolves to the file of
its parent service, message or enum when that parent has a method, field, oneof or value of that name.

grpcio-reflection ships only the v1alpha protocol; v1 is the same messages under another package, so the
v1 service is served by the same servicer with the v1alpha message classes (identical on the wire), and
its descriptor is registered (the v1alpha file renamed) so `list` and `describe` show it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer
from grpc_reflection.v1alpha._base import _file_descriptor_response, _not_found_error

V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
V1 = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """The v1 reflection file, made from the v1alpha one (same messages, fields and numbers)."""
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = _V1_FILE, "grpc.reflection.v1"
    proto.options.Clear()
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
    for method in proto.service[0].method:
        method.input_type = method.input_type.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
        method.output_type = method.output_type.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.")
    pool.Add(proto)


def containing_file(pool: descriptor_pool.DescriptorPool, symbol: str) -> FileDescriptor:
    """The file declaring `symbol`: any symbol the pool knows, or a method, field, oneof or enum value
    named through its parent. KeyError when there is none."""
    try:
        return pool.FindFileContainingSymbol(symbol)
    except KeyError:
        pass
    parent, _, member = symbol.rpartition(".")
    finders: tuple[tuple[Callable[[str], Any], str], ...] = (
        (pool.FindServiceByName, "methods_by_name"),
        (pool.FindMessageTypeByName, "fields_by_name"),
        (pool.FindMessageTypeByName, "oneofs_by_name"),
        (pool.FindEnumTypeByName, "values_by_name"),
    )
    for find, members in finders if parent else ():
        try:
            found = find(parent)
        except KeyError:
            continue
        if member in getattr(found, members):
            file: FileDescriptor = found.file
            return file
    raise KeyError(symbol)


class Reflection(ReflectionServicer):  # type: ignore[misc]
    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        try:
            descriptor = containing_file(self._pool, fully_qualified_name)
        except KeyError:
            return _not_found_error(request)
        return _file_descriptor_response(descriptor, request)


def enable_reflection(service_names: tuple[str, ...], server: grpc.aio.Server) -> None:
    pool = descriptor_pool.Default()
    _v1_descriptor(pool)
    servicer = Reflection((*service_names, V1ALPHA, V1), pool=pool)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for name in (V1ALPHA, V1):
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method}),))
