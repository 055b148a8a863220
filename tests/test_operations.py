"""Operable in production: metrics scraped from /metrics, the access log parsed line by line, grpcurl
describing every kind of symbol, connection age, and statement timeouts, against real servers."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import grpc
import pytest
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from prometheus_client.parser import text_string_to_metric_families

from service.logs import JsonFormatter
from service.store import stats
from service.store.db import init_connection
from service.transport.server import connection_options
from tests.conftest import ServerThread
from tests.helpers import create, invoice, rpc_error
from tests.test_grpcurl import grpcurl
from tests.test_security import bearer, make_key

CREATE = "invoices.v1.InvoiceService/CreateInvoice"
GET = "invoices.v1.InvoiceService/GetInvoice"
LIST = "invoices.v1.InvoiceService/ListInvoices"


def scrape(port: int) -> dict[str, list[Any]]:
    """Every sample of /metrics, by sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name} {labels}: {found}"
    return float(found[0])


@pytest.fixture(scope="module")
def observed(database_url: str) -> Iterator[ServerThread]:
    srv = ServerThread(database_url, metrics_addr="127.0.0.1:0", metrics_db_refresh_seconds=1).start()
    yield srv
    srv.stop()


def test_metrics_endpoint_counts_calls_by_method_and_status(observed, company):
    requests = [svc.CreateInvoiceRequest(company_id=company, invoice=invoice(customer=f"c{i}")) for i in range(3)]
    with grpc.insecure_channel(observed.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        for request in requests:
            stub.CreateInvoice(request)
        missing = svc.GetInvoiceRequest(company_id=company, invoice_id=str(uuid.uuid4()))
        rpc_error(lambda: stub.GetInvoice(missing), grpc.StatusCode.NOT_FOUND)
        pages = list(stub.ListInvoices(svc.ListInvoicesRequest(company_id=company)))
    samples = scrape(observed.metrics_port)

    assert value(samples, "grpc_server_call_started_total", grpc_method=CREATE) == 3
    assert value(samples, "grpc_server_call_started_total", grpc_method=GET) == 1
    created = {"grpc_method": CREATE, "grpc_status": "OK"}
    assert value(samples, "grpc_server_call_duration_seconds_count", **created) == 3
    assert 0 < value(samples, "grpc_server_call_duration_seconds_sum", **created) < 30
    assert value(samples, "grpc_server_call_duration_seconds_count", grpc_method=GET, grpc_status="NOT_FOUND") == 1
    # Bytes received are the requests as sent (uncompressed); bytes sent are the invoices answered.
    rcvd = "grpc_server_call_rcvd_total_compressed_message_size_bytes_sum"
    assert value(samples, rcvd, **created) == sum(r.ByteSize() for r in requests)
    sent = "grpc_server_call_sent_total_compressed_message_size_bytes_sum"
    assert value(samples, sent, **created) > 3 * 100
    assert value(samples, sent, grpc_method=LIST, grpc_status="OK") == sum(p.ByteSize() for p in pages)
    assert value(samples, "invoices_streams_active", grpc_method=LIST) == 0  # the stream ended

    # The database gauges: the pool, the push operations these calls left, the change feed.
    assert value(samples, "db_client_connection_max") == observed.settings.pool_max
    assert value(samples, "db_client_connection_count", db_client_connection_state="idle") >= 1
    assert value(samples, "invoices_push_operations", status="SUCCESS") >= 3
    for gauge in ("invoices_events_unsequenced", "invoices_events_sequencer_lag_seconds", "invoices_idempotency_keys"):
        assert value(samples, gauge) >= 0
    assert value(samples, "invoices_push_operations_oldest_pending_age_seconds") >= 0
    assert value(samples, "invoices_mail_outbox_depth") >= 0


def test_database_gauges_are_cached_between_scrapes(observed, company, db):
    scrape(observed.metrics_port)
    before = value(scrape(observed.metrics_port), "invoices_push_operations", status="SUCCESS")
    with grpc.insecure_channel(observed.address) as ch:
        create(svc_grpc.InvoiceServiceStub(ch), company)
    # Within the refresh interval (1 s here) the snapshot answers; after it, a new query does.
    assert value(scrape(observed.metrics_port), "invoices_push_operations", status="SUCCESS") == before
    time.sleep(1.2)
    assert value(scrape(observed.metrics_port), "invoices_push_operations", status="SUCCESS") == before + 1


def test_mail_outbox_depth_counts_sends_not_yet_finished(database_url):
    """QUEUED and SENDING entries are the depth; SENT and FAILED ones are not (rolled back afterwards)."""

    async def run() -> tuple[int, int]:
        conn = await asyncpg.connect(database_url)
        await init_connection(conn)  # as the pool's connections
        try:
            before = (await stats.read(conn)).mail_outbox
            tx = conn.transaction()
            await tx.start()
            # Entries without an invoice of their own: the foreign key is set aside inside this transaction.
            for (name,) in await conn.fetch(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'mail_outbox'::regclass AND contype = 'f'"
            ):
                await conn.execute(f'ALTER TABLE mail_outbox DROP CONSTRAINT "{name}"')
            for status in ("QUEUED", "SENDING", "SENT", "FAILED"):
                await conn.execute(
                    "INSERT INTO mail_outbox (id, company_id, invoice_id, push_operation_key, message_id, recipients,"
                    " subject, body, status, create_time) VALUES (gen_random_uuid(), 'depth', gen_random_uuid(),"
                    " gen_random_uuid(), gen_random_uuid()::text, ARRAY['a@b.example'], 's', 'b', $1, now())",
                    status,
                )
            after = (await stats.read(conn)).mail_outbox
            await tx.rollback()
            return before, after
        finally:
            await conn.close()

    before, after = asyncio.run(run())
    assert after - before == 2


# -- access log ---------------------------------------------------------------------------------


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The access log lines so far, as printed (the JSON formatter of service/logs.py) and parsed back."""
    formatter = JsonFormatter()
    with caplog.at_level(logging.INFO, logger="invoices.access"):
        yield lambda: [json.loads(formatter.format(r)) for r in caplog.records if r.name == "invoices.access"]


def test_access_log_has_one_line_per_call_with_refusals_and_never_a_key(database_url, access_log):
    company = f"acc-{uuid.uuid4().hex[:8]}"
    _, key = make_key(database_url, company)
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    srv = ServerThread(database_url, auth_required=True).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            request = svc.CreateInvoiceRequest(invoice=invoice(note="secret note"))
            stub.CreateInvoice(request, metadata=(*bearer(key), ("traceparent", traceparent)))
            rpc_error(
                lambda: stub.CreateInvoice(request, metadata=bearer("inv_wrong")), grpc.StatusCode.UNAUTHENTICATED
            )
            rpc_error(lambda: stub.CreateInvoice(request), grpc.StatusCode.UNAUTHENTICATED)
            list(stub.ListInvoices(svc.ListInvoicesRequest(), metadata=bearer(key)))
    finally:
        srv.stop()
    lines = access_log()
    created, wrong_key, no_key, listed = lines
    assert created["message"] == "rpc" and created["logger"] == "invoices.access"
    assert created["method"] == CREATE and created["status"] == "OK" and created["company"] == company
    assert created["trace_id"] == "0af7651916cd43dd8448eb211c80319c"  # the caller's, tracing off
    assert created["request_bytes"] == request.ByteSize() and created["response_bytes"] > 0
    assert created["peer"].startswith("ipv4:127.0.0.1:") and 0 < created["duration_ms"] < 30_000
    assert wrong_key["status"] == no_key["status"] == "UNAUTHENTICATED"
    assert (listed["method"], listed["status"], listed["company"]) == (LIST, "OK", company)
    text = json.dumps(lines)
    assert key not in text and "inv_wrong" not in text and "secret note" not in text and "Test Customer" not in text


@pytest.mark.parametrize(("level", "sample"), [("errors", 1.0), ("all", 0.0)])
def test_access_log_level_and_sampling_keep_every_error(database_url, access_log, level, sample):
    srv = ServerThread(database_url, access_log=level, access_log_sample=sample).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            for _ in range(5):
                create(stub, "acc-sampled")
            missing = svc.GetInvoiceRequest(company_id="acc-sampled", invoice_id=str(uuid.uuid4()))
            rpc_error(lambda: stub.GetInvoice(missing), grpc.StatusCode.NOT_FOUND)
    finally:
        srv.stop()
    assert [(line["method"], line["status"]) for line in access_log()] == [(GET, "NOT_FOUND")]


def test_access_log_off_logs_nothing(database_url, access_log):
    srv = ServerThread(database_url, access_log="off").start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            create(svc_grpc.InvoiceServiceStub(ch), "acc-off")
    finally:
        srv.stop()
    assert access_log() == []


# -- reflection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "kind", "shows"),
    [
        ("invoices.v1.InvoiceService", "a service", "rpc CreateInvoice"),
        ("invoices.v1.InvoiceService.CreateInvoice", "a method", "returns ( .invoices.v1.CreateInvoiceResponse )"),
        ("invoices.v1.PushOperationService.WatchPushOperations", "a method", "returns ( stream"),
        ("invoices.v1.Invoice", "a message", "string amount_due"),
        ("invoices.v1.Invoice.amount_due", "a field", "string amount_due = "),
        ("invoices.v1.InvoiceStatus", "an enum", "INVOICE_STATUS_PAID = 4"),
        ("invoices.v1.InvoiceStatus.INVOICE_STATUS_PAID", "an enum value", "INVOICE_STATUS_PAID = 4"),
        ("grpc.reflection.v1.ServerReflection", "a service", "rpc ServerReflectionInfo"),
        ("grpc.reflection.v1.ServerReflection.ServerReflectionInfo", "a method", "stream"),
    ],
)
def test_grpcurl_describes_every_kind_of_symbol(server, symbol, kind, shows):
    out = grpcurl(server.address, "describe", symbol)
    assert out.returncode == 0, out.stderr
    assert f"{symbol} is {kind}:" in out.stdout and shows in out.stdout


def test_grpcurl_lists_both_reflection_versions_and_every_method(server):
    services = grpcurl(server.address, "list").stdout.split()
    assert set(services) == {
        "invoices.v1.InvoiceService", "invoices.v1.PushOperationService", "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
    }  # fmt: skip
    methods = grpcurl(server.address, "list", "invoices.v1.InvoiceService").stdout.split()
    assert len(methods) == len(svc.DESCRIPTOR.services_by_name["InvoiceService"].methods)
    for method in methods:
        assert grpcurl(server.address, "describe", method).returncode == 0, method


def test_unknown_symbols_are_still_not_found(server):
    for symbol in ("invoices.v1.InvoiceService.NoSuchMethod", "invoices.v1.Invoice.no_such_field", "nope.Nope"):
        out = grpcurl(server.address, "describe", symbol)
        assert out.returncode != 0 and "not found" in out.stderr.lower(), symbol


# -- connections and statement timeouts ----------------------------------------------------------


def test_keepalive_and_connection_age_options_follow_the_settings(server):
    settings = server.settings.model_copy(update={"keepalive_time_ms": 12_345, "max_connection_age_ms": 0})
    options = dict(connection_options(settings))
    assert options["grpc.keepalive_time_ms"] == 12_345
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert "grpc.max_connection_age_ms" not in options  # 0: connections live as long as their clients
    defaults = dict(connection_options(server.settings))
    assert defaults["grpc.max_connection_age_ms"] == 1_800_000
    assert defaults["grpc.max_connection_age_grace_ms"] == 300_000


def test_connections_are_closed_at_their_maximum_age_and_clients_reconnect(database_url, access_log):
    srv = ServerThread(database_url, max_connection_age_ms=300, max_connection_age_grace_ms=300).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            create(stub, "age")
            time.sleep(1.5)  # past the age (with gRPC's ±10% jitter) and the grace
            create(stub, "age")  # the channel reconnected on its own: no error
    finally:
        srv.stop()
    first, second = (line["peer"] for line in access_log())
    assert first != second  # a new connection, so a balancer may pick another replica


def _hold(database_url: str, sql: str, held: threading.Event, release: threading.Event) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            async with conn.transaction():
                await conn.execute(sql)
                held.set()
                await asyncio.to_thread(release.wait)
        finally:
            await conn.close()

    asyncio.run(run())


def _holding(database_url: str, sql: str) -> tuple[threading.Event, threading.Thread]:
    held, release = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold, args=(database_url, sql, held, release))
    thread.start()
    assert held.wait(10)
    return release, thread


def test_a_write_over_its_statement_timeout_is_cut_with_deadline_exceeded(database_url, db):
    srv = ServerThread(database_url, write_statement_timeout_ms=300).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            draft = create(stub, "timeouts")
            release, thread = _holding(database_url, f"SELECT 1 FROM invoices WHERE id = '{draft.id}' FOR UPDATE")
            try:
                started = time.monotonic()
                request = svc.FinalizeInvoiceRequest(company_id="timeouts", invoice_id=draft.id)
                err = rpc_error(lambda: stub.FinalizeInvoice(request, timeout=20), grpc.StatusCode.DEADLINE_EXCEEDED)
                assert time.monotonic() - started < 5 and "time limit" in (err.details() or "")
            finally:
                release.set()
                thread.join()
            assert db.fetch("SELECT status FROM invoices WHERE id = $1", draft.id)[0]["status"] == "DRAFT"
            assert stub.FinalizeInvoice(request).invoice.status == pb.INVOICE_STATUS_SUBMITTED  # once the lock is gone
    finally:
        srv.stop()


def test_a_read_over_its_statement_timeout_is_cut_with_deadline_exceeded(database_url):
    srv = ServerThread(database_url, statement_timeout_ms=300).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            draft = create(stub, "timeouts-read")
            request = svc.GetInvoiceRequest(company_id="timeouts-read", invoice_id=draft.id)
            release, thread = _holding(database_url, "LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
            try:
                err = rpc_error(lambda: stub.GetInvoice(request, timeout=20), grpc.StatusCode.DEADLINE_EXCEEDED)
                assert "time limit" in (err.details() or "")
            finally:
                release.set()
                thread.join()
            assert stub.GetInvoice(request).invoice.id == draft.id
    finally:
        srv.stop()


def test_otel_metrics_exporter_console_exports_the_same_instruments(database_url, monkeypatch, capsys):
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "60000")  # only the final export, at shutdown
    srv = ServerThread(database_url, otel_metrics_exporter="console").start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            create(svc_grpc.InvoiceServiceStub(ch), "console-metrics")
    finally:
        srv.stop()  # flushes the exporter
    exported = capsys.readouterr().out
    assert srv.metrics_port == 0  # no METRICS_ADDR: no endpoint
    for name in ("grpc.server.call.started", "grpc.server.call.duration", "invoices.push_operations"):
        assert f'"name": "{name}"' in exported, name
    assert '"grpc.method": "invoices.v1.InvoiceService/CreateInvoice"' in exported
