"""Unary RPC throughput against this machine's limits (issue 9). `make bench` runs it.

    python bench/rpc_bench.py [--seconds 4] [--levels 1,16,64] [--clients 2]

In one run: a bare grpc.aio echo server's unary calls per second (the transport limit); PostgreSQL's
transactions per second for one insert plus one update through asyncpg (the storage limit); then
CreateInvoice (5 lines), GetInvoice, FinalizeInvoice and RecordPayment against the service, each at 1, 16
and 64 concurrent callers: calls per second, p50 and p99 latency, and each rate as a ratio of the bare
limits at the same concurrency. Servers and load generators are separate processes.
Goals: GetInvoice >= 60% of echo; CreateInvoice >= 35% of echo and >= 60% of the storage limit.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
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
from tests.test_process import free_port  # noqa: E402

SERVICE = "/invoices.v1.InvoiceService/"
COMPANY = "bench"


def _identity(b: bytes) -> bytes:
    return b


async def echo_server(port: int) -> None:
    async def echo(request: bytes, context: Any) -> bytes:
        return request + b"x" * 1200  # about the size of a GetInvoice answer

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(echo, request_deserializer=_identity, response_serializer=_identity)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def client(target: str, path: str, payloads: list[bytes], concurrency: int, seconds: float, out: Any) -> None:
    """One load-generating process: `concurrency` callers in a loop for `seconds`."""

    async def main() -> tuple[list[float], int]:
        latencies: list[float] = []
        errors = 0
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.unary_unary(path, request_serializer=_identity, response_deserializer=_identity)
            stop = time.monotonic() + seconds

            async def caller(i: int) -> None:
                nonlocal errors
                k = i
                while time.monotonic() < stop:
                    payload = payloads[k % len(payloads)]
                    k += concurrency
                    started = time.perf_counter()
                    try:
                        await call(payload)
                        latencies.append(time.perf_counter() - started)
                    except grpc.aio.AioRpcError:
                        errors += 1

            await asyncio.gather(*(caller(i) for i in range(concurrency)))
        return latencies, errors

    out.put(asyncio.run(main()))


def _cpu_seconds(server_pid: int) -> tuple[float, float]:
    """CPU seconds used so far by the server process and by all PostgreSQL processes (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    server = postgres = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / tick
        if int(entry) == server_pid:
            server += used
        elif stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            postgres += used
    return server, postgres


def measured(
    server_pid: int, target: str, path: str, payloads: list[list[bytes]], concurrency: int, seconds: float
) -> dict[str, float]:
    """load(), plus the CPU milliseconds per call the server process and PostgreSQL spent meanwhile."""
    server0, postgres0 = _cpu_seconds(server_pid)
    result = load(target, path, payloads, concurrency, seconds)
    server1, postgres1 = _cpu_seconds(server_pid)
    calls = max(result["rate"] * seconds, 1)
    result["server_ms"] = (server1 - server0) * 1000 / calls
    result["postgres_ms"] = (postgres1 - postgres0) * 1000 / calls
    return result


def load(target: str, path: str, payloads: list[list[bytes]], concurrency: int, seconds: float) -> dict[str, float]:
    """Runs len(payloads) client processes sharing `concurrency` callers; each gets its own payloads."""
    procs = len(payloads)
    queue: Any = mp.get_context("spawn").Queue()
    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    workers = [
        mp.get_context("spawn").Process(target=client, args=(target, path, payloads[i], shares[i], seconds, queue))
        for i in range(procs)
        if shares[i]
    ]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    latencies = sorted(t for lat, _ in results for t in lat)
    errors = sum(e for _, e in results)
    return {
        "rate": len(latencies) / seconds,
        "p50": statistics.median(latencies) * 1000 if latencies else 0.0,
        "p99": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
        "errors": errors,
    }


async def storage_limit(url: str, concurrency: int, seconds: float) -> float:
    """Transactions per second of one INSERT and one UPDATE each, through asyncpg."""
    pool = await asyncpg.create_pool(url, min_size=concurrency, max_size=concurrency)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS storage_probe (id uuid PRIMARY KEY, n int, body text)")
    done = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        while time.monotonic() < stop:
            async with pool.acquire() as conn, conn.transaction():
                key = uuid.uuid4()
                await conn.execute("INSERT INTO storage_probe VALUES ($1, 0, $2)", key, "x" * 500)
                await conn.execute("UPDATE storage_probe SET n = n + 1 WHERE id = $1", key)
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await pool.close()
    return done / seconds


def _invoice(total: str = "", lines: int = 5) -> pb.Invoice:
    return pb.Invoice(
        customer_ref=pb.CustomerRef(id="cust-1", company_name="Bench"),
        currency="USD",
        line_items=[pb.LineItem(quantity="2", unit_amount="10.50", description=f"item {i}") for i in range(lines)]
        if not total
        else [],
        total_amount=total,
    )


async def fresh_drafts(url: str, since: float) -> list[str]:
    """The drafts a CreateInvoice run just made: FinalizeInvoice's targets at the next step."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT id::text FROM invoices WHERE company_id = $1 AND status = 'DRAFT' "
            "AND create_time >= to_timestamp($2) ORDER BY create_time",
            COMPANY,
            since,
        )
        return [r["id"] for r in rows]
    finally:
        await conn.close()


def seed(address: str, payable: int) -> tuple[list[str], list[str]]:
    """Invoices to read, and finalized invoices with room for many payments."""
    with grpc.insecure_channel(address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        batch = svc.BatchCreateInvoicesRequest(
            company_id=COMPANY, requests=[svc.CreateInvoiceRequest(invoice=_invoice())] * 50
        )
        read_ids: list[str] = []
        while len(read_ids) < 500:
            read_ids += [i.id for i in stub.BatchCreateInvoices(batch).invoices]
        big = svc.BatchCreateInvoicesRequest(
            company_id=COMPANY, requests=[svc.CreateInvoiceRequest(invoice=_invoice(total="1000000", lines=0))] * 50
        )
        pay_ids: list[str] = []
        while len(pay_ids) < payable:
            pay_ids += [i.id for i in stub.BatchCreateInvoices(big).invoices]
        for key in pay_ids:
            stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=COMPANY, invoice_id=key))
    return read_ids, pay_ids


def _split(clients: int, items: list[bytes]) -> list[list[bytes]]:
    """Each client process gets its own share of the payloads."""
    return [items[i::clients] for i in range(clients)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--levels", default="1,16,64")
    parser.add_argument("--clients", type=int, default=2, help="load-generating processes")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    embedded = EmbeddedPostgres(tempfile.mkdtemp(prefix="rpc-bench-"), cleanup="delete")
    url = embedded.create_database("rpc_bench")
    migrate(url)
    echo_port, port = free_port(), free_port()
    echo = mp.get_context("spawn").Process(target=_run_echo, args=(echo_port,))
    echo.start()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        "AUTH_REQUIRED": "false",
        "DB_POOL_MAX": "32",
        "PUSH_WORKERS": "1",
        "ASYNC_BATCH_THRESHOLD": "50",
    }
    service = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env)
    address = f"127.0.0.1:{port}"
    rows: list[tuple[str, int, dict[str, float], float, float]] = []
    try:
        for target in (address, f"127.0.0.1:{echo_port}"):
            with grpc.insecure_channel(target) as ch:
                grpc.channel_ready_future(ch).result(timeout=60)
        read_ids, payable = seed(address, payable=max(levels) * args.clients)
        echo_rates: dict[int, float] = {}
        echo_cpu: dict[int, float] = {}
        storage: dict[int, float] = {}
        for level in levels:
            echoed = measured(
                echo.pid or 0,
                f"127.0.0.1:{echo_port}",
                "/bench.Echo/Echo",
                _split(args.clients, [b"ping" * 25] * 64),
                level,
                args.seconds,
            )
            echo_rates[level], echo_cpu[level] = echoed["rate"], echoed["server_ms"]
            storage[level] = asyncio.run(storage_limit(url, level, args.seconds))
        create = svc.CreateInvoiceRequest(company_id=COMPANY, invoice=_invoice()).SerializeToString()
        gets = [svc.GetInvoiceRequest(company_id=COMPANY, invoice_id=i).SerializeToString() for i in read_ids]
        pays = [
            svc.RecordPaymentRequest(
                company_id=COMPANY,
                invoice_id=i,
                payment_allocation=pb.PaymentAllocation(allocation=pb.Allocation(total_amount="0.01")),
            ).SerializeToString()
            for i in payable
        ]
        for level in levels:
            since = time.time()
            creates = _split(args.clients, [create] * 64)
            result = measured(service.pid, address, SERVICE + "CreateInvoice", creates, level, args.seconds)
            rows.append(("CreateInvoice", level, result, echo_rates[level], storage[level]))
            drafts = asyncio.run(fresh_drafts(url, since))
            finals = [svc.FinalizeInvoiceRequest(company_id=COMPANY, invoice_id=i).SerializeToString() for i in drafts]
            for name, payloads in (
                ("GetInvoice", _split(args.clients, gets)),
                ("FinalizeInvoice", _split(args.clients, finals)),
                ("RecordPayment", _split(args.clients, pays)),
            ):
                result = measured(service.pid, address, SERVICE + name, payloads, level, args.seconds)
                rows.append((name, level, result, echo_rates[level], storage[level]))
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(30)
        echo.terminate()
        echo.join()
        embedded.stop()

    print(
        f"this machine: {os.cpu_count()} cores; service, PostgreSQL, echo server and {args.clients} client processes "
        f"share them; {args.seconds:.0f} s per figure"
    )
    print("limits       | callers | echo calls/s | echo server CPU ms/call | storage tx/s")
    for level in levels:
        print(
            f"             | {level:>7} | {echo_rates[level]:>12,.0f} | {echo_cpu[level]:>23.3f} "
            f"| {storage[level]:>12,.0f}"
        )
    print(
        "RPC             | callers |  calls/s | p50 ms | p99 ms | errors | / echo | / storage "
        "| service CPU ms/call | PostgreSQL CPU ms/call"
    )
    for name, level, r, e, s in rows:
        print(
            f"{name:<15} | {level:>7} | {r['rate']:>8,.0f} | {r['p50']:>6.2f} | {r['p99']:>6.2f} | {r['errors']:>6.0f} "
            f"| {r['rate'] / e:>6.0%} | {r['rate'] / s:>9.0%} | {r['server_ms']:>19.3f} | {r['postgres_ms']:>22.3f}"
        )
    print(
        "A call's CPU cost on this machine is what bounds the rates: service, PostgreSQL and the load generators "
        "share the cores, and the service is one process (PROCESSES=1 here) with one event loop."
    )


def _run_echo(port: int) -> None:
    asyncio.run(echo_server(port))


if __name__ == "__main__":
    main()
