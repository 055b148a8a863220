"""API keys: stored as SHA-256 hashes, each bound to one company."""

from __future__ import annotations

import hashlib
from datetime import datetime

import asyncpg

CHANGED = "api_keys_changed"  # NOTIFY channel: a key was revoked; processes drop their caches


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def insert(
    conn: asyncpg.Connection, key_id: str, company_id: str, key: str, description: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO api_keys (id, company_id, key_hash, prefix, description, create_time) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        key_id, company_id, digest(key), key[:12], description, now,
    )  # fmt: skip


async def company_of(conn: asyncpg.Connection, key: str) -> str | None:
    value = await conn.fetchval(
        "SELECT company_id FROM api_keys WHERE key_hash = $1 AND revoke_time IS NULL", digest(key)
    )
    return str(value) if value is not None else None


async def active(conn: asyncpg.Connection, keys: list[str]) -> set[str]:
    """Those of `keys` that are still valid."""
    by_digest = {digest(key): key for key in keys}
    rows = await conn.fetch(
        "SELECT key_hash FROM api_keys WHERE key_hash = ANY($1::text[]) AND revoke_time IS NULL", list(by_digest)
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
            "SELECT id, prefix, description, create_time, revoke_time FROM api_keys WHERE company_id = $1 "
            "ORDER BY create_time",
            company_id,
        )
    )
