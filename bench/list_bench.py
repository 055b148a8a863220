"""ListInvoices at a million invoices (issue 3). Prints every figure and the ratios.

    python bench/list_bench.py [--invoices 1000000] [--small 10000] [--page-size 1000] [--rows-cache DIR]
                               [--service-root DIR] [--json FILE]

Loads invoices of 5 lines each with COPY (not RPCs) into a fresh database (the embedded PostgreSQL, or
BENCH_DATABASE_URL's server), starts the service as its own process, then measures:
  (a) invoices per second streamed through ListInvoices to a Python client (this process), median of 3,
  (b) invoices per second asyncpg fetches for the same rows and order (the storage limit),
  (c) first-page latency of each common filter at the small size and again at the full size.
Goals: (a) >= 50% of (b); each first page at the full size within 1.5x of the small size.
With --rows-cache the generated rows are kept there as binary COPY files (per schema of the loaded columns),
so repeated runs (bench/compare.py) load them in seconds instead of generating them again.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invoices.v1 import invoice_service_pb2 as svc  # noqa: E402
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc  # noqa: E402

from bench._common import (  # noqa: E402
    EmbeddedPostgres,
    add_service_root,
    cpu_seconds,
    machine,
    running_service,
)

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
)
LINE = (
    "company_id",
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


def generate(start: int, count: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for invoices start..start+count with consistent amounts and no stored document: each service
    renders its own the first time it lists them (the warm-up stream), so each tree streams what its own
    converter makes (documents written here once made one tree stream smaller, foreign ones)."""
    invoices, lines = [], []
    for n in range(start, start + count):
        inv_id = str(uuid.UUID(int=n + 1, version=4))
        created = EPOCH + timedelta(seconds=n * 60)
        due = created + timedelta(days=30)
        status = STATUSES[n % len(STATUSES)]
        total = Decimal(0)
        for pos in range(5):
            qty, unit = Decimal(1 + (n + pos) % 4), Decimal(10 + (n * 7 + pos) % 90) + Decimal("0.25")
            sub = qty * unit
            tax = (sub * Decimal("0.20")).quantize(Decimal("0.01"))
            line_id = str(uuid.UUID(int=(n + 1) * 8 + pos, version=4))
            lines.append((COMPANY, line_id, inv_id, pos, f"item {pos}", qty, unit, Decimal(0), sub, tax, sub + tax))
            total += sub + tax
        paid = {"PARTIALLY_PAID": (total / 2).quantize(Decimal("0.01")), "PAID": total}.get(status, Decimal(0))
        due_amount = Decimal(0) if status == "VOID" else total - paid
        number = None if status == "DRAFT" else f"INV-{n:07d}"
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
            )
        )
    return invoices, lines


async def load(url: str, start: int, count: int, cache: Path | None) -> float:
    t0 = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        part = await _cache_part(conn, cache, start, count) if cache else None
        if part and (part / "invoices.bin").exists():
            await conn.copy_to_table("invoices", source=part / "invoices.bin", columns=HEADER, format="binary")
            await conn.copy_to_table("line_items", source=part / "lines.bin", columns=LINE, format="binary")
            print(f"  loaded {start + count:>9,} invoices (from {part})", end="", flush=True)
        else:
            chunk = 50_000
            for base in range(start, start + count, chunk):
                invoices, lines = generate(base, min(chunk, start + count - base))
                await conn.copy_records_to_table("invoices", records=invoices, columns=HEADER)
                await conn.copy_records_to_table("line_items", records=lines, columns=LINE)
                print(f"  loaded {base + len(invoices):>9,} invoices", end="\r", flush=True)
            if part:
                await _save_part(conn, part, start, count)
        await conn.execute("VACUUM ANALYZE invoices")
        await conn.execute("ANALYZE line_items")
    finally:
        await conn.close()
    print()
    return time.perf_counter() - t0


async def _cache_part(conn: asyncpg.Connection, cache: Path, start: int, count: int) -> Path:
    """The cache folder of invoices start..start+count, keyed by the loaded columns' types (a revision whose
    schema differs there gets its own files)."""
    types = await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_name IN ('invoices', 'line_items') ORDER BY 1, 2"
    )
    wanted = [tuple(r) for r in types if r[1] in (HEADER if r[0] == "invoices" else LINE)]
    schema = hashlib.sha256(json.dumps(wanted).encode()).hexdigest()[:12]
    return cache / f"{schema}-{start}-{count}"


async def _save_part(conn: asyncpg.Connection, part: Path, start: int, count: int) -> None:
    """The rows just generated (invoice n was created at EPOCH + n minutes), as binary COPY files."""
    await asyncio.to_thread(part.mkdir, parents=True, exist_ok=True)
    window = (COMPANY, EPOCH + timedelta(minutes=start), EPOCH + timedelta(minutes=start + count))
    span = "company_id = $1 AND create_time >= $2 AND create_time < $3"
    await conn.copy_from_query(
        f"SELECT {', '.join(HEADER)} FROM invoices WHERE {span}",  # noqa: S608
        *window,
        output=part / "invoices.tmp",
        format="binary",
    )
    await conn.copy_from_query(
        f"SELECT {', '.join('l.' + c for c in LINE)} FROM line_items l JOIN invoices i ON i.id = l.invoice_id "  # noqa: S608
        f"WHERE i.{span.replace(' AND ', ' AND i.')}",
        *window,
        output=part / "lines.bin",
        format="binary",
    )
    (part / "invoices.tmp").rename(part / "invoices.bin")  # last: the part is complete once this exists


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


def first_pages(stubs: list[svc_grpc.InvoiceServiceStub], runs: int = 41) -> list[dict[str, float]]:
    """Median first-page time per filter, for each service, the services taking turns call by call (A B,
    B A, ...: a sub-millisecond figure drifts with the machine within a second). The first call of each
    (rendering the page's documents, when they are not stored yet) is not counted."""
    out: list[dict[str, float]] = [{} for _ in stubs]
    for name, text in FILTERS.items():
        request = svc.ListInvoicesRequest(company_id=COMPANY, filter=text, page_size=100, max_results=100)
        times: list[list[float]] = [[] for _ in stubs]
        for turn in range(runs + 1):
            for i in _turns(len(stubs), turn):
                t0 = time.perf_counter()
                msg = next(iter(stubs[i].ListInvoices(request)))
                if turn:
                    times[i].append(time.perf_counter() - t0)
                assert msg.invoices, name
        for i, got in enumerate(times):
            out[i][name] = statistics.median(got) * 1000
    return out


def _turns(count: int, turn: int) -> list[int]:
    """A B, then B A, ...: drift on the machine falls on each tree alike."""
    order = list(range(count))
    return order if turn % 2 == 0 else order[::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--rows-cache", type=Path, help="keep and reuse the generated rows here")
    parser.add_argument("--json", type=Path, help="also write the figures here (bench/compare.py reads them)")
    add_service_root(parser, several=True)
    args = parser.parse_args()
    roots: list[Path] = args.service_root or [ROOT]
    labels = [chr(ord("A") + i) for i in range(len(roots))] if len(roots) > 1 else [""]
    load_before = machine()

    admin = os.environ.get("BENCH_DATABASE_URL", "")
    embedded = None if admin else EmbeddedPostgres("list-bench-")
    urls = []
    for i in range(len(roots)):
        if embedded is None:
            name = f"list_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_create_db(admin, name))
            urls.append(admin.rsplit("/", 1)[0] + "/" + name)
        else:
            urls.append(embedded.create_database(f"list_bench_{i}"))
    try:
        with ExitStack() as stack:
            services = [stack.enter_context(running_service(root, url)) for root, url in zip(roots, urls, strict=True)]
            options = [("grpc.max_receive_message_length", 64 << 20)]
            channels = [stack.enter_context(grpc.insecure_channel(s.address, options=options)) for s in services]
            stubs = [svc_grpc.InvoiceServiceStub(ch) for ch in channels]
            print(f"loading {args.small:,} invoices x 5 lines (COPY) per tree")
            for url in urls:  # each service migrated its database before it listened
                asyncio.run(load(url, 0, args.small, args.rows_cache))
            small = first_pages(stubs)
            print(f"loading up to {args.invoices:,} invoices x 5 lines (COPY) per tree")
            for url in urls:
                seconds = asyncio.run(load(url, args.small, args.invoices - args.small, args.rows_cache))
                print(f"  {args.invoices - args.small:,} invoices in {seconds:.0f} s")
            large = first_pages(stubs)
            for stub in stubs:
                stream_rate(stub, args.page_size)  # each service stores its documents; warms the cache
            for url in urls:  # the rows the warm-up rewrote: each table as if loaded with its documents
                asyncio.run(_vacuum(url))
            rates: list[list[float]] = [[] for _ in stubs]
            cpu = [0.0 for _ in stubs]
            streamed = [0 for _ in stubs]
            for turn in range(3):
                for i in _turns(len(stubs), turn):
                    cpu0 = cpu_seconds(services[i].pids())
                    rate, count = stream_rate(stubs[i], args.page_size)
                    cpu[i] += cpu_seconds(services[i].pids()) - cpu0
                    rates[i].append(rate)
                    streamed[i] += count
            raw = [asyncio.run(raw_fetch_rate(url, args.page_size)) for url in urls]
    finally:
        if embedded is not None:
            embedded.stop()
    print()
    print(f"machine: {load_before} before, {machine()} after")
    figures: dict[str, dict[str, Any]] = {}
    for i, (label, root) in enumerate(zip(labels, roots, strict=True)):
        a, cpu_ms = statistics.median(rates[i]), cpu[i] * 1e6 / max(streamed[i], 1)
        b, fetched = raw[i]
        print(f"service tree {label}: {root}" if label else f"service tree: {root}")
        print(
            f"(a) ListInvoices stream to a Python client : {a:>10,.0f} invoices/s (median of 3 runs, "
            f"{streamed[i] // 3:,} invoices each, page_size {args.page_size}; service CPU {cpu_ms:.2f} ms per 1000)"
        )
        print(f"(b) asyncpg fetch of the same rows         : {b:>10,.0f} invoices/s ({fetched:,} rows)")
        print(f"    (a)/(b)                                : {a / b:>10.0%}   goal >= 50%")
        header = f"(c) first page (100 invoices), median of 41 | {args.small:>9,} | {args.invoices:>9,}"
        print(header + " | ratio (goal <= 1.5)")
        for name in FILTERS:
            print(
                f"    {name:<14} {FILTERS[name]!r:<32} | {small[i][name]:>6.2f} ms | {large[i][name]:>6.2f} ms | "
                f"{large[i][name] / small[i][name]:.2f}"
            )
        print()
        values = [
            ("ListInvoices stream invoices/s", rates[i], True),
            ("ListInvoices stream service CPU ms/1000 invoices", [cpu_ms], False),
            ("asyncpg fetch invoices/s (reference)", [b], True),
        ]
        for name in FILTERS:
            values.append((f"first page {name} at {args.small:,} ms", [small[i][name]], False))
            values.append((f"first page {name} at {args.invoices:,} ms", [large[i][name]], False))
        for figure, got, higher in values:
            entry = figures.setdefault(figure, {"higher_is_better": higher, "values": {}})
            entry["reference"] = "(reference)" in figure
            entry["values"][label] = got
    if args.json:
        args.json.write_text(json.dumps({"machine": [load_before, machine()], "figures": figures}, indent=1))


async def _vacuum(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:  # FULL: the rewritten rows packed again, not scattered over twice the pages
        await conn.execute("VACUUM (FULL, ANALYZE) invoices")
    finally:
        await conn.close()


async def _create_db(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
