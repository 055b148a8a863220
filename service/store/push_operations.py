"""Push operation queries: the record of every write, and the queue of asynchronous ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.domain.errors import FieldViolation
from service.domain.ids import parse_id
from service.domain.push import Change, ChangeType, PushOperation, PushStatus
from service.store.statement import GATE, Piece
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


def _row(op: PushOperation, request: bytes | None, lease: tuple[str, datetime] | None = None) -> dict[str, Any]:
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
        "lease_owner": lease[0] if lease else None,
        "lease_until": lease[1] if lease else None,
    }


def insert_piece(op: PushOperation, request: bytes | None = None, lease: tuple[str, datetime] | None = None) -> Piece:
    """A new operation; a PENDING one with the request a worker applies, and leased (owner, until) to
    whoever applies it now."""
    return insert_rows("push_operations", [_row(op, request, lease)])


LEASE = "lease"  # the check of complete_piece: the worker still held the operation's lease
_COMPLETE = (
    "UPDATE push_operations SET status = $2, status_code = $3, error_message = $4, validation = $5, "  # noqa: S608
    "changes = $6, completed_on_utc = $7, lease_owner = NULL, lease_until = NULL, "
    # A failed asynchronous write keeps its request, so an operator can requeue it.
    "request = CASE WHEN $2 = 'SUCCESS' THEN NULL ELSE request END WHERE company_id = $9 "
    f"AND push_operation_key = $1 AND status = 'PENDING' AND lease_owner = $8 {GATE} RETURNING 1"
)


def hold_piece(op: PushOperation, lease_owner: str, until: datetime) -> Piece:
    """Keeps a leased PENDING operation leased to `lease_owner` until `until`; checked as LEASE."""
    return Piece(
        "UPDATE push_operations SET lease_until = $3 WHERE company_id = $4 AND push_operation_key = $1 "
        "AND status = 'PENDING' AND lease_owner = $2 RETURNING 1",
        (op.key, lease_owner, until, op.company_id),
        LEASE,
    )


# Guards (statement.execute_guarded) on an operation another write already stored, each locking it.
_GUARD = (
    "SELECT 1 FROM push_operations WHERE company_id = $1 AND push_operation_key = $2 AND {} "  # noqa: S608
    f"{GATE} FOR UPDATE"
)


def pending_guard(company_id: str, key: str) -> Piece:
    """The operation is still PENDING, whoever holds it."""
    return Piece(_GUARD.format("status = 'PENDING'"), (company_id, key))


def timeout_guard(company_id: str, key: str, now: datetime) -> Piece:
    """The operation is PENDING past its timeout, and no live lease holds it."""
    return Piece(_GUARD.format(f"{_PAST_TIMEOUT.replace('$1', '$3')}"), (company_id, key, now))


def lease_guard(op: PushOperation, lease_owner: str) -> Piece:
    """The operation is PENDING and leased to `lease_owner` (a worker completing what it applies)."""
    return Piece(_GUARD.format("status = 'PENDING' AND lease_owner = $3"), (op.company_id, op.key, lease_owner))


def requeue_guard(company_id: str, key: str) -> Piece:
    """The operation failed or timed out, and has its request to apply again."""
    return Piece(_GUARD.format("status IN ('FAILED', 'TIMED_OUT') AND request IS NOT NULL"), (company_id, key))


_FINISH = (
    "UPDATE push_operations SET status = $2, status_code = $3, error_message = $4, validation = $5, "  # noqa: S608
    "changes = $6, completed_on_utc = $7, lease_owner = NULL, lease_until = NULL, "
    f"request = CASE WHEN $8 THEN request END WHERE company_id = $9 AND push_operation_key = $1 {GATE} RETURNING 1"
)


def finish_piece(op: PushOperation, keep_request: bool) -> Piece:
    """A guarded operation completed as `op` says; `keep_request` keeps what an operator may requeue."""
    args = (
        op.key,
        op.status.value,
        op.status_code,
        op.error_message,
        _validation(op),
        _changes(op),
        op.completed_on_utc,
        keep_request,
        op.company_id,
    )
    return Piece(_FINISH, args, "operation")


def requeue_piece(op: PushOperation) -> Piece:
    """A guarded FAILED or TIMED_OUT operation PENDING again, as if requested at op.requested_on_utc (its
    timeout counts from then)."""
    return Piece(
        "UPDATE push_operations SET status = 'PENDING', status_code = 202, error_message = '', validation = '{}', "  # noqa: S608
        "changes = '[]', requested_on_utc = $3, completed_on_utc = NULL, lease_owner = NULL, lease_until = NULL, "
        f"attempts = 0 WHERE company_id = $1 AND push_operation_key = $2 {GATE} RETURNING 1",
        (op.company_id, op.key, op.requested_on_utc),
        "operation",
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


# A PENDING operation past its timeout that no live lease holds ($1: now).
_PAST_TIMEOUT = (
    "status = 'PENDING' AND requested_on_utc + timeout_in_minutes * interval '1 minute' < $1 "
    "AND (lease_until IS NULL OR lease_until < $1)"
)


async def past_timeout(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Up to `limit` PENDING operations past their timeout (to be TIMED_OUT, each by its own write)."""
    return list(
        await conn.fetch(
            f"SELECT {COLUMNS} FROM push_operations WHERE {_PAST_TIMEOUT} "  # noqa: S608
            "ORDER BY requested_on_utc LIMIT $2",
            now,
            limit,
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
