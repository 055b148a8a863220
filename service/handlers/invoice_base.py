"""What the invoice use cases share: the stored document, batch limits, money defaults, the changes a
write records, and the unit of work every write goes through."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from service.config import Settings
from service.domain import profile
from service.domain.attachments import LimitExceeded
from service.domain.errors import DomainError, FieldViolation, InvalidArgument, NotFound, Unavailable, Violations
from service.domain.models import Invoice, Status
from service.domain.money import MoneyDefaults
from service.domain.push import Change, ChangeType, EventType, PushOperation
from service.einvoice import formats
from service.einvoice.document import Document
from service.handlers.listing import PageTokens
from service.handlers.unit_of_work import Numbering, UnitOfWork, UnitOfWorkFactory
from service.handlers.writes import require_company
from service.store import invoices as store
from service.store import money_settings
from service.store.db import connection

log = logging.getLogger(__name__)
MAX_BATCH = 50
MONEY_DEFAULTS_TTL = 5.0  # seconds between refreshes of the money defaults in each process
MAX_BATCH_ITEMS = 1000
# What one invoice may grow to, serialized (lines, texts, payments, memos, metadata together): every answer
# that carries it must fit in one gRPC message with its envelope (push operation, tokens, event fields).
MAX_INVOICE_BYTES = 3 * 1024 * 1024
ANSWER_ENVELOPE = 256 * 1024
_JSON_ESCAPED = (b'"', b"\\", b"\n", b"\r", b"\t")


def json_escapes(document: bytes) -> int:
    """The bytes a vendor export (JSON) adds by escaping the invoice's text: one per quote, backslash, line
    feed, carriage return and tab (other control characters are refused). Counted in the serialized form,
    so a few framing bytes of those values count too: a bound, cheap at any size."""
    return sum(document.count(c) for c in _JSON_ESCAPED)


def modified(inv: Invoice, event: EventType = EventType.INVOICE_MODIFIED) -> Change:
    """An invoice changed, with the event the feed says (voided, paid...)."""
    return Change(ChangeType.MODIFIED, inv.id, event=event)


def finalized(inv: Invoice) -> list[Change]:
    """A finalization; a zero total is paid at once, which the feed says too (the operation lists one change)."""
    changes = [modified(inv, EventType.INVOICE_FINALIZED)]
    if inv.status is Status.PAID:
        changes.append(Change(ChangeType.MODIFIED, inv.id, event=EventType.INVOICE_PAID, recorded=False))
    return changes


def paid(inv: Invoice) -> Change:
    """A payment: INVOICE_PAID when it settled the invoice."""
    return modified(inv, EventType.INVOICE_PAID if inv.status is Status.PAID else EventType.INVOICE_MODIFIED)


def batch_size(n: int) -> None:
    v = Violations()
    if n == 0:
        v.add("requests", "at least one request is required")
    elif n > MAX_BATCH:
        v.add("requests", f"at most {MAX_BATCH} invoices per call; got {n}")
    v.raise_if_any()


def batch_items(n: int) -> None:
    if n > MAX_BATCH_ITEMS:
        raise InvalidArgument([FieldViolation("requests", f"at most {MAX_BATCH_ITEMS} line items per call; got {n}")])


@dataclass(frozen=True, slots=True)
class Stored:
    """What a single-invoice write stored: the invoice, its document (rendered once, by the write, as the
    store keeps it: the answer's `invoice` already serialized, see transport/document.py) and the write's
    push operation."""

    invoice: Invoice
    document: bytes
    operation: PushOperation


@dataclass(frozen=True, slots=True)
class UpdateSpec:
    patch: Invoice  # invoice.id names the target; only `paths` are read from it
    paths: frozenset[str]
    etag: str = ""


class InvoiceUseCases:
    """The state every invoice use case reads; the use cases are in invoices.py, lifecycle_writes.py and
    payments.py."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, render: Callable[[Invoice], bytes]) -> None:
        self.pool = pool
        numbering = Numbering(settings.invoice_number_prefix, settings.invoice_number_width)
        self.uow = UnitOfWorkFactory(pool, numbering, settings.write_statement_timeout_ms)
        self.settings = settings
        self.render = render  # the canonical serialized form, stored with every change
        self.item_tokens = PageTokens(settings.page_token_secret.encode(), "invoice items")
        self.max_answer = settings.max_message_bytes - ANSWER_ENVELOPE  # invoices in one write's answer
        self.max_document = min(MAX_INVOICE_BYTES, self.max_answer)
        self._money: dict[str, MoneyDefaults] = {}
        self._money_at = float("-inf")
        self._money_refresh: asyncio.Task[None] | None = None
        self._money_timer: asyncio.Task[None] | None = None

    def _document(self, inv: Invoice, path: str, sizes: list[int] | None = None) -> bytes:
        """The invoice's stored form, made by every write that stores an invoice (create, update, lifecycle,
        payments): refused before anything is written when it outgrows the bound. (The unit of work checks
        the invariants before it commits.)"""
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

    def _save(
        self, uow: UnitOfWork, inv: Invoice, path: str = "invoice", sizes: list[int] | None = None, lines: bool = False
    ) -> bytes:
        """A read invoice's new state, with its document, for the unit of work's commit; the document."""
        inv.modified_date = uow.now
        inv.version += 1
        store.assign_ids(inv)
        document = self._document(inv, path, sizes)
        uow.invoices.save(inv, document, lines=lines)
        return document

    def _check_answer(self, sizes: list[int]) -> None:
        """A batch's answer carries all its invoices: it must fit in one message too."""
        if sum(sizes) > self.max_answer:
            raise LimitExceeded(
                f"the batch's invoices take {sum(sizes):,} bytes serialized together; a batch answer holds at "
                f"most {self.max_answer:,}: send fewer invoices per call",
                "requests: serialized size",
            )

    async def _check_number(self, uow: UnitOfWork, number: str, path: str) -> None:
        """Numbers of the sequence's form (the company profile's, else the settings') are the service's to
        give, which keeps the sequence gapless."""
        numbering = (await uow.number_formats())[0]
        if numbering.is_generated(number):
            example = numbering.format(0)
            advice = "are assigned at finalization; leave invoice_number empty or use another form"
            raise InvalidArgument([FieldViolation(path, f"numbers like {example} {advice}")])

    async def get(self, company_id: str, invoice_id: str = "", number: str = "") -> Invoice:
        require_company(company_id)
        if not invoice_id and not number:
            raise InvalidArgument([FieldViolation("invoice_id", "invoice_id or invoice_number is required")])
        async with connection(self.pool) as conn:
            inv = await store.load_invoice(conn, company_id, invoice_id, number)
        if inv is None:
            raise NotFound("invoice", invoice_id or number)
        return inv

    async def _require_e_invoice(self, uow: UnitOfWork, doc: Callable[[], Document], what: str) -> None:
        """Where the company requires it, an invoice or credit note is issued only as a valid e-invoice."""
        fmt = (await uow.profile()).required_e_invoice_format
        if fmt is not None:
            await formats.checked(formats.SYNTAX[fmt], doc(), what)

    async def _snapshot_seller(self, uow: UnitOfWork, inv: Invoice) -> None:
        """A finalization keeps the seller, payment terms and means as the company profile says now."""
        profile.snapshot_seller(inv, await uow.profile(), self.settings.seller_name)

    # -- money defaults ---------------------------------------------------------------------

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

    def set_money_defaults(self, company_id: str, defaults: MoneyDefaults) -> None:
        self._money = {**self._money, company_id: defaults}

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
        except (OSError, asyncpg.PostgresError, DomainError, Unavailable) as exc:  # the last snapshot stays
            log.warning("money defaults not refreshed: %s", exc)
