"""Status transitions: finalize, void, cancel, reverse, write off, and which invoices may be deleted. Pure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from service.domain.errors import FailedPrecondition
from service.domain.lifecycle.status import finalize_amounts, refuse
from service.domain.models import CreditMemo, CreditMemoReason, Invoice, Status, VoidReason
from service.domain.totals import rules_of
from service.domain.values import ZERO


def check_can_finalize(inv: Invoice) -> None:
    refuse(inv, "finalize", [Status.DRAFT])


def finalize(inv: Invoice, number: str, now: datetime, issue_date: datetime | None = None) -> None:
    """DRAFT -> SUBMITTED (or PAID for a zero total); the caller supplies the number."""
    check_can_finalize(inv)
    inv.invoice_number = inv.invoice_number or number
    if issue_date is not None:
        inv.issue_date = issue_date
    inv.issue_date = inv.issue_date or now
    finalize_amounts(inv, now)


def void(inv: Invoice, now: datetime) -> Decimal:
    """SUBMITTED or PARTIALLY_PAID -> VOID. Returns what was paid and not refunded, owed back as customer credit."""
    if inv.status is Status.DRAFT:
        raise FailedPrecondition(f"invoice {inv.id} is a DRAFT: cancel it instead", subject=f"invoices/{inv.id}")
    refuse(inv, "void", [Status.SUBMITTED, Status.PARTIALLY_PAID])
    _end(inv, VoidReason.VOIDED, now)
    return inv.amount_paid - inv.amount_refunded


def cancel(inv: Invoice, now: datetime) -> None:
    refuse(inv, "cancel", [Status.DRAFT])
    _end(inv, VoidReason.CANCELED, now)


def reverse(inv: Invoice, now: datetime, comment: str, reason_code: str) -> CreditMemo:
    refuse(inv, "reverse", [Status.SUBMITTED])
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
    refuse(inv, "write off", [Status.SUBMITTED, Status.PARTIALLY_PAID])
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
