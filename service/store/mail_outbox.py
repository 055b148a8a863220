"""SendInvoice's outbox: one row per send, claimed once for delivery, and its result."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import asyncpg

from service.store.statement import GATE, Piece, insert

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


def insert_piece(e: Entry) -> Piece:
    return insert("mail_outbox", [asdict(e)])


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


def record_piece(e: Entry) -> Piece:
    """The send's result as `e` says (status, error, sent_time); guarded with the send's operation."""
    return Piece(
        "UPDATE mail_outbox SET status = $2, error = $3, sent_time = $4, claimed_until = NULL "  # noqa: S608
        f"WHERE company_id = $5 AND id = $1 {GATE}",
        (e.id, e.status, e.error, e.sent_time, e.company_id),
    )


async def record(conn: asyncpg.Connection, e: Entry) -> None:
    """The send's result on its row alone, when its operation was finished by another (timed out)."""
    piece = record_piece(e)
    await conn.execute(piece.sql, *piece.args)
