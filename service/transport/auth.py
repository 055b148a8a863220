"""Authentication for every RPC but health and reflection: the API key's company becomes the caller's."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from service.handlers.auth import CALLER_COMPANY, Keys, PermissionDenied, until_revoked
from service.transport.guard import is_write
from service.transport.interceptors import Call, WrappingInterceptor

OPEN = ("/grpc.health.v1.", "/grpc.reflection.")  # probes and tooling work without a key


def _authorization(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return ""


def write_methods(service: ServiceDescriptor) -> frozenset[str]:
    """The methods of `service` that change data, from its descriptors: the AIP-155 writes (guard.is_write),
    and every other method answering with the push operation it left (UploadAttachment)."""
    return frozenset(
        f"/{service.full_name}/{m.name}"
        for m in service.methods
        if is_write(m) or "push_operation" in m.output_type.fields_by_name
    )


class AuthInterceptor(WrappingInterceptor):
    skip = OPEN

    def __init__(self, keys: Keys, writes: frozenset[str] = frozenset()) -> None:
        self.keys = keys
        self.writes = writes  # refused to read-only keys

    @contextlib.asynccontextmanager
    async def around(self, call: Call) -> AsyncIterator[None]:
        authorization = _authorization(call.context)
        found = await self.keys.grant(authorization)
        if call.method in self.writes and found.read_only:  # a read-only key may not upload either
            raise PermissionDenied("this API key is read-only: it may not change data")
        # The caller's company is set inside the handler's own task, so every layer below can read it.
        token = CALLER_COMPANY.set(found.company_id)
        try:
            if call.kind == "unary_unary":
                yield
                return
            # A revoked (or expiring) key ends a stream at once, and an upload while it waits for the client.
            with self.keys.stream_guard(authorization, found.expire_time) as revoked:
                if call.kind == "stream_unary":
                    call.request = until_revoked(call.request, revoked)
                else:
                    call.responses = partial(until_revoked, revoked=revoked)
                yield
        finally:
            # A stream the client cancelled is closed by grpc from another task, whose context never held
            # the variable: nothing to restore there.
            with contextlib.suppress(ValueError):
                CALLER_COMPANY.reset(token)
