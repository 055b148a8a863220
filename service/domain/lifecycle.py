"""The invoice lifecycle (PRODUCT section 5) as pure functions over the aggregate.

Each function checks its rule, then changes the invoice in place. A broken rule raises
FailedPrecondition; bad input raises InvalidArgument. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from service.domain.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    InvariantBreach,
    Violations,
)
from service.domain.models import (
    FINALIZED,
    AllocationSource,
    CreditMemo,
    CreditMemoReason,
    Invoice,
    LineItem,
    PaymentAllocation,
    PaymentStatus,
    Status,
    TaxationItem,
    VoidReason,
)
from service.domain.money import MoneyDefaults, Rules
from service.domain.totals import amounts, client_amount, expected_amount_due, price_invoice, rules_of
from service.domain.values import MAX_INT_DIGITS, ZERO, shown

MAX_LINES = 1000
MAX_TAXATION_ITEMS_PER_LINE = 5
MAX_ALLOCATIONS = 100
CREATABLE = frozenset({Status.DRAFT, Status.SUBMITTED, Status.PARTIALLY_PAID, Status.PAID})
# AIP-134 paths a caller may change, and which of them stay open after finalization.
UPDATABLE_FIELDS = frozenset(
    {
        "invoice_number", "customer_ref", "issue_date", "due_date", "paid_on_date", "source_modified_date",
        "currency", "currency_rate", "line_items", "withholding_tax", "sales_order_refs", "sub_total",
        "additional_tax_amount", "additional_tax_percentage", "total_tax_amount", "discount_percentage",
        "total_discount", "total_amount", "amount_due", "note", "metadata", "supplemental_data",
        "invoice_type", "subscription_id", "billing_reason", "period_start", "period_end", "payment_status",
        "vendor_status", "rounding_mode", "tax_rounding_mode", "cash_rounding_increment",
    }
)  # fmt: skip
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
_DERIVED_WITHOUT_LINES = ("sub_total", "total_tax_amount", "total_amount")


def _refuse(inv: Invoice, action: str, allowed: Iterable[Status]) -> None:
    if inv.status not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise FailedPrecondition(
            f"cannot {action} invoice {inv.id or '(new)'}: status is {inv.status.value}, must be {names}",
            subject=f"invoices/{inv.id}",
        )


def check_etag(inv: Invoice, etag: str) -> None:
    if etag and etag != inv.etag:
        raise Aborted(f"etag {shown(etag)} does not match the current {inv.etag!r}; read the invoice again")


def derive_status(inv: Invoice) -> Status:
    """The status a finalized invoice's amounts imply."""
    assert inv.amount_due is not None and inv.total_amount is not None
    if inv.amount_due == 0:
        return Status.PAID
    if inv.amount_due == inv.payable_amount:
        return Status.SUBMITTED
    return Status.PARTIALLY_PAID


def applied_amount(inv: Invoice, alloc: PaymentAllocation, path: str, v: Violations, now: datetime) -> Decimal:
    """The allocation's value in the invoice's currency: round(amount x rate) for a foreign currency, whose
    rate (allocation currency -> invoice currency) is kept with its date, allocated_on_date."""
    alloc.currency = alloc.currency or inv.currency
    own = Rules(alloc.currency, rules_of(inv).rounding)
    alloc.amount = client_amount(v, f"{path}.allocation.total_amount", alloc.amount, own) or alloc.amount
    if alloc.amount < 0:  # a payment never raises what is owed
        v.add(f"{path}.allocation.total_amount", f"must not be negative; got {alloc.amount:f}")
    if alloc.currency == inv.currency:
        return alloc.amount
    if alloc.currency_rate is None:
        v.add(
            f"{path}.allocation.currency_rate",
            f"is required: the allocation is in {alloc.currency} but the invoice is in {inv.currency}",
        )
        return alloc.amount
    alloc.allocated_on_date = alloc.allocated_on_date or now
    applied = rules_of(inv).convert(alloc.amount, alloc.currency_rate)
    if applied <= 0:
        v.add(f"{path}.allocation.total_amount", f"is worth {applied:f} {inv.currency} at this rate: nothing to apply")
    return applied


def _settle(inv: Invoice, now: datetime) -> None:
    """Recomputes amount_due and the status of a finalized invoice after money moved."""
    inv.amount_due = expected_amount_due(inv)
    inv.status = derive_status(inv)
    if inv.status is Status.PAID:
        inv.paid_on_date = inv.paid_on_date or now
        if inv.total_amount:
            inv.payment_status = PaymentStatus.SUCCEEDED


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
        _finalize_amounts(inv, now)
        if requested in (Status.PARTIALLY_PAID, Status.PAID) and inv.status is not requested:
            raise InvalidArgument(
                [_violation(f"{path}.status", f"is {requested.value} but the amounts make it {inv.status.value}")]
            )


def _violation(path: str, text: str) -> FieldViolation:
    return FieldViolation(path, text)


def _finalize_amounts(inv: Invoice, now: datetime) -> None:
    inv.finalize_time = now
    for alloc in inv.allocations:
        alloc.create_time = alloc.create_time or now
    _settle(inv, now)


def check_can_finalize(inv: Invoice) -> None:
    _refuse(inv, "finalize", [Status.DRAFT])


def finalize(inv: Invoice, number: str, now: datetime, issue_date: datetime | None = None) -> None:
    """DRAFT -> SUBMITTED (or PAID for a zero total); the caller supplies the number."""
    check_can_finalize(inv)
    inv.invoice_number = inv.invoice_number or number
    if issue_date is not None:
        inv.issue_date = issue_date
    inv.issue_date = inv.issue_date or now
    _finalize_amounts(inv, now)


def record_payment(inv: Invoice, alloc: PaymentAllocation, now: datetime, path: str = "payment_allocation") -> None:
    _refuse(inv, "record a payment on", [Status.SUBMITTED, Status.PARTIALLY_PAID])
    v = Violations()
    alloc.applied_amount = applied_amount(inv, alloc, path, v, now)
    v.raise_if_any()
    assert inv.amount_due is not None
    if alloc.applied_amount > inv.amount_due:
        raise FailedPrecondition(
            f"payment of {alloc.applied_amount} {inv.currency} exceeds amount_due {inv.amount_due}: "
            "overpayment is refused",
            subject=f"invoices/{inv.id}",
            violation_type="OVERPAYMENT",
        )
    alloc.create_time = now
    alloc.allocated_on_date = alloc.allocated_on_date or now
    inv.allocations.append(alloc)
    _settle(inv, now)


CREDIT_LIMIT = Decimal(10) ** MAX_INT_DIGITS


def check_credit_balance(balance: Decimal, path: str = "amount") -> None:
    """A credit balance stays a number the API itself accepts (at most MAX_INT_DIGITS integer digits), so
    it can always be read back, spent and exported."""
    if abs(balance) >= CREDIT_LIMIT:
        raise InvalidArgument(
            [
                FieldViolation(
                    path, f"would bring the credit balance to {balance:f}, beyond {MAX_INT_DIGITS} integer digits"
                )
            ]
        )


def attempt_payment(inv: Invoice, balance: Decimal, now: datetime) -> PaymentAllocation:
    """Pays what the credit balance allows; returns the allocation drawn from it."""
    _refuse(inv, "attempt payment on", [Status.SUBMITTED, Status.PARTIALLY_PAID])
    assert inv.amount_due is not None
    if balance <= 0:
        raise FailedPrecondition(
            f"customer {inv.customer_id} has no {inv.currency} credit balance",
            subject=f"customers/{inv.customer_id}",
            violation_type="NO_CREDIT",
        )
    amount = min(rules_of(inv).round(balance) if rules_of(inv).fits(balance) else balance, inv.amount_due)
    alloc = PaymentAllocation(
        amount=amount,
        currency=inv.currency,
        source=AllocationSource.CREDIT_BALANCE,
        payment={"note": "credit balance"},
    )
    record_payment(inv, alloc, now)
    return alloc


SETTABLE_PAYMENT_STATUSES = frozenset(
    {PaymentStatus.INITIATED, PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.FAILED}
)


def set_payment_status(
    inv: Invoice, status: PaymentStatus, amount: Decimal | None, now: datetime
) -> PaymentAllocation | None:
    """FlexPrice payment status: SUCCEEDED records a payment; the others label the collection."""
    if status is PaymentStatus.SUCCEEDED:
        if amount is not None and not rules_of(inv).fits(amount):
            raise InvalidArgument(
                [_violation("amount", f"has more decimals than {inv.currency} allows; got {amount:f}")]
            )
        if inv.status is Status.PAID:
            inv.payment_status = status
            return None
        assert inv.amount_due is not None
        alloc = PaymentAllocation(amount=amount if amount is not None else inv.amount_due, currency=inv.currency)
        record_payment(inv, alloc, now)
        inv.payment_status = status
        return alloc
    if status not in SETTABLE_PAYMENT_STATUSES:
        raise InvalidArgument(
            [
                _violation(
                    "payment_status",
                    f"{status.value} cannot be set: overpayment is refused and refunds are not recorded here",
                )
            ]
        )
    if amount is not None:
        raise InvalidArgument([_violation("amount", "is only allowed with SUCCEEDED")])
    _refuse(inv, f"set payment status {status.value} on", [Status.SUBMITTED, Status.PARTIALLY_PAID])
    inv.payment_status = status
    return None


def void(inv: Invoice, now: datetime) -> Decimal:
    """SUBMITTED or PARTIALLY_PAID -> VOID. Returns what was paid, owed back as customer credit."""
    if inv.status is Status.DRAFT:
        raise FailedPrecondition(f"invoice {inv.id} is a DRAFT: cancel it instead", subject=f"invoices/{inv.id}")
    _refuse(inv, "void", [Status.SUBMITTED, Status.PARTIALLY_PAID])
    _end(inv, VoidReason.VOIDED, now)
    return inv.amount_paid


def cancel(inv: Invoice, now: datetime) -> None:
    _refuse(inv, "cancel", [Status.DRAFT])
    _end(inv, VoidReason.CANCELED, now)


def reverse(inv: Invoice, now: datetime, comment: str, reason_code: str) -> CreditMemo:
    _refuse(inv, "reverse", [Status.SUBMITTED])
    if inv.allocations:
        raise FailedPrecondition(f"invoice {inv.id} has payments applied: it cannot be reversed")
    assert inv.total_amount is not None
    if inv.total_amount < 0:
        raise FailedPrecondition(f"invoice {inv.id} has a negative total: it cannot be reversed")
    memo = _issue_memo(
        inv, CreditMemoReason.REVERSAL, inv.payable_amount, comment, reason_code or "Invoice reversal", now
    )
    _end(inv, VoidReason.REVERSED, now)
    return memo


def write_off(inv: Invoice, now: datetime, comment: str, reason_code: str) -> CreditMemo:
    _refuse(inv, "write off", [Status.SUBMITTED, Status.PARTIALLY_PAID])
    assert inv.amount_due is not None
    memo = _issue_memo(inv, CreditMemoReason.WRITE_OFF, inv.amount_due, comment, reason_code or "Write-off", now)
    _end(inv, VoidReason.WRITTEN_OFF, now)
    return memo


def _issue_memo(
    inv: Invoice, reason: CreditMemoReason, amount: Decimal, comment: str, reason_code: str, now: datetime
) -> CreditMemo:
    memo = CreditMemo(
        reason=reason,
        total_amount=amount,
        currency=inv.currency,
        invoice_id=inv.id,
        comment=comment,
        reason_code=reason_code,
        create_time=now,
    )
    inv.credit_memos.append(memo)
    return memo


def _end(inv: Invoice, reason: VoidReason, now: datetime) -> None:
    inv.status = Status.VOID
    inv.void_reason = reason
    inv.amount_due = rules_of(inv).round(ZERO)
    inv.void_time = now


def check_deletable(inv: Invoice) -> None:
    if inv.status is Status.DRAFT or (inv.status is Status.VOID and inv.void_reason is VoidReason.CANCELED):
        return
    raise FailedPrecondition(
        f"cannot delete invoice {inv.id}: only drafts and canceled invoices can be deleted; it is {inv.status.value}",
        subject=f"invoices/{inv.id}",
    )


def _line_key(line: LineItem) -> tuple[object, ...]:
    return (line.description, line.quantity, line.unit_amount, line.sub_total, line.total_amount,
            len(line.taxation_items))  # fmt: skip


def _unchanged(inv: Invoice, patch: Invoice, p: str) -> bool:
    """Whether applying path `p` of `patch` would leave `inv` as it is (e.g. a read-modify-write)."""
    if p == "line_items":
        return [_line_key(x) for x in inv.lines] == [_line_key(x) for x in patch.lines]
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
    # Totals the caller did not send are derived again rather than checked against stale values.
    if inv.lines:
        for line in inv.lines if "line_items" not in paths else ():
            if "discount_percentage" in paths and inherited is not None and line.discount_percentage == inherited:
                # The line's percentage was the invoice's (pricing copies it): it follows the new one.
                line.discount_percentage = line.discount_amount = None
            line.sub_total = line.tax_amount = line.total_amount = None
            if line.discount_percentage is not None:
                line.discount_amount = None
        for name in ("sub_total", "total_tax_amount", "total_discount", "total_amount"):
            if name not in paths:
                setattr(inv, name, None)
    elif "sub_total" not in paths and {"total_amount", "total_tax_amount"} & paths:
        inv.sub_total = None
    if inv.additional_tax_percentage is not None and "additional_tax_amount" not in paths:
        inv.additional_tax_amount = None  # derived from the percentage again
    inv.amount_due = patch.amount_due if "amount_due" in paths else None
    _reprice_draft(inv, v, path)


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
    _refuse(inv, "recalculate", [Status.DRAFT])
    if inv.lines:
        for line in inv.lines:
            line.sub_total = line.tax_amount = line.total_amount = None
            if line.discount_percentage is not None:
                line.discount_amount = None
        inv.sub_total = inv.total_tax_amount = inv.total_discount = inv.total_amount = None
    if inv.additional_tax_percentage is not None:
        inv.additional_tax_amount = None
    inv.amount_due = None
    _reprice_draft(inv, Violations(), "invoice")


def add_taxation_items(inv: Invoice, items: list[TaxationItem], v: Violations) -> None:
    _refuse(inv, "add taxation items to", [Status.DRAFT])
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


def invariant_breaches(inv: Invoice) -> list[str]:
    """PRODUCT section 5 invariants; an empty list means the invoice is sound."""
    out: list[str] = []
    due, total = inv.amount_due, inv.total_amount
    if due is None or total is None:
        return ["amount_due and total_amount must be set"]
    if inv.status is Status.VOID:
        if due != 0:
            out.append(f"void invoice has amount_due {due}")
        return out
    payable = inv.payable_amount
    if due != payable - inv.amount_paid - inv.amount_credited:
        out.append(f"amount_due {due} != payable {payable} - paid {inv.amount_paid} - credited {inv.amount_credited}")
    if not 0 <= due <= payable:
        out.append(f"amount_due {due} outside [0, {payable}]")
    r = rules_of(inv)
    out += [f"{path} {value} is not at the {inv.currency} exponent" for path, value in amounts(inv)
            if value is not None and value != r.round(value)]  # fmt: skip
    if inv.status in FINALIZED and inv.status is not derive_status(inv):
        out.append(f"status {inv.status.value} disagrees with amounts (due {due}, total {total})")
    if inv.status is Status.DRAFT and inv.allocations:
        out.append("draft with payments")
    return out


def check_invariants(inv: Invoice) -> None:
    """Raises InvariantBreach when `inv` is unsound; every write calls it on the invoice it is about to store."""
    breaches = invariant_breaches(inv)
    if breaches:
        raise InvariantBreach(inv.id, breaches)
