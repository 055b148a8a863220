"""AIP-155 request ids: who got there first, and the answer to replay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg


@dataclass(frozen=True, slots=True)
class Claim:
    first: bool  # this call owns the key: run it
    request_hash: str = ""
    state: str = ""
    response: bytes | None = None
    status: bytes | None = None


async def claim(
    conn: asyncpg.Connection, company_id: str, key: str, method: str, request_hash: str, now: datetime, ttl: timedelta
) -> Claim:
    """Takes the key, or reports who holds it. An expired key is taken over."""
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE company_id = $1 AND key = $2 AND expire_time <= $3",
            company_id,
            key,
            now,
        )
        taken = await conn.fetchval(
            "INSERT INTO idempotency_keys (company_id, key, method, request_hash, state, create_time, expire_time) "
            "VALUES ($1, $2, $3, $4, 'RUNNING', $5, $6) ON CONFLICT DO NOTHING RETURNING true",
            company_id,
            key,
            method,
            request_hash,
            now,
            now + ttl,
        )
        if taken:
            return Claim(True)
        row = await conn.fetchrow(
            "SELECT method, request_hash, state, response, status FROM idempotency_keys "
            "WHERE company_id = $1 AND key = $2",
            company_id,
            key,
        )
    if row is None:  # deleted between the two statements: try again
        return await claim(conn, company_id, key, method, request_hash, now, ttl)
    return Claim(False, f"{row['method']}:{row['request_hash']}", row["state"], row["response"], row["status"])


async def finish(
    conn: asyncpg.Connection, company_id: str, key: str, response: bytes | None, status: bytes | None
) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET state = 'DONE', response = $3, status = $4 WHERE company_id = $1 AND key = $2",
        company_id,
        key,
        response,
        status,
    )


async def release(conn: asyncpg.Connection, company_id: str, key: str) -> None:
    """Forgets a key whose call ended without an answer worth replaying (cancelled, server shutting down)."""
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE company_id = $1 AND key = $2 AND state = 'RUNNING'", company_id, key
    )


async def purge(conn: asyncpg.Connection, now: datetime, batch: int = 1000) -> int:
    """Deletes up to `batch` expired keys (with their stored answers). SKIP LOCKED: replicas purging at once
    take different rows, and a key being taken over right now is left to its claimer."""
    result = await conn.execute(
        "DELETE FROM idempotency_keys WHERE (company_id, key) IN ("
        "  SELECT company_id, key FROM idempotency_keys WHERE expire_time <= $1"
        "  ORDER BY expire_time LIMIT $2 FOR UPDATE SKIP LOCKED)",
        now,
        batch,
    )
    return int(result.split()[-1])
