"""Push operations, the live change feed, asynchronous writes and idempotency, over real channels and
real service processes sharing one PostgreSQL."""

from __future__ import annotations

import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_pb2 as push_pb
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc

from tests.conftest import ServerThread
from tests.helpers import create, finalized, invoice, pay, rpc_error, violations
from tests.test_process import service_process

INV = grpc.StatusCode.INVALID_ARGUMENT
E = ps.InvoiceEventType
ASYNC = (("prefer", "respond-async"),)
FINAL = {
    push_pb.PUSH_OPERATION_STATUS_SUCCESS,
    push_pb.PUSH_OPERATION_STATUS_FAILED,
    push_pb.PUSH_OPERATION_STATUS_TIMED_OUT,
}


@pytest.fixture(scope="module")
def ops(channel: grpc.Channel) -> ps_grpc.PushOperationServiceStub:
    return ps_grpc.PushOperationServiceStub(channel)


def events_until(ops: Any, company: str, count: int, timeout: float = 10, **kw: Any) -> list[ps.InvoiceEvent]:
    out: list[ps.InvoiceEvent] = []
    stream = ops.WatchInvoiceEvents(ps.WatchInvoiceEventsRequest(company_id=company, **kw), timeout=timeout)
    for msg in stream:
        out.extend(msg.events)
        if len(out) >= count:
            stream.cancel()
            break
    return out


def wait_final(ops: Any, company: str, key: str, timeout: float = 20) -> push_pb.PushOperation:
    deadline = time.time() + timeout
    while time.time() < deadline:
        op = ops.GetPushOperation(ps.GetPushOperationRequest(company_id=company, push_operation_key=key)).push_operation
        if op.status in FINAL:
            return op  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"operation {key} did not finish")


# -- reading push operations ----------------------------------------------------------------------


def test_get_and_list_push_operations_with_filters_and_pages(stub, ops, company):
    keys = [
        stub.CreateInvoice(
            svc.CreateInvoiceRequest(company_id=company, invoice=invoice())
        ).push_operation.push_operation_key
        for _ in range(5)
    ]
    rpc_error(lambda: create(stub, company, invoice(total_amount="1")), INV)
    got = ops.GetPushOperation(
        ps.GetPushOperationRequest(company_id=company, push_operation_key=keys[0])
    ).push_operation
    assert got.operation == "CreateInvoice" and got.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
    rpc_error(
        lambda: ops.GetPushOperation(ps.GetPushOperationRequest(company_id=company + "x", push_operation_key=keys[0])),
        grpc.StatusCode.NOT_FOUND,
    )
    seen, token = [], ""
    while True:
        page = ops.ListPushOperations(
            ps.ListPushOperationsRequest(
                company_id=company,
                filter="status = success && operation = CreateInvoice",
                order_by="requestedOnUtc",
                page_size=2,
                page_token=token,
            )
        )
        seen += [op.push_operation_key for op in page.push_operations]
        token = page.next_page_token
        if not token:
            break
    assert seen == keys
    failed = ops.ListPushOperations(ps.ListPushOperationsRequest(company_id=company, filter="status = FAILED"))
    assert len(failed.push_operations) == 1 and failed.push_operations[0].status_code == 400
    err = rpc_error(
        lambda: ops.ListPushOperations(ps.ListPushOperationsRequest(company_id=company, filter="bogus = 1")), INV
    )
    assert "filter" in violations(err)


# -- the change feed ------------------------------------------------------------------------------


def test_every_change_appends_its_event_in_commit_order(stub, ops, company):
    inv = finalized(stub, company)
    pay(stub, company, inv.id, inv.total_amount)
    draft = create(stub, company)
    stub.DeleteInvoice(svc.DeleteInvoiceRequest(company_id=company, invoice_id=draft.id))
    other = finalized(stub, company)
    stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=other.id))
    stub.TriggerInvoiceCommunication(svc.TriggerInvoiceCommunicationRequest(company_id=company, invoice_id=other.id))
    wanted = [
        E.INVOICE_EVENT_TYPE_INVOICE_CREATED,
        E.INVOICE_EVENT_TYPE_INVOICE_FINALIZED,
        E.INVOICE_EVENT_TYPE_INVOICE_PAID,
        E.INVOICE_EVENT_TYPE_INVOICE_CREATED,
        E.INVOICE_EVENT_TYPE_INVOICE_DELETED,
        E.INVOICE_EVENT_TYPE_INVOICE_CREATED,
        E.INVOICE_EVENT_TYPE_INVOICE_FINALIZED,
        E.INVOICE_EVENT_TYPE_INVOICE_VOIDED,
        E.INVOICE_EVENT_TYPE_COMMUNICATION_TRIGGERED,
    ]
    got = events_until(ops, company, len(wanted), types=sorted(set(wanted)))
    assert [e.type for e in got] == wanted
    cursors = [e.cursor for e in got]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    comms = got[-1]
    assert comms.invoice.id == other.id and comms.invoice.invoice_number == other.invoice_number
    only_one = events_until(
        ops,
        company,
        2,
        invoice_id=inv.id,
        types=[E.INVOICE_EVENT_TYPE_INVOICE_PAID, E.INVOICE_EVENT_TYPE_INVOICE_FINALIZED],
    )
    assert [e.type for e in only_one[:2]] == [E.INVOICE_EVENT_TYPE_INVOICE_FINALIZED, E.INVOICE_EVENT_TYPE_INVOICE_PAID]
    status_events = events_until(ops, company, 1, types=[E.INVOICE_EVENT_TYPE_PUSH_OPERATION_STATUS_CHANGED])
    assert status_events[0].push_operation_key
    rpc_error(lambda: events_until(ops, company, 1, types=[99]), INV)


def test_watchers_are_live_and_see_other_companies_never(stub, ops, company):
    got: list[ps.InvoiceEvent] = []
    ready = threading.Event()

    def watch() -> None:
        stream = ops.WatchInvoiceEvents(ps.WatchInvoiceEventsRequest(company_id=company, from_now=True), timeout=10)
        ready.set()
        for msg in stream:
            got.extend(msg.events)
            if any(e.type == E.INVOICE_EVENT_TYPE_INVOICE_CREATED for e in got):
                stream.cancel()
                return

    thread = threading.Thread(target=watch)
    thread.start()
    ready.wait()
    time.sleep(0.3)
    create(stub, company + "-other")
    inv = create(stub, company)
    thread.join(10)
    assert any(e.invoice_id == inv.id for e in got) and all(e.company_id == company for e in got)


def test_a_watcher_that_disconnects_and_resumes_sees_every_event_once_in_order(stub, ops, server, company, db):
    stop = threading.Event()

    def writer(n: int) -> None:
        with grpc.insecure_channel(server.address) as ch:
            other = svc_grpc.InvoiceServiceStub(ch)
            while not stop.is_set():
                inv = other.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice())).invoice
                other.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=inv.id))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    received: list[int] = []
    rng = random.Random(5)
    cursor = 0
    try:
        deadline = time.time() + 4
        while time.time() < deadline:
            stream = ops.WatchInvoiceEvents(
                ps.WatchInvoiceEventsRequest(company_id=company, after_cursor=cursor), timeout=5
            )
            take = rng.randint(1, 25)
            for msg in stream:
                for e in msg.events:
                    received.append(e.cursor)
                    cursor = e.cursor
                    take -= 1
                    if take == 0:
                        break  # drop the connection mid-batch: events after `cursor` must come again
                if take <= 0:
                    stream.cancel()
                    break
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(received) > 50
    assert received == sorted(set(received)), "repeated or out of order"
    stored = [
        r["position"]
        for r in db.fetch(
            "SELECT position FROM invoice_events WHERE company_id = $1 AND position IS NOT NULL AND position <= $2 "
            "ORDER BY position",
            company,
            received[-1],
        )
    ]
    assert received == stored, "an event was lost"


def test_watch_push_operations_follows_status_changes(stub, ops, company):
    resp = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice()), metadata=ASYNC)
    assert resp.push_operation.status == push_pb.PUSH_OPERATION_STATUS_PENDING
    key = resp.push_operation.push_operation_key
    stream = ops.WatchPushOperations(
        ps.WatchPushOperationsRequest(company_id=company, statuses=[push_pb.PUSH_OPERATION_STATUS_SUCCESS]), timeout=10
    )
    first = next(iter(stream))
    stream.cancel()
    assert first.push_operation.push_operation_key == key and first.push_operation.changes[0].record_ref.id


# -- asynchronous writes --------------------------------------------------------------------------


def test_asynchronous_writes_answer_pending_and_apply_once(stub, ops, company, db):
    resp = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice()), metadata=ASYNC)
    assert resp.push_operation.status == push_pb.PUSH_OPERATION_STATUS_PENDING and not resp.HasField("invoice")
    done = wait_final(ops, company, resp.push_operation.push_operation_key)
    assert (
        done.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
        and done.changes[0].type == push_pb.PUSH_CHANGE_TYPE_CREATED
    )
    bad = stub.CreateInvoice(
        svc.CreateInvoiceRequest(company_id=company, invoice=invoice(total_amount="1")), metadata=ASYNC
    )
    failed = wait_final(ops, company, bad.push_operation.push_operation_key)
    assert (
        failed.status == push_pb.PUSH_OPERATION_STATUS_FAILED
        and failed.validation.errors[0].item_id == "invoice.total_amount"
    )
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 1


def test_big_batches_always_run_asynchronously(database_url, company, db):
    srv = ServerThread(database_url, async_batch_threshold=3).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub, ops = svc_grpc.InvoiceServiceStub(ch), ps_grpc.PushOperationServiceStub(ch)
            reqs = [svc.CreateInvoiceRequest(invoice=invoice(customer=f"c{i}")) for i in range(4)]
            resp = stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs))
            assert resp.push_operation.status == push_pb.PUSH_OPERATION_STATUS_PENDING
            assert len(wait_final(ops, company, resp.push_operation.push_operation_key).changes) == 4
            small = stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs[:3]))
            assert small.push_operation.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
            rpc_error(
                lambda: stub.BatchCreateInvoices(
                    svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs * 13)
                ),
                INV,
            )
    finally:
        srv.stop()
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 7


def test_an_operation_past_its_timeout_is_timed_out_and_never_applied(ops, company, db, server):
    key = "9a6f0c1e-0000-4000-8000-000000000001".replace("0001", str(random.randrange(1000, 9999)))
    request = svc.CreateInvoiceRequest(company_id=company, invoice=invoice()).SerializeToString()
    db.fetch(
        "INSERT INTO push_operations (push_operation_key, company_id, data_type, operation, status, status_code, "
        "requested_on_utc, timeout_in_minutes, request) VALUES ($1, $2, 'invoices', 'CreateInvoice', 'PENDING', 202, "
        "now() - interval '2 hours', 60, $3)",
        key,
        company,
        request,
    )
    db.fetch("NOTIFY push_operations_pending")
    op = wait_final(ops, company, key)
    assert op.status == push_pb.PUSH_OPERATION_STATUS_TIMED_OUT
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 0


def test_a_dead_workers_lease_expires_and_another_applies_it_once(ops, company, db, server):
    key = f"9a6f0c1e-0000-4000-8000-{random.randrange(10**11, 10**12)}"
    request = svc.CreateInvoiceRequest(company_id=company, invoice=invoice()).SerializeToString()
    # As a worker that claimed the operation and died would leave it: leased, lease running out.
    db.fetch(
        "INSERT INTO push_operations (push_operation_key, company_id, data_type, operation, status, status_code, "
        "requested_on_utc, timeout_in_minutes, request, lease_owner, lease_until, attempts) VALUES ($1, $2, "
        "'invoices', 'CreateInvoice', 'PENDING', 202, now(), 60, $3, 'dead-worker', now() + interval '1 second', 1)",
        key,
        company,
        request,
    )
    time.sleep(1.2)
    db.fetch("NOTIFY push_operations_pending")
    op = wait_final(ops, company, key)
    assert op.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 1


def test_two_processes_500_operations_each_applied_once_even_when_one_is_killed(database_url, company, db):
    env = {"DATABASE_URL": database_url, "PUSH_WORKERS": "3", "PUSH_LEASE_SECONDS": "2"}
    with service_process(env) as (a, address_a), service_process(env) as (_, address_b):
        keys: list[str] = []
        with grpc.insecure_channel(address_a) as ch_a, grpc.insecure_channel(address_b) as ch_b:
            stubs = [svc_grpc.InvoiceServiceStub(ch_a), svc_grpc.InvoiceServiceStub(ch_b)]

            def submit(i: int) -> str:
                resp = stubs[i % 2].CreateInvoice(
                    svc.CreateInvoiceRequest(company_id=company, invoice=invoice(note=f"op {i}")), metadata=ASYNC
                )
                return str(resp.push_operation.push_operation_key)

            with ThreadPoolExecutor(16) as pool:
                keys = list(pool.map(submit, range(500)))
            time.sleep(0.3)
            a.send_signal(signal.SIGKILL)  # mid-work: its leased operations must be finished by b, once
            a.wait()
            ops = ps_grpc.PushOperationServiceStub(ch_b)
            deadline = time.time() + 60
            while time.time() < deadline:
                pending = db.fetch(
                    "SELECT count(*) AS n FROM push_operations WHERE company_id = $1 AND status = 'PENDING'", company
                )[0]["n"]
                if pending == 0:
                    break
                time.sleep(0.2)
            assert wait_final(ops, company, keys[-1]).status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
    rows = db.fetch("SELECT status, count(*) AS n FROM push_operations WHERE company_id = $1 GROUP BY status", company)
    assert {r["status"]: r["n"] for r in rows} == {"SUCCESS": 500}
    notes = db.fetch("SELECT note FROM invoices WHERE company_id = $1", company)
    assert len(notes) == 500 and len({r["note"] for r in notes}) == 500, "an operation was applied twice or lost"


# -- idempotency ----------------------------------------------------------------------------------


def test_a_retry_replays_the_first_answer(stub, company, db):
    request = svc.CreateInvoiceRequest(company_id=company, invoice=invoice(), request_id="create-1")
    first = stub.CreateInvoice(request)
    again = stub.CreateInvoice(request)
    assert again == first
    by_metadata = stub.CreateInvoice(
        svc.CreateInvoiceRequest(company_id=company, invoice=invoice()), metadata=(("idempotency-key", "create-1"),)
    )
    assert by_metadata == first
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 1
    err = rpc_error(
        lambda: stub.CreateInvoice(
            svc.CreateInvoiceRequest(company_id=company, invoice=invoice(note="different"), request_id="create-1")
        ),
        INV,
    )
    assert "request_id" in violations(err)


def test_a_refusal_is_replayed_too(stub, company):
    bad = svc.CreateInvoiceRequest(company_id=company, invoice=invoice(total_amount="1"), request_id="bad-1")
    first = rpc_error(lambda: stub.CreateInvoice(bad), INV)
    second = rpc_error(lambda: stub.CreateInvoice(bad), INV)
    assert violations(first) == violations(second)


def test_concurrent_duplicates_produce_one_effect(stub, company, db):
    inv = finalized(stub, company)
    allocation = pb.PaymentAllocation(allocation=pb.Allocation(total_amount="10"))
    request = svc.RecordPaymentRequest(
        company_id=company, invoice_id=inv.id, request_id="pay-once", payment_allocation=allocation
    )

    def attempt(_: int) -> Any:
        try:
            return stub.RecordPayment(request).invoice.amount_due
        except grpc.RpcError as err:
            return err.code()

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(attempt, range(20)))
    assert set(results) <= {"90.00", grpc.StatusCode.ABORTED} and "90.00" in results
    paid = db.fetch("SELECT count(*) AS n FROM payment_allocations WHERE invoice_id = $1", inv.id)[0]["n"]
    assert paid == 1


def test_keys_expire(database_url, company, db):
    srv = ServerThread(database_url, idempotency_ttl_seconds=1).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            request = svc.CreateInvoiceRequest(company_id=company, invoice=invoice(), request_id="short-lived")
            first = stub.CreateInvoice(request).invoice.id
            assert stub.CreateInvoice(request).invoice.id == first
            time.sleep(1.5)
            assert stub.CreateInvoice(request).invoice.id != first
    finally:
        srv.stop()
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 2
