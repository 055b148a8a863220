"""Server tracing: OpenTelemetry's grpc.aio server interceptor makes one span per RPC (a stream's span covers
the whole stream), continuing the caller's trace context and recording the status code; `SpanAttributes`
adds what this service knows about the call: company, invoice and push operation. Health checks and
reflection are not traced.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, negate, service_prefix

from service.transport.interceptors import Call, WrappingInterceptor

UNTRACED = ("/grpc.health.v1.", "/grpc.reflection.")


def server_tracing() -> list[grpc.aio.ServerInterceptor]:
    """The tracing interceptors, outermost first: the span, then its attributes (inside it, where it is current)."""
    untraced = any_of(*(service_prefix(prefix.strip("/")) for prefix in UNTRACED))
    span = aio_server_interceptor(filter_=negate(untraced))  # type: ignore[no-untyped-call]
    return [span, SpanAttributes()]


def describe_answer(invoice_id: str, push_operation_key: str) -> None:
    """Attributes for an answer sent as bytes (wire.PRESERIALIZED), which SpanAttributes cannot read."""
    span = trace.get_current_span()
    if invoice_id:
        span.set_attribute("invoices.invoice_id", invoice_id)
    if push_operation_key:
        span.set_attribute("invoices.push_operation_key", push_operation_key)


class SpanAttributes(WrappingInterceptor):
    skip = UNTRACED

    async def enter(self, call: Call) -> trace.Span:
        span = trace.get_current_span()  # the RPC's, made current by the interceptor outside this one
        span.update_name(call.method.lstrip("/"))  # the semantic conventions' name: no leading slash
        if call.kind.endswith("stream"):
            # A stream whose span is still open when its call is done was left by the client: gRPC drops its
            # generator, for the collector to close later (the span ends then, as OK without this).
            call.context.add_done_callback(lambda _: _cancelled(span))  # type: ignore[arg-type]  # a class in the stubs
        return span

    async def exit(self, call: Call, entered: trace.Span, error: BaseException | None) -> None:
        if isinstance(error, asyncio.CancelledError):
            _cancelled(entered)
        _attributes(entered, None if call.client_streaming else call.request, call.response)


def _cancelled(span: trace.Span) -> None:
    if span.is_recording():  # not yet ended
        span.set_attribute("rpc.grpc.status_code", grpc.StatusCode.CANCELLED.value[0])


def _attributes(span: trace.Span, request: Any, response: Any) -> None:
    for attr, name in (("company_id", "invoices.company_id"), ("invoice_id", "invoices.invoice_id")):
        value = getattr(request, attr, "")
        if isinstance(value, str) and value:
            span.set_attribute(name, value)
    if response is None or isinstance(response, bytes):
        return  # nothing yet, or described by describe_answer
    invoice_id = getattr(getattr(response, "invoice", None), "id", None)
    if isinstance(invoice_id, str) and invoice_id:
        span.set_attribute("invoices.invoice_id", invoice_id)
    op: Any = getattr(response, "push_operation", None)
    if op is not None and op.push_operation_key:
        span.set_attribute("invoices.push_operation_key", op.push_operation_key)
