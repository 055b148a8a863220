"""The one way this server wraps handlers: errors, auth, metrics and the access log, span attributes and the
served-by trailer all subclass `WrappingInterceptor` and supply only `around`, their code around one call.

The base class handles the four kinds of RPC alike: unary answers, client-streamed requests, streamed answers
(async generators, or coroutines that send with `context.write`, as health Watch does). Each wrapper runs in
the RPC's own task, so a span made current outside reaches every layer below. Interceptors listed first in
the server's list end up outermost.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import grpc

KINDS = ("unary_unary", "stream_unary", "unary_stream", "stream_stream")
Behaviour = Callable[..., Any]
Context = grpc.aio.ServicerContext[Any, Any]


class Call:
    """One call, as one interceptor sees it. Before the handler runs, `around` may replace `request` (the
    request, or the iterator of a client stream) and set `responses`, a filter over a streamed answer."""

    __slots__ = ("context", "kind", "method", "request", "response", "responses")

    def __init__(self, method: str, kind: str, request: Any, context: Context) -> None:
        self.method = method
        self.kind = kind
        self.request = request
        self.context = context
        self.response: Any = None  # a unary answer, once the handler returned it
        self.responses: Callable[[AsyncIterator[Any]], AsyncIterator[Any]] | None = None

    @property
    def client_streaming(self) -> bool:
        return self.kind.startswith("stream")


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Runs `around(call)` around every handler, except for methods starting with a `skip` prefix and kinds
    not in `kinds`. An exception from the handler reaches `around` at its `yield`."""

    skip: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset(KINDS)

    def around(self, call: Call) -> AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler: Any = await continuation(handler_call_details)  # a namedtuple at runtime
        same: grpc.RpcMethodHandler[Any, Any] | None = handler
        method = str(handler_call_details.method)
        if handler is None or method.startswith(self.skip):
            return same
        for kind in KINDS:
            behaviour = getattr(handler, kind)
            if behaviour is not None:
                if kind not in self.kinds:
                    return same
                wrap = self._stream if kind.endswith("stream") else self._unary
                replaced: grpc.RpcMethodHandler[Any, Any] = handler._replace(**{kind: wrap(behaviour, kind, method)})
                return replaced
        return same

    def _unary(self, behaviour: Behaviour, kind: str, method: str) -> Behaviour:
        async def unary(request: Any, context: Context) -> Any:
            call = Call(method, kind, request, context)
            async with self.around(call):
                call.response = await behaviour(call.request, context)
            return call.response

        return unary

    def _stream(self, behaviour: Behaviour, kind: str, method: str) -> Behaviour:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            call = Call(method, kind, request, context)
            async with self.around(call):
                result = behaviour(call.request, context)
                if inspect.isawaitable(result):  # it sends with context.write
                    await result
                    return
                items = result if call.responses is None else call.responses(result)
                async for item in items:
                    yield item

        return stream
