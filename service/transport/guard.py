"""What every InvoiceService call passes through before its servicer method, and after.

- Bytes that do not decode as the request message become INVALID_ARGUMENT (not UNKNOWN).
- Strings with NUL characters (PostgreSQL text cannot hold them) and non-finite numbers in Struct values
  are refused with a field violation naming where they are, whatever the field.
- The company a call names is the caller's (its API key's), or NOT_FOUND.
- A refused write leaves a FAILED push operation, whichever layer refused it. What a method is (write,
  idempotent, asynchronous, batch limits) is its entry in the policy table (policy.py).
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
from service.domain.ids import new_id
from service.domain.push import AsyncRun, PushOperation, PushStatus
from service.handlers.idempotency import Idempotency
from service.handlers.streams import StreamQuota
from service.handlers.writes import require_company, utcnow
from service.transport.auth import Callers
from service.transport.convert import push_out
from service.transport.errors import to_status
from service.transport.policy import Policy, policy_of
from service.transport.requests import metadata

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
class GuardServices:
    """What the guard needs: the caller's company, and for writes refusals on record, idempotency and the
    asynchronous queue."""

    callers: Callers
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


def _wants_async(policy: Policy, request: Any, context: Any, threshold: int, run: AsyncRun | None) -> bool:
    if run is not None:
        return False  # a worker is applying it now
    if "respond-async" in metadata(context, "prefer"):
        return True
    size = policy.batch_size(request)
    return size is not None and size > threshold


def guarded(method: MethodDescriptor, fn: Callable[..., Any], services: GuardServices) -> Callable[..., Any]:
    """Wraps a unary-request servicer method (unary or server-streaming response)."""
    policy = policy_of(method)
    write = policy.idempotent  # the writes the guard sees (an upload, client-streamed, has its own path)
    response_class = message_factory.GetMessageClass(method.output_type)

    async def check(request: Any, context: Any) -> None:
        if isinstance(request, Undecodable):
            raise InvalidArgument(
                [FieldViolation("request", f"is not a valid {method.input_type.full_name}: {request.reason}")]
            )
        if policy.has_company:  # the key's company, or NOT_FOUND
            request.company_id = await services.callers.company(context, request.company_id)
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
            await services.record_refusal(company, method.name, policy.data_type, exc, run=run)

    async def submit(request: Any) -> Any:
        """Accepts the write as a PENDING operation; a worker applies it. Batch limits are checked now,
        since they cost nothing; everything else is checked when the operation is applied."""
        require_company(request.company_id)
        v = Violations()
        size = policy.batch_size(request)
        if size is not None and policy.max_batch is not None and size > policy.max_batch:
            v.add("requests", f"at most {policy.max_batch} invoices per call; got {size}")
        if policy.max_batch_line_items is not None:
            items = sum(len(r.invoice.line_items) for r in request.requests)
            if items > policy.max_batch_line_items:
                v.add("requests", f"at most {policy.max_batch_line_items} line items per call; got {items}")
        v.raise_if_any()
        now = utcnow()
        op = PushOperation(
            key=new_id(),
            company_id=request.company_id,
            operation=method.name,
            status=PushStatus.PENDING,
            status_code=202,
            requested_on_utc=now,
            data_type=policy.data_type,
            timeout_in_minutes=services.timeout_minutes,
        )
        await services.enqueue(op, request.SerializeToString())
        return response_class(push_operation=push_out(op))

    if method.server_streaming:

        async def stream(request: Any, context: Any) -> Any:
            await check(request, context)
            company = request.company_id if policy.has_company else ""
            quota = services.streams.hold(company) if services.streams and company else contextlib.nullcontext()
            # A plain (not async) context manager: nothing to await, and a stream closed by the event loop's
            # generator finalizer cannot trip over a nested async generator here.
            with quota:
                async for item in fn(request, context):
                    yield item

        return stream

    async def plain(request: Any, context: Any, run: AsyncRun | None = None) -> Any:
        try:
            await check(request, context)
            if policy.async_capable and _wants_async(policy, request, context, services.async_batch_threshold, run):
                return await submit(request)
            # A write learns explicitly whether a worker applies it (and completes that operation).
            return await (fn(request, context, run=run) if write else fn(request, context))
        except DomainError as exc:
            await refuse(request, exc, run)
            raise

    if not write:
        return plain

    async def idempotent(request: Any, context: Any, run: AsyncRun | None = None) -> Any:
        keyless = isinstance(request, Undecodable) or run is not None  # a worker applies it
        key = "" if keyless else (request.request_id or metadata(context, "idempotency-key"))
        if not key:
            return await plain(request, context, run)
        try:
            # The key space is the caller's company: resolve it (the API key's, or NOT_FOUND for another
            # company's) before any key is read or written.
            await check(request, context)
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
                return response_class.FromString(replay.response)
            raise ReplayedStatus(replay.status or b"")
        try:
            result = await plain(request, context)
        except DomainError as exc:
            await services.idempotency.finish(company, key, None, to_status(exc).SerializeToString())
            raise
        except BaseException:
            await asyncio.shield(services.idempotency.release(company, key))
            raise
        await services.idempotency.finish(company, key, result.SerializeToString(), None)
        return result

    return idempotent
