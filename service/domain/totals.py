"""Totals rules (PRODUCT section 5): lines are priced by the service; client totals are checked.

line.sub_total   = quantity x unit_amount - discount
line.tax_amount  = sum of its taxation items (each from tax_rate when no amount is given), else as sent
line.total       = sub_total + tax
invoice.sub_total        = sum of line sub totals
invoice.total_discount   = sum of line discounts
invoice.total_tax_amount = sum of line taxes + additional_tax_amount
invoice.total_amount     = sub_total + total_tax_amount
amount_due               = total_amount - payments - credit memos

An invoice-level discount_percentage becomes the discount_percentage of every line without a discount of
its own; additional_tax_amount defaults to additional_tax_percentage of the sub total. Computed amounts
must fit the input format (20 integer digits), so whatever the service returns can be sent back.
"""

from __future__ import annotations

from decimal import Decimal

from service.domain.errors import Violations
from service.domain.models import Invoice, LineItem, TaxRateType
from service.domain.values import MAX_INT_DIGITS, ZERO, clamp_scale

TOLERANCE = Decimal("0.01")
HUNDRED = Decimal(100)
LIMIT = Decimal(10) ** MAX_INT_DIGITS


def _fits(v: Violations, path: str, value: Decimal) -> None:
    if abs(value) >= LIMIT:
        v.add(path, f"comes to {value:f}, beyond {MAX_INT_DIGITS} integer digits")


def _check(v: Violations, path: str, sent: Decimal | None, computed: Decimal, what: str) -> None:
    if sent is not None and abs(sent - computed) > TOLERANCE:
        v.add(path, f"is {sent} but {what} gives {computed} (tolerance {TOLERANCE})")


def price_line(line: LineItem, path: str, v: Violations) -> None:
    """Computes a line's amounts in place; disagreeing client values become violations."""
    gross = clamp_scale(line.quantity * line.unit_amount)
    discount = line.discount_amount
    if line.discount_percentage is not None:
        from_rate = clamp_scale(gross * line.discount_percentage / HUNDRED)
        if discount is None:
            discount = from_rate
        else:
            _check(v, f"{path}.discount_amount", discount, from_rate, "discount_percentage")
    discount = discount if discount is not None else ZERO
    sub_total = gross - discount
    _check(v, f"{path}.sub_total", line.sub_total, sub_total, "quantity x unit_amount - discount")

    if line.taxation_items:
        tax = ZERO
        for i, item in enumerate(line.taxation_items):
            if item.tax_amount is None:
                if item.tax_rate is None:
                    v.add(f"{path}.taxation_items[{i}].tax_amount", "tax_amount or tax_rate is required")
                    continue
                if item.tax_rate_type is TaxRateType.FLAT_FEE:
                    item.tax_amount = item.tax_rate
                else:
                    item.tax_amount = clamp_scale(sub_total * item.tax_rate / HUNDRED)
            tax += item.tax_amount
        _check(v, f"{path}.tax_amount", line.tax_amount, tax, "the sum of its taxation_items")
    else:
        tax = line.tax_amount if line.tax_amount is not None else ZERO
    total = sub_total + tax
    _check(v, f"{path}.total_amount", line.total_amount, total, "sub_total + tax_amount")
    _fits(v, f"{path}.total_amount", max(abs(gross), abs(total)))
    line.discount_amount, line.sub_total, line.tax_amount, line.total_amount = discount, sub_total, tax, total


def price_invoice(inv: Invoice, v: Violations, path: str = "invoice") -> None:
    """Fills every total of `inv` and checks the ones the client sent against them."""
    if inv.lines:
        for i, line in enumerate(inv.lines):
            if (
                inv.discount_percentage is not None
                and line.discount_amount is None
                and line.discount_percentage is None
            ):
                line.discount_percentage = inv.discount_percentage
            price_line(line, f"{path}.line_items[{i}]", v)
        sub_total = sum((ln.sub_total or ZERO for ln in inv.lines), ZERO)
        additional = _additional_tax(inv, sub_total, v, path)
        discount = sum((ln.discount_amount or ZERO for ln in inv.lines), ZERO)
        tax = sum((ln.tax_amount or ZERO for ln in inv.lines), ZERO) + additional
        total = sub_total + tax
        _check(v, f"{path}.sub_total", inv.sub_total, sub_total, "the sum of line sub totals")
        _check(v, f"{path}.total_discount", inv.total_discount, discount, "the sum of line discounts")
        _check(v, f"{path}.total_tax_amount", inv.total_tax_amount, tax, "line taxes + additional_tax_amount")
        _check(v, f"{path}.total_amount", inv.total_amount, total, "sub_total + total_tax_amount")
        inv.sub_total, inv.total_discount, inv.total_tax_amount, inv.total_amount = (
            sub_total,
            discount,
            tax,
            total,
        )
    else:
        # Without lines (ledger-synced invoices) the totals are the client's, but must agree.
        if inv.total_amount is None:
            v.add(f"{path}.total_amount", "is required when the invoice has no line_items")
            return
        tax = inv.total_tax_amount if inv.total_tax_amount is not None else ZERO
        _additional_tax(inv, inv.sub_total if inv.sub_total is not None else inv.total_amount - tax, v, path)
        if inv.sub_total is None:
            inv.sub_total = inv.total_amount - tax
        else:
            _check(
                v,
                f"{path}.total_amount",
                inv.total_amount,
                inv.sub_total + tax,
                "sub_total + total_tax_amount",
            )
        inv.total_tax_amount = tax
        if inv.total_discount is None:
            inv.total_discount = ZERO
    if inv.additional_tax_amount is None:
        inv.additional_tax_amount = ZERO
    if inv.total_amount is not None:
        _fits(v, f"{path}.total_amount", inv.total_amount)
        if inv.total_amount < 0:
            v.add(f"{path}.total_amount", f"must not be negative; got {inv.total_amount}")


def _additional_tax(inv: Invoice, sub_total: Decimal, v: Violations, path: str) -> Decimal:
    """additional_tax_amount, from additional_tax_percentage of the sub total when not sent."""
    if inv.additional_tax_percentage is not None:
        from_rate = clamp_scale(sub_total * inv.additional_tax_percentage / HUNDRED)
        if inv.additional_tax_amount is None:
            inv.additional_tax_amount = from_rate
        else:
            _check(
                v, f"{path}.additional_tax_amount", inv.additional_tax_amount, from_rate, "additional_tax_percentage"
            )
    return inv.additional_tax_amount if inv.additional_tax_amount is not None else ZERO


def expected_amount_due(inv: Invoice) -> Decimal:
    assert inv.total_amount is not None
    return inv.total_amount - inv.amount_paid - inv.amount_credited
