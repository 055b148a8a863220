"""Zuora standalone invoice (seed 004; CreateInvoiceRequest and the InvoiceResponse totals): camelCase, JSON
numbers, YYYY-MM-DD dates, invoiceItems[] with taxItems[] and discountItems[].

What the hooks translate:
- an item's `amount` is quantity x unitPrice before discounts; its discount items (negative amounts) sum into
  the canonical discount_amount, so sub_total = amount - discount; unitPrice defaults to amount / quantity;
- `paymentAmount` is a total only: one payment allocation in the invoice's currency;
- statuses per the README table; reversed and written-off invoices are Posted with balance 0 and a
  `creditMemoAmount`. Zuora's invoice does not say which of the two happened: payments rule out a reversal
  (Zuora refuses it), and a credit short of the total means a write-off; otherwise it reads as REVERSED.
- amounts are tax-exclusive in the canonical schema, so taxMode TaxInclusive is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from service.domain.errors import Violations
from service.domain.models import (
    CreditMemo,
    CreditMemoReason,
    Invoice,
    LineItem,
    Status,
    TaxationItem,
    TaxRateType,
    VoidReason,
)
from service.domain.values import LONG_TEXT, ZERO
from service.vendors.allowances import allowance_charges, line_charge
from service.vendors.fields import FieldMap, Kind, read_value, write_value
from service.vendors.json_payload import join
from service.vendors.rules import ONE, by_amounts, line_discount, line_gross, paid_allocations, reported_paid, unit_from
from service.vendors.shapes import ListMap, Shape, Vendor, read_list, write_shape

N, T = Kind.NUMBER, Kind.TEXT
TAX_EXCLUSIVE = "TaxExclusive"
WHY_EXCLUSIVE = "canonical line amounts exclude tax"


class ZuoraStatus(StrEnum):
    DRAFT = "Draft"
    POSTED = "Posted"
    CANCELED = "Canceled"
    ERROR = "Error"
    PENDING_FOR_TAX = "PendingForTax"
    GENERATING = "Generating"
    CANCEL_IN_PROGRESS = "CancelInProgress"


# Zuora states finer than a canonical DRAFT: kept in vendor_status so an export gives them back.
DRAFT_LIKE = frozenset({ZuoraStatus.ERROR, ZuoraStatus.PENDING_FOR_TAX, ZuoraStatus.GENERATING})

TAX_ITEM = Shape(
    (
        FieldMap("name", "name", T),
        FieldMap("taxAmount", "tax_amount", N),
        FieldMap("taxCode", "tax_code", T),
        FieldMap("taxCodeDescription", "tax_code_description", T),
        FieldMap("taxDate", "tax_date", Kind.DATE),
        FieldMap("taxRate", "tax_rate", N, minimum=ZERO),
        FieldMap(
            "taxRateType",
            "tax_rate_type",
            Kind.ENUM,
            values={"Percentage": TaxRateType.PERCENTAGE, "FlatFee": TaxRateType.FLAT_FEE},
        ),
        FieldMap("taxRateDescription", "tax_rate_description", T),
        FieldMap("exemptAmount", "exempt_amount", N, minimum=ZERO),
        FieldMap("jurisdiction", "jurisdiction", T),
        FieldMap("locationCode", "location_code", T),
        # Zuora requires taxMode on tax items; the canonical model only has tax-exclusive amounts.
        FieldMap("taxMode", "", Kind.CONSTANT, const=TAX_EXCLUSIVE, why=WHY_EXCLUSIVE),
    ),
    TaxationItem,
)


@dataclass(slots=True)
class _Discount:
    """A discount item while it is read: only its amount has a canonical home (the line's discount)."""

    amount: Decimal | None = None


def _check_discount(src: dict[str, Any], item: _Discount, v: Violations, path: str) -> None:
    if item.amount is not None and item.amount >= 0:
        v.add(join(path, "amount"), f"must be negative: a discount item reduces the charge; got {item.amount}")
    if src.get("taxItems"):
        v.add(join(path, "taxItems"), "tax on a discount item cannot be represented: put the net tax on the charge")


DISCOUNTS = ListMap(
    "discountItems",
    "",
    Shape(
        (FieldMap("amount", "amount", N, required=True, maximum=ZERO, about="negative: the line's discount_amount"),),
        _Discount,
        read_hook=_check_discount,
    ),
)
ITEM_AMOUNT = FieldMap("amount", "", N, required=True, about="quantity x unit_amount before discount")
UNIT_PRICE = FieldMap("unitPrice", "unit_amount", N)


def _read_item(src: dict[str, Any], line: LineItem, v: Violations, path: str) -> None:
    amount = read_value(ITEM_AMOUNT, src, v, path)
    discounts: list[_Discount] = read_list(DISCOUNTS, src, v, path)
    if discounts:
        line.discount_amount = -sum((d.amount for d in discounts if d.amount is not None), ZERO)
    if amount is None:
        return
    if src.get(UNIT_PRICE.vendor) is None:
        line.unit_amount = unit_from(v, join(path, UNIT_PRICE.vendor), amount, line.quantity) or ZERO
    line.sub_total = amount - (line.discount_amount or ZERO)


def _write_item(line: LineItem, out: dict[str, Any]) -> None:
    write_value(ITEM_AMOUNT, out, line_gross(line))
    discount = line_discount(line)
    if discount:
        # One item for the whole discount; several in the vendor's payload come back from supplemental data.
        out[DISCOUNTS.vendor] = [write_shape(DISCOUNTS.shape, _Discount(-discount))]


ITEM = Shape(
    (
        FieldMap("description", "description", T, limit=LONG_TEXT),
        FieldMap("quantity", "quantity", N, minimum=ZERO, default=ONE),  # Zuora's default
        UNIT_PRICE,
        FieldMap("serviceStartDate", "service_start_date", Kind.DATE),
        FieldMap("serviceEndDate", "service_end_date", Kind.DATE),
        FieldMap("sku", "sku", T),
        FieldMap("uom", "unit_of_measure", T),
        FieldMap("taxAmount", "tax_amount", N),
        FieldMap("taxMode", "", Kind.CONSTANT, const=TAX_EXCLUSIVE, why=WHY_EXCLUSIVE, emit=False),
        ListMap("taxItems", "taxation_items", TAX_ITEM),
        *line_charge(N),
    ),
    lambda: LineItem(quantity=ONE, unit_amount=ZERO),
    read_hook=_read_item,
    write_hook=_write_item,
    hooked=(ITEM_AMOUNT, DISCOUNTS),
)

STATUS = FieldMap(
    "status", "", Kind.ENUM, values={s.value: s for s in ZuoraStatus}, about="status, void_reason, vendor_status"
)
PAYMENT_AMOUNT = FieldMap("paymentAmount", "", N, minimum=ZERO, about="the total paid: one imported allocation")
CREDIT_MEMO_AMOUNT = FieldMap("creditMemoAmount", "", N, minimum=ZERO, about="the credit memos' total")


def _read_invoice(src: dict[str, Any], inv: Invoice, v: Violations, path: str) -> None:
    paid = read_value(PAYMENT_AMOUNT, src, v, path)
    credited = read_value(CREDIT_MEMO_AMOUNT, src, v, path)
    inv.allocations = paid_allocations(inv, paid)
    status = read_value(STATUS, src, v, path) or ZuoraStatus.DRAFT  # Zuora's default on create
    if status is ZuoraStatus.POSTED and credited and inv.amount_due == 0:
        short = inv.total_amount is not None and credited < inv.total_amount
        written_off = bool(paid) or short
        inv.status = Status.VOID
        inv.void_reason = VoidReason.WRITTEN_OFF if written_off else VoidReason.REVERSED
        reason = CreditMemoReason.WRITE_OFF if written_off else CreditMemoReason.REVERSAL
        inv.credit_memos = [CreditMemo(reason=reason, total_amount=credited, currency=inv.currency)]
        return
    if credited and status is not ZuoraStatus.POSTED:
        v.add(join(path, CREDIT_MEMO_AMOUNT.vendor), "credit memos can only be represented on a Posted invoice")
    elif credited:  # partly credited: the credit memo stays on the open invoice as imported history
        inv.credit_memos = [CreditMemo(reason=CreditMemoReason.IMPORTED, total_amount=credited, currency=inv.currency)]
    if status is ZuoraStatus.POSTED:
        inv.status = by_amounts(inv)
    elif status in (ZuoraStatus.CANCELED, ZuoraStatus.CANCEL_IN_PROGRESS):
        inv.status, inv.void_reason = Status.VOID, VoidReason.CANCELED
    else:
        inv.status = Status.DRAFT
    if status in DRAFT_LIKE or status is ZuoraStatus.CANCEL_IN_PROGRESS:
        inv.vendor_status = status.value


def zuora_status(inv: Invoice) -> ZuoraStatus:
    finer = inv.vendor_status
    if inv.status is Status.DRAFT:
        return ZuoraStatus(finer) if finer in DRAFT_LIKE else ZuoraStatus.DRAFT
    if inv.status is not Status.VOID or inv.void_reason in (VoidReason.REVERSED, VoidReason.WRITTEN_OFF):
        return ZuoraStatus.POSTED  # a reversal or write-off shows as balance 0 and creditMemoAmount
    if inv.void_reason is VoidReason.CANCELED and finer == ZuoraStatus.CANCEL_IN_PROGRESS:
        return ZuoraStatus.CANCEL_IN_PROGRESS
    return ZuoraStatus.CANCELED  # Zuora has no void: canceled is the nearest


def _write_invoice(inv: Invoice, out: dict[str, Any]) -> None:
    write_value(STATUS, out, zuora_status(inv))
    write_value(PAYMENT_AMOUNT, out, reported_paid(inv))
    write_value(CREDIT_MEMO_AMOUNT, out, inv.amount_credited if inv.credit_memos else None)


INVOICE = Shape(
    (
        FieldMap("invoiceNumber", "invoice_number", T, limit=64),
        FieldMap("accountId", "customer_id", T),  # the Zuora account is the customer billed
        FieldMap("invoiceDate", "issue_date", Kind.DAY),
        FieldMap("dueDate", "due_date", Kind.DAY),
        FieldMap("currency", "currency", Kind.CURRENCY),
        FieldMap("comments", "note", T, limit=LONG_TEXT),
        FieldMap("amount", "total_amount", N),
        FieldMap("amountWithoutTax", "sub_total", N),
        FieldMap("taxAmount", "total_tax_amount", N),
        FieldMap("discount", "total_discount", N),
        FieldMap("balance", "amount_due", N),
        ListMap("invoiceItems", "lines", ITEM),
        allowance_charges(N),
    ),
    Invoice,
    read_hook=_read_invoice,
    write_hook=_write_invoice,
    hooked=(STATUS, PAYMENT_AMOUNT, CREDIT_MEMO_AMOUNT),
)

ZUORA = Vendor(
    "zuora",
    INVOICE,
    hooked_paths=(("allocations", PAYMENT_AMOUNT.vendor), ("credit_memos", CREDIT_MEMO_AMOUNT.vendor)),
)
