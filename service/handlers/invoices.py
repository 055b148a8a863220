"""Invoice use cases: create, update, delete and read. Lifecycle writes are in lifecycle_writes.py, payments
and customer credit in payments.py; InvoiceHandlers gathers them all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from service.domain import lifecycle
from service.domain.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound, Violations
from service.domain.ids import parse_id
from service.domain.models import Invoice, LineItem, Status, TaxationItem
from service.domain.money import MoneyDefaults
from service.domain.push import AsyncRun, Change, ChangeType, PushOperation
from service.handlers.einvoices import EInvoiceUseCases
from service.handlers.invoice_base import (
    MAX_BATCH,
    MAX_BATCH_ITEMS,
    MAX_INVOICE_BYTES,
    MONEY_DEFAULTS_TTL,
    InvoiceUseCases,
    Stored,
    UpdateSpec,
    batch_items,
    batch_size,
    json_escapes,
    modified,
)
from service.handlers.lifecycle_writes import LifecycleWrites
from service.handlers.payments import CREDIT_BALANCES, CreditBalance, PaymentWrites
from service.handlers.profiles import ProfileUseCases
from service.handlers.unit_of_work import UnitOfWork
from service.handlers.writes import require_company, utcnow
from service.store import invoices as store
from service.store.db import connection

__all__ = [
    "MAX_BATCH",
    "MAX_BATCH_ITEMS",
    "MAX_INVOICE_BYTES",
    "MONEY_DEFAULTS_TTL",
    "CreditBalance",
    "InvoiceHandlers",
    "Stored",
    "UpdateSpec",
    "json_escapes",
]
MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_LINES_POSITION = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ApplicationPart:
    payment_id: str
    credit_memo_id: str
    applied_amount: Decimal
    source: str
    create_time: datetime | None


class InvoiceWrites(InvoiceUseCases):
    # -- create -----------------------------------------------------------------------------

    def _new(
        self, company_id: str, inv: Invoice, now: datetime, path: str, defaults: MoneyDefaults, imported: bool
    ) -> Decimal:
        inv.company_id, inv.version = company_id, 1
        inv.create_time = inv.modified_date = now
        return lifecycle.prepare_new(inv, Violations(), now, path, defaults, imported=imported)

    async def _add(
        self,
        uow: UnitOfWork,
        inv: Invoice,
        path: str,
        defaults: MoneyDefaults,
        sizes: list[int] | None = None,
        *,
        imported: bool = False,
    ) -> bytes:
        """A new invoice into the unit of work, and its document. A draft without a number reads nothing:
        its create stays one statement. An imported overpayment becomes the customer's credit in the same
        unit of work."""
        excess = self._new(uow.company_id, inv, uow.now, path, defaults, imported)
        if inv.invoice_number:
            await self._check_number(uow, inv.invoice_number, f"{path}.invoice_number")
        if inv.invoice_number and await uow.invoices.number_taken(inv.invoice_number):
            raise AlreadyExists(
                f"invoice number {inv.invoice_number!r} is already used in company {uow.company_id}",
                f"{path}.invoice_number",
            )
        if inv.status is not Status.DRAFT:
            inv.invoice_number = await uow.invoices.number(inv)
            if inv.seller is None:  # an imported e-invoice arrives with the seller, terms and means it was issued with
                await self._snapshot_seller(uow, inv)
        store.assign_ids(inv)
        document = self._document(inv, path, sizes)
        uow.invoices.add(inv, document)
        uow.record(Change(ChangeType.CREATED, inv.id))
        if excess:
            note = f"overpayment of imported invoice {inv.invoice_number}"
            conn = await uow.connection()
            row = await store.move_credit(
                conn, inv.company_id, inv.customer_id, inv.currency, excess, "OVERPAYMENT", uow.now, None, note
            )
            lifecycle.check_credit_balance(row["balance"])
            uow.record(Change(ChangeType.MODIFIED, inv.customer_id, CREDIT_BALANCES))
        return document

    async def create(
        self,
        company_id: str,
        inv: Invoice,
        operation: str = "CreateInvoice",
        *,
        imported: bool = False,
        run: AsyncRun | None = None,
    ) -> Stored:
        """`imported`: vendor history (ImportInvoice), kept in the state given (lifecycle.prepare_new)."""
        defaults = self.money_defaults(company_id)
        async with self.uow(company_id, operation, run=run) as uow:
            document = await self._add(uow, inv, "invoice", defaults, imported=imported)
            await uow.commit()
        return Stored(inv, document, uow.operation)

    async def batch_create(
        self, company_id: str, invoices: list[Invoice], *, run: AsyncRun | None = None
    ) -> tuple[list[Invoice], PushOperation]:
        batch_size(len(invoices))
        items = sum(len(inv.lines) for inv in invoices)
        batch_items(items)
        numbers = [inv.invoice_number for inv in invoices if inv.invoice_number]
        if len(numbers) != len(set(numbers)):
            raise AlreadyExists("the batch uses the same invoice_number twice", "requests")
        defaults = self.money_defaults(company_id)
        async with self.uow(company_id, "BatchCreateInvoices", run=run) as uow:
            sizes: list[int] = []
            for i, inv in enumerate(invoices):
                await self._add(uow, inv, f"requests[{i}].invoice", defaults, sizes)
            self._check_answer(sizes)
            await uow.commit()
        return invoices, uow.operation

    async def preview(self, company_id: str, inv: Invoice) -> Invoice:
        require_company(company_id)
        inv.company_id = company_id
        lifecycle.prepare_new(inv, Violations(), utcnow(), defaults=self.money_defaults(company_id))
        return inv

    # -- update / delete --------------------------------------------------------------------

    async def _update_one(
        self, uow: UnitOfWork, spec: UpdateSpec, path: str, sizes: list[int] | None = None
    ) -> tuple[Invoice, bytes]:
        inv = await uow.invoices.get_for_update(spec.patch.id, spec.etag)
        old_number = inv.invoice_number
        lifecycle.apply_update(inv, spec.patch, set(spec.paths), Violations(), path)
        changed = inv.invoice_number != old_number and inv.invoice_number
        if changed:
            await self._check_number(uow, inv.invoice_number, f"{path}.invoice_number")
        if changed and await uow.invoices.number_taken(inv.invoice_number, inv.id):
            raise AlreadyExists(f"invoice number {inv.invoice_number!r} is already used", f"{path}.invoice_number")
        document = self._save(uow, inv, path, sizes, lines="line_items" in spec.paths)
        uow.record(modified(inv))
        return inv, document

    async def update(self, company_id: str, spec: UpdateSpec, *, run: AsyncRun | None = None) -> Stored:
        async with self.uow(company_id, "UpdateInvoice", run=run) as uow:
            inv, document = await self._update_one(uow, spec, "invoice")
            await uow.commit()
        return Stored(inv, document, uow.operation)

    async def batch_update(
        self, company_id: str, specs: list[UpdateSpec], *, run: AsyncRun | None = None
    ) -> tuple[list[Invoice], PushOperation]:
        batch_size(len(specs))
        items = sum(len(s.patch.lines) for s in specs if "line_items" in s.paths)
        batch_items(items)
        ids = [s.patch.id for s in specs]
        if len({parse_id(i) or i for i in ids}) != len(ids):
            raise InvalidArgument([FieldViolation("requests", "each invoice may appear once per batch")])
        async with self.uow(company_id, "BatchUpdateInvoices", run=run) as uow:
            await uow.invoices.lock_all(ids)
            sizes: list[int] = []
            out = [(await self._update_one(uow, s, f"requests[{i}].invoice", sizes))[0] for i, s in enumerate(specs)]
            self._check_answer(sizes)
            await uow.commit()
        return out, uow.operation

    async def delete(
        self, company_id: str, invoice_id: str, etag: str, *, run: AsyncRun | None = None
    ) -> PushOperation:
        async with self.uow(company_id, "DeleteInvoice", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_id, etag)
            lifecycle.check_deletable(inv)
            uow.invoices.delete(inv)
            uow.record(Change(ChangeType.DELETED, inv.id))
            await uow.commit()
        return uow.operation


class InvoiceReads(InvoiceUseCases):
    async def get_document(self, company_id: str, invoice_id: str = "", number: str = "") -> bytes:
        """The stored document: a serialized GetInvoiceResponse, as ListInvoices streams it too."""
        require_company(company_id)
        if not invoice_id and not number:
            raise InvalidArgument([FieldViolation("invoice_id", "invoice_id or invoice_number is required")])
        async with connection(self.pool) as conn:
            # invoice_id is a key (id, else number); invoice_number names a number and nothing else.
            doc = await store.load_document(conn, company_id, invoice_id or number, number_only=not invoice_id)
        if doc is None:
            raise NotFound("invoice", invoice_id or number)
        return doc or self.render(await self.get(company_id, invoice_id, number))

    async def list_items(
        self, company_id: str, invoice_key: str, page_size: int, token: str
    ) -> tuple[list[LineItem], str]:
        """A page of the invoice's lines; page tokens are signed like every list's (PageTokens)."""
        require_company(company_id)
        if page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        scope = f"{company_id}\0{invoice_key}"
        after = -1
        if token:
            position = self.item_tokens.verify(scope, token).get("p")
            if not isinstance(position, int) or not 0 <= position < MAX_LINES_POSITION:
                raise InvalidArgument([FieldViolation("page_token", "is not a token this service issued")])
            after = position
        size = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        async with connection(self.pool) as conn:
            inv = await store.load_invoice(conn, company_id, invoice_key)
            if inv is None:
                raise NotFound("invoice", invoice_key)
            rows = await store.list_lines(conn, inv.company_id, inv.id, after, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        next_token = self.item_tokens.sign(scope, {"p": rows[-1][0]}) if more else ""
        return [line for _, line in rows], next_token

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


class InvoiceHandlers(InvoiceWrites, InvoiceReads, LifecycleWrites, PaymentWrites, EInvoiceUseCases, ProfileUseCases):
    """Every invoice use case (one object for the transport to call)."""
