"""Push operation queries: the record of every write, and the queue of asynchronous ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.domain.errors import FieldViolation
from service.domain.ids import parse_id
from service.domain.push import Change, ChangeType, PushOperation, PushStatus
from service.store.statement import Piece, render
from service.store.statement import insert as insert_rows

COLUMNS = (
    "push_operation_key, company_id, data_type, operation, status, status_code, error_message, validation, changes, "
    "requested_on_utc, completed_on_utc, timeout_in_minutes"
)
# An upper bound of an operation's size in an answer: its JSON columns are longer than their protobuf.
SIZE_ESTIMATE = "(octet_length(validation::text) + octet_length(changes::text) + octet_length(error_message) + 512)"
# Filterable and sortable fields of ListPushOperations -> columns (see service.domain.filtering).
FILTER_COLUMNS = {
    "push_operation_key": "push_operation_key",
    "status": "status",
    "operation": "operation",
    "data_type": "data_type",
    "status_code": "status_code",
    "error_message": "error_message",
    "requested_on_utc": "requested_on_utc",
    "completed_on_utc": "completed_on_utc",
}


def _items(violations: list[FieldViolation]) -> list[dict[str, str]]:
    return [{"itemId": v.field, "message": v.description, "validatorName": "invoices.v1"} for v in violations]


def _validation(op: PushOperation) -> dict[str, Any]:
    return {"errors": _items(op.errors), "warnings": _items(op.warnings)}


def _changes(op: PushOperation) -> list[dict[str, Any]]:
    return [
        {
            "type": c.type.value,
            "recordRef": {"id": c.record_id, "dataType": c.data_type},
            "attachmentId": c.attachment_id,
        }
        for c in op.changes
    ]


def _row(op: PushOperation, request: bytes | None) -> dict[str, Any]:
    return {
        "push_operation_key": op.key,
        "company_id": op.company_id,
        "data_type": op.data_type,
        "operation": op.operation,
        "status": op.status.value,
        "status_code": op.status_code,
        "error_message": op.error_message,
        "validation": _validation(op),
        "changes": _changes(op),
        "requested_on_utc": op.requested_on_utc,
        "completed_on_utc": op.completed_on_utc,
        "timeout_in_minutes": op.timeout_in_minutes,
        "request": request,
    }


def insert_piece(op: PushOperation, request: bytes | None = None) -> Piece:
    return insert_rows("push_operations", [_row(op, request)])


async def insert(conn: asyncpg.Connection, op: PushOperation, request: bytes | None = None) -> None:
    piece = render(insert_piece(op, request))
    await conn.execute(piece.sql, *piece.args)


LEASE = "lease"  # the check of complete_piece: the worker still held the operation's lease
_COMPLETE = (
    "UPDATE push_operations SET status = $2, status_code = $3, error_message = $4, validation = $5, changes = $6, "
    "completed_on_utc = $7, lease_owner = NULL, lease_until = NULL, "
    # A failed asynchronous write keeps its request, so an operator can requeue it.
    "request = CASE WHEN $2 = 'SUCCESS' THEN NULL ELSE request END "
    "WHERE company_id = $9 AND push_operation_key = $1 AND status = 'PENDING' AND lease_owner = $8 RETURNING 1"
)


def complete_piece(op: PushOperation, lease_owner: str) -> Piece:
    """Finishes a leased PENDING operation; checked as LEASE (no row: the lease was lost)."""
    args = (
        op.key,
        op.status.value,
        op.status_code,
        op.error_message,
        _validation(op),
        _changes(op),
        op.completed_on_utc,
        lease_owner,
        op.company_id,
    )
    return Piece(_COMPLETE, args, LEASE)


async def claim(conn: asyncpg.Connection, owner: str, lease: timedelta, now: datetime) -> asyncpg.Record | None:
    """Leases the oldest PENDING operation nobody holds. SKIP LOCKED lets every worker claim at once."""
    return await conn.fetchrow(
        """
        UPDATE push_operations p SET lease_owner = $1, lease_until = $2, attempts = p.attempts + 1
        FROM (
            SELECT company_id, push_operation_key FROM push_operations
            WHERE status = 'PENDING' AND (lease_until IS NULL OR lease_until < $3)
            ORDER BY requested_on_utc FOR UPDATE SKIP LOCKED LIMIT 1
        ) next
        WHERE p.company_id = next.company_id AND p.push_operation_key = next.push_operation_key
        RETURNING p.push_operation_key, p.company_id, p.operation, p.request, p.requested_on_utc, p.attempts
        """,
        owner,
        now + lease,
        now,
    )


async def time_out(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """PENDING operations past their timeout become TIMED_OUT (and will never be applied)."""
    return list(
        await conn.fetch(
            "UPDATE push_operations SET status = 'TIMED_OUT', status_code = 504, completed_on_utc = $1, "
            "error_message = 'not applied within its timeout', lease_owner = NULL, lease_until = NULL "
            "WHERE status = 'PENDING' AND requested_on_utc + timeout_in_minutes * interval '1 minute' < $1 "
            "AND (lease_until IS NULL OR lease_until < $1) RETURNING push_operation_key, company_id",
            now,
        )
    )


def _violations(items: list[dict[str, str]]) -> list[FieldViolation]:
    return [FieldViolation(i.get("itemId", ""), i.get("message", "")) for i in items]


def from_row(r: asyncpg.Record) -> PushOperation:
    return PushOperation(
        key=r["push_operation_key"],
        company_id=r["company_id"],
        operation=r["operation"],
        status=PushStatus(r["status"]),
        status_code=r["status_code"],
        requested_on_utc=r["requested_on_utc"],
        completed_on_utc=r["completed_on_utc"],
        data_type=r["data_type"],
        error_message=r["error_message"],
        errors=_violations(r["validation"].get("errors", [])),
        warnings=_violations(r["validation"].get("warnings", [])),
        changes=[
            Change(ChangeType(c["type"]), c["recordRef"]["id"], c["recordRef"]["dataType"], c.get("attachmentId", ""))
            for c in r["changes"]
        ],
        timeout_in_minutes=r["timeout_in_minutes"],
    )


async def get(conn: asyncpg.Connection, company_id: str, key: str) -> PushOperation | None:
    key_id = parse_id(key)
    if key_id is None:
        return None
    r = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM push_operations WHERE company_id = $1 AND push_operation_key = $2",  # noqa: S608
        company_id,
        key_id,
    )
    return from_row(r) if r else None


async def get_many(conn: asyncpg.Connection, company_id: str, keys: list[str]) -> dict[str, PushOperation]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM push_operations WHERE company_id = $1 AND push_operation_key = ANY($2::uuid[])",  # noqa: S608
        company_id,
        keys,
    )
    return {r["push_operation_key"]: from_row(r) for r in rows}


async def purge(conn: asyncpg.Connection, cutoff: datetime, batch: int) -> int:
    """Deletes up to `batch` finished operations completed before `cutoff` (PENDING ones are never purged).
    SKIP LOCKED: replicas purging at once take different rows and never wait on each other."""
    result = await conn.execute(
        "DELETE FROM push_operations WHERE (company_id, push_operation_key) IN ("
        "  SELECT company_id, push_operation_key FROM push_operations"
        "  WHERE status <> 'PENDING' AND completed_on_utc < $1"
        "  ORDER BY completed_on_utc LIMIT $2 FOR UPDATE SKIP LOCKED)",
        cutoff,
        batch,
    )
    return int(result.split()[-1])


# -- operator commands (python -m service push-operations ...) -------------------------------------


async def operator_list(conn: asyncpg.Connection, company_id: str, status: str, limit: int) -> list[asyncpg.Record]:
    """The newest operations, optionally of one company and one status, across companies."""
    return list(
        await conn.fetch(
            f"SELECT {COLUMNS}, attempts, request IS NOT NULL AS requeueable FROM push_operations "  # noqa: S608
            "WHERE ($1 = '' OR company_id = $1) AND ($2 = '' OR status = $2) "
            "ORDER BY requested_on_utc DESC LIMIT $3",
            company_id,
            status,
            limit,
        )
    )


async def operator_get(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    key_id = parse_id(key)
    if key_id is None:
        return None
    return await conn.fetchrow(
        f"SELECT {COLUMNS}, attempts, lease_owner, lease_until, request IS NOT NULL AS requeueable "  # noqa: S608
        "FROM push_operations WHERE push_operation_key = $1",
        key_id,
    )


async def requeue(conn: asyncpg.Connection, key: str, now: datetime) -> asyncpg.Record | None:
    """A FAILED or TIMED_OUT asynchronous operation back to PENDING, as if requested now (its timeout counts
    from now), in the caller's transaction. None when the operation is not one of those."""
    key_id = parse_id(key)
    if key_id is None:
        return None
    return await conn.fetchrow(
        "UPDATE push_operations SET status = 'PENDING', status_code = 202, error_message = '', validation = '{}', "
        "changes = '[]', requested_on_utc = $2, completed_on_utc = NULL, lease_owner = NULL, lease_until = NULL, "
        "attempts = 0 WHERE push_operation_key = $1 AND status IN ('FAILED', 'TIMED_OUT') AND request IS NOT NULL "
        "RETURNING push_operation_key, company_id",
        key_id,
        now,
    )
