"""ListInvoices over a real channel: differential against a plain Python evaluation, keyset pages under
concurrent writes, abuse, tokens, index use at 100k rows, stalled readers, and the customer summary."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import asyncpg
import grpc
import pytest
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc

from service.domain.filtering import Comparison, parse_filter, parse_order_by
from service.store import listing
from tests.conftest import ServerThread
from tests.helpers import invoice, line, rpc_error, violations

INV = grpc.StatusCode.INVALID_ARGUMENT
STATUS_NAMES = {v: k.removeprefix("INVOICE_STATUS_") for k, v in pb.InvoiceStatus.items()}


def list_all(stub: Any, company: str, **kw: Any) -> list[pb.Invoice]:
    out: list[pb.Invoice] = []
    for msg in stub.ListInvoices(svc.ListInvoicesRequest(company_id=company, **kw)):
        out.extend(msg.invoices)
    return out


# -- a random data set and a plain Python evaluator ---------------------------------------------


@dataclass
class Row:
    """The filterable values of one invoice, as the client sees them."""

    id: str
    values: dict[str, Any]


def _ts(msg: Any, field: str) -> datetime | None:
    return getattr(msg, field).ToDatetime(tzinfo=UTC) if msg.HasField(field) else None


def _day(text: str) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def row_of(inv: pb.Invoice) -> Row:
    return Row(
        inv.id,
        {
            "invoice_number": inv.invoice_number or None,
            "customer_ref.id": inv.customer_ref.id,
            "currency": inv.currency,
            "note": inv.note,
            "status": STATUS_NAMES[inv.status],
            "total_amount": Decimal(inv.total_amount),
            "amount_due": Decimal(inv.amount_due),
            "due_date": _day(inv.due_date),
            "issue_date": _day(inv.issue_date),
            "create_time": _ts(inv, "create_time"),
            "modified_date": _ts(inv, "modified_date"),
        },
    )


CAMEL = {
    "invoice_number": "invoiceNumber",
    "customer_ref.id": "customerRef.id",
    "total_amount": "totalAmount",
    "amount_due": "amountDue",
    "due_date": "dueDate",
    "issue_date": "issueDate",
    "create_time": "createTime",
    "modified_date": "modifiedDate",
}


@dataclass
class Cmp:
    field: str
    op: str
    value: Any  # typed as in Row, or a date (whole day) for timestamps
    text: str  # the value as written


@dataclass
class Bool:
    kind: str  # and / or / not
    items: list[Any]


def evaluate(node: Any, row: Row) -> bool:
    if isinstance(node, Bool):
        if node.kind == "not":
            return not evaluate(node.items[0], row)
        results = [evaluate(i, row) for i in node.items]
        return all(results) if node.kind == "and" else any(results)
    col = row.values[node.field]
    value = node.value
    if node.op == "~":
        return col is not None and bool(value.lower() in col.lower())
    if value is None:
        return bool((col is None) == (node.op == "="))
    if isinstance(value, tuple):  # a whole UTC day [start, end)
        start, end = value
        if node.op == "!=":
            return col is None or not bool(start <= col < end)
        if col is None:
            return False
        day = {"=": start <= col < end, "<": col < start, "<=": col < end, ">": col >= end, ">=": col >= start}
        return bool(day[node.op])
    if node.op == "!=":
        return bool(col != value)
    if col is None:
        return False
    plain = {"=": col == value, "<": col < value, "<=": col <= value, ">": col > value, ">=": col >= value}
    return bool(plain[node.op])


def render(node: Any, rng: random.Random, top: bool = True) -> str:
    """Writes a tree in a random mix of spellings; nested groups are bracketed."""
    if isinstance(node, Cmp):
        name = CAMEL.get(node.field, node.field) if rng.random() < 0.5 else node.field
        op = node.op if node.op != "~" else rng.choice(["~", ":"])
        return f"{name} {op} {node.text}"
    if node.kind == "not":
        return rng.choice(["NOT ", "!"]) + render(node.items[0], rng, False)
    word = {"and": ["AND", "&&"], "or": ["OR", "||"]}[node.kind]
    body = f" {rng.choice(word)} ".join(render(i, rng, False) for i in node.items)
    if top:
        return body
    left, right = rng.choice([("(", ")"), ("{", "}")])
    return f"{left}{body}{right}"


def random_comparison(rng: random.Random, rows: list[Row]) -> Cmp:
    sample = rng.choice(rows).values
    field = rng.choice(
        [
            "invoice_number",
            "customer_ref.id",
            "currency",
            "note",
            "status",
            "total_amount",
            "amount_due",
            "due_date",
            "issue_date",
            "create_time",
        ]
    )
    value = sample[field]
    if field == "status":
        op = rng.choice(["=", "!="])
        return Cmp(field, op, value, rng.choice([value, value.lower(), value.title().replace("_", "")]))
    if field in ("note", "customer_ref.id") and value and rng.random() < 0.5:
        part = value[rng.randrange(len(value)) :][:3]
        return Cmp(field, "~", part, f'"{part}"')
    op = rng.choice(["=", "!=", "<", "<=", ">", ">="])
    if value is None:
        if field in ("invoice_number", "due_date", "issue_date"):
            return Cmp(field, rng.choice(["=", "!="]), None, "null")
        value = Decimal(0) if field.startswith(("total", "amount")) else "x"
    if isinstance(value, Decimal):
        value += rng.choice([Decimal(0), Decimal("0.01"), Decimal(-1)])
        return Cmp(field, op, value, str(value))
    if isinstance(value, datetime):
        if field == "create_time" or rng.random() < 0.5:
            return Cmp(field, op, value, value.isoformat())
        start = datetime(value.year, value.month, value.day, tzinfo=UTC)
        return Cmp(field, op, (start, start + timedelta(days=1)), start.date().isoformat())
    return Cmp(field, op, value, f'"{value}"')


def random_tree(rng: random.Random, rows: list[Row], depth: int = 0) -> Any:
    if depth >= 2 or rng.random() < 0.4:
        return random_comparison(rng, rows)
    if rng.random() < 0.15:
        return Bool("not", [random_tree(rng, rows, depth + 1)])
    return Bool(rng.choice(["and", "or"]), [random_tree(rng, rows, depth + 1) for _ in range(rng.randint(2, 3))])


def _value_of(field: str, row: Row) -> Any:
    return row.values[field]


def sort_rows(rows: list[Row], order: list[tuple[str, bool]]) -> list[Row]:
    """ASC puts NULLs last, DESC puts them first; ties broken by id in the last key's direction."""
    out = sorted(rows, key=lambda r: r.id, reverse=order[-1][1])
    for field, desc in reversed(order):
        present = [r for r in out if r.values[field] is not None]
        missing = [r for r in out if r.values[field] is None]
        present.sort(key=partial(_value_of, field), reverse=desc)
        out = missing + present if desc else present + missing
    return out


@pytest.fixture(scope="module")
def dataset(stub: Any) -> tuple[str, list[Row]]:
    rng = random.Random(20261121)
    company = f"list-{rng.randrange(10**9)}"
    notes = ["rent May", "Rent june", "consulting fee", "", "hosting", "50% off", "under_score", "quote's"]
    created: list[pb.Invoice] = []
    for _ in range(4):
        reqs = []
        for _ in range(50):
            day = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(60), hours=rng.randrange(24))
            reqs.append(
                svc.CreateInvoiceRequest(
                    invoice=invoice(
                        customer=rng.choice(["c-1", "c-2", "acme", "Beta"]),
                        currency=rng.choice(["USD", "EUR", "GBP"]),
                        note=rng.choice(notes),
                        due_date=day.isoformat() if rng.random() < 0.8 else "",
                        issue_date=(day - timedelta(days=30)).isoformat() if rng.random() < 0.7 else "",
                        lines=[line(str(rng.randint(1, 3)), f"{rng.randint(0, 500)}.{rng.randint(0, 99):02d}")],
                    )
                )
            )
        created += stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs)).invoices
    for inv in created:
        roll = rng.random()
        if roll < 0.6:
            inv = stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=inv.id)).invoice
            if roll < 0.3 and Decimal(inv.amount_due) > 1:
                stub.RecordPayment(
                    svc.RecordPaymentRequest(
                        company_id=company,
                        invoice_id=inv.id,
                        payment_allocation=pb.PaymentAllocation(allocation=pb.Allocation(total_amount="1.00")),
                    )
                )
            if roll < 0.1:
                stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id))
    rows = [row_of(i) for i in list_all(stub, company, page_size=5000)]
    assert len(rows) == 200
    return company, rows


def test_differential_filters_match_python_evaluation(stub, dataset):
    company, rows = dataset
    rng = random.Random(7)
    orders = [
        [("create_time", True)],
        [("due_date", False)],
        [("total_amount", True), ("invoice_number", False)],
        [("status", False), ("due_date", True)],
        [("note", False)],
        [("issue_date", True), ("amount_due", False)],
    ]
    nonempty = 0
    for i in range(120):
        tree = random_tree(rng, rows)
        text = render(tree, rng)
        order = orders[i % len(orders)]
        order_text = ", ".join(
            f"-{CAMEL.get(f, f)}" if d and rng.random() < 0.5 else f"{f} {'desc' if d else 'asc'}" for f, d in order
        )
        expected = [r.id for r in sort_rows([r for r in rows if evaluate(tree, r)], order)]
        try:
            got = [inv.id for inv in list_all(stub, company, filter=text, order_by=order_text, page_size=17)]
        except grpc.RpcError as err:
            raise AssertionError(f"filter {text!r} order {order_text!r}: {err.code()} {err.details()}") from err
        assert got == expected, f"filter {text!r} order {order_text!r}"
        nonempty += bool(expected)
    assert nonempty > 40  # the corpus is not trivially empty


def test_pages_concatenate_to_the_full_result_while_others_write(stub, server):
    company = f"pages-{time.time_ns()}"
    reqs = [svc.CreateInvoiceRequest(invoice=invoice(note=f"n{i}")) for i in range(50)]
    for _ in range(3):
        stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs))
    rows = [row_of(i) for i in list_all(stub, company, page_size=5000)]
    full = [inv.id for inv in list_all(stub, company, order_by="create_time desc", page_size=5000)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        with grpc.insecure_channel(server.address) as ch:
            other = svc_grpc.InvoiceServiceStub(ch)
            i = 0
            while not stop.is_set():
                try:
                    other.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=invoice(note=f"new {i}")))
                    target = rows[i % len(rows)].id
                    other.UpdateInvoice(
                        svc.UpdateInvoiceRequest(company_id=company, invoice=pb.Invoice(id=target, note=f"edit {i}"))
                    )
                except grpc.RpcError as err:  # editing a void invoice's note is allowed; nothing should fail
                    errors.append(err)
                i += 1

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        seen: list[str] = []
        token = ""
        while True:
            msg = next(
                iter(
                    stub.ListInvoices(
                        svc.ListInvoicesRequest(
                            company_id=company,
                            order_by="create_time desc",
                            page_size=9,
                            max_results=9,
                            page_token=token,
                        )
                    )
                )
            )
            seen += [inv.id for inv in msg.invoices]
            token = msg.next_page_token
            if not token:
                break
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert len(seen) == len(set(seen)), "duplicates across pages"
    assert [i for i in seen if i in set(full)] == full, "pre-existing invoices missing or out of order"
    # Newer invoices sort first (create_time desc): only those created before page 1 was read can appear,
    # all of them ahead of every pre-existing one.
    extra = [i for i in seen if i not in set(full)]
    assert seen[: len(extra)] == extra


def test_stream_batches_totals_limits_and_tokens(stub, dataset):
    company, rows = dataset
    msgs = list(
        stub.ListInvoices(
            svc.ListInvoicesRequest(company_id=company, page_size=64, include_total=True, filter="status != draft")
        )
    )
    matching = sum(1 for r in rows if r.values["status"] != "DRAFT")
    assert [len(m.invoices) for m in msgs][:-1] == [64] * (len(msgs) - 1)
    assert sum(len(m.invoices) for m in msgs) == matching and msgs[0].total_size == matching
    assert all(m.next_page_token for m in msgs[:-1]) and not msgs[-1].next_page_token
    default = next(iter(stub.ListInvoices(svc.ListInvoicesRequest(company_id=company))))
    assert len(default.invoices) == 100  # default batch size
    limited = list_all(stub, company, page_size=30, max_results=45)
    assert len(limited) == 45
    first = next(
        iter(
            stub.ListInvoices(
                svc.ListInvoicesRequest(company_id=company, page_size=5, max_results=5, filter="amount_due > 0")
            )
        )
    )
    err = rpc_error(lambda: list_all(stub, company, filter="amount_due > 1", page_token=first.next_page_token), INV)
    assert "another company, filter or order_by" in violations(err)["page_token"]
    rpc_error(
        lambda: list_all(stub, company, filter="amount_due > 0", order_by="-dueDate", page_token=first.next_page_token),
        INV,
    )
    rpc_error(
        lambda: list_all(
            company + "x" and stub, company + "x", filter="amount_due > 0", page_token=first.next_page_token
        ),
        INV,
    )
    tampered = first.next_page_token[:-3] + ("AAA" if not first.next_page_token.endswith("AAA") else "BBB")
    assert "page_token" in violations(
        rpc_error(lambda: list_all(stub, company, filter="amount_due > 0", page_token=tampered), INV)
    )
    for size in (-1, 5001):
        assert "page_size" in violations(rpc_error(partial(list_all, stub, company, page_size=size), INV))
    assert list_all(stub, "nobody-here") == []


@pytest.mark.parametrize(
    "text",
    [
        "note = '; DROP TABLE invoices; --'",
        'note ~ "%"',
        "note ~ _",
        'note = "\\" OR 1=1 --"',
        "customer_ref.id = \"x' OR '1'='1\"",
    ],
)
def test_quotes_and_sql_text_in_values_are_just_values(stub, dataset, db, text):
    company, rows = dataset
    before = db.snapshot(company)
    got = list_all(stub, company, filter=text)
    expected = [r for r in rows if evaluate(_literal(text), r)]
    assert len(got) == len(expected)
    assert db.snapshot(company) == before


def _literal(text: str) -> Any:
    node = parse_filter(text)
    assert isinstance(node, Comparison)
    return Cmp(node.field.name, node.op, node.value, "")


@pytest.mark.parametrize(
    "text",
    [
        "note = x; DROP TABLE invoices",
        "amount_due > 0 -- comment",
        "amount_due > 0 /* c */",
        "1=1",
        "amount_due > 0; SELECT 1",
        "password = x",
        "invoices.amount_due > 0",
        "amount_due > 0 OR",
        "'x' = note",
        "note ~ " + "a" * 10_240,
        "(" * 5000,
    ],
)
def test_abusive_filters_are_invalid_argument_and_change_nothing(stub, dataset, db, text):
    company, _ = dataset
    before = db.snapshot(company)
    err = rpc_error(lambda: list_all(stub, company, filter=text), INV)
    assert "filter" in violations(err) and "position" in violations(err)["filter"]
    assert db.snapshot(company) == before


def test_order_by_errors_are_invalid_argument(stub, dataset):
    company, _ = dataset
    for text in ("bogus", "due_date sideways; DROP", "note, note"):
        assert "order_by" in violations(rpc_error(partial(list_all, stub, company, order_by=text), INV))


# -- index use ------------------------------------------------------------------------------------

COMMON_FILTERS = {
    "status": "status = submitted",
    "customer": "customer_ref.id = cust-42",
    "due date": "due_date > 2025-06-01",
    "amount due": "amount_due > 900",
    "modified date": "modified_date > 2025-06-01",
    "number": "invoice_number = INV-050000",
}


@pytest.fixture(scope="module")
def big_company(database_url: str) -> str:
    """100k invoices inserted by SQL (no documents needed for EXPLAIN), then ANALYZE."""
    company = "explain-100k"

    async def load() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                """
                INSERT INTO invoices (id, company_id, invoice_number, customer_id, status, currency, due_date,
                    sub_total, additional_tax_amount, total_tax_amount, total_discount, total_amount, amount_due,
                    amount_paid, amount_credited, version, create_time, modified_date)
                SELECT gen_random_uuid(), $1, 'INV-' || lpad(g::text, 6, '0'), 'cust-' || (g % 1000),
                       (ARRAY['SUBMITTED','PAID','PARTIALLY_PAID'])[1 + g % 3], 'USD',
                       timestamptz '2025-01-01' + (g % 365) * interval '1 day', 1000, 0, 0, 0, 1000,
                       CASE g % 3 WHEN 0 THEN 1000 WHEN 1 THEN 0 ELSE 400 END,
                       CASE g % 3 WHEN 0 THEN 0 WHEN 1 THEN 1000 ELSE 600 END, 0, 1,
                       timestamptz '2025-01-01' + g * interval '1 minute',
                       timestamptz '2025-01-01' + g * interval '1 minute'
                FROM generate_series(1, 100000) g
                """,
                company,
            )
            await conn.execute("ANALYZE invoices")
        finally:
            await conn.close()

    asyncio.run(load())
    return company


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.parametrize("name", list(COMMON_FILTERS))
def test_common_filters_use_an_index_at_100k(db, big_company, name):
    node = parse_filter(COMMON_FILTERS[name])
    for order_text in ("", "-dueDate", "amount_due"):
        sql, params = listing.page_query(big_company, node, parse_order_by(order_text), None, 101)
        plan = db.fetch("EXPLAIN (FORMAT JSON) " + sql, *params)[0][0]
        nodes = list(_plan_nodes((plan if isinstance(plan, list) else __import__("json").loads(plan))[0]["Plan"]))
        scans = {n["Node Type"] for n in nodes}
        assert "Seq Scan" not in scans, (name, order_text, scans)
        assert any("Index" in s for s in scans), (name, order_text, scans)


# -- streams and connections ----------------------------------------------------------------------


def test_stalled_and_cancelled_readers_hold_no_connection(database_url, dataset):
    company, _ = dataset
    srv = ServerThread(database_url, pool_max=2).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            streams = [stub.ListInvoices(svc.ListInvoicesRequest(company_id=company, page_size=5)) for _ in range(6)]
            for s in streams:
                next(s)  # read one batch, then stop reading
            started = time.monotonic()
            got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_number="INV-000001"), timeout=5)
            assert got.invoice.invoice_number == "INV-000001" and time.monotonic() - started < 2
            for s in streams:
                s.cancel()
            again = list_all(stub, company, page_size=1000)
            assert len(again) >= 200
    finally:
        srv.stop()


# -- customer summary -----------------------------------------------------------------------------


def test_customer_invoice_summary_per_currency(stub, company):
    past, future = "2020-01-01", "2999-01-01"

    def make(currency: str, amount: str, due: str, then: Callable[[pb.Invoice], None] | None = None) -> None:
        inv = stub.CreateInvoice(
            svc.CreateInvoiceRequest(
                company_id=company,
                invoice=invoice(customer="sum-1", currency=currency, due_date=due, lines=[line("1", amount)]),
            )
        ).invoice
        if then:
            then(inv)

    def finalize(inv: pb.Invoice) -> None:
        stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=inv.id))

    def part_pay(inv: pb.Invoice) -> None:
        finalize(inv)
        stub.RecordPayment(
            svc.RecordPaymentRequest(
                company_id=company,
                invoice_id=inv.id,
                payment_allocation=pb.PaymentAllocation(allocation=pb.Allocation(total_amount="10")),
            )
        )

    def void(inv: pb.Invoice) -> None:
        finalize(inv)
        stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id))

    def cancel(inv: pb.Invoice) -> None:
        stub.CancelInvoice(svc.CancelInvoiceRequest(company_id=company, invoice_id=inv.id))

    make("USD", "100", past, finalize)  # overdue
    make("USD", "50", past, part_pay)  # overdue, 40 due
    make("USD", "70", future, finalize)  # unpaid, not overdue
    make("USD", "999", past)  # draft: not invoiced
    make("USD", "30", past, void)  # void: invoiced, not unpaid
    make("USD", "5", past, cancel)  # canceled draft: not invoiced
    make("EUR", "20", future, finalize)
    resp = stub.GetCustomerInvoiceSummary(svc.GetCustomerInvoiceSummaryRequest(company_id=company, customer_id="sum-1"))
    by = {s.currency: s for s in resp.summaries}
    assert [s.currency for s in resp.summaries] == ["EUR", "USD"]
    usd = by["USD"]
    assert (usd.total_invoice_count, Decimal(usd.total_invoiced_amount)) == (4, Decimal(250))
    assert (usd.unpaid_invoice_count, Decimal(usd.total_unpaid_amount)) == (3, Decimal(210))
    assert (usd.overdue_invoice_count, Decimal(usd.total_overdue_amount)) == (2, Decimal(140))
    eur = by["EUR"]
    assert (eur.total_invoice_count, eur.unpaid_invoice_count, eur.overdue_invoice_count) == (1, 1, 0)
    empty = stub.GetCustomerInvoiceSummary(svc.GetCustomerInvoiceSummaryRequest(company_id=company, customer_id="none"))
    assert list(empty.summaries) == []
    rpc_error(lambda: stub.GetCustomerInvoiceSummary(svc.GetCustomerInvoiceSummaryRequest(company_id=company)), INV)


def test_batches_stay_under_the_message_size_whatever_page_size_asks(database_url, stub, company):
    for _ in range(3):
        reqs = [svc.CreateInvoiceRequest(invoice=invoice(lines=[line("1", "1.00", description="d" * 200)] * 40))] * 10
        stub.BatchCreateInvoices(svc.BatchCreateInvoicesRequest(company_id=company, requests=reqs))
    srv = ServerThread(database_url, max_message_bytes=200_000).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            msgs = list(
                svc_grpc.InvoiceServiceStub(ch).ListInvoices(
                    svc.ListInvoicesRequest(company_id=company, page_size=5000)
                )
            )
        sizes = [m.ByteSize() for m in msgs]
        assert len(msgs) >= 3 and max(sizes) <= 200_000 - 64 * 1024 + 20_000
        assert [i.id for m in msgs for i in m.invoices] == [i.id for i in list_all(stub, company, page_size=5000)]
        assert all(m.next_page_token for m in msgs[:-1]) and not msgs[-1].next_page_token
    finally:
        srv.stop()
