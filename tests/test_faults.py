"""Faults: deadlines stop database work, PostgreSQL going away and coming back, SIGTERM during streams
and uploads, and a slow reader of a huge list."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pgserver
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc

from service.store.db import EmbeddedPostgres, migrate
from tests.conftest import ServerThread
from tests.helpers import create, invoice, line
from tests.test_process import service_process

PG_CTL = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"


def test_a_call_whose_deadline_passes_stops_its_database_work(stub, company, database_url, db):
    inv = create(stub, company)

    async def hold_lock(locked: threading.Event, release: threading.Event) -> None:
        conn = await asyncpg.connect(database_url)
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM invoices WHERE id = $1 FOR UPDATE", inv.id)
            locked.set()
            await asyncio.to_thread(release.wait)
        await conn.close()

    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=asyncio.run, args=(hold_lock(locked, release),))
    holder.start()
    try:
        assert locked.wait(5)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=inv.id), timeout=0.5)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - started < 2
        deadline = time.time() + 5
        while True:  # the server's statement, blocked behind our lock, must be cancelled, not left waiting
            waiting = db.fetch("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                               "AND query LIKE '%FROM invoices%'")[0]["n"]  # fmt: skip
            if waiting == 0:
                break
            assert time.time() < deadline, "the cancelled call kept waiting in PostgreSQL"
            time.sleep(0.05)
    finally:
        release.set()
        holder.join()
    time.sleep(0.3)
    assert db.fetch("SELECT status FROM invoices WHERE id = $1", inv.id)[0]["status"] == "DRAFT"


def _pg_ctl(data_dir: str, *args: str) -> None:
    # pgserver runs PostgreSQL as its own user under root. `runuser` rather than subprocess's `user=`:
    # that option makes Python fork() (not vfork) a process full of gRPC threads, and the child crashed.
    prefix = ["runuser", "-u", "pgserver", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, str(PG_CTL), "-D", data_dir, "-w", *args], check=True, capture_output=True)


def _stop_immediately(data_dir: str) -> None:
    """What `pg_ctl stop -m immediate` does (SIGQUIT to the postmaster), without spawning anything."""
    pid = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGQUIT)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError("PostgreSQL did not stop")


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[str, str]]:
    data_dir = str(tmp_path / "pg")
    embedded = EmbeddedPostgres(data_dir, cleanup="delete")
    url = embedded.create_database("faults")
    migrate(url)
    yield url, data_dir
    embedded.stop()


def test_postgres_stopped_under_load_fails_fast_then_recovers_by_itself(own_postgres, company):
    url, data_dir = own_postgres
    srv = ServerThread(url).start()
    codes: list[tuple[float, grpc.StatusCode]] = []
    stop = threading.Event()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)

            def load() -> None:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice(
                            lines=[line("1", "1")] * 5)), timeout=10)  # fmt: skip
                        codes.append((time.monotonic() - started, grpc.StatusCode.OK))
                    except grpc.RpcError as err:
                        codes.append((time.monotonic() - started, err.code()))
                        time.sleep(0.05)

            workers = [threading.Thread(target=load) for _ in range(4)]
            for w in workers:
                w.start()
            time.sleep(1)
            _stop_immediately(data_dir)
            down_from = len(codes)
            time.sleep(2)
            during = codes[down_from:]
            socket_dir = url.split("host=", 1)[1].split("&", 1)[0]  # as pgserver started it: sockets only
            _pg_ctl(
                data_dir, "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(Path(data_dir) / "restart.log"), "start"
            )
            deadline = time.time() + 40
            while time.time() < deadline:
                if codes[-5:] and all(c == grpc.StatusCode.OK for _, c in codes[-5:]):
                    break
                time.sleep(0.2)
            stop.set()
            for w in workers:
                w.join()
    finally:
        stop.set()
        srv.stop()
    seen = sorted({c.name for _, c in during})
    assert during and {c for _, c in during} <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK}, seen
    assert any(c == grpc.StatusCode.UNAVAILABLE for _, c in during), seen
    slowest = max(t for t, c in during if c == grpc.StatusCode.UNAVAILABLE)
    assert slowest < 5, f"failures must be quick; the slowest took {slowest:.1f} s"
    assert all(c == grpc.StatusCode.OK for _, c in codes[-5:]), f"no recovery: {[c.name for _, c in codes[-10:]]}"

    async def half_written() -> int:
        conn = await asyncpg.connect(url)
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM invoices i WHERE company_id = $1 "
                "AND (SELECT count(*) FROM line_items l WHERE l.invoice_id = i.id) <> 5", company))  # fmt: skip
        finally:
            await conn.close()

    assert asyncio.run(half_written()) == 0


def test_sigterm_during_a_stream_and_an_upload_ends_them_cleanly(database_url, company, db):
    env = {"DATABASE_URL": database_url, "SHUTDOWN_GRACE_SECONDS": "1"}
    with service_process(env) as (proc, address), grpc.insecure_channel(address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        reqs = [svc.CreateInvoiceRequest(invoice=invoice())] * 50
        for _ in range(4):
            stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs))
        inv = create(stub, company)
        outcomes: dict[str, object] = {}

        def slow_reader() -> None:
            try:
                for _ in stub.ListInvoices(svc.ListInvoicesRequest(company_id=company, page_size=5)):
                    time.sleep(0.2)
                outcomes["stream"] = grpc.StatusCode.OK
            except grpc.RpcError as err:
                outcomes["stream"] = err.code()

        def endless_upload() -> Iterator[svc.UploadAttachmentRequest]:
            yield svc.UploadAttachmentRequest(metadata=svc.AttachmentUpload(company_id=company, invoice_id=inv.id,
                                                                             name="big.zip"))  # fmt: skip
            for _ in range(400):
                yield svc.UploadAttachmentRequest(chunk=b"x" * 65536)
                time.sleep(0.01)

        def uploader() -> None:
            try:
                stub.UploadAttachment(endless_upload())
                outcomes["upload"] = grpc.StatusCode.OK
            except grpc.RpcError as err:
                outcomes["upload"] = err.code()

        threads = [threading.Thread(target=slow_reader), threading.Thread(target=uploader)]
        for t in threads:
            t.start()
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        for t in threads:
            t.join(10)
    clean = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert outcomes["stream"] in clean and outcomes["upload"] in clean, outcomes
    rows = db.fetch(
        "SELECT file_size, (SELECT coalesce(sum(length(data)), 0) FROM attachment_chunks c "
        "WHERE c.attachment_id = a.id) AS stored FROM attachments a WHERE company_id = $1",
        company,
    )
    assert all(r["file_size"] == r["stored"] and r["file_size"] == 400 * 65536 for r in rows), (
        "a partial upload was kept"
    )
    if outcomes["upload"] != grpc.StatusCode.OK:
        assert rows == []


def _rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) * 1024


def test_a_slow_reader_of_a_huge_list_does_not_grow_server_memory(database_url, company):
    with service_process({"DATABASE_URL": database_url}) as (proc, address), grpc.insecure_channel(address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        reqs = [svc.CreateInvoiceRequest(invoice=invoice(lines=[line("1", "1", description="d" * 400)] * 20))] * 50
        for _ in range(40):  # 2,000 invoices of ~15 KB: 30 MB of documents
            stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs))
        before = _rss(proc.pid)
        peak = before
        received = 0
        for msg in stub.ListInvoices(svc.ListInvoicesRequest(company_id=company, page_size=50)):
            received += len(msg.invoices)
            time.sleep(0.05)
            peak = max(peak, _rss(proc.pid))
            if received >= 600:
                break
    assert received >= 600
    assert peak - before < 20 * 1024 * 1024, f"server memory grew by {(peak - before) / 2**20:.1f} MB"


def test_health_is_not_serving_while_postgres_is_unreachable_and_serving_again_after(own_postgres):
    url, data_dir = own_postgres
    srv = ServerThread(url).start()

    def status_within(expected: int, seconds: float) -> float:
        started = time.monotonic()
        with grpc.insecure_channel(srv.address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            while True:
                now = health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                if now == expected:
                    return time.monotonic() - started
                assert time.monotonic() - started < seconds, f"health stayed {now}, expected {expected}"
                time.sleep(0.1)

    try:
        status_within(health_pb2.HealthCheckResponse.SERVING, 1)
        _stop_immediately(data_dir)
        status_within(health_pb2.HealthCheckResponse.NOT_SERVING, 5)
        socket_dir = url.split("host=", 1)[1].split("&", 1)[0]
        _pg_ctl(data_dir, "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(Path(data_dir) / "restart.log"), "start")
        status_within(health_pb2.HealthCheckResponse.SERVING, 20)
    finally:
        srv.stop()
