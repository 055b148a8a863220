"""No client can stall the service with streams, and no stream ends in a wrong state: stalled uploads hold no
pooled connection, idle uploads are abandoned, undecodable and out-of-order upload messages are refused
as bad input, an upload racing a void or a download racing a delete never succeeds with the wrong result,
and open streams are capped per connection and per company."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc
from invoices.v1 import push_operation_service_pb2 as push_svc
from invoices.v1 import push_operation_service_pb2_grpc as push_grpc

from tests.conftest import ServerThread
from tests.helpers import create, finalized, rich_status, rpc_error, violations
from tests.test_attachments import MB, stored_rows, upload, upload_requests

INV = grpc.StatusCode.INVALID_ARGUMENT
UPLOAD = "/invoices.v1.InvoiceService/UploadAttachment"
# Own connections: Python channels with equal arguments otherwise share one (the global subchannel pool).
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def staged(db: Any, company: str) -> int:
    return int(
        db.fetch("SELECT count(*) AS n FROM attachments WHERE company_id = $1 AND staged_until IS NOT NULL", company)[
            0
        ]["n"]
    )


def wait_for(condition: Any, seconds: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stalled(company: str, invoice_id: str, release: threading.Event, name: str = "s.pdf") -> Iterator[Any]:
    """An upload that sends its metadata and one byte, then goes quiet until `release`."""
    yield svc.UploadAttachmentRequest(
        metadata=svc.AttachmentUpload(company_id=company, invoice_id=invoice_id, name=name)
    )
    yield svc.UploadAttachmentRequest(chunk=b"x")
    release.wait(120)


@pytest.fixture(scope="module")
def small_pool(database_url: str) -> Iterator[ServerThread]:
    """The default pool of 10 connections, room for 50 streams of a company, a long idle timeout."""
    srv = ServerThread(database_url, pool_max=10, company_max_streams=100, upload_idle_seconds=60).start()
    yield srv
    srv.stop()


def test_fifty_stalled_uploads_leave_other_rpcs_answering(small_pool, company, db):
    channels = [grpc.insecure_channel(small_pool.address, options=OWN_CONNECTION) for _ in range(5)]
    other = grpc.insecure_channel(small_pool.address, options=OWN_CONNECTION)
    release = threading.Event()
    futures: list[Any] = []
    try:
        stub = svc_grpc.InvoiceServiceStub(other)
        inv = create(stub, company)
        for i in range(50):
            upload_stub = svc_grpc.InvoiceServiceStub(channels[i % 5])
            futures.append(upload_stub.UploadAttachment.future(stalled(company, inv.id, release, f"{i}.pdf")))
        wait_for(lambda: staged(db, company) == 50, what="50 uploads under way")
        started = time.monotonic()
        for _ in range(3):
            got = stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id), timeout=5)
            assert got.invoice.id == inv.id
            assert create(stub, company).id
            listed = list(stub.ListInvoices(svc.ListInvoicesRequest(company_id=company, page_size=10), timeout=5))
            assert sum(len(page.invoices) for page in listed) >= 2
        assert time.monotonic() - started < 5, "other RPCs were slowed down by idle uploads"
        assert staged(db, company) == 50  # the uploads are still open, and hold no connection
    finally:
        for future in futures:
            future.cancel()
        release.set()
        for ch in (*channels, other):
            ch.close()
    wait_for(lambda: stored_rows(db, company) == (0, 0), what="the cancelled uploads to be removed")


def test_an_idle_upload_is_abandoned_and_leaves_nothing(database_url, company, db):
    srv = ServerThread(database_url, upload_idle_seconds=1).start()
    release = threading.Event()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            inv = create(stub, company)
            started = time.monotonic()
            err = rpc_error(lambda: stub.UploadAttachment(stalled(company, inv.id, release)), grpc.StatusCode.ABORTED)
            assert "no upload data for 1 s" in (err.details() or "")
            assert time.monotonic() - started < 10
            wait_for(lambda: stored_rows(db, company) == (0, 0), what="the idle upload to be removed")

            def silent() -> Iterator[Any]:  # not even the metadata
                release.wait(120)
                yield from ()

            err = rpc_error(lambda: stub.UploadAttachment(silent()), grpc.StatusCode.ABORTED)
            assert "no upload data for 1 s" in (err.details() or "")
    finally:
        release.set()
        srv.stop()


def raw_upload(channel: grpc.Channel, frames: list[bytes]) -> svc.UploadAttachmentResponse:
    """Frames sent as they are, whether or not they parse as UploadAttachmentRequest."""
    call: Any = channel.stream_unary(
        UPLOAD, request_serializer=None, response_deserializer=svc.UploadAttachmentResponse.FromString
    )
    answer: svc.UploadAttachmentResponse = call(iter(frames), timeout=10)
    return answer


def test_undecodable_and_out_of_order_upload_messages_are_invalid_argument(channel, stub, company, db):
    inv = create(stub, company)
    meta = svc.UploadAttachmentRequest(
        metadata=svc.AttachmentUpload(company_id=company, invoice_id=inv.id, name="a.pdf")
    ).SerializeToString()
    garbage = b"\xff\xff\xff\xff"
    for frames in (
        [garbage],
        [meta, garbage],
        [meta, svc.UploadAttachmentRequest(chunk=b"ok").SerializeToString(), garbage],
    ):
        err = rpc_error(partial(raw_upload, channel, frames), INV)
        assert "request" in violations(err), err.details()
    chunk = svc.UploadAttachmentRequest(chunk=b"abc")
    second_meta = svc.UploadAttachmentRequest(
        metadata=svc.AttachmentUpload(company_id=company, invoice_id=inv.id, name="b.pdf")
    )
    sequences: list[list[svc.UploadAttachmentRequest]] = [
        [],  # an empty stream
        [chunk],  # a chunk before the metadata
        [chunk, *upload_requests(company, inv.id, b"abc")],
        [*upload_requests(company, inv.id, b"abc"), second_meta],  # metadata twice
        [*upload_requests(company, inv.id, b""), second_meta, chunk],
    ]
    for sequence in sequences:
        err = rpc_error(partial(stub.UploadAttachment, iter(sequence)), INV)
        assert "metadata" in violations(err), err.details()
    assert stored_rows(db, company) == (0, 0)


def test_an_upload_that_began_before_a_void_does_not_land_on_the_void_invoice(stub, company, db):
    inv = finalized(stub, company)
    release = threading.Event()
    future = stub.UploadAttachment.future(stalled(company, inv.id, release))
    try:
        wait_for(lambda: staged(db, company) == 1, what="the upload to start")
        stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=inv.id), timeout=10)
    finally:
        release.set()
    with pytest.raises(grpc.RpcError) as info:
        future.result(timeout=30)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "VOID" in (info.value.details() or "")
    wait_for(lambda: stored_rows(db, company) == (0, 0), what="the refused upload to be removed")
    listed = stub.ListAttachments(svc.ListAttachmentsRequest(company_id=company, invoice_id=inv.id))
    assert not listed.attachments


def test_a_download_racing_a_delete_fails_instead_of_ending_short(stub, company):
    data = os.urandom(MB) * 24
    inv = create(stub, company)
    att = upload(stub, company, inv.id, data, chunk=MB).attachment
    received = bytearray()
    stream = stub.DownloadAttachment(
        svc.DownloadAttachmentRequest(company_id=company, invoice_id=inv.id, attachment_id=att.id)
    )
    with pytest.raises(grpc.RpcError) as info:
        for i, msg in enumerate(stream):
            received += msg.chunk
            if i == 0:
                stub.DeleteAttachment(
                    svc.DeleteAttachmentRequest(company_id=company, invoice_id=inv.id, attachment_id=att.id)
                )
    # Either way it never ends OK with part of the file (or with other bytes).
    assert info.value.code() == grpc.StatusCode.ABORTED, info.value.details()
    assert len(received) < len(data) and bytes(received) == data[: len(received)]
    assert hashlib.sha256(data).hexdigest() == att.sha256


def test_open_streams_are_capped_per_company(database_url, company):
    srv = ServerThread(database_url, company_max_streams=3).start()
    release = threading.Event()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            stub = svc_grpc.InvoiceServiceStub(ch)
            push = push_grpc.PushOperationServiceStub(ch)
            inv = create(stub, company)
            watches = [push.WatchInvoiceEvents(push_svc.WatchInvoiceEventsRequest(company_id=company))
                       for _ in range(2)]  # fmt: skip
            upload_future = stub.UploadAttachment.future(stalled(company, inv.id, release))
            listing = svc.ListInvoicesRequest(company_id=company)

            def refused() -> bool:
                try:
                    list(stub.ListInvoices(listing, timeout=5))
                    return False
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
                    return True

            wait_for(refused, what="the fourth stream to be refused")
            err = rpc_error(lambda: list(stub.ListInvoices(listing, timeout=5)), grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert "COMPANY_MAX_STREAMS" in (err.details() or "")
            quota = error_details_pb2.QuotaFailure()
            assert any(d.Unpack(quota) for d in rich_status(err).details if d.Is(quota.DESCRIPTOR))
            assert quota.violations[0].subject == f"companies/{company}/streams"
            err = rpc_error(
                lambda: stub.UploadAttachment(iter(upload_requests(company, inv.id, b"x"))),
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
            # Other companies, and unary calls, are not affected.
            assert list(stub.ListInvoices(svc.ListInvoicesRequest(company_id=company + "-other"), timeout=5))
            assert stub.GetInvoice(svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id), timeout=5).invoice.id
            watches[0].cancel()
            wait_for(lambda: not refused(), what="a freed stream slot")
            for w in watches[1:]:
                w.cancel()
            upload_future.cancel()
    finally:
        release.set()
        srv.stop()


def test_streams_per_connection_are_capped(database_url, company):
    srv = ServerThread(database_url, max_streams_per_connection=4, company_max_streams=100).start()
    try:
        with (
            grpc.insecure_channel(srv.address, options=OWN_CONNECTION) as busy,
            grpc.insecure_channel(srv.address, options=OWN_CONNECTION) as free,
        ):
            push = push_grpc.PushOperationServiceStub(busy)
            watches = [push.WatchInvoiceEvents(push_svc.WatchInvoiceEventsRequest(company_id=company))
                       for _ in range(4)]  # fmt: skip
            inv = create(svc_grpc.InvoiceServiceStub(free), company)
            time.sleep(0.5)
            request = svc.GetInvoiceRequest(company_id=company, invoice_id=inv.id)
            # The fifth stream on the busy connection waits for a slot; another connection is served.
            rpc_error(
                lambda: svc_grpc.InvoiceServiceStub(busy).GetInvoice(request, timeout=1.5),
                grpc.StatusCode.DEADLINE_EXCEEDED,
            )
            assert svc_grpc.InvoiceServiceStub(free).GetInvoice(request, timeout=5).invoice.id == inv.id
            watches[0].cancel()
            assert svc_grpc.InvoiceServiceStub(busy).GetInvoice(request, timeout=5).invoice.id == inv.id
            for w in watches[1:]:
                w.cancel()
    finally:
        srv.stop()


FRAME = st.one_of(
    st.sampled_from(["meta", "meta-void", "meta-missing", "meta-bad-name"]),
    st.binary(max_size=40).map(lambda b: ("chunk", b)),
    st.sampled_from([b"\xff\xff\xff", b"\x0a\x05\x0a", b"\x12", b"\x08\x80"]).map(lambda b: ("raw", b)),
)
UPLOAD_CODES = {
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
}  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_invoices(server: ServerThread) -> dict[str, str]:
    with grpc.insecure_channel(server.address) as ch:
        stub = svc_grpc.InvoiceServiceStub(ch)
        company = "upload-fuzz"
        void = finalized(stub, company)
        stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=void.id))
        return {"company": company, "open": create(stub, company).id, "void": void.id}


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(frames=st.lists(FRAME, max_size=6))
def test_any_upload_frame_sequence_gets_a_clear_status_and_stores_all_or_nothing(channel, db, fuzz_invoices, frames):
    company = fuzz_invoices["company"]
    meta = {
        "meta": svc.AttachmentUpload(company_id=company, invoice_id=fuzz_invoices["open"], name="f.pdf"),
        "meta-void": svc.AttachmentUpload(company_id=company, invoice_id=fuzz_invoices["void"], name="f.pdf"),
        "meta-missing": svc.AttachmentUpload(company_id=company, invoice_id="no-such-invoice", name="f.pdf"),
        "meta-bad-name": svc.AttachmentUpload(company_id=company, invoice_id=fuzz_invoices["open"], name="../x.exe"),
    }
    raw: list[bytes] = []
    for frame in frames:
        if isinstance(frame, str):
            raw.append(svc.UploadAttachmentRequest(metadata=meta[frame]).SerializeToString())
        elif frame[0] == "chunk":
            raw.append(svc.UploadAttachmentRequest(chunk=frame[1]).SerializeToString())
        else:
            raw.append(frame[1])
    before = stored_rows(db, company)
    try:
        answer = raw_upload(channel, raw)
        code = grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()
    assert code in UPLOAD_CODES, (frames, code)
    wait_for(lambda: staged(db, company) == 0, what="staged pieces to be removed")
    after = stored_rows(db, company)
    if code == grpc.StatusCode.OK:
        assert after[0] == before[0] + 1
        data = b"".join(svc.UploadAttachmentRequest.FromString(f).chunk for f in raw[1:])
        assert answer.attachment.file_size == len(data)
        assert answer.attachment.sha256 == hashlib.sha256(data).hexdigest()
    else:
        assert after == before
