"""Credit notes and refunds (issue 16): pricing a note, the rules of its life, and where its money goes. Pure.

A credit note corrects one finalized invoice. Its total is split, at issue, into
- `credit_amount`: a credit memo on the invoice, lowering amount_due (never below 0);
- `balance_amount`: to the customer's credit balance (out of what was paid);
- `refund_amount`: refunded to the customer (out of what was paid; counts in the invoice's amount_refunded).
Over all the invoice's issued notes, their totals never exceed its payable amount, and what they take out
of the payments (balance + refund) plus the refunds of payments never exceeds what was paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from service.domain.errors import Aborted, FailedPrecondition, FieldViolation, InvalidArgument, Violations
from service.domain.lifecycle.status import refund_status, refuse, settle
from service.domain.models import (
    CreditMemo,
    CreditMemoReason,
    Invoice,
    PaymentAllocation,
    Status,
    TaxationItem,
    TaxBreakdown,
    TaxCategory,
)
from service.domain.money import Rules
from service.domain.tax import RULES
from service.domain.totals import TaxEntry, client_amount, group_taxes, rules_of, tax_breakdown, tax_group
from service.domain.values import ZERO, shown

MAX_LINES = 1000


class CreditNoteStatus(StrEnum):
    DRAFT = "DRAFT"
    ISSUED = "ISSUED"
    VOID = "VOID"


@dataclass(slots=True)
class CreditNoteLine:
    unit_amount: Decimal
    quantity: Decimal = Decimal(1)
    id: str = ""
    invoice_line_item_id: str = ""
    description: str = ""
    tax_rate: Decimal | None = None
    sub_total: Decimal = ZERO
    tax_amount: Decimal = ZERO
    total_amount: Decimal = ZERO


@dataclass(slots=True)
class Parts:
    """How a note's total is applied; None: not asked (the issue decides)."""

    credit: Decimal | None = None
    balance: Decimal | None = None
    refund: Decimal | None = None

    def given(self) -> bool:
        return any(p is not None for p in (self.credit, self.balance, self.refund))


@dataclass(slots=True)
class CreditNote:
    company_id: str = ""
    id: str = ""
    credit_note_number: str = ""
    invoice_id: str = ""
    invoice_number: str = ""
    invoice_issue_date: datetime | None = None
    currency: str = ""
    customer_id: str = ""
    customer_name: str = ""
    status: CreditNoteStatus = CreditNoteStatus.DRAFT
    lines: list[CreditNoteLine] = field(default_factory=list)
    sub_total: Decimal = ZERO
    total_tax_amount: Decimal = ZERO
    total_amount: Decimal = ZERO
    reason: str = ""
    reason_code: str = ""
    memo: str = ""
    credit_amount: Decimal | None = None
    balance_amount: Decimal | None = None
    refund_amount: Decimal | None = None
    version: int = 0
    create_time: datetime | None = None
    issue_time: datetime | None = None
    void_time: datetime | None = None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True, slots=True)
class Issued:
    """What the invoice's earlier issued notes took: their totals, and their balance and refund parts."""

    total: Decimal = ZERO
    balance: Decimal = ZERO  # their balance_amount (their refund_amount is in the invoice's amount_refunded)


def _creditable(inv: Invoice) -> None:
    if inv.status not in (Status.SUBMITTED, Status.PARTIALLY_PAID, Status.PAID):
        raise FailedPrecondition(
            f"cannot credit invoice {inv.id}: status is {inv.status.value}, must be SUBMITTED, PARTIALLY_PAID or PAID",
            subject=f"invoices/{inv.id}",
        )


def price_line(line: CreditNoteLine, r: Rules, v: Violations, path: str) -> None:
    """sub_total = round(quantity x unit_amount); tax = round(sub_total x rate / 100), unless copied."""
    if line.quantity < 0:
        v.add(f"{path}.quantity", f"must not be negative; got {line.quantity:f}")
    if line.unit_amount < 0:
        v.add(f"{path}.unit_amount", f"must not be negative; got {line.unit_amount:f}")
    line.sub_total = r.round(line.quantity * line.unit_amount)
    if line.tax_rate is not None:
        if line.tax_rate < 0:
            v.add(f"{path}.tax_rate", f"must not be negative; got {line.tax_rate:f}")
        line.tax_amount = r.percent(line.sub_total, line.tax_rate)
    line.total_amount = line.sub_total + line.tax_amount


def _whole_invoice(inv: Invoice, r: Rules) -> list[CreditNoteLine]:
    """Every line of the invoice as priced there; one line for the total when its lines do not make it (an
    invoice without lines, or with invoice-level tax)."""
    lines = [
        CreditNoteLine(
            unit_amount=line.unit_amount,
            quantity=line.quantity,
            invoice_line_item_id=line.id,
            description=line.description,
            sub_total=line.sub_total or ZERO,
            tax_amount=line.tax_amount or ZERO,
            total_amount=(line.sub_total or ZERO) + (line.tax_amount or ZERO),
        )
        for line in inv.lines
    ]
    if lines and sum((x.total_amount for x in lines), ZERO) == inv.total_amount:
        return lines
    tax = inv.total_tax_amount or ZERO
    net = (inv.total_amount or ZERO) - tax
    whole = CreditNoteLine(unit_amount=net, description=f"Invoice {inv.invoice_number}")
    whole.sub_total, whole.tax_amount, whole.total_amount = r.round(net), r.round(tax), r.round(net + tax)
    return [whole]


def _price_lines(inv: Invoice, lines: list[CreditNoteLine], r: Rules, v: Violations) -> None:
    if len(lines) > MAX_LINES:
        v.add("lines", f"at most {MAX_LINES} lines; got {len(lines)}")
    known = {line.id for line in inv.lines}
    for i, line in enumerate(lines):
        if line.invoice_line_item_id and line.invoice_line_item_id not in known:
            v.add(f"lines[{i}].invoice_line_item_id", f"is not a line of invoice {inv.invoice_number}")
        line.unit_amount = client_amount(v, f"lines[{i}].unit_amount", line.unit_amount, r) or line.unit_amount
        price_line(line, r, v, f"lines[{i}]")


def _check_parts(parts: Parts, r: Rules, v: Violations) -> None:
    for name in ("credit", "balance", "refund"):
        value = getattr(parts, name)
        path = f"{name}_amount"
        setattr(parts, name, client_amount(v, path, value, r))
        if value is not None and value < 0:
            v.add(path, f"must not be negative; got {value:f}")


def _settle_totals(note: CreditNote, parts: Parts, r: Rules) -> None:
    """The note's totals from its lines, and the parts asked for (which must add up to the total)."""
    note.sub_total = sum((x.sub_total for x in note.lines), r.round(ZERO))
    note.total_tax_amount = sum((x.tax_amount for x in note.lines), r.round(ZERO))
    note.total_amount = note.sub_total + note.total_tax_amount
    note.credit_amount, note.balance_amount, note.refund_amount = parts.credit, parts.balance, parts.refund
    if note.total_amount <= 0:
        raise InvalidArgument([FieldViolation("lines", "the credit note's total must be above zero")])
    if parts.given():
        given = sum((p or ZERO for p in (parts.credit, parts.balance, parts.refund)), ZERO)
        if given != note.total_amount:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "credit_amount",
                        f"credit_amount + balance_amount + refund_amount is {given:f}, "
                        f"must equal the total {note.total_amount:f}",
                    )
                ]
            )


def draft(
    inv: Invoice,
    lines: list[CreditNoteLine],
    whole_invoice: bool,
    parts: Parts,
    now: datetime,
    *,
    reason: str = "",
    reason_code: str = "",
    memo: str = "",
) -> CreditNote:
    """A new DRAFT note against `inv`, priced in its currency and rounding."""
    _creditable(inv)
    r, v = rules_of(inv), Violations()
    if whole_invoice and lines:
        v.add("lines", "must be empty with whole_invoice")
    elif not whole_invoice and not lines:
        v.add("lines", "at least one line is required (or whole_invoice)")
    _price_lines(inv, lines, r, v)
    _check_parts(parts, r, v)
    v.raise_if_any()
    note = CreditNote(
        company_id=inv.company_id,
        invoice_id=inv.id,
        invoice_number=inv.invoice_number,
        invoice_issue_date=inv.issue_date,
        currency=inv.currency,
        customer_id=inv.customer_id,
        customer_name=inv.customer_name,
        lines=_whole_invoice(inv, r) if whole_invoice else lines,
        reason=reason,
        reason_code=reason_code,
        memo=memo,
        version=1,
        create_time=now,
    )
    _settle_totals(note, parts, r)
    return note


def revise(
    note: CreditNote, inv: Invoice, lines: list[CreditNoteLine] | None, parts: Parts, texts: dict[str, str]
) -> None:
    """A draft changed: new lines (priced again) unless None, the parts as given (None: not asked), and the
    texts named in `texts` (reason, reason_code, memo)."""
    _refuse(note, "update")
    _creditable(inv)
    r, v = rules_of(inv), Violations()
    if lines is not None:
        if not lines:
            v.add("lines", "at least one line is required")
        _price_lines(inv, lines, r, v)
    _check_parts(parts, r, v)
    v.raise_if_any()
    if lines is not None:
        note.lines = lines
    for name, text in texts.items():
        setattr(note, name, text)
    _settle_totals(note, parts, r)
    note.version += 1


def check_etag(note: CreditNote, etag: str) -> None:
    if etag and etag != note.etag:
        raise Aborted(f"etag {shown(etag)} does not match the current {note.etag!r}; read the credit note again")


def _refuse(note: CreditNote, action: str) -> None:
    if note.status is not CreditNoteStatus.DRAFT:
        raise FailedPrecondition(
            f"cannot {action} credit note {note.id}: status is {note.status.value}, must be DRAFT",
            subject=f"creditNotes/{note.id}",
        )


def void(note: CreditNote, now: datetime) -> None:
    """Only drafts: an issued note moved money (issue a new invoice to undo it)."""
    _refuse(note, "void")
    note.status, note.void_time = CreditNoteStatus.VOID, now
    note.version += 1


def _over(path: str, message: str, inv: Invoice) -> FailedPrecondition:
    return FailedPrecondition(f"{path}: {message}", subject=f"invoices/{inv.id}", violation_type="OVER_CREDIT")


def check_imported_total(note: CreditNote, given: CreditNote) -> None:
    """An imported note, priced here, must come to the totals its document states (else its lines or rates
    do not match the invoice they credit)."""
    v = Violations()
    for name in ("sub_total", "total_tax_amount", "total_amount"):
        ours, theirs = getattr(note, name), getattr(given, name)
        if ours != theirs:
            v.add(
                name,
                f"the document states {shown(theirs)}; its lines priced in the invoice's currency and rounding "
                f"come to {ours:f}",
            )
    v.raise_if_any()


def issue(note: CreditNote, inv: Invoice, before: Issued, number: str, now: datetime) -> CreditMemo | None:
    """DRAFT -> ISSUED, applied to `inv` (locked, with `before` read under its lock): the parts decided, a
    credit memo for credit_amount, refund_amount counted as refunded. The caller moves balance_amount to the
    customer's credit balance and records the refund. Returns the memo, if any."""
    _refuse(note, "issue")
    _creditable(inv)
    assert inv.amount_due is not None
    # Memos without a note (imported history) credited the invoice too.
    unnoted = sum((m.total_amount for m in inv.credit_memos if not m.credit_note_id), ZERO)
    left = inv.payable_amount - before.total - unnoted
    if note.total_amount > left:
        raise _over(
            "total_amount", f"{note.total_amount:f} exceeds what is left to credit on the invoice, {left:f}", inv
        )
    paid_left = inv.amount_paid - inv.amount_refunded - before.balance
    if note.credit_amount is None and note.balance_amount is None and note.refund_amount is None:
        note.credit_amount = min(note.total_amount, inv.amount_due)
        note.balance_amount = note.total_amount - note.credit_amount
    r = rules_of(inv)
    note.credit_amount = note.credit_amount if note.credit_amount is not None else r.round(ZERO)
    note.balance_amount = note.balance_amount if note.balance_amount is not None else r.round(ZERO)
    note.refund_amount = note.refund_amount if note.refund_amount is not None else r.round(ZERO)
    if note.credit_amount > inv.amount_due:
        raise _over("credit_amount", f"{note.credit_amount:f} exceeds the invoice's amount_due {inv.amount_due:f}", inv)
    out = note.balance_amount + note.refund_amount
    if out > paid_left:
        raise _over(
            "balance_amount",
            f"balance_amount + refund_amount is {out:f}, more than is left of the payments, {paid_left:f}",
            inv,
        )
    note.status, note.issue_time, note.credit_note_number = CreditNoteStatus.ISSUED, now, number
    note.version += 1
    memo = None
    if note.credit_amount > 0:
        memo = CreditMemo(
            reason=CreditMemoReason.CREDIT_NOTE,
            total_amount=note.credit_amount,
            currency=inv.currency,
            invoice_id=inv.id,
            comment=note.reason,
            reason_code=note.reason_code,
            create_time=now,
            credit_note_id=note.id,
            credit_note_number=number,
        )
        inv.credit_memos.append(memo)
        settle(inv, now)
    if note.refund_amount > 0:
        refunded(inv, note.refund_amount)
    return memo


def refunded(inv: Invoice, amount: Decimal) -> None:
    """`amount` of the invoice's payments went back: amount_refunded and the payment status follow; amount_due
    does not (Stripe: a refund does not reopen the invoice)."""
    inv.amount_refunded += amount
    inv.payment_status = refund_status(inv)


def refund_payment(
    inv: Invoice, allocation_id: str, amount: Decimal | None, credited_out: Decimal
) -> PaymentAllocation:
    """A refund of one payment allocation: at most what it applied minus its earlier refunds, and at most
    what is left of the payments after earlier refunds and notes' balance parts (`credited_out`); all that
    is left of the allocation when `amount` is None. Returns the allocation, its refunded_amount grown."""
    # A void invoice's payments went to the customer's credit balance: refund that (RefundCustomerCredit).
    refuse(inv, "refund a payment of", [Status.PARTIALLY_PAID, Status.PAID])
    alloc = next((a for a in inv.allocations if a.id == allocation_id), None)
    if alloc is None:
        raise InvalidArgument([FieldViolation("payment_allocation_id", f"is not a payment of invoice {inv.id}")])
    r = rules_of(inv)
    v = Violations()
    amount = client_amount(v, "amount", amount, r)
    v.raise_if_any()
    left = alloc.applied_amount - alloc.refunded_amount
    amount = left if amount is None else amount
    if amount <= 0:
        raise InvalidArgument([FieldViolation("amount", f"must be above zero; {left:f} is left to refund")])
    if amount > left:
        raise FailedPrecondition(
            f"amount: {amount:f} exceeds what is left of payment {allocation_id}, {left:f}",
            subject=f"invoices/{inv.id}",
            violation_type="OVER_REFUND",
        )
    paid_left = inv.amount_paid - inv.amount_refunded - credited_out
    if amount > paid_left:
        raise FailedPrecondition(
            f"amount: {amount:f} exceeds what is left of the invoice's payments, {paid_left:f} (earlier refunds and "
            "credit notes took the rest)",
            subject=f"invoices/{inv.id}",
            violation_type="OVER_REFUND",
        )
    refunded(inv, amount)
    alloc.refunded_amount += amount
    return alloc


def for_memo(inv: Invoice, memo: CreditMemo, number: str, title: str, now: datetime) -> CreditNote:
    """Reverse and write-off: the issued credit note of their memo (one line of its amount, all credited)."""
    line = CreditNoteLine(unit_amount=memo.total_amount, description=f"{title} of invoice {inv.invoice_number}")
    line.sub_total = line.total_amount = memo.total_amount
    zero = rules_of(inv).round(ZERO)
    return CreditNote(
        company_id=inv.company_id,
        credit_note_number=number,
        invoice_id=inv.id,
        invoice_number=inv.invoice_number,
        invoice_issue_date=inv.issue_date,
        currency=inv.currency,
        customer_id=inv.customer_id,
        customer_name=inv.customer_name,
        status=CreditNoteStatus.ISSUED,
        lines=[line],
        sub_total=memo.total_amount,
        total_tax_amount=zero,
        total_amount=memo.total_amount,
        reason=memo.comment,
        reason_code=memo.reason_code,
        credit_amount=memo.total_amount,
        balance_amount=zero,
        refund_amount=zero,
        version=1,
        create_time=now,
        issue_time=now,
    )


def check_refundable(balance: Decimal, amount: Decimal, customer_id: str, currency: str) -> None:
    """A refund from a credit balance: at most the balance."""
    if amount > balance:
        raise FailedPrecondition(
            f"amount: {amount:f} exceeds customer {customer_id}'s {currency} credit balance {balance:f}",
            subject=f"customers/{customer_id}",
            violation_type="OVER_REFUND",
        )


# -- tax ----------------------------------------------------------------------------------------


def _note_line_tax(line: CreditNoteLine, inv: Invoice) -> TaxationItem:
    """The VAT of a credit note line: the taxation item of the invoice line it corrects (unless the note line
    gives another rate); else the invoice's item of the same rate; else (no rate) the invoice's only
    category, or its untaxed one for an untaxed line; else S for a positive rate, Z for 0."""
    items = [(ln.id, ln.taxation_items[0]) for ln in inv.lines if ln.taxation_items]
    for line_id, item in items:
        same_rate = line.tax_rate is None or line.tax_rate == item.tax_rate
        if line.invoice_line_item_id and line_id == line.invoice_line_item_id and item.tax_category and same_rate:
            return item
    with_category = [item for _, item in items if item.tax_category is not None]
    if line.tax_rate is not None:
        same = next((i for i in with_category if i.tax_rate == line.tax_rate), None)
        if same is not None:
            return same
        return TaxationItem(tax_rate=line.tax_rate, tax_category=TaxCategory.S if line.tax_rate > 0 else TaxCategory.Z)
    if len({(i.tax_category, i.tax_rate) for i in with_category}) == 1:
        return with_category[0]
    if line.tax_amount == 0:
        untaxed = next((i for i in with_category if i.tax_category and RULES[i.tax_category].untaxed), None)
        if untaxed is not None:
            return untaxed
    return TaxationItem()


def line_taxes(line: CreditNoteLine, inv: Invoice) -> list[tuple[CreditNoteLine, TaxationItem]]:
    """A note line with its VAT (_note_line_tax); the one line of a whole-invoice note whose invoice has
    several VAT rows (its lines do not make its total, e.g. with allowances) as one part per row of the
    invoice's breakdown, each with its category."""
    rows = [row for row in tax_breakdown(inv) if row.tax_category is not None]
    whole = (
        not line.invoice_line_item_id
        and line.tax_rate is None
        and len(rows) > 1
        and sum((row.taxable_amount for row in rows), ZERO) == line.sub_total
        and sum((row.tax_amount for row in rows), ZERO) == line.tax_amount
    )
    if not whole:
        return [(line, _note_line_tax(line, inv))]
    return [
        (
            CreditNoteLine(
                unit_amount=row.taxable_amount,
                description=line.description,
                tax_rate=row.rate,
                sub_total=row.taxable_amount,
                tax_amount=row.tax_amount,
                total_amount=row.taxable_amount + row.tax_amount,
            ),
            TaxationItem(
                tax_rate=row.rate,
                tax_category=row.tax_category,
                exemption_reason=row.exemption_reason,
                exemption_reason_code=row.exemption_reason_code,
            ),
        )
        for row in rows
    ]


def note_tax_breakdown(note: CreditNote, inv: Invoice) -> list[TaxBreakdown]:
    """The note's tax per (category, rate), by the invoice breakdown's rule (totals.group_taxes): each line
    (or part, line_taxes) is taxed as the line of `inv` it corrects."""
    entries: list[TaxEntry] = [
        (tax_group(item), part.sub_total, part.tax_amount, item.exemption_reason, item.exemption_reason_code)
        for line in note.lines
        for part, item in line_taxes(line, inv)
    ]
    return group_taxes(entries, rules_of(inv).round(ZERO))
