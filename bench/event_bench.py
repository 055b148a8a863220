"""Change-feed latency (issue 5): from a write's commit to the event arriving at a watcher.

    python bench/event_bench.py [--events 300]

The service runs as its own process; a watcher streams WatchInvoiceEvents in a thread of this process
while the main thread creates invoices one at a time. Latency = arrival time - the event's commit time
(create_time, stamped in the writing transaction; both clocks are this machine's). Goal: median < 50 ms.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invoices.v1 import invoice_pb2 as pb  # noqa: E402
from invoices.v1 import invoice_service_pb2 as svc  # noqa: E402
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc  # noqa: E402
from invoices.v1 import push_operation_service_pb2 as ps  # noqa: E402
from invoices.v1 import push_operation_service_pb2_grpc as ps_grpc  # noqa: E402

from service.store.db import EmbeddedPostgres, migrate  # noqa: E402
from tests.test_process import free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    embedded = EmbeddedPostgres(tempfile.mkdtemp(prefix="event-bench-"), cleanup="delete")
    url = embedded.create_database("event_bench")
    migrate(url)
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "LISTEN_ADDR": f"127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
        "AUTH_REQUIRED": "false",
    }
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env)
    latencies: list[float] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            grpc.channel_ready_future(ch).result(timeout=60)
            stub, ops = svc_grpc.InvoiceServiceStub(ch), ps_grpc.PushOperationServiceStub(ch)
            ready = threading.Event()

            def watch() -> None:
                stream = ops.WatchInvoiceEvents(
                    ps.WatchInvoiceEventsRequest(
                        company_id="bench", from_now=True, types=[ps.INVOICE_EVENT_TYPE_INVOICE_CREATED]
                    )
                )
                ready.set()
                for msg in stream:
                    now = time.time()
                    for e in msg.events:
                        latencies.append((now - e.create_time.ToNanoseconds() / 1e9) * 1000)
                    if len(latencies) >= args.events:
                        stream.cancel()
                        return

            thread = threading.Thread(target=watch)
            thread.start()
            ready.wait()
            time.sleep(0.5)
            request = svc.CreateInvoiceRequest(
                company_id="bench",
                invoice=pb.Invoice(customer_ref=pb.CustomerRef(id="c"), currency="USD", total_amount="10"),
            )
            for _ in range(args.events):
                stub.CreateInvoice(request)
                time.sleep(0.01)
            thread.join(30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        embedded.stop()
    latencies.sort()
    print(f"event latency, commit to watcher, {len(latencies)} events, one writer, one watcher, separate process")
    print(
        f"  median {statistics.median(latencies):.1f} ms | p90 {latencies[int(len(latencies) * 0.9)]:.1f} ms | "
        f"p99 {latencies[int(len(latencies) * 0.99)]:.1f} ms | max {latencies[-1]:.1f} ms (goal: median < 50 ms)"
    )


if __name__ == "__main__":
    main()
