"""Authentication for every RPC but health and reflection: the API key's company becomes the caller's.

The interceptor refuses calls without a valid key (and writes with a read-only one) and ends the
streams of a revoked key; the guard asks `Callers` for the company a call may act on."""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import partial

from service.handlers.auth import Keys, PermissionDenied, check_company, until_revoked
from service.transport.interceptors import Call, WrappingInterceptor
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

    async def enter(self, call: Call) -> AbstractContextManager[object] | None:
        authorization = metadata(call.context, "authorization")
        found = await self.keys.grant(authorization)
        if call.method in self.writes and found.read_only:  # a read-only key may not upload either
            raise PermissionDenied("this API key is read-only: it may not change data")
        if call.kind == "unary_unary":
            return None
        # A revoked (or expiring) key ends a stream at once, and an upload while it waits for the client;
        # the guard stays until the call ends (exit).
        guard = self.keys.stream_guard(authorization, found.expire_time)
        revoked = guard.__enter__()
        if call.kind == "stream_unary":
            call.request = until_revoked(call.request, revoked)
        else:
            call.responses.append(partial(until_revoked, revoked=revoked))
        return guard

    async def exit(
        self, call: Call, entered: AbstractContextManager[object] | None, error: BaseException | None
    ) -> None:
        if entered is not None:
            entered.__exit__(None, None, None)
