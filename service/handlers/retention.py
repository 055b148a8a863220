"""Retention: a periodic purge in every process of expired request ids, old events and old push operations.

Each round deletes in small batches (one short transaction each), so it never holds many row locks or a
long transaction. Replicas may purge at once: operations and request ids are taken with SKIP LOCKED, and
events (deleted as a prefix of positions) under a try-lock that lets one replica at a time do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from service.config import Settings
from service.handlers.writes import utcnow
from service.store import events, idempotency
from service.store import push_operations as push_store

log = logging.getLogger(__name__)
BATCH = 1000  # rows per delete statement
MAX_BATCHES = 50  # per kind and round: a big backlog drains over several rounds, never in one long burst
EVENT_PURGE_LOCK = 7_243_003
_Batch = Callable[[asyncpg.Connection], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    event_days: int  # 0: keep events forever
    push_operation_days: int  # 0: keep push operations forever
    interval_seconds: float  # between rounds (each process, with jitter)


def policy_of(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        settings.event_retention_days, settings.push_operation_retention_days, settings.retention_interval_seconds
    )


@dataclass(slots=True)
class Purged:
    idempotency_keys: int = 0
    events: int = 0
    push_operations: int = 0


class Retention:
    def __init__(self, pool: asyncpg.Pool, policy: RetentionPolicy) -> None:
        self.pool = pool
        self.policy = policy
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            # Jitter: replicas started together do not purge in lockstep.
            await asyncio.sleep(self.policy.interval_seconds * random.uniform(0.5, 1.0))
            try:
                purged = await self.run_once(utcnow())
                if purged.idempotency_keys or purged.events or purged.push_operations:
                    log.info("retention purged %s", purged)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("retention round failed, next round retries: %s", exc)

    async def run_once(self, now: datetime) -> Purged:
        """One round: every kind, batch by batch, until its backlog is gone or MAX_BATCHES were deleted."""
        out = Purged()
        out.idempotency_keys = await self._drain(lambda c: idempotency.purge(c, now, BATCH))
        if self.policy.push_operation_days > 0:
            cutoff = now - timedelta(days=self.policy.push_operation_days)
            out.push_operations = await self._drain(lambda c: push_store.purge(c, cutoff, BATCH))
        if self.policy.event_days > 0:
            cutoff = now - timedelta(days=self.policy.event_days)
            out.events = await self._drain(lambda c: self._purge_events(c, cutoff))
        return out

    @staticmethod
    async def _purge_events(conn: asyncpg.Connection, cutoff: datetime) -> int:
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", EVENT_PURGE_LOCK):
                return 0  # another replica is purging events right now
            return await events.purge(conn, cutoff, BATCH)

    async def _drain(self, purge_batch: _Batch) -> int:
        total = 0
        for _ in range(MAX_BATCHES):
            async with self.pool.acquire() as conn:
                n = await purge_batch(conn)
            total += n
            if n < BATCH:
                break
        return total
