"""Credit note and refund use cases (issue 16). Every write is one unit of work; lock order is always the
invoice, then the credit note, then the credit note number sequence, then the customer's credit balance."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from service.domain import credit_notes as notes
from service.domain.credit_notes import CreditNote, CreditNoteLine, Parts
from service.domain.errors import FieldViolation, InvalidArgument, NotFound
from service.domain.ids import parse_id
from service.domain.models import CreditMemo, Invoice
from service.domain.parties import Party
from service.domain.push import AsyncRun, Change, ChangeType, EventType, PushOperation
from service.einvoice import semantic
from service.handlers.invoice_base import InvoiceUseCases, modified
from service.handlers.payments import CREDIT_BALANCES, CreditBalance, balance_of
from service.handlers.unit_of_work import UnitOfWork
from service.handlers.writes import require_company
from service.outbound import credit_note_pdf
from service.store import credit_notes as store
from service.store import invoices as invoice_store
from service.store import profiles
from service.store.db import connection

CREDIT_NOTES = "creditNotes"  # the data type of credit note writes' push operations
MAX_PAGE = 1000
DEFAULT_PAGE = 100


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    customer_id: str
    amount: Decimal
    currency: str
    create_time: datetime
    invoice_id: str = ""
    payment_allocation_id: str = ""
    credit_note_id: str = ""
    reason: str = ""
    reference: str = ""

    def row(self, company_id: str) -> dict[str, object]:
        return {
            "id": self.id,
            "company_id": company_id,
            "invoice_id": self.invoice_id or None,
            "payment_allocation_id": self.payment_allocation_id or None,
            "credit_note_id": self.credit_note_id or None,
            "customer_id": self.customer_id,
            "amount": self.amount,
            "currency": self.currency,
            "reason": self.reason,
            "reference": self.reference,
            "create_time": self.create_time,
        }


def _note_changes(note: CreditNote, event: EventType, kind: ChangeType = ChangeType.MODIFIED) -> list[Change]:
    """The note (listed on the operation) and its event, which names the invoice it corrects."""
    return [
        Change(kind, note.id, CREDIT_NOTES),
        Change(ChangeType.MODIFIED, note.invoice_id, event=event, recorded=False),
    ]


async def _number(uow: UnitOfWork) -> str:
    """The next credit note number, in the company profile's credit note format (else the settings')."""
    _, credit_notes = await uow.number_formats()
    return credit_notes.format(await store.next_number(await uow.connection(), uow.company_id))


async def issue_memo_note(uow: UnitOfWork, inv: Invoice, memo: CreditMemo, title: str) -> CreditNote:
    """Reverse and write-off: an issued credit note of the memo's amount, in the same unit of work (the memo
    links to it; call before the invoice is saved, so its document shows the link)."""
    note = notes.for_memo(inv, memo, await _number(uow), title, uow.now)
    store.assign_ids(note)
    memo.credit_note_id, memo.credit_note_number = note.id, note.credit_note_number
    uow.pieces.extend(store.insert_pieces(note))
    uow.record(*_note_changes(note, EventType.CREDIT_NOTE_ISSUED, ChangeType.CREATED))
    return note


class CreditNoteWrites(InvoiceUseCases):
    async def _note_for_update(self, uow: UnitOfWork, key: str) -> tuple[CreditNote, Invoice]:
        """The note and its invoice, both locked (invoice first: the order every write keeps)."""
        conn = await uow.connection()
        found = await store.load(conn, uow.company_id, key)
        if found is None:
            raise NotFound("credit note", key)
        inv = await uow.invoices.get_for_update(found.invoice_id)
        note = await store.load(conn, uow.company_id, found.id, lock=True)
        assert note is not None  # its invoice is locked: it cannot have gone
        return note, inv

    async def create_credit_note(
        self,
        company_id: str,
        invoice_key: str,
        lines: list[CreditNoteLine],
        whole_invoice: bool,
        parts: Parts,
        texts: tuple[str, str, str],
        *,
        issue: bool = False,
        run: AsyncRun | None = None,
    ) -> tuple[CreditNote, Invoice, PushOperation]:
        reason, reason_code, memo = texts
        async with self.uow(company_id, "CreateCreditNote", run=run, data_type=CREDIT_NOTES) as uow:
            inv = await uow.invoices.get_for_update(invoice_key)  # its credits serialise with its payments
            note = notes.draft(
                inv, lines, whole_invoice, parts, uow.now, reason=reason, reason_code=reason_code, memo=memo
            )
            store.assign_ids(note)
            uow.record(*_note_changes(note, EventType.CREDIT_NOTE_CREATED, ChangeType.CREATED))
            if issue:  # Stripe's way: created issued, in the same unit of work
                await self._apply(uow, note, inv)
            uow.pieces.extend(store.insert_pieces(note))
            await uow.commit()
        return note, inv, uow.operation

    async def import_credit_note(
        self, company_id: str, given: CreditNote, *, run: AsyncRun | None = None
    ) -> tuple[CreditNote, Invoice, PushOperation]:
        """An inbound credit note (an e-invoice): priced as CreateCreditNote prices its lines, checked against
        the total it states, and issued with its own number against the invoice it names (invoice_number)."""
        async with self.uow(company_id, "ImportInvoice", run=run, data_type=CREDIT_NOTES) as uow:
            _, numbering = await uow.number_formats()
            if numbering.is_generated(given.credit_note_number):  # the sequence's numbers are the service's to give
                example = numbering.format(0)
                why = f"numbers like {example} are assigned when a credit note is issued here"
                raise InvalidArgument([FieldViolation("credit_note.credit_note_number", why)])
            inv = await uow.invoices.get_for_update(given.invoice_number)
            ours = {line.id for line in inv.lines}
            for line in given.lines:  # the document's line ids link only where they are this invoice's lines
                if line.invoice_line_item_id not in ours:
                    line.invoice_line_item_id = ""
            note = notes.draft(
                inv,
                given.lines,
                False,
                Parts(),
                uow.now,
                reason=given.reason,
                reason_code=given.reason_code,
                memo=given.memo,
            )
            notes.check_imported_total(note, given)
            store.assign_ids(note)
            uow.record(*_note_changes(note, EventType.CREDIT_NOTE_CREATED, ChangeType.CREATED))
            await self._apply(uow, note, inv, number=given.credit_note_number)
            uow.pieces.extend(store.insert_pieces(note))
            await uow.commit()
        return note, inv, uow.operation

    async def _apply(self, uow: UnitOfWork, note: CreditNote, inv: Invoice, *, number: str = "") -> None:
        """Issues the note against its locked invoice: the number drawn (or an imported note's own), the memo on
        the invoice (saved), the balance part to the customer's credit, the refund part recorded."""
        conn = await uow.connection()
        before = await store.issued(conn, uow.company_id, inv.id)
        notes.issue(note, inv, before, number or await _number(uow), uow.now)
        what = f"credit note {note.credit_note_number}"
        await self._require_e_invoice(uow, lambda: semantic.from_credit_note(note, inv), what)
        assert note.balance_amount is not None and note.refund_amount is not None
        text = f"credit note {note.credit_note_number} for invoice {inv.invoice_number}"
        if note.balance_amount > 0:
            await invoice_store.move_credit(
                conn,
                uow.company_id,
                inv.customer_id,
                inv.currency,
                note.balance_amount,
                "CREDIT_NOTE",
                uow.now,
                inv.id,
                text,
            )
        if note.refund_amount > 0:
            refund = Refund(
                invoice_store.new_id(),
                inv.customer_id,
                note.refund_amount,
                inv.currency,
                uow.now,
                invoice_id=inv.id,
                credit_note_id=note.id,
                reason=text,
            )
            uow.pieces.append(store.refund_piece(refund.row(uow.company_id)))
        self._save(uow, inv)
        uow.record(_note_changes(note, EventType.CREDIT_NOTE_ISSUED)[1], modified(inv))

    async def issue_credit_note(
        self, company_id: str, key: str, etag: str, *, run: AsyncRun | None = None
    ) -> tuple[CreditNote, Invoice, PushOperation]:
        async with self.uow(company_id, "IssueCreditNote", run=run, data_type=CREDIT_NOTES) as uow:
            note, inv = await self._note_for_update(uow, key)
            notes.check_etag(note, etag)
            await self._apply(uow, note, inv)
            uow.record(_note_changes(note, EventType.CREDIT_NOTE_ISSUED)[0])
            uow.pieces.append(store.update_piece(note))
            await uow.commit()
        return note, inv, uow.operation

    async def update_credit_note(
        self,
        company_id: str,
        key: str,
        etag: str,
        paths: frozenset[str],
        lines: list[CreditNoteLine],
        parts: Parts,
        texts: dict[str, str],
        *,
        run: AsyncRun | None = None,
    ) -> tuple[CreditNote, PushOperation]:
        """A draft's fields named in `paths` replaced (the others kept as they are)."""
        async with self.uow(company_id, "UpdateCreditNote", run=run, data_type=CREDIT_NOTES) as uow:
            note, inv = await self._note_for_update(uow, key)
            notes.check_etag(note, etag)
            kept = Parts(note.credit_amount, note.balance_amount, note.refund_amount)
            for name in ("credit", "balance", "refund"):
                if f"{name}_amount" not in paths:
                    setattr(parts, name, getattr(kept, name))
            new_lines = lines if "lines" in paths else None
            notes.revise(note, inv, new_lines, parts, {k: t for k, t in texts.items() if k in paths})
            if new_lines is not None:
                store.assign_ids(note)
                await store.delete_lines(await uow.connection(), note)
                uow.pieces.append(store.lines_piece(note))
            uow.pieces.append(store.update_piece(note))
            uow.record(*_note_changes(note, EventType.CREDIT_NOTE_MODIFIED))
            await uow.commit()
        return note, uow.operation

    async def void_credit_note(
        self, company_id: str, key: str, etag: str, *, run: AsyncRun | None = None
    ) -> tuple[CreditNote, PushOperation]:
        async with self.uow(company_id, "VoidCreditNote", run=run, data_type=CREDIT_NOTES) as uow:
            note, _ = await self._note_for_update(uow, key)
            notes.check_etag(note, etag)
            notes.void(note, uow.now)
            uow.pieces.append(store.update_piece(note))
            uow.record(*_note_changes(note, EventType.CREDIT_NOTE_VOIDED))
            await uow.commit()
        return note, uow.operation

    async def get_credit_note(self, company_id: str, key: str) -> CreditNote:
        require_company(company_id)
        async with connection(self.pool) as conn:
            note = await store.load(conn, company_id, key)
        if note is None:
            raise NotFound("credit note", key)
        return note

    async def list_credit_notes(
        self, company_id: str, invoice_key: str, customer_id: str, page_size: int, token: str
    ) -> tuple[list[CreditNote], str]:
        require_company(company_id)
        if page_size < 0:
            raise InvalidArgument([FieldViolation("page_size", "must not be negative")])
        scope = f"{company_id}\0{invoice_key}\0{customer_id}"
        tokens = self.item_tokens.scoped("credit notes")
        after = None
        if token:
            data = tokens.verify(scope, token)
            when, last = data.get("t"), data.get("i")
            if not isinstance(when, str) or not isinstance(last, str) or parse_id(last) is None:
                raise InvalidArgument([FieldViolation("page_token", "is not a token this service issued")])
            after = (datetime.fromisoformat(when), last)
        size = min(page_size or DEFAULT_PAGE, MAX_PAGE)
        async with connection(self.pool) as conn:
            invoice_id = None
            if invoice_key:
                inv = await invoice_store.load_invoice(conn, company_id, invoice_key)
                if inv is None:
                    raise NotFound("invoice", invoice_key)
                invoice_id = inv.id
            found = await store.page(conn, company_id, invoice_id, customer_id, after, size + 1)
        page = found[:size]
        last_note = page[-1] if page else None
        more = len(found) > size and last_note is not None and last_note.create_time is not None
        next_token = ""
        if more and last_note is not None and last_note.create_time is not None:
            next_token = tokens.sign(scope, {"t": last_note.create_time.isoformat(), "i": last_note.id})
        return page, next_token

    # -- refunds ----------------------------------------------------------------------------

    async def record_refund(
        self,
        company_id: str,
        invoice_key: str,
        allocation_id: str,
        amount: Decimal | None,
        reason: str,
        reference: str,
        *,
        run: AsyncRun | None = None,
    ) -> tuple[Refund, Invoice, PushOperation]:
        async with self.uow(company_id, "RecordRefund", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_key)
            conn = await uow.connection()
            canonical = parse_id(allocation_id) or allocation_id
            before = await store.issued(conn, company_id, inv.id)
            previously = {a.id: a.refunded_amount for a in inv.allocations}
            alloc = notes.refund_payment(inv, canonical, amount, before.balance)
            applied = alloc.refunded_amount - previously[alloc.id]
            uow.pieces.append(store.allocation_refunded_piece(company_id, alloc.id, applied))
            refund = Refund(
                invoice_store.new_id(),
                inv.customer_id,
                applied,
                inv.currency,
                uow.now,
                invoice_id=inv.id,
                payment_allocation_id=canonical,
                reason=reason,
                reference=reference,
            )
            uow.pieces.append(store.refund_piece(refund.row(company_id)))
            self._save(uow, inv)
            uow.record(modified(inv, EventType.INVOICE_REFUNDED))
            await uow.commit()
        return refund, inv, uow.operation

    async def refund_credit(
        self,
        company_id: str,
        customer_id: str,
        currency: str,
        amount: Decimal,
        reason: str,
        reference: str,
        *,
        run: AsyncRun | None = None,
    ) -> tuple[Refund, CreditBalance, PushOperation]:
        async with self.uow(company_id, "RefundCustomerCredit", run=run, data_type=CREDIT_BALANCES) as uow:
            conn = await uow.connection()
            balance = await invoice_store.lock_credit_balance(conn, company_id, customer_id, currency)
            notes.check_refundable(balance, amount, customer_id, currency)
            row = await invoice_store.move_credit(
                conn, company_id, customer_id, currency, -amount, "REFUND", uow.now, None, reason or "refund"
            )
            refund = Refund(
                invoice_store.new_id(), customer_id, amount, currency, uow.now, reason=reason, reference=reference
            )
            uow.pieces.append(store.refund_piece(refund.row(company_id)))
            uow.record(Change(ChangeType.MODIFIED, customer_id, CREDIT_BALANCES, event=EventType.INVOICE_REFUNDED))
            await uow.commit()
        return refund, balance_of(row), uow.operation

    async def credit_note_pdf(self, company_id: str, key: str) -> tuple[str, bytes]:
        """The note's PDF with the parties of the invoice it corrects: that invoice's seller snapshot (the live
        profile while it has none) and its buyer; its lines' VAT categories in the tax breakdown."""
        note = await self.get_credit_note(company_id, key)
        async with connection(self.pool) as conn:
            inv = await invoice_store.load_invoice(conn, company_id, note.invoice_id)
            profile = await profiles.load(conn, company_id)
        seller = (inv.seller if inv is not None else None) or profile.seller(self.settings.seller_name)
        buyer = (inv.buyer if inv is not None else None) or Party(name=note.customer_name or note.customer_id)
        args = (note, seller, buyer, profile.locale, inv)
        data = await asyncio.to_thread(credit_note_pdf.render, *args)  # CPU work off the event loop
        return credit_note_pdf.file_name(note), data
