"""API keys, tenant isolation (walking every RPC of both services) and TLS, against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from invoices.v1 import company_profile_pb2 as cpb
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc

from service.handlers.auth import create_key, revoke_key
from service.store.db import create_pool
from service.transport.policy import is_write
from tests.conftest import ServerThread
from tests.helpers import invoice, line, rpc_error

NOT_FOUND = grpc.StatusCode.NOT_FOUND


def make_key(database_url: str, company: str) -> tuple[str, str]:
    async def run() -> tuple[str, str]:
        pool = await create_pool(database_url, 1, 1)
        try:
            return await create_key(pool, company, "test")
        finally:
            await pool.close()

    return asyncio.run(run())


def revoke(database_url: str, key_id: str) -> None:
    async def run() -> None:
        pool = await create_pool(database_url, 1, 1)
        try:
            await revoke_key(pool, key_id)
        finally:
            await pool.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def secured(database_url: str) -> Iterator[ServerThread]:
    srv = ServerThread(database_url, auth_required=True).start()
    yield srv
    srv.stop()


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def test_missing_unknown_and_revoked_keys_are_unauthenticated(secured, database_url, caplog):
    company = "sec-keys"
    key_id, key = make_key(database_url, company)
    with grpc.insecure_channel(secured.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        request = svc.CreateInvoiceRequest(invoice=invoice())
        with caplog.at_level(logging.DEBUG):
            created = stub.CreateInvoice(request, metadata=bearer(key)).invoice
        assert created.company_id == company  # the key's company, filled in
        for metadata in (
            (),
            (("authorization", "Bearer nope"),),
            (("authorization", key),),
            (("authorization", "Basic x"),),
        ):
            rpc_error(partial(stub.CreateInvoice, request, metadata=metadata), grpc.StatusCode.UNAUTHENTICATED)
        revoke(database_url, key_id)
        rpc_error(lambda: stub.CreateInvoice(request, metadata=bearer(key)), grpc.StatusCode.UNAUTHENTICATED)
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())  # no key needed
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert key not in caplog.text, "a key was logged in clear"


def test_keys_are_stored_hashed(database_url, db):
    _, key = make_key(database_url, "sec-hash")
    rows = db.fetch("SELECT * FROM api_keys WHERE company_id = 'sec-hash'")
    assert rows and all(key not in str(value) for row in rows for value in row.values())


# -- isolation: every RPC, company A's key against company B's data ------------------------------


class World:
    """Company B's invoice, attachment, push operation and line; company A only has a key."""

    def __init__(self, secured: ServerThread, database_url: str) -> None:
        self.a_key = make_key(database_url, "iso-a")[1]
        self.b_key = b_key = make_key(database_url, "iso-b")[1]
        with grpc.insecure_channel(secured.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            md = bearer(b_key)
            resp = stub.CreateInvoice(svc.CreateInvoiceRequest(invoice=invoice(lines=[line("1", "10")])), metadata=md)
            self.invoice = resp.invoice
            self.line_id = resp.invoice.line_items[0].id
            self.op_key = resp.push_operation.push_operation_key
            upload = iter([svc.UploadAttachmentRequest(metadata=svc.AttachmentUpload(invoice_id=self.invoice.id, name="b.pdf")),
                           svc.UploadAttachmentRequest(chunk=b"%PDF secret")])  # fmt: skip
            self.attachment_id = stub.UploadAttachment(upload, metadata=md).attachment.id
            stub.AddCustomerCredit(
                svc.AddCustomerCreditRequest(customer_id="cust-1", currency="USD", amount="5"), metadata=md
            )
            # A finalized, partly paid invoice of B's with a draft credit note (the credit note RPCs' cases).
            paid = stub.CreateInvoice(svc.CreateInvoiceRequest(invoice=invoice(lines=[line("1", "10")])), metadata=md)
            stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(invoice_id=paid.invoice.id), metadata=md)
            alloc = pb.PaymentAllocation(allocation=pb.Allocation(total_amount="4"))
            after = stub.RecordPayment(
                svc.RecordPaymentRequest(invoice_id=paid.invoice.id, payment_allocation=alloc), metadata=md
            )
            self.allocation_id = after.invoice.payment_allocations[0].id
            note = svc.CreateCreditNoteRequest(invoice_id=paid.invoice.id, whole_invoice=True)
            self.note_id = stub.CreateCreditNote(note, metadata=md).credit_note.id


B = "iso-b"


def cases(w: World) -> dict[str, Callable[[], Any]]:
    """One request per RPC, naming company B explicitly; each must be NOT_FOUND for company A's key."""
    inv, att = w.invoice.id, w.attachment_id
    ids: dict[str, Any] = {"company_id": B, "invoice_id": inv}
    return {
        "CreateInvoice": lambda: svc.CreateInvoiceRequest(company_id=B, invoice=invoice()),
        "BatchCreateInvoices": lambda: svc.BatchCreateInvoicesRequest(company_id=B, requests=[svc.CreateInvoiceRequest(invoice=invoice())]),
        "GetInvoice": lambda: svc.GetInvoiceRequest(**ids),
        "ListInvoices": lambda: svc.ListInvoicesRequest(company_id=B),
        "GetCustomerInvoiceSummary": lambda: svc.GetCustomerInvoiceSummaryRequest(company_id=B, customer_id="cust-1"),
        "UpdateInvoice": lambda: svc.UpdateInvoiceRequest(company_id=B, invoice=w.invoice.__class__(id=inv, note="x")),
        "BatchUpdateInvoices": lambda: svc.BatchUpdateInvoicesRequest(company_id=B, requests=[svc.UpdateInvoiceRequest(invoice=w.invoice.__class__(id=inv, note="x"))]),
        "DeleteInvoice": lambda: svc.DeleteInvoiceRequest(**ids),
        "PreviewInvoice": lambda: svc.PreviewInvoiceRequest(company_id=B, invoice=invoice()),
        "GetInvoiceModel": lambda: svc.GetInvoiceModelRequest(company_id=B),
        "FinalizeInvoice": lambda: svc.FinalizeInvoiceRequest(**ids),
        "BatchFinalizeInvoices": lambda: svc.BatchFinalizeInvoicesRequest(company_id=B, requests=[svc.FinalizeInvoiceRequest(invoice_id=inv)]),
        "VoidInvoice": lambda: svc.VoidInvoiceRequest(**ids),
        "CancelInvoice": lambda: svc.CancelInvoiceRequest(**ids),
        "ReverseInvoice": lambda: svc.ReverseInvoiceRequest(**ids),
        "WriteOffInvoice": lambda: svc.WriteOffInvoiceRequest(**ids),
        "RecordPayment": lambda: svc.RecordPaymentRequest(**ids),
        "UpdatePaymentStatus": lambda: svc.UpdatePaymentStatusRequest(**ids, payment_status=pb.PAYMENT_STATUS_INITIATED),
        "AttemptPayment": lambda: svc.AttemptPaymentRequest(**ids),
        "AddCustomerCredit": lambda: svc.AddCustomerCreditRequest(company_id=B, customer_id="cust-1", currency="USD", amount="1"),
        "GetCustomerCreditBalance": lambda: svc.GetCustomerCreditBalanceRequest(company_id=B, customer_id="cust-1"),
        "RecalculateInvoice": lambda: svc.RecalculateInvoiceRequest(**ids),
        "ListInvoiceItems": lambda: svc.ListInvoiceItemsRequest(**ids),
        "CreateTaxationItems": lambda: svc.CreateTaxationItemsRequest(**ids),
        "ListTaxationItems": lambda: svc.ListTaxationItemsRequest(**ids, line_item_id=w.line_id),
        "ListInvoiceApplications": lambda: svc.ListInvoiceApplicationsRequest(**ids),
        "UploadAttachment": lambda: iter([svc.UploadAttachmentRequest(metadata=svc.AttachmentUpload(company_id=B, invoice_id=inv, name="x.pdf"))]),
        "ListAttachments": lambda: svc.ListAttachmentsRequest(**ids),
        "GetAttachment": lambda: svc.GetAttachmentRequest(**ids, attachment_id=att),
        "DeleteAttachment": lambda: svc.DeleteAttachmentRequest(**ids, attachment_id=att),
        "DownloadAttachment": lambda: svc.DownloadAttachmentRequest(**ids, attachment_id=att),
        "DownloadInvoicePdf": lambda: svc.DownloadInvoicePdfRequest(**ids),
        "SendInvoice": lambda: svc.SendInvoiceRequest(**ids, email_addresses=["a@b.example"]),
        "ImportInvoice": lambda: svc.ImportInvoiceRequest(company_id=B, vendor=svc.VENDOR_CODAT, invoice_json="{}"),
        "ExportInvoice": lambda: svc.ExportInvoiceRequest(**ids, vendor=svc.VENDOR_CODAT),
        "ValidateInvoice": lambda: svc.ValidateInvoiceRequest(**ids),
        "TriggerInvoiceCommunication": lambda: svc.TriggerInvoiceCommunicationRequest(**ids),
        "GetCompanyProfile": lambda: cpb.GetCompanyProfileRequest(company_id=B),
        "UpdateCompanyProfile": lambda: cpb.UpdateCompanyProfileRequest(company_id=B, profile=cpb.CompanyProfile(legal_name="x")),
        "CreateCreditNote": lambda: svc.CreateCreditNoteRequest(**ids, whole_invoice=True),
        "UpdateCreditNote": lambda: svc.UpdateCreditNoteRequest(company_id=B, credit_note_id=w.note_id, update_mask=field_mask_pb2.FieldMask(paths=["memo"])),
        "IssueCreditNote": lambda: svc.IssueCreditNoteRequest(company_id=B, credit_note_id=w.note_id),
        "VoidCreditNote": lambda: svc.VoidCreditNoteRequest(company_id=B, credit_note_id=w.note_id),
        "GetCreditNote": lambda: svc.GetCreditNoteRequest(company_id=B, credit_note_id=w.note_id),
        "ListCreditNotes": lambda: svc.ListCreditNotesRequest(company_id=B),
        "DownloadCreditNotePdf": lambda: svc.DownloadCreditNotePdfRequest(company_id=B, credit_note_id=w.note_id),
        "ExportCreditNote": lambda: svc.ExportCreditNoteRequest(company_id=B, credit_note_id=w.note_id, vendor=svc.VENDOR_ZUORA),
        "RecordRefund": lambda: svc.RecordRefundRequest(**ids, payment_allocation_id=w.allocation_id),
        "RefundCustomerCredit": lambda: svc.RefundCustomerCreditRequest(company_id=B, customer_id="cust-1", currency="USD", amount="1"),
        "GetPushOperation": lambda: ps.GetPushOperationRequest(company_id=B, push_operation_key=w.op_key),
        "ListPushOperations": lambda: ps.ListPushOperationsRequest(company_id=B),
        "WatchPushOperations": lambda: ps.WatchPushOperationsRequest(company_id=B),
        "WatchInvoiceEvents": lambda: ps.WatchInvoiceEventsRequest(company_id=B),
    }  # fmt: skip


def _raw(data: bytes) -> bytes:
    return data


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def _call(channel: grpc.Channel, service: Any, method: Any, request: Any, key: str) -> Any:
    """Calls any RPC by its descriptor, so the walk covers every method the services declare."""
    path = f"/{service.full_name}/{method.name}"
    factory: Any = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
    }[(method.client_streaming, method.server_streaming)]
    call = factory(path, request_serializer=_serialize, response_deserializer=_raw)
    result = call(request, metadata=bearer(key), timeout=5)
    return list(result) if method.server_streaming else result


def test_every_rpc_refuses_another_companys_data(secured, database_url):
    w = World(secured, database_url)
    table = cases(w)
    services = [
        svc.DESCRIPTOR.services_by_name["InvoiceService"],
        ps.DESCRIPTOR.services_by_name["PushOperationService"],
    ]
    methods = [(s, m) for s in services for m in s.methods]
    missing = sorted(m.name for _, m in methods if m.name not in table)
    assert not missing, f"RPCs without an isolation case: {missing}"
    with grpc.insecure_channel(secured.address) as ch:
        for service, method in methods:
            err = rpc_error(partial(_call, ch, service, method, table[method.name](), w.a_key), NOT_FOUND)
            assert "iso-b" in (err.details() or ""), method.name


def test_request_ids_live_in_the_callers_own_company_for_every_write(secured, database_url, db):
    """AIP-155 keys are resolved after the API key's company: naming another company with one of its
    request ids is NOT_FOUND (never its stored answer, never a record in its books), and the same id
    with an empty company_id is the caller's own, a separate key."""
    w = World(secured, database_url)
    a_company = f"iso-a-{uuid.uuid4().hex[:8]}"  # its own calls below create data: not the shared iso-a
    a_key = make_key(database_url, a_company)[1]
    table = cases(w)
    writes = [m for m in svc.DESCRIPTOR.services_by_name["InvoiceService"].methods if is_write(m)]
    assert len(writes) >= 20, [m.name for m in writes]
    service = svc.DESCRIPTOR.services_by_name["InvoiceService"]
    with grpc.insecure_channel(secured.address) as ch:
        for method in writes:
            request_id = f"rid-{method.name}-{uuid.uuid4().hex[:8]}"
            request = table[method.name]()
            request.company_id = ""
            request.request_id = request_id
            with contextlib.suppress(grpc.RpcError):  # B's own first call, whatever its answer
                _call(ch, service, method, request, w.b_key)
            b_ops = db.fetch("SELECT count(*) AS n FROM push_operations WHERE company_id = $1", B)[0]["n"]
            stored = db.fetch("SELECT response, status FROM idempotency_keys WHERE company_id = $1 AND key = $2",
                              B, request_id)  # fmt: skip
            assert len(stored) == 1, method.name
            for body in (request, table[method.name]()):  # the same body, and another one
                naming_b = type(body)()
                naming_b.CopyFrom(body)
                naming_b.company_id, naming_b.request_id = B, request_id
                err = rpc_error(partial(_call, ch, service, method, naming_b, a_key), NOT_FOUND)
                assert "iso-b" in (err.details() or ""), method.name
            after = db.fetch("SELECT count(*) AS n FROM push_operations WHERE company_id = $1", B)[0]["n"]
            assert after == b_ops, f"{method.name}: company A's call left a record in company B's books"
            # An empty company_id is allowed with a request id: the key's company, its own key space.
            with contextlib.suppress(grpc.RpcError):
                _call(ch, service, method, request, a_key)
            own = db.fetch("SELECT count(*) AS n FROM idempotency_keys WHERE company_id = $1 AND key = $2",
                           a_company, request_id)[0]["n"]  # fmt: skip
            assert own == 1, f"{method.name}: the request id was not taken in the caller's own company"


def test_company_a_sees_nothing_of_company_b_through_its_own_calls(secured, database_url):
    w = World(secured, database_url)
    with grpc.insecure_channel(secured.address) as ch:
        stub, ops = svc_grpc.InvoiceServiceStub(ch), ps_grpc.PushOperationServiceStub(ch)
        md = bearer(w.a_key)
        for call in (
            lambda: stub.GetInvoice(svc.GetInvoiceRequest(invoice_id=w.invoice.id), metadata=md),
            lambda: stub.GetInvoice(svc.GetInvoiceRequest(invoice_number=w.invoice.invoice_number or "x"), metadata=md),
            lambda: stub.GetAttachment(svc.GetAttachmentRequest(invoice_id=w.invoice.id, attachment_id=w.attachment_id), metadata=md),
            lambda: list(stub.DownloadAttachment(svc.DownloadAttachmentRequest(invoice_id=str(w.invoice.id), attachment_id=str(w.attachment_id)), metadata=md)),
            lambda: ops.GetPushOperation(ps.GetPushOperationRequest(push_operation_key=w.op_key), metadata=md),
            lambda: stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(invoice_id=w.invoice.id), metadata=md),
        ):  # fmt: skip
            rpc_error(call, NOT_FOUND)
        listed = [i for m in stub.ListInvoices(svc.ListInvoicesRequest(), metadata=md) for i in m.invoices]
        assert all(i.company_id == "iso-a" for i in listed) and w.invoice.id not in {i.id for i in listed}
        assert all(
            op.company_id == "iso-a"
            for op in ops.ListPushOperations(ps.ListPushOperationsRequest(), metadata=md).push_operations
        )
        summary = stub.GetCustomerInvoiceSummary(
            svc.GetCustomerInvoiceSummaryRequest(customer_id="cust-1"), metadata=md
        )
        assert list(summary.summaries) == []
        balance = stub.GetCustomerCreditBalance(svc.GetCustomerCreditBalanceRequest(customer_id="cust-1"), metadata=md)
        assert list(balance.credit_balances) == []
        stream = ops.WatchInvoiceEvents(ps.WatchInvoiceEventsRequest(), metadata=md, timeout=1.5)
        seen: list[Any] = []
        with pytest.raises(grpc.RpcError) as info:
            for msg in stream:
                seen.extend(msg.events)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and all(e.company_id == "iso-a" for e in seen)


# -- TLS ------------------------------------------------------------------------------------------


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
          ca: bool = False) -> x509.Certificate:  # fmt: skip
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer[0] if issuer else name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)  # fmt: skip
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256())


def _pem(obj: Any) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return bytes(
        obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test CA", ca_key, None, ca=True)
    out: dict[str, Any] = {"ca": ca}
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        out[name], out[f"{name}_key"] = _cert(name, key, (ca.subject, ca_key)), key
    paths = {}
    for name, obj in out.items():
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(_pem(obj))
    return paths


def _health(address: str, credentials: grpc.ChannelCredentials | None) -> int:
    channel = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    with channel:
        return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3).status)


def healthcheck(address: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The container's HEALTHCHECK command, with the server's own settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TLS_", "HEALTHCHECK_"))}
    return subprocess.run([sys.executable, "-m", "service.healthcheck"], env={**clean, "LISTEN_ADDR": address, **env},
                          capture_output=True, text=True, timeout=30)  # fmt: skip


def test_the_container_healthcheck_speaks_tls_and_mutual_tls(database_url, pki, tmp_path):
    served = {"TLS_CERT_FILE": str(pki["server"]), "TLS_KEY_FILE": str(pki["server_key"])}
    tls = ServerThread(database_url, tls_cert_file=served["TLS_CERT_FILE"], tls_key_file=served["TLS_KEY_FILE"]).start()
    try:
        ok = healthcheck(tls.address, **served, HEALTHCHECK_CA_FILE=str(pki["ca"]))
        assert ok.returncode == 0, ok.stderr
        assert healthcheck(tls.address).returncode == 1  # plaintext against TLS: unhealthy, not a hang
    finally:
        tls.stop()
    # A self-signed certificate (the usual first set-up) needs nothing but the server's own settings.
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "self.pem").write_bytes(_pem(_cert("self", key, None)))
    (tmp_path / "self-key.pem").write_bytes(_pem(key))
    own = {"TLS_CERT_FILE": str(tmp_path / "self.pem"), "TLS_KEY_FILE": str(tmp_path / "self-key.pem")}
    selfsigned = ServerThread(
        database_url, tls_cert_file=own["TLS_CERT_FILE"], tls_key_file=own["TLS_KEY_FILE"]
    ).start()
    try:
        ok = healthcheck(selfsigned.address, **own)
        assert ok.returncode == 0, ok.stderr
    finally:
        selfsigned.stop()
    mutual = {**served, "TLS_CLIENT_CA_FILE": str(pki["ca"])}
    mtls = ServerThread(database_url, tls_cert_file=served["TLS_CERT_FILE"], tls_key_file=served["TLS_KEY_FILE"],
                        tls_client_ca_file=mutual["TLS_CLIENT_CA_FILE"]).start()  # fmt: skip
    try:
        client = {"HEALTHCHECK_CERT_FILE": str(pki["client"]), "HEALTHCHECK_KEY_FILE": str(pki["client_key"])}
        ok = healthcheck(mtls.address, **mutual, HEALTHCHECK_CA_FILE=str(pki["ca"]), **client)
        assert ok.returncode == 0, ok.stderr
    finally:
        mtls.stop()


def test_tls_and_mutual_tls(database_url, pki):
    ca = pki["ca"].read_bytes()
    tls = ServerThread(database_url, tls_cert_file=str(pki["server"]), tls_key_file=str(pki["server_key"])).start()
    try:
        assert _health(tls.address, grpc.ssl_channel_credentials(ca)) == health_pb2.HealthCheckResponse.SERVING
        rpc_error(lambda: _health(tls.address, None), grpc.StatusCode.UNAVAILABLE)  # plaintext client
        rpc_error(lambda: _health(tls.address, grpc.ssl_channel_credentials()), grpc.StatusCode.UNAVAILABLE)  # wrong CA
    finally:
        tls.stop()
    mtls = ServerThread(database_url, tls_cert_file=str(pki["server"]), tls_key_file=str(pki["server_key"]),
                        tls_client_ca_file=str(pki["ca"])).start()  # fmt: skip
    try:
        with_cert = grpc.ssl_channel_credentials(ca, pki["client_key"].read_bytes(), pki["client"].read_bytes())
        assert _health(mtls.address, with_cert) == health_pb2.HealthCheckResponse.SERVING
        rpc_error(lambda: _health(mtls.address, grpc.ssl_channel_credentials(ca)), grpc.StatusCode.UNAVAILABLE)
    finally:
        mtls.stop()


def test_open_streams_end_unauthenticated_within_a_second_of_revocation_on_every_replica(secured, database_url):
    other = ServerThread(database_url, auth_required=True).start()  # a second replica on the same database
    key_id, key = make_key(database_url, "sec-revoke-streams")
    outcomes: list[tuple[str, grpc.StatusCode, float]] = []
    opened = threading.Barrier(5)

    def watch(address: str, kind: str) -> None:
        with grpc.insecure_channel(address) as ch:
            ops = ps_grpc.PushOperationServiceStub(ch)
            stream: Any = (
                ops.WatchInvoiceEvents(ps.WatchInvoiceEventsRequest(from_now=True), metadata=bearer(key), timeout=30)
                if kind == "events"
                else ops.WatchPushOperations(
                    ps.WatchPushOperationsRequest(from_now=True), metadata=bearer(key), timeout=30
                )
            )
            opened.wait()
            try:
                for _ in stream:
                    pass
                outcomes.append((kind, grpc.StatusCode.OK, time.monotonic()))
            except grpc.RpcError as err:
                outcomes.append((kind, err.code(), time.monotonic()))

    try:
        threads = [threading.Thread(target=watch, args=(srv.address, kind))
                   for srv in (secured, other) for kind in ("events", "operations")]  # fmt: skip
        for t in threads:
            t.start()
        opened.wait()
        time.sleep(1)  # every stream is open on its server
        revoke(database_url, key_id)
        revoked_at = time.monotonic()
        for t in threads:
            t.join(10)
    finally:
        other.stop()
    assert len(outcomes) == 4, outcomes
    assert {code for _, code, _ in outcomes} == {grpc.StatusCode.UNAUTHENTICATED}, outcomes
    assert max(at for _, _, at in outcomes) - revoked_at < 1.0, outcomes
