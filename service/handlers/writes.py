"""The write pipeline: one transaction per write, with its PushOperation and its events, either way."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TypeAlias, TypeVar

import asyncpg

from service.domain.errors import AlreadyExists, DomainError, FieldViolation, InvalidArgument, NotFound, Violations
from service.domain.push import AsyncRun, Change, ChangeType, EventType, PushOperation, PushStatus
from service.domain.values import check_company_id
from service.store import events, statement
from service.store import invoices as store
from service.store import push_operations as push_store
from service.store.statement import Piece

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_STORED_VIOLATIONS = 1000
Conn: TypeAlias = asyncpg.Connection
Work = Callable[[Conn, datetime], Awaitable[tuple[T, list[Change]]]]
Prepare = Callable[[datetime], tuple[T, list[Change], list[Piece]]]
_DEFAULT_EVENTS = {
    ChangeType.CREATED: EventType.INVOICE_CREATED,
    ChangeType.MODIFIED: EventType.INVOICE_MODIFIED,
    ChangeType.DELETED: EventType.INVOICE_DELETED,
    ChangeType.ATTACHMENT_UPLOADED: EventType.ATTACHMENT_UPLOADED,
}


CURRENT_RUN: ContextVar[AsyncRun | None] = ContextVar("current_async_run", default=None)


class LeaseLost(Exception):
    """Another worker took the operation over; this attempt rolls back so it is applied once."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def require_company(company_id: str) -> None:
    v = Violations()
    check_company_id(v, "company_id", company_id)
    v.raise_if_any()


def feed(op: PushOperation) -> list[events.Event]:
    """What a write appends to the change feed: one event per change, and the operation's status."""
    out = []
    for c in op.changes:
        kind = c.event or (_DEFAULT_EVENTS[c.type] if c.data_type == "invoices" else "")
        if c.type is ChangeType.DELETED and c.data_type == "attachments":
            kind = EventType.INVOICE_MODIFIED
        if kind:
            invoice_id = c.record_id if c.data_type == "invoices" else ""
            out.append(events.Event(kind, op.company_id, invoice_id, op.key, c.attachment_id, c.payload))
    out.append(events.Event(EventType.PUSH_OPERATION_STATUS_CHANGED, op.company_id, push_operation_key=op.key))
    return out


class Writer:
    def __init__(self, pool: asyncpg.Pool, statement_timeout_ms: int = 0) -> None:
        self.pool = pool
        # Write transactions hold row locks: their statements get their own, shorter limit (0: the
        # connection's). SET LOCAL ends with the transaction.
        self._limit = f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}" if statement_timeout_ms else ""

    def _operation(self, company_id: str, operation: str, data_type: str, now: datetime) -> PushOperation:
        require_company(company_id)
        run = CURRENT_RUN.get()
        return PushOperation(
            key=run.key if run else store.new_id(), company_id=company_id, operation=operation,
            status=PushStatus.SUCCESS, status_code=200, requested_on_utc=run.requested_on_utc if run else now,
            data_type=data_type,
        )  # fmt: skip

    async def run(
        self, company_id: str, operation: str, work: Work[T], data_type: str = "invoices"
    ) -> tuple[T, PushOperation]:
        """Runs `work` in a transaction with its SUCCESS operation and events, or records a FAILED one."""
        now, run = utcnow(), CURRENT_RUN.get()
        op = self._operation(company_id, operation, data_type, now)
        async with self._refusals(op), self.pool.acquire() as conn, conn.transaction():
            if self._limit:
                await conn.execute(self._limit)
            result, changes = await work(conn, now)
            op.changes = [c for c in changes if c.recorded]
            op.completed_on_utc = utcnow()
            await self._persist(conn, op, run)
            op.changes = changes  # the feed sees every change, recorded or not
            await events.append(conn, feed(op), now)
            op.changes = [c for c in changes if c.recorded]
        return result, op

    async def run_inserts(self, company_id: str, operation: str, prepare: Prepare[T]) -> tuple[T, PushOperation]:
        """A write that only inserts rows: `prepare` (pure) decides them, and they go to PostgreSQL with the
        operation and the events as one statement, one round trip, no explicit transaction."""
        if CURRENT_RUN.get() is not None:  # completing a leased operation checks the lease: a transaction

            async def work(conn: Conn, now: datetime) -> tuple[T, list[Change]]:
                result, changes, pieces = prepare(now)
                await statement.execute(conn, pieces, "SELECT 1")
                return result, changes

            return await self.run(company_id, operation, work)
        now = utcnow()
        op = self._operation(company_id, operation, "invoices", now)
        async with self._refusals(op):
            result, changes, pieces = prepare(now)
            op.changes, op.completed_on_utc = changes, utcnow()
            feed_piece = events.append_piece(feed(op), now)
            op.changes = [c for c in changes if c.recorded]
            pieces = [*pieces, push_store.insert_piece(op), feed_piece]
            async with self.pool.acquire() as conn:
                await statement.execute(conn, pieces, events.NOTIFY_NEW)
        return result, op

    @asynccontextmanager
    async def _refusals(self, op: PushOperation) -> AsyncIterator[None]:
        """What a refused write leaves: a FAILED operation with the reason, and the client's error."""
        try:
            yield
        except asyncpg.UniqueViolationError as exc:
            error: DomainError = AlreadyExists(f"a record with these values already exists ({exc.constraint_name})")
            await self._record_failure(op, error)
            raise error from exc
        except asyncpg.DataError as exc:  # a value PostgreSQL cannot hold that the checks let through
            log.warning("data error on %s: %s", op.operation, exc)
            error = InvalidArgument([FieldViolation("request", f"a value cannot be stored: {type(exc).__name__}")])
            await self._record_failure(op, error)
            raise error from exc
        except NotFound:
            if CURRENT_RUN.get() is not None:
                await self._record_failure(op, NotFound("record", ""), quiet=True)
            raise
        except DomainError as exc:
            await self._record_failure(op, exc)
            raise

    async def _persist(self, conn: Conn, op: PushOperation, run: AsyncRun | None) -> None:
        if run is None:
            await push_store.insert(conn, op)
        elif not await push_store.complete(conn, op, run.owner):
            raise LeaseLost(op.key)

    async def record_refusal(self, company_id: str, operation: str, data_type: str, exc: DomainError) -> None:
        """A FAILED operation for a write refused before it reached run(), e.g. while reading the request."""
        v = Violations()
        check_company_id(v, "company_id", company_id)
        run = CURRENT_RUN.get()
        if v and run is None:
            return  # no company to file it under
        now = utcnow()
        op = PushOperation(
            key=run.key if run else store.new_id(), company_id=company_id, operation=operation,
            status=PushStatus.FAILED, status_code=exc.status_code, data_type=data_type,
            requested_on_utc=run.requested_on_utc if run else now,
        )  # fmt: skip
        await self._record_failure(op, exc)

    async def _record_failure(self, op: PushOperation, exc: DomainError, quiet: bool = False) -> None:
        op.status, op.status_code, op.error_message = PushStatus.FAILED, exc.status_code, exc.message[:2000]
        op.errors = exc.violations[:MAX_STORED_VIOLATIONS] if isinstance(exc, InvalidArgument) else []
        op.changes, op.completed_on_utc = [], utcnow()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await self._persist(conn, op, CURRENT_RUN.get())
                await events.append(conn, feed(op), op.completed_on_utc)
        except (asyncpg.PostgresError, OSError, LeaseLost):  # the client still gets its real error
            log.exception("could not record failed push operation %s", op.key)
            return
        if not quiet:
            exc.push_operation_key = op.key
