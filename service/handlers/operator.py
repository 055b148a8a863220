"""What an operator does from `python -m service`: push operations across companies, requeues, purges."""

from __future__ import annotations

import asyncpg

from service.domain.errors import FailedPrecondition, NotFound
from service.domain.push import PushStatus
from service.handlers.retention import Retention, RetentionPolicy
from service.handlers.unit_of_work import Conflict, UnitOfWorkFactory
from service.handlers.worker import PENDING
from service.handlers.writes import utcnow
from service.store import push_operations as store
from service.store.profiles import SETTINGS_NUMBERING


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
    """Puts a FAILED or TIMED_OUT asynchronous write back in the queue, by a unit of work that finds it still
    so; watchers see it PENDING again and workers are woken. Returns its company. Anything else is
    refused, saying why."""
    async with pool.acquire() as conn:
        current = await store.operator_get(conn, key)
    if current is None:
        raise NotFound("push operation", key)
    if current["status"] not in ("FAILED", "TIMED_OUT"):
        raise FailedPrecondition(
            f"push operation {key} is {current['status']}; only FAILED or TIMED_OUT operations are requeued",
            subject=key,
        )
    if not current["requeueable"]:
        raise FailedPrecondition(
            f"push operation {key} was refused while its call was answered (a synchronous write): there is "
            "no stored request to apply again; the client sends the call again",
            subject=key,
        )
    op = store.from_row(current)
    # As if requested now: its timeout counts from now.
    op.status, op.status_code, op.error_message, op.requested_on_utc = PushStatus.PENDING, 202, "", utcnow()
    op.errors, op.warnings, op.changes, op.completed_on_utc = [], [], [], None
    try:
        # The operation's own unit of work: it numbers nothing, so the settings' numbering is never used.
        async with UnitOfWorkFactory(pool, SETTINGS_NUMBERING)(
            op.company_id, op.operation, data_type=op.data_type
        ) as uow:
            uow.adopt(op, store.requeue_guard(op.company_id, op.key), store.requeue_piece)
            uow.notify.append(PENDING)
            await uow.commit()
    except Conflict:
        raise FailedPrecondition(f"push operation {key} changed meanwhile; look at it again", subject=key) from None
    return op.company_id


async def purge_expired(pool: asyncpg.Pool, policy: RetentionPolicy) -> dict[str, int]:
    """One retention round now (what every process does periodically), by kind."""
    purged = await Retention(pool, policy).run_once(utcnow())
    return {
        "expired request ids": purged.idempotency_keys,
        "events past their retention": purged.events,
        "finished push operations past their retention": purged.push_operations,
    }
