"""Invoice use cases: load, apply the domain rule, save, all in one transaction."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from service.config import Settings
from service.domain import lifecycle
from service.domain.attachments import LimitExceeded
from service.domain.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, Violations
from service.domain.ids import parse_id
from service.domain.models import (
    CreditMemo,
    Invoice,
    LineItem,
    PaymentAllocation,
    PaymentStatus,
    Status,
    TaxationItem,
)
from service.domain.money import MoneyDefaults
from service.domain.push import Change, ChangeType, EventType, PushOperation
from service.handlers.writes import Conn, Writer, require_company, utcnow
from service.store import invoices as store
from service.store import money_settings
from service.store.statement import Piece

log = logging.getLogger(__name__)
MAX_BATCH = 50
MONEY_DEFAULTS_TTL = 5.0  # seconds between refreshes of the money defaults in each process
MAX_BATCH_ITEMS = 1000
MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_LINES_POSITION = 2**31 - 1
# What one invoice may grow to, serialized (lines, texts, payments, memos, metadata together): every answer
# that carries it must fit in one gRPC message with its envelope (push operation, tokens, event fields).
MAX_INVOICE_BYTES = 3 * 1024 * 1024
ANSWER_ENVELOPE = 256 * 1024
RuleFn = Callable[[Conn, Invoice, datetime], Awaitable[None]]
_JSON_ESCAPED = (b'"', b"\\", b"\n", b"\r", b"\t")


def json_escapes(document: bytes) -> int:
    """The bytes a vendor export (JSON) adds by escaping the invoice's text: one per quote, backslash, line
    feed, carriage return and tab (other control characters are refused). Counted in the serialized form,
    so a few framing bytes of those values count too: a bound, cheap at any size."""
    return sum(document.count(c) for c in _JSON_ESCAPED)


@dataclass(frozen=True, slots=True)
class UpdateSpec:
    patch: Invoice  # invoice.id names the target; only `paths` are read from it
    paths: frozenset[str]
    etag: str = ""


@dataclass(frozen=True, slots=True)
class CreditBalance:
    company_id: str
    customer_id: str
    currency: str
    balance: Decimal
    update_time: datetime


@dataclass(frozen=True, slots=True)
class ApplicationPart:
    payment_id: str
    credit_memo_id: str
    applied_amount: Decimal
    source: str
    create_time: datetime | None


_EVENTS = {
    "FinalizeInvoice": EventType.INVOICE_FINALIZED,
    "BatchFinalizeInvoices": EventType.INVOICE_FINALIZED,
    "VoidInvoice": EventType.INVOICE_VOIDED,
    "CancelInvoice": EventType.INVOICE_VOIDED,
    "ReverseInvoice": EventType.INVOICE_VOIDED,
    "WriteOffInvoice": EventType.INVOICE_VOIDED,
}
_PAYMENTS = frozenset({"RecordPayment", "UpdatePaymentStatus", "AttemptPayment"})


def _modified(inv: Invoice, operation: str = "") -> list[Change]:
    """The change an operation made, with the event the feed should say (paid, voided, finalized...)."""
    event = _EVENTS.get(operation, EventType.INVOICE_MODIFIED)
    if operation in _PAYMENTS and inv.status is Status.PAID:
        event = EventType.INVOICE_PAID
    changes = [Change(ChangeType.MODIFIED, inv.id, event=event)]
    if event is EventType.INVOICE_FINALIZED and inv.status is Status.PAID:  # a zero total is paid at once
        changes.append(Change(ChangeType.MODIFIED, inv.id, event=EventType.INVOICE_PAID, recorded=False))
    return changes


def _balance(row: asyncpg.Record) -> CreditBalance:
    return CreditBalance(row["company_id"], row["customer_id"], row["currency"], row["balance"], row["update_time"])


def _batch_size(v: Violations, n: int) -> None:
    if n == 0:
        v.add("requests", "at least one request is required")
    elif n > MAX_BATCH:
        v.add("requests", f"at most {MAX_BATCH} invoices per call; got {n}")
    v.raise_if_any()


class InvoiceHandlers:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, render: Callable[[Invoice], bytes]) -> None:
        self.pool = pool
        self.writer = Writer(pool, settings.write_statement_timeout_ms)
        self.settings = settings
        self.render = render  # the canonical serialized form, stored with every change
        self.max_answer = settings.max_message_bytes - ANSWER_ENVELOPE  # invoices in one write's answer
        self.max_document = min(MAX_INVOICE_BYTES, self.max_answer)
        self._money: dict[str, MoneyDefaults] = {}
        self._money_at = float("-inf")
        self._money_refresh: asyncio.Task[None] | None = None
        self._money_timer: asyncio.Task[None] | None = None

    def _document(self, inv: Invoice, path: str, sizes: list[int] | None = None) -> bytes:
        """The invoice's stored form, made by every write that stores an invoice (create, update, lifecycle,
        payments): refused before anything is written when it outgrows the bound or breaks an invariant (a
        bug: InvariantBreach rolls the write back and the client gets INTERNAL)."""
        lifecycle.check_invariants(inv)
        document = self.render(inv)
        measured = len(document) + json_escapes(document)
        if measured > self.max_document:
            raise LimitExceeded(
                f"{path} would take {measured:,} bytes serialized (quotes, backslashes and line breaks counted "
                f"twice); an invoice is at most {self.max_document:,} (its lines, texts, payments and metadata "
                "together): shorten its texts or split it",
                f"{path}: serialized size",
            )
        if sizes is not None:
            sizes.append(len(document))
        return document

    def _check_answer(self, sizes: list[int]) -> None:
        """A batch's answer carries all its invoices: it must fit in one message too."""
        if sum(sizes) > self.max_answer:
            raise LimitExceeded(
                f"the batch's invoices take {sum(sizes):,} bytes serialized together; a batch answer holds at "
                f"most {self.max_answer:,}: send fewer invoices per call",
                "requests: serialized size",
            )

    async def load_money_defaults(self) -> None:
        """Reads every company's money defaults (a small table: only companies that set theirs)."""
        self._money = await money_settings.load_all(self.pool)
        self._money_at = time.monotonic()

    def money_defaults(self, company_id: str) -> MoneyDefaults:
        """The company's rounding defaults from the snapshot loaded at start, refreshed in the background
        every MONEY_DEFAULTS_TTL seconds: a create never waits for a read (the draft create stays one
        statement), and a changed default applies within that time."""
        if time.monotonic() - self._money_at > MONEY_DEFAULTS_TTL and (
            self._money_refresh is None or self._money_refresh.done()
        ):
            self._money_refresh = asyncio.create_task(self._refresh_money_defaults())
        return self._money.get(company_id, MoneyDefaults())

    def start_money_refresh(self) -> None:
        """Keeps the defaults at most MONEY_DEFAULTS_TTL seconds old whether or not calls come: refreshed
        only when a create asked, the first create after a quiet spell used defaults of any age."""
        self._money_timer = asyncio.create_task(self._keep_money_defaults())

    async def stop_money_refresh(self) -> None:
        if self._money_timer is not None:
            self._money_timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._money_timer

    async def _keep_money_defaults(self) -> None:
        while True:
            await asyncio.sleep(MONEY_DEFAULTS_TTL)
            await self._refresh_money_defaults()

    async def _refresh_money_defaults(self) -> None:
        try:
            await self.load_money_defaults()
        except (OSError, asyncpg.PostgresError) as exc:  # the last snapshot stays; tried again next time
            log.warning("money defaults not refreshed: %s", exc)

    # -- helpers ----------------------------------------------------------------------------

    async def _locked(self, conn: Conn, company_id: str, invoice_id: str, etag: str = "") -> Invoice:
        inv = await store.load_invoice(conn, company_id, invoice_id, lock=True)
        if inv is None:
            raise NotFound("invoice", invoice_id)
        lifecycle.check_etag(inv, etag)
        return inv

    def _check_number(self, number: str, path: str) -> None:
        """Numbers of the sequence's form are the service's to give, which keeps the sequence gapless."""
        prefix = self.settings.invoice_number_prefix
        if number.startswith(prefix) and number[len(prefix) :].isdigit():
            raise InvalidArgument(
                [FieldViolation(path, f"numbers like {prefix}{'0' * self.settings.invoice_number_width} are assigned "
                                      "at finalization; leave invoice_number empty or use another form")]
            )  # fmt: skip

    async def _number(self, conn: Conn, inv: Invoice) -> str:
        if inv.invoice_number:
            return inv.invoice_number
        s = self.settings
        return await store.next_invoice_number(conn, inv.company_id, s.invoice_number_prefix, s.invoice_number_width)

    async def _save(
        self, conn: Conn, inv: Invoice, now: datetime, lines: bool = False, sizes: list[int] | None = None
    ) -> None:
        inv.modified_date = now
        inv.version += 1
        store.assign_ids(inv)
        await store.update_header(conn, inv, self._document(inv, "invoice", sizes))
        if lines:
            await store.replace_lines(conn, inv)

    async def _mutate(
        self, company_id: str, operation: str, invoice_id: str, etag: str, rule: RuleFn
    ) -> tuple[Invoice, PushOperation]:
        """The common shape of a lifecycle write: lock, apply the rule, save the header."""

        async def work(conn: Conn, now: datetime) -> tuple[Invoice, list[Change]]:
            inv = await self._locked(conn, company_id, invoice_id, etag)
            await rule(conn, inv, now)
            await self._save(conn, inv, now)
            return inv, _modified(inv, operation)

        return await self.writer.run(company_id, operation, work)

    # -- create -----------------------------------------------------------------------------

    def _new(self, company_id: str, inv: Invoice, now: datetime, path: str, defaults: MoneyDefaults) -> None:
        inv.company_id, inv.version = company_id, 1
        inv.create_time = inv.modified_date = now
        lifecycle.prepare_new(inv, Violations(), now, path, defaults)
        if inv.invoice_number:
            self._check_number(inv.invoice_number, f"{path}.invoice_number")

    async def _create_one(
        self,
        conn: Conn,
        company_id: str,
        inv: Invoice,
        now: datetime,
        path: str,
        defaults: MoneyDefaults,
        sizes: list[int] | None = None,
    ) -> Invoice:
        self._new(company_id, inv, now, path, defaults)
        if inv.invoice_number and await store.number_taken(conn, company_id, inv.invoice_number):
            raise AlreadyExists(
                f"invoice number {inv.invoice_number!r} is already used in company {company_id}",
                f"{path}.invoice_number",
            )
        if inv.status is not Status.DRAFT:
            inv.invoice_number = await self._number(conn, inv)
        store.assign_ids(inv)
        await store.insert_invoice(conn, inv, self._document(inv, path, sizes))
        return inv

    async def create(
        self, company_id: str, inv: Invoice, operation: str = "CreateInvoice"
    ) -> tuple[Invoice, PushOperation]:
        defaults = self.money_defaults(company_id)
        if inv.invoice_number or inv.status is not Status.DRAFT or inv.allocations or inv.credit_memos:

            async def work(conn: Conn, now: datetime) -> tuple[Invoice, list[Change]]:
                created = await self._create_one(conn, company_id, inv, now, "invoice", defaults)
                return created, [Change(ChangeType.CREATED, created.id)]

            return await self.writer.run(company_id, operation, work)

        def prepare(now: datetime) -> tuple[Invoice, list[Change], list[Piece]]:
            """The common case, a draft with no number to check or assign: nothing to read, only inserts."""
            self._new(company_id, inv, now, "invoice", defaults)
            store.assign_ids(inv)
            return inv, [Change(ChangeType.CREATED, inv.id)], store.insert_pieces(inv, self._document(inv, "invoice"))

        return await self.writer.run_inserts(company_id, operation, prepare)

    async def batch_create(self, company_id: str, invoices: list[Invoice]) -> tuple[list[Invoice], PushOperation]:
        v = Violations()
        _batch_size(v, len(invoices))
        items = sum(len(inv.lines) for inv in invoices)
        if items > MAX_BATCH_ITEMS:
            v.add("requests", f"at most {MAX_BATCH_ITEMS} line items per call; got {items}")
        v.raise_if_any()
        numbers = [inv.invoice_number for inv in invoices if inv.invoice_number]
        if len(numbers) != len(set(numbers)):
            raise AlreadyExists("the batch uses the same invoice_number twice", "requests")

        defaults = self.money_defaults(company_id)

        async def work(conn: Conn, now: datetime) -> tuple[list[Invoice], list[Change]]:
            sizes: list[int] = []
            created = [
                await self._create_one(conn, company_id, inv, now, f"requests[{i}].invoice", defaults, sizes)
                for i, inv in enumerate(invoices)
            ]
            self._check_answer(sizes)
            return created, [Change(ChangeType.CREATED, inv.id) for inv in created]

        return await self.writer.run(company_id, "BatchCreateInvoices", work)

    async def preview(self, company_id: str, inv: Invoice) -> Invoice:
        require_company(company_id)
        inv.company_id = company_id
        lifecycle.prepare_new(inv, Violations(), utcnow(), defaults=self.money_defaults(company_id))
        return inv

    # -- read -------------------------------------------------------------------------------

    async def get(self, company_id: str, invoice_id: str = "", number: str = "") -> Invoice:
        require_company(company_id)
        if not invoice_id and not number:
            raise InvalidArgument([FieldViolation("invoice_id", "invoice_id or invoice_number is required")])
        async with self.pool.acquire() as conn:
            inv = await store.load_invoice(conn, company_id, invoice_id, number)
        if inv is None:
            raise NotFound("invoice", invoice_id or number)
        return inv

    async def get_document(self, company_id: str, invoice_id: str = "", number: str = "") -> bytes:
        """The stored document: a serialized GetInvoiceResponse, as ListInvoices streams it too."""
        require_company(company_id)
        if not invoice_id and not number:
            raise InvalidArgument([FieldViolation("invoice_id", "invoice_id or invoice_number is required")])
        async with self.pool.acquire() as conn:
            # invoice_id is a key (id, else number); invoice_number names a number and nothing else.
            doc = await store.load_document(conn, company_id, invoice_id or number, number_only=not invoice_id)
        if doc is None:
            raise NotFound("invoice", invoice_id or number)
        return doc or self.render(await self.get(company_id, invoice_id, number))

    # -- update / delete --------------------------------------------------------------------

    async def _update_one(
        self, conn: Conn, company_id: str, spec: UpdateSpec, now: datetime, path: str, sizes: list[int] | None = None
    ) -> Invoice:
        inv = await self._locked(conn, company_id, spec.patch.id, spec.etag)
        old_number = inv.invoice_number
        lifecycle.apply_update(inv, spec.patch, set(spec.paths), Violations(), path)
        changed = inv.invoice_number != old_number and inv.invoice_number
        if changed:
            self._check_number(inv.invoice_number, f"{path}.invoice_number")
        if changed and await store.number_taken(conn, company_id, inv.invoice_number, inv.id):
            raise AlreadyExists(f"invoice number {inv.invoice_number!r} is already used", f"{path}.invoice_number")
        await self._save(conn, inv, now, lines="line_items" in spec.paths, sizes=sizes)
        return inv

    async def update(self, company_id: str, spec: UpdateSpec) -> tuple[Invoice, PushOperation]:
        async def work(conn: Conn, now: datetime) -> tuple[Invoice, list[Change]]:
            inv = await self._update_one(conn, company_id, spec, now, "invoice")
            return inv, _modified(inv)

        return await self.writer.run(company_id, "UpdateInvoice", work)

    async def batch_update(self, company_id: str, specs: list[UpdateSpec]) -> tuple[list[Invoice], PushOperation]:
        v = Violations()
        _batch_size(v, len(specs))
        items = sum(len(s.patch.lines) for s in specs if "line_items" in s.paths)
        if items > MAX_BATCH_ITEMS:
            v.add("requests", f"at most {MAX_BATCH_ITEMS} line items per call; got {items}")
        v.raise_if_any()
        ids = [s.patch.id for s in specs]
        if len({parse_id(i) or i for i in ids}) != len(ids):
            raise InvalidArgument([FieldViolation("requests", "each invoice may appear once per batch")])

        async def work(conn: Conn, now: datetime) -> tuple[list[Invoice], list[Change]]:
            await self._lock_in_order(conn, company_id, ids)
            sizes: list[int] = []
            out = [
                await self._update_one(conn, company_id, s, now, f"requests[{i}].invoice", sizes)
                for i, s in enumerate(specs)
            ]
            self._check_answer(sizes)
            return out, [c for inv in out for c in _modified(inv)]

        return await self.writer.run(company_id, "BatchUpdateInvoices", work)

    async def _lock_in_order(self, conn: Conn, company_id: str, keys: list[str]) -> None:
        """Batches lock all their rows up front, in id order, so two batches never deadlock."""
        found = await store.lock_invoices(conn, company_id, keys)
        for key in keys:
            if key not in found:
                raise NotFound("invoice", key)

    async def delete(self, company_id: str, invoice_id: str, etag: str) -> PushOperation:
        async def work(conn: Conn, now: datetime) -> tuple[None, list[Change]]:
            inv = await self._locked(conn, company_id, invoice_id, etag)
            lifecycle.check_deletable(inv)
            await store.delete_invoice(conn, inv)
            return None, [Change(ChangeType.DELETED, inv.id)]

        _, op = await self.writer.run(company_id, "DeleteInvoice", work)
        return op

    # -- lifecycle --------------------------------------------------------------------------

    async def _finalize_one(
        self,
        conn: Conn,
        company_id: str,
        invoice_id: str,
        etag: str,
        issue_date: datetime | None,
        now: datetime,
        sizes: list[int] | None = None,
    ) -> Invoice:
        inv = await self._locked(conn, company_id, invoice_id, etag)
        lifecycle.check_can_finalize(inv)  # before a number is drawn from the sequence
        lifecycle.finalize(inv, await self._number(conn, inv), now, issue_date)
        await self._save(conn, inv, now, sizes=sizes)
        return inv

    async def finalize(
        self, company_id: str, invoice_id: str, etag: str = "", issue_date: datetime | None = None
    ) -> tuple[Invoice, PushOperation]:
        async def work(conn: Conn, now: datetime) -> tuple[Invoice, list[Change]]:
            inv = await self._finalize_one(conn, company_id, invoice_id, etag, issue_date, now)
            return inv, _modified(inv, "FinalizeInvoice")

        return await self.writer.run(company_id, "FinalizeInvoice", work)

    async def batch_finalize(
        self, company_id: str, requests: list[tuple[str, str, datetime | None]]
    ) -> tuple[list[Invoice], PushOperation]:
        _batch_size(Violations(), len(requests))
        ids = [r[0] for r in requests]
        if len({parse_id(i) or i for i in ids}) != len(ids):
            raise InvalidArgument([FieldViolation("requests", "each invoice may appear once per batch")])

        async def work(conn: Conn, now: datetime) -> tuple[list[Invoice], list[Change]]:
            await self._lock_in_order(conn, company_id, ids)
            sizes: list[int] = []
            out = [await self._finalize_one(conn, company_id, i, e, d, now, sizes) for i, e, d in requests]
            self._check_answer(sizes)
            return out, [c for inv in out for c in _modified(inv, "BatchFinalizeInvoices")]

        return await self.writer.run(company_id, "BatchFinalizeInvoices", work)

    async def void(self, company_id: str, invoice_id: str, etag: str) -> tuple[Invoice, PushOperation, Decimal]:
        credited: list[Decimal] = []

        async def rule(conn: Conn, inv: Invoice, now: datetime) -> None:
            amount = lifecycle.void(inv, now)
            credited.append(amount)
            if amount > 0:
                await store.move_credit(
                    conn, inv.company_id, inv.customer_id, inv.currency, amount, "VOID", now, inv.id,
                    f"paid part of voided invoice {inv.invoice_number}",
                )  # fmt: skip

        inv, op = await self._mutate(company_id, "VoidInvoice", invoice_id, etag, rule)
        return inv, op, credited[0]

    async def cancel(self, company_id: str, invoice_id: str, etag: str) -> tuple[Invoice, PushOperation]:
        async def rule(conn: Conn, inv: Invoice, now: datetime) -> None:
            lifecycle.cancel(inv, now)

        return await self._mutate(company_id, "CancelInvoice", invoice_id, etag, rule)

    async def _memo_write(
        self, company_id: str, operation: str, invoice_id: str, etag: str, comment: str, reason_code: str
    ) -> tuple[Invoice, PushOperation, CreditMemo]:
        memos: list[CreditMemo] = []
        apply = lifecycle.reverse if operation == "ReverseInvoice" else lifecycle.write_off

        async def rule(conn: Conn, inv: Invoice, now: datetime) -> None:
            memo = apply(inv, now, comment, reason_code)
            await store.insert_credit_memo(conn, inv, memo)
            memos.append(memo)

        inv, op = await self._mutate(company_id, operation, invoice_id, etag, rule)
        return inv, op, memos[0]

    async def reverse(
        self, company_id: str, invoice_id: str, etag: str, comment: str, reason_code: str
    ) -> tuple[Invoice, PushOperation, CreditMemo]:
        return await self._memo_write(company_id, "ReverseInvoice", invoice_id, etag, comment, reason_code)

    async def write_off(
        self, company_id: str, invoice_id: str, etag: str, comment: str, reason_code: str
    ) -> tuple[Invoice, PushOperation, CreditMemo]:
        return await self._memo_write(company_id, "WriteOffInvoice", invoice_id, etag, comment, reason_code)

    async def recalculate(self, company_id: str, invoice_id: str, finalize: bool) -> tuple[Invoice, PushOperation]:
        async def work(conn: Conn, now: datetime) -> tuple[Invoice, list[Change]]:
            inv = await self._locked(conn, company_id, invoice_id)
            lifecycle.recalculate(inv)
            if finalize:
                lifecycle.check_can_finalize(inv)
                lifecycle.finalize(inv, await self._number(conn, inv), now)
            await self._save(conn, inv, now, lines=True)
            return inv, _modified(inv, "FinalizeInvoice" if finalize else "")

        return await self.writer.run(company_id, "RecalculateInvoice", work)

    # -- payments ---------------------------------------------------------------------------

    async def record_payment(
        self, company_id: str, invoice_id: str, alloc: PaymentAllocation
    ) -> tuple[Invoice, PushOperation]:
        async def rule(conn: Conn, inv: Invoice, now: datetime) -> None:
            lifecycle.record_payment(inv, alloc, now)
            await store.insert_allocation(conn, inv, alloc)

        return await self._mutate(company_id, "RecordPayment", invoice_id, "", rule)

    async def update_payment_status(
        self, company_id: str, invoice_id: str, status: PaymentStatus, amount: Decimal | None
    ) -> tuple[Invoice, PushOperation]:
        async def rule(conn: Conn, inv: Invoice, now: datetime) -> None:
            alloc = lifecycle.set_payment_status(inv, status, amount, now)
            if alloc is not None:
                await store.insert_allocation(conn, inv, alloc)

        return await self._mutate(company_id, "UpdatePaymentStatus", invoice_id, "", rule)

    async def attempt_payment(
        self, company_id: str, invoice_id: str
    ) -> tuple[Invoice, PushOperation, Decimal, CreditBalance]:
        result: list[tuple[Decimal, CreditBalance]] = []

        async def rule(conn: Conn, inv: Invoice, now: datetime) -> None:
            # Lock order everywhere: invoice, then balance.
            balance = await store.lock_credit_balance(conn, inv.company_id, inv.customer_id, inv.currency)
            alloc = lifecycle.attempt_payment(inv, balance, now)
            await store.insert_allocation(conn, inv, alloc)
            row = await store.move_credit(
                conn, inv.company_id, inv.customer_id, inv.currency, -alloc.applied_amount, "PAYMENT", now, inv.id,
                f"paid invoice {inv.invoice_number}",
            )  # fmt: skip
            result.append((alloc.applied_amount, _balance(row)))

        inv, op = await self._mutate(company_id, "AttemptPayment", invoice_id, "", rule)
        return inv, op, *result[0]

    async def add_credit(
        self, company_id: str, customer_id: str, currency: str, amount: Decimal, note: str
    ) -> tuple[CreditBalance, PushOperation]:
        async def work(conn: Conn, now: datetime) -> tuple[CreditBalance, list[Change]]:
            row = await store.move_credit(conn, company_id, customer_id, currency, amount, "MANUAL", now, None, note)
            lifecycle.check_credit_balance(row["balance"])  # over it: refused, the transaction rolls back
            return _balance(row), [Change(ChangeType.MODIFIED, customer_id, "customerCreditBalances")]

        return await self.writer.run(company_id, "AddCustomerCredit", work, data_type="customerCreditBalances")

    async def credit_balances(self, company_id: str, customer_id: str) -> list[CreditBalance]:
        require_company(company_id)
        async with self.pool.acquire() as conn:
            return [_balance(r) for r in await store.credit_balances(conn, company_id, customer_id)]

    async def trigger_communication(self, company_id: str, invoice_key: str) -> PushOperation:
        """FlexPrice comms trigger: an event carrying the whole invoice; the invoice itself is unchanged."""

        async def work(conn: Conn, now: datetime) -> tuple[None, list[Change]]:
            inv = await store.load_invoice(conn, company_id, invoice_key)
            if inv is None:
                raise NotFound("invoice", invoice_key)
            event = EventType.COMMUNICATION_TRIGGERED
            return None, [Change(ChangeType.MODIFIED, inv.id, event=event, payload=self.render(inv), recorded=False)]

        _, op = await self.writer.run(company_id, "TriggerInvoiceCommunication", work)
        return op

    # -- items, taxation, applications ------------------------------------------------------

    async def list_items(
        self, company_id: str, invoice_key: str, page_size: int, token: str
    ) -> tuple[list[LineItem], str]:
        require_company(company_id)
        v = Violations()
        if page_size < 0:
            v.add("page_size", "must not be negative")
        after = _decode_token(v, token, invoice_key)
        v.raise_if_any()
        size = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        async with self.pool.acquire() as conn:
            inv = await store.load_invoice(conn, company_id, invoice_key)
            if inv is None:
                raise NotFound("invoice", invoice_key)
            rows = await store.list_lines(conn, inv.company_id, inv.id, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        next_token = _encode_token(invoice_key, rows[-1][0]) if more else ""
        return [line for _, line in rows], next_token

    async def create_taxation_items(
        self, company_id: str, invoice_id: str, items: list[TaxationItem]
    ) -> tuple[list[TaxationItem], Invoice, PushOperation]:
        async def work(conn: Conn, now: datetime) -> tuple[Invoice, list[Change]]:
            inv = await self._locked(conn, company_id, invoice_id)
            for item in items:
                item.create_time = now
            lifecycle.add_taxation_items(inv, items, Violations())
            await self._save(conn, inv, now, lines=True)
            return inv, _modified(inv)

        inv, op = await self.writer.run(company_id, "CreateTaxationItems", work)
        return items, inv, op

    async def list_taxation_items(self, company_id: str, invoice_id: str, line_item_id: str) -> list[TaxationItem]:
        inv = await self.get(company_id, invoice_id)
        for line in inv.lines:
            if line.id == line_item_id:
                return line.taxation_items
        raise NotFound("line item", line_item_id)

    async def list_applications(self, company_id: str, invoice_id: str) -> list[ApplicationPart]:
        inv = await self.get(company_id, invoice_id)
        parts = [
            ApplicationPart(a.id, "", a.applied_amount, a.source.value, a.create_time) for a in inv.allocations
        ] + [ApplicationPart("", m.id, m.total_amount, "CREDIT_MEMO", m.create_time) for m in inv.credit_memos]
        return sorted(parts, key=lambda p: (p.create_time is None, p.create_time))


def _encode_token(scope: str, position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"s": scope, "p": position}).encode()).decode()


def _decode_token(v: Violations, token: str, scope: str) -> int:
    if not token:
        return -1
    try:
        if len(token) > 512:
            raise ValueError("too long")
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        position = data["p"]
        if data["s"] != scope or not isinstance(position, int) or not 0 <= position < MAX_LINES_POSITION:
            raise ValueError("out of range")
        return position
    except (ValueError, KeyError, TypeError, RecursionError):
        v.add("page_token", "is not a token from a previous page of this invoice's items")
        return -1
