"""OpenTelemetry: server spans for unary and streaming RPCs, asyncpg spans as their children, attributes,
error status, continued trace context, and no spans for health checks (in-memory exporter)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from service.logs import quiet_cancelled_writes
from service.telemetry import instrument_database
from service.transport.errors import ErrorMappingInterceptor
from service.transport.tracing import server_tracing
from tests.conftest import ServerThread
from tests.helpers import invoice, rpc_error

EXPORTER = InMemorySpanExporter()
TRACED_CHANNEL: list[grpc.Channel] = []


@pytest.fixture(scope="module")
def traced(database_url: str) -> Iterator[svc_grpc.InvoiceServiceStub]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    instrument_database()
    srv = ServerThread(database_url, tracing=True).start()
    with grpc.insecure_channel(srv.address) as ch:
        TRACED_CHANNEL[:] = [ch]
        yield svc_grpc.InvoiceServiceStub(ch)
    srv.stop()


def server_spans(name: str) -> list[ReadableSpan]:
    return [s for s in EXPORTER.get_finished_spans() if s.name == name and s.kind == SpanKind.SERVER]


def wait_spans(name: str, count: int = 1) -> list[ReadableSpan]:
    """An aborted call's status reaches the client just before its span ends: wait for it."""
    deadline = time.monotonic() + 2
    while len(found := server_spans(name)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def children(span: ReadableSpan) -> list[ReadableSpan]:
    assert span.context is not None
    return [
        s for s in EXPORTER.get_finished_spans() if s.parent is not None and s.parent.span_id == span.context.span_id
    ]


def test_unary_span_with_database_children_attributes_and_parent_context(traced: Any) -> None:
    EXPORTER.clear()
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    resp = traced.CreateInvoice(svc.CreateInvoiceRequest(company_id="traced", invoice=invoice()),
                                metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),))  # fmt: skip
    (span,) = server_spans("invoices.v1.InvoiceService/CreateInvoice")
    assert span.context is not None and f"{span.context.trace_id:032x}" == trace_id
    assert span.parent is not None and f"{span.parent.span_id:016x}" == parent_id
    attrs = dict(span.attributes or {})
    assert attrs["invoices.company_id"] == "traced" and attrs["invoices.invoice_id"] == resp.invoice.id
    assert attrs["invoices.push_operation_key"] == resp.push_operation.push_operation_key
    assert attrs["rpc.grpc.status_code"] == 0 and attrs["rpc.service"] == "invoices.v1.InvoiceService"
    (db,) = children(span)  # a draft's create is one statement: invoice, lines, operation and events
    assert db.kind == SpanKind.CLIENT
    statement = str((db.attributes or {}).get("db.statement", ""))
    tables = ("invoices", "line_items", "push_operations", "invoice_events")
    assert all(f"INSERT INTO {t} " in statement for t in tables)
    finalize = traced.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id="traced", invoice_id=resp.invoice.id))
    (span,) = server_spans("invoices.v1.InvoiceService/FinalizeInvoice")
    assert dict(span.attributes or {})["invoices.invoice_id"] == finalize.invoice.id
    statements = children(span)  # a finalization: its read, then its one write guarded by what was read
    assert len(statements) == 2 and all(s.kind == SpanKind.CLIENT for s in statements)
    names = [s.name for s in EXPORTER.get_finished_spans()]
    assert len(names) == len(set((s.context.span_id if s.context else 0) for s in EXPORTER.get_finished_spans()))


def test_errors_mark_the_span(traced: Any) -> None:
    EXPORTER.clear()
    bad = svc.CreateInvoiceRequest(company_id="traced", invoice=invoice(total_amount="1"))
    rpc_error(lambda: traced.CreateInvoice(bad), grpc.StatusCode.INVALID_ARGUMENT)
    (span,) = wait_spans("invoices.v1.InvoiceService/CreateInvoice")
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    # The semantic conventions for gRPC servers: a client's mistake leaves the status unset, a server's
    # failure is an error (test_server_failures_and_cancels_mark_the_span).
    assert span.status.status_code == StatusCode.UNSET


def test_server_failures_and_cancels_mark_the_span(traced: Any, caplog: pytest.LogCaptureFixture) -> None:
    """On a server of generic handlers of each kind, answering raw bytes: an unexpected exception is INTERNAL
    and an error span, a cancelled call or stream is CANCELLED (a stream without an error logged); a client
    stream and a server stream have their spans."""

    async def broken(request: bytes, context: Any) -> bytes:
        raise RuntimeError("boom")

    async def slow(request: bytes, context: Any) -> bytes:
        await asyncio.sleep(30)
        return request

    async def upload(requests: AsyncIterator[bytes], context: Any) -> bytes:
        return b"".join([r async for r in requests])

    async def download(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for _ in range(3):
            yield request

    async def endless(request: bytes, context: Any) -> AsyncIterator[bytes]:
        while True:
            yield request * 1000

    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Endless": grpc.unary_stream_rpc_method_handler(endless),
        "Broken": grpc.unary_unary_rpc_method_handler(broken),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Download": grpc.unary_stream_rpc_method_handler(download),
    }

    async def run() -> None:
        server = grpc.aio.server(interceptors=[*server_tracing(), ErrorMappingInterceptor()])
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Traced", handlers),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                ch: Any = channel  # untyped calls: raw bytes both ways
                with pytest.raises(grpc.aio.AioRpcError) as failed:
                    await ch.unary_unary("/test.Traced/Broken")(b"x")
                assert failed.value.code() == grpc.StatusCode.INTERNAL
                assert await ch.stream_unary("/test.Traced/Upload")(iter([b"a", b"b"])) == b"ab"
                assert [m async for m in ch.unary_stream("/test.Traced/Download")(b"d")] == [b"d"] * 3
                slow_call = ch.unary_unary("/test.Traced/Slow")(b"x")
                await asyncio.sleep(0.3)
                slow_call.cancel()
                stream = ch.unary_stream("/test.Traced/Endless")(b"e")
                assert [await stream.read() for _ in range(3)] == [b"e" * 1000] * 3
                stream.cancel()
                await asyncio.sleep(0.3)
                gc.collect()  # gRPC leaves the stream's generator to the collector, which closes it in a new task
                await asyncio.sleep(0.3)
        finally:
            await server.stop(None)

    EXPORTER.clear()
    quiet_cancelled_writes()  # as the service's server does
    asyncio.run(run())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name != __name__] == [
        "unexpected error"  # Broken's, logged by the error map with its traceback
    ]
    (span,) = wait_spans("test.Traced/Broken")
    assert span.status.status_code == StatusCode.ERROR
    assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    for name in ("test.Traced/Slow", "test.Traced/Endless"):
        (span,) = wait_spans(name)
        assert dict(span.attributes or {})["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    for name in ("test.Traced/Upload", "test.Traced/Download"):
        (span,) = wait_spans(name)
        assert dict(span.attributes or {})["rpc.grpc.status_code"] == 0 and span.status.status_code == StatusCode.UNSET


def test_a_streaming_span_covers_the_whole_stream(traced: Any) -> None:
    reqs = [svc.CreateInvoiceRequest(invoice=invoice()) for _ in range(30)]
    traced.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id="traced-stream", requests=reqs))
    EXPORTER.clear()
    started = time.time_ns()
    got = sum(
        len(m.invoices) for m in traced.ListInvoices(svc.ListInvoicesRequest(company_id="traced-stream", page_size=7))
    )
    finished = time.time_ns()
    assert got == 30
    (span,) = server_spans("invoices.v1.InvoiceService/ListInvoices")
    assert span.start_time is not None and span.end_time is not None
    assert started <= span.start_time <= span.end_time <= finished
    queries = [s for s in children(span) if s.kind == SpanKind.CLIENT]
    assert len(queries) >= 5  # a query per batch, each inside the stream's span
    assert all(span.start_time <= (q.start_time or 0) and (q.end_time or 0) <= span.end_time for q in queries)


def test_health_checks_are_not_traced(traced: Any, database_url: str) -> None:
    EXPORTER.clear()
    health_pb2_grpc.HealthStub(TRACED_CHANNEL[0]).Check(health_pb2.HealthCheckRequest())
    traced.GetInvoiceModel(svc.GetInvoiceModelRequest(company_id="traced"))
    names = [s.name for s in EXPORTER.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert names == ["invoices.v1.InvoiceService/GetInvoiceModel"]
