"""Retention: every process purges expired request ids, and events and push operations past their
retention, on a schedule, in batches; a watcher resuming from a purged cursor gets OUT_OF_RANGE.

Its own database: purging with backdated rows must not touch what other suites read."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc

from service.handlers.retention import Retention, RetentionPolicy
from service.handlers.writes import utcnow
from service.store.db import create_pool, migrate
from tests.conftest import Database, ServerThread
from tests.helpers import create, invoice, rpc_error, violations


def fresh_database(database_url: str) -> str:
    """A new migrated database on the suite's server (URLs of either form: /name or /name?host=...)."""
    name = f"invoices_retention_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(database_url)
    current = parts.path.lstrip("/")

    async def make() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(make())
    url = urlunsplit(parts._replace(path=f"/{name}"))
    assert current and current != name
    migrate(url)
    return url


@pytest.fixture(scope="module")
def scheduled(database_url: str) -> Iterator[tuple[str, grpc.Channel]]:
    """A server whose purge runs every second (jittered), request ids kept 1 s; events and operations at
    their default retention."""
    url = fresh_database(database_url)
    srv = ServerThread(url, retention_interval_seconds=1, idempotency_ttl_seconds=1).start()
    with grpc.insecure_channel(srv.address) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield url, ch
    srv.stop()


@pytest.fixture(scope="module")
def quiet(database_url: str) -> Iterator[tuple[str, grpc.Channel]]:
    """A server whose own purge does not run during the tests: they call rounds themselves."""
    url = fresh_database(database_url)
    srv = ServerThread(url, retention_interval_seconds=3600).start()
    with grpc.insecure_channel(srv.address) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield url, ch
    srv.stop()


def run_once(url: str, policy: RetentionPolicy, days_ahead: float = 0) -> dict[str, int]:
    async def go() -> dict[str, int]:
        pool = await create_pool(url, 1, 2)
        try:
            purged = await Retention(pool, policy).run_once(utcnow() + timedelta(days=days_ahead))
            return {"keys": purged.idempotency_keys, "events": purged.events, "ops": purged.push_operations}
        finally:
            await pool.close()

    return asyncio.run(go())


def wait_for(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not purged in time"
        time.sleep(0.2)


def test_the_scheduled_round_purges_expired_request_ids_and_old_rows(scheduled):
    own_url, rch = scheduled
    db = Database(own_url)
    stub = svc_grpc.InvoiceServiceStub(rch)
    company = f"co-{uuid.uuid4().hex[:10]}"
    keep = f"co-{uuid.uuid4().hex[:10]}"
    inv = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice(), request_id="r-1"))
    create(stub, keep)
    assert db.fetch("SELECT count(*) AS n FROM idempotency_keys WHERE company_id = $1", company)[0]["n"] == 1
    # Age this company's rows past the default retention (30 days of events, 90 of operations).
    db.fetch("UPDATE invoice_events SET create_time = now() - interval '31 days' WHERE company_id = $1", company)
    db.fetch("UPDATE push_operations SET completed_on_utc = now() - interval '91 days' WHERE company_id = $1", company)
    wait_for(lambda: db.fetch("SELECT count(*) AS n FROM idempotency_keys WHERE company_id = $1", company)[0]["n"] == 0)
    wait_for(lambda: db.fetch("SELECT count(*) AS n FROM push_operations WHERE company_id = $1", company)[0]["n"] == 0)
    # Events go as a prefix of positions: the other company's newer events (and the head) stay.
    wait_for(lambda: db.fetch("SELECT count(*) AS n FROM invoice_events WHERE company_id = $1", company)[0]["n"] == 0)
    assert db.fetch("SELECT count(*) AS n FROM invoice_events WHERE company_id = $1", keep)[0]["n"] > 0
    assert db.fetch("SELECT count(*) AS n FROM push_operations WHERE company_id = $1", keep)[0]["n"] == 1
    # The invoice itself is business data: never purged.
    assert stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.invoice.id)).invoice.id


def test_a_watcher_resuming_from_a_purged_cursor_gets_out_of_range(quiet):
    own_url, rch = quiet
    db = Database(own_url)
    stub, ops = svc_grpc.InvoiceServiceStub(rch), ps_grpc.PushOperationServiceStub(rch)
    company = f"co-{uuid.uuid4().hex[:10]}"
    for _ in range(3):
        create(stub, company)

    def watch(after: int, count: int) -> list[int]:
        stream = ops.WatchInvoiceEvents(
            ps.WatchInvoiceEventsRequest(company_id=company, after_cursor=after), timeout=10
        )
        out: list[int] = []
        for msg in stream:
            out.extend(e.cursor for e in msg.events)
            if len(out) >= count:
                stream.cancel()
                break
        return out

    cursors = watch(0, 6)  # three invoices: CREATED and the operation's status each
    assert len(cursors) == 6
    # Everything up to the invoice created last is older than 30 days; what follows is not.
    db.fetch(
        "UPDATE invoice_events SET create_time = now() - interval '40 days' WHERE company_id = $1 AND position <= $2",
        company, cursors[3],
    )  # fmt: skip
    policy = RetentionPolicy(event_days=30, push_operation_days=0, interval_seconds=3600)
    purged = run_once(own_url, policy)
    assert purged["events"] >= 4 and purged["ops"] == 0
    err = rpc_error(lambda: watch(cursors[0], 1), grpc.StatusCode.OUT_OF_RANGE)
    assert "after_cursor" in violations(err) or "no longer kept" in (err.details() or "")
    # Resuming where nothing was lost still works, and so does starting from the oldest kept.
    assert watch(cursors[3], 2) == cursors[4:]
    assert watch(0, 2) == cursors[4:]
    # Numbering goes on after the purge: a new event follows the old head.
    create(stub, company)
    assert watch(cursors[5], 1)[0] > cursors[5]


def test_zero_keeps_forever_and_pending_operations_are_never_purged(quiet):
    own_url, rch = quiet
    db = Database(own_url)
    stub = svc_grpc.InvoiceServiceStub(rch)
    company = f"co-{uuid.uuid4().hex[:10]}"
    create(stub, company)
    db.fetch("UPDATE invoice_events SET create_time = now() - interval '400 days' WHERE company_id = $1", company)
    events_before = db.fetch("SELECT count(*) AS n FROM invoice_events WHERE company_id = $1", company)[0]["n"]
    purged = run_once(own_url, RetentionPolicy(event_days=0, push_operation_days=0, interval_seconds=3600), 400)
    assert purged["events"] == 0 and purged["ops"] == 0
    assert db.fetch("SELECT count(*) AS n FROM invoice_events WHERE company_id = $1", company)[0]["n"] == events_before
    # A PENDING operation (an asynchronous write not applied yet) stays whatever its age.
    key = str(uuid.uuid4())
    db.fetch(
        "INSERT INTO push_operations (push_operation_key, company_id, data_type, operation, status, status_code, "
        "requested_on_utc, timeout_in_minutes, lease_owner, lease_until) "
        "VALUES ($1, $2, 'invoices', 'CreateInvoice', 'PENDING', 202, now() - interval '1000 days', 1000000000, "
        "'someone', now() + interval '1 hour')",
        key, company,
    )  # fmt: skip
    run_once(own_url, RetentionPolicy(event_days=1, push_operation_days=1, interval_seconds=3600), 10)
    assert db.fetch("SELECT status FROM push_operations WHERE push_operation_key = $1", key)[0]["status"] == "PENDING"
    db.fetch("DELETE FROM push_operations WHERE push_operation_key = $1", key)


def test_purging_a_big_backlog_goes_in_batches(quiet):
    own_url, _ = quiet
    db = Database(own_url)
    company = f"co-{uuid.uuid4().hex[:10]}"
    db.fetch(
        "INSERT INTO idempotency_keys (company_id, key, method, request_hash, state, create_time, expire_time) "
        "SELECT $1, 'k' || g, 'CreateInvoice', 'h', 'DONE', now() - interval '2 days', now() - interval '1 day' "
        "FROM generate_series(1, 2500) g",
        company,
    )
    purged = run_once(own_url, RetentionPolicy(event_days=0, push_operation_days=0, interval_seconds=3600))
    assert purged["keys"] == 2500  # three batches of at most 1,000
    assert db.fetch("SELECT count(*) AS n FROM idempotency_keys WHERE company_id = $1", company)[0]["n"] == 0
