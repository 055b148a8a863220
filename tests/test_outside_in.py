"""Defects found by driving the running service from outside (issues 12 and 13 re-tried as a stranger would):
each test failed before its fix. Real server, real PostgreSQL, real channels."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import hmac
import io
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc
from pypdf import PdfReader

from service.config import DEFAULT_PAGE_TOKEN_SECRET
from service.domain.money import MoneyDefaults, Rounding, TaxMode
from service.handlers.invoices import MONEY_DEFAULTS_TTL
from service.store import money_settings
from service.store.db import create_pool
from tests.conftest import Database, ServerThread
from tests.helpers import create, finalized, invoice, line, rpc_error, violations
from tests.test_process import ROOT
from tests.test_security import bearer, make_key, revoke


@pytest.fixture(scope="module")
def secured(database_url: str) -> Iterator[ServerThread]:
    srv = ServerThread(database_url, auth_required=True).start()
    yield srv
    srv.stop()


def test_cancelled_streams_leave_no_error_in_the_log(secured, database_url, caplog):
    """A client that reads one message of a stream and cancels it is ordinary; the server logged
    "Task exception was never retrieved" (the caller's company reset from another task) for it."""
    _, key = make_key(database_url, f"oi-{uuid.uuid4().hex[:8]}")
    with grpc.insecure_channel(secured.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        ops = ps_grpc.PushOperationServiceStub(ch)
        for _ in range(5):
            stub.CreateInvoice(svc.CreateInvoiceRequest(invoice=invoice()), metadata=bearer(key))
        with caplog.at_level(logging.ERROR):
            for _ in range(15):
                stream: Any = stub.ListInvoices(svc.ListInvoicesRequest(page_size=1), metadata=bearer(key))
                next(iter(stream))
                stream.cancel()
                events: Any = ops.WatchInvoiceEvents(ps.WatchInvoiceEventsRequest(), metadata=bearer(key))
                next(iter(events))
                events.cancel()
            time.sleep(0.5)
            gc.collect()  # "never retrieved" is logged when the task is collected
            time.sleep(0.2)
        # the service still answers a full listing afterwards
        assert sum(len(m.invoices) for m in stub.ListInvoices(svc.ListInvoicesRequest(), metadata=bearer(key))) == 5
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors


def test_customer_summary_amounts_carry_the_currency_exponent(stub, company):
    """Every amount string the API returns has exactly the currency's decimals: the summary's sums of no
    invoice were "0" (USD) and JPY sums came out as the column gave them."""
    finalized(stub, company, invoice(customer="sum-1", lines=[line("1", "10.00")], due_date="2099-01-01"))
    finalized(stub, company, invoice(customer="sum-1", currency="KWD", lines=[line("1", "1")], due_date="2099-01-01"))
    out = stub.GetCustomerInvoiceSummary(svc.GetCustomerInvoiceSummaryRequest(company_id=company, customer_id="sum-1"))
    by = {s.currency: s for s in out.summaries}
    assert (by["USD"].total_invoiced_amount, by["USD"].total_unpaid_amount, by["USD"].total_overdue_amount) == (
        "10.00", "10.00", "0.00",
    )  # fmt: skip
    assert (by["KWD"].total_invoiced_amount, by["KWD"].total_unpaid_amount, by["KWD"].total_overdue_amount) == (
        "1.000", "1.000", "0.000",
    )  # fmt: skip


@pytest.mark.parametrize(
    "extra, field",
    [
        ('"note": "\\ud800"', "note"),  # a lone surrogate: not Unicode text
        ('"invoiceNumber": "A\\udfff"', "invoiceNumber"),
        ('"vendorOnly": "\\ud83d"', "vendorOnly"),  # kept in supplemental_data
        ('"vendorOnly\\ud800": 1', ""),  # in a key
        ('"vendorOnly": {"deeper": ["\\u0000"]}', "vendorOnly.deeper[0]"),  # NUL: PostgreSQL stores no \u0000
        ('"vendor\\u0000Key": 1', ""),
    ],
)
def test_import_refuses_text_that_is_not_storable_naming_the_field(stub, company, db: Database, extra, field):
    """ImportInvoice with a JSON escape that decodes to a lone surrogate was INTERNAL (the invoice could not
    be encoded as UTF-8), and a NUL in vendor-only fields a generic error on `request`."""
    body = (
        '{"customerRef": {"id": "c"}, "currency": "USD", "totalAmount": 1, "subTotal": 1, "totalTaxAmount": 0,'
        f' "amountDue": 1, "status": "Draft", {extra}}}'
    )
    err = rpc_error(
        lambda: stub.ImportInvoice(
            svc.ImportInvoiceRequest(company_id=company, vendor=svc.VENDOR_CODAT, invoice_json=body)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    found = violations(err)
    assert any(field in path for path in found) if field else found, found
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 0


def test_an_upload_open_when_its_key_is_revoked_ends_unauthenticated_and_stores_nothing(secured, database_url, db):
    """Revoking a key ended its list, download and watch streams, but an upload it had open went on and
    committed its attachment after the revocation."""
    company = f"oi-{uuid.uuid4().hex[:8]}"
    key_id, key = make_key(database_url, company)
    with grpc.insecure_channel(secured.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        inv = stub.CreateInvoice(svc.CreateInvoiceRequest(invoice=invoice()), metadata=bearer(key)).invoice
        messages: queue.Queue[svc.UploadAttachmentRequest | None] = queue.Queue()

        def requests() -> Iterator[svc.UploadAttachmentRequest]:
            while (item := messages.get()) is not None:
                yield item

        upload = stub.UploadAttachment.future(requests(), metadata=bearer(key), timeout=30)
        messages.put(svc.UploadAttachmentRequest(metadata=svc.AttachmentUpload(invoice_id=inv.id, name="a.txt")))
        messages.put(svc.UploadAttachmentRequest(chunk=b"before"))
        time.sleep(0.5)
        revoke(database_url, key_id)
        revoked_at = time.monotonic()
        ended = threading.Event()
        upload.add_done_callback(lambda _: ended.set())
        ended.wait(5)
        ended_after = time.monotonic() - revoked_at
        messages.put(svc.UploadAttachmentRequest(chunk=b"after"))
        messages.put(None)
        with pytest.raises(grpc.RpcError) as info:
            upload.result()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, info.value.details()
    assert ended_after < 1.0  # without waiting for the client's next message
    assert db.fetch("SELECT count(*) AS n FROM attachments WHERE invoice_id = $1", inv.id)[0]["n"] == 0


def _start_env(**overrides: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")}
    return {**keep, "LISTEN_ADDR": "127.0.0.1:0", **overrides}


def test_a_start_up_whose_database_or_address_refuses_ends_with_one_line_naming_the_variable(database_url, tmp_path):
    """Valid settings that point at a database that is not there, a port in use or a folder PostgreSQL cannot
    use ended `python -m service` with a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        blocker = tmp_path / "file"
        blocker.write_text("")
        cases = [
            ({"DATABASE_URL": "postgresql://u:pw-xyzzy@127.0.0.1:1/db"}, ["serve"], "DATABASE_URL"),
            ({"DATABASE_URL": "postgresql://u:pw-xyzzy@127.0.0.1:1/db"}, ["migrate"], "DATABASE_URL"),
            ({"DATABASE_URL": "postgresql://u:pw-xyzzy@127.0.0.1:1/db"}, ["keys", "list", "--company", "x"],
             "DATABASE_URL"),
            ({"DATABASE_URL": database_url, "LISTEN_ADDR": f"127.0.0.1:{port}"}, ["serve"], "LISTEN_ADDR"),
            ({"EMBEDDED_PG_DIR": str(blocker / "pg")}, ["migrate"], "EMBEDDED_PG_DIR"),
        ]  # fmt: skip
        for env, command, variable in cases:
            done = subprocess.run([sys.executable, "-m", "service", *command], cwd=ROOT, env=_start_env(**env),
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            assert done.returncode == 1, (command, done.stderr)
            assert "Traceback" not in done.stderr, done.stderr
            last = done.stderr.strip().splitlines()[-1]
            assert last.startswith("cannot start: ") and variable in last, last
            assert "pw-xyzzy" not in done.stderr  # the password stays out of the message


@pytest.mark.parametrize("char", ['"', "\\", "\n"])
def test_every_invoice_the_service_stores_exports_to_every_vendor(stub, company, char):
    """Vendor JSON escapes quotes, backslashes and line breaks: an invoice of 1,000 lines of such text,
    within every documented limit and under the invoice size bound, was stored, but ExportInvoice then
    failed with gRPC's own "Sent message larger than max" (and an ERROR in the log) for every vendor."""
    lines = [line("1", "1.00", description=char * n) for n in (2950, 1400)]
    exported = 0
    for template in lines:
        req = svc.CreateInvoiceRequest(company_id=company, invoice=invoice(lines=[template] * 1000))
        try:
            inv = stub.CreateInvoice(req).invoice
        except grpc.RpcError as err:  # refused up front is fine, with the invoice bound named
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
            assert "serialized" in (err.details() or "")
            continue
        for vendor in (svc.VENDOR_CODAT, svc.VENDOR_FLEXPRICE, svc.VENDOR_ZUORA):
            out = stub.ExportInvoice(svc.ExportInvoiceRequest(company_id=company, invoice_id=inv.id, vendor=vendor))
            assert json.dumps(char * 1400)[1:-1] in out.invoice_json  # the text, escaped, is all there
            exported += 1
    assert exported == 3  # the smaller one is stored and exported to all three


def test_watching_one_invoices_events_takes_its_id_in_any_case_or_its_number(stub, channel, company):
    """WatchInvoiceEvents' invoice_id matched only the lower-case id: the invoice's number (every invoiceId
    takes the id or the number) or its id in upper case silently delivered nothing."""
    inv = finalized(stub, company, invoice(invoice_number=f"W-{uuid.uuid4().hex[:6]}"))
    ops = ps_grpc.PushOperationServiceStub(channel)

    def first_events(key: str) -> list[str]:
        request = ps.WatchInvoiceEventsRequest(company_id=company, invoice_id=key)
        stream: Any = ops.WatchInvoiceEvents(request, timeout=5)
        try:
            events = list(next(iter(stream)).events)
        except grpc.RpcError as err:
            return [err.code().name]
        stream.cancel()
        return [e.invoice_id for e in events]

    for key in (inv.id, inv.id.upper(), inv.invoice_number):
        assert set(first_events(key)) == {inv.id}, key
    unknown = ps.WatchInvoiceEventsRequest(company_id=company, invoice_id="NO-1")
    err = rpc_error(
        lambda: next(iter(ops.WatchInvoiceEvents(unknown, timeout=5))),
        grpc.StatusCode.NOT_FOUND,
    )
    assert "NO-1" in (err.details() or "")


def test_a_pdf_of_text_full_of_markup_characters_renders_as_fast_as_plain_text(stub, company):
    """Each '<', '>' or '&' became a reportlab fragment of its own and line breaking grew with fragments x
    lines: one 10,000-character description of '<' took about 5 s to render (plain text 0.25 s), so an
    invoice of a few hundred such lines pinned the CPU for many minutes per DownloadInvoicePdf or send."""

    def render_seconds(description: str) -> tuple[float, str]:
        inv = create(stub, company, invoice(lines=[line("1", "1.00", description=description)] * 3))
        started = time.monotonic()
        pdf = b"".join(
            m.chunk for m in stub.DownloadInvoicePdf(
                svc.DownloadInvoicePdfRequest(company_id=company, invoice_id=inv.id), timeout=300
            )
        )  # fmt: skip
        seconds = time.monotonic() - started
        text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
        return seconds, text

    plain, _ = render_seconds("a" * 10_000)
    marked, text = render_seconds("<&>" * 3_333)
    assert text.count("<&>") >= 3 * 3_000 / 2  # the characters are there (cells wrap anywhere)
    assert marked < 4 * plain + 1.0, (marked, plain)


def _forged(data: dict[str, Any], company: str, order_by: str) -> str:
    """A token signed with the built-in development secret, which is public (the servers here use it)."""
    binding = hashlib.sha256(f"invoices\0{company}\0\0{order_by}".encode()).hexdigest()[:16]
    raw = json.dumps({"b": binding, **data}).encode()
    mac = hmac.new(DEFAULT_PAGE_TOKEN_SECRET.encode(), raw, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "order_by, keys, snapshot",
    [
        ("due_date", [{"t": "2026-01-01T00:00:00+00:00"}], "5:3:"),  # xmin > xmax
        ("due_date", [{"t": "2026-01-01T00:00:00+00:00"}], "3:5:7"),  # in progress beyond xmax
        ("due_date", [{"t": "2026-01-01T00:00:00+00:00"}], "0:0:"),
        ("due_date", [{"t": "2026-01-01T00:00:00+00:00"}], "99999999999999999999:99999999999999999999:"),
        ("invoice_number", ["\u0000"], "1:2:"),  # PostgreSQL text holds no NUL
    ],
)
def test_a_forged_page_token_is_refused_naming_page_token(stub, company, order_by, keys, snapshot):
    """Tokens signed with the public development secret but holding a snapshot PostgreSQL refuses, or a NUL
    in a text key, answered INVALID_ARGUMENT "a value cannot be used: ..." without naming any field."""
    create(stub, company)
    data = {"k": keys, "i": str(uuid.uuid4()), "s": snapshot}
    request = svc.ListInvoicesRequest(
        company_id=company, order_by=order_by, page_token=_forged(data, company, order_by)
    )
    err = rpc_error(lambda: list(stub.ListInvoices(request)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "page_token" in violations(err), err.details()


def test_a_companys_new_money_defaults_apply_to_the_first_invoice_after_five_seconds(stub, database_url, company):
    """The defaults were refreshed only when a create found them stale, and that create still used the
    stale ones: after `money-defaults` the first invoice of a quiet process was priced in the old modes
    (100 x 0.99 EUR at 21%: tax 21.00 in LINE mode instead of 20.79 per rate), however long ago they
    were set."""
    create(stub, company)
    time.sleep(MONEY_DEFAULTS_TTL + 0.5)
    create(stub, company)  # a create after the TTL: the old code refreshed here, in the background

    async def save() -> None:
        pool = await create_pool(database_url, 1, 1)
        try:
            await money_settings.save(pool, company, MoneyDefaults(Rounding.HALF_EVEN, TaxMode.DOCUMENT_PER_RATE),
                                      datetime.now(UTC))  # fmt: skip
        finally:
            await pool.close()

    asyncio.run(save())
    time.sleep(MONEY_DEFAULTS_TTL + 1.5)
    inv = create(stub, company, invoice(currency="EUR", lines=[line("1", "0.99", taxation_items=[
        pb.TaxationItem(name="VAT", tax_rate="21")])] * 100))  # fmt: skip
    assert (inv.rounding_mode, inv.tax_rounding_mode) == (
        pb.ROUNDING_MODE_HALF_EVEN,
        pb.TAX_ROUNDING_MODE_DOCUMENT_PER_RATE,
    )
    assert inv.total_tax_amount == "20.79"
