"""The composition root: settings to a running service. Opens the pool, builds the store-backed use
cases, the servicers and the workers, and starts the transport (transport/server.py) over them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import asyncpg
import grpc
from grpc_health.v1 import health

from service.config import DEFAULT_PAGE_TOKEN_SECRET, Settings
from service.domain.attachments import Limits
from service.handlers.attachments import AttachmentHandlers
from service.handlers.auth import Keys
from service.handlers.documents import DocumentRefresh
from service.handlers.events import EventHub
from service.handlers.idempotency import Idempotency
from service.handlers.invoices import InvoiceHandlers
from service.handlers.listing import ListingHandlers, PageTokens
from service.handlers.push_operations import PushOperationHandlers
from service.handlers.retention import Retention, policy_of
from service.handlers.streams import StreamQuota
from service.handlers.worker import Workers, enqueue
from service.logs import quiet_cancelled_writes
from service.metrics import Metrics, start_metrics
from service.outbound.mail import SmtpSettings
from service.store import api_keys
from service.store.db import EmbeddedPostgres, create_pool, migrate
from service.telemetry import configure_tracing
from service.transport.auth import Callers
from service.transport.document import render
from service.transport.guard import GuardServices
from service.transport.health import DatabaseHealth
from service.transport.observe import AccessLog, CallObserver
from service.transport.push_servicer import PushOperationServicer
from service.transport.server import SERVICE_NAMES, listen, new_server, register
from service.transport.servicers import InvoiceServicer
from service.transport.wire import dispatcher

log = logging.getLogger(__name__)


@dataclass
class Running:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    hub: EventHub
    workers: Workers
    monitor: DatabaseHealth
    retention: Retention | None = None
    attachments: AttachmentHandlers | None = None
    metrics: Metrics | None = None
    invoices: InvoiceHandlers | None = None
    documents: DocumentRefresh | None = None

    async def stop(self, grace: float) -> None:
        """Health goes NOT_SERVING first so balancers drain us, then in-flight calls finish."""
        await self.monitor.stop()
        if self.documents is not None:
            await self.documents.stop()
        await self.health.enter_graceful_shutdown()
        if self.retention is not None:
            await self.retention.stop()
        if self.invoices is not None:
            await self.invoices.stop_money_refresh()
        await self.workers.stop()  # an interrupted operation keeps its lease until it expires elsewhere
        await self.server.stop(grace)
        if self.attachments is not None:
            await self.attachments.discard_staged()  # uploads cut short leave nothing behind
            with contextlib.suppress(TimeoutError):  # mails under way get the grace too, to record the result
                async with asyncio.timeout(grace):
                    await self.attachments.outbox.drain()
        await self.hub.stop()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.stop)  # flushes the OTLP exporter


async def start_server(settings: Settings, pool: asyncpg.Pool, database_url: str) -> Running:
    """`database_url` is the database `pool` connects to (the embedded server's when DATABASE_URL is
    empty): the event hub opens its LISTEN connection there, never on libpq's defaults."""
    quiet_cancelled_writes()
    keys = Keys(pool)
    metrics = start_metrics(settings, pool)
    access = AccessLog(settings.access_log, settings.access_log_sample) if settings.access_log != "off" else None
    observer = (
        CallObserver(metrics.instruments if metrics else None, access)
        if metrics is not None or access is not None
        else None
    )
    server = new_server(settings, keys, observer)
    handlers = InvoiceHandlers(pool, settings, render)
    await handlers.load_money_defaults()
    handlers.start_money_refresh()
    tokens = PageTokens(settings.page_token_secret.encode())
    # A streamed batch stays under what any client accepts by default (4 MB), whatever page_size asks.
    budget = min(settings.max_message_bytes, 4 * 1024 * 1024) - 64 * 1024
    listing = ListingHandlers(pool, render, tokens, budget)
    limits = Limits(
        settings.attachment_max_bytes,
        settings.attachment_max_per_invoice,
        frozenset(settings.attachment_extensions) or Limits().extensions,
    )
    smtp = (
        SmtpSettings(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_starttls,
            settings.smtp_from,
            send_timeout=float(settings.mail_send_timeout_seconds),
        )
        if settings.smtp_host
        else None
    )
    streams = StreamQuota(settings.company_max_streams)
    attachments = AttachmentHandlers(
        pool,
        handlers.uow,
        limits,
        smtp,
        settings.seller_name,
        render,
        settings.mail_max_bytes,
        streams,
        upload_idle_seconds=settings.upload_idle_seconds,
        upload_connections=max(1, settings.pool_max // 2),  # pieces are written through half the pool at most
    )
    idempotency = Idempotency(pool, timedelta(seconds=settings.idempotency_ttl_seconds))
    callers = Callers(keys if settings.auth_required else None)
    servicer = InvoiceServicer(handlers, listing, attachments, idempotency, callers)
    services = GuardServices(
        callers=callers,
        record_refusal=handlers.uow.record_refusal,
        idempotency=idempotency,
        enqueue=partial(enqueue, pool),
        async_batch_threshold=settings.async_batch_threshold,
        timeout_minutes=settings.push_timeout_minutes,
        streams=streams,
    )
    hub = EventHub(pool, database_url)
    hub.subscribe(api_keys.CHANGED, keys.forget)  # a revoked key stops working at once everywhere
    push = PushOperationServicer(PushOperationHandlers(pool, tokens), hub)
    health_servicer = register(server, servicer, push, services)
    workers = Workers(
        pool,
        handlers.uow,
        hub,
        dispatcher(servicer, services),
        settings.workers,
        timedelta(seconds=settings.lease_seconds),
    )
    await hub.start()  # after every subscriber: the LISTEN connection registers their channels
    port = listen(server, settings)
    await server.start()
    workers.start()
    retention = Retention(pool, policy_of(settings))
    retention.start()
    documents = DocumentRefresh(pool, render)  # documents of an older format, if any
    documents.start()
    # SERVING while the database answers, NOT_SERVING while it does not (and back).
    monitor = DatabaseHealth(health_servicer, ("", *SERVICE_NAMES), hub.ping)
    await monitor.start()
    return Running(
        server, health_servicer, port, hub, workers, monitor, retention, attachments, metrics, handlers, documents
    )


def database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    if settings.database_url:
        return settings.database_url, None
    embedded = EmbeddedPostgres(settings.embedded_data_dir)
    log.info("embedded PostgreSQL at %s", settings.embedded_data_dir)
    return embedded.url, embedded


def _metrics_port(settings: Settings, i: int) -> dict[str, str]:
    """Each serving process has its own numbers, so its own /metrics: the i-th on METRICS_ADDR's port + i."""
    host, _, port = settings.metrics_addr.rpartition(":")
    if not settings.metrics_addr or port == "0":
        return {}
    return {"METRICS_ADDR": f"{host}:{int(port) + i}"}


def serve_processes(settings: Settings) -> int:
    """Several serving processes on one port: each a full replica (workers, event hub) over the one
    PostgreSQL, the kernel spreading connections between them. This process migrates, owns the embedded
    PostgreSQL if there is one, and forwards SIGTERM/SIGINT so every child drains its calls."""
    url, embedded = database_url(settings)
    try:
        migrate(url)
        env = {**os.environ, "DATABASE_URL": url, "PROCESSES": "1", "SERVICE_REUSE_PORT": "1"}
        children = [
            subprocess.Popen([sys.executable, "-m", "service", "serve"], env={**env, **_metrics_port(settings, i)})
            for i in range(settings.processes)
        ]
        stopping = False
        signalled: set[int] = set()

        def forward(signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = stopping or _frame is not None
            for child in children:
                if child.poll() is None and child.pid not in signalled:  # once: a second one would kill its drain
                    signalled.add(child.pid)
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        log.info("serving on %s with %d processes", settings.listen_addr, len(children))
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
        forward(signal.SIGTERM, None)  # one child died, or we were asked to stop: stop the others
        codes = [child.wait(settings.shutdown_grace_seconds + 30) for child in children]
        log.info("serving processes exited: %s", codes)
        return 0 if stopping and all(code == 0 for code in codes) else 1
    finally:
        if embedded is not None:
            embedded.stop()


async def serve(settings: Settings) -> None:
    if configure_tracing():
        settings = settings.model_copy(update={"tracing": True})
    if settings.page_token_secret == DEFAULT_PAGE_TOKEN_SECRET and not settings.is_local:
        log.warning(
            "PAGE_TOKEN_SECRET is the built-in development value: anyone can forge page tokens. "
            "Set it to a secret shared by every replica."
        )
    url, embedded = database_url(settings)
    try:
        await asyncio.to_thread(migrate, url)
        pool = await create_pool(url, settings.pool_min, settings.pool_max, settings.statement_timeout_ms)
        running = await start_server(settings, pool, url)
        log.info("serving on %s", settings.listen_addr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("draining (grace %ss)", settings.shutdown_grace_seconds)
        await running.stop(settings.shutdown_grace_seconds)
        await pool.close()
        log.info("stopped")
    finally:
        if embedded is not None:
            embedded.stop()
