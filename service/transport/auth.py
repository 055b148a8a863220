"""Authentication for every RPC but health and reflection: the API key's company becomes the caller's."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from service.handlers.auth import CALLER_COMPANY, Keys, until_revoked
from service.transport.interceptors import Behaviour, WrappingInterceptor

OPEN = ("/grpc.health.v1.", "/grpc.reflection.")  # probes and tooling work without a key


def _authorization(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return ""


class AuthInterceptor(WrappingInterceptor):
    skip = OPEN

    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    def wrap(self, behaviour: Behaviour, kind: str, method: str) -> Behaviour:
        return self._wrap(behaviour, kind)

    def _wrap(self, behaviour: Callable[..., Any], kind: str) -> Callable[..., Any]:
        keys = self.keys
        # The caller's company is set inside the handler's own task, so every layer below can read it.
        if kind.endswith("stream"):

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                authorization = _authorization(context)
                token = CALLER_COMPANY.set(await keys.company(authorization))
                try:
                    with keys.stream_guard(authorization) as revoked:  # a revoked key ends the stream at once
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
                token = CALLER_COMPANY.set(await keys.company(authorization))
                try:
                    with keys.stream_guard(authorization) as revoked:
                        return await behaviour(until_revoked(requests, revoked), context)
                finally:
                    CALLER_COMPANY.reset(token)

            return client_stream

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            token = CALLER_COMPANY.set(await keys.company(_authorization(context)))
            try:
                return await behaviour(request, context)
            finally:
                CALLER_COMPANY.reset(token)

        return unary
