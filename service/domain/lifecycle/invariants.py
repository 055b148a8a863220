"""The invoice invariants (PRODUCT section 5), checked on every invoice a write is about to store. Pure."""

from __future__ import annotations

from service.domain.errors import InvariantBreach
from service.domain.lifecycle.status import derive_status
from service.domain.models import FINALIZED, AllocationSource, Invoice, Status
from service.domain.money import quantum
from service.domain.totals import amounts


def invariant_breaches(inv: Invoice) -> list[str]:
    """PRODUCT section 5 invariants; an empty list means the invoice is sound."""
    out: list[str] = []
    due, total = inv.amount_due, inv.total_amount
    if due is None or total is None:
        return ["amount_due and total_amount must be set"]
    payable = inv.payable_amount
    for a in inv.allocations:
        # Imported history (FlexPrice OVERPAID): a payment applies at most its amount, the rest went to credit.
        imported = a.source is AllocationSource.IMPORTED and a.currency == inv.currency
        if imported and not 0 < a.applied_amount <= a.amount:
            out.append(f"imported allocation applies {a.applied_amount} of {a.amount}")
    if inv.status is Status.VOID:
        if due != 0:
            out.append(f"void invoice has amount_due {due}")
        if inv.amount_paid + inv.amount_credited > payable:
            out.append(f"void invoice has paid {inv.amount_paid} + credited {inv.amount_credited} > payable {payable}")
        return out
    if due != payable - inv.amount_paid - inv.amount_credited:
        out.append(f"amount_due {due} != payable {payable} - paid {inv.amount_paid} - credited {inv.amount_credited}")
    if not 0 <= due <= payable:
        out.append(f"amount_due {due} outside [0, {payable}]")
    # On the currency's grid: quantizing changes nothing (whatever the rounding mode, which only decides
    # where a value off the grid goes). The same grid as money.round_amount, without its layers.
    grid = quantum(inv.currency)
    for path, value in amounts(inv):
        if value is not None and value != value.quantize(grid):
            out.append(f"{path} {value} is not at the {inv.currency} exponent")
    if inv.status in FINALIZED and inv.status is not derive_status(inv):
        out.append(f"status {inv.status.value} disagrees with amounts (due {due}, total {total})")
    if not 0 <= inv.amount_refunded <= inv.amount_paid:
        out.append(f"amount_refunded {inv.amount_refunded} outside [0, paid {inv.amount_paid}]")
    if inv.status is Status.DRAFT and inv.allocations:
        out.append("draft with payments")
    return out


def check_invariants(inv: Invoice) -> None:
    """Raises InvariantBreach when `inv` is unsound; every write calls it on the invoice it is about to store."""
    breaches = invariant_breaches(inv)
    if breaches:
        raise InvariantBreach(inv.id, breaches)
