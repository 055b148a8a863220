"""What an operator does from `python -m service`: push operations across companies, requeues, purges."""

from __future__ import annotations

import asyncpg

from service.domain.errors import FailedPrecondition, NotFound
from service.domain.push import EventType
from service.handlers.retention import Retention, RetentionPolicy
from service.handlers.worker import PENDING
from service.handlers.writes import utcnow
from service.store import events
from service.store import push_operations as store


async def list_operations(pool: asyncpg.Pool, company_id: str, status: str, limit: int) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await store.operator_list(conn, company_id, status, limit)


async def get_operation(pool: asyncpg.Pool, key: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await store.operator_get(conn, key)
    if row is None:
        raise NotFound("push operation", key)
    return row


async def requeue(pool: asyncpg.Pool, key: str) -> str:
    """Puts a FAILED or TIMED_OUT asynchronous write back in the queue; watchers see it PENDING again and
    workers are woken. Returns its company. Anything else is refused, saying why."""
    now = utcnow()
    async with pool.acquire() as conn, conn.transaction():
        row = await store.requeue(conn, key, now)
        if row is None:
            current = await store.operator_get(conn, key)
            if current is None:
                raise NotFound("push operation", key)
            if current["status"] not in ("FAILED", "TIMED_OUT"):
                raise FailedPrecondition(
                    f"push operation {key} is {current['status']}; only FAILED or TIMED_OUT operations are requeued",
                    subject=key,
                )
            raise FailedPrecondition(
                f"push operation {key} was refused while its call was answered (a synchronous write): there is "
                "no stored request to apply again; the client sends the call again",
                subject=key,
            )
        company = str(row["company_id"])
        feed = events.Event(EventType.PUSH_OPERATION_STATUS_CHANGED, company, push_operation_key=key)
        await events.append(conn, [feed], now)
        await conn.execute(f"NOTIFY {PENDING}")
    return company


async def purge_expired(pool: asyncpg.Pool, policy: RetentionPolicy) -> dict[str, int]:
    """One retention round now (what every process does periodically), by kind."""
    purged = await Retention(pool, policy).run_once(utcnow())
    return {
        "expired request ids": purged.idempotency_keys,
        "events past their retention": purged.events,
        "finished push operations past their retention": purged.push_operations,
    }
