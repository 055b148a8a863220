"""OpenTelemetry set-up from the standard OTEL_* variables.

OTEL_TRACES_EXPORTER picks the exporter: `otlp` (endpoint and headers from OTEL_EXPORTER_OTLP_*), `console`,
or `none` (the default here, so a laptop run exports nothing). OTEL_SERVICE_NAME and
OTEL_RESOURCE_ATTRIBUTES name the service. asyncpg is the one database instrumentation: each query is a
child span of the RPC's span.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

_configured = False


def exporters_from_env() -> list[SpanExporter]:
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",") if n.strip()]
    out: list[SpanExporter] = []
    for name in names:
        if name == "console":
            out.append(ConsoleSpanExporter())
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            out.append(OTLPSpanExporter())
    return out


def configure_tracing(exporters: list[SpanExporter] | None = None) -> bool:
    """Installs a tracer provider and the asyncpg instrumentation once; False when tracing is off."""
    global _configured
    if _configured:
        return True
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    chosen = exporters_from_env() if exporters is None else exporters
    if not chosen:
        return False
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "invoice-service")})
    )
    for exporter in chosen:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    instrument_database()
    _configured = True
    return True


def instrument_database() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
