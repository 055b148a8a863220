"""`python -m service` as a real process: configuration from the environment, health, graceful
SIGTERM drain, and the embedded PostgreSQL keeping invoices across a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import invoice

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def service_process(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    full_env = {
        **os.environ,
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "AUTH_REQUIRED": "false",
        # The output pipe is read only once the process has ended: a line per call would fill it.
        "ACCESS_LOG": "off",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "service"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    address = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(address) as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            deadline = time.time() + 90
            while True:
                try:
                    if (
                        stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        break
                except grpc.RpcError:
                    pass
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.time() < deadline, "service did not become healthy"
                time.sleep(0.2)
        yield proc, address
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_sets_not_serving_then_drains_in_flight_calls(database_url, db):
    company = f"drain-{os.getpid()}-{time.time_ns()}"
    with (
        service_process({"DATABASE_URL": database_url}) as (proc, address),
        grpc.insecure_channel(address) as ch,
    ):
        health = health_pb2_grpc.HealthStub(ch)
        watch = health.Watch(health_pb2.HealthCheckRequest(service="invoices.v1.InvoiceService"))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        stub = svc_grpc.InvoiceServiceStub(ch)
        codes: list[grpc.StatusCode] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice()), timeout=10)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as err:
                    codes.append(err.code())
                    return

        with ThreadPoolExecutor(8) as pool:
            for _ in range(8):
                pool.submit(load)
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert proc.wait(timeout=20) == 0
            stop.set()
        assert codes.count(grpc.StatusCode.OK) > 0
        # Calls caught by shutdown fail cleanly (CANCELLED, UNAVAILABLE); none is UNKNOWN or INTERNAL.
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, set(codes)
        stored = db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"]
        ok = codes.count(grpc.StatusCode.OK)
        assert ok <= stored <= ok + codes.count(grpc.StatusCode.CANCELLED)
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert '"message": "stopped"' in output and "Traceback" not in output


def test_embedded_postgres_keeps_invoices_across_restart(tmp_path):
    env = {"DATABASE_URL": "", "EMBEDDED_PG_DIR": str(tmp_path / "pg")}
    with service_process(env) as (proc, address), grpc.insecure_channel(address) as ch:
        created = (
            svc_grpc.InvoiceServiceStub(ch)
            .CreateInvoice(svc.CreateInvoiceRequest(company_id="restart", invoice=invoice()))
            .invoice
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with service_process(env) as (proc, address), grpc.insecure_channel(address) as ch:
        again = (
            svc_grpc.InvoiceServiceStub(ch)
            .GetInvoice(svc.GetInvoiceRequest(company_id="restart", invoice_id=created.id))
            .invoice
        )
        assert again == created
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_two_processes_share_one_port_and_both_drain_on_sigterm(database_url):
    metrics = free_port()
    env = {"DATABASE_URL": database_url, "PROCESSES": "2", "METRICS_ADDR": f"127.0.0.1:{metrics}"}
    with service_process(env) as (proc, address):
        pids: set[str] = set()
        calls = 0
        for _ in range(40):  # each channel is one connection; the kernel spreads them over the processes
            with grpc.insecure_channel(address) as ch:
                _, call = svc_grpc.InvoiceServiceStub(ch).GetInvoiceModel.with_call(
                    svc.GetInvoiceModelRequest(company_id="multi")
                )
                calls += 1
                pids |= {str(v) for k, v in call.trailing_metadata() if k == "x-served-by-pid"}
            if len(pids) == 2:
                break
        assert len(pids) == 2, pids
        # Each process counts its own calls on its own /metrics (METRICS_ADDR's port + i); together, all.
        started = 0.0
        for port in (metrics, metrics + 1):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                text = answer.read().decode()
            for family in text_string_to_metric_families(text):
                started += sum(
                    s.value for s in family.samples
                    if s.name == "grpc_server_call_started_total"
                    and s.labels.get("grpc_method") == "invoices.v1.InvoiceService/GetInvoiceModel"
                )  # fmt: skip
        assert started == calls
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
