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
