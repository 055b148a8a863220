"""SendInvoice's outbox: one row per send, claimed once for delivery, and its result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.domain.push import PushOperation
from service.store import push_operations as push_store

QUEUED, SENDING, SENT, FAILED = "QUEUED", "SENDING", "SENT", "FAILED"
_COLUMNS = (
    "id, company_id, invoice_id, push_operation_key, request_id, message_id, recipients, subject, body, status, "
    "claimed_until, error, create_time, sent_time"
)


@dataclass(slots=True)
class Entry:
    id: str
    company_id: str
    invoice_id: str
    push_operation_key: str
    request_id: str
    message_id: str
    recipients: list[str]
    subject: str
    body: str
    status: str
    create_time: datetime
    claimed_until: datetime | None = None
    error: str = ""
    sent_time: datetime | None = None


def _entry(row: asyncpg.Record) -> Entry:
    values = dict(row)
    values["recipients"] = list(values["recipients"])
    return Entry(**values)


async def insert(conn: asyncpg.Connection, e: Entry) -> None:
    await conn.execute(
        "INSERT INTO mail_outbox (id, company_id, invoice_id, push_operation_key, request_id, message_id, recipients, "
        "subject, body, status, create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        e.id,
        e.company_id,
        e.invoice_id,
        e.push_operation_key,
        e.request_id,
        e.message_id,
        e.recipients,
        e.subject,
        e.body,
        e.status,
        e.create_time,
    )


async def get(conn: asyncpg.Connection, company_id: str, entry_id: str) -> Entry | None:
    sql = f"SELECT {_COLUMNS} FROM mail_outbox WHERE company_id = $1 AND id = $2"  # noqa: S608
    row = await conn.fetchrow(sql, company_id, entry_id)
    return _entry(row) if row else None


async def for_operation(conn: asyncpg.Connection, company_id: str, push_operation_key: str) -> Entry | None:
    sql = f"SELECT {_COLUMNS} FROM mail_outbox WHERE company_id = $1 AND push_operation_key = $2"  # noqa: S608
    row = await conn.fetchrow(sql, company_id, push_operation_key)
    return _entry(row) if row else None


async def for_request(conn: asyncpg.Connection, company_id: str, request_id: str) -> Entry | None:
    sql = f"SELECT {_COLUMNS} FROM mail_outbox WHERE company_id = $1 AND request_id = $2"  # noqa: S608
    row = await conn.fetchrow(sql, company_id, request_id)
    return _entry(row) if row else None


async def forget_request(conn: asyncpg.Connection, company_id: str, entry_id: str) -> None:
    """A FAILED send gives its request_id back, so a retry with it is a new send."""
    await conn.execute(
        "UPDATE mail_outbox SET request_id = '' WHERE company_id = $1 AND id = $2 AND status = 'FAILED'",
        company_id,
        entry_id,
    )


async def claim(conn: asyncpg.Connection, company_id: str, entry_id: str, until: datetime) -> Entry | None:
    """Takes a QUEUED send for delivery until `until`; None if someone else has (or had) it."""
    sql = (
        "UPDATE mail_outbox SET status = 'SENDING', claimed_until = $2 WHERE company_id = $3 AND id = $1 "  # noqa: S608
        f"AND status = 'QUEUED' RETURNING {_COLUMNS}"
    )
    row = await conn.fetchrow(sql, entry_id, until, company_id)
    return _entry(row) if row else None


async def interrupted(conn: asyncpg.Connection, company_id: str, entry_id: str, now: datetime, error: str) -> bool:
    """A delivery whose claim ran out without a result (its process stopped): FAILED, never sent again,
    since the mail server may have taken it."""
    result = await conn.execute(
        "UPDATE mail_outbox SET status = 'FAILED', error = $3 WHERE company_id = $4 AND id = $1 "
        "AND status = 'SENDING' AND claimed_until < $2",
        entry_id,
        now,
        error,
        company_id,
    )
    return bool(result == "UPDATE 1")


async def record(
    conn: asyncpg.Connection, company_id: str, entry_id: str, status: str, error: str, sent_time: datetime | None
) -> None:
    await conn.execute(
        "UPDATE mail_outbox SET status = $2, error = $3, sent_time = $4, claimed_until = NULL "
        "WHERE company_id = $5 AND id = $1",
        entry_id,
        status,
        error,
        sent_time,
        company_id,
    )


async def hold_operation(conn: asyncpg.Connection, company_id: str, key: str, owner: str, until: datetime) -> bool:
    """Keeps asynchronous-write workers off the send's PENDING operation while its delivery may be in
    flight; False if `owner` no longer holds it."""
    result = await conn.execute(
        "UPDATE push_operations SET lease_owner = $2, lease_until = $3 WHERE company_id = $4 "
        "AND push_operation_key = $1 AND status = 'PENDING' AND lease_owner = $2",
        key,
        owner,
        until,
        company_id,
    )
    return bool(result == "UPDATE 1")


async def lease_operation(conn: asyncpg.Connection, company_id: str, key: str, owner: str, until: datetime) -> None:
    """A live call's own PENDING operation, leased to its delivery: a worker takes it over only if this
    process stops before recording the result."""
    await conn.execute(
        "UPDATE push_operations SET lease_owner = $2, lease_until = $3 "
        "WHERE company_id = $4 AND push_operation_key = $1",
        key,
        owner,
        until,
        company_id,
    )


async def complete_operation(conn: asyncpg.Connection, op: PushOperation) -> bool:
    """Completes the send's PENDING operation with the delivery's result, whoever holds its lease."""
    result = await conn.execute(
        "UPDATE push_operations SET status = $2, status_code = $3, error_message = $4, changes = $5, "
        "completed_on_utc = $6, request = NULL, lease_owner = NULL, lease_until = NULL "
        "WHERE company_id = $7 AND push_operation_key = $1 AND status = 'PENDING'",
        op.key,
        op.status.value,
        op.status_code,
        op.error_message,
        push_store._changes(op),  # the same JSON shape as every completion
        op.completed_on_utc,
        op.company_id,
    )
    return bool(result == "UPDATE 1")
