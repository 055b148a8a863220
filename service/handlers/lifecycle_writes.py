"""Lifecycle use cases: finalize, void, cancel, reverse, write off, recalculate, taxation items and the
communication trigger. Each is one unit of work: lock and read the invoice, apply the domain rule, commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial

from service.domain import lifecycle
from service.domain.errors import FieldViolation, InvalidArgument, Violations
from service.domain.ids import parse_id
from service.domain.models import CreditMemo, Invoice, TaxationItem
from service.domain.push import AsyncRun, Change, ChangeType, EventType, PushOperation
from service.einvoice import semantic
from service.handlers.credit_notes import issue_memo_note
from service.handlers.invoice_base import InvoiceUseCases, Stored, batch_size, finalized, modified
from service.handlers.unit_of_work import UnitOfWork
from service.store import invoices as store
from service.store.credit_notes import issued_credit

VOIDED = EventType.INVOICE_VOIDED


class LifecycleWrites(InvoiceUseCases):
    async def _finalize_one(
        self,
        uow: UnitOfWork,
        invoice_id: str,
        etag: str,
        issue_date: datetime | None,
        path: str = "invoice",
        sizes: list[int] | None = None,
    ) -> tuple[Invoice, bytes]:
        # The number is drawn with the locking read (one round trip), and a refusal rolls it back; or, in
        # an optimistic unit of work, read with it and drawn by the commit's statement.
        inv = await uow.invoices.get_for_update(invoice_id, etag, draw_number=True)
        lifecycle.check_can_finalize(inv)
        lifecycle.finalize(inv, await uow.invoices.number(inv), uow.now, issue_date)
        await self._snapshot_seller(uow, inv)
        await self._require_e_invoice(uow, lambda: semantic.from_invoice(inv), f"{path} {inv.invoice_number}")
        document = self._save(uow, inv, path, sizes)
        uow.record(*finalized(inv))
        return inv, document

    async def finalize(
        self,
        company_id: str,
        invoice_id: str,
        etag: str = "",
        issue_date: datetime | None = None,
        *,
        run: AsyncRun | None = None,
    ) -> Stored:
        async def write(uow: UnitOfWork) -> tuple[Invoice, bytes]:
            return await self._finalize_one(uow, invoice_id, etag, issue_date)

        # Finalizations of a company contend for its number sequence.
        turns = ("invoice numbers", company_id)
        (inv, document), op = await self.uow.optimistic(company_id, "FinalizeInvoice", write, run=run, turns=turns)
        return Stored(inv, document, op)

    async def batch_finalize(
        self, company_id: str, requests: list[tuple[str, str, datetime | None]], *, run: AsyncRun | None = None
    ) -> tuple[list[Invoice], PushOperation]:
        batch_size(len(requests))
        ids = [r[0] for r in requests]
        if len({parse_id(i) or i for i in ids}) != len(ids):
            raise InvalidArgument([FieldViolation("requests", "each invoice may appear once per batch")])
        async with self.uow(company_id, "BatchFinalizeInvoices", run=run) as uow:
            await uow.invoices.lock_all(ids)
            sizes: list[int] = []
            out = [
                (await self._finalize_one(uow, i, etag, date, f"requests[{n}].invoice", sizes))[0]
                for n, (i, etag, date) in enumerate(requests)
            ]
            self._check_answer(sizes)
            await uow.commit()
        return out, uow.operation

    async def void(
        self, company_id: str, invoice_id: str, etag: str, *, run: AsyncRun | None = None
    ) -> tuple[Invoice, PushOperation, Decimal]:
        async with self.uow(company_id, "VoidInvoice", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_id, etag)
            # What was paid, less refunds and what credit notes already gave back as credit.
            credited = lifecycle.void(inv, uow.now) - (await issued_credit(await uow.connection(), inv)).balance
            if credited > 0:
                note = f"paid part of voided invoice {inv.invoice_number}"
                conn = await uow.connection()
                await store.move_credit(
                    conn, inv.company_id, inv.customer_id, inv.currency, credited, "VOID", uow.now, inv.id, note
                )
            self._save(uow, inv)
            uow.record(modified(inv, VOIDED))
            await uow.commit()
        return inv, uow.operation, credited

    async def cancel(self, company_id: str, invoice_id: str, etag: str, *, run: AsyncRun | None = None) -> Stored:
        async with self.uow(company_id, "CancelInvoice", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_id, etag)
            lifecycle.cancel(inv, uow.now)
            document = self._save(uow, inv)
            uow.record(modified(inv, VOIDED))
            await uow.commit()
        return Stored(inv, document, uow.operation)

    async def reverse(
        self,
        company_id: str,
        invoice_id: str,
        etag: str,
        comment: str,
        reason_code: str,
        *,
        run: AsyncRun | None = None,
    ) -> tuple[Invoice, PushOperation, CreditMemo]:
        rule = partial(lifecycle.reverse, comment=comment, reason_code=reason_code)
        return await self._close_by_memo(company_id, "ReverseInvoice", invoice_id, etag, rule, "Reversal", run)

    async def write_off(
        self,
        company_id: str,
        invoice_id: str,
        etag: str,
        comment: str,
        reason_code: str,
        *,
        run: AsyncRun | None = None,
    ) -> tuple[Invoice, PushOperation, CreditMemo]:
        rule = partial(lifecycle.write_off, comment=comment, reason_code=reason_code)
        return await self._close_by_memo(company_id, "WriteOffInvoice", invoice_id, etag, rule, "Write-off", run)

    async def _close_by_memo(
        self,
        company_id: str,
        operation: str,
        invoice_id: str,
        etag: str,
        rule: Callable[[Invoice, datetime], CreditMemo],
        label: str,
        run: AsyncRun | None,
    ) -> tuple[Invoice, PushOperation, CreditMemo]:
        """A reversal or a write-off: `rule` credits the invoice's balance with a memo, issued as a credit
        note document too (`label` names it), and the invoice is VOIDED."""
        async with self.uow(company_id, operation, run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_id, etag)
            memo = rule(inv, uow.now)
            await issue_memo_note(uow, inv, memo, label)
            self._save(uow, inv)  # the memo is new on the invoice: the commit inserts it
            uow.record(modified(inv, VOIDED))
            await uow.commit()
        return inv, uow.operation, memo

    async def recalculate(
        self, company_id: str, invoice_id: str, finalize: bool, *, run: AsyncRun | None = None
    ) -> Stored:
        async with self.uow(company_id, "RecalculateInvoice", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_id, draw_number=finalize)
            lifecycle.recalculate(inv)
            if finalize:
                lifecycle.check_can_finalize(inv)
                lifecycle.finalize(inv, await uow.invoices.number(inv), uow.now)
                await self._snapshot_seller(uow, inv)
            document = self._save(uow, inv, lines=True)
            uow.record(*(finalized(inv) if finalize else [modified(inv)]))
            await uow.commit()
        return Stored(inv, document, uow.operation)

    async def create_taxation_items(
        self, company_id: str, invoice_id: str, items: list[TaxationItem], *, run: AsyncRun | None = None
    ) -> tuple[list[TaxationItem], Invoice, PushOperation]:
        async with self.uow(company_id, "CreateTaxationItems", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_id)
            for item in items:
                item.create_time = uow.now
            lifecycle.add_taxation_items(inv, items, Violations())
            self._save(uow, inv, lines=True)
            uow.record(modified(inv))
            await uow.commit()
        return items, inv, uow.operation

    async def trigger_communication(
        self, company_id: str, invoice_key: str, *, run: AsyncRun | None = None
    ) -> PushOperation:
        """FlexPrice comms trigger: an event carrying the whole invoice; the invoice itself is unchanged
        (the feed has the event, the operation lists no change)."""
        async with self.uow(company_id, "TriggerInvoiceCommunication", run=run) as uow:
            inv = await uow.invoices.get(invoice_key)
            event = EventType.COMMUNICATION_TRIGGERED
            uow.record(Change(ChangeType.MODIFIED, inv.id, event=event, payload=self.render(inv), recorded=False))
            await uow.commit()
        return uow.operation
