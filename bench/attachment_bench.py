"""Attachments at 200 MB (issue 4): the service against a bare gRPC byte stream. Prints MB/s, ratios and
the server's peak memory growth.

    python bench/attachment_bench.py [--megabytes 200] [--chunk-kb 1024] [--service-root DIR]

Both servers run as separate processes on this machine; the client is this process. The bare server does
nothing but count received bytes (upload) and send a prepared buffer (download): the transport's limit.
Goals: the service at >= 50% of the bare stream both ways; server memory growth under 64 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from invoices.v1 import invoice_pb2 as pb  # noqa: E402
from invoices.v1 import invoice_service_pb2 as svc  # noqa: E402
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc  # noqa: E402

from bench._common import EmbeddedPostgres, add_service_root, free_port, running_service  # noqa: E402

MB = 1024 * 1024
CHUNK_BYTES = 256 * 1024  # the piece size the service stores attachments in (service/store/attachments.py)
BARE = "/bench.Bytes/"


def _identity(b: bytes) -> bytes:
    return b


async def bare_server(port: int, size: int, chunk: int) -> None:
    """A minimal grpc.aio server: Sink counts an upload, Source streams `size` bytes."""
    payload = os.urandom(chunk)

    async def sink(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        total = 0
        async for piece in requests:
            total += len(piece)
        return str(total).encode()

    async def source(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
        for _ in range(size // chunk):
            yield payload

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 8 * MB)])
    handlers = {
        "Sink": grpc.stream_unary_rpc_method_handler(
            sink, request_deserializer=_identity, response_serializer=_identity
        ),
        "Source": grpc.unary_stream_rpc_method_handler(
            source, request_deserializer=_identity, response_serializer=_identity
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Bytes", handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def rss(pid: int, field: str) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1]) * 1024
    raise RuntimeError(field)


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=60)
    return proc


async def storage_limit(url: str, data: bytes) -> tuple[float, float]:
    """PostgreSQL's own rate for the same bytes, as the service stores and reads them (256 KB pieces,
    one transaction to write, eight pieces a query to read): the ceiling under the service."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE limit_probe (seq int PRIMARY KEY, data bytea NOT NULL)")
        await conn.execute("ALTER TABLE limit_probe ALTER COLUMN data SET STORAGE EXTERNAL")
        pieces = list(chunks(data, CHUNK_BYTES))
        t0 = time.perf_counter()
        async with conn.transaction():
            for seq, piece in enumerate(pieces):
                await conn.execute("INSERT INTO limit_probe VALUES ($1, $2)", seq, piece)
        write = len(data) / MB / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for seq in range(0, len(pieces), 8):
            await conn.fetch("SELECT data FROM limit_probe WHERE seq >= $1 ORDER BY seq LIMIT 8", seq)
        read = len(data) / MB / (time.perf_counter() - t0)
        await conn.execute("DROP TABLE limit_probe")
        return write, read
    finally:
        await conn.close()


def chunks(data: bytes, chunk: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start_at in range(0, len(data), chunk):
        yield bytes(view[start_at : start_at + chunk])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--chunk-kb", type=int, default=1024)
    parser.add_argument("--bare-server", type=int, default=0, help=argparse.SUPPRESS)
    add_service_root(parser)
    args = parser.parse_args()
    size, chunk = args.megabytes * MB, args.chunk_kb * 1024
    if args.bare_server:
        asyncio.run(bare_server(args.bare_server, size, chunk))
        return

    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    options = [("grpc.max_receive_message_length", 8 * MB)]

    bare_port = free_port()
    bare = start([sys.executable, __file__, "--megabytes", str(args.megabytes), "--chunk-kb", str(args.chunk_kb),
                  "--bare-server", str(bare_port)], {}, bare_port)  # fmt: skip
    try:
        with grpc.insecure_channel(f"127.0.0.1:{bare_port}", options=options) as ch:
            sink = ch.stream_unary(BARE + "Sink", request_serializer=_identity, response_deserializer=_identity)
            source = ch.unary_stream(BARE + "Source", request_serializer=_identity, response_deserializer=_identity)
            t0 = time.perf_counter()
            assert int(sink(chunks(data, chunk))) == size
            bare_up = size / MB / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            got = sum(len(piece) for piece in source(b""))
            bare_down = got / MB / (time.perf_counter() - t0)
    finally:
        bare.send_signal(signal.SIGTERM)
        bare.wait(10)

    embedded = EmbeddedPostgres("attachment-bench-")
    url = embedded.create_database("attachment_bench")
    limits = {"ATTACHMENT_MAX_BYTES": str(size + MB), "GRPC_MAX_MESSAGE_BYTES": str(8 * MB)}
    with running_service(args.service_root, url, settings=limits) as running:
        service = running.proc
        with grpc.insecure_channel(running.address, options=options) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            inv = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id="bench", invoice=pb.Invoice(
                customer_ref=pb.CustomerRef(id="c"), currency="USD", total_amount="1"))).invoice  # fmt: skip
            baseline = rss(service.pid, "VmRSS")
            reset_peak(service.pid)

            def requests() -> Iterator[svc.UploadAttachmentRequest]:
                yield svc.UploadAttachmentRequest(metadata=svc.AttachmentUpload(
                    company_id="bench", invoice_id=inv.id, name="big.zip"))  # fmt: skip
                for piece in chunks(data, chunk):
                    yield svc.UploadAttachmentRequest(chunk=piece)

            t0 = time.perf_counter()
            att = stub.UploadAttachment(requests()).attachment
            up = size / MB / (time.perf_counter() - t0)
            assert att.sha256 == digest and att.file_size == size
            peak_up = rss(service.pid, "VmHWM") - baseline

            reset_peak(service.pid)
            t0 = time.perf_counter()
            check, received = hashlib.sha256(), 0
            for msg in stub.DownloadAttachment(svc.DownloadAttachmentRequest(
                    company_id="bench", invoice_id=inv.id, attachment_id=att.id)):  # fmt: skip
                check.update(msg.chunk)
                received += len(msg.chunk)
            down = received / MB / (time.perf_counter() - t0)
            assert check.hexdigest() == digest
            peak_down = rss(service.pid, "VmHWM") - baseline
    try:
        pg_write, pg_read = asyncio.run(storage_limit(url, data))
    finally:
        embedded.stop()

    print(f"{args.megabytes} MB in {args.chunk_kb} KB chunks, this machine ({os.cpu_count()} cores), loopback")
    for name, mine, bare_rate in (("upload", up, bare_up), ("download", down, bare_down)):
        print(f"{name:<9} service {mine:>8.1f} MB/s | bare gRPC {bare_rate:>8.1f} MB/s | "
              f"ratio {mine / bare_rate:>5.0%} (goal >= 50%)")  # fmt: skip
    print(f"storage   PostgreSQL alone, same pieces: write {pg_write:.1f} MB/s, read {pg_read:.1f} MB/s")
    print(f"          service / storage: upload {up / pg_write:.0%}, download {down / pg_read:.0%}")
    print(f"server peak memory growth: upload {peak_up / MB:.1f} MB, download {peak_down / MB:.1f} MB (goal < 64 MB)")


if __name__ == "__main__":
    main()
