"""Invoices in every lifecycle state, built through the domain rules themselves (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from service.domain import lifecycle
from service.domain.errors import DomainError, FailedPrecondition, InvalidArgument, Violations
from service.domain.models import Invoice, LineItem, PaymentAllocation, Status

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
D = Decimal


def line(quantity: str = "1", unit_amount: str = "100", **attrs: Any) -> LineItem:
    return LineItem(quantity=D(quantity), unit_amount=D(unit_amount), **attrs)


def new(currency: str = "USD", lines: list[LineItem] | None = None, **attrs: Any) -> Invoice:
    """An unpriced invoice as a client sends it: one line of 100 unless told otherwise."""
    inv = Invoice(id="inv-1", company_id="co", customer_id="cust", currency=currency)
    inv.lines = [line(id="l1")] if lines is None else lines
    for name, value in attrs.items():
        setattr(inv, name, value)
    return inv


def draft(**attrs: Any) -> Invoice:
    inv = new(**attrs)
    lifecycle.prepare_new(inv, Violations(), NOW)
    return inv


def submitted(**attrs: Any) -> Invoice:
    inv = draft(**attrs)
    lifecycle.finalize(inv, "INV-00001", NOW)
    return inv


def pay(inv: Invoice, amount: str, currency: str = "", rate: str | None = None) -> PaymentAllocation:
    alloc = PaymentAllocation(amount=D(amount), currency=currency, currency_rate=D(rate) if rate else None)
    lifecycle.record_payment(inv, alloc, NOW)
    return alloc


def partially_paid(**attrs: Any) -> Invoice:
    inv = submitted(**attrs)
    pay(inv, "40")
    return inv


def paid(**attrs: Any) -> Invoice:
    inv = submitted(**attrs)
    pay(inv, "100")
    return inv


def voided(**attrs: Any) -> Invoice:
    inv = submitted(**attrs)
    lifecycle.void(inv, NOW)
    return inv


def canceled(**attrs: Any) -> Invoice:
    inv = draft(**attrs)
    lifecycle.cancel(inv, NOW)
    return inv


# Every state an invoice can be in, by name (VOID twice: the reason decides what may still happen).
STATES: dict[str, Callable[..., Invoice]] = {
    "DRAFT": draft,
    "SUBMITTED": submitted,
    "PARTIALLY_PAID": partially_paid,
    "PAID": paid,
    "VOID_VOIDED": voided,
    "VOID_CANCELED": canceled,
}


def state_of(inv: Invoice) -> str:
    if inv.status is Status.VOID:
        assert inv.void_reason is not None
        return f"VOID_{inv.void_reason.value}"
    return inv.status.value


def raises_on(error: type[DomainError], field: str, call: Callable[[], object]) -> DomainError:
    """Runs `call`, which must raise `error`; for InvalidArgument, one violation must name `field`."""
    with pytest.raises(error) as info:
        call()
    if isinstance(info.value, InvalidArgument):
        assert field in [v.field for v in info.value.violations], info.value.violations
    elif isinstance(info.value, FailedPrecondition) and field:
        assert info.value.violation_type == field, info.value.violation_type
    return info.value


def value_at(obj: object, path: str) -> object:
    """`lines[0].sub_total` of an object: attribute names with optional list indexes."""
    for part in path.split("."):
        name, _, index = part.partition("[")
        obj = getattr(obj, name)
        if index:
            obj = obj[int(index.rstrip("]"))]  # type: ignore[index]
    return obj


def check(result: object, expect: dict[str, object]) -> None:
    """Each path of `expect` has its value; a string expected of a Decimal is compared digit for digit."""
    for path, want in expect.items():
        got = value_at(result, path)
        if isinstance(got, Decimal) and isinstance(want, str):
            assert format(got, "f") == want, (path, got)
        else:
            assert got == want, (path, got)
