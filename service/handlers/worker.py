"""Asynchronous writes: PENDING push operations claimed from PostgreSQL and applied exactly once.

Every process runs workers. A worker leases the oldest unleased PENDING operation (FOR UPDATE SKIP
LOCKED, so replicas never wait on each other), applies it through the same path as a synchronous call,
and completes the operation in the write's own transaction only while it still holds the lease. A worker
that dies loses its lease; the next claim after the lease expires applies the operation instead. Workers
wake on NOTIFY; a timer at the lease length catches expired leases and timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial

import asyncpg

from service.domain.push import AsyncRun, PushOperation, PushStatus
from service.handlers.events import EventHub
from service.handlers.unit_of_work import Conflict, LeaseLost, UnitOfWorkFactory, store_operation
from service.handlers.writes import utcnow
from service.store import push_operations as store

log = logging.getLogger(__name__)
PENDING = "push_operations_pending"  # NOTIFY channel
MAX_ATTEMPTS = 5
TIME_OUT_BATCH = 100  # operations timed out per round at most (the next round takes the rest)
# Applies a stored request as the worker holding `run` (the operation's key, lease owner, request time).
Dispatch = Callable[[str, bytes, AsyncRun], Awaitable[None]]


async def enqueue(pool: asyncpg.Pool, op: PushOperation, request: bytes) -> None:
    """Stores a PENDING operation with its request and its event, and wakes workers: one statement."""
    await store_operation(pool, op, None, request, notify=PENDING)


class Workers:
    def __init__(
        self,
        pool: asyncpg.Pool,
        uow: UnitOfWorkFactory,
        hub: EventHub,
        dispatch: Dispatch,
        count: int,
        lease: timedelta,
    ) -> None:
        self.pool = pool
        self.uow = uow
        self.dispatch = dispatch
        self.count = count
        self.lease = lease
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        hub.subscribe(PENDING, self._wake.set)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(i)) for i in range(self.count)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self, n: int) -> None:
        owner = f"{self.owner}-{n}"
        while True:
            try:
                if not await self.run_one(owner):
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.lease.total_seconds())
            except asyncio.CancelledError:
                raise
            except Exception:  # a worker must survive anything one operation does
                log.exception("push operation worker error")
                await asyncio.sleep(1)

    async def run_one(self, owner: str) -> bool:
        """Claims and applies one operation; False when there was none to claim."""
        now = utcnow()
        await self.time_out(now)
        async with self.pool.acquire() as conn:
            row = await store.claim(conn, owner, self.lease, now)
        if row is None:
            return False
        key = row["push_operation_key"]
        run = AsyncRun(key, owner, row["requested_on_utc"])
        try:
            if row["attempts"] > MAX_ATTEMPTS:
                await self._give_up(run, row["company_id"], row["operation"])
            else:
                await self.dispatch(row["operation"], bytes(row["request"]), run)
        except LeaseLost:
            log.warning("push operation %s was taken over by another worker", key)
        except Exception:  # not the client's doing: leave it PENDING for a later attempt
            log.exception("push operation %s failed to apply; it will be retried", key)
        return True

    async def time_out(self, now: datetime) -> None:
        """PENDING operations past their timeout become TIMED_OUT (never applied; an operator may requeue
        them), each by a unit of work that finds it still so (another worker may come first)."""
        async with self.pool.acquire() as conn:
            due = [store.from_row(r) for r in await store.past_timeout(conn, now, TIME_OUT_BATCH)]
        for op in due:
            op.status, op.status_code, op.error_message = PushStatus.TIMED_OUT, 504, "not applied within its timeout"
            with contextlib.suppress(Conflict):
                async with self.uow(op.company_id, op.operation, data_type=op.data_type) as uow:
                    write = partial(store.finish_piece, keep_request=True)  # an operator may requeue it
                    uow.adopt(op, store.timeout_guard(op.company_id, op.key, now), write)
                    await uow.commit()

    async def _give_up(self, run: AsyncRun, company_id: str, operation: str) -> None:
        op = PushOperation(
            key=run.key,
            company_id=company_id,
            operation=operation,
            status=PushStatus.FAILED,
            status_code=500,
            requested_on_utc=run.requested_on_utc,
            completed_on_utc=utcnow(),
            error_message=f"not applied after {MAX_ATTEMPTS} attempts",
        )
        await store_operation(self.pool, op, run)
