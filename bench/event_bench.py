"""Change-feed latency (issue 5): from a write's commit to the event arriving at a watcher.

    python bench/event_bench.py [--events 300] [--service-root DIR]

The service runs as its own process; a watcher streams WatchInvoiceEvents in a thread of this process
while the main thread creates invoices one at a time. Latency = arrival time - the event's commit time
(create_time, stamped in the writing transaction; both clocks are this machine's). Goal: median < 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
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

from bench._common import EmbeddedPostgres, add_service_root, running_service  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300)
    add_service_root(parser)
    args = parser.parse_args()
    embedded = EmbeddedPostgres("event-bench-")
    latencies: list[float] = []
    try:
        url = embedded.create_database("event_bench")
        with (
            running_service(args.service_root, url) as service,
            grpc.insecure_channel(service.address) as ch,
        ):
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
        embedded.stop()
    latencies.sort()
    print(f"event latency, commit to watcher, {len(latencies)} events, one writer, one watcher, separate process")
    print(
        f"  median {statistics.median(latencies):.1f} ms | p90 {latencies[int(len(latencies) * 0.9)]:.1f} ms | "
        f"p99 {latencies[int(len(latencies) * 0.99)]:.1f} ms | max {latencies[-1]:.1f} ms (goal: median < 50 ms)"
    )


if __name__ == "__main__":
    main()
