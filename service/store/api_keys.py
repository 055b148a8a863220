"""API keys: stored as SHA-256 hashes, each bound to one company."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import asyncpg

CHANGED = "api_keys_changed"  # NOTIFY channel: a key was revoked; processes drop their caches


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid key allows: one company, perhaps reads only, perhaps until a time."""

    company_id: str
    read_only: bool = False
    expire_time: datetime | None = None


async def insert(
    conn: asyncpg.Connection,
    key_id: str,
    company_id: str,
    key: str,
    description: str,
    now: datetime,
    expire_time: datetime | None = None,
    read_only: bool = False,
) -> None:
    await conn.execute(
        "INSERT INTO api_keys (id, company_id, key_hash, prefix, description, create_time, expire_time, read_only) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        key_id,
        company_id,
        digest(key),
        key[:12],
        description,
        now,
        expire_time,
        read_only,
    )


_VALID = "revoke_time IS NULL AND (expire_time IS NULL OR expire_time > now())"


async def grant_of(conn: asyncpg.Connection, key: str) -> Grant | None:
    row = await conn.fetchrow(
        f"SELECT company_id, read_only, expire_time FROM api_keys WHERE key_hash = $1 AND {_VALID}",  # noqa: S608
        digest(key),
    )
    return Grant(str(row["company_id"]), bool(row["read_only"]), row["expire_time"]) if row else None


async def active(conn: asyncpg.Connection, keys: list[str]) -> set[str]:
    """Those of `keys` that are still valid."""
    by_digest = {digest(key): key for key in keys}
    rows = await conn.fetch(
        f"SELECT key_hash FROM api_keys WHERE key_hash = ANY($1::text[]) AND {_VALID}",  # noqa: S608
        list(by_digest),
    )
    return {by_digest[r["key_hash"]] for r in rows}


async def revoke(conn: asyncpg.Connection, key_id: str, now: datetime) -> bool:
    result = await conn.execute(
        "UPDATE api_keys SET revoke_time = $2 WHERE id::text = $1 AND revoke_time IS NULL", key_id, now
    )
    await conn.execute(f"NOTIFY {CHANGED}")
    return bool(result == "UPDATE 1")


async def list_for(conn: asyncpg.Connection, company_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT id, prefix, description, create_time, revoke_time, expire_time, read_only FROM api_keys "
            "WHERE company_id = $1 "
            "ORDER BY create_time",
            company_id,
        )
    )
