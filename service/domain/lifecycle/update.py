"""Changing an invoice: which fields an update may touch in each status, applying it, and pricing a draft
again (recalculate, taxation items added). Pure.
"""

from __future__ import annotations

from decimal import Decimal

from service.domain.errors import FailedPrecondition, Violations
from service.domain.lifecycle.status import refuse
from service.domain.models import AllowanceCharge, Invoice, LineItem, Status, TaxationItem
from service.domain.totals import client_amount, expected_amount_due, price_invoice, rules_of

MAX_TAXATION_ITEMS_PER_LINE = 5
# AIP-134 paths a caller may change, and which of them stay open after finalization.
UPDATABLE_FIELDS = frozenset(
    {
        "invoice_number",
        "customer_ref",
        "issue_date",
        "due_date",
        "paid_on_date",
        "source_modified_date",
        "currency",
        "currency_rate",
        "line_items",
        "allowance_charges",
        "withholding_tax",
        "sales_order_refs",
        "sub_total",
        "additional_tax_amount",
        "additional_tax_percentage",
        "total_tax_amount",
        "discount_percentage",
        "total_discount",
        "total_amount",
        "amount_due",
        "note",
        "metadata",
        "supplemental_data",
        "invoice_type",
        "subscription_id",
        "billing_reason",
        "period_start",
        "period_end",
        "payment_status",
        "vendor_status",
        "rounding_mode",
        "tax_rounding_mode",
        "cash_rounding_increment",
        "buyer",
        "buyer_reference",
        "purchase_order_reference",
        "delivery",
    }
)
OPEN_AFTER_FINALIZE = frozenset({"due_date", "note", "metadata"})
OPEN_WHEN_VOID = frozenset({"note", "metadata"})  # VOID is terminal: annotations only
LIFECYCLE_FIELDS = {
    "status": "status changes through FinalizeInvoice, VoidInvoice, CancelInvoice, ReverseInvoice, "
    "WriteOffInvoice and the payment RPCs",
    "payment_allocations": "payments are added with RecordPayment",
}
# Proto paths that map onto more than one attribute of the aggregate.
_PATH_ATTRS = {
    "customer_ref": ("customer_id", "customer_name"),
    "line_items": ("lines",),
    "payment_allocations": ("allocations",),
    "tax_rounding_mode": ("tax_mode",),
}


def _line_key(line: LineItem) -> tuple[object, ...]:
    return (
        line.description,
        line.quantity,
        line.unit_amount,
        line.sub_total,
        line.total_amount,
        len(line.taxation_items),
    )


def _ac_key(ac: AllowanceCharge) -> tuple[object, ...]:
    return (ac.charge, ac.amount, ac.percentage, ac.reason, ac.reason_code, ac.tax_category, ac.tax_rate)


def _unchanged(inv: Invoice, patch: Invoice, p: str) -> bool:
    """Whether applying path `p` of `patch` would leave `inv` as it is (e.g. a read-modify-write)."""
    if p == "line_items":
        return [_line_key(x) for x in inv.lines] == [_line_key(x) for x in patch.lines]
    if p == "allowance_charges":
        return [_ac_key(x) for x in inv.allowance_charges] == [_ac_key(x) for x in patch.allowance_charges]
    if p == "payment_allocations":
        return len(inv.allocations) == len(patch.allocations)
    return all(getattr(inv, a) == getattr(patch, a) for a in _PATH_ATTRS.get(p, (p,)))


def check_update_paths(inv: Invoice, patch: Invoice, paths: set[str], v: Violations) -> set[str]:
    """Which fields may change now: all of them on a draft, a few after finalization.

    Returns the paths that really change; sending a field back unchanged is never an error.
    """
    for p in sorted(paths):
        if p in LIFECYCLE_FIELDS:
            if not _unchanged(inv, patch, p):
                v.add("update_mask.paths", f"{p!r}: {LIFECYCLE_FIELDS[p]}")
        elif p not in UPDATABLE_FIELDS:
            v.add("update_mask.paths", f"{p!r} is not an updatable field of Invoice")
    v.raise_if_any()
    paths = paths - LIFECYCLE_FIELDS.keys()
    if inv.status is Status.DRAFT:
        return paths
    changing = {p for p in paths if not _unchanged(inv, patch, p)}
    open_fields = OPEN_WHEN_VOID if inv.status is Status.VOID else OPEN_AFTER_FINALIZE
    locked = sorted(changing - open_fields)
    if locked:
        raise FailedPrecondition(
            f"invoice {inv.id} is {inv.status.value}: only {', '.join(sorted(open_fields))} can change now; "
            f"refused: {', '.join(locked)}",
            subject=f"invoices/{inv.id}",
        )
    return changing


def apply_update(inv: Invoice, patch: Invoice, paths: set[str], v: Violations, path: str = "invoice") -> None:
    """Copies the masked fields of `patch` onto `inv` and, for a draft, prices it again."""
    paths = check_update_paths(inv, patch, paths, v)
    inherited = inv.discount_percentage
    for p in paths:
        for attr in _PATH_ATTRS.get(p, (p,)):
            setattr(inv, attr, getattr(patch, attr))
    if inv.status is not Status.DRAFT:
        return
    _forget_derived(inv, paths, inherited)
    inv.amount_due = patch.amount_due if "amount_due" in paths else None
    _reprice_draft(inv, v, path)


def _forget_derived(inv: Invoice, sent: set[str], inherited: Decimal | None = None) -> None:
    """Clears the totals of a draft the caller did not send (`sent` paths), so pricing derives them again
    rather than checking them against stale values. `inherited` is the invoice's discount percentage before
    an update changed it."""
    if inv.lines:
        for line in inv.lines if "line_items" not in sent else ():
            if "discount_percentage" in sent and inherited is not None and line.discount_percentage == inherited:
                # The line's percentage was the invoice's (pricing copies it): it follows the new one.
                line.discount_percentage = line.discount_amount = None
            line.sub_total = line.tax_amount = line.total_amount = None
            if line.discount_percentage is not None:
                line.discount_amount = None
            if line.charge_percentage is not None:
                line.charge_amount = None
        for ac in inv.allowance_charges if "allowance_charges" not in sent else ():
            if ac.percentage is not None:  # follows the lines (or its base) again
                ac.amount = None
        for name in ("sub_total", "total_tax_amount", "total_discount", "total_amount"):
            if name not in sent:
                setattr(inv, name, None)
    elif "sub_total" not in sent and {"total_amount", "total_tax_amount"} & sent:
        inv.sub_total = None
    if inv.additional_tax_percentage is not None and "additional_tax_amount" not in sent:
        inv.additional_tax_amount = None  # derived from the percentage again


def _reprice_draft(inv: Invoice, v: Violations, path: str) -> None:
    sent_due = inv.amount_due
    price_invoice(inv, v, path)
    if inv.total_amount is not None:
        due = expected_amount_due(inv)
        sent_due = client_amount(v, f"{path}.amount_due", sent_due, rules_of(inv))
        if sent_due is not None and sent_due != due:
            v.add(f"{path}.amount_due", f"is {sent_due} but total_amount gives {due}")
        inv.amount_due = due
    v.raise_if_any()


def recalculate(inv: Invoice) -> None:
    """Prices a draft again from its lines; stored line and invoice totals are recomputed."""
    refuse(inv, "recalculate", [Status.DRAFT])
    _forget_derived(inv, sent=set())
    inv.amount_due = None
    _reprice_draft(inv, Violations(), "invoice")


def add_taxation_items(inv: Invoice, items: list[TaxationItem], v: Violations) -> None:
    refuse(inv, "add taxation items to", [Status.DRAFT])
    by_id = {line.id: line for line in inv.lines}
    r = rules_of(inv)
    for i, item in enumerate(items):
        item.tax_amount = client_amount(v, f"taxation_items[{i}].tax_amount", item.tax_amount, r)
        item.exempt_amount = client_amount(v, f"taxation_items[{i}].exempt_amount", item.exempt_amount, r)
        line = by_id.get(item.line_item_id)
        if line is None:
            v.add(f"taxation_items[{i}].line_item_id", f"no line item {item.line_item_id!r} on this invoice")
            continue
        line.taxation_items.append(item)
        if len(line.taxation_items) > MAX_TAXATION_ITEMS_PER_LINE:
            v.add(
                f"taxation_items[{i}]",
                f"line {line.id} would have more than {MAX_TAXATION_ITEMS_PER_LINE} taxation items",
            )
    v.raise_if_any()
    for line in inv.lines:
        line.tax_amount = line.total_amount = None
    inv.total_tax_amount = inv.total_amount = inv.amount_due = None
    _reprice_draft(inv, v, "invoice")
