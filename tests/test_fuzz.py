"""Fuzzing every RPC from its descriptor: generated messages (random fields, extreme numbers, Unicode, NUL,
huge repeated fields, unknown enum values) never get UNKNOWN or INTERNAL, the server stays up, and the
database invariants hold afterwards. A fixed seed runs in `make test`; `make fuzz` runs longer
(FUZZ_EXAMPLES examples per RPC, random seeds)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from invoices.v1 import invoice_service_pb2 as svc
from invoices.v1 import push_operation_service_pb2 as ps

from service.transport.policy import is_write
from tests.helpers import create, finalized, invoice

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
DERANDOMIZE = "FUZZ_EXAMPLES" not in os.environ  # fixed seed in `make test`
ALLOWED = {
    getattr(grpc.StatusCode, name)
    for name in ("OK", "INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "ALREADY_EXISTS", "ABORTED",
                 "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "OUT_OF_RANGE")
}  # fmt: skip
COMPANY = "fuzz-co"
SPECIAL_TEXT = [
    "", "\x00", "a\x00b", "😀" * 300, "x" * 5000, "'; DROP TABLE invoices; --", "NaN", "Infinity", "-0", "1e309",
    "99999999999999999999.999999999", "0.0000000001", "-1", "0001-01-01", "9999-12-31T23:59:59-01:00",
    "2024-02-30", "\u202e\ufeff", "INV-000001", "status = paid", "(((((", "%_\\", COMPANY,
]  # fmt: skip
IDS: dict[str, list[str]] = {"invoice": [], "line": [], "op": [], "attachment": []}
SERVICES = [svc.DESCRIPTOR.services_by_name["InvoiceService"], ps.DESCRIPTOR.services_by_name["PushOperationService"]]
METHODS = [m for s in SERVICES for m in s.methods]


def _text(field: FieldDescriptor) -> st.SearchStrategy[str]:
    base = st.one_of(st.text(max_size=40), st.sampled_from(SPECIAL_TEXT))
    name = field.name
    if name == "company_id":
        return st.one_of(st.just(COMPANY), st.just(COMPANY), base)
    if name in ("invoice_id", "line_item_id", "push_operation_key", "attachment_id"):
        kind = {
            "invoice_id": "invoice",
            "line_item_id": "line",
            "push_operation_key": "op",
            "attachment_id": "attachment",
        }
        return st.one_of(st.sampled_from(IDS[kind[name]] or [""]), base)
    if any(k in name for k in ("amount", "total", "quantity", "rate", "percentage")):
        return st.one_of(st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str), base)
    return base


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return _text(field)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=300)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, -1, 1, 2**63 - 1, -(2**63)]))
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == FieldDescriptor.TYPE_FLOAT else 64)
    return st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 5000, 5001, 2**31 - 1]))


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0) -> Message:
    message = GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if not draw(st.booleans()):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field, value_field = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            entries = draw(st.dictionaries(_scalar(key_field), _scalar(value_field) if value_field.message_type is None
                                           else st.nothing(), max_size=4))  # fmt: skip
            getattr(message, field.name).update(entries)
            continue
        if field.message_type is not None:
            if depth >= 3 or field.message_type.full_name == "google.protobuf.Struct":
                continue
            if field.is_repeated:
                count = draw(st.sampled_from([0, 1, 2, 3, 60]))
                for _ in range(count):
                    getattr(message, field.name).add().CopyFrom(draw(messages(field.message_type, depth + 1)))
            else:
                getattr(message, field.name).CopyFrom(draw(messages(field.message_type, depth + 1)))
            continue
        if field.is_repeated:
            getattr(message, field.name).extend(
                draw(st.lists(_scalar(field), max_size=draw(st.sampled_from([3, 300]))))
            )
        else:
            setattr(message, field.name, draw(_scalar(field)))
    return message


def _raw(data: bytes) -> bytes:
    return data


def _serialize(message: Any) -> bytes:
    return bytes(message.SerializeToString())


def call(channel: grpc.Channel, service: str, method: MethodDescriptor, request: Any) -> grpc.StatusCode:
    path = f"/{service}/{method.name}"
    try:
        if method.client_streaming:
            channel.stream_unary(path, request_serializer=_serialize, response_deserializer=_raw)(
                iter(request), timeout=5
            )
        elif method.server_streaming:
            stream = channel.unary_stream(path, request_serializer=_serialize, response_deserializer=_raw)(
                request, timeout=0.5
            )
            for i, _ in enumerate(stream):
                if i >= 3:
                    stream.cancel()
                    break
        else:
            channel.unary_unary(path, request_serializer=_serialize, response_deserializer=_raw)(request, timeout=5)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def seeded(stub: Any) -> None:
    """Real ids for the generators to aim at: a draft, a finalized invoice, a line, an operation."""
    for inv in (create(stub, COMPANY), finalized(stub, COMPANY, invoice())):
        IDS["invoice"].append(inv.id)
        IDS["line"].extend(line.id for line in inv.line_items)
    resp = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=COMPANY, invoice=invoice()))
    IDS["op"].append(resp.push_operation.push_operation_key)


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_generated_requests_never_get_unknown_or_internal(channel, seeded, method, db):
    service = method.containing_service.full_name
    if method.client_streaming:
        strategy: st.SearchStrategy[Any] = st.lists(messages(method.input_type), min_size=0, max_size=4)
    else:
        strategy = messages(method.input_type)

    @settings(max_examples=EXAMPLES, derandomize=DERANDOMIZE, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(request=strategy)
    def run(request: Any) -> None:
        code = call(channel, service, method, request)
        assert code in ALLOWED, f"{method.name} answered {code} to {request!r}"[:2000]

    run()
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert_invariants(db)


def assert_invariants(db: Any) -> None:
    """PRODUCT section 5, read straight from PostgreSQL for the fuzzed company."""
    bad = db.fetch(
        "SELECT i.id FROM invoices i WHERE i.company_id = $1 AND ("
        " (i.status = 'VOID' AND i.amount_due <> 0)"
        " OR (i.status <> 'VOID' AND (i.amount_due < 0 OR i.amount_due > i.total_amount"
        "   OR i.amount_due <> i.total_amount"
        "      - (SELECT coalesce(sum(applied_amount), 0) FROM payment_allocations p WHERE p.invoice_id = i.id)"
        "      - (SELECT coalesce(sum(total_amount), 0) FROM credit_memos c WHERE c.invoice_id = i.id))))",
        COMPANY,
    )
    assert bad == []
    assert db.fetch("SELECT count(*) AS n FROM customer_credit_balances WHERE balance < 0")[0]["n"] == 0
    dupes = db.fetch("SELECT invoice_number FROM invoices WHERE company_id = $1 AND invoice_number IS NOT NULL "
                     "GROUP BY invoice_number HAVING count(*) > 1", COMPANY)  # fmt: skip
    assert dupes == []


# -- raw frames, hostile upload sequences, and writes that fail must not have committed ----------------

UNDECODABLE = {
    "overlong varint": b"\xff" * 11,
    "truncated length-delimited": b"\x0a\x05ab",
    "invalid wire type": b"\x0f",
    "unterminated group": b"\x0b",
}


def _raw_call(channel: grpc.Channel, method: MethodDescriptor, frames: list[bytes]) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if method.client_streaming:
            channel.stream_unary(path, request_serializer=_raw, response_deserializer=_raw)(iter(frames), timeout=5)
        elif method.server_streaming:
            list(channel.unary_stream(path, request_serializer=_raw, response_deserializer=_raw)(frames[0], timeout=5))
        else:
            channel.unary_unary(path, request_serializer=_raw, response_deserializer=_raw)(frames[0], timeout=5)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", METHODS, ids=[m.name for m in METHODS])
def test_undecodable_frames_are_invalid_argument_on_every_rpc(channel, seeded, method):
    for name, frame in UNDECODABLE.items():
        sequences = [[frame]]
        if method.client_streaming:  # also after a valid first message
            first = svc.UploadAttachmentRequest(metadata=svc.AttachmentUpload(
                company_id=COMPANY, invoice_id=IDS["invoice"][0], name="a.txt"))  # fmt: skip
            sequences.append([first.SerializeToString(), frame])
        for frames in sequences:
            code = _raw_call(channel, method, frames)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{method.name}, {name} ({len(frames)} frames): {code}"
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def _upload(**kw: Any) -> svc.UploadAttachmentRequest:
    kw.setdefault("company_id", COMPANY)
    kw.setdefault("name", "notes.txt")
    return svc.UploadAttachmentRequest(metadata=svc.AttachmentUpload(**kw))


def test_hostile_upload_sequences_get_clear_statuses_and_store_nothing(channel, seeded, db):
    inv = IDS["invoice"][0]
    chunk = svc.UploadAttachmentRequest(chunk=b"data")
    sequences: dict[str, list[svc.UploadAttachmentRequest]] = {
        "empty stream": [],
        "chunk first": [chunk, _upload(invoice_id=inv)],
        "metadata twice": [_upload(invoice_id=inv), chunk, _upload(invoice_id=inv)],
        "unknown invoice": [_upload(invoice_id="00000000-0000-0000-0000-000000000000"), chunk],
        "another company": [_upload(company_id="someone-else", invoice_id=inv), chunk],
        "no name": [_upload(invoice_id=inv, name=""), chunk],
        "bad extension": [_upload(invoice_id=inv, name="x.exe"), chunk],
        "path in name": [_upload(invoice_id=inv, name="../../etc/passwd.txt"), chunk],
        "metadata after chunks": [_upload(invoice_id=inv), chunk, chunk, _upload(invoice_id=inv, name="b.txt")],
    }
    before = db.fetch("SELECT count(*) AS n FROM attachments WHERE company_id = $1", COMPANY)[0]["n"]
    stub = channel.stream_unary(
        "/invoices.v1.InvoiceService/UploadAttachment", request_serializer=_serialize, response_deserializer=_raw
    )
    for name, sequence in sequences.items():
        try:
            stub(iter(sequence), timeout=5)
            code = grpc.StatusCode.OK
        except grpc.RpcError as err:
            code = err.code()
        assert code in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}, f"{name}: {code}"
    after = db.fetch("SELECT count(*) AS n FROM attachments WHERE company_id = $1", COMPANY)[0]["n"]
    assert after == before
    assert db.fetch("SELECT count(*) AS n FROM attachment_chunks c WHERE NOT EXISTS "
                    "(SELECT 1 FROM attachments a WHERE a.id = c.attachment_id)")[0]["n"] == 0  # fmt: skip


class Ledger:
    """One connection kept open: a digest of everything a company's writes can change, except refusals'
    own FAILED push operations. A write answered with an error must leave it as it was."""

    SQL = (
        "SELECT (SELECT count(*) FROM push_operations WHERE company_id = $1 AND status = 'PENDING') AS pending, md5("
        " coalesce((SELECT string_agg(t::text, '|' ORDER BY t.id) FROM invoices t WHERE company_id = $1), '')"
        " || coalesce((SELECT string_agg(t::text, '|' ORDER BY t::text) FROM line_items t JOIN invoices i"
        "    ON i.id = t.invoice_id WHERE i.company_id = $1), '')"
        " || coalesce((SELECT string_agg(t::text, '|' ORDER BY t::text) FROM payment_allocations t JOIN invoices i"
        "    ON i.id = t.invoice_id WHERE i.company_id = $1), '')"
        " || coalesce((SELECT string_agg(t::text, '|' ORDER BY t::text) FROM customer_credit_balances t"
        "    WHERE company_id = $1), '')"
        " || (SELECT count(*) FROM attachments WHERE company_id = $1)::text"
        " || (SELECT count(*) FROM push_operations WHERE company_id = $1 AND status <> 'FAILED')::text"
        ") AS digest"
    )

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.conn = self.loop.run_until_complete(asyncpg.connect(url))

    def digest(self) -> str:
        """Waits for asynchronous writes in flight (a worker may apply them at any moment) to settle."""
        for _ in range(100):
            row = self.loop.run_until_complete(self.conn.fetchrow(self.SQL, COMPANY))
            if row["pending"] == 0:
                return str(row["digest"])
            time.sleep(0.05)
        raise AssertionError("pending operations never settled")

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


WRITES = [m for m in METHODS if is_write(m) or m.name == "UploadAttachment"]


@pytest.mark.parametrize("method", WRITES, ids=[m.name for m in WRITES])
def test_a_write_answered_with_an_error_changed_nothing(channel, seeded, method, database_url):
    service = method.containing_service.full_name
    strategy: st.SearchStrategy[Any] = (
        st.lists(messages(method.input_type), max_size=4) if method.client_streaming else messages(method.input_type)
    )
    ledger = Ledger(database_url)

    @settings(max_examples=max(EXAMPLES // 2, 5), derandomize=DERANDOMIZE, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(request=strategy)
    def run(request: Any) -> None:
        before = ledger.digest()
        code = call(channel, service, method, request)
        if code not in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
            assert ledger.digest() == before, f"{method.name} answered {code} after changing data: {request!r}"[:2000]

    try:
        run()
    finally:
        ledger.close()
