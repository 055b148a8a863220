"""The default set-up as a new user runs it: `make run` with no DATABASE_URL (the embedded PostgreSQL), on a
machine where libpq's defaults (PGHOST/PGPORT) point at nothing, so nothing can fall back to a server that
happens to run there. Events must stream, an asynchronous write must complete within a second, and a
revoked key must be refused at once, open streams included."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_pb2 as po
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc

from tests.helpers import invoice, rpc_error
from tests.test_process import ROOT, free_port

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def bare_machine_env(tmp_path: Path, port: int) -> dict[str, str]:
    """The user's environment, minus any database settings, with libpq's defaults pointing at nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "TEST_DATABASE"))}
    env.update(
        LISTEN_ADDR=f"127.0.0.1:{port}",
        EMBEDDED_PG_DIR=str(tmp_path / "pgdata"),
        PGHOST=str(tmp_path / "no-server-here"),
        PGPORT="1",
        SHUTDOWN_GRACE_SECONDS="2",
    )
    return env


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(VENV_PYTHON), "-m", "service", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def make_run() -> Iterator[tuple[str, dict[str, str]]]:
    if not VENV_PYTHON.exists():
        pytest.skip("needs the project's .venv (make run creates it)")
    port = free_port()
    # Not under pytest's own temporary root: pytest keeps that root private (0700) to its user, and the
    # embedded PostgreSQL runs as its own user, which must reach the data folder.
    folder = Path(tempfile.mkdtemp(prefix="invoice-make-run-"))
    folder.chmod(0o755)
    env = bare_machine_env(folder, port)
    proc = subprocess.Popen(
        ["make", "-s", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    address = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            deadline = time.time() + 120
            while True:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "exited"
                try:
                    if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        break
                except grpc.RpcError:
                    pass
                assert time.time() < deadline, "make run never became SERVING"
                time.sleep(0.3)
        yield address, env
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_make_run_on_a_bare_machine_streams_events_runs_async_writes_and_revokes_keys(make_run):
    address, env = make_run
    created = cli(env, "keys", "create", "--company", "acme")
    key = re.search(r"key:\s+(\S+)", created)
    key_id = re.search(r"key id:\s+(\S+)", created)
    assert key and key_id, created
    md = (("authorization", f"Bearer {key.group(1)}"),)
    with grpc.insecure_channel(address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        ops = ps_grpc.PushOperationServiceStub(ch)
        events: list[ps.WatchInvoiceEventsResponse] = []
        ended: dict[str, object] = {}
        watching = threading.Event()

        def watch() -> None:
            stream = ops.WatchInvoiceEvents(ps.WatchInvoiceEventsRequest(from_now=True), metadata=md, timeout=60)
            watching.set()
            try:
                for batch in stream:
                    events.append(batch)
                ended["code"] = grpc.StatusCode.OK
            except grpc.RpcError as err:
                ended["code"] = err.code()
            ended["at"] = time.monotonic()

        watcher = threading.Thread(target=watch)
        watcher.start()
        assert watching.wait(5)
        time.sleep(0.5)  # the stream is open on the server

        # Events stream: the creation arrives within a second.
        inv = stub.CreateInvoice(svc.CreateInvoiceRequest(invoice=invoice()), metadata=md).invoice
        deadline = time.monotonic() + 2
        while not any(e.invoice_id == inv.id for b in events for e in b.events) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(e.invoice_id == inv.id for b in events for e in b.events), "no event for the created invoice"

        # An asynchronous write completes within a second (the queue is woken by NOTIFY, not a timer).
        started = time.monotonic()
        accepted = stub.CreateInvoice(
            svc.CreateInvoiceRequest(invoice=invoice()), metadata=(*md, ("prefer", "respond-async"))
        ).push_operation
        assert accepted.status == po.PUSH_OPERATION_STATUS_PENDING
        get = ps.GetPushOperationRequest(push_operation_key=accepted.push_operation_key)
        while (op := ops.GetPushOperation(get, metadata=md).push_operation).status == po.PUSH_OPERATION_STATUS_PENDING:
            assert time.monotonic() - started < 1.0, "the asynchronous write did not complete within a second"
            time.sleep(0.02)
        assert op.status == po.PUSH_OPERATION_STATUS_SUCCESS

        # A revoked key is refused at once, and the open stream ends with UNAUTHENTICATED within a second.
        cli(env, "keys", "revoke", key_id.group(1))
        revoked_at = time.monotonic()
        rpc_error(lambda: stub.GetInvoice(svc.GetInvoiceRequest(invoice_id=inv.id), metadata=md),
                  grpc.StatusCode.UNAUTHENTICATED)  # fmt: skip
        watcher.join(5)
        assert ended.get("code") == grpc.StatusCode.UNAUTHENTICATED, ended
        assert float(ended["at"]) - revoked_at < 1.0  # type: ignore[arg-type]
