"""Each company's money defaults (issue 13): the rounding mode and the tax rounding mode, which the company
profile (issue 16) shows and updates too."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from service.domain.money import MoneyDefaults, Rounding, TaxMode


async def load(conn: asyncpg.Connection | asyncpg.Pool, company_id: str) -> MoneyDefaults:
    row = await conn.fetchrow(
        "SELECT rounding_mode, tax_mode FROM company_money_settings WHERE company_id = $1", company_id
    )
    return MoneyDefaults() if row is None else MoneyDefaults(Rounding(row["rounding_mode"]), TaxMode(row["tax_mode"]))


async def load_all(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, MoneyDefaults]:
    rows = await conn.fetch("SELECT company_id, rounding_mode, tax_mode FROM company_money_settings")
    return {r["company_id"]: MoneyDefaults(Rounding(r["rounding_mode"]), TaxMode(r["tax_mode"])) for r in rows}


async def save(
    conn: asyncpg.Connection | asyncpg.Pool, company_id: str, defaults: MoneyDefaults, now: datetime
) -> None:
    # The modes are part of the company profile: its version (etag) moves with them.
    await conn.execute(
        "WITH profile AS (INSERT INTO company_profiles AS p (company_id, version, update_time) VALUES ($1, 1, $4) "
        "ON CONFLICT (company_id) DO UPDATE SET version = p.version + 1, update_time = $4) "
        "INSERT INTO company_money_settings (company_id, rounding_mode, tax_mode, update_time) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (company_id) DO UPDATE SET rounding_mode = $2, tax_mode = $3, "
        "update_time = $4",
        company_id,
        defaults.rounding.value,
        defaults.tax_mode.value,
        now,
    )
