"""The stored invoice document: its format is versioned, and a document of another version is never
answered; reading it renders it again from the invoice's rows."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from invoices.v1 import invoice_service_pb2 as svc

from service.handlers.documents import DocumentRefresh
from service.store.db import create_pool
from service.store.schema import DOCUMENT_VERSION
from service.transport.document import render
from tests.conftest import Database
from tests.domain.builders import partially_paid
from tests.helpers import invoice

# What render produced for DOCUMENT_VERSION. A change to the rendering (the converter, the proto) fails
# here: bump schema.DOCUMENT_VERSION with it, so stored documents of the old format are rendered again.
RENDERED = {1: "e9b52503aece8ebd"}


def test_the_rendering_is_the_one_of_the_current_document_version() -> None:
    digest = hashlib.sha256(render(partially_paid())).hexdigest()[:16]
    assert RENDERED.get(DOCUMENT_VERSION) == digest, "render changed: bump store.schema.DOCUMENT_VERSION"


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


def test_the_background_job_renders_stale_documents_again(
    stub: Any, company: str, database_url: str, db: Database
) -> None:
    ids = [
        stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice())).invoice.id for _ in range(3)
    ]
    db.fetch("UPDATE invoices SET document_version = $2 WHERE company_id = $1", company, DOCUMENT_VERSION - 1)

    async def refresh() -> int:
        pool = await create_pool(database_url, 1, 2)
        try:
            return await DocumentRefresh(pool, render, batch=2).run()
        finally:
            await pool.close()

    assert asyncio.run(refresh()) >= 3  # two batches at least; other tests' rows may be stale too
    rows = db.fetch("SELECT id, document, document_version FROM invoices WHERE company_id = $1", company)
    assert {r["id"] for r in rows} == set(ids)
    for row in rows:
        assert row["document_version"] == DOCUMENT_VERSION
        got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=row["id"]))
        assert svc.GetInvoiceResponse.FromString(row["document"]) == got
