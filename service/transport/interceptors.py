"""The one way this server wraps handlers: errors, auth, tracing and the served-by trailer all subclass it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

KINDS = ("unary_unary", "stream_unary", "unary_stream", "stream_stream")
Behaviour = Callable[..., Any]


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Replaces each method's behaviour with `wrap(behaviour, kind, method)`, except for `skip` prefixes.

    The wrapper runs inside the RPC's own task, so what it sets (context variables, spans) reaches every
    layer below it. Interceptors listed first end up outermost.
    """

    skip: tuple[str, ...] = ()

    def wrap(self, behaviour: Behaviour, kind: str, method: str) -> Behaviour | None:
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
                wrapped = self.wrap(behaviour, kind, method)
                if wrapped is None:
                    return same
                replaced: grpc.RpcMethodHandler[Any, Any] = handler._replace(**{kind: wrapped})
                return replaced
        return same
