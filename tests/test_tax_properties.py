"""Property test of the tax detail (issue 16) over random invoices: tax categories, line charges, invoice-level
allowances and charges (amounts and percentages), every exponent, both rounding and both tax modes.

For each invoice: every amount sits at the currency's exponent; sub_total = line sub totals - allowances +
charges; the taxes add up to total_tax_amount and so does the breakdown; in DOCUMENT_PER_RATE each breakdown
row's tax is round(taxable x rate / 100) (EN 16931 BR-CO-17); the API and the PDF show the same digits; paying
amount_due reaches PAID with the invariants holding."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from service.domain import lifecycle
from service.domain.errors import Violations
from service.domain.models import (
    AllowanceCharge,
    Invoice,
    LineItem,
    PaymentAllocation,
    Status,
    TaxationItem,
    TaxCategory,
)
from service.domain.money import Rounding, TaxMode, display, exponent, fmt, round_amount
from service.domain.totals import amounts, rules_of, tax_breakdown
from service.outbound import pdf
from service.transport.convert import invoice_out

D = Decimal
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CURRENCIES = ["USD", "EUR", "JPY", "KWD", "CLF", "XAU"]
STANDARD = [D(5), D(7), D(19), D(20), D("8.875")]


def scaled(max_units: int, max_scale: int) -> st.SearchStrategy[Decimal]:
    return st.builds(lambda n, s: D(n).scaleb(-s), st.integers(0, max_units), st.integers(0, max_scale))


def percent(max_hundredths: int) -> st.SearchStrategy[Decimal]:
    return st.builds(lambda n: D(n).scaleb(-2), st.integers(0, max_hundredths))


def _item(kind: str, rate: Decimal) -> TaxationItem:
    if kind == "S":
        return TaxationItem(name="VAT", tax_category=TaxCategory.S, tax_rate=rate)
    if kind == "Z":
        return TaxationItem(tax_category=TaxCategory.Z, tax_rate=D(0))
    return TaxationItem(tax_category=TaxCategory.E, tax_rate=D(0), exemption_reason_code="VATEX-EU-132")


@st.composite
def invoices(draw: st.DrawFn) -> Invoice:
    currency = draw(st.sampled_from(CURRENCIES))
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["S", "S", "Z", "E"]))
        lines.append(
            LineItem(
                quantity=draw(scaled(1_000, 2)),
                unit_amount=draw(scaled(10**6, 4)),
                charge_percentage=draw(st.none() | percent(2_000)),
                taxation_items=[_item(kind, draw(st.sampled_from(STANDARD)))],
            )
        )
    acs = []
    for _ in range(draw(st.integers(0, 3))):
        charge = draw(st.booleans())
        category = draw(st.sampled_from([TaxCategory.S, TaxCategory.Z, None]))
        rate = draw(st.sampled_from(STANDARD)) if category is TaxCategory.S else D(0) if category else None
        if charge:
            amount, percentage = D(draw(st.integers(0, 100_000))).scaleb(-(exponent(currency) or 0)), None
        else:  # at most 30% in all, so the total stays positive
            amount, percentage = None, draw(percent(1_000))
        acs.append(AllowanceCharge(charge, amount, None, percentage, "r", "", category, rate))
    return Invoice(
        customer_id="cust",
        invoice_number="INV-1",
        currency=currency,
        lines=lines,
        allowance_charges=acs,
        rounding_mode=draw(st.sampled_from(Rounding)),
        tax_mode=draw(st.sampled_from(TaxMode)),
        status=Status.SUBMITTED,
    )


def _at_exponent(value: Decimal, currency: str) -> bool:
    exp = exponent(currency)
    return round_amount(value, currency) == value and (exp is None or len(format(value, "f").partition(".")[2]) == exp)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inv=invoices())
def test_random_tax_detail_adds_up(inv: Invoice) -> None:
    v = Violations()
    lifecycle.prepare_new(inv, v, NOW)
    assert v.items == []
    cur, zero = inv.currency, D(0)
    assert inv.total_amount is not None and inv.total_tax_amount is not None and inv.amount_due is not None
    for path, value in amounts(inv):
        assert value is None or _at_exponent(value, cur), (path, value)

    lines_net = sum((x.sub_total or zero for x in inv.lines), zero)
    assert inv.sub_total == lines_net - inv.allowance_total_amount + inv.charge_total_amount
    line_tax = sum((x.tax_amount or zero for x in inv.lines), zero)
    ac_tax = sum((a.tax_amount or zero for a in inv.allowance_charges), zero)
    assert inv.total_tax_amount == line_tax + ac_tax
    assert inv.total_amount == inv.sub_total + inv.total_tax_amount
    rows = tax_breakdown(inv)
    assert sum((b.tax_amount for b in rows), zero) == inv.total_tax_amount
    assert sum((b.taxable_amount for b in rows), zero) == inv.sub_total
    r = rules_of(inv)
    for b in rows:
        if b.tax_category is not TaxCategory.S:
            assert b.tax_amount == 0, b
        elif inv.tax_mode is TaxMode.DOCUMENT_PER_RATE and b.rate is not None:
            assert b.tax_amount == r.percent(b.taxable_amount, b.rate), b  # BR-CO-17

    api = invoice_out(inv)
    assert [x.tax_amount for x in api.tax_breakdown] == [fmt(b.tax_amount, cur) for b in rows]
    assert api.allowance_total_amount == fmt(inv.allowance_total_amount, cur)
    reader = PdfReader(io.BytesIO(pdf.render(inv, "Seller")))
    text = "".join("".join(page.extract_text() for page in reader.pages).split())
    assert f"{display(inv.total_amount, cur)}{cur}" in text

    if inv.amount_due > 0:
        lifecycle.record_payment(inv, PaymentAllocation(amount=inv.amount_due, currency=cur), NOW)
    assert inv.status is Status.PAID and inv.amount_due == 0
    assert lifecycle.invariant_breaches(inv) == []
