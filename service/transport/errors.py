"""The one place where errors become gRPC statuses (AIP-193 rich errors).

| raised                          | status              |
|---------------------------------|---------------------|
| InvalidArgument                 | INVALID_ARGUMENT + google.rpc.BadRequest |
| FailedPrecondition              | FAILED_PRECONDITION + google.rpc.PreconditionFailure |
| NotFound                        | NOT_FOUND + google.rpc.ResourceInfo |
| AlreadyExists                   | ALREADY_EXISTS |
| LimitExceeded (size, count)     | RESOURCE_EXHAUSTED + google.rpc.QuotaFailure |
| OutOfRange (purged feed cursor) | OUT_OF_RANGE + google.rpc.BadRequest |
| Unavailable (SMTP)              | UNAVAILABLE |
| Unauthenticated (no or bad key) | UNAUTHENTICATED |
| PermissionDenied (read-only key)| PERMISSION_DENIED |
| Aborted, deadlock, serialization| ABORTED (retry) |
| database unreachable            | UNAVAILABLE |
| statement cancelled by deadline | DEADLINE_EXCEEDED |
| anything else                   | INTERNAL, logged with its traceback, never sent |
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service.domain.attachments import LimitExceeded
from service.domain.errors import (
    Aborted,
    AlreadyExists,
    Contention,
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    Unavailable,
)
from service.handlers.auth import PermissionDenied, Unauthenticated
from service.transport.interceptors import Call, WrappingInterceptor

log = logging.getLogger(__name__)
DOMAIN = "invoices.v1"
MAX_DETAILED = 20
MAX_MESSAGE = 1000


def _pack(*details: Any) -> list[any_pb2.Any]:
    out = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)
        out.append(a)
    return out


def _info(reason: str, exc: DomainError) -> error_details_pb2.ErrorInfo:
    meta = {"pushOperationKey": exc.push_operation_key} if exc.push_operation_key else {}
    return error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=meta)


def to_status(exc: BaseException) -> status_pb2.Status:
    """A rich google.rpc.Status for any exception a handler can raise."""
    replayed = getattr(exc, "status", None)
    if type(exc).__name__ == "ReplayedStatus" and isinstance(replayed, bytes):
        return status_pb2.Status.FromString(replayed)  # the first call's refusal, answered again
    if isinstance(exc, InvalidArgument):
        # Trailers are capped (16 KB by default in clients): send the first violations and a count.
        first = exc.violations[:MAX_DETAILED]
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field[:200], description=v.description[:300])
                for v in first
            ]
        )
        if len(exc.violations) > len(first):
            bad.field_violations.add(description=f"{len(exc.violations) - len(first)} more violations not shown")
        return status_pb2.Status(
            code=code_pb2.INVALID_ARGUMENT,
            message=exc.message[:MAX_MESSAGE],
            details=_pack(bad, _info("INVALID_ARGUMENT", exc)),
        )
    if isinstance(exc, FailedPrecondition):
        shown = exc.violations[:MAX_DETAILED]
        pre = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type=v.type[:100], subject=v.subject[:200], description=v.description[:MAX_MESSAGE]
                )
                for v in shown
            ]
        )
        if len(exc.violations) > len(shown):
            pre.violations.add(description=f"{len(exc.violations) - len(shown)} more violations not shown")
        return status_pb2.Status(
            code=code_pb2.FAILED_PRECONDITION,
            message=exc.message[:MAX_MESSAGE],
            details=_pack(pre, _info(exc.violation_type, exc)),
        )
    if isinstance(exc, NotFound):
        res = error_details_pb2.ResourceInfo(resource_type=exc.resource_type, resource_name=exc.name[:200])
        return status_pb2.Status(code=code_pb2.NOT_FOUND, message=exc.message[:300], details=_pack(res))
    if isinstance(exc, AlreadyExists):
        details = []
        if exc.field:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=exc.message)
                    ]
                )
            )
        return status_pb2.Status(
            code=code_pb2.ALREADY_EXISTS,
            message=exc.message[:MAX_MESSAGE],
            details=_pack(*details, _info("ALREADY_EXISTS", exc)),
        )
    if isinstance(exc, Unauthenticated):
        return status_pb2.Status(code=code_pb2.UNAUTHENTICATED, message=exc.message)
    if isinstance(exc, PermissionDenied):
        return status_pb2.Status(code=code_pb2.PERMISSION_DENIED, message=exc.message)
    if isinstance(exc, LimitExceeded):
        quota = error_details_pb2.QuotaFailure(
            violations=[error_details_pb2.QuotaFailure.Violation(subject=exc.subject, description=exc.message)]
        )
        return status_pb2.Status(
            code=code_pb2.RESOURCE_EXHAUSTED, message=exc.message, details=_pack(quota, _info("LIMIT_EXCEEDED", exc))
        )
    if isinstance(exc, OutOfRange):
        field = error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=exc.message)
        return status_pb2.Status(
            code=code_pb2.OUT_OF_RANGE,
            message=exc.message[:MAX_MESSAGE],
            details=_pack(error_details_pb2.BadRequest(field_violations=[field]), _info("OUT_OF_RANGE", exc)),
        )
    if isinstance(exc, Unavailable):
        log.warning("outside service unavailable: %s", exc)
        return status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(exc)[:MAX_MESSAGE])
    if isinstance(exc, Aborted):
        return status_pb2.Status(
            code=code_pb2.ABORTED, message=exc.message[:MAX_MESSAGE], details=_pack(_info("ETAG_MISMATCH", exc))
        )
    if isinstance(exc, Contention):
        return status_pb2.Status(code=code_pb2.ABORTED, message=str(exc)[:MAX_MESSAGE])
    if isinstance(exc, DeadlineExceeded):
        return status_pb2.Status(code=code_pb2.DEADLINE_EXCEEDED, message=str(exc)[:MAX_MESSAGE])
    if isinstance(exc, OSError):  # a connection lost outside the store's mapping
        log.warning("database unavailable: %s", exc)
        return status_pb2.Status(code=code_pb2.UNAVAILABLE, message="the database is unavailable; retry later")
    log.error("unexpected error", exc_info=exc)
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")


async def abort(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
    """Ends the call with `exc`'s rich status. Through `abort` (what abort_with_status does inside grpc), so a
    context wrapper that watches it (the tracing interceptor's) sees the code."""
    status = rpc_status.to_status(to_status(exc))
    await context.abort(status.code, status.details, status.trailing_metadata)


class ErrorMappingInterceptor(WrappingInterceptor):
    """Wraps every handler of every service so no exception leaks as UNKNOWN or a traceback."""

    async def exit(self, call: Call, entered: Any, error: BaseException | None) -> None:
        if isinstance(error, Exception) and not isinstance(error, grpc.aio.AbortError):
            await abort(call.context, error)
