"""Authentication for every RPC but health and reflection: the API key's company becomes the caller's."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from service.handlers.auth import CALLER_COMPANY, Grant, Keys, PermissionDenied, until_revoked
from service.transport.guard import is_write
from service.transport.interceptors import Behaviour, WrappingInterceptor

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

    def wrap(self, behaviour: Behaviour, kind: str, method: str) -> Behaviour:
        return self._wrap(behaviour, kind, method in self.writes)

    def _wrap(self, behaviour: Callable[..., Any], kind: str, write: bool) -> Callable[..., Any]:
        keys = self.keys

        async def grant(authorization: str) -> Grant:
            found = await keys.grant(authorization)
            if write and found.read_only:
                raise PermissionDenied("this API key is read-only: it may not change data")
            return found

        # The caller's company is set inside the handler's own task, so every layer below can read it.
        if kind.endswith("stream"):

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                authorization = _authorization(context)
                found = await grant(authorization)
                token = CALLER_COMPANY.set(found.company_id)
                try:
                    # A revoked (or expiring) key ends the stream at once.
                    with keys.stream_guard(authorization, found.expire_time) as revoked:
                        result = behaviour(request, context)
                        if inspect.isawaitable(result):
                            await result
                            return
                        async for item in until_revoked(result, revoked):
                            yield item
                finally:
                    # A stream the client cancelled is closed by grpc from another task, whose context
                    # never held the variable: nothing to restore there.
                    with contextlib.suppress(ValueError):
                        CALLER_COMPANY.reset(token)

            return stream

        if kind == "stream_unary":  # an upload: a revoked key ends it while it waits for the client

            async def client_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                authorization = _authorization(context)
                found = await grant(authorization)  # a read-only key may not upload
                token = CALLER_COMPANY.set(found.company_id)
                try:
                    with keys.stream_guard(authorization, found.expire_time) as revoked:
                        return await behaviour(until_revoked(requests, revoked), context)
                finally:
                    CALLER_COMPANY.reset(token)

            return client_stream

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            token = CALLER_COMPANY.set((await grant(_authorization(context))).company_id)
            try:
                return await behaviour(request, context)
            finally:
                CALLER_COMPANY.reset(token)

        return unary
