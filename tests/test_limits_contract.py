"""Issue 12, sections 4 and 5: the invoice size bound, streamed batches under the message limit, inputs
that used to end INTERNAL, one id syntax, page tokens bound to their listing, and magnitudes checked
before numbers are expanded. Real server, real PostgreSQL, real channels."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from functools import partial

import grpc
import pytest
from google.rpc import error_details_pb2
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import push_operation_service_pb2 as ps
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc

from service.config import Settings
from service.domain.errors import Violations
from service.domain.filtering import FilterError, parse_filter
from service.domain.values import check_company_id, parse_decimal
from service.handlers.invoices import MAX_INVOICE_BYTES
from tests.helpers import create, finalized, invoice, line, rich_status, rpc_error, violations

INV = grpc.StatusCode.INVALID_ARGUMENT
FULL = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def ops(channel: grpc.Channel) -> ps_grpc.PushOperationServiceStub:
    return ps_grpc.PushOperationServiceStub(channel)


def quota_subjects(err: grpc.RpcError) -> list[str]:
    out: list[str] = []
    for detail in rich_status(err).details:
        if detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
            quota = error_details_pb2.QuotaFailure()
            detail.Unpack(quota)
            out.extend(v.subject for v in quota.violations)
    return out


def long_lines(total_bytes: int, count: int = 1000) -> list[pb.LineItem]:
    """`count` lines whose descriptions add up to about `total_bytes` (each within the 10,000 limit)."""
    size = total_bytes // count
    return [line("1", "1.00", description=f"{i:05d}" + "d" * (size - 5)) for i in range(count)]


def list_all(stub, company: str, **kw) -> list[pb.Invoice]:
    return [inv for msg in stub.ListInvoices(svc.ListInvoicesRequest(company_id=company, **kw)) for inv in msg.invoices]


# -- 1. what one invoice may grow to ------------------------------------------------------------------------


def test_a_create_whose_answer_would_not_fit_is_refused_and_stores_nothing(stub, company, db):
    # 1,000 lines with long descriptions: within every per-field limit, the request itself fits (3.3 MB),
    # but the stored invoice (and so every answer carrying it) would outgrow the bound.
    inv = invoice(lines=long_lines(3_300_000))
    assert inv.ByteSize() < 4 * 1024 * 1024
    err = rpc_error(partial(create, stub, company, inv), FULL)
    assert quota_subjects(err) == ["invoice: serialized size"], quota_subjects(err)
    assert f"{MAX_INVOICE_BYTES:,}" in (err.details() or "")
    assert db.snapshot(company)["invoices"].startswith("0:")
    failed = db.fetch("SELECT status, status_code FROM push_operations WHERE company_id = $1", company)
    assert [(r["status"], r["status_code"]) for r in failed] == [("FAILED", 413)]
    # Just under the bound: stored, and every read of it (get, list of one, items) fits in a message.
    ok = create(stub, company, invoice(lines=long_lines(2_900_000)))
    got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=ok.id)).invoice
    assert len(got.line_items) == 1000
    assert [i.id for i in list_all(stub, company, page_size=1)] == [ok.id]
    items = stub.ListInvoiceItems(svc.ListInvoiceItemsRequest(company_id=company, invoice_id=ok.id, page_size=1000))
    assert len(items.line_items) == 1000


def test_payments_stop_at_the_bound_and_the_invoice_stays_readable(stub, company, db):
    inv = finalized(stub, company, invoice(lines=[*long_lines(2_950_000, 300), line("1", "100000.00")]))
    note = "n" * 10_000
    refused = None
    for i in range(40):  # each payment adds ~10 KB; the bound is hit after a few
        req = svc.RecordPaymentRequest(
            company_id=company, invoice_id=inv.id,
            payment_allocation=pb.PaymentAllocation(
                allocation=pb.Allocation(total_amount="1.00"), payment=pb.Payment(id=f"p{i}", note=note)
            ),
        )  # fmt: skip
        try:
            stub.RecordPayment(req)
        except grpc.RpcError as exc:
            refused = exc
            break
    assert refused is not None and refused.code() == FULL, refused
    assert quota_subjects(refused) == ["invoice: serialized size"]
    stored = db.fetch("SELECT count(*) AS n FROM payment_allocations WHERE invoice_id = $1", inv.id)[0]["n"]
    assert stored == i  # the refused payment left nothing
    got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
    assert len(got.payment_allocations) == i
    assert [x.id for x in list_all(stub, company)] == [inv.id]


def test_a_batch_answer_must_fit_in_one_message(stub, company, db):
    # Each invoice is well under the bound; the fifty of them together are not.
    requests = [
        svc.CreateInvoiceRequest(invoice=invoice(lines=long_lines(78_500, 19))) for _ in range(50)
    ]  # 50 x 78.5 KB = 3.9 MB request, under the 4 MB request limit
    err = rpc_error(
        lambda: stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=requests)), FULL
    )
    assert quota_subjects(err) == ["requests: serialized size"]
    assert db.snapshot(company)["invoices"].startswith("0:")


def test_communication_events_are_batched_under_the_message_limit(stub, ops, company):
    big = create(stub, company, invoice(lines=long_lines(2_000_000, 200)))
    for _ in range(3):  # three events of 2 MB each: no single message may carry them all
        stub.TriggerInvoiceCommunication(svc.TriggerInvoiceCommunicationRequest(company_id=company, invoice_id=big.id))
    stream = ops.WatchInvoiceEvents(
        ps.WatchInvoiceEventsRequest(company_id=company, types=[ps.INVOICE_EVENT_TYPE_COMMUNICATION_TRIGGERED]),
        timeout=20,
    )
    seen = 0
    for msg in stream:
        assert msg.ByteSize() < 4 * 1024 * 1024
        seen += len(msg.events)
        assert all(len(e.invoice.line_items) == 200 for e in msg.events)
        if seen == 3:
            stream.cancel()
            break
    assert seen == 3


def test_push_operation_pages_stay_under_the_message_limit(stub, ops, company):
    # Refused creates with 1,000 violations each: their stored validation makes big operations.
    bad = invoice(lines=[line("q" * 40, "u" * 40)] * 1000)
    for _ in range(20):
        rpc_error(partial(create, stub, company, bad), INV)
    seen: list[str] = []
    token, pages = "", 0
    while True:
        pages += 1
        page = ops.ListPushOperations(
            ps.ListPushOperationsRequest(company_id=company, page_size=5000, page_token=token)
        )
        assert page.ByteSize() < 4 * 1024 * 1024
        seen.extend(op.push_operation_key for op in page.push_operations)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 20
    assert pages > 1


# -- 2. inputs that ended INTERNAL ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "!" * 1000 + "amount_due > 0",
        "NOT " * 1000 + "amount_due > 0",
        "NOT (" * 10 + "amount_due > 0" + ")" * 10,
        "due_date > 0001-01-01T00:00:00+05:00",
        "due_date > 9999-12-31T23:00:00-05:00",
        "create_time = 9999-12-31",
    ],
)
def test_filters_that_overflowed_are_invalid_argument(stub, company, text):
    err = rpc_error(lambda: list_all(stub, company, filter=text), INV)
    assert "filter" in violations(err)


def test_not_nesting_is_bounded_like_brackets():
    parse_filter("NOT " * 15 + "amount_due > 0")
    with pytest.raises(FilterError, match="nesting"):
        parse_filter("!" * 17 + "amount_due > 0")


def forged(secret: bytes, body: object) -> str:
    raw = json.dumps(body).encode()
    mac = hmac.new(secret, raw, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "body",
    [[1, 2], "text", 42, None, {"b": None, "k": [], "i": 1}, [[[[[[[[[[[[[]]]]]]]]]]]]]],
)
def test_forged_page_tokens_with_the_default_secret_are_invalid_argument(stub, ops, company, body):
    secret = Settings.from_env().page_token_secret.encode()
    token = forged(secret, body)
    err = rpc_error(lambda: list_all(stub, company, page_token=token), INV)
    assert "page_token" in violations(err)
    err = rpc_error(
        lambda: ops.ListPushOperations(ps.ListPushOperationsRequest(company_id=company, page_token=token)), INV
    )
    assert "page_token" in violations(err)


def test_forged_token_keys_of_the_right_binding_are_invalid_argument(stub, company, server):
    from service.handlers.listing import ListQuery, PageTokens

    tokens = PageTokens(server.settings.page_token_secret.encode())
    binding = tokens._binding(ListQuery(company_id=company, order_by="amount_due"))
    numbers: tuple[tuple[list[object], str], ...] = (
        ([{"d": "NaN"}], str(uuid.uuid4())),
        ([{"d": "1e999999999"}], str(uuid.uuid4())),
        ([{"d": "x"}], str(uuid.uuid4())),
        ([{"d": "1"}], "not-an-id"),
        ([[1]], str(uuid.uuid4())),
    )
    for keys, ident in numbers:
        token = forged(server.settings.page_token_secret.encode(), {"b": binding, "k": keys, "i": ident})
        err = rpc_error(partial(list_all, stub, company, order_by="amount_due", page_token=token), INV)
        assert "page_token" in violations(err)
    binding = tokens._binding(ListQuery(company_id=company, order_by="due_date"))
    times: tuple[tuple[list[object], str], ...] = (
        ([{"t": "0001-01-01T00:00:00+05:00"}], str(uuid.uuid4())),
        ([{"t": "2030-01-01T00:00:00"}], str(uuid.uuid4())),
        ([{"t": 5}], str(uuid.uuid4())),
    )
    for keys, ident in times:
        token = forged(server.settings.page_token_secret.encode(), {"b": binding, "k": keys, "i": ident})
        err = rpc_error(partial(list_all, stub, company, order_by="due_date", page_token=token), INV)
        assert "page_token" in violations(err)


# -- 8. page tokens bind their listing ------------------------------------------------------------------


def test_page_tokens_do_not_cross_listings(stub, ops, company):
    for _ in range(3):
        create(stub, company)
    inv_token = next(iter(stub.ListInvoices(svc.ListInvoicesRequest(company_id=company, page_size=1)))).next_page_token
    op_token = ops.ListPushOperations(ps.ListPushOperationsRequest(company_id=company, page_size=1)).next_page_token
    assert inv_token and op_token
    err = rpc_error(
        lambda: ops.ListPushOperations(ps.ListPushOperationsRequest(company_id=company, page_token=inv_token)), INV
    )
    assert "another listing" in violations(err)["page_token"]
    err = rpc_error(lambda: list_all(stub, company, page_token=op_token), INV)
    assert "another listing" in violations(err)["page_token"]
    # Each still works where it came from.
    assert len(list_all(stub, company, page_size=1, page_token=inv_token)) == 2
    more = ops.ListPushOperations(ps.ListPushOperationsRequest(company_id=company, page_size=1, page_token=op_token))
    assert len(more.push_operations) == 1


# -- 3. magnitudes before expansion ---------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e100000000", "1e999999999999999999", "1e99999999999999999999999", "-1e-9999999"])
def test_huge_exponents_in_vendor_json_are_refused_at_once(stub, company, db, number):
    payload = (
        '{"customerRef": {"id": "c1"}, "currency": "USD", "status": "Draft", '
        '"lineItems": [{"quantity": 1, "unitAmount": NUMBER}]}'
    )
    start = time.monotonic()
    err = rpc_error(
        lambda: stub.ImportInvoice(
            svc.ImportInvoiceRequest(
                company_id=company, vendor=svc.VENDOR_CODAT, invoice_json=payload.replace("NUMBER", number)
            )
        ),
        INV,
    )
    assert time.monotonic() - start < 1.0
    assert "invoice_json" in violations(err)
    # Unmapped fields are kept verbatim: the same bound applies there.
    start = time.monotonic()
    extra = '{"customerRef": {"id": "c1"}, "currency": "USD", "status": "Draft", "custom": NUMBER}'.replace(
        "NUMBER", number
    )
    rpc_error(
        lambda: stub.ImportInvoice(
            svc.ImportInvoiceRequest(company_id=company, vendor=svc.VENDOR_CODAT, invoice_json=extra)
        ),
        INV,
    )
    assert time.monotonic() - start < 1.0
    assert db.snapshot(company)["invoices"].startswith("0:")


def test_vendor_numbers_within_bounds_still_import(stub, company):
    payload = (
        '{"customerRef": {"id": "c1"}, "currency": "USD", "status": "Draft", "custom": 1e300, '
        '"lineItems": [{"quantity": 2e0, "unitAmount": 1.5e1}]}'
    )
    resp = stub.ImportInvoice(
        svc.ImportInvoiceRequest(company_id=company, vendor=svc.VENDOR_CODAT, invoice_json=payload)
    )
    assert resp.invoice.line_items[0].unit_amount == "15"


# -- 4. anchored patterns -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1\n", "1.5\n", "-2\n", "\n1"])
def test_a_decimal_with_a_newline_is_refused(raw):
    v = Violations()
    assert parse_decimal(v, "amount", raw) is None
    assert v


def test_a_company_id_with_a_trailing_newline_is_refused():
    v = Violations()
    check_company_id(v, "company_id", "acme\n")
    assert v


def test_a_quantity_with_a_trailing_newline_is_refused_over_grpc(stub, company, db):
    err = rpc_error(partial(create, stub, company, invoice(lines=[line("1\n", "10.00")])), INV)
    assert "invoice.line_items[0].quantity" in violations(err)
    assert db.snapshot(company)["invoices"].startswith("0:")


# -- 5. numbers are numbers, ids are ids ---------------------------------------------------------------


def test_get_by_number_looks_up_numbers_only(stub, company):
    a = create(stub, company)
    b = create(stub, company, invoice(invoice_number="B-1"))
    rpc_error(lambda: stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_number=a.id)),
              grpc.StatusCode.NOT_FOUND)  # fmt: skip
    assert stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_number="B-1")).invoice.id == b.id
    # invoice_id stays a key: the id, or else a number.
    assert stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=a.id)).invoice.id == a.id
    assert stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id="B-1")).invoice.id == b.id


def test_upper_case_ids_work_in_single_and_batch_rpcs_alike(stub, ops, company):
    a, b = create(stub, company), create(stub, company)
    upper = a.id.upper()
    assert stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=upper)).invoice.id == a.id
    done = stub.BatchFinalizeInvoices(
        svc.BatchFinalizeInvoicesRequest(
            company_id=company,
            requests=[
                svc.FinalizeInvoiceRequest(invoice_id=upper),
                svc.FinalizeInvoiceRequest(invoice_id=b.id.upper()),
            ],
        )
    )
    assert sorted(i.id for i in done.invoices) == sorted([a.id, b.id])
    # The same invoice twice, spelled in two cases, is still the same invoice.
    err = rpc_error(
        lambda: stub.BatchUpdateInvoices(
            svc.BatchUpdateInvoicesRequest(
                company_id=company,
                requests=[
                    svc.UpdateInvoiceRequest(invoice=pb.Invoice(id=a.id, note="x")),
                    svc.UpdateInvoiceRequest(invoice=pb.Invoice(id=upper, note="y")),
                ],
            )
        ),
        INV,
    )
    assert "requests" in violations(err)
    assert [i.id for i in list_all(stub, company, filter=f"id = {upper}")] == [a.id]
    key = done.push_operation.push_operation_key
    got = ops.GetPushOperation(ps.GetPushOperationRequest(company_id=company, push_operation_key=key.upper()))
    assert got.push_operation.push_operation_key == key


# -- 7. case-insensitive contains folds Unicode -----------------------------------------------------------


def test_contains_folds_non_ascii_letters(stub, company):
    a = create(stub, company, invoice(note="Grüße: ÄÖÜ erhalten", metadata={"city": "ÉCOLE Ελλάδα"}))
    b = create(stub, company, invoice(customer="ÅSA-1", note="100% paid"))
    create(stub, company, invoice(note="nothing to see"))
    assert [i.id for i in list_all(stub, company, filter='note ~ "äöü"')] == [a.id]
    assert [i.id for i in list_all(stub, company, filter='note : "GRÜSSE"')] == []  # simple case mapping, no ß→ss
    assert [i.id for i in list_all(stub, company, filter='note : "GRÜSE"')] == []
    assert [i.id for i in list_all(stub, company, filter='note ~ "grüße"')] == [a.id]
    assert [i.id for i in list_all(stub, company, filter='metadata.city ~ "école ελλάδα"')] == [a.id]
    assert [i.id for i in list_all(stub, company, filter='customer_ref.id ~ "åsa"')] == [b.id]
    # LIKE's own characters are still literal.
    assert [i.id for i in list_all(stub, company, filter='note ~ "%"')] == [b.id]
    assert [i.id for i in list_all(stub, company, filter='note ~ "_"')] == []
    first = next(iter(stub.ListInvoices(svc.ListInvoicesRequest(company_id=company, filter='note ~ "ÄöÜ"',
                                                                 include_total=True))))  # fmt: skip
    assert first.total_size == 1


# -- 6. pages by a key that can change ----------------------------------------------------------------------


def _page(stub, company: str, order_by: str, token: str) -> tuple[list[str], str]:
    msg = next(
        iter(
            stub.ListInvoices(
                svc.ListInvoicesRequest(
                    company_id=company, order_by=order_by, page_size=3, max_results=3, page_token=token
                )
            )
        )
    )
    return [i.id for i in msg.invoices], msg.next_page_token


@pytest.mark.parametrize("order_by", ["due_date", "modifiedDate", "-amountDue, due_date"])
def test_paging_by_a_mutable_key_returns_each_invoice_at_most_once(stub, company, order_by):
    made = [
        create(stub, company, invoice(due_date=f"2030-01-{d:02d}T00:00:00Z", lines=[line("1", f"{100 - d}.00")]))
        for d in range(1, 11)
    ]
    full = [i.id for i in list_all(stub, company, order_by=order_by)]
    first, token = _page(stub, company, order_by, "")
    assert first == full[:3]
    # While the client pages: a returned invoice moves past the cursor, one not yet returned changes
    # without moving, one is created. (Each update also moves modifiedDate.)
    moved, touched = first[0], full[7]
    stub.UpdateInvoice(svc.UpdateInvoiceRequest(
        company_id=company, invoice=pb.Invoice(id=moved, due_date="2031-12-31T00:00:00Z", note="moved")))  # fmt: skip
    stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=pb.Invoice(id=touched, note="edited")))
    new = create(stub, company, invoice(due_date="2030-01-05T12:00:00Z"))
    seen = list(first)
    while token:
        ids, token = _page(stub, company, order_by, token)
        seen += ids
    assert len(seen) == len(set(seen)), "an invoice appeared twice"
    # Exactly the README's promise: every invoice unchanged since the first page, once and in order;
    # those changed or created meanwhile are left out of the later pages.
    assert seen == [i for i in full if i != touched]
    assert new.id not in seen
    assert [m.id for m in made if m.id not in seen] == [touched]


def test_paging_by_create_time_keeps_changed_invoices(stub, company):
    made = [create(stub, company) for _ in range(6)]
    first, token = _page(stub, company, "create_time", "")
    stub.UpdateInvoice(svc.UpdateInvoiceRequest(company_id=company, invoice=pb.Invoice(id=made[4].id, note="x")))
    seen = list(first)
    while token:
        ids, token = _page(stub, company, "create_time", token)
        seen += ids
    assert seen == [m.id for m in made]  # create_time never changes: nothing to leave out


def test_an_invoice_at_the_bound_exports_in_one_message(stub, company):
    # Non-ASCII text is written as itself in the exported JSON, not as \\uXXXX escapes that would triple it.
    text = "請求書の明細" * 155  # 930 characters, 2,790 bytes of UTF-8
    inv = create(stub, company, invoice(lines=[line("1", "1.00", description=f"{i:04d}{text}") for i in range(1000)]))
    for vendor in (svc.VENDOR_CODAT, svc.VENDOR_FLEXPRICE, svc.VENDOR_ZUORA):
        out = stub.ExportInvoice(svc.ExportInvoiceRequest(company_id=company, invoice_id=inv.id, vendor=vendor))
        assert text in out.invoice_json
