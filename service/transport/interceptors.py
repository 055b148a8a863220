"""The one way this server wraps handlers: errors, auth, metrics and the access log, span attributes and the
served-by trailer all subclass `WrappingInterceptor` and supply only `enter` and `exit`, their code before
and after one call.

The server runs them as one `Chain` (`chained`): one interceptor that wraps each method's handler once, the
first time it is called, with every hook that applies to it, and calls the hooks in turn, outermost first
(each plain awaits: no context manager or generator per interceptor and call). The chain handles the four
kinds of RPC alike: unary answers, client-streamed requests, streamed answers (async generators, or
coroutines that send with `context.write`, as health Watch does). It runs in the RPC's own task, so a span
made current outside reaches every layer below. Interceptors listed first end up outermost.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

KINDS = ("unary_unary", "stream_unary", "unary_stream", "stream_stream")
Behaviour = Callable[..., Any]
Context = grpc.aio.ServicerContext[Any, Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["grpc.RpcMethodHandler[Any, Any] | None"]]
Filter = Callable[[AsyncIterator[Any]], AsyncIterator[Any]]


class Call:
    """One call, as the interceptors see it. Before the handler runs, `enter` may replace `request` (the
    request, or the iterator of a client stream) and add to `responses`, filters over a streamed answer
    (each wraps what the ones added after it, by inner interceptors, made of the answer)."""

    __slots__ = ("context", "kind", "method", "request", "response", "responses")

    def __init__(self, method: str, kind: str, request: Any, context: Context) -> None:
        self.method = method
        self.kind = kind
        self.request = request
        self.context = context
        self.response: Any = None  # a unary answer, once the handler returned it
        self.responses: list[Filter] = []

    @property
    def client_streaming(self) -> bool:
        return self.kind.startswith("stream")


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Runs `enter(call)` before every handler and `exit(call, entered, error)` after it, except for methods
    starting with a `skip` prefix and kinds not in `kinds`. On its own it is a server interceptor too (a
    chain of one); the server chains them all (`chained`)."""

    skip: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset(KINDS)

    async def enter(self, call: Call) -> Any:
        """Before the handler and the interceptors inside this one; what it returns is given to `exit`.
        Raising refuses the call: the interceptors outside see the error, this one's `exit` does not run."""
        return None

    async def exit(self, call: Call, entered: Any, error: BaseException | None) -> None:
        """After the handler, however it ended: `error` is what it (or an interceptor inside) raised, None
        when `call.response` is its answer (or a stream ended). Raising replaces the error; returning lets
        it pass on as it is."""

    def applies(self, method: str, kind: str) -> bool:
        return kind in self.kinds and not method.startswith(self.skip)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        return wrap(handler, str(handler_call_details.method), (self,))


class Chain(grpc.aio.ServerInterceptor):
    """Wrapping interceptors as one. It must be the server's innermost interceptor: it keeps each method's
    wrapped handler, which is right only when what the continuation gives is the same for every call (the
    registered handler; an interceptor inside could wrap each call differently, as OpenTelemetry's does)."""

    def __init__(self, wrappers: Sequence[WrappingInterceptor]) -> None:
        self.wrappers = tuple(wrappers)
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}  # only methods that have one

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = str(handler_call_details.method)
        found = self._handlers.get(method)
        if found is None:
            found = wrap(await continuation(handler_call_details), method, self.wrappers)
            if found is not None:
                self._handlers[method] = found
        return found


def chained(interceptors: Sequence[grpc.aio.ServerInterceptor]) -> list[grpc.aio.ServerInterceptor]:
    """The server's interceptors with the wrapping ones, which must come last, as one Chain."""
    first = next((i for i, x in enumerate(interceptors) if isinstance(x, WrappingInterceptor)), len(interceptors))
    wrappers = [x for x in interceptors[first:] if isinstance(x, WrappingInterceptor)]
    if len(wrappers) != len(interceptors) - first:
        raise ValueError("wrapping interceptors go innermost, after every other interceptor")
    return [*interceptors[:first], *([Chain(wrappers)] if wrappers else [])]


def wrap(
    handler: grpc.RpcMethodHandler[Any, Any] | None, method: str, wrappers: Sequence[WrappingInterceptor]
) -> grpc.RpcMethodHandler[Any, Any] | None:
    """`handler` with the wrappers that apply to its method and kind (itself when none does)."""
    if handler is None:
        return None
    for kind in KINDS:
        behaviour = getattr(handler, kind)
        if behaviour is not None:
            applying = tuple(w for w in wrappers if w.applies(method, kind))
            if not applying:
                return handler
            make = _stream if kind.endswith("stream") else _unary
            wrapped: Any = handler
            replaced: grpc.RpcMethodHandler[Any, Any] = wrapped._replace(  # a namedtuple at runtime
                **{kind: make(behaviour, kind, method, applying)}
            )
            return replaced
    return handler


async def _leave(call: Call, entered: list[tuple[WrappingInterceptor, Any]], error: BaseException | None) -> None:
    """Every entered interceptor's exit, innermost first, each seeing what the ones inside let through."""
    for wrapper, token in reversed(entered):
        try:
            await wrapper.exit(call, token, error)
        except BaseException as exc:
            error = exc
    if error is not None:
        raise error


def _unary(behaviour: Behaviour, kind: str, method: str, wrappers: tuple[WrappingInterceptor, ...]) -> Behaviour:
    async def unary(request: Any, context: Context) -> Any:
        call = Call(method, kind, request, context)
        entered: list[tuple[WrappingInterceptor, Any]] = []
        error: BaseException | None = None
        try:
            for wrapper in wrappers:
                entered.append((wrapper, await wrapper.enter(call)))
            call.response = await behaviour(call.request, context)
        except BaseException as exc:
            error = exc
        await _leave(call, entered, error)
        return call.response

    return unary


async def _close(items: Any) -> None:
    """Closes an async generator suspended at a yield; one that ended (an error passed through it) or is
    running has nothing to close."""
    if getattr(items, "ag_frame", None) is not None and not getattr(items, "ag_running", False):
        await items.aclose()


def _stream(behaviour: Behaviour, kind: str, method: str, wrappers: tuple[WrappingInterceptor, ...]) -> Behaviour:
    async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
        call = Call(method, kind, request, context)
        entered: list[tuple[WrappingInterceptor, Any]] = []
        error: BaseException | None = None
        try:
            for wrapper in wrappers:
                entered.append((wrapper, await wrapper.enter(call)))
            result = behaviour(call.request, context)
            if inspect.isawaitable(result):  # it sends with context.write
                await result
            else:
                chain = [result]
                for keep in reversed(call.responses):  # the innermost interceptor's filter first
                    chain.append(keep(chain[-1]))
                try:
                    async for item in chain[-1]:
                        yield item
                finally:  # a stream the client left: each generator's own finally runs now, not at collection
                    for items in reversed(chain):
                        await _close(items)
        except BaseException as exc:  # GeneratorExit too: a stream the client left still runs every exit
            error = exc
        await _leave(call, entered, error)

    return stream
