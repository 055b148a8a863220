"""What every InvoiceService call passes through before its servicer method, and after.

- Bytes that do not decode as the request message become INVALID_ARGUMENT (not UNKNOWN).
- Strings with NUL characters (PostgreSQL text cannot hold them) and non-finite numbers in Struct values
  are refused with a field violation naming where they are, whatever the field.
- A refused write leaves a FAILED push operation, whichever layer refused it. A method is a write when
  its request takes a request_id and its response carries a push_operation: the schema says so.
- Writes honour AIP-155 request ids (or `idempotency-key` metadata), and run asynchronously when asked
  (`prefer: respond-async` metadata) or when a batch is over the threshold: a PENDING operation answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError, Message

from service.domain.errors import DomainError, FieldViolation, InvalidArgument, NotFound, Violations
from service.domain.push import AsyncRun, PushOperation, PushStatus
from service.handlers.auth import check_company
from service.handlers.idempotency import Idempotency
from service.handlers.invoices import MAX_BATCH, MAX_BATCH_ITEMS
from service.handlers.streams import StreamQuota
from service.handlers.writes import require_company, utcnow
from service.store.invoices import new_id
from service.transport.convert import push_out
from service.transport.errors import to_status

MAX_VIOLATIONS = 50


class RecordRefusal(Protocol):
    async def __call__(
        self, company_id: str, operation: str, data_type: str, exc: DomainError, *, run: AsyncRun | None = None
    ) -> None: ...


class Undecodable:
    """Stands in for a request whose bytes did not parse, so the refusal happens with a status."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def deserializer(message_class: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return message_class.FromString(data)
        except (DecodeError, RecursionError, ValueError) as exc:
            return Undecodable(str(exc)[:200] or type(exc).__name__)

    return parse


def is_write(method: MethodDescriptor) -> bool:
    """Writes take an AIP-155 request_id and answer with the push operation they left."""
    return "request_id" in method.input_type.fields_by_name and "push_operation" in method.output_type.fields_by_name


def scan(message: Message, path: str = "", out: list[FieldViolation] | None = None) -> list[FieldViolation]:
    """NUL characters in any string or map key, non-finite doubles anywhere; at most MAX_VIOLATIONS."""
    found: list[FieldViolation] = [] if out is None else out
    for field, value in message.ListFields():
        if len(found) >= MAX_VIOLATIONS:
            break
        name = f"{path}.{field.name}" if path else field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                at = f"{name}[{key[:40]!r}]"
                if isinstance(key, str) and "\x00" in key:
                    found.append(FieldViolation(at, "keys must not contain NUL characters"))
                _scan_value(value_field, item, at, found)
        elif field.is_repeated:
            for i, item in enumerate(value):
                _scan_value(field, item, f"{name}[{i}]", found)
        else:
            _scan_value(field, value, name, found)
    return found


def _scan_value(field: FieldDescriptor, value: Any, at: str, found: list[FieldViolation]) -> None:
    if field.type == FieldDescriptor.TYPE_STRING:
        if "\x00" in value:
            found.append(FieldViolation(at, "must not contain NUL characters"))
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        scan(value, at, found)
    elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT) and not math.isfinite(value):
        found.append(FieldViolation(at, "must be a finite number"))


@dataclass(frozen=True, slots=True)
class WriteServices:
    """What the guard needs for writes: refusals on record, idempotency, and the asynchronous queue."""

    record_refusal: RecordRefusal
    idempotency: Idempotency
    enqueue: Callable[[PushOperation, bytes], Awaitable[None]]
    async_batch_threshold: int
    timeout_minutes: int
    streams: StreamQuota | None = None  # per-company cap on open server-streaming calls


class ReplayedStatus(Exception):
    """The stored refusal of a first call, answered again to a retry with the same request_id."""

    def __init__(self, status: bytes) -> None:
        super().__init__("replayed")
        self.status = status


def _metadata(context: Any, key: str) -> str:
    if context is None:
        return ""
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return str(v)
    return ""


def _wants_async(method: MethodDescriptor, request: Any, context: Any, threshold: int, run: AsyncRun | None) -> bool:
    if run is not None:
        return False  # a worker is applying it now
    if "respond-async" in _metadata(context, "prefer"):
        return True
    return method.name.startswith("Batch") and len(request.requests) > threshold


def _batch(request: Any) -> bool:
    return hasattr(request, "requests")


def guarded(
    method: MethodDescriptor, fn: Callable[..., Any], services: WriteServices, preserialized: bool = False
) -> Callable[..., Any]:
    """Wraps a unary-request servicer method (unary or server-streaming response). `preserialized`: the
    method answers with its response message's bytes, and so must the guard's own answers."""
    write = is_write(method)
    has_company = "company_id" in method.input_type.fields_by_name
    data_type = "customerCreditBalances" if method.name == "AddCustomerCredit" else "invoices"
    response_class = message_factory.GetMessageClass(method.output_type)

    def check(request: Any) -> None:
        if isinstance(request, Undecodable):
            raise InvalidArgument(
                [FieldViolation("request", f"is not a valid {method.input_type.full_name}: {request.reason}")]
            )
        if has_company:
            request.company_id = check_company(request.company_id)  # the key's company, or NOT_FOUND
        violations = scan(request)
        if violations:
            raise InvalidArgument(violations)

    async def refuse(request: Any, exc: DomainError, run: AsyncRun | None) -> None:
        if (
            write
            and not exc.push_operation_key
            and not isinstance(exc, NotFound)
            and not isinstance(request, Undecodable)
        ):
            company = getattr(request, "company_id", "")
            await services.record_refusal(company, method.name, data_type, exc, run=run)

    async def submit(request: Any) -> Any:
        """Accepts the write as a PENDING operation; a worker applies it. Batch limits are checked now,
        since they cost nothing; everything else is checked when the operation is applied."""
        require_company(request.company_id)
        v = Violations()
        if _batch(request) and len(request.requests) > MAX_BATCH:
            v.add("requests", f"at most {MAX_BATCH} invoices per call; got {len(request.requests)}")
        if method.name == "BatchCreateInvoices":
            items = sum(len(r.invoice.line_items) for r in request.requests)
            if items > MAX_BATCH_ITEMS:
                v.add("requests", f"at most {MAX_BATCH_ITEMS} line items per call; got {items}")
        v.raise_if_any()
        now = utcnow()
        op = PushOperation(
            key=new_id(), company_id=request.company_id, operation=method.name, status=PushStatus.PENDING,
            status_code=202, requested_on_utc=now, data_type=data_type, timeout_in_minutes=services.timeout_minutes,
        )  # fmt: skip
        await services.enqueue(op, request.SerializeToString())
        accepted = response_class(push_operation=push_out(op))
        return accepted.SerializeToString() if preserialized else accepted

    if method.server_streaming:

        async def stream(request: Any, context: Any) -> Any:
            check(request)
            company = request.company_id if has_company else ""
            quota = services.streams.hold(company) if services.streams and company else contextlib.nullcontext()
            # A plain (not async) context manager: nothing to await, and a stream closed by the event loop's
            # generator finalizer cannot trip over a nested async generator here.
            with quota:
                async for item in fn(request, context):
                    yield item

        return stream

    async def plain(request: Any, context: Any, run: AsyncRun | None = None) -> Any:
        try:
            check(request)
            if write and _wants_async(method, request, context, services.async_batch_threshold, run):
                return await submit(request)
            return await (fn(request, context, run=run) if write else fn(request, context))
        except DomainError as exc:
            await refuse(request, exc, run)
            raise

    if not write:
        return plain

    async def idempotent(request: Any, context: Any, run: AsyncRun | None = None) -> Any:
        key = "" if isinstance(request, Undecodable) or run else (
            request.request_id or _metadata(context, "idempotency-key")
        )  # fmt: skip
        if not key:
            return await plain(request, context, run)
        try:
            # The key space is the caller's company: resolve it (the API key's, or NOT_FOUND for another
            # company's) before any key is read or written.
            check(request)
            company = request.company_id
            require_company(company)
        except DomainError as exc:
            await refuse(request, exc, run)
            raise
        body = type(request)()
        body.CopyFrom(request)
        body.request_id = ""
        try:
            replay = await services.idempotency.begin(
                company, key, method.name, body.SerializeToString(deterministic=True)
            )
        except DomainError as exc:
            await refuse(request, exc, run)
            raise
        if replay is not None:
            if replay.response is not None:
                return replay.response if preserialized else response_class.FromString(replay.response)
            raise ReplayedStatus(replay.status or b"")
        try:
            result = await plain(request, context)
        except DomainError as exc:
            await services.idempotency.finish(company, key, None, to_status(exc).SerializeToString())
            raise
        except BaseException:
            await asyncio.shield(services.idempotency.release(company, key))
            raise
        answer = result if isinstance(result, bytes) else result.SerializeToString()
        await services.idempotency.finish(company, key, answer, None)
        return result

    return idempotent
