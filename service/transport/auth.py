"""Authentication for every RPC but health and reflection: the API key's company becomes the caller's.

The interceptor refuses calls without a valid key (and writes with a read-only one) and ends the
streams of a revoked key; the guard asks `Callers` for the company a call may act on."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

from service.handlers.auth import Grant, Keys, PermissionDenied, check_company, until_revoked
from service.transport.interceptors import Behaviour, WrappingInterceptor
from service.transport.requests import Ctx, metadata

OPEN = ("/grpc.health.v1.", "/grpc.reflection.")  # probes and tooling work without a key


class Callers:
    """The company a call acts on. With keys: the key's (the company a request names must be it, else
    NOT_FOUND). Without (authentication off), or for a stored request a worker applies (no context,
    checked when it was accepted): the company the request names."""

    def __init__(self, keys: Keys | None) -> None:
        self.keys = keys

    async def company(self, context: Ctx | None, requested: str) -> str:
        if self.keys is None or context is None:
            return requested
        grant = await self.keys.grant(metadata(context, "authorization"))  # cached since the interceptor's
        return check_company(grant.company_id, requested)


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

        if kind.endswith("stream"):

            async def stream(request: Any, context: Ctx) -> AsyncIterator[Any]:
                authorization = metadata(context, "authorization")
                found = await grant(authorization)
                # A revoked (or expiring) key ends the stream at once.
                with keys.stream_guard(authorization, found.expire_time) as revoked:
                    result = behaviour(request, context)
                    if inspect.isawaitable(result):
                        await result
                        return
                    async for item in until_revoked(result, revoked):
                        yield item

            return stream

        if kind == "stream_unary":  # an upload: a revoked key ends it while it waits for the client

            async def client_stream(requests: AsyncIterator[Any], context: Ctx) -> Any:
                authorization = metadata(context, "authorization")
                found = await grant(authorization)  # a read-only key may not upload
                with keys.stream_guard(authorization, found.expire_time) as revoked:
                    return await behaviour(until_revoked(requests, revoked), context)

            return client_stream

        async def unary(request: Any, context: Ctx) -> Any:
            await grant(metadata(context, "authorization"))
            return await behaviour(request, context)

        return unary
