"""Attachment queries: metadata rows and their bytes in fixed-size chunks."""

from __future__ import annotations

import asyncpg

from service.domain.attachments import Attachment

# Stored piece size: on this kind of machine PostgreSQL writes 256 KB values faster than larger ones.
# Each piece records its byte offset, so reading never depends on this constant.
CHUNK_BYTES = 256 * 1024
_COLUMNS = "id, invoice_id, name, content_type, include_when_sent, file_size, sha256, date_created, modified_date"


def _from_row(r: asyncpg.Record) -> Attachment:
    return Attachment(**dict(r))


async def insert(conn: asyncpg.Connection, company_id: str, a: Attachment) -> None:
    await conn.execute(
        "INSERT INTO attachments (id, invoice_id, company_id, name, content_type, include_when_sent, file_size, "
        "sha256, date_created, modified_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        a.id, a.invoice_id, company_id, a.name, a.content_type, a.include_when_sent, a.file_size, a.sha256,
        a.date_created, a.modified_date,
    )  # fmt: skip


async def put_chunk(conn: asyncpg.Connection, attachment_id: str, seq: int, start: int, data: bytes) -> None:
    await conn.execute(
        "INSERT INTO attachment_chunks (attachment_id, seq, start, data) VALUES ($1, $2, $3, $4)",
        attachment_id, seq, start, data,
    )  # fmt: skip


async def finish(conn: asyncpg.Connection, a: Attachment) -> None:
    await conn.execute("UPDATE attachments SET file_size = $2, sha256 = $3 WHERE id = $1", a.id, a.file_size, a.sha256)


async def count(conn: asyncpg.Connection, invoice_id: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM attachments WHERE invoice_id = $1", invoice_id))


async def list_for(conn: asyncpg.Connection, invoice_id: str) -> list[Attachment]:
    sql = f"SELECT {_COLUMNS} FROM attachments WHERE invoice_id = $1 ORDER BY date_created, id"  # noqa: S608
    rows = await conn.fetch(sql, invoice_id)
    return [_from_row(r) for r in rows]


async def get(conn: asyncpg.Connection, invoice_id: str, attachment_id: str) -> Attachment | None:
    sql = f"SELECT {_COLUMNS} FROM attachments WHERE invoice_id = $1 AND id::text = $2"  # noqa: S608
    row = await conn.fetchrow(sql, invoice_id, attachment_id)
    return _from_row(row) if row else None


async def delete(conn: asyncpg.Connection, attachment_id: str) -> None:
    await conn.execute("DELETE FROM attachments WHERE id = $1", attachment_id)


async def first_seq(conn: asyncpg.Connection, attachment_id: str, offset: int) -> int:
    """The piece holding byte `offset` (or the last piece)."""
    value = await conn.fetchval(
        "SELECT seq FROM attachment_chunks WHERE attachment_id = $1 AND start <= $2 ORDER BY seq DESC LIMIT 1",
        attachment_id, offset,
    )  # fmt: skip
    return int(value) if value is not None else 0


async def chunks(conn: asyncpg.Connection, attachment_id: str, seq: int, count: int) -> list[tuple[int, bytes]]:
    """Up to `count` pieces from `seq` on: (start offset, bytes)."""
    rows = await conn.fetch(
        "SELECT start, data FROM attachment_chunks WHERE attachment_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
        attachment_id, seq, count,
    )  # fmt: skip
    return [(int(r["start"]), r["data"]) for r in rows]


async def all_bytes(conn: asyncpg.Connection, attachment_id: str) -> bytes:
    """The whole file: only for the bounded e-mail path, which checks sizes first."""
    rows = await conn.fetch("SELECT data FROM attachment_chunks WHERE attachment_id = $1 ORDER BY seq", attachment_id)
    return b"".join(r["data"] for r in rows)
