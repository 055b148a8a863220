"""The one write path: every write is one unit of work (the pattern of Cosmic Python's unit_of_work.py).

    async with uow_factory(company_id, "VoidInvoice", run=run) as uow:
        inv = await uow.invoices.get_for_update(invoice_id, etag)   # BEGIN, then one locking read
        lifecycle.void(inv, uow.now)
        uow.invoices.save(inv, document)
        uow.record(Change(ChangeType.MODIFIED, inv.id, event=EventType.INVOICE_VOIDED))
        await uow.commit()                                          # one write statement, COMMIT

The commit checks the domain's invariants of every invoice it stores, then writes the aggregate's changes,
the push operation (SUCCESS; or the leased PENDING one completed, when a worker applies it) and the events
as one statement: inside the transaction when something was read, or on its own, with no BEGIN and COMMIT
round trips, when nothing was (a draft create). A refused write (a DomainError, or a driver error meaning
one: a unique violation is ALREADY_EXISTS, a value PostgreSQL cannot hold INVALID_ARGUMENT) leaves a FAILED
push operation instead, and the client gets the domain error.

An optimistic unit of work (`factory.optimistic(company_id, operation, write)`: FinalizeInvoice,
RecordPayment) takes two round trips and no transaction: `get_for_update` reads without a lock (for a
finalization also the number the company's sequence would give next), and the commit's one statement
writes only if the invoice is still at the version read and, for a finalization, the sequence still where
it was read, drawing the number in the same statement (statement.execute_guarded). When it is not (a
concurrent writer), nothing is written and the use case runs again on a fresh read, which applies the
domain rule to what the other wrote, under row locks in a transaction, which queues behind the other
writers instead of conflicting with them (and so do writes of that kind for a while: CONTENDED_SECONDS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar

import asyncpg

from service.domain import lifecycle
from service.domain.errors import DomainError, InvalidArgument, InvariantBreach, NotFound, Violations
from service.domain.models import Invoice
from service.domain.profile import CompanyProfile, NumberFormat
from service.domain.push import AsyncRun, Change, ChangeType, EventType, PushOperation, PushStatus
from service.domain.values import check_company_id
from service.handlers.writes import require_company, utcnow
from service.store import events, profiles, statement
from service.store import invoices as store
from service.store import push_operations as push_store
from service.store.db import domain_error
from service.store.profiles import SETTINGS_NUMBERING
from service.store.statement import Piece

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_STORED_VIOLATIONS = 1000
# After an optimistic write of a kind (a company's finalizations, an invoice's payments) met a concurrent
# writer of another process (those of one process take turns before, see UnitOfWorkFactory.optimistic),
# writes of that kind take row locks for this long: under steady contention the locks queue the writers,
# where optimistic tries would mostly be wasted (a read, the domain rule and a document each).
CONTENDED_SECONDS = 1.0
_CONTENDED_KEPT = 1024  # kinds remembered as contended before expired ones are dropped
_DEFAULT_EVENTS = {
    ChangeType.CREATED: EventType.INVOICE_CREATED,
    ChangeType.MODIFIED: EventType.INVOICE_MODIFIED,
    ChangeType.DELETED: EventType.INVOICE_DELETED,
    ChangeType.ATTACHMENT_UPLOADED: EventType.ATTACHMENT_UPLOADED,
}


class LeaseLost(Exception):
    """Another worker took the operation over; this attempt rolls back so it is applied once."""


class Conflict(Exception):
    """An optimistic write found the invoice, or the number sequence, changed since it read them: nothing
    was written, and the use case runs again on a fresh read."""


def feed(op: PushOperation, changes: list[Change], status: bool = True) -> list[events.Event]:
    """What a write appends to the change feed: one event per change (recorded on the operation or not),
    and (unless `status` is False: it stays as it was) the operation's status."""
    out = []
    for c in changes:
        kind = c.event or (_DEFAULT_EVENTS[c.type] if c.data_type == "invoices" else "")
        if c.type is ChangeType.DELETED and c.data_type == "attachments":
            kind = EventType.INVOICE_MODIFIED
        if kind:
            invoice_id = c.record_id if c.data_type == "invoices" else ""
            out.append(events.Event(kind, op.company_id, invoice_id, op.key, c.attachment_id, c.payload))
    if status:
        out.append(events.Event(EventType.PUSH_OPERATION_STATUS_CHANGED, op.company_id, push_operation_key=op.key))
    return out


def _operation(company_id: str, operation: str, data_type: str, run: AsyncRun | None, now: datetime) -> PushOperation:
    """A write's push operation (SUCCESS until refused): the leased one's key and time when a worker runs it."""
    return PushOperation(
        key=run.key if run else store.new_id(),
        company_id=company_id,
        operation=operation,
        status=PushStatus.SUCCESS,
        status_code=200,
        requested_on_utc=run.requested_on_utc if run else now,
        data_type=data_type,
    )


def _operation_piece(op: PushOperation, run: AsyncRun | None) -> Piece:
    return push_store.insert_piece(op) if run is None else push_store.complete_piece(op, run.owner)


# How a unit of work stores its push operation, made at commit from the operation as it then is.
OperationWrite = Callable[[PushOperation], Piece]


# The gapless invoice numbers the service gives by default (settings): prefix and zero-padded width.
Numbering = NumberFormat


class Invoices:
    """The invoices of one unit of work: read (locked) through it, and stored by its commit."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._drawn: dict[str, int] = {}  # invoice id -> number drawn with its locking read
        self._loaded: dict[str, set[str]] = {}  # invoice id -> ids of its payments and memos as read
        self.stored: list[Invoice] = []

    async def get_for_update(self, key: str, etag: str = "", *, draw_number: bool = False) -> Invoice:
        """The invoice (by id or number) locked for this unit of work, in one statement; `draw_number`
        also draws the company's next number in it, for a DRAFT that has none (see `number`)."""
        conn = await self._uow.connection()
        # Optimistic: read as of now (the number only peeked at); the commit writes only if it is still so.
        optimistic = self._uow.optimistic
        number = (store.PEEK if optimistic else store.DRAW) if draw_number else ""
        loaded = await store.load(conn, self._uow.company_id, key, lock=not optimistic, draw=number)
        if loaded is None:
            raise NotFound("invoice", key)
        if optimistic:
            self._uow.guards.append(store.version_guard(loaded.invoice))
        if loaded.drawn is not None:
            self._drawn[loaded.invoice.id] = loaded.drawn
        if loaded.profile is not None and self._uow.profile_read is None:
            self._uow.profile_read = profiles.from_document(self._uow.company_id, loaded.profile)
        if not loaded.current:  # a concurrent writer committed while we waited: read it again, under our lock
            loaded = await store.load(conn, self._uow.company_id, loaded.invoice.id, lock=True)
            assert loaded is not None  # locked: it cannot have gone
        inv = loaded.invoice
        self._loaded[inv.id] = {a.id for a in inv.allocations} | {m.id for m in inv.credit_memos}
        lifecycle.check_etag(inv, etag)
        return inv

    async def get(self, key: str) -> Invoice:
        """The invoice as of this unit of work's transaction, not locked."""
        inv = await store.load_invoice(await self._uow.connection(), self._uow.company_id, key)
        if inv is None:
            raise NotFound("invoice", key)
        return inv

    async def lock_all(self, keys: list[str]) -> None:
        """Batches lock all their rows up front, in id order, so two batches never deadlock."""
        found = await store.lock_invoices(await self._uow.connection(), self._uow.company_id, keys)
        for key in keys:
            if key not in found:
                raise NotFound("invoice", key)

    async def number(self, inv: Invoice) -> str:
        """The invoice's number, or the next of the company's sequence (the sequence row stays locked until
        commit, so concurrent finalizations queue and a rolled back one gives its number back)."""
        if inv.invoice_number:
            return inv.invoice_number
        value = self._drawn.pop(inv.id, None)
        if self._uow.optimistic:
            if value is None or self._uow.number_guard is not None:
                raise RuntimeError("an optimistic unit of work numbers one invoice, read with draw_number")
            self._uow.number_guard, draw = store.number_draw(inv.company_id, value)  # drawn by the commit
            self._uow.pieces.extend(draw)
        elif value is None:
            value = await store.next_invoice_number(await self._uow.connection(), inv.company_id)
        return (await self._uow.number_formats())[0].format(value)

    async def number_taken(self, number: str, exclude_id: str = "") -> bool:
        return await store.number_taken(await self._uow.connection(), self._uow.company_id, number, exclude_id)

    def add(self, inv: Invoice, document: bytes) -> None:
        """A new invoice (ids assigned) with its payments and memos, and its stored document."""
        self.stored.append(inv)
        self._uow.pieces.extend(store.insert_pieces(inv, document))

    def save(self, inv: Invoice, document: bytes, *, lines: bool = False) -> None:
        """A read invoice's new state (version bumped, ids assigned): the header, the payments and memos it
        gained, and with `lines` its lines and taxes (replaced)."""
        self.stored.append(inv)
        known = self._loaded.get(inv.id, set())
        new_allocations = [a for a in inv.allocations if a.id not in known]
        new_memos = [m for m in inv.credit_memos if m.id not in known]
        pieces = self._uow.pieces
        pieces.append(store.update_piece(inv, document))
        pieces.extend(store.payment_pieces(inv, new_allocations, new_memos))
        if lines:
            self._uow.replaced_lines.append(inv)
            pieces.extend(store.lines_pieces(inv))

    def delete(self, inv: Invoice) -> None:
        self._uow.pieces.append(store.delete_piece(inv))


class UnitOfWork:
    def __init__(
        self,
        factory: UnitOfWorkFactory,
        company_id: str,
        operation: str,
        run: AsyncRun | None,
        data_type: str,
        optimistic: bool = False,
    ) -> None:
        require_company(company_id)
        # Optimistic: reads outside a transaction, and a commit that writes only if they still hold (the
        # guards). Only for use cases that read one invoice and write nothing but through the commit.
        self.optimistic = optimistic and run is None
        self.guards: list[Piece] = []  # what was read must still hold: invoices at their versions, operations
        self.number_guard: Piece | None = None  # the number drawn, if one was
        self.notify: list[str] = []  # channels to wake at commit besides the change feed's
        self._operation_write: OperationWrite | None = None  # None: the write's own (see _operation_piece)
        self._status_event = True
        self._adopted = False
        self.pool = factory.pool
        self.numbering = factory.numbering
        self._begin = factory.begin
        self.company_id = company_id
        self.run = run
        self.now = utcnow()
        self.operation = _operation(company_id, operation, data_type, run, self.now)
        self.invoices = Invoices(self)
        self.pieces: list[Piece] = []  # the write statement, built as the use case goes
        self.replaced_lines: list[Invoice] = []
        self.changes: list[Change] = []  # every change: the feed gets them all, the operation the recorded
        self._conn: asyncpg.Connection | None = None
        self._committed = False
        self.profile_read: CompanyProfile | None = None  # read once, or with a finalization's locking read

    async def profile(self) -> CompanyProfile:
        """The company's profile as of this unit of work's transaction."""
        if self.profile_read is None:
            self.profile_read = await profiles.load(await self.connection(), self.company_id)
        return self.profile_read

    async def number_formats(self) -> tuple[NumberFormat, NumberFormat]:
        """(invoice, credit note) number formats: the profile's, else the settings'."""
        return (await self.profile()).numbering(self.numbering)

    def record(self, *changes: Change) -> None:
        self.changes.extend(changes)

    def queue(self, request: bytes, lease: tuple[str, datetime] | None = None) -> None:
        """The write's operation stays PENDING (202) with its request, so a worker applies it (or finishes
        what this process leaves undone), leased (owner, until) to whoever applies it now; with a run (a
        worker's), the run keeps its lease until then instead (PENDING already: no status event)."""
        op, run = self.operation, self.run
        op.status, op.status_code = PushStatus.PENDING, 202
        if run is None:
            self._operation_write = lambda op: push_store.insert_piece(op, request, lease)
        elif lease is not None:
            self._operation_write = lambda op: push_store.hold_piece(op, run.owner, lease[1])
            self._status_event = False

    def adopt(self, op: PushOperation, guard: Piece | None, write: OperationWrite | None) -> None:
        """This write stores `op` as it is to be, an operation that is not a record of the write itself:
        one stored before (a send's, a timed-out or a requeued one) or the write's whole content (a refusal,
        a queued write): `write` its piece (None: the write's own, see _operation_piece), `guard` what must
        still hold of it (else the commit writes nothing and raises Conflict). A failure to write it is
        not recorded as another operation."""
        self.operation = op
        if guard is not None:
            self.guards.append(guard)
        self._operation_write = write
        self._adopted = True

    async def connection(self) -> asyncpg.Connection:
        """The unit of work's connection, in its transaction (begun on first use, with the write's
        statement time limit in the same round trip); an optimistic one's is in none."""
        if self._conn is None:
            conn = await self.pool.acquire()
            try:
                if not self.optimistic:
                    await conn.execute(self._begin)
            except BaseException:
                await self.pool.release(conn)
                raise
            self._conn = conn
        return self._conn

    async def commit(self) -> None:
        for inv in self.invoices.stored:
            lifecycle.check_invariants(inv)  # a breach is a bug: InvariantBreach, nothing is written
        op = self.operation
        op.changes = [c for c in self.changes if c.recorded]
        if op.status is not PushStatus.PENDING:
            op.completed_on_utc = utcnow()
        write = self._operation_write or (lambda op: _operation_piece(op, self.run))
        announced = feed(op, self.changes, self._status_event)
        pieces = [*self.pieces, write(op), events.append_piece(announced, self.now)]
        finals = [events.NOTIFY_NEW, *(f"pg_notify('{channel}', '')" for channel in self.notify)]
        guards = [*self.guards, *([self.number_guard] if self.number_guard else [])]
        # A transaction when something was read under row locks, or a run's lease is to be checked and no
        # guard does it (nothing read, the lease guarded: one statement is enough).
        in_transaction = not self.optimistic and (self._conn is not None or (self.run is not None and not guards))
        if self.optimistic and self.replaced_lines:
            raise RuntimeError("an optimistic unit of work cannot replace lines (a statement of its own)")
        if in_transaction:
            conn = await self.connection()
            for inv in self.replaced_lines:
                await store.delete_lines(conn, inv)
        if guards:  # written only if what was read still holds (outside a transaction: two round trips)
            async with self._statement_connection(in_transaction) as conn:
                failed = await statement.execute_guarded(conn, guards, pieces, finals)
            if failed is None:
                raise Conflict(op.key)
        else:  # nothing read (a draft create): one statement, its own transaction; or in the transaction
            async with self._statement_connection(in_transaction) as conn:
                failed = await statement.execute(conn, pieces, ", ".join(finals))
        if push_store.LEASE in failed:
            raise LeaseLost(op.key)
        if failed:  # the invoice, credit note or payment row that was locked or guarded is not as read
            raise RuntimeError(f"{', '.join(failed)} of {op.key} changed under its row lock")
        if in_transaction:
            await (await self.connection()).execute("COMMIT")
        self._committed = True

    @contextlib.asynccontextmanager
    async def _statement_connection(self, in_transaction: bool) -> AsyncIterator[asyncpg.Connection]:
        """The unit of work's connection if it has one, or needs one (a transaction), else one from the pool
        for the write statement alone."""
        if self._conn is not None or in_transaction:
            yield await self.connection()
        else:
            async with self.pool.acquire() as conn:
                yield conn

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if not self._committed and not self.optimistic:
                with contextlib.suppress(Exception):  # a broken connection: the pool discards it
                    await conn.execute("ROLLBACK")
            await self.pool.release(conn)
        if exc is None or isinstance(exc, LeaseLost | Conflict | InvariantBreach) or not isinstance(exc, Exception):
            return
        error = exc if isinstance(exc, DomainError) else domain_error(exc)
        if self._adopted:  # the operation is another write's: it is not this one's to fail
            pass
        elif isinstance(error, NotFound):
            if self.run is not None:  # the asynchronous operation still ends, FAILED
                await _record_failure(self.pool, self.operation, NotFound("record", ""), self.run, quiet=True)
        elif isinstance(error, DomainError):
            await _record_failure(self.pool, self.operation, error, self.run)
        if error is not None and error is not exc:
            raise error from exc


async def store_operation(
    pool: asyncpg.Pool, op: PushOperation, run: AsyncRun | None, request: bytes | None = None, notify: str = ""
) -> None:
    """A push operation that changes nothing else (a refusal, a queued write, one given up on) with its
    status event, by a unit of work's commit in one statement: inserted (a PENDING one with `request`), or
    completing the leased one while the lease holds (else LeaseLost). `notify` names one more channel to
    wake at commit."""
    try:
        async with UnitOfWorkFactory(pool, SETTINGS_NUMBERING)(op.company_id, op.operation, run=run) as uow:
            uow.adopt(op, push_store.lease_guard(op, run.owner) if run else None, None)
            if request is not None:
                uow.queue(request)
            uow.notify.extend([notify] if notify else [])
            await uow.commit()
    except Conflict:  # the lease is gone
        raise LeaseLost(op.key) from None


async def _record_failure(
    pool: asyncpg.Pool, op: PushOperation, exc: DomainError, run: AsyncRun | None, quiet: bool = False
) -> None:
    """What a refused write leaves: a FAILED operation with the reason (and its event), in one statement."""
    op.status, op.status_code, op.error_message = PushStatus.FAILED, exc.status_code, exc.message[:2000]
    op.errors = exc.violations[:MAX_STORED_VIOLATIONS] if isinstance(exc, InvalidArgument) else []
    op.changes, op.completed_on_utc = [], utcnow()
    try:
        await store_operation(pool, op, run)
    except Exception as error:  # the client still gets its real error
        log.error("could not record failed push operation %s: %r", op.key, error)
        return
    if not quiet:
        exc.push_operation_key = op.key


class UnitOfWorkFactory:
    """Makes the unit of work of each write: `factory(company_id, operation, run=run)`."""

    def __init__(self, pool: asyncpg.Pool, numbering: Numbering, statement_timeout_ms: int = 0) -> None:
        self.pool = pool
        self.numbering = numbering
        # Write transactions hold row locks: their statements get their own, shorter limit (0: the
        # connection's). SET LOCAL ends with the transaction; it goes with BEGIN, in one round trip.
        limit = f"; SET LOCAL statement_timeout = {int(statement_timeout_ms)}" if statement_timeout_ms else ""
        self.begin = f"BEGIN{limit}"
        self._turns: weakref.WeakValueDictionary[tuple[str, ...], asyncio.Lock] = weakref.WeakValueDictionary()
        self._contended: dict[tuple[str, ...], float] = {}  # kind of write -> until when it takes row locks

    def _turn(self, key: tuple[str, ...]) -> asyncio.Lock:
        """This process's lock on `key`, alive while someone holds or waits for it."""
        lock = self._turns.get(key)
        if lock is None:
            lock = self._turns[key] = asyncio.Lock()
        return lock

    def _optimistic_now(self, kind: tuple[str, ...]) -> bool:
        until = self._contended.get(kind)
        if until is None:
            return True
        if until > time.monotonic():
            return False
        del self._contended[kind]
        return True

    def _met_contention(self, kind: tuple[str, ...]) -> None:
        now = time.monotonic()
        if len(self._contended) >= _CONTENDED_KEPT:
            self._contended = {k: t for k, t in self._contended.items() if t > now}
        self._contended[kind] = now + CONTENDED_SECONDS

    def __call__(
        self,
        company_id: str,
        operation: str,
        *,
        run: AsyncRun | None = None,
        data_type: str = "invoices",
        optimistic: bool = False,
    ) -> UnitOfWork:
        return UnitOfWork(self, company_id, operation, run, data_type, optimistic)

    async def optimistic(
        self,
        company_id: str,
        operation: str,
        write: Callable[[UnitOfWork], Awaitable[T]],
        *,
        run: AsyncRun | None = None,
        turns: tuple[str, ...] = (),
    ) -> tuple[T, PushOperation]:
        """`write` (read one invoice with get_for_update, apply the domain rule, save) committed in two
        round trips; when a concurrent writer came first (Conflict), run again on a fresh read under row
        locks in a transaction, which cannot conflict: a contended write is never refused for contention.
        A worker's run (its lease is checked in the transaction) and a refusal by the domain rule are not
        retried.

        `turns` names what writes of this kind contend for (a company's number sequence, an invoice): the
        calls of this process take turns on it, so they do not conflict with each other in the database,
        where each would cost a wasted attempt. Between processes the guards decide, and once they met a
        conflict, writes of this kind take row locks from the start for CONTENDED_SECONDS."""
        kind = turns or (company_id, operation)
        async with self._turn(turns) if turns else contextlib.nullcontext():
            for optimistic in ([True] if run is None and self._optimistic_now(kind) else []) + [False]:
                try:
                    async with self(company_id, operation, run=run, optimistic=optimistic) as uow:
                        result = await write(uow)
                        await uow.commit()
                except Conflict:
                    log.debug("%s of company %s met a concurrent writer; running it again", operation, company_id)
                    self._met_contention(kind)
                    continue
                return result, uow.operation
        raise AssertionError("unreachable: the last attempt takes locks and raises no Conflict")

    async def record_refusal(
        self, company_id: str, operation: str, data_type: str, exc: DomainError, *, run: AsyncRun | None = None
    ) -> None:
        """A FAILED operation for a write refused outside its unit of work, e.g. while reading the request."""
        v = Violations()
        check_company_id(v, "company_id", company_id)
        if v and run is None:
            return  # no company to file it under
        await _record_failure(self.pool, _operation(company_id, operation, data_type, run, utcnow()), exc, run)
