"""FlexPrice invoice (seed 003; DtoCreateInvoiceRequest / DtoInvoiceResponse): snake_case, money as decimal
strings, currencies lower-case (FlexPrice stores them so).

FlexPrice splits amounts differently from the canonical schema, which the hooks translate:
- `subtotal` is before discounts (canonical sub_total is after them): sub_total = subtotal - total_discount;
- `amount_due` is what the invoice asks for, `amount_remaining` what is still owed (canonical amount_due);
- `amount_paid` is a total only: it becomes one payment allocation in the invoice's currency;
- a line has `amount` (quantity x price, rounded to the currency) and `quantity` but no unit price:
  unit_amount = amount / quantity, to 9 decimals when it does not divide (its rounded product is the amount).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any

from service.domain import money
from service.domain.errors import Violations
from service.domain.models import (
    BillingReason,
    Invoice,
    InvoiceType,
    LineItem,
    PaymentStatus,
    Status,
    VoidReason,
)
from service.domain.values import LONG_TEXT, ZERO
from service.vendors.allowances import allowance_charges, line_charge, snake
from service.vendors.fields import FieldMap, Kind, read_value, write_value
from service.vendors.json_payload import join
from service.vendors.rules import ONE, by_amounts, line_gross, paid_allocations, reported_paid, unit_from
from service.vendors.shapes import ListMap, Shape, Vendor

D, T = Kind.DECIMAL_STRING, Kind.TEXT


class InvoiceStatus(StrEnum):
    DRAFT = "DRAFT"
    FINALIZED = "FINALIZED"
    VOIDED = "VOIDED"


def _values(enum: type[StrEnum]) -> dict[str, StrEnum]:
    return {member.value: member for member in enum}


LINE_AMOUNT = FieldMap(
    "amount", "", D, required=True, about="quantity x unit_amount before discount (sub_total + discount)"
)


def _read_line(src: dict[str, Any], line: LineItem, v: Violations, path: str) -> None:
    amount = read_value(LINE_AMOUNT, src, v, path)
    if amount is not None:
        line.sub_total = amount  # no line discount in FlexPrice: coupons apply to the invoice


def _write_line(line: LineItem, out: dict[str, Any]) -> None:
    write_value(LINE_AMOUNT, out, line_gross(line))


LINE = Shape(
    (
        FieldMap("display_name", "description", T, limit=LONG_TEXT),
        FieldMap("quantity", "quantity", D, required=True, minimum=ZERO),
        FieldMap("price_id", "price_id", T),
        FieldMap("period_start", "service_start_date", Kind.DAY_TIME),
        FieldMap("period_end", "service_end_date", Kind.DAY_TIME),
        FieldMap("metadata", "metadata", Kind.STRING_MAP),
        *line_charge(D, snake),
    ),
    lambda: LineItem(quantity=ONE, unit_amount=ZERO),  # quantity 1 until read: no division error of its own
    read_hook=_read_line,
    write_hook=_write_line,
    hooked=(LINE_AMOUNT,),
)

SUBTOTAL = FieldMap("subtotal", "", D, about="sub_total + total_discount (before discounts)")
AMOUNT_DUE = FieldMap("amount_due", "", D, about="amount_due + amount_paid: what the invoice asks for")
AMOUNT_PAID = FieldMap("amount_paid", "", D, minimum=ZERO, about="the total paid: one imported payment allocation")
AMOUNT_REMAINING = FieldMap("amount_remaining", "", D, minimum=ZERO, about="amount_due (what is still owed)")
INVOICE_STATUS = FieldMap(
    "invoice_status", "", Kind.ENUM, values=_values(InvoiceStatus), about="status and void_reason (README table)"
)


def _places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _spread(total: Decimal, amounts: list[Decimal]) -> list[Decimal]:
    """`total` over the line amounts by largest remainder, in decimal places no line amount lacks, so each
    amount before discount comes back digit for digit; [] when the total needs more places than that."""
    places = min(_places(total), *(_places(x) for x in amounts))
    units = total.scaleb(places)
    if units != units.to_integral_value():
        return []
    return [u.scaleb(-places) for u in money.spread(units, amounts, "JPY")]  # JPY: in whole units


def _read_invoice(src: dict[str, Any], inv: Invoice, v: Violations, path: str) -> None:
    for i, line in enumerate(inv.lines):  # the unit price, once the currency (its rounding) is known
        if line.sub_total is not None:
            at = join(path, f"line_items[{i}].{LINE_AMOUNT.vendor}")
            gross = line.sub_total - (line.charge_amount or ZERO)  # the amount includes the line's charge
            line.unit_amount = unit_from(v, at, gross, line.quantity, inv.currency) or ZERO
    # The invoice's discount includes its allowances (written beside it): the lines' part is the rest.
    allowances = sum((ac.amount or ZERO for ac in inv.allowance_charges if not ac.charge), ZERO)
    line_discount = (inv.total_discount or ZERO) - allowances
    if line_discount < 0:
        v.add(join(path, "total_discount"), f"is {inv.total_discount} but its allowances alone come to {allowances}")
    if inv.lines and line_discount > 0 and all(line.sub_total is not None for line in inv.lines):
        # FlexPrice discounts the invoice, not its lines: spread over the line amounts (largest remainder), so
        # the canonical line discounts add up to it and each line's amount (before discount) stays as given.
        parts = _spread(line_discount, [x.sub_total or ZERO for x in inv.lines])
        for line, part in zip(inv.lines, parts, strict=False):
            line.discount_amount, line.sub_total = part, (line.sub_total or ZERO) - part
    if inv.lines and inv.total_tax_amount:
        # FlexPrice lines carry no tax: the invoice's tax, less its allowances' and charges', is the canonical
        # invoice-level (additional) tax.
        taxed = sum((ac.tax_amount or ZERO for ac in inv.allowance_charges), ZERO)
        inv.additional_tax_amount = inv.total_tax_amount - taxed
    subtotal = read_value(SUBTOTAL, src, v, path)
    if subtotal is not None:
        inv.sub_total = subtotal - (inv.total_discount or ZERO)
    due = read_value(AMOUNT_DUE, src, v, path)
    paid = read_value(AMOUNT_PAID, src, v, path)
    remaining = read_value(AMOUNT_REMAINING, src, v, path)
    status = read_value(INVOICE_STATUS, src, v, path)
    inv.allocations = paid_allocations(inv, paid)
    if remaining is not None:
        expected = None if due is None else due - (paid or ZERO)
        # Overpaid: the excess is the customer's credit; voided: nothing remains whatever was paid.
        free = inv.payment_status is PaymentStatus.OVERPAID or status is InvoiceStatus.VOIDED
        if expected is not None and expected != remaining and not free:
            v.add(
                join(path, AMOUNT_REMAINING.vendor), f"must be amount_due - amount_paid = {expected}; got {remaining}"
            )
        inv.amount_due = remaining
    elif due is not None:
        inv.amount_due = due - (paid or ZERO)
    if status is InvoiceStatus.FINALIZED:
        inv.status = by_amounts(inv)
    elif status is InvoiceStatus.VOIDED:
        inv.status, inv.void_reason = Status.VOID, VoidReason.VOIDED
    else:
        inv.status = Status.DRAFT  # FlexPrice's default


def _write_invoice(inv: Invoice, out: dict[str, Any]) -> None:
    if inv.sub_total is not None:
        write_value(SUBTOTAL, out, inv.sub_total + (inv.total_discount or ZERO))
    paid = reported_paid(inv)
    if inv.amount_due is not None:
        write_value(AMOUNT_DUE, out, inv.amount_due + (inv.amount_paid if paid is not None else ZERO))
    if paid is not None:
        write_value(AMOUNT_PAID, out, paid)
        write_value(AMOUNT_REMAINING, out, inv.amount_due)
    if inv.status is Status.DRAFT:
        status = InvoiceStatus.DRAFT
    elif inv.status is Status.VOID:
        status = InvoiceStatus.VOIDED  # every void reason: FlexPrice has one void state
    else:
        status = InvoiceStatus.FINALIZED
    write_value(INVOICE_STATUS, out, status)


INVOICE = Shape(
    (
        FieldMap("invoice_number", "invoice_number", T, limit=64),
        FieldMap("customer_id", "customer_id", T),
        FieldMap("subscription_id", "subscription_id", T),
        FieldMap("invoice_type", "invoice_type", Kind.ENUM, values=_values(InvoiceType)),
        FieldMap("billing_reason", "billing_reason", Kind.ENUM, values=_values(BillingReason)),
        FieldMap("payment_status", "payment_status", Kind.ENUM, values=_values(PaymentStatus)),
        FieldMap("currency", "currency", Kind.CURRENCY, lower=True),
        FieldMap("description", "note", T, limit=LONG_TEXT),
        FieldMap("due_date", "due_date", Kind.DATETIME),
        FieldMap("period_start", "period_start", Kind.DATETIME),
        FieldMap("period_end", "period_end", Kind.DATETIME),
        FieldMap("paid_at", "paid_on_date", Kind.DATETIME),
        FieldMap("metadata", "metadata", Kind.STRING_MAP),
        FieldMap("total", "total_amount", D),
        FieldMap("total_tax", "total_tax_amount", D),
        FieldMap("total_discount", "total_discount", D, minimum=ZERO),
        ListMap("line_items", "lines", LINE),
        allowance_charges(D, snake),
    ),
    Invoice,
    read_hook=_read_invoice,
    write_hook=_write_invoice,
    hooked=(SUBTOTAL, AMOUNT_DUE, AMOUNT_PAID, AMOUNT_REMAINING, INVOICE_STATUS),
)

FLEXPRICE = Vendor(
    "flexprice",
    INVOICE,
    hooked_paths=(
        ("allocations", AMOUNT_PAID.vendor),
        ("amount_due", AMOUNT_REMAINING.vendor),
        ("sub_total", SUBTOTAL.vendor),
    ),
)
