"""One server span per RPC, unary or streaming (the span covers the whole stream), continuing the
caller's trace context; attributes name the company, invoice and push operation, and the status code.
Health checks and reflection are not traced."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from service.transport.interceptors import Behaviour, WrappingInterceptor

UNTRACED = ("/grpc.health.v1.", "/grpc.reflection.")
tracer = trace.get_tracer("invoices.v1")


def describe_answer(invoice_id: str, push_operation_key: str) -> None:
    """Attributes for an answer sent as bytes (wire.PRESERIALIZED), which the span cannot read itself."""
    _ANSWERED.set((invoice_id, push_operation_key))


# Set by describe_answer inside the call; read when its span ends (the same task, so the same context).
_ANSWERED: ContextVar[tuple[str, str] | None] = ContextVar("answered", default=None)


def _attributes(span: trace.Span, request: Any, response: Any = None) -> None:
    for attr, name in (("company_id", "invoices.company_id"), ("invoice_id", "invoices.invoice_id")):
        value = getattr(request, attr, "")
        if isinstance(value, str) and value:
            span.set_attribute(name, value)
    answered = _ANSWERED.get()
    if isinstance(response, bytes) and answered is not None:
        for name, value in zip(("invoices.invoice_id", "invoices.push_operation_key"), answered, strict=True):
            if value:
                span.set_attribute(name, value)
    elif response is not None and not isinstance(response, bytes):
        invoice_id = getattr(getattr(response, "invoice", None), "id", None)
        if isinstance(invoice_id, str) and invoice_id:
            span.set_attribute("invoices.invoice_id", invoice_id)
        op: Any = getattr(response, "push_operation", None)
        if op is not None and op.push_operation_key:
            span.set_attribute("invoices.push_operation_key", op.push_operation_key)


def _code(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> int:
    if error is None:
        return 0
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return int(code.value[0])
    if isinstance(code, int):
        return code
    return 1 if isinstance(error, asyncio.CancelledError) else 2  # CANCELLED, or UNKNOWN


def _finish(span: trace.Span, context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> None:
    code = _code(context, error)
    span.set_attribute("rpc.grpc.status_code", code)
    if code != 0:
        details = context.details() if error is not None else ""
        text = details.decode(errors="replace") if isinstance(details, bytes) else str(details or type(error).__name__)
        span.set_status(Status(StatusCode.ERROR, text[:300]))
        if error is not None and not isinstance(error, grpc.aio.AbortError | asyncio.CancelledError):
            span.record_exception(error)


class TracingInterceptor(WrappingInterceptor):
    skip = UNTRACED

    def wrap(self, behaviour: Behaviour, kind: str, method: str) -> Behaviour:
        return _wrap(behaviour, kind, method)


def _start(method: str, context: grpc.aio.ServicerContext[Any, Any]) -> trace.Span:
    service, _, name = method.strip("/").partition("/")
    parent = propagate.extract({k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)})
    return tracer.start_span(
        method.strip("/"), context=parent, kind=SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )  # fmt: skip


def _wrap(behaviour: Callable[..., Any], kind: str, method: str) -> Callable[..., Any]:
    if kind.endswith("stream"):

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            span = _start(method, context)
            error: BaseException | None = None
            try:
                with trace.use_span(span, end_on_exit=False):
                    result = behaviour(request, context)
                    if inspect.isawaitable(result):
                        await result
                    else:
                        async for item in result:
                            yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                _attributes(span, request)
                _finish(span, context, error)
                span.end()

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        span = _start(method, context)
        error: BaseException | None = None
        response = None
        try:
            with trace.use_span(span, end_on_exit=False):
                response = await behaviour(request, context)
                return response
        except BaseException as exc:
            error = exc
            raise
        finally:
            _attributes(span, request if kind == "unary_unary" else None, response)
            _finish(span, context, error)
            span.end()

    return unary
