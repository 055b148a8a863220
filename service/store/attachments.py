"""Attachment queries: metadata rows and their bytes in fixed-size chunks.

Every statement names the company: its rows are keyed (company_id, id) and live on one shard (docs/citus.md)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.domain.attachments import Attachment

# Stored piece size: on this kind of machine PostgreSQL writes 256 KB values faster than larger ones.
# Each piece records its byte offset, so reading never depends on this constant.
CHUNK_BYTES = 256 * 1024
_COLUMNS = "id, invoice_id, name, content_type, include_when_sent, file_size, sha256, date_created, modified_date"


def _from_row(r: asyncpg.Record) -> Attachment:
    return Attachment(**dict(r))


async def stage(conn: asyncpg.Connection, company_id: str, a: Attachment, until: datetime) -> None:
    """The row of an upload that is streaming in: invisible to reads until `commit`."""
    await conn.execute(
        "INSERT INTO attachments (id, invoice_id, company_id, name, content_type, include_when_sent, file_size, "
        "sha256, date_created, modified_date, staged_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        a.id,
        a.invoice_id,
        company_id,
        a.name,
        a.content_type,
        a.include_when_sent,
        a.file_size,
        a.sha256,
        a.date_created,
        a.modified_date,
        until,
    )


async def put_chunk(
    conn: asyncpg.Connection, company_id: str, attachment_id: str, seq: int, start: int, data: bytes, until: datetime
) -> bool:
    """Stores one piece of a staged upload and extends its staging; False if the staged row is gone.

    The piece's own commit does not wait for the WAL flush (synchronous_commit off for this statement's
    transaction): the upload's final commit flushes the WAL up to itself, pieces included, before the
    upload is answered, so nothing durable is lost, and each piece saves a flush."""
    result = await conn.execute(
        "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)), "
        "staged AS (UPDATE attachments SET staged_until = $5 WHERE company_id = $6 AND id = $1 "
        "AND staged_until IS NOT NULL RETURNING company_id, id) "
        "INSERT INTO attachment_chunks (company_id, attachment_id, seq, start, data) "
        "SELECT company_id, id, $2, $3, $4 FROM staged, quick",
        attachment_id,
        seq,
        start,
        data,
        until,
        company_id,
    )
    return bool(result == "INSERT 0 1")


async def commit(conn: asyncpg.Connection, company_id: str, a: Attachment) -> bool:
    """Makes a staged upload a visible attachment; False if its staging expired and was removed."""
    result = await conn.execute(
        "UPDATE attachments SET file_size = $2, sha256 = $3, date_created = $4, modified_date = $4, "
        "staged_until = NULL WHERE company_id = $5 AND id = $1 AND staged_until IS NOT NULL",
        a.id,
        a.file_size,
        a.sha256,
        a.date_created,
        company_id,
    )
    return bool(result == "UPDATE 1")


async def discard(conn: asyncpg.Connection, company_id: str, attachment_id: str) -> None:
    """Removes a staged upload and its pieces (the chunks cascade)."""
    await conn.execute(
        "DELETE FROM attachments WHERE company_id = $1 AND id = $2 AND staged_until IS NOT NULL",
        company_id,
        attachment_id,
    )


async def sweep(conn: asyncpg.Connection, now: datetime) -> None:
    """Removes uploads whose staging expired (their process stopped mid-upload)."""
    await conn.execute("DELETE FROM attachments WHERE staged_until < $1", now)


async def count(conn: asyncpg.Connection, company_id: str, invoice_id: str) -> int:
    sql = "SELECT count(*) FROM attachments WHERE company_id = $1 AND invoice_id = $2 AND staged_until IS NULL"
    return int(await conn.fetchval(sql, company_id, invoice_id))


async def list_for(conn: asyncpg.Connection, company_id: str, invoice_id: str) -> list[Attachment]:
    sql = (
        f"SELECT {_COLUMNS} FROM attachments WHERE company_id = $1 AND invoice_id = $2 "  # noqa: S608
        "AND staged_until IS NULL ORDER BY date_created, id"
    )
    rows = await conn.fetch(sql, company_id, invoice_id)
    return [_from_row(r) for r in rows]


async def get(conn: asyncpg.Connection, company_id: str, invoice_id: str, attachment_id: str) -> Attachment | None:
    sql = (
        f"SELECT {_COLUMNS} FROM attachments WHERE company_id = $1 AND invoice_id = $2 "  # noqa: S608
        "AND id::text = $3 AND staged_until IS NULL"
    )
    row = await conn.fetchrow(sql, company_id, invoice_id, attachment_id)
    return _from_row(row) if row else None


async def delete(conn: asyncpg.Connection, company_id: str, attachment_id: str) -> None:
    await conn.execute(
        "DELETE FROM attachments WHERE company_id = $1 AND id = $2 AND staged_until IS NULL", company_id, attachment_id
    )


async def first_seq(conn: asyncpg.Connection, company_id: str, attachment_id: str, offset: int) -> int:
    """The piece holding byte `offset` (or the last piece)."""
    value = await conn.fetchval(
        "SELECT seq FROM attachment_chunks WHERE company_id = $1 AND attachment_id = $2 AND start <= $3 "
        "ORDER BY seq DESC LIMIT 1",
        company_id,
        attachment_id,
        offset,
    )
    return int(value) if value is not None else 0


async def chunks(
    conn: asyncpg.Connection, company_id: str, attachment_id: str, seq: int, count: int
) -> list[tuple[int, bytes]]:
    """Up to `count` pieces from `seq` on: (start offset, bytes)."""
    rows = await conn.fetch(
        "SELECT start, data FROM attachment_chunks WHERE company_id = $1 AND attachment_id = $2 AND seq >= $3 "
        "ORDER BY seq LIMIT $4",
        company_id,
        attachment_id,
        seq,
        count,
    )
    return [(int(r["start"]), r["data"]) for r in rows]


async def all_bytes(conn: asyncpg.Connection, company_id: str, attachment_id: str) -> bytes:
    """The whole file: only for the bounded e-mail path, which checks sizes first."""
    rows = await conn.fetch(
        "SELECT data FROM attachment_chunks WHERE company_id = $1 AND attachment_id = $2 ORDER BY seq",
        company_id,
        attachment_id,
    )
    return b"".join(r["data"] for r in rows)
