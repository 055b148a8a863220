"""The Alembic migrations build exactly the schema declared in service/store/schema.py."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from service.store.schema import metadata


def test_migrated_database_matches_the_declared_schema(database_url: str) -> None:
    async def diff() -> list[Any]:
        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(database_url)

        engine = create_async_engine("postgresql+asyncpg://", async_creator=connect)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
        finally:
            await engine.dispose()

    assert asyncio.run(diff()) == []


# Tables outside the rule that company_id leads every key (docs/citus.md says why, and how each is deployed).
GLOBAL_TABLES = {
    # Authentication finds a key by its hash before any company is known: a Citus reference table.
    "api_keys": "looked up by key hash before the company is known (reference table)",
    # Alembic's own bookkeeping: one row, the schema version, kept on the coordinator.
    "alembic_version": "Alembic's schema version (coordinator-local)",
}


def test_every_key_and_foreign_key_leads_with_company_id(database_url: str) -> None:
    """Ready to distribute by company_id (Citus): every primary key, unique constraint, unique index and foreign
    key of the migrated database has company_id as its first column (a foreign key on both sides), so each is
    enforced within one company's shard. Reads the catalog, not the declared schema."""

    async def keys() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return list(
                await conn.fetch(
                    """
                    SELECT c.conrelid::regclass::text AS tbl, c.conname AS name, c.contype::text AS kind,
                           (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1])
                               AS first,
                           (SELECT attname FROM pg_attribute WHERE attrelid = c.confrelid AND attnum = c.confkey[1])
                               AS referenced_first
                    FROM pg_constraint c
                    WHERE c.connamespace = 'public'::regnamespace AND c.contype IN ('p', 'u', 'f')
                    UNION ALL  -- unique indexes that back no constraint (e.g. partial ones)
                    SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, 'i',
                           (SELECT attname FROM pg_attribute WHERE attrelid = i.indrelid AND attnum = i.indkey[0]),
                           NULL
                    FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
                    WHERE t.relnamespace = 'public'::regnamespace AND i.indisunique
                      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
                    """
                )
            )
        finally:
            await conn.close()

    rows = asyncio.run(keys())
    checked = {r["tbl"] for r in rows}
    assert {"invoices", "line_items", "taxation_items", "attachments", "attachment_chunks", "invoice_events"} <= checked
    assert any(r["kind"] == "f" for r in rows) and any(r["kind"] == "i" for r in rows)
    wrong = [
        f"{r['tbl']}.{r['name']} ({r['kind']}) starts with {r['first']}"
        + (f", references {r['referenced_first']}" if r["kind"] == "f" else "")
        for r in rows
        if r["tbl"] not in GLOBAL_TABLES
        and (r["first"] != "company_id" or (r["kind"] == "f" and r["referenced_first"] != "company_id"))
    ]
    assert wrong == [], "\n".join(wrong)
