"""`python -m service` operator commands as real processes against the real database, and API keys with
an expiry or a read-only scope enforced by a real server that requires keys."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc
import pytest
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_pb2 as push_pb
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc

from service.transport import wire
from service.transport.policy import write_paths
from tests.conftest import ServerThread
from tests.helpers import invoice, rpc_error
from tests.test_security import bearer

ROOT = Path(__file__).resolve().parents[1]


def cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DATABASE_URL": database_url, **env},
    )  # fmt: skip


def new_key(database_url: str, company: str, *options: str) -> tuple[str, str]:
    out = cli(database_url, "keys", "create", "--company", company, *options)
    assert out.returncode == 0, out.stderr
    found = re.search(r"key id:\s+(\S+).*key:\s+(\S+)", out.stdout, re.S)
    assert found, out.stdout
    return found.group(1), found.group(2)


# -- migrations, configuration, purge ------------------------------------------------------------


def test_migration_status_shows_current_against_head_without_migrating(database_url):
    up = cli(database_url, "migrations", "status")
    assert up.returncode == 0, up.stderr
    current = re.search(r"current: (\S+)", up.stdout).group(1)  # type: ignore[union-attr]
    head = re.search(r"head:\s+(\S+)", up.stdout).group(1)  # type: ignore[union-attr]
    assert current == head and "up to date" in up.stdout

    async def fresh() -> str:
        name = f"never_migrated_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url: str = database_url.replace(f"/{urlsplit(database_url).path.lstrip('/')}", f"/{name}", 1)
        return url

    empty = asyncio.run(fresh())
    behind = cli(empty, "migrations", "status")
    assert behind.returncode == 1 and "never migrated" in behind.stdout and head in behind.stdout
    assert "pending: 0001" in behind.stdout
    assert cli(empty, "migrations", "status").returncode == 1  # status changed nothing


def test_config_prints_the_effective_settings_with_secrets_masked(database_url):
    out = cli(
        database_url, "config",
        DATABASE_URL="postgresql://svc:db-pass-123@db.internal:5432/invoices?password=other-pass",
        SMTP_PASSWORD="smtp-pass-456", PAGE_TOKEN_SECRET="token-secret-789", SMTP_HOST="mail.internal",
        DB_POOL_MAX="7", ACCESS_LOG="errors",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    values = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert values["DATABASE_URL"] == "postgresql://svc:****@db.internal:5432/invoices?password=****"
    assert values["SMTP_PASSWORD"] == "****" and values["PAGE_TOKEN_SECRET"] == "****"
    assert values["SMTP_HOST"] == "mail.internal" and values["DB_POOL_MAX"] == "7" and values["ACCESS_LOG"] == "errors"
    assert values["GRPC_MAX_CONNECTION_AGE_MS"] == "1800000"  # defaults are shown too
    for secret in ("db-pass-123", "other-pass", "smtp-pass-456", "token-secret-789"):
        assert secret not in out.stdout + out.stderr


def test_purge_deletes_expired_idempotency_keys_now(database_url, db):
    company = f"purge-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)

    async def seed() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            for key, expires in (("old", now - timedelta(minutes=1)), ("live", now + timedelta(hours=1))):
                await conn.execute(
                    "INSERT INTO idempotency_keys (company_id, key, method, request_hash, state, create_time, "
                    "expire_time) VALUES ($1, $2, 'CreateInvoice', 'h', 'DONE', $3, $4)",
                    company, key, now - timedelta(days=1), expires,
                )  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(seed())
    out = cli(database_url, "purge")
    assert out.returncode == 0, out.stderr
    assert int(re.search(r"purged (\d+) expired request ids", out.stdout).group(1)) >= 1  # type: ignore[union-attr]
    assert "events past their retention" in out.stdout and "push operations past their retention" in out.stdout
    assert [r["key"] for r in db.fetch("SELECT key FROM idempotency_keys WHERE company_id = $1", company)] == ["live"]


# -- push operations -----------------------------------------------------------------------------


def _insert_operation(database_url: str, company: str, status: str, request: bytes | None) -> str:
    key = str(uuid.uuid4())

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "INSERT INTO push_operations (push_operation_key, company_id, data_type, operation, status, "
                "status_code, error_message, requested_on_utc, completed_on_utc, timeout_in_minutes, request, "
                "attempts) VALUES ($1, $2, 'invoices', 'CreateInvoice', $3, 500, $4, $5, $5, 60, $6, 6)",
                key, company, status, "not applied after 5 attempts" if status == "FAILED" else "",
                datetime.now(UTC) - timedelta(hours=2), request,
            )  # fmt: skip
        finally:
            await conn.close()

    asyncio.run(run())
    return key


def test_push_operations_list_show_and_requeue(server, database_url, db):
    company = f"ops-{uuid.uuid4().hex[:8]}"
    request = svc.CreateInvoiceRequest(company_id=company, invoice=invoice(customer="requeued")).SerializeToString()
    failed = _insert_operation(database_url, company, "FAILED", request)  # an asynchronous write that gave up
    timed_out = _insert_operation(database_url, company, "TIMED_OUT", request)
    refused = _insert_operation(database_url, company, "FAILED", None)  # a synchronous refusal: no request
    done = _insert_operation(database_url, company, "SUCCESS", None)

    listed = cli(database_url, "push-operations", "list", "--company", company)
    assert listed.returncode == 0, listed.stderr
    assert {line.split()[0] for line in listed.stdout.splitlines()} == {failed, timed_out, refused, done}
    only_failed = cli(database_url, "push-operations", "list", "--company", company, "--status", "FAILED").stdout
    assert {line.split()[0] for line in only_failed.splitlines()} == {failed, refused}

    shown = cli(database_url, "push-operations", "show", failed)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["status"] == "FAILED" and record["company_id"] == company and record["requeueable"] is True

    with grpc.insecure_channel(server.address) as ch:
        watcher = ps_grpc.PushOperationServiceStub(ch)
        requeued = cli(database_url, "push-operations", "requeue", failed)
        assert requeued.returncode == 0, requeued.stderr
        # A worker of the running server applies it: SUCCESS, and the invoice exists.
        deadline = time.time() + 30
        while time.time() < deadline:
            op = watcher.GetPushOperation(ps.GetPushOperationRequest(company_id=company, push_operation_key=failed))
            if op.push_operation.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS:
                break
            time.sleep(0.2)
        assert op.push_operation.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS, op
    assert db.fetch("SELECT customer_id FROM invoices WHERE company_id = $1", company)[0]["customer_id"] == "requeued"

    for key, reason in ((done, "is SUCCESS"), (refused, "no stored request"), (str(uuid.uuid4()), "not found")):
        out = cli(database_url, "push-operations", "requeue", key)
        assert out.returncode == 1 and reason in out.stderr, out.stderr
    assert db.fetch("SELECT status FROM push_operations WHERE push_operation_key = $1", done)[0]["status"] == "SUCCESS"
    assert cli(database_url, "push-operations", "requeue", timed_out).returncode == 0


# -- keys: expiry and read-only scope ------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(database_url: str) -> Iterator[ServerThread]:
    srv = ServerThread(database_url, auth_required=True).start()
    yield srv
    srv.stop()


def test_an_expiring_key_works_until_its_expiry_then_is_unauthenticated(secured, database_url):
    company = f"exp-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC) + timedelta(seconds=8)
    _, key = new_key(database_url, company, "--expires-at", at.isoformat())
    with grpc.insecure_channel(secured.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        stub.CreateInvoice(svc.CreateInvoiceRequest(invoice=invoice()), metadata=bearer(key))
        events = ps_grpc.PushOperationServiceStub(ch).WatchPushOperations(
            ps.WatchPushOperationsRequest(), metadata=bearer(key)
        )
        assert datetime.now(UTC) < at, "the machine was too slow to use the key before it expired"
        time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.5)
        request = svc.CreateInvoiceRequest(invoice=invoice())
        rpc_error(lambda: stub.CreateInvoice(request, metadata=bearer(key)), grpc.StatusCode.UNAUTHENTICATED)
        with pytest.raises(grpc.RpcError) as ended:  # a stream opened before the expiry ends at it
            for _ in events:
                pass
        assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in cli(database_url, "keys", "list", "--company", company).stdout


def test_key_expiry_options_are_checked(database_url):
    past = cli(database_url, "keys", "create", "--company", "exp-bad", "--expires-at", "2020-01-01T00:00:00Z")
    assert past.returncode == 1 and "must be in the future" in past.stderr
    bad = cli(database_url, "keys", "create", "--company", "exp-bad", "--expires-in", "soon")
    assert bad.returncode == 2 and "accepts a positive number" in bad.stderr
    both = cli(
        database_url, "keys", "create", "--company", "exp-bad", "--expires-in", "1d", "--expires-at", "2030-01-01"
    )
    assert both.returncode == 2


def _call(channel: grpc.Channel, service: Any, method: Any, metadata: Any) -> grpc.StatusCode:
    """Calls any method with an empty request; the status it ends with."""
    path = f"/{service.full_name}/{method.name}"
    empty: Any = b""
    try:
        if method.client_streaming:
            channel.stream_unary(path)(iter([empty]), metadata=metadata, timeout=10)
        elif method.server_streaming:
            for _ in channel.unary_stream(path)(empty, metadata=metadata, timeout=10):
                break
        else:
            channel.unary_unary(path)(empty, metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        code: grpc.StatusCode = err.code()
        return code
    return grpc.StatusCode.OK


def test_a_read_only_key_may_read_and_every_write_is_permission_denied(secured, database_url, db):
    company = f"ro-{uuid.uuid4().hex[:8]}"
    _, writer = new_key(database_url, company)
    _, reader = new_key(database_url, company, "--read-only", "--expires-in", "1h")
    assert "read-only" in cli(database_url, "keys", "list", "--company", company).stdout
    writes = write_paths(wire.SERVICE)
    names = {path.rsplit("/", 1)[1] for path in writes}
    assert {"CreateInvoice", "UploadAttachment", "DeleteAttachment", "SendInvoice", "RecordPayment"} <= names
    assert not names & {"GetInvoice", "ListInvoices", "DownloadAttachment", "ExportInvoice", "PreviewInvoice"}
    with grpc.insecure_channel(secured.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        created = stub.CreateInvoice(svc.CreateInvoiceRequest(invoice=invoice()), metadata=bearer(writer)).invoice
        got = stub.GetInvoice(svc.GetInvoiceRequest(invoice_id=created.id), metadata=bearer(reader))
        assert got.invoice.id == created.id
        assert next(iter(stub.ListInvoices(svc.ListInvoicesRequest(), metadata=bearer(reader)))).invoices
        before = db.snapshot(company)
        for service in (wire.SERVICE, ps.DESCRIPTOR.services_by_name["PushOperationService"]):
            for method in service.methods:
                if method.server_streaming and method.name.startswith("Watch"):
                    continue  # watchers wait for events; reads like the others
                code = _call(ch, service, method, bearer(reader))
                if f"/{service.full_name}/{method.name}" in writes:
                    assert code == grpc.StatusCode.PERMISSION_DENIED, method.name
                else:
                    assert code not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED), method.name
        assert db.snapshot(company) == before  # refused writes changed nothing
        err = rpc_error(
            lambda: stub.UpdateInvoice(svc.UpdateInvoiceRequest(invoice=created), metadata=bearer(reader)),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert "read-only" in (err.details() or "")
