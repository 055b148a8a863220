"""Canonical rules the vendor hooks share: status from amounts, a paid total as one allocation, a line's gross
amount and discount, a unit price from amount and quantity. Pure.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from service.domain import money
from service.domain.errors import Violations
from service.domain.lifecycle import derive_status
from service.domain.models import AllocationSource, Invoice, LineItem, PaymentAllocation, Status
from service.domain.money import HUNDRED
from service.domain.values import MAX_SCALE, ZERO, clamp_scale

ONE: Final = Decimal(1)


def by_amounts(inv: Invoice) -> Status:
    """Status of a finalized invoice from its amounts (README "by amount_due"); SUBMITTED when unknown."""
    if inv.amount_due is None or inv.total_amount is None:
        return Status.SUBMITTED
    return derive_status(inv)


def paid_allocations(inv: Invoice, paid: Decimal | None) -> list[PaymentAllocation]:
    """A vendor that reports only the total paid: one allocation of it, in the invoice's currency, marked as
    imported history (no payment was made here)."""
    if not paid:
        return []
    return [
        PaymentAllocation(amount=paid, currency=inv.currency, applied_amount=paid, source=AllocationSource.IMPORTED)
    ]


def reported_paid(inv: Invoice) -> Decimal | None:
    """The total paid, for vendors that carry only that; None when nothing was allocated. An imported
    overpayment counts whole (its excess became the customer's credit)."""
    if not inv.allocations:
        return None
    excess = sum((a.amount - a.applied_amount for a in inv.allocations if a.currency == inv.currency), ZERO)
    return inv.amount_paid + excess


def line_discount(line: LineItem) -> Decimal | None:
    if line.discount_amount is not None:
        return line.discount_amount
    if line.discount_percentage is None:
        return None
    return clamp_scale(clamp_scale(line.quantity * line.unit_amount) * line.discount_percentage / HUNDRED)


def line_gross(line: LineItem) -> Decimal:
    """quantity x unit_amount before discounts: sub_total + discount when the sub total is known."""
    if line.sub_total is not None:
        return line.sub_total + (line_discount(line) or ZERO)
    return clamp_scale(line.quantity * line.unit_amount)


def unit_from(v: Violations, path: str, amount: Decimal, quantity: Decimal, currency: str = "") -> Decimal | None:
    """The unit amount of a line a vendor gives as amount and quantity: exact when it divides, else (the
    amount being rounded to the currency) the 9-decimal price whose rounded product gives the amount back."""
    if quantity == 0:
        if amount == 0:
            return ZERO
        v.add(path, f"is {amount} for quantity 0: no unit amount gives that")
        return None
    unit = amount / quantity
    exponent = unit.as_tuple().exponent
    if unit * quantity == amount and isinstance(exponent, int) and exponent >= -MAX_SCALE:
        return unit.quantize(ONE) if exponent > 0 else unit
    if currency and money.exponent(currency) is not None:
        unit = unit.quantize(Decimal(1).scaleb(-MAX_SCALE)).normalize()
        if money.round_amount(unit * quantity, currency) == amount:
            tail = unit.as_tuple().exponent
            return unit.quantize(ONE) if isinstance(tail, int) and tail > 0 else unit
    v.add(
        path,
        f"{amount} / quantity {quantity} does not divide to {MAX_SCALE} decimal places: "
        "the unit amount cannot be represented",
    )
    return None
