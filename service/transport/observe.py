"""Per-call metrics (gRFC A66) and the access log: one wrapper that sees every call's final status.

It sits outside error mapping and authentication, so refusals of keys are counted and logged like any
other status. The access log line names the method, status, duration, company, peer, trace id and
message sizes; never a key, a header value or any message content.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import propagate, trace

from service.metrics import Instruments
from service.transport.interceptors import Call, WrappingInterceptor

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


class _Measured:
    """What one call measured; finished once, whatever way the call ends."""

    __slots__ = ("logged", "name", "peer", "received", "request", "sent", "start", "streaming", "trace_id")

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], name: str, streaming: bool, logged: bool) -> None:
        self.start = time.perf_counter()
        self.name = name
        self.streaming = streaming
        self.logged = logged
        self.received = 0
        self.sent = 0
        self.request: Any = None
        # Read now: once a call is cancelled, its peer and metadata go with it (reading them later can crash).
        self.peer = (context.peer() or "") if logged else ""
        self.trace_id = _trace_id(context) if logged else ""

    async def requests(self, incoming: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for message in incoming:
            if self.request is None:
                self.request = message
            self.received += _size(message)
            yield message

    async def responses(self, outgoing: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for message in outgoing:
            self.sent += _size(message)
            yield message


class CallObserver(WrappingInterceptor):
    def __init__(self, instruments: Instruments | None, access: AccessLog | None) -> None:
        self.instruments = instruments
        self.access = access

    async def enter(self, call: Call) -> _Measured:
        name = call.method.lstrip("/")
        streaming = call.kind.endswith("stream")
        # Not when the access log's lines would be dropped (LOG_LEVEL above INFO): no peer or trace id to read.
        logged = self.access is not None and not call.method.startswith(QUIET) and access_log.isEnabledFor(logging.INFO)
        measured = _Measured(call.context, name, streaming, logged)
        if call.client_streaming:
            call.request = measured.requests(call.request)
        else:
            measured.request, measured.received = call.request, _size(call.request)
        if streaming:
            call.responses.append(measured.responses)
        if self.instruments is not None:
            self.instruments.started.add(1, {"grpc.method": name})
            if streaming:
                self.instruments.streams.add(1, {"grpc.method": name})
        return measured

    async def exit(self, call: Call, entered: _Measured, error: BaseException | None) -> None:
        measured, name, context = entered, entered.name, call.context
        if not measured.streaming:
            measured.sent = _size(call.response)
        if self.instruments is not None and measured.streaming:
            self.instruments.streams.add(-1, {"grpc.method": name})
        status = _status(context, error)
        elapsed = time.perf_counter() - measured.start
        if self.instruments is not None:
            attributes = {"grpc.method": name, "grpc.status": status.name}
            self.instruments.duration.record(elapsed, attributes)
            self.instruments.sent.record(measured.sent, attributes)
            self.instruments.received.record(measured.received, attributes)
        if not measured.logged or self.access is None:
            return
        if status is grpc.StatusCode.OK and (self.access.level == "errors" or random.random() >= self.access.sample):
            return
        fields = {
            "method": name,
            "status": status.name,
            "duration_ms": round(elapsed * 1000, 3),
            "company": _company(measured.request),
            "peer": measured.peer,
            "trace_id": measured.trace_id,
            "request_bytes": measured.received,
            "response_bytes": measured.sent,
        }
        access_log.info("rpc", extra={"fields": fields})
