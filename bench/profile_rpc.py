"""Where the server's CPU goes on one unary RPC (issue 15): the service in this process's event loop, a client
in another thread, cProfile on the event loop's thread only.

    python bench/profile_rpc.py [--rpc CreateInvoice,GetInvoice,FinalizeInvoice,RecordPayment] [--calls 2000]
                                [--top 25] [--tracing] [--no-profile] [--dump PREFIX]

Per RPC: the event loop thread's CPU µs per call without the profiler (time.thread_time, so a busy machine
inflates it less than wall time), then the profile of as many calls again: the functions with the most own
and the most cumulative CPU time of that thread, in µs per call (cProfile's overhead included). The service
is set up as bench/rpc_bench.py runs it (access log on at LOG_LEVEL WARNING, no auth, no metrics); `--tracing` adds the
OpenTelemetry server interceptors with a non-exporting tracer provider. Unlike the other benches this one
imports `service` (it profiles this checkout only).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from invoices.v1 import invoice_pb2 as pb  # noqa: E402
from invoices.v1 import invoice_service_pb2 as svc  # noqa: E402
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc  # noqa: E402

from service.bootstrap import start_server  # noqa: E402
from service.config import Settings  # noqa: E402
from service.logs import configure  # noqa: E402
from service.store.db import EmbeddedPostgres, create_pool, migrate  # noqa: E402

COMPANY = "bench"


def _invoice(total: str = "", lines: int = 5) -> pb.Invoice:
    """As bench/rpc_bench.py creates them."""
    items = [pb.LineItem(quantity="2", unit_amount="10.50", description=f"item {i}") for i in range(lines)]
    return pb.Invoice(
        customer_ref=pb.CustomerRef(id="cust-1", company_name="Bench"),
        currency="USD",
        line_items=[] if total else items,
        total_amount=total,
    )


def _drafts(stub: svc_grpc.InvoiceServiceStub, count: int, invoice: pb.Invoice) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        n = min(50, count - len(ids))
        batch = svc.BatchCreateInvoicesRequest(
            company_id=COMPANY, requests=[svc.CreateInvoiceRequest(invoice=invoice)] * n
        )
        made = [i.id for i in stub.BatchCreateInvoices(batch).invoices]
        if not made:
            raise SystemExit("a seeding batch answered no invoices (ran asynchronously?)")
        ids += made
    return ids


def _calls(stub: svc_grpc.InvoiceServiceStub, rpc: str, n: int) -> list[Callable[[], Any]]:
    """`n` calls of `rpc` that each can succeed."""
    if rpc == "CreateInvoice":
        request = svc.CreateInvoiceRequest(company_id=COMPANY, invoice=_invoice())
        return [partial(stub.CreateInvoice, request)] * n
    if rpc == "GetInvoice":
        ids = _drafts(stub, min(n, 500), _invoice())
        gets = [svc.GetInvoiceRequest(company_id=COMPANY, invoice_id=i) for i in ids]
        return [partial(stub.GetInvoice, gets[k % len(gets)]) for k in range(n)]
    if rpc == "FinalizeInvoice":
        ids = _drafts(stub, n, _invoice())
        return [
            partial(stub.FinalizeInvoice, svc.FinalizeInvoiceRequest(company_id=COMPANY, invoice_id=i)) for i in ids
        ]
    if rpc == "RecordPayment":
        ids = _drafts(stub, (n + 9) // 10, _invoice(total="1000000", lines=0))
        for i in ids:
            stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=COMPANY, invoice_id=i))
        pay = pb.PaymentAllocation(allocation=pb.Allocation(total_amount="0.01"))
        pays = [svc.RecordPaymentRequest(company_id=COMPANY, invoice_id=i, payment_allocation=pay) for i in ids]
        return [partial(stub.RecordPayment, pays[k % len(pays)]) for k in range(n)]
    raise SystemExit(f"unknown RPC {rpc}")


async def _window(calls: list[Callable[[], Any]], profile: cProfile.Profile | None) -> float:
    """Runs the calls one after another from a client thread; the event loop thread's CPU µs per call."""
    done = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

    def client() -> None:
        try:
            for call in calls:
                call()
        except BaseException as exc:  # reported in the loop
            loop.call_soon_threadsafe(done.set_exception, exc)
            return
        loop.call_soon_threadsafe(done.set_result, None)

    started = time.thread_time()
    if profile is not None:
        profile.enable()
    threading.Thread(target=client, daemon=True).start()
    await done
    if profile is not None:
        profile.disable()
    return (time.thread_time() - started) * 1e6 / len(calls)


def _top(profile: cProfile.Profile, calls: int, top: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (path, line, name), (_, ncalls, tottime, cumtime, _) in raw.items():
        where = f"{Path(path).name}:{line}({name})" if line else name
        rows.append((tottime, cumtime, ncalls, where))
    lines = []
    for title, key in (("own time", 0), ("cumulative", 1)):
        lines.append(f"  top {top} by {title} (µs per RPC; calls per RPC)")
        for row in sorted(rows, key=lambda r: r[key], reverse=True)[:top]:
            lines.append(
                f"    {row[0] * 1e6 / calls:8.1f} own {row[1] * 1e6 / calls:8.1f} cum {row[2] / calls:6.1f}x  {row[3]}"
            )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="profile-rpc-") as data:
        embedded = EmbeddedPostgres(data, cleanup="delete")
        try:
            url = embedded.create_database(f"profile_{uuid.uuid4().hex[:8]}")
            await asyncio.to_thread(migrate, url)
            if args.tracing:
                from opentelemetry import trace
                from opentelemetry.sdk.trace import TracerProvider

                trace.set_tracer_provider(TracerProvider())
            overrides = {
                "listen_addr": "127.0.0.1:0",
                "database_url": url,
                "pool_max": 32,
                "auth_required": False,
                "async_batch_threshold": 50,  # seeding batches of 50 answer their invoices, as in rpc_bench.py
                "tracing": args.tracing,
            }
            settings = Settings.from_env().model_copy(update=overrides)
            pool = await create_pool(url, 2, settings.pool_max, settings.statement_timeout_ms)
            running = await start_server(settings, pool, url)
            try:
                with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                    stub = svc_grpc.InvoiceServiceStub(channel)
                    for rpc in args.rpc.split(","):
                        warm = await asyncio.to_thread(_calls, stub, rpc, min(args.calls, 300))
                        await _window(warm, None)
                        plain = await asyncio.to_thread(_calls, stub, rpc, args.calls)
                        cpu = await _window(plain, None)
                        print(f"{rpc}: {cpu:.1f} µs CPU per call on the event loop thread (no profiler)", flush=True)
                        if args.no_profile:
                            continue
                        profiled = await asyncio.to_thread(_calls, stub, rpc, args.calls)
                        profile = cProfile.Profile(time.thread_time)  # CPU time: waits cost nothing
                        await _window(profiled, profile)
                        print(_top(profile, args.calls, args.top), flush=True)
                        if args.dump:
                            profile.dump_stats(f"{args.dump}-{rpc}.prof")
            finally:
                await running.stop(1)
                await pool.close()
        finally:
            embedded.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", default="CreateInvoice,GetInvoice,FinalizeInvoice,RecordPayment")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--tracing", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="only the CPU per call, no profile")
    parser.add_argument("--dump", help="also write each profile to DUMP-<rpc>.prof")
    configure("WARNING")  # as the benchmarked service runs
    asyncio.run(main(parser.parse_args()))
