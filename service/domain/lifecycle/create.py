"""A new invoice (create and preview): limits, the statuses it may start in, pricing and its payments. Pure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from service.domain.errors import FieldViolation, InvalidArgument, Violations
from service.domain.lifecycle.payments import applied_amount
from service.domain.lifecycle.status import finalize_amounts
from service.domain.models import AllocationSource, Invoice, PaymentAllocation, Status, VoidReason
from service.domain.money import MoneyDefaults
from service.domain.totals import client_amount, expected_amount_due, price_invoice, rules_of
from service.domain.values import ZERO

MAX_LINES = 1000
MAX_ALLOCATIONS = 100
CREATABLE = frozenset({Status.DRAFT, Status.SUBMITTED, Status.PARTIALLY_PAID, Status.PAID})
IMPORTABLE = CREATABLE | {Status.VOID}  # history: an import stores the state the vendor gave


def prepare_new(
    inv: Invoice,
    v: Violations,
    now: datetime,
    path: str = "invoice",
    defaults: MoneyDefaults | None = None,
    *,
    imported: bool = False,
) -> Decimal:
    """Validates and prices a new invoice (create and preview); modes not sent are the company's defaults.
    `imported`: history from a vendor (ImportInvoice), stored in the state given, VOID included, with its
    payments and credit memos. Returns what an imported overpayment leaves for the customer's credit balance
    (0 otherwise). Raises InvalidArgument."""
    defaults = defaults or MoneyDefaults()
    inv.rounding_mode = inv.rounding_mode or defaults.rounding
    inv.tax_mode = inv.tax_mode or defaults.tax_mode
    requested = inv.status
    if not inv.currency:  # CreateInvoice says so while converting; a vendor payload may leave it out
        v.add(f"{path}.currency", "is required (ISO 4217 code; XXX when unknown)")
    if requested not in (IMPORTABLE if imported else CREATABLE):
        v.add(f"{path}.status", "a new invoice must be DRAFT (default) or SUBMITTED")
    if len(inv.lines) > MAX_LINES:
        v.add(f"{path}.line_items", f"at most {MAX_LINES} line items; got {len(inv.lines)}")
    if len(inv.allocations) > MAX_ALLOCATIONS:
        v.add(f"{path}.payment_allocations", f"at most {MAX_ALLOCATIONS}; got {len(inv.allocations)}")
    if requested is Status.DRAFT and inv.allocations:
        v.add(f"{path}.payment_allocations", "a DRAFT invoice cannot carry payments; finalize it first")
    sent_due = inv.amount_due
    price_invoice(inv, v, path)
    if inv.total_amount is None:
        v.raise_if_any()
        return ZERO
    for i, alloc in enumerate(inv.allocations):
        apath = f"{path}.payment_allocations[{i}]"
        alloc.applied_amount = applied_amount(inv, alloc, apath, v, now)
        if alloc.applied_amount > inv.payable_amount and not imported:
            v.add(
                f"{apath}.allocation.total_amount",
                f"allocates {alloc.applied_amount} {inv.currency}, more than total_amount {inv.payable_amount}",
            )
    for i, memo in enumerate(inv.credit_memos):  # imported ones (Zuora creditMemoAmount)
        sent = client_amount(v, f"{path}.credit_memos[{i}].total_amount", memo.total_amount, rules_of(inv))
        memo.total_amount = memo.total_amount if sent is None else sent
    sent_due = client_amount(v, f"{path}.amount_due", sent_due, rules_of(inv))
    excess = _imported_history(inv, v, path, sent_due) if imported and not v else ZERO
    due = expected_amount_due(inv)
    if due < 0 and not v:
        v.add(f"{path}.payment_allocations", f"payments exceed total_amount {inv.payable_amount} by {-due}")
    if requested is Status.VOID:
        if sent_due:
            v.add(f"{path}.amount_due", f"is {sent_due} but a VOID invoice owes nothing: it must be 0")
    elif sent_due is not None and sent_due != due:
        v.add(
            f"{path}.amount_due",
            f"is {sent_due} but total_amount + cash rounding - payment allocations = {inv.payable_amount} - "
            f"{inv.amount_paid} = {due}",
        )
    v.raise_if_any()
    inv.amount_due = due
    inv.status = Status.DRAFT
    if requested is Status.DRAFT:
        return excess
    payment_status = inv.payment_status
    for memo in inv.credit_memos:  # imported ones: issued with the invoice
        memo.create_time = memo.create_time or now
    finalize_amounts(inv, now)
    if imported:
        inv.payment_status = payment_status or inv.payment_status  # the vendor's own, e.g. REFUNDED
    if requested is Status.VOID:
        inv.status, inv.amount_due, inv.void_time = Status.VOID, rules_of(inv).round(ZERO), now
        inv.void_reason = inv.void_reason or VoidReason.VOIDED
    elif requested in (Status.PARTIALLY_PAID, Status.PAID) and inv.status is not requested:
        raise InvalidArgument(
            [FieldViolation(f"{path}.status", f"is {requested.value} but the amounts make it {inv.status.value}")]
        )
    return excess


def _imported_history(inv: Invoice, v: Violations, path: str, sent_due: Decimal | None) -> Decimal:
    """What a vendor reports only as totals becomes imported history, never a new payment: the paid part no
    allocation names (a Codat Paid invoice without allocations) is one IMPORTED allocation; payments beyond
    the total (FlexPrice OVERPAID) apply up to it and return the excess, the customer's credit."""
    due = expected_amount_due(inv)
    if inv.status in (Status.PARTIALLY_PAID, Status.PAID) and sent_due is not None and 0 <= sent_due < due:
        gap = due - sent_due
        inv.allocations.append(
            PaymentAllocation(
                amount=gap,
                currency=inv.currency,
                applied_amount=gap,
                allocated_on_date=inv.paid_on_date,
                source=AllocationSource.IMPORTED,
            )
        )
        return ZERO
    if due >= 0 or inv.status is Status.VOID:
        return ZERO  # a void invoice's payments stay on it, nothing moves to credit: beyond the total is refused
    excess = -due
    history = (a for a in reversed(inv.allocations) if a.source is AllocationSource.IMPORTED)
    last = next((a for a in history if a.currency == inv.currency), None)
    if last is None or last.applied_amount <= excess:
        return ZERO  # refused by the caller: payments exceed the total
    if not inv.customer_id:
        v.add(f"{path}.customer_ref.id", f"is required: the overpayment of {excess} becomes the customer's credit")
        return ZERO
    last.applied_amount -= excess
    return excess
