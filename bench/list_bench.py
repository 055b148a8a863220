"""ListInvoices at a million invoices (issue 3). Prints every figure and the ratios.

    python bench/list_bench.py [--invoices 1000000] [--small 10000] [--page-size 1000]

Loads invoices of 5 lines each with COPY (not RPCs) into a fresh database (the embedded PostgreSQL, or
BENCH_DATABASE_URL's server), starts the service as its own process, then measures:
  (a) invoices per second streamed through ListInvoices to a Python client (this process),
  (b) invoices per second asyncpg fetches for the same rows and order (the storage limit),
  (c) first-page latency of each common filter at the small size and again at the full size.
Goals: (a) >= 50% of (b); each first page at the full size within 1.5x of the small size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invoices.v1 import invoice_pb2 as pb  # noqa: E402
from invoices.v1 import invoice_service_pb2 as svc  # noqa: E402
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc  # noqa: E402

from service.store.db import EmbeddedPostgres, migrate  # noqa: E402
from service.store.schema import DOCUMENT_VERSION  # noqa: E402
from service.transport.wire import length_delimited  # noqa: E402

COMPANY = "bench"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
STATUSES = ["SUBMITTED"] * 8 + ["PARTIALLY_PAID"] * 4 + ["PAID"] * 6 + ["DRAFT"] + ["VOID"]
FILTERS = {
    "status": "status = partially_paid",
    "customer": "customer_ref.id = cust-00042",
    "due date": "due_date > 2024-02-03",
    "amount due": "amount_due > 0",
    "modified date": "modifiedDate >= 2024-01-04",
    "number": "invoice_number = INV-0000777",
}
HEADER = (
    "id",
    "company_id",
    "invoice_number",
    "customer_id",
    "customer_name",
    "status",
    "void_reason",
    "currency",
    "issue_date",
    "due_date",
    "sub_total",
    "additional_tax_amount",
    "total_tax_amount",
    "total_discount",
    "total_amount",
    "amount_due",
    "amount_paid",
    "amount_credited",
    "note",
    "version",
    "create_time",
    "modified_date",
    "document",
    "document_version",
)
LINE = (
    "id",
    "invoice_id",
    "position",
    "description",
    "quantity",
    "unit_amount",
    "discount_amount",
    "sub_total",
    "tax_amount",
    "total_amount",
)


def _ts(msg: Any, value: datetime) -> None:
    msg.FromDatetime(value)


def generate(start: int, count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for invoices start..start+count: consistent amounts, a document for each."""
    invoices, lines = [], []
    for n in range(start, start + count):
        inv_id = str(uuid.UUID(int=n + 1, version=4))
        created = EPOCH + timedelta(seconds=n * 60)
        due = created + timedelta(days=30)
        status = STATUSES[n % len(STATUSES)]
        doc = pb.Invoice(
            id=inv_id,
            company_id=COMPANY,
            customer_ref=pb.CustomerRef(id=f"cust-{n % 10000:05d}", company_name="Bench Co"),
            currency="USD",
            issue_date=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            due_date=due.strftime("%Y-%m-%dT%H:%M:%SZ"),
            note=f"bench invoice {n}",
            etag='W/"1"',
        )
        total = Decimal(0)
        for pos in range(5):
            qty, unit = Decimal(1 + (n + pos) % 4), Decimal(10 + (n * 7 + pos) % 90) + Decimal("0.25")
            sub = qty * unit
            tax = (sub * Decimal("0.20")).quantize(Decimal("0.01"))
            line_id = str(uuid.UUID(int=(n + 1) * 8 + pos, version=4))
            lines.append((line_id, inv_id, pos, f"item {pos}", qty, unit, Decimal(0), sub, tax, sub + tax))
            doc.line_items.add(
                id=line_id,
                description=f"item {pos}",
                quantity=str(qty),
                unit_amount=str(unit),
                discount_amount="0",
                sub_total=str(sub),
                tax_amount=str(tax),
                total_amount=str(sub + tax),
            )
            total += sub + tax
        paid = {"PARTIALLY_PAID": (total / 2).quantize(Decimal("0.01")), "PAID": total}.get(status, Decimal(0))
        due_amount = Decimal(0) if status == "VOID" else total - paid
        number = None if status == "DRAFT" else f"INV-{n:07d}"
        doc.status = pb.InvoiceStatus.Value(f"INVOICE_STATUS_{status}")
        doc.invoice_number, doc.amount_due, doc.amount_paid = number or "", str(due_amount), str(paid)
        doc.sub_total = doc.total_amount = str(total)
        _ts(doc.create_time, created)
        _ts(doc.modified_date, created)
        invoices.append(
            (
                inv_id,
                COMPANY,
                number,
                f"cust-{n % 10000:05d}",
                "Bench Co",
                status,
                "VOIDED" if status == "VOID" else None,
                "USD",
                created,
                due,
                total,
                Decimal(0),
                Decimal(0),
                Decimal(0),
                total,
                due_amount,
                paid,
                Decimal(0),
                f"bench invoice {n}",
                1,
                created,
                created,
                length_delimited(1, doc.SerializeToString()),
                DOCUMENT_VERSION,
            )
        )
    return invoices, lines


async def load(url: str, start: int, count: int) -> float:
    t0 = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        chunk = 50_000
        for base in range(start, start + count, chunk):
            invoices, lines = generate(base, min(chunk, start + count - base))
            await conn.copy_records_to_table("invoices", records=invoices, columns=HEADER)
            await conn.copy_records_to_table("line_items", records=lines, columns=LINE)
            print(f"  loaded {base + len(invoices):>9,} invoices", end="\r", flush=True)
        await conn.execute("VACUUM ANALYZE invoices")
        await conn.execute("ANALYZE line_items")
    finally:
        await conn.close()
    print()
    return time.perf_counter() - t0


async def raw_fetch_rate(url: str, page: int) -> tuple[float, int]:
    """(b): the same rows in the same order and batches as ListInvoices asks for, through asyncpg."""
    conn = await asyncpg.connect(url)
    try:
        sql = (
            "SELECT id, create_time, document FROM invoices WHERE company_id = $1 {} "
            "ORDER BY create_time DESC, id DESC LIMIT $2"
        )
        first = await conn.prepare(sql.format(""))
        after = await conn.prepare(
            sql.format("AND create_time <= $3 AND (create_time < $3 OR (create_time = $3 AND id < $4))")
        )
        total, t0 = 0, time.perf_counter()
        rows = await first.fetch(COMPANY, page + 1)
        while rows:
            total += min(len(rows), page)
            if len(rows) <= page:
                break
            last = rows[page - 1]
            rows = await after.fetch(COMPANY, page + 1, last["create_time"], last["id"])
        return total / (time.perf_counter() - t0), total
    finally:
        await conn.close()


def stream_rate(stub: svc_grpc.InvoiceServiceStub, page: int) -> tuple[float, int]:
    """(a): invoices per second arriving, parsed, at this Python client."""
    total, t0 = 0, time.perf_counter()
    for msg in stub.ListInvoices(svc.ListInvoicesRequest(company_id=COMPANY, page_size=page)):
        total += len(msg.invoices)
    return total / (time.perf_counter() - t0), total


def first_pages(stub: svc_grpc.InvoiceServiceStub, runs: int = 25) -> dict[str, float]:
    out = {}
    for name, text in FILTERS.items():
        request = svc.ListInvoicesRequest(company_id=COMPANY, filter=text, page_size=100, max_results=100)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            msg = next(iter(stub.ListInvoices(request)))
            times.append(time.perf_counter() - t0)
            assert msg.invoices, name
        out[name] = statistics.median(times) * 1000
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        "AUTH_REQUIRED": "false",
    }
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env)
    address = f"127.0.0.1:{port}"
    with grpc.insecure_channel(address) as ch:
        grpc.channel_ready_future(ch).result(timeout=60)
    return proc, address


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()

    admin = os.environ.get("BENCH_DATABASE_URL", "")
    tmp = tempfile.mkdtemp(prefix="list-bench-")
    embedded = None
    if admin:
        name = f"list_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_create_db(admin, name))
        url = admin.rsplit("/", 1)[0] + "/" + name
    else:
        embedded = EmbeddedPostgres(tmp, cleanup="delete")
        url = embedded.create_database("list_bench")
    migrate(url)
    proc, address = start_service(url)
    try:
        with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            print(f"loading {args.small:,} invoices x 5 lines (COPY)")
            asyncio.run(load(url, 0, args.small))
            small = first_pages(stub)
            print(f"loading up to {args.invoices:,} invoices x 5 lines (COPY)")
            seconds = asyncio.run(load(url, args.small, args.invoices - args.small))
            print(f"  {args.invoices - args.small:,} invoices in {seconds:.0f} s")
            large = first_pages(stub)
            stream_rate(stub, args.page_size)  # warm the cache once
            a, streamed = stream_rate(stub, args.page_size)
            b, fetched = asyncio.run(raw_fetch_rate(url, args.page_size))
        print()
        print(
            f"(a) ListInvoices stream to a Python client : {a:>10,.0f} invoices/s ({streamed:,} invoices, "
            f"page_size {args.page_size})"
        )
        print(f"(b) asyncpg fetch of the same rows         : {b:>10,.0f} invoices/s ({fetched:,} rows)")
        print(f"    (a)/(b)                                : {a / b:>10.0%}   goal >= 50%")
        print()
        header = f"(c) first page (100 invoices), median of 25 | {args.small:>9,} | {args.invoices:>9,}"
        print(header + " | ratio (goal <= 1.5)")
        for name in FILTERS:
            print(
                f"    {name:<14} {FILTERS[name]!r:<32} | {small[name]:>6.2f} ms | {large[name]:>6.2f} ms | "
                f"{large[name] / small[name]:.2f}"
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if embedded is not None:
            embedded.stop()


async def _create_db(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
