"""Status rules every transition shares: which status an action needs, the status amounts imply, and settling a
finalized invoice after money moved. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from service.domain.errors import Aborted, FailedPrecondition
from service.domain.models import Invoice, PaymentStatus, Status
from service.domain.totals import expected_amount_due
from service.domain.values import shown


def refuse(inv: Invoice, action: str, allowed: Iterable[Status]) -> None:
    """Raises FailedPrecondition unless the invoice is in one of the `allowed` statuses."""
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


def settle(inv: Invoice, now: datetime) -> None:
    """Recomputes amount_due and the status of a finalized invoice after money moved."""
    inv.amount_due = expected_amount_due(inv)
    inv.status = derive_status(inv)
    if inv.status is Status.PAID:
        inv.paid_on_date = inv.paid_on_date or now
        if inv.total_amount:
            inv.payment_status = PaymentStatus.SUCCEEDED
    if inv.amount_refunded:
        inv.payment_status = refund_status(inv)


def refund_status(inv: Invoice) -> PaymentStatus:
    """What refunds make of the payment status: REFUNDED when all that was paid went back."""
    return PaymentStatus.REFUNDED if inv.amount_refunded == inv.amount_paid else PaymentStatus.PARTIALLY_REFUNDED


def finalize_amounts(inv: Invoice, now: datetime) -> None:
    """Stamps the finalization (and the payments it carries) and settles the amounts."""
    inv.finalize_time = now
    for alloc in inv.allocations:
        alloc.create_time = alloc.create_time or now
    settle(inv, now)
