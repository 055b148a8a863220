"""Per-call metrics (gRFC A66) and the access log: one wrapper that sees every call's final status.

It sits outside error mapping and authentication, so refusals of keys are counted and logged like any
other status. The access log line names the method, status, duration, company, peer, trace id and
message sizes; never a key, a header value or any message content.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import propagate, trace

from service.metrics import Instruments
from service.transport.interceptors import Behaviour, WrappingInterceptor

access_log = logging.getLogger("invoices.access")
QUIET = ("/grpc.health.v1.", "/grpc.reflection.")  # probes and tooling: counted, not logged


@dataclass(frozen=True, slots=True)
class AccessLog:
    level: str  # all or errors
    sample: float  # of successful calls


def _size(message: Any) -> int:
    if isinstance(message, bytes):
        return len(message)
    byte_size = getattr(message, "ByteSize", None)
    return int(byte_size()) if byte_size is not None else 0


def _company(message: Any) -> str:
    """The company the call acted on: the request's company_id once authentication has set it to the key's
    (or, on a refused call, the one it named); an upload names it in its first message's metadata."""
    value = getattr(message, "company_id", None)
    if value is None:
        value = getattr(getattr(message, "metadata", None), "company_id", "")
    return value if isinstance(value, str) else ""


def _status(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> grpc.StatusCode:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        return next((c for c in grpc.StatusCode if c.value[0] == code), grpc.StatusCode.UNKNOWN)
    if error is None:
        return grpc.StatusCode.OK
    return grpc.StatusCode.CANCELLED if isinstance(error, asyncio.CancelledError) else grpc.StatusCode.UNKNOWN


def _trace_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """This call's trace: the server span's when tracing is on, else the caller's `traceparent`."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        carrier = {k: v for k, v in (context.invocation_metadata() or ()) if k == "traceparent" and isinstance(v, str)}
        span = trace.get_current_span(propagate.extract(carrier)).get_span_context() if carrier else span
    return f"{span.trace_id:032x}" if span.is_valid else ""


class _Call:
    """What one call measured; finished once, whatever way the call ends."""

    __slots__ = ("peer", "received", "request", "sent", "start", "trace_id")

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], logged: bool) -> None:
        self.start = time.perf_counter()
        self.received = 0
        self.sent = 0
        self.request: Any = None
        # Read now: once a call is cancelled, its peer and metadata go with it (reading them later can crash).
        self.peer = (context.peer() or "") if logged else ""
        self.trace_id = _trace_id(context) if logged else ""


class CallObserver(WrappingInterceptor):
    def __init__(self, instruments: Instruments | None, access: AccessLog | None) -> None:
        self.instruments = instruments
        self.access = access

    def wrap(self, behaviour: Behaviour, kind: str, method: str) -> Behaviour:
        name = method.lstrip("/")
        logged = self.access is not None and not method.startswith(QUIET)
        client_streaming = kind.startswith("stream")
        if self.instruments is not None:
            self.instruments.started.add(1, {"grpc.method": name})

        def finish(call: _Call, context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> None:
            status = _status(context, error)
            elapsed = time.perf_counter() - call.start
            if self.instruments is not None:
                attributes = {"grpc.method": name, "grpc.status": status.name}
                self.instruments.duration.record(elapsed, attributes)
                self.instruments.sent.record(call.sent, attributes)
                self.instruments.received.record(call.received, attributes)
            if logged and self.access is not None:
                ok = status is grpc.StatusCode.OK
                if ok and (self.access.level == "errors" or random.random() >= self.access.sample):
                    return
                access_log.info("rpc", extra={"fields": {
                    "method": name, "status": status.name, "duration_ms": round(elapsed * 1000, 3),
                    "company": _company(call.request), "peer": call.peer, "trace_id": call.trace_id,
                    "request_bytes": call.received, "response_bytes": call.sent,
                }})  # fmt: skip

        def requests(call: _Call, incoming: Any) -> Any:
            async def counted() -> AsyncIterator[Any]:
                async for message in incoming:
                    if call.request is None:
                        call.request = message
                    call.received += _size(message)
                    yield message

            return counted()

        if kind.endswith("stream"):

            async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                call, error = _Call(context, logged), None
                if client_streaming:
                    request = requests(call, request)
                else:
                    call.request, call.received = request, _size(request)
                if self.instruments is not None:
                    self.instruments.streams.add(1, {"grpc.method": name})
                try:
                    result = behaviour(request, context)
                    if inspect.isawaitable(result):
                        await result
                    else:
                        async for item in result:
                            call.sent += _size(item)
                            yield item
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    if self.instruments is not None:
                        self.instruments.streams.add(-1, {"grpc.method": name})
                    finish(call, context, error)

            return stream

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            call, error = _Call(context, logged), None
            if client_streaming:
                request = requests(call, request)
            else:
                call.request, call.received = request, _size(request)
            try:
                response = await behaviour(request, context)
                call.sent = _size(response)
                return response
            except BaseException as exc:
                error = exc
                raise
            finally:
                finish(call, context, error)

        return unary
