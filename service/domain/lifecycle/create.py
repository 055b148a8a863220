"""A new invoice (create and preview): limits, the statuses it may start in, pricing and its payments. Pure."""

from __future__ import annotations

from datetime import datetime

from service.domain.errors import FieldViolation, InvalidArgument, Violations
from service.domain.lifecycle.payments import applied_amount
from service.domain.lifecycle.status import finalize_amounts
from service.domain.models import Invoice, Status
from service.domain.money import MoneyDefaults
from service.domain.totals import client_amount, expected_amount_due, price_invoice, rules_of

MAX_LINES = 1000
MAX_ALLOCATIONS = 100
CREATABLE = frozenset({Status.DRAFT, Status.SUBMITTED, Status.PARTIALLY_PAID, Status.PAID})


def prepare_new(
    inv: Invoice, v: Violations, now: datetime, path: str = "invoice", defaults: MoneyDefaults | None = None
) -> None:
    """Validates and prices a new invoice (create and preview); modes not sent are the company's defaults.
    Raises InvalidArgument."""
    defaults = defaults or MoneyDefaults()
    inv.rounding_mode = inv.rounding_mode or defaults.rounding
    inv.tax_mode = inv.tax_mode or defaults.tax_mode
    requested = inv.status
    if requested not in CREATABLE:
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
        return
    for i, alloc in enumerate(inv.allocations):
        apath = f"{path}.payment_allocations[{i}]"
        alloc.applied_amount = applied_amount(inv, alloc, apath, v, now)
        if alloc.applied_amount > inv.payable_amount:
            v.add(
                f"{apath}.allocation.total_amount",
                f"allocates {alloc.applied_amount} {inv.currency}, more than total_amount {inv.payable_amount}",
            )
    due = expected_amount_due(inv)
    if due < 0 and not v:
        v.add(f"{path}.payment_allocations", f"payments exceed total_amount {inv.payable_amount} by {-due}")
    sent_due = client_amount(v, f"{path}.amount_due", sent_due, rules_of(inv))
    if sent_due is not None and sent_due != due:
        v.add(
            f"{path}.amount_due",
            f"is {sent_due} but total_amount + cash rounding - payment allocations = {inv.payable_amount} - "
            f"{inv.amount_paid} = {due}",
        )
    v.raise_if_any()
    inv.amount_due = due
    inv.status = Status.DRAFT
    if requested is not Status.DRAFT:
        finalize_amounts(inv, now)
        if requested in (Status.PARTIALLY_PAID, Status.PAID) and inv.status is not requested:
            raise InvalidArgument(
                [FieldViolation(f"{path}.status", f"is {requested.value} but the amounts make it {inv.status.value}")]
            )
