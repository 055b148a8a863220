"""The stored invoice document: its format is versioned, and a document of another version is never
answered; reading it renders it again from the invoice's rows."""

from __future__ import annotations

import asyncio
import hashlib
import time
from decimal import Decimal
from typing import Any

import grpc
import pytest
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_pb2 as ppb

from service.config import Settings
from service.domain.models import PaymentAllocation
from service.handlers.invoices import InvoiceHandlers, Stored
from service.store.db import create_pool
from service.store.schema import DOCUMENT_VERSION
from service.transport.convert import invoice_out, push_out
from service.transport.document import render, write_answer
from tests.conftest import Database, ServerThread, sibling_database
from tests.domain.builders import line, new, partially_paid
from tests.helpers import invoice

# What render produced for DOCUMENT_VERSION. A change to the rendering (the converter, the proto) fails
# here: bump schema.DOCUMENT_VERSION with it, so stored documents of the old format are rendered again.
RENDERED = {1: "e9b52503aece8ebd", 2: "029ebe6a1566f46e"}


def test_the_rendering_is_the_one_of_the_current_document_version() -> None:
    digest = hashlib.sha256(render(partially_paid())).hexdigest()[:16]
    assert RENDERED.get(DOCUMENT_VERSION) == digest, "render changed: bump store.schema.DOCUMENT_VERSION"


async def _writes(url: str, company: str) -> list[Stored]:
    pool = await create_pool(url, 1, 2)
    try:
        h = InvoiceHandlers(pool, Settings.from_env().model_copy(update={"database_url": url}), render)
        created = await h.create(company, new(id="", lines=[line(), line("2", "5")], metadata={"b": "2", "a": "1"}))
        finalized = await h.finalize(company, created.invoice.id)
        amount = Decimal("10.00")
        payment = PaymentAllocation(amount=amount, currency="USD", applied_amount=amount)
        return [created, finalized, await h.record_payment(company, created.invoice.id, payment)]
    finally:
        await pool.close()


def test_a_write_answers_the_document_it_stored_as_the_converted_answer(database_url: str, company: str) -> None:
    """CreateInvoice, FinalizeInvoice and RecordPayment answer the document their use case stored (no second
    conversion): what a client parses is the answer converted from the invoice written."""
    answers = (svc.CreateInvoiceResponse, svc.FinalizeInvoiceResponse, svc.RecordPaymentResponse)
    writes = asyncio.run(_writes(database_url, company))
    assert [w.invoice.version for w in writes] == [1, 2, 3] and writes[2].invoice.allocations
    for response, stored in zip(answers, writes, strict=True):
        operation = push_out(stored.operation)
        prepared: Any = write_answer(response, stored.document, operation)
        converted = response(invoice=invoice_out(stored.invoice), push_operation=operation)
        assert response.FromString(prepared.SerializeToString()) == converted
        assert prepared.invoice.id == stored.invoice.id and prepared.push_operation == operation


def test_only_answers_of_an_invoice_then_a_push_operation_are_prepared_from_the_document() -> None:
    with pytest.raises(TypeError, match="VoidInvoiceResponse"):
        write_answer(svc.VoidInvoiceResponse, render(partially_paid()), ppb.PushOperation(push_operation_key="k"))


def test_a_document_of_another_version_is_never_answered_and_is_rendered_again(
    stub: Any, company: str, db: Database
) -> None:
    created = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice(note="fresh"))).invoice
    stored = db.fetch("SELECT document_version FROM invoices WHERE company_id = $1", company)
    assert [r["document_version"] for r in stored] == [DOCUMENT_VERSION]
    # A document of an older format, which says something else than the row.
    stale = svc.GetInvoiceResponse(invoice=created)
    stale.invoice.note = "stale"
    db.fetch(
        "UPDATE invoices SET document = $2, document_version = $3 WHERE company_id = $1",
        company,
        stale.SerializeToString(),
        DOCUMENT_VERSION - 1,
    )

    got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=created.id)).invoice
    assert got.note == "fresh" and got == created
    listed = [i for page in stub.ListInvoices(svc.ListInvoicesRequest(company_id=company)) for i in page.invoices]
    assert listed == [created]
    row = db.fetch("SELECT document, document_version FROM invoices WHERE company_id = $1", company)[0]
    assert row["document_version"] == DOCUMENT_VERSION  # stored again, in the current format
    assert svc.GetInvoiceResponse.FromString(row["document"]).invoice == created


def test_a_starting_service_renders_stale_documents_again_in_the_background(database_url: str) -> None:
    """In a database of its own: the job renders every stale document of the database, whoever's."""
    url = sibling_database(database_url)
    db = Database(url)
    server = ServerThread(url).start()
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = svc_grpc.InvoiceServiceStub(channel)
            created = [
                stub.CreateInvoice(svc.CreateInvoiceRequest(company_id="acme", invoice=invoice())).invoice
                for _ in range(5)
            ]
    finally:
        server.stop()
    # Documents of an older format are there when the next process starts.
    db.fetch("UPDATE invoices SET document = '\\x00'::bytea, document_version = $1", DOCUMENT_VERSION - 1)
    server = ServerThread(url).start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = db.fetch("SELECT id, document, document_version FROM invoices")
            if all(r["document_version"] == DOCUMENT_VERSION for r in rows):
                break
            time.sleep(0.1)
    finally:
        server.stop()
    assert {r["id"]: svc.GetInvoiceResponse.FromString(r["document"]).invoice for r in rows} == {
        c.id: c for c in created
    }
