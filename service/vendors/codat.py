"""Codat AccountingInvoice (seeds 000, 002): camelCase, JSON numbers, ISO 8601 dates.

The canonical schema follows Codat, so nearly everything is a table entry. Codat's own `id`, `metadata`
and `supplementalData` have no canonical field and are kept as supplemental data.
"""

from __future__ import annotations

from typing import Any

from service.domain.errors import Violations
from service.domain.models import AllocationSource, Invoice, LineItem, PaymentAllocation, Status, VoidReason
from service.domain.money import HUNDRED
from service.domain.totals import rules_of
from service.domain.values import LONG_TEXT, ZERO
from service.vendors.allowances import allowance_charges, line_charge
from service.vendors.fields import FieldMap, Kind
from service.vendors.shapes import ListMap, Shape, Vendor, write_shape

N, T = Kind.NUMBER, Kind.TEXT

STATUS = {
    "Draft": Status.DRAFT,
    "Submitted": Status.SUBMITTED,
    "PartiallyPaid": Status.PARTIALLY_PAID,
    "Paid": Status.PAID,
    "Void": Status.VOID,
}  # "Unknown" is not here: a status the service cannot act on is refused


def _texts(*names: tuple[str, str]) -> Shape:
    """An object of strings kept as a proto-shaped dict (refs, sales order refs)."""
    return Shape(tuple(FieldMap(vendor, attr, T) for vendor, attr in names), dict)


_ID_NAME = _texts(("id", "id"), ("name", "name"))
WITHHOLDING = Shape((FieldMap("name", "name", T), FieldMap("amount", "amount", N)), dict)
SALES_ORDER_REF = _texts(("id", "id"), ("dataType", "data_type"))

LINE = Shape(
    (
        FieldMap("description", "description", T, limit=LONG_TEXT),
        FieldMap("unitAmount", "unit_amount", N, required=True),
        FieldMap("quantity", "quantity", N, required=True, minimum=ZERO),
        FieldMap("discountAmount", "discount_amount", N, minimum=ZERO),
        FieldMap("discountPercentage", "discount_percentage", N, minimum=ZERO, maximum=HUNDRED),
        FieldMap("subTotal", "sub_total", N),
        FieldMap("taxAmount", "tax_amount", N),
        FieldMap("totalAmount", "total_amount", N),
        FieldMap("isDirectIncome", "is_direct_income", Kind.BOOL),
        FieldMap("itemRef.id", "refs.item_ref.id", T),
        FieldMap("itemRef.name", "refs.item_ref.name", T),
        FieldMap("accountRef.id", "refs.account_ref.id", T),
        FieldMap("accountRef.name", "refs.account_ref.name", T),
        FieldMap("taxRateRef.id", "refs.tax_rate_ref.id", T),
        FieldMap("taxRateRef.name", "refs.tax_rate_ref.name", T),
        FieldMap("taxRateRef.effectiveTaxRate", "refs.tax_rate_ref.effective_tax_rate", N),
        ListMap("trackingCategoryRefs", "refs.tracking_category_refs", _ID_NAME),
        ListMap("tracking.categoryRefs", "refs.tracking.category_refs", _ID_NAME),
        FieldMap("tracking.customerRef.id", "refs.tracking.customer_ref.id", T),
        FieldMap("tracking.customerRef.companyName", "refs.tracking.customer_ref.company_name", T),
        FieldMap("tracking.projectRef.id", "refs.tracking.project_ref.id", T),
        FieldMap("tracking.projectRef.name", "refs.tracking.project_ref.name", T),
        FieldMap("tracking.isBilledTo", "refs.tracking.is_billed_to", T),
        FieldMap("tracking.isRebilledTo", "refs.tracking.is_rebilled_to", T),
        *line_charge(N),
    ),
    lambda: LineItem(quantity=ZERO, unit_amount=ZERO),
)

ALLOCATION = Shape(
    (
        FieldMap("allocation.allocatedOnDate", "allocated_on_date", Kind.DATETIME),
        FieldMap("allocation.currency", "currency", Kind.CURRENCY),
        FieldMap("allocation.currencyRate", "currency_rate", N, positive=True),
        FieldMap("allocation.totalAmount", "amount", N, required=True, positive=True),
        FieldMap("payment.id", "payment.id", T),
        FieldMap("payment.note", "payment.note", T, limit=LONG_TEXT),
        FieldMap("payment.reference", "payment.reference", T),
        FieldMap("payment.accountRef.id", "payment.account_ref.id", T),
        FieldMap("payment.accountRef.name", "payment.account_ref.name", T),
        FieldMap("payment.currency", "payment.currency", Kind.CURRENCY),
        FieldMap("payment.currencyRate", "payment.currency_rate", N, positive=True),
        FieldMap("payment.paidOnDate", "payment.paid_on_date", Kind.DATETIME),
        FieldMap("payment.totalAmount", "payment.total_amount", N),
    ),
    lambda: PaymentAllocation(amount=ZERO, currency=""),
)


def _read_invoice(src: dict[str, Any], inv: Invoice, v: Violations, path: str) -> None:
    if inv.status is Status.VOID:
        inv.void_reason = VoidReason.VOIDED
    for alloc in inv.allocations:
        # What the allocation is worth in the invoice's currency; the create path computes it again.
        foreign = alloc.currency and alloc.currency != inv.currency
        rate = alloc.currency_rate if foreign else None
        alloc.applied_amount = rules_of(inv).convert(alloc.amount, rate) if rate is not None else alloc.amount


ALLOCATIONS = "paymentAllocations"


def _write_invoice(inv: Invoice, out: dict[str, Any]) -> None:
    """Paid history imported as a total only (a Paid invoice without allocations) stays out of the
    allocations, as the vendor gave it: amountDue says it."""
    if any(a.source is AllocationSource.IMPORTED for a in inv.allocations):
        kept = [write_shape(ALLOCATION, a) for a in inv.allocations if a.source is not AllocationSource.IMPORTED]
        if kept:
            out[ALLOCATIONS] = kept
        else:
            out.pop(ALLOCATIONS, None)


INVOICE = Shape(
    (
        FieldMap("invoiceNumber", "invoice_number", T, limit=64),
        FieldMap("customerRef.id", "customer_id", T),
        FieldMap("customerRef.companyName", "customer_name", T),
        FieldMap("issueDate", "issue_date", Kind.DATETIME),
        FieldMap("dueDate", "due_date", Kind.DATETIME),
        FieldMap("paidOnDate", "paid_on_date", Kind.DATETIME),
        FieldMap("modifiedDate", "modified_date", Kind.DATETIME),
        FieldMap("sourceModifiedDate", "source_modified_date", Kind.DATETIME),
        FieldMap("currency", "currency", Kind.CURRENCY),
        FieldMap("currencyRate", "currency_rate", N, positive=True),
        FieldMap("subTotal", "sub_total", N),
        FieldMap("totalTaxAmount", "total_tax_amount", N),
        FieldMap("totalDiscount", "total_discount", N),
        FieldMap("discountPercentage", "discount_percentage", N, minimum=ZERO, maximum=HUNDRED),
        FieldMap("additionalTaxAmount", "additional_tax_amount", N),
        FieldMap("additionalTaxPercentage", "additional_tax_percentage", N, maximum=HUNDRED),
        FieldMap("totalAmount", "total_amount", N),
        FieldMap("amountDue", "amount_due", N),
        FieldMap("status", "status", Kind.ENUM, required=True, values=STATUS),
        FieldMap("note", "note", T, limit=LONG_TEXT),
        ListMap("lineItems", "lines", LINE),
        ListMap(ALLOCATIONS, "allocations", ALLOCATION),
        ListMap("withholdingTax", "withholding_tax", WITHHOLDING),
        ListMap("salesOrderRefs", "sales_order_refs", SALES_ORDER_REF),
        allowance_charges(N),
    ),
    Invoice,
    read_hook=_read_invoice,
    write_hook=_write_invoice,
)

CODAT = Vendor("codat", INVOICE)
