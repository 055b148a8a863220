"""Metrics with the OpenTelemetry SDK: the gRPC server metrics of gRFC A66, the database pool, the queues.

Exporters: OTEL_METRICS_EXPORTER (`otlp`, with the standard OTEL_EXPORTER_OTLP_* variables and
OTEL_METRIC_EXPORT_INTERVAL; `console`; `none`, the default) and, with METRICS_ADDR, a Prometheus
/metrics endpoint. Each server builds its own MeterProvider (never the global one), so several servers
in one process (the tests) keep their numbers apart.

The database-derived gauges are read by exporter threads (the Prometheus HTTP server, the periodic
reader), never on the event loop: a collection that finds the snapshot older than the refresh interval
asks the server's loop for a new one (asynchronous queries on the pool) and waits for it briefly; other
collections within the interval answer from the snapshot, so scrapes never cost a query each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from service.config import Settings
from service.store import stats as store

log = logging.getLogger(__name__)
# gRFC A66 bucket boundaries: latency in seconds, sizes in bytes.
LATENCY_BUCKETS = (
    *(0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01),
    *(0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65),
    *(0.8, 1, 2, 5, 10, 20, 50, 100),
)
SIZE_BUCKETS = (0, 1024, 2048, *(4**k for k in range(6, 17)))  # then 4 KiB, 16 KiB, ... 4 GiB
REFRESH_WAIT_SECONDS = 2.0  # how long a collection waits for fresh database numbers before using the last


class Instruments:
    """What the call observer records: the A66 server metrics and the open streams."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter("invoices.v1")
        self.started = meter.create_counter(
            "grpc.server.call.started", unit="{call}", description="Calls started, by grpc.method."
        )
        self.duration = meter.create_histogram(
            "grpc.server.call.duration",
            unit="s",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
            description="From the call's start to its status, by grpc.method and grpc.status.",
        )
        self.sent = meter.create_histogram(
            "grpc.server.call.sent_total_compressed_message_size",
            unit="By",
            explicit_bucket_boundaries_advisory=SIZE_BUCKETS,
            description="Bytes of the messages a call sent (the server does not compress), per call.",
        )
        self.received = meter.create_histogram(
            "grpc.server.call.rcvd_total_compressed_message_size",
            unit="By",
            explicit_bucket_boundaries_advisory=SIZE_BUCKETS,
            description="Bytes of the messages a call received, per call.",
        )
        self.streams = meter.create_up_down_counter(
            "invoices.streams.active", unit="{stream}", description="Open server-streaming calls, by grpc.method."
        )


@dataclass
class DatabaseGauges:
    """A snapshot of the database numbers, refreshed on the server's loop at most every `every` seconds."""

    pool: asyncpg.Pool
    loop: asyncio.AbstractEventLoop
    every: float
    snapshot: store.Stats | None = None
    _at: float = -1e18
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending: Future[None] | None = None

    def stats(self) -> store.Stats | None:
        with self._lock:
            future = None
            if time.monotonic() - self._at >= self.every and (self._pending is None or self._pending.done()):
                try:
                    self._pending = future = asyncio.run_coroutine_threadsafe(self._refresh(), self.loop)
                except RuntimeError:  # the loop is closed: the server stopped
                    return self.snapshot
        if future is not None and not self._on_loop():
            with contextlib.suppress(Exception):  # slow or failed: the last snapshot (_refresh logs why)
                future.result(REFRESH_WAIT_SECONDS)
        return self.snapshot

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    async def _refresh(self) -> None:
        try:
            async with self.pool.acquire(timeout=REFRESH_WAIT_SECONDS) as conn:
                self.snapshot = await store.read(conn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("metrics: cannot read the database gauges: %s", exc)
        finally:
            self._at = time.monotonic()

    def observe(self, provider: MeterProvider) -> None:
        meter = provider.get_meter("invoices.v1")
        pool = self.pool

        def connections(_: CallbackOptions) -> Iterable[Observation]:
            size, idle = pool.get_size(), pool.get_idle_size()
            return [
                Observation(size - idle, {"db.client.connection.state": "used"}),
                Observation(idle, {"db.client.connection.state": "idle"}),
            ]

        def gauge(name: str, unit: str, description: str, read: Callable[[store.Stats], list[Observation]]) -> None:
            def callback(_: CallbackOptions) -> Iterable[Observation]:
                snapshot = self.stats()
                return [] if snapshot is None else read(snapshot)

            meter.create_observable_gauge(name, [callback], unit=unit, description=description)

        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            [connections],
            unit="{connection}",
            description="Pool connections by db.client.connection.state (used, idle).",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.max",
            [lambda _: [Observation(pool.get_max_size())]],
            unit="{connection}",
            description="The most connections the pool opens (DB_POOL_MAX).",
        )
        gauge(
            "invoices.push_operations",
            "{operation}",
            "Push operations by status.",
            lambda s: [Observation(n, {"status": k}) for k, n in s.push_operations.items()],
        )
        gauge(
            "invoices.push_operations.oldest_pending_age",
            "s",
            "Age of the oldest PENDING push operation (0 when none).",
            lambda s: [Observation(s.oldest_pending_seconds)],
        )
        gauge(
            "invoices.events.unsequenced",
            "{event}",
            "Change-feed events awaiting a position.",
            lambda s: [Observation(s.unsequenced_events)],
        )
        gauge(
            "invoices.events.sequencer_lag",
            "s",
            "Age of the oldest event awaiting a position (0 when none).",
            lambda s: [Observation(s.sequencer_lag_seconds)],
        )
        gauge(
            "invoices.idempotency_keys",
            "{key}",
            "Stored request ids (expired ones until purged).",
            lambda s: [Observation(s.idempotency_keys)],
        )
        gauge(
            "invoices.mail_outbox.depth",
            "{message}",
            "Mails queued or being sent.",
            lambda s: [Observation(s.mail_outbox)],
        )


@dataclass
class Metrics:
    """A running meter provider with its exporters; `port` is the bound /metrics port, if any."""

    provider: MeterProvider
    instruments: Instruments
    http: Any = None
    port: int = 0

    def stop(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        self.provider.shutdown()


def start_metrics(settings: Settings, pool: asyncpg.Pool) -> Metrics | None:
    """The configured exporters, or None when metrics are off (no exporter, no METRICS_ADDR)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    readers: list[MetricReader] = []
    for name in {n.strip() for n in settings.otel_metrics_exporter.split(",")}:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        elif name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stdout)))
    http, port = None, 0
    if settings.metrics_addr:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()  # this server's own, not the process-wide default
        readers.append(PrometheusMetricReader(registry=registry))
        host, _, bound = settings.metrics_addr.rpartition(":")
        http, _thread = start_http_server(int(bound), host.strip("[]"), registry=registry)
        port = int(http.server_port)
    if not readers:
        return None
    provider = MeterProvider(
        metric_readers=readers,
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "invoice-service")}),
    )
    DatabaseGauges(pool, asyncio.get_running_loop(), settings.metrics_db_refresh_seconds).observe(provider)
    return Metrics(provider, Instruments(provider), http, port)
