"""Money in: payments (in the invoice's currency or converted), credit balance spent, FlexPrice payment status.
Pure.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from service.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument, Violations
from service.domain.lifecycle.status import refuse, settle
from service.domain.models import AllocationSource, Invoice, PaymentAllocation, PaymentStatus, Status
from service.domain.money import Rules
from service.domain.totals import client_amount, rules_of
from service.domain.values import MAX_INT_DIGITS


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


def record_payment(inv: Invoice, alloc: PaymentAllocation, now: datetime, path: str = "payment_allocation") -> None:
    refuse(inv, "record a payment on", [Status.SUBMITTED, Status.PARTIALLY_PAID])
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
    settle(inv, now)


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
    refuse(inv, "attempt payment on", [Status.SUBMITTED, Status.PARTIALLY_PAID])
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
                [FieldViolation("amount", f"has more decimals than {inv.currency} allows; got {amount:f}")]
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
                FieldViolation(
                    "payment_status",
                    f"{status.value} cannot be set: overpayment is refused and refunds are not recorded here",
                )
            ]
        )
    if amount is not None:
        raise InvalidArgument([FieldViolation("amount", "is only allowed with SUCCEEDED")])
    refuse(inv, f"set payment status {status.value} on", [Status.SUBMITTED, Status.PARTIALLY_PAID])
    inv.payment_status = status
    return None
