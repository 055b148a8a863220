"""Attachments, PDFs and e-mail over real channels: byte-exact round trips up to 150 MB, limits that store
nothing, cancelled uploads, concurrent uploads against the count limit, PDF text, and a real SMTP server."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes, policy
from email.message import EmailMessage
from functools import partial
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_pb2 as push_pb
from pypdf import PdfReader

from tests.conftest import ServerThread
from tests.helpers import create, finalized, invoice, line, pay, rpc_error, violations
from tests.test_process import free_port

MB = 1024 * 1024
INV = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


class Inbox:
    """A real SMTP server (aiosmtpd) in this process that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.received = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        self.received.set()
        return "250 OK"


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=50 * MB)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture(scope="module")
def files_stub(database_url: str, inbox: tuple[Inbox, int]) -> Iterator[svc_grpc.InvoiceServiceStub]:
    """A server allowing 160 MB files, sending mail to the in-process SMTP server."""
    srv = ServerThread(
        database_url, attachment_max_bytes=160 * MB, smtp_host="127.0.0.1", smtp_port=inbox[1], seller_name="Acme Ltd"
    ).start()
    with grpc.insecure_channel(srv.address) as ch:
        yield svc_grpc.InvoiceServiceStub(ch)
    srv.stop()


@pytest.fixture(scope="module")
def tight_stub(database_url: str) -> Iterator[svc_grpc.InvoiceServiceStub]:
    """A server with small limits: 1 MB a file, 3 files an invoice, only .pdf and .png."""
    srv = ServerThread(
        database_url, attachment_max_bytes=MB, attachment_max_per_invoice=3, attachment_extensions=(".pdf", ".png")
    ).start()
    with grpc.insecure_channel(srv.address) as ch:
        yield svc_grpc.InvoiceServiceStub(ch)
    srv.stop()


def upload_requests(
    company: str,
    invoice_id: str,
    data: bytes,
    name: str = "file.pdf",
    chunk: int = 256 * 1024,
    content_type: str = "",
    include: bool = False,
    request_id: str = "",
) -> Iterator[svc.UploadAttachmentRequest]:
    meta = svc.AttachmentUpload(
        company_id=company,
        invoice_id=invoice_id,
        name=name,
        content_type=content_type,
        include_when_sent=include,
        request_id=request_id,
    )
    yield svc.UploadAttachmentRequest(metadata=meta)
    for start in range(0, len(data), chunk):
        yield svc.UploadAttachmentRequest(chunk=data[start : start + chunk])


def upload(stub: Any, company: str, invoice_id: str, data: bytes, **kw: Any) -> svc.UploadAttachmentResponse:
    return stub.UploadAttachment(upload_requests(company, invoice_id, data, **kw))  # type: ignore[no-any-return]


def download(stub: Any, company: str, invoice_id: str, attachment_id: str, offset: int = 0) -> bytes:
    out = bytearray()
    for msg in stub.DownloadAttachment(
        svc.DownloadAttachmentRequest(
            company_id=company, invoice_id=invoice_id, attachment_id=attachment_id, offset=offset
        )
    ):
        assert msg.offset == offset + len(out)
        out += msg.chunk
    return bytes(out)


def stored_rows(db: Any, company: str) -> tuple[int, int]:
    att = db.fetch("SELECT count(*) AS n FROM attachments WHERE company_id = $1", company)[0]["n"]
    chunks = db.fetch(
        "SELECT count(*) AS n FROM attachment_chunks c JOIN attachments a ON a.id = c.attachment_id "
        "WHERE a.company_id = $1",
        company,
    )[0]["n"]
    orphans = db.fetch(
        "SELECT count(*) AS n FROM attachment_chunks c LEFT JOIN attachments a ON a.id = c.attachment_id "
        "WHERE a.id IS NULL"
    )[0]["n"]
    assert orphans == 0
    return att, chunks


@pytest.mark.parametrize("size", [0, 1, MB - 1, MB, MB + 1, 7 * MB + 12345, 150 * MB])
def test_round_trip_is_byte_exact(files_stub, company, size):
    data = os.urandom(size) if size <= 8 * MB else (os.urandom(MB) * 150)[:size]
    inv = create(files_stub, company)
    resp = upload(files_stub, company, inv.id, data, chunk=MB if size > 8 * MB else 64 * 1024)
    att = resp.attachment
    assert att.file_size == size and att.sha256 == hashlib.sha256(data).hexdigest()
    assert att.content_type == "application/pdf" and att.name == "file.pdf"
    change = resp.push_operation.changes[0]
    assert change.type == push_pb.PUSH_CHANGE_TYPE_ATTACHMENT_UPLOADED and change.attachment_id == att.id
    back = download(files_stub, company, inv.id, att.id)
    assert len(back) == size and hashlib.sha256(back).hexdigest() == att.sha256


def test_download_resumes_from_an_offset(files_stub, company):
    data = os.urandom(3 * MB + 777)
    inv = create(files_stub, company)
    att = upload(files_stub, company, inv.id, data).attachment
    for offset in (0, 1, MB - 1, MB, 2 * MB + 5, len(data) - 1, len(data)):
        assert download(files_stub, company, inv.id, att.id, offset) == data[offset:]
    first = next(
        iter(
            files_stub.DownloadAttachment(
                svc.DownloadAttachmentRequest(company_id=company, invoice_id=inv.id, attachment_id=att.id)
            )
        )
    )
    assert first.attachment.id == att.id and first.attachment.sha256 == att.sha256
    err = rpc_error(lambda: download(files_stub, company, inv.id, att.id, len(data) + 1), INV)
    assert "offset" in violations(err)


def test_list_get_delete(files_stub, company, db):
    inv = finalized(files_stub, company)
    a = upload(files_stub, company, inv.id, b"%PDF-1.4 a", name="a.pdf").attachment
    b = upload(files_stub, company, inv.invoice_number, b"png", name="b.png", include=True).attachment
    listed = files_stub.ListAttachments(svc.ListAttachmentsRequest(company_id=company, invoice_id=inv.id)).attachments
    assert (
        [x.id for x in listed] == [a.id, b.id] and listed[1].include_when_sent and listed[1].content_type == "image/png"
    )
    got = files_stub.GetAttachment(svc.GetAttachmentRequest(company_id=company, invoice_id=inv.id, attachment_id=b.id))
    assert got.attachment == listed[1]
    op = files_stub.DeleteAttachment(
        svc.DeleteAttachmentRequest(company_id=company, invoice_id=inv.id, attachment_id=a.id)
    ).push_operation
    assert op.changes[0].type == push_pb.PUSH_CHANGE_TYPE_DELETED
    assert stored_rows(db, company) == (1, 1)
    gone = {"company_id": company, "invoice_id": inv.id, "attachment_id": a.id}
    rpc_error(partial(files_stub.GetAttachment, svc.GetAttachmentRequest(**gone)), grpc.StatusCode.NOT_FOUND)
    rpc_error(partial(files_stub.DeleteAttachment, svc.DeleteAttachmentRequest(**gone)), grpc.StatusCode.NOT_FOUND)
    rpc_error(
        lambda: files_stub.GetAttachment(
            svc.GetAttachmentRequest(company_id=company + "x", invoice_id=inv.id, attachment_id=b.id)
        ),
        grpc.StatusCode.NOT_FOUND,
    )


def test_each_limit_is_refused_and_nothing_is_stored(tight_stub, company, db):
    inv = create(tight_stub, company)
    err = rpc_error(lambda: upload(tight_stub, company, inv.id, os.urandom(MB + 1)), EXHAUSTED)
    assert "1048576 bytes" in (err.details() or "")
    err = rpc_error(lambda: upload(tight_stub, company, inv.id, b"x", name="run.exe"), INV)
    assert "metadata.name" in violations(err)
    err = rpc_error(
        lambda: upload(tight_stub, company, inv.id, b"x", name="a.txt"), INV
    )  # allowed by default, not here
    err = rpc_error(lambda: upload(tight_stub, company, inv.id, b"x", name="a.pdf", content_type="image/png"), INV)
    assert "metadata.content_type" in violations(err)
    for bad in ("../a.pdf", " a.pdf", "a\x01.pdf", ""):
        assert "metadata.name" in violations(
            rpc_error(partial(upload, tight_stub, company, inv.id, b"x", name=bad), INV)
        )
    no_meta = iter([svc.UploadAttachmentRequest(chunk=b"abc")])
    assert "metadata" in violations(rpc_error(lambda: tight_stub.UploadAttachment(no_meta), INV))
    again = svc.AttachmentUpload(company_id=company, invoice_id=inv.id, name="b.pdf")
    twice = [*upload_requests(company, inv.id, b"abc"), svc.UploadAttachmentRequest(metadata=again)]
    rpc_error(lambda: tight_stub.UploadAttachment(iter(twice)), INV)
    rpc_error(lambda: upload(tight_stub, company, "no-such-invoice", b"x"), grpc.StatusCode.NOT_FOUND)
    for i in range(3):
        upload(tight_stub, company, inv.id, b"ok", name=f"{i}.pdf")
    err = rpc_error(lambda: upload(tight_stub, company, inv.id, b"ok", name="4.pdf"), EXHAUSTED)
    assert "more than 3 attachments" in (err.details() or "")
    assert stored_rows(db, company) == (3, 3)
    void = finalized(tight_stub, company)
    tight_stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=void.id))
    rpc_error(lambda: upload(tight_stub, company, void.id, b"x"), grpc.StatusCode.FAILED_PRECONDITION)
    assert stored_rows(db, company) == (3, 3)
    failed = db.fetch(
        "SELECT count(*) AS n FROM push_operations WHERE company_id = $1 AND status = 'FAILED' "
        "AND operation = 'UploadAttachment'",
        company,
    )[0]["n"]
    assert failed >= 8


def test_a_cancelled_upload_leaves_nothing(files_stub, company, db):
    inv = create(files_stub, company)
    sent = threading.Event()

    def slow() -> Iterator[svc.UploadAttachmentRequest]:
        for i, request in enumerate(upload_requests(company, inv.id, os.urandom(20 * MB), chunk=MB)):
            if i == 5:
                sent.set()
                time.sleep(0.5)
            yield request

    future = files_stub.UploadAttachment.future(slow())
    assert sent.wait(10)
    time.sleep(0.2)
    future.cancel()
    with pytest.raises(grpc.FutureCancelledError):
        future.result()
    deadline = time.time() + 10
    while stored_rows(db, company) != (0, 0):  # the staged pieces are removed as the call ends
        assert time.time() < deadline, "the cancelled upload's staged pieces were not removed"
        time.sleep(0.1)
    assert not db.fetch("SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'idle in transaction'")[0]["n"]


def test_concurrent_uploads_respect_the_count_limit(tight_stub, company, db):
    inv = create(tight_stub, company)

    def attempt(i: int) -> grpc.StatusCode:
        try:
            upload(tight_stub, company, inv.id, os.urandom(200_000), name=f"{i}.png", chunk=50_000)
            return grpc.StatusCode.OK
        except grpc.RpcError as err:
            return err.code()

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(attempt, range(8)))
    assert codes.count(grpc.StatusCode.OK) == 3 and codes.count(EXHAUSTED) == 5
    assert stored_rows(db, company) == (3, 3)


def pdf_text(stub: Any, company: str, invoice_id: str) -> tuple[str, str]:
    name, data = "", bytearray()
    for msg in stub.DownloadInvoicePdf(svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=invoice_id)):
        if msg.file_name:
            name, size = msg.file_name, msg.size
            assert msg.content_type == "application/pdf"
        data += msg.chunk
    assert len(data) == size and data.startswith(b"%PDF")
    return name, "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(bytes(data))).pages)


def test_pdf_holds_number_customer_lines_taxes_totals_and_marks(files_stub, company):
    inv = finalized(
        files_stub,
        company,
        invoice(
            lines=[
                line(
                    "2",
                    "15.00",
                    description="Widget deluxe",
                    taxation_items=[pb.TaxationItem(name="VAT", tax_rate="20")],
                ),
                line("1", "70.00", description="Installation service", discount_amount="5"),
            ]
        ),
    )
    pay(files_stub, company, inv.id, "10.00")
    name, text = pdf_text(files_stub, company, inv.id)
    assert name == f"invoice-{inv.invoice_number}.pdf"
    for expected in (
        inv.invoice_number,
        "Test Customer",
        "cust-1",
        "Widget deluxe",
        "Installation service",
        "VAT",
        "Acme Ltd",
        "101.00 USD",
        "91.00 USD",
        "10.00 USD",
        "6.00",
        "Amount due",
    ):
        assert expected in text, expected
    assert "DRAFT" not in text
    draft = create(files_stub, company, invoice(customer="Zoë Müller GmbH"))
    name, text = pdf_text(files_stub, company, draft.id)
    assert name == f"invoice-draft-{draft.id}.pdf" and "DRAFT" in text and "Zoë Müller GmbH" in text
    files_stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id))
    assert "VOID" in pdf_text(files_stub, company, inv.id)[1]
    rpc_error(lambda: pdf_text(files_stub, company, "nope"), grpc.StatusCode.NOT_FOUND)


def test_send_invoice_emails_pdf_and_included_attachments(files_stub, company, inbox, db):
    handler, _ = inbox
    inv = finalized(files_stub, company)
    upload(files_stub, company, inv.id, b"%PDF-1.4 terms", name="terms.pdf", include=True)
    upload(files_stub, company, inv.id, b"internal", name="internal.txt")
    handler.messages.clear()
    resp = files_stub.SendInvoice(
        svc.SendInvoiceRequest(
            company_id=company, invoice_id=inv.id, email_addresses=["ap@customer.example", "cfo@customer.example"]
        )
    )
    assert resp.invoice.HasField("sent_time") and resp.push_operation.status == push_pb.PUSH_OPERATION_STATUS_SUCCESS
    _, recipients, message = handler.messages[-1]
    assert (
        recipients == ["ap@customer.example", "cfo@customer.example"]
        and message["Subject"] == f"Invoice {inv.invoice_number}"
    )
    parts = {p.get_filename(): p for p in message.iter_attachments()}
    assert set(parts) == {f"invoice-{inv.invoice_number}.pdf", "terms.pdf"}
    assert parts[f"invoice-{inv.invoice_number}.pdf"].get_content_type() == "application/pdf"
    assert parts["terms.pdf"].get_payload(decode=True) == b"%PDF-1.4 terms"
    assert inv.invoice_number in message.get_body(("plain",)).get_content()
    stored = db.fetch("SELECT sent_time FROM invoices WHERE id = $1", inv.id)[0]["sent_time"]
    assert stored is not None
    draft = create(files_stub, company)
    rpc_error(
        lambda: files_stub.SendInvoice(
            svc.SendInvoiceRequest(company_id=company, invoice_id=draft.id, email_addresses=["a@b.example"])
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    for bad in ([], ["not-an-address"], ["a@b.example"] * 21, ["x <a@b.example>"]):
        rpc_error(
            partial(
                files_stub.SendInvoice,
                svc.SendInvoiceRequest(company_id=company, invoice_id=inv.id, email_addresses=bad),
            ),
            INV,
        )


def test_send_invoice_without_smtp_is_a_precondition(stub, company):
    inv = finalized(stub, company)
    err = rpc_error(
        lambda: stub.SendInvoice(
            svc.SendInvoiceRequest(company_id=company, invoice_id=inv.id, email_addresses=["a@b.example"])
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "SMTP_HOST" in (err.details() or "")


def test_mail_server_down_is_unavailable_and_nothing_recorded(database_url, company, db):
    srv = ServerThread(database_url, smtp_host="127.0.0.1", smtp_port=1).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            inv = finalized(stub, company)
            rpc_error(
                lambda: stub.SendInvoice(
                    svc.SendInvoiceRequest(company_id=company, invoice_id=inv.id, email_addresses=["a@b.example"])
                ),
                grpc.StatusCode.UNAVAILABLE,
            )
            assert db.fetch("SELECT sent_time FROM invoices WHERE id = $1", inv.id)[0]["sent_time"] is None
    finally:
        srv.stop()


def test_upload_with_a_request_id_is_applied_once(files_stub, company, db):
    inv = create(files_stub, company)
    first = files_stub.UploadAttachment(upload_requests(company, inv.id, b"%PDF-1.4 once", request_id="up-1"))
    again = files_stub.UploadAttachment(upload_requests(company, inv.id, b"%PDF-1.4 once", request_id="up-1"))
    assert again == first
    assert stored_rows(db, company) == (1, 1)
    err = rpc_error(
        lambda: files_stub.UploadAttachment(
            upload_requests(company, inv.id, b"x", name="other.pdf", request_id="up-1")
        ),
        INV,
    )
    assert "request_id" in violations(err)


def test_pdf_renders_the_longest_texts_the_limits_allow(files_stub, company):
    """Descriptions and notes of 10,000 characters (words, or one unbroken run), 255-character names: every
    invoice within the documented limits renders; a description taller than a page splits across pages."""
    words = ("consulting hours for the migration project " * 300)[:10_000]
    solid = "Z" * 10_000
    lines = [
        line("1", "10.00", description=words, taxation_items=[pb.TaxationItem(name="T" * 255, tax_rate="20")]),
        line("2", "5.00", description=solid),
        line("3", "1.00", description="line\n" * 2000),
    ]
    inv = finalized(
        files_stub,
        company,
        invoice(customer="c" * 255, lines=lines, note=("note " * 2000)[:10_000]),
    )
    pay(files_stub, company, inv.id, "1.00")
    name, text = pdf_text(files_stub, company, inv.id)
    assert name == f"invoice-{inv.invoice_number}.pdf"
    assert "consulting hours" in text and "ZZZZZZZZZZ" in text and "Amount due" in text
