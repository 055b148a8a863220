"""Unary RPC throughput against this machine's limits (issues 9, 15). `make bench` runs it.

    python bench/rpc_bench.py [--seconds 4] [--levels 1,16,64] [--processes 1,2] [--clients 2]
                              [--channels 8] [--no-limits] [--rpcs NAME,...] [--service-root DIR] [--json FILE]

In one run: a bare grpc.aio echo server's unary calls per second (the transport limit); PostgreSQL's
transactions per second for one insert plus one update through asyncpg (the storage limit); then
CreateInvoice (5 lines), GetInvoice, FinalizeInvoice and RecordPayment against the service, at each number
of concurrent callers, with the service run as PROCESSES=1 and again as PROCESSES=2 (several processes on
one port; the kernel spreads connections, so callers use several channels each with its own connection).
Per figure: calls per second, p50 and p99 latency, refused calls, the service's and PostgreSQL's CPU
milliseconds per call (from /proc), and with several processes each one's share of the service CPU.

Every measured call can succeed: FinalizeInvoice and RecordPayment callers each get their own pool of
targets (drafts; finalized invoices with room for payments, at most 10 payments each), sized at three times what a
short calibration run suggests, and a window ends early if any caller's pool runs out. Refusals are counted
apart and reported loudly. Servers and load generators are separate processes.
Goals: GetInvoice >= 60% of echo; CreateInvoice >= 35% of echo and >= 60% of the storage limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invoices.v1 import invoice_pb2 as pb  # noqa: E402
from invoices.v1 import invoice_service_pb2 as svc  # noqa: E402
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc  # noqa: E402

from bench._common import (  # noqa: E402
    EmbeddedPostgres,
    Service,
    add_service_root,
    cpu_seconds,
    free_port,
    machine,
    running_service,
)

SERVICE = "/invoices.v1.InvoiceService/"
RPCS = ("CreateInvoice", "GetInvoice", "FinalizeInvoice", "RecordPayment")
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
COMPANY = "bench"
PAYMENTS_PER_INVOICE = 10  # each payment reads the invoice's allocations: bounded, so the cost stays flat
CALIBRATION_SECONDS = 1.0
SPAWN = mp.get_context("spawn")
SETTINGS = {"DB_POOL_MAX": "32", "PUSH_WORKERS": "1", "ASYNC_BATCH_THRESHOLD": "50"}


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


def _run_echo(port: int) -> None:
    asyncio.run(echo_server(port))


@dataclass
class Window:
    """One measured window's outcome."""

    calls: int
    seconds: float
    p50: float
    p99: float
    refused: Counter[str]
    exhausted: bool

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


def _channel(target: str) -> grpc.aio.Channel:
    """A channel of its own connection: a local subchannel pool and a distinct argument."""
    options = [("grpc.use_local_subchannel_pool", 1), ("bench.channel", f"{uuid.uuid4()}")]
    return grpc.aio.insecure_channel(target, options=options)


async def _served_by(ch: grpc.aio.Channel) -> str:
    """The serving process of the channel's connection (its `x-served-by-pid` trailer; "" without one)."""
    check = ch.unary_unary(HEALTH_CHECK, request_serializer=_identity, response_deserializer=_identity)
    call = check(b"")
    await call
    return next((str(v) for k, v in await call.trailing_metadata() or () if k == "x-served-by-pid"), "")


async def _open_channels(target: str, count: int, processes: int) -> list[grpc.aio.Channel]:
    """`count` connected channels; with several serving processes, as many on each as can be (the kernel
    gives each new connection to a process at random: a channel landing on a process that has its share is
    closed and another opened). Unbalanced load made one process's queue, and so the p50, differ from run to
    run by a factor of two."""
    opened: list[grpc.aio.Channel] = []
    per_process: Counter[str] = Counter()
    share = -(-count // processes)
    for _ in range(count * 20 if processes > 1 else count):
        if len(opened) == count:
            break
        ch = _channel(target)
        await ch.channel_ready()
        pid = await _served_by(ch) if processes > 1 else ""
        if pid and per_process[pid] >= share:
            await ch.close()
            continue
        per_process[pid] += 1
        opened.append(ch)
    while len(opened) < count:  # no balance within the tries: take what comes
        ch = _channel(target)
        await ch.channel_ready()
        opened.append(ch)
    return opened


def client(
    target: str,
    path: str,
    pools: list[list[bytes]],
    consume: bool,
    channels: int,
    processes: int,
    ready: Any,
    start: Any,
    deadline: Any,
    stop: Any,
    out: Any,
) -> None:
    """One load-generating process: one caller per pool, spread over `channels` channels of their own,
    each its own connection, spread evenly over the `processes` serving processes. A caller sends its
    pool's requests in turn: cycling through them, or with `consume` each once, ending the window for every
    caller when its pool is used up."""

    async def main() -> tuple[list[float], Counter[str], float]:
        latencies: list[float] = []
        refused: Counter[str] = Counter()
        last = 0.0
        opened = await _open_channels(target, max(1, min(channels, len(pools))), processes)
        try:
            calls = [
                ch.unary_unary(path, request_serializer=_identity, response_deserializer=_identity) for ch in opened
            ]
            ready.release()
            await asyncio.to_thread(start.wait)
            end = deadline.value

            async def caller(i: int, pool: list[bytes]) -> None:
                nonlocal last
                call = calls[i % len(calls)]
                k = 0
                while time.monotonic() < end and not stop.value:
                    if k == len(pool):
                        if consume:
                            stop.value = 1
                            break
                        k = 0
                    payload = pool[k]
                    k += 1
                    started = time.perf_counter()
                    try:
                        await call(payload)
                        latencies.append(time.perf_counter() - started)
                    except grpc.aio.AioRpcError as exc:
                        refused[exc.code().name] += 1
                    last = max(last, time.monotonic())

            await asyncio.gather(*(caller(i, pool) for i, pool in enumerate(pools)))
        finally:
            for ch in opened:
                await ch.close()
        return latencies, refused, last

    out.put(asyncio.run(main()))


def load(
    target: str,
    path: str,
    pools: list[list[bytes]],
    consume: bool,
    seconds: float,
    clients: int,
    channels: int,
    processes: int = 1,
) -> Window:
    """Callers (one per pool) spread over `clients` processes; all start together once every channel is
    connected, and run `seconds` or until a consumed pool runs out."""
    shares = [pools[i::clients] for i in range(clients)]
    shares = [s for s in shares if s]
    queue: Any = SPAWN.Queue()
    ready, start = SPAWN.Semaphore(0), SPAWN.Event()
    deadline, stop = SPAWN.Value("d", 0.0, lock=False), SPAWN.Value("b", 0, lock=False)
    workers = [
        SPAWN.Process(
            target=client,
            args=(target, path, share, consume, channels, processes, ready, start, deadline, stop, queue),
        )
        for share in shares
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.acquire()
    began = time.monotonic()
    deadline.value = began + seconds
    start.set()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    latencies = sorted(t for lat, _, _ in results for t in lat)
    refused: Counter[str] = sum((r for _, r, _ in results), Counter())
    ended = max((last for _, _, last in results), default=began)
    return Window(
        calls=len(latencies),
        seconds=max(ended - began, 1e-9),
        p50=statistics.median(latencies) * 1000 if latencies else 0.0,
        p99=latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
        refused=refused,
        exhausted=bool(stop.value),
    )


def measured(
    pids: list[list[int]],
    target: str,
    path: str,
    pools: list[list[bytes]],
    consume: bool,
    args: argparse.Namespace,
    processes: int = 1,
) -> tuple[Window, list[float]]:
    """load(), plus the CPU seconds each group of processes spent meanwhile."""
    before = [cpu_seconds(group) for group in pids]
    window = load(target, path, pools, consume, args.seconds, args.clients, args.channels, processes)
    after = [cpu_seconds(group) for group in pids]
    return window, [b - a for a, b in zip(before, after, strict=True)]


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


class Seeder:
    """Invoices made through the API (batches of 50, a few in parallel) for the benchmark to work on."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.stub = svc_grpc.InvoiceServiceStub(self.channel)
        self.threads = ThreadPoolExecutor(4)

    def drafts(self, count: int, invoice: pb.Invoice) -> list[str]:
        batch = svc.BatchCreateInvoicesRequest(
            company_id=COMPANY, requests=[svc.CreateInvoiceRequest(invoice=invoice)] * 50
        )
        answers = self.threads.map(lambda _: self.stub.BatchCreateInvoices(batch), range(math.ceil(count / 50)))
        return [i.id for answer in answers for i in answer.invoices][:count]

    def finalized(self, count: int) -> list[str]:
        """Invoices of 1,000,000 open to payments."""
        ids = self.drafts(count, _invoice(total="1000000", lines=0))
        request = svc.FinalizeInvoiceRequest
        list(self.threads.map(lambda i: self.stub.FinalizeInvoice(request(company_id=COMPANY, invoice_id=i)), ids))
        return ids

    def close(self) -> None:
        self.threads.shutdown()
        self.channel.close()


def finalize_pools(seeder: Seeder, callers: int, calls: int) -> list[list[bytes]]:
    """`calls` drafts (5 lines, as CreateInvoice makes them) dealt to the callers: each finalized once."""
    ids = seeder.drafts(max(calls, callers), _invoice())
    requests = [svc.FinalizeInvoiceRequest(company_id=COMPANY, invoice_id=i).SerializeToString() for i in ids]
    return [requests[c::callers] for c in range(callers)]


def payment_pools(seeder: Seeder, callers: int, calls: int) -> list[list[bytes]]:
    """Payments of 0.01 dealt to the callers, each caller paying only its own invoices, each at most
    PAYMENTS_PER_INVOICE times."""
    per_caller = max(1, math.ceil(calls / callers))
    invoices = max(1, math.ceil(per_caller / PAYMENTS_PER_INVOICE))
    ids = seeder.finalized(invoices * callers)
    pools = []
    for c in range(callers):
        own = ids[c * invoices : (c + 1) * invoices]
        pay = [
            svc.RecordPaymentRequest(
                company_id=COMPANY,
                invoice_id=i,
                payment_allocation=pb.PaymentAllocation(allocation=pb.Allocation(total_amount="0.01")),
            ).SerializeToString()
            for i in own
        ]
        pools.append([pay[k % len(pay)] for k in range(per_caller)])
    return pools


@dataclass
class Row:
    tree: str  # "" with one service tree; A, B, ... with several
    name: str
    processes: int
    callers: int
    window: Window
    service_ms: float
    postgres_ms: float
    shares: list[float]

    @property
    def key(self) -> str:
        return f"{self.name} P={self.processes} callers={self.callers}"


@dataclass
class Target:
    """One service tree under test: its running service, its seeder, its reads."""

    label: str
    service: Service
    seeder: Seeder
    gets: list[bytes]
    rates: dict[tuple[str, int], float]  # calibrated calls/s of the consuming RPCs per level


def bench_services(
    args: argparse.Namespace, urls: list[str], embedded: EmbeddedPostgres, processes: int, levels: list[int]
) -> list[Row]:
    """Every figure for every tree, the trees taking turns window by window (A B, then B A, ...), so load
    from elsewhere on the machine falls on each alike."""
    rows: list[Row] = []
    labels = [chr(ord("A") + i) for i in range(len(urls))] if len(urls) > 1 else [""]
    create = svc.CreateInvoiceRequest(company_id=COMPANY, invoice=_invoice()).SerializeToString()
    with ExitStack() as stack:
        targets = []
        for label, root, url in zip(labels, args.service_root, urls, strict=True):
            service = stack.enter_context(running_service(root, url, processes, SETTINGS))
            seeder = stack.enter_context(closing(Seeder(service.address)))
            ids = seeder.drafts(500, _invoice())
            gets = [svc.GetInvoiceRequest(company_id=COMPANY, invoice_id=i).SerializeToString() for i in ids]
            targets.append(Target(label, service, seeder, gets, {}))
        for level in levels:
            for name in args.rpcs.split(","):
                for r in range(args.rounds):
                    for t in targets if r % 2 == 0 else targets[::-1]:
                        rows.append(_figure(args, t, embedded, name, level, create))
    return rows


def _figure(
    args: argparse.Namespace, t: Target, embedded: EmbeddedPostgres, name: str, level: int, create: bytes
) -> Row:
    if name == "CreateInvoice":
        return _row(args, t, embedded, name, level, [[create]] * level, False)
    if name == "GetInvoice":
        return _row(args, t, embedded, name, level, [t.gets[c::level] for c in range(level)], False)
    make = finalize_pools if name == "FinalizeInvoice" else payment_pools
    if (name, level) not in t.rates:
        # A short run on a small pool estimates the rate; measured pools hold three times what it suggests.
        pools = make(t.seeder, level, 25 * level)
        trial, _ = measured(
            [], t.service.address, SERVICE + name, pools, True, _calibration(args), len(t.service.workers)
        )
        t.rates[name, level] = trial.rate
    calls = math.ceil(t.rates[name, level] * args.seconds * 3) + 10 * level
    return _row(args, t, embedded, name, level, make(t.seeder, level, calls), True)


def _calibration(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "seconds": CALIBRATION_SECONDS})


def _row(
    args: argparse.Namespace,
    t: Target,
    embedded: EmbeddedPostgres,
    name: str,
    level: int,
    pools: list[list[bytes]],
    consume: bool,
) -> Row:
    groups = [t.service.pids(), embedded.pids(), *t.service.workers]
    window, cpu = measured(groups, t.service.address, SERVICE + name, pools, consume, args, len(t.service.workers))
    calls = max(window.calls, 1)
    spent = sum(cpu[2:]) or 1.0
    return Row(
        t.label,
        name,
        len(t.service.workers),
        level,
        window,
        cpu[0] * 1000 / calls,
        cpu[1] * 1000 / calls,
        [c / spent for c in cpu[2:]],
    )


def limits(args: argparse.Namespace, url: str, levels: list[int]) -> list[tuple[int, float, float, float]]:
    """(callers, echo calls/s, echo server CPU ms/call, storage tx/s) at each level."""
    port = free_port()
    echo = SPAWN.Process(target=_run_echo, args=(port,))
    echo.start()
    out = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            grpc.channel_ready_future(ch).result(timeout=60)
        for level in levels:
            pools = [[b"ping" * 25]] * level
            window, cpu = measured([[echo.pid or 0]], f"127.0.0.1:{port}", "/bench.Echo/Echo", pools, False, args)
            storage = asyncio.run(storage_limit(url, level, args.seconds))
            out.append((level, window.rate, cpu[0] * 1000 / max(window.calls, 1), storage))
    finally:
        echo.terminate()
        echo.join()
    return out


def report(
    args: argparse.Namespace, rows: list[Row], bounds: list[tuple[int, float, float, float]], load: list[str]
) -> None:
    print(f"machine: {load[0]} before, {load[1]} after")
    trees = "; ".join(
        f"{chr(ord('A') + i)}: {root}" if len(args.service_root) > 1 else str(root)
        for i, root in enumerate(args.service_root)
    )
    print(f"service tree(s): {trees}")
    print(
        f"{args.clients} client processes x up to {args.channels} channels each; {args.seconds:g} s per window "
        f"(FinalizeInvoice, RecordPayment: or until a caller's pool is used up); {args.rounds} window(s) per "
        "figure and tree, trees taking turns; the row shown is the median window by calls/s"
    )
    if bounds:
        print("limits       | callers | echo calls/s | echo server CPU ms/call | storage tx/s")
        for level, rate, cpu, storage in bounds:
            print(f"             | {level:>7} | {rate:>12,.0f} | {cpu:>23.3f} | {storage:>12,.0f}")
    echo = {level: rate for level, rate, _, _ in bounds}
    stores = {level: tx for level, _, _, tx in bounds}
    print(
        "RPC             | tree | procs | callers |  calls/s | p50 ms | p99 ms | refused | service CPU ms/call "
        "| PostgreSQL CPU ms/call | CPU share per process | / echo | / storage | window s | calls/s of each window"
    )
    for (_, tree), group in _groups(rows).items():
        r = _median(group)
        w = r.window
        share = " ".join(f"{s:.0%}" for s in r.shares) if r.processes > 1 else "-"
        ratio = f"{w.rate / echo[r.callers]:>6.0%}" if r.callers in echo else "     -"
        stored = f"{w.rate / stores[r.callers]:>9.0%}" if stores.get(r.callers) else "        -"
        note = " (pool used up)" if w.exhausted else ""
        refused = sum(sum(g.window.refused.values()) for g in group)
        print(
            f"{r.name:<15} | {tree or '-':>4} | {r.processes:>5} | {r.callers:>7} | {w.rate:>8,.0f} | {w.p50:>6.2f} "
            f"| {w.p99:>6.2f} | {refused:>7} | {r.service_ms:>19.3f} | {r.postgres_ms:>22.3f} | {share:>21} "
            f"| {ratio} | {stored} | {w.seconds:>8.2f} | {' '.join(f'{g.window.rate:,.0f}' for g in group)}{note}"
        )
    refused_rows = [r for r in rows if r.window.refused]
    for r in refused_rows:
        print(f"!!! REFUSED CALLS: {r.key} {r.tree}: {dict(r.window.refused)}: not a valid measurement !!!")
    for r in rows:
        if r.processes > 1 and r.callers > 1 and min(r.shares) < 0.2:
            print(f"!!! {r.key} {r.tree}: one serving process did under 20% of the work: load did not spread !!!")
    if not refused_rows:
        print("refused calls: none (every measured call succeeded)")


def _groups(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    out: dict[tuple[str, str], list[Row]] = {}
    for r in rows:
        out.setdefault((r.key, r.tree), []).append(r)
    return out


def _median(group: list[Row]) -> Row:
    return sorted(group, key=lambda r: r.window.rate)[(len(group) - 1) // 2]


def figures(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """The comparable numbers, every window's, for bench/compare.py: name -> whether higher is better, and
    per tree the values."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        for what, value, higher in (
            ("calls/s", r.window.rate, True),
            ("p50 ms", r.window.p50, False),
            ("service CPU ms/call", r.service_ms, False),
            ("refused", sum(r.window.refused.values()), False),
        ):
            figure = out.setdefault(f"{r.key} {what}", {"higher_is_better": higher, "values": {}})
            figure["values"].setdefault(r.tree, []).append(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--levels", default="1,16,64")
    parser.add_argument("--processes", default="1,2", help="service PROCESSES settings to measure")
    parser.add_argument("--clients", type=int, default=2, help="load-generating processes")
    parser.add_argument("--channels", type=int, default=8, help="channels (connections) per client process")
    parser.add_argument("--rounds", type=int, default=1, help="windows per figure (and tree)")
    parser.add_argument("--no-limits", action="store_true", help="skip the echo and storage limits")
    parser.add_argument("--rpcs", default=",".join(RPCS), help="the RPCs to measure, of " + ", ".join(RPCS))
    parser.add_argument("--json", type=Path, help="also write the figures here (bench/compare.py reads them)")
    add_service_root(parser, several=True)
    args = parser.parse_args()
    if unknown := set(args.rpcs.split(",")) - set(RPCS):
        parser.error(f"--rpcs: not measured here: {', '.join(sorted(unknown))}")
    args.service_root = args.service_root or [ROOT]
    levels = [int(x) for x in args.levels.split(",")]
    load = [machine()]

    embedded = EmbeddedPostgres("rpc-bench-")
    rows: list[Row] = []
    try:
        url = embedded.create_database("rpc_bench")
        bounds = [] if args.no_limits else limits(args, url, levels)
        for processes in (int(p) for p in args.processes.split(",")):
            # One caller is one connection, so one process: several processes are measured with several.
            at = [level for level in levels if processes == 1 or level > 1]
            urls = [embedded.create_database(f"rpc_bench_p{processes}_{i}") for i in range(len(args.service_root))]
            rows += bench_services(args, urls, embedded, processes, at)
    finally:
        embedded.stop()
    load.append(machine())
    report(args, rows, bounds, load)
    if args.json:
        args.json.write_text(json.dumps({"machine": load, "figures": figures(rows)}, indent=1))


if __name__ == "__main__":
    main()
