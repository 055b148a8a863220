"""SendInvoice as an outbox, against real SMTP servers (aiosmtpd): one delivery per send whatever the
mail server's pace, the result recorded even when the client gave up, and headers no client text can
extend (raw or RFC 2047-encoded line breaks, Unicode line separators, non-ASCII addresses)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import partial
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_pb2 as push_pb
from invoices.v1 import push_operation_service_pb2 as push_svc
from invoices.v1 import push_operation_service_pb2_grpc as push_grpc

from tests.conftest import Database, ServerThread, sibling_database
from tests.helpers import finalized, invoice, rpc_error, violations
from tests.test_process import free_port

INV = grpc.StatusCode.INVALID_ARGUMENT
PENDING = push_pb.PUSH_OPERATION_STATUS_PENDING


class SlowInbox:
    """A real SMTP server that takes `delay` seconds to accept each message's data (each step well under
    the client's socket timeout), keeping what it accepted."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def sent_to(self, address: str) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return [(to, m) for to, m in self.messages if address in to]

    def about(self, text: str) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return [(to, m) for to, m in self.messages if text in str(m["Subject"])]


def smtp_server(delay: float) -> tuple[SlowInbox, Controller, int]:
    handler = SlowInbox(delay)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return handler, controller, port


@pytest.fixture(scope="module")
def mail_database(database_url: str) -> str:
    """This module's own database: its servers send mail, the session's servers do not, and any server's
    workers may take an asynchronous send from the queue of the database it serves."""
    return sibling_database(database_url)


@pytest.fixture(scope="module")
def db(mail_database: str) -> Database:
    """Assertions read this module's database."""
    return Database(mail_database)


@pytest.fixture(scope="module")
def slow_mail(mail_database: str) -> Iterator[tuple[SlowInbox, ServerThread]]:
    """A mail server 3 s per message, and a service whose asynchronous-write leases last 1 s."""
    handler, controller, port = smtp_server(3.0)
    srv = ServerThread(
        mail_database, smtp_host="127.0.0.1", smtp_port=port, lease_seconds=1, workers=3, mail_send_timeout_seconds=20
    ).start()
    yield handler, srv
    srv.stop()
    controller.stop()


@pytest.fixture(scope="module")
def quick_mail(mail_database: str) -> Iterator[tuple[SlowInbox, svc_grpc.InvoiceServiceStub]]:
    handler, controller, port = smtp_server(0.0)
    srv = ServerThread(mail_database, smtp_host="127.0.0.1", smtp_port=port).start()
    with grpc.insecure_channel(srv.address) as ch:
        yield handler, svc_grpc.InvoiceServiceStub(ch)
    srv.stop()
    controller.stop()


def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_an_asynchronous_send_to_a_slow_server_is_delivered_once(slow_mail, company, db):
    handler, srv = slow_mail
    with grpc.insecure_channel(srv.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        ops = push_grpc.PushOperationServiceStub(ch)
        inv = finalized(stub, company)
        accepted = stub.SendInvoice(
            svc.SendInvoiceRequest(
                company_id=company, invoice_id=inv.id, email_addresses=["ap@customer.example"],
                subject=f"Once {inv.id}",
            ),
            metadata=(("prefer", "respond-async"),),
        )  # fmt: skip
        key = accepted.push_operation.push_operation_key
        assert accepted.push_operation.status == PENDING

        def operation() -> Any:
            request = push_svc.GetPushOperationRequest(company_id=company, push_operation_key=key)
            return ops.GetPushOperation(request).push_operation

        wait_until(lambda: operation().status != PENDING, 40, "the send to complete")
        assert operation().status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
        time.sleep(4)  # several lease lengths and one more delivery time: no second delivery comes
        delivered = handler.about(f"Once {inv.id}")
        assert len(delivered) == 1, f"{len(delivered)} mails delivered for one send"
        got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
        assert got.HasField("sent_time")
        row = db.fetch("SELECT status, message_id FROM mail_outbox WHERE push_operation_key = $1", key)[0]
        assert row["status"] == "SENT" and delivered[0][1]["Message-ID"] == row["message_id"]


def test_a_client_deadline_during_a_late_accepting_server_still_records_the_delivery(slow_mail, company, db):
    handler, srv = slow_mail
    with grpc.insecure_channel(srv.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        inv = finalized(stub, company)
        request = svc.SendInvoiceRequest(
            company_id=company, invoice_id=inv.id, email_addresses=["ap@customer.example"], subject=f"Late {inv.id}",
            request_id=f"late-{inv.id}",
        )  # fmt: skip
        rpc_error(lambda: stub.SendInvoice(request, timeout=1), grpc.StatusCode.DEADLINE_EXCEEDED)
        time.sleep(0.5)
        # The retry with the same request_id finds the send under way and answers with its result.
        again = stub.SendInvoice(request, timeout=20)
        assert again.invoice.HasField("sent_time")
        assert again.push_operation.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS

        def sent() -> bool:
            got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
            return got.HasField("sent_time")

        wait_until(sent, 20, "the delivered mail to be recorded")
        time.sleep(1)
        assert len(handler.about(f"Late {inv.id}")) == 1
        rows = db.fetch("SELECT status FROM mail_outbox WHERE invoice_id = $1", inv.id)
        assert [r["status"] for r in rows] == ["SENT"]
        op = db.fetch("SELECT status FROM push_operations WHERE company_id = $1 AND operation = 'SendInvoice'", company)
        assert [r["status"] for r in op] == ["SUCCESS"]


def test_a_send_answers_with_the_recorded_result_and_a_stable_message_id(quick_mail, company, db):
    handler, stub = quick_mail
    inv = finalized(stub, company)
    resp = stub.SendInvoice(
        svc.SendInvoiceRequest(company_id=company, invoice_id=inv.id, email_addresses=["a@b.example"])
    )
    assert resp.invoice.HasField("sent_time") and resp.push_operation.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
    assert resp.push_operation.changes[0].record_ref.id == inv.id
    ((to, message),) = handler.about(f"Invoice {inv.invoice_number}")
    row = db.fetch("SELECT message_id, status FROM mail_outbox WHERE invoice_id = $1", inv.id)[0]
    assert message["Message-ID"] == row["message_id"] and row["status"] == "SENT" and to == ["a@b.example"]


ENCODED_BREAK = "=?utf-8?q?Hello=0D=0ABcc:_evil@attacker.example=0D=0A=0D=0AInjected_body?="


def only_expected_headers(message: EmailMessage) -> None:
    assert {k.lower() for k in message} == {
        "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    }  # fmt: skip
    subject = str(message["Subject"])
    assert "\r" not in subject and "\n" not in subject and "\u2028" not in subject and "\x85" not in subject
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            lines = part.get_content().replace("\r\n", "\n").split("\n")  # RFC 5322 lines
            assert not any(line.startswith(("Injected", "Bcc")) for line in lines)


@pytest.mark.parametrize(
    "number",
    [
        "=?utf-8?q?1=0D=0ABcc:_e@x.example=0D=0A=0D=0AInjected?=",
        "=?utf-8?b?MQ0KQmNjOiBlQHguZXhhbXBsZQ0KDQpJbmplY3RlZA==?=",  # the same, base64
        "INV\u2028Bcc: e@x.example",
        "INV\x85Bcc: e@x.example",
        "=?utf-8?q?=3D=3Futf-8=3Fq=3FA=3D0D=3D0ABcc:_e@x.example=3F=3D?=",  # encoded twice
    ],
)
def test_an_invoice_number_cannot_add_headers_or_body_lines(quick_mail, company, number):
    handler, stub = quick_mail
    inv = finalized(stub, company, invoice(invoice_number=number))
    assert inv.invoice_number == number
    address = f"{company}@customer.example"
    stub.SendInvoice(svc.SendInvoiceRequest(company_id=company, invoice_id=inv.id, email_addresses=[address]))
    ((to, message),) = handler.sent_to(address)
    assert to == [address]  # no injected recipient either
    only_expected_headers(message)
    assert str(message["Subject"]).startswith("Invoice ")


def test_a_subject_with_line_breaks_is_refused_raw_or_encoded(quick_mail, company):
    handler, stub = quick_mail
    inv = finalized(stub, company)
    before = len(handler.messages)
    for subject in (
        ENCODED_BREAK,
        "Hello\r\nBcc: evil@attacker.example",
        "Hello\u2028Bcc: evil@attacker.example",
        "Hello\x85Bcc: evil@attacker.example",
        "=?utf-8?b?SGVsbG8NCkJjYzogZXZpbEBhdHRhY2tlci5leGFtcGxl?=",
    ):
        request = svc.SendInvoiceRequest(
            company_id=company, invoice_id=inv.id, email_addresses=["ap@customer.example"], subject=subject
        )
        assert "subject" in violations(rpc_error(partial(stub.SendInvoice, request), INV)), subject
    assert len(handler.messages) == before
    # Encoded words that decode to ordinary text are fine; the mail shows the decoded text.
    stub.SendInvoice(
        svc.SendInvoiceRequest(
            company_id=company, invoice_id=inv.id, email_addresses=["ap@customer.example"],
            subject="=?utf-8?q?Rechnung_f=C3=BCr_M=C3=A4rz?= " + inv.id,
        )
    )  # fmt: skip
    ((_, message),) = handler.about(inv.id)
    assert str(message["Subject"]) == f"Rechnung für März {inv.id}"
    only_expected_headers(message)


def test_a_non_ascii_address_is_invalid_argument_naming_it(quick_mail, company):
    _, stub = quick_mail
    inv = finalized(stub, company)
    request = svc.SendInvoiceRequest(
        company_id=company, invoice_id=inv.id, email_addresses=["ap@customer.example", "jörg@müller.example"]
    )
    err = rpc_error(lambda: stub.SendInvoice(request), INV)
    assert "email_addresses[1]" in violations(err)


def test_a_refused_send_is_recorded_failed_and_a_retry_is_a_new_attempt(mail_database, company, db):
    srv = ServerThread(mail_database, smtp_host="127.0.0.1", smtp_port=free_port()).start()  # nobody listens
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            inv = finalized(stub, company)
            request = svc.SendInvoiceRequest(
                company_id=company, invoice_id=inv.id, email_addresses=["a@b.example"], request_id="r-1"
            )
            for _ in range(2):
                rpc_error(lambda: stub.SendInvoice(request), grpc.StatusCode.UNAVAILABLE)
            rows = db.fetch("SELECT status, error FROM mail_outbox WHERE invoice_id = $1", inv.id)
            assert [r["status"] for r in rows] == ["FAILED", "FAILED"] and "ConnectionRefused" in rows[0]["error"]
            ops = db.fetch(
                "SELECT status, error_message FROM push_operations WHERE company_id = $1 AND operation = 'SendInvoice'",
                company,
            )
            assert [r["status"] for r in ops] == ["FAILED", "FAILED"]
            assert db.fetch("SELECT sent_time FROM invoices WHERE id = $1", inv.id)[0]["sent_time"] is None
    finally:
        srv.stop()


def test_a_send_whose_process_stopped_mid_delivery_is_failed_not_sent_again(slow_mail, company, db):
    """What a process that stopped during the SMTP conversation leaves: a SENDING row whose claim ran out
    and its PENDING operation. A worker takes the operation over and records FAILED; nothing is mailed."""
    handler, srv = slow_mail
    with grpc.insecure_channel(srv.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        ops = push_grpc.PushOperationServiceStub(ch)
        inv = finalized(stub, company)
        address = f"{company}@customer.example"
        request = svc.SendInvoiceRequest(company_id=company, invoice_id=inv.id, email_addresses=[address])
        key, entry = str(uuid.uuid4()), str(uuid.uuid4())
        db.fetch(
            "INSERT INTO push_operations (push_operation_key, company_id, data_type, operation, status, status_code, "
            "requested_on_utc, timeout_in_minutes, request, lease_owner, lease_until) VALUES "
            "($1, $2, 'invoices', 'SendInvoice', 'PENDING', 202, now() - interval '3 minutes', 60, $3, 'gone', "
            "now() - interval '1 minute')",
            key, company, request.SerializeToString(),
        )  # fmt: skip
        db.fetch(
            "INSERT INTO mail_outbox (id, company_id, invoice_id, push_operation_key, message_id, recipients, "
            "subject, body, status, claimed_until, create_time) VALUES ($1, $2, $3, $4, $5, $6, 's', 'b', "
            "'SENDING', now() - interval '1 minute', now() - interval '3 minutes')",
            entry, company, inv.id, key, f"<{entry}@test>", [address],
        )  # fmt: skip

        def operation() -> Any:
            request = push_svc.GetPushOperationRequest(company_id=company, push_operation_key=key)
            return ops.GetPushOperation(request).push_operation

        wait_until(lambda: operation().status != PENDING, 30, "a worker to settle the interrupted send")
        op = operation()
        assert op.status == push_pb.PUSH_OPERATION_STATUS_FAILED and "interrupted" in op.error_message
        assert db.fetch("SELECT status FROM mail_outbox WHERE id = $1", entry)[0]["status"] == "FAILED"
        time.sleep(4)
        assert handler.sent_to(address) == []
