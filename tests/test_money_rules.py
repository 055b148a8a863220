"""Table-driven tests of the money rule set (issue 13, service/domain/money.py and totals.py).

Every case names the published rule it follows. Sources:
- STRIPE: Stripe docs, "Supported currencies" (zero-decimal JPY/KRW/ISK..., three-decimal BHD/JOD/KWD/OMR/TND:
  amounts in the currency's smallest unit) and "Tax rates: rounding" (tax computed and rounded per line item).
- ZUORA: Zuora Knowledge Center, "Customize currencies: rounding mode" (Half Up by default; Half Even, Up,
  Down; amounts rounded to the currency's decimal places, unit prices are not), "Write off invoices",
  "Reverse invoices", "Foreign currency conversion" (converted amount = amount x rate, rounded).
- EN16931: EN 16931-1 business rules: BR-DEC-* (amounts at most 2 decimals), BR-CO-17 (VAT category tax amount
  = category taxable amount x rate, rounded to two decimals), BR-CO-15, BT-114 rounding amount, BT-115.
- LAGO: Lago docs, "Invoicing: rounding" (each fee rounded to the currency precision before taxes; tax per
  rate on the invoice).
- KILLBILL: Kill Bill docs, "Currency and rounding" (KillBillMoney: ISO 4217 scale, RoundingMode.HALF_UP).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from service.domain import lifecycle
from service.domain.errors import FailedPrecondition, InvalidArgument, Violations
from service.domain.models import Invoice, LineItem, PaymentAllocation, Status, TaxationItem, TaxRateType
from service.domain.money import Rounding, TaxMode, exponent, fmt, spread
from service.domain.totals import amounts, tax_breakdown

SOURCES = ("STRIPE", "ZUORA", "EN16931", "LAGO", "KILLBILL")
NOW = datetime(2026, 1, 2, tzinfo=UTC)
D = Decimal

# A line: (quantity, unit_amount, line discount %, [tax rates %]); a tax given as ("FLAT", amount) is a flat fee.
Line = tuple[str, str, str | None, list[Any]]


@dataclass
class Case:
    name: str
    source: str
    currency: str
    lines: list[Line]
    expect: dict[str, str] = field(default_factory=dict)
    invoice: dict[str, Any] = field(default_factory=dict)  # extra Invoice attributes (strings become Decimal)
    rounding: Rounding | None = None
    tax_mode: TaxMode | None = None
    payments: list[tuple[str, str, str | None]] = field(default_factory=list)  # (amount, currency, rate)
    action: str = ""  # write_off / reverse
    status: Status = Status.SUBMITTED
    error: str = ""  # the field an INVALID_ARGUMENT names
    refused: bool = False  # the last payment is refused as overpayment


CASES = [
    # -- the example, every exponent -------------------------------------------------------
    Case("usd_3x1999_at_21", "STRIPE", "USD", [("3", "19.99", None, ["21"])],
         {"sub_total": "59.97", "total_tax_amount": "12.59", "total_amount": "72.56", "amount_due": "72.56"}),
    Case("usd_pay_7256_is_paid", "STRIPE", "USD", [("3", "19.99", None, ["21"])],
         {"amount_due": "0.00", "amount_paid": "72.56"}, payments=[("72.56", "USD", None)], status=Status.PAID),
    Case("usd_two_payments_reach_paid", "ZUORA", "USD", [("3", "19.99", None, ["21"])],
         {"amount_due": "0.00"}, payments=[("50", "USD", None), ("22.56", "USD", None)], status=Status.PAID),
    Case("usd_overpay_one_cent_refused", "ZUORA", "USD", [("3", "19.99", None, ["21"])],
         {"amount_due": "72.56"}, payments=[("72.57", "USD", None)], refused=True),
    Case("jpy_tax_110_not_110_4", "STRIPE", "JPY", [("1", "552", None, ["20"])],
         {"total_tax_amount": "110", "total_amount": "662"}),
    Case("jpy_half_up", "ZUORA", "JPY", [("1", "105", None, ["10"])], {"total_tax_amount": "11"}),
    Case("jpy_half_even", "ZUORA", "JPY", [("1", "105", None, ["10"])], {"total_tax_amount": "10"},
         rounding=Rounding.HALF_EVEN),
    Case("krw_price_keeps_decimals_gross_rounded", "ZUORA", "KRW", [("3", "333.33", None, ["10"])],
         {"sub_total": "1000", "total_tax_amount": "100", "total_amount": "1100"}),
    Case("isk_each_step_rounded", "STRIPE", "ISK", [("7", "12.5", None, ["24"])],
         {"sub_total": "88", "total_tax_amount": "21", "total_amount": "109"}),
    Case("jpy_discount_and_tax", "STRIPE", "JPY", [("3", "333", "10", ["10"])],
         {"total_discount": "100", "sub_total": "899", "total_tax_amount": "90", "total_amount": "989"}),
    Case("kwd_three_decimals", "STRIPE", "KWD", [("1", "0.9", None, ["12.1"])],
         {"total_tax_amount": "0.109", "total_amount": "1.009"}),
    Case("bhd_gross_rounded", "STRIPE", "BHD", [("2", "1.2345", None, ["10"])],
         {"sub_total": "2.469", "total_tax_amount": "0.247", "total_amount": "2.716"}),
    Case("tnd_gross_rounds_up_to_1", "STRIPE", "TND", [("3", "0.3333", None, ["19"])],
         {"sub_total": "1.000", "total_tax_amount": "0.190", "total_amount": "1.190"}),
    Case("jod_half_up", "KILLBILL", "JOD", [("1", "10.0005", None, ["16"])],
         {"sub_total": "10.001", "total_tax_amount": "1.600", "total_amount": "11.601"}),
    Case("jod_half_even", "ZUORA", "JOD", [("1", "10.0005", None, [])], {"sub_total": "10.000"},
         rounding=Rounding.HALF_EVEN),
    Case("omr_three_decimals", "STRIPE", "OMR", [("1", "5.5555", None, ["5"])],
         {"sub_total": "5.556", "total_tax_amount": "0.278", "total_amount": "5.834"}),
    Case("clf_four_decimals", "KILLBILL", "CLF", [("1", "1.23456", None, ["19"])],
         {"sub_total": "1.2346", "total_tax_amount": "0.2346", "total_amount": "1.4692"}),
    Case("uyw_four_decimals", "KILLBILL", "UYW", [("2", "0.00005", None, ["22"])],
         {"sub_total": "0.0001", "total_tax_amount": "0.0000", "total_amount": "0.0001"}),
    Case("xau_no_minor_unit_not_rounded", "KILLBILL", "XAU", [("1", "1.123456789", None, ["10"])],
         {"sub_total": "1.123456789", "total_tax_amount": "0.112345679", "total_amount": "1.235802468"}),
    Case("xxx_unknown_currency_kept", "STRIPE", "XXX", [("3", "0.333333333", None, [])],
         {"total_amount": "0.999999999"}),
    Case("eur_two_decimals", "EN16931", "EUR", [("1", "0.125", None, [])], {"total_amount": "0.13"}),
    # -- tax rounding modes ------------------------------------------------------------------------
    Case("line_mode_100_x_099", "STRIPE", "EUR", [("1", "0.99", None, ["21"])] * 100,
         {"sub_total": "99.00", "total_tax_amount": "21.00", "total_amount": "120.00"}),
    Case("document_mode_100_x_099", "EN16931", "EUR", [("1", "0.99", None, ["21"])] * 100,
         {"sub_total": "99.00", "total_tax_amount": "20.79", "total_amount": "119.79"},
         tax_mode=TaxMode.DOCUMENT_PER_RATE),
    Case("document_mode_client_total_accepted", "LAGO", "EUR", [("1", "0.99", None, ["21"])] * 100,
         {"total_tax_amount": "20.79"}, invoice={"total_tax_amount": "20.79", "total_amount": "119.79"},
         tax_mode=TaxMode.DOCUMENT_PER_RATE),
    Case("line_mode_refuses_document_total", "STRIPE", "EUR", [("1", "0.99", None, ["21"])] * 100, {},
         invoice={"total_tax_amount": "20.79"}, error="invoice.total_tax_amount"),
    Case("mixed_rates_line_mode", "ZUORA", "EUR",
         [("1", "10.01", None, ["19"]), ("1", "5.03", None, ["7"]), ("1", "20.07", None, ["19"])],
         {"total_tax_amount": "6.06", "total_amount": "41.17"}),
    Case("mixed_rates_document_mode_br_co_17", "EN16931", "EUR",
         [("1", "10.01", None, ["19"]), ("1", "5.03", None, ["7"]), ("1", "20.07", None, ["19"])],
         {"total_tax_amount": "6.07", "total_amount": "41.18", "line_items[0].tax_amount": "1.90",
          "line_items[2].tax_amount": "3.82"}, tax_mode=TaxMode.DOCUMENT_PER_RATE),
    Case("kwd_document_mode", "LAGO", "KWD", [("1", "0.333", None, ["5"])] * 3,
         {"total_tax_amount": "0.050", "total_amount": "1.049"}, tax_mode=TaxMode.DOCUMENT_PER_RATE),
    Case("flat_fee_tax", "ZUORA", "USD", [("1", "10", None, [("FLAT", "1.5")])],
         {"total_tax_amount": "1.50", "total_amount": "11.50"}),
    # -- discounts -----------------------------------------------------------------------------------
    Case("line_discount_rounded", "ZUORA", "USD", [("3", "19.99", "10", ["21"])],
         {"total_discount": "6.00", "sub_total": "53.97", "total_tax_amount": "11.33", "total_amount": "65.30"}),
    Case("invoice_discount_largest_remainder", "LAGO", "USD",
         [("1", "3.33", None, []), ("1", "3.33", None, []), ("1", "3.34", None, [])],
         {"total_discount": "1.00", "line_items[0].discount_amount": "0.33", "line_items[2].discount_amount": "0.34",
          "total_amount": "9.00"}, invoice={"discount_percentage": "10"}),
    Case("invoice_discount_ties_to_first", "LAGO", "USD", [("1", "0.10", None, [])] * 3,
         {"total_discount": "0.05", "line_items[0].discount_amount": "0.02", "line_items[1].discount_amount": "0.02",
          "line_items[2].discount_amount": "0.01"}, invoice={"discount_percentage": "15"}),
    Case("discount_amount_with_too_many_decimals", "EN16931", "USD", [("1", "10", None, [])], {},
         invoice={}, error="invoice.line_items[0].discount_amount"),
    # -- additional tax, client totals, invoices without lines ------------------------------------------
    Case("additional_tax_rounded", "ZUORA", "USD", [("1", "100", None, [])],
         {"additional_tax_amount": "8.88", "total_tax_amount": "8.88", "total_amount": "108.88"},
         invoice={"additional_tax_percentage": "8.875"}),
    Case("additional_tax_amount_3_decimals_refused", "EN16931", "USD", [("1", "100", None, [])], {},
         invoice={"additional_tax_amount": "8.875"}, error="invoice.additional_tax_amount"),
    Case("client_total_off_by_a_cent_refused", "EN16931", "USD", [("3", "19.99", None, ["21"])], {},
         invoice={"total_amount": "72.57"}, error="invoice.total_amount"),
    Case("client_total_unrounded_refused", "STRIPE", "USD", [("3", "19.99", None, ["21"])], {},
         invoice={"total_amount": "72.5637"}, error="invoice.total_amount"),
    Case("kwd_four_decimals_refused", "STRIPE", "KWD", [("1", "1", None, [])], {},
         invoice={"total_amount": "1.0001"}, error="invoice.total_amount"),
    Case("trailing_zeros_fit", "STRIPE", "JPY", [("1", "110", None, [])], {"total_amount": "110"},
         invoice={"total_amount": "110.00"}),
    Case("no_lines_must_add_up", "EN16931", "USD", [], {"total_amount": "121.00", "total_tax_amount": "21.00"},
         invoice={"sub_total": "100", "total_tax_amount": "21", "total_amount": "121"}),
    Case("no_lines_one_cent_off_refused", "EN16931", "USD", [], {},
         invoice={"sub_total": "100", "total_tax_amount": "21", "total_amount": "121.01"},
         error="invoice.total_amount"),
    # -- rounding modes --------------------------------------------------------------------------------
    Case("mode_up", "ZUORA", "USD", [("3", "19.99", None, ["21"])],
         {"total_tax_amount": "12.60", "total_amount": "72.57"}, rounding=Rounding.UP),
    Case("mode_down", "ZUORA", "USD", [("1", "0.999", None, ["21"])],
         {"sub_total": "0.99", "total_tax_amount": "0.20", "total_amount": "1.19"}, rounding=Rounding.DOWN),
    Case("half_up_away_from_zero_negative", "KILLBILL", "USD", [("1", "1", None, []), ("1", "-0.125", None, [])],
         {"line_items[1].sub_total": "-0.13", "total_amount": "0.87"}),
    Case("half_even_negative", "ZUORA", "USD", [("1", "1", None, []), ("1", "-0.125", None, [])],
         {"line_items[1].sub_total": "-0.12", "total_amount": "0.88"}, rounding=Rounding.HALF_EVEN),
    Case("half_even_odd_rounds_up", "ZUORA", "USD", [("1", "0.135", None, [])], {"total_amount": "0.14"},
         rounding=Rounding.HALF_EVEN),
    Case("lago_usage_fee", "LAGO", "USD", [("1234", "0.0015", None, [])], {"total_amount": "1.85"}),
    Case("killbill_half_up", "KILLBILL", "USD", [("1", "33.335", None, [])], {"total_amount": "33.34"},
         rounding=Rounding.HALF_UP),
    Case("killbill_jpy_half_up", "KILLBILL", "JPY", [("1", "999.5", None, [])], {"total_amount": "1000"}),
    # -- FX payments -------------------------------------------------------------------------------------
    Case("fx_partial", "ZUORA", "EUR", [("1", "100", None, [])],
         {"amount_paid": "46.17", "amount_due": "53.83"}, payments=[("50", "USD", "0.923456")],
         status=Status.PARTIALLY_PAID),
    Case("fx_pays_exactly", "ZUORA", "EUR", [("1", "92.35", None, [])], {"amount_due": "0.00"},
         payments=[("100", "USD", "0.9235")], status=Status.PAID),
    Case("fx_into_jpy", "STRIPE", "JPY", [("1", "5000", None, [])], {"amount_paid": "1512", "amount_due": "3488"},
         payments=[("10", "USD", "151.237")], status=Status.PARTIALLY_PAID),
    Case("fx_half_even_tie", "ZUORA", "USD", [("1", "100", None, [])], {"amount_paid": "11.02"},
         payments=[("10.50", "EUR", "1.05")], rounding=Rounding.HALF_EVEN, status=Status.PARTIALLY_PAID),
    Case("fx_half_up_tie", "KILLBILL", "USD", [("1", "100", None, [])], {"amount_paid": "11.03"},
         payments=[("10.50", "EUR", "1.05")], status=Status.PARTIALLY_PAID),
    Case("fx_payment_amount_beyond_its_currency", "STRIPE", "EUR", [("1", "100", None, [])], {},
         payments=[("1.5", "JPY", "0.006")], error="payment_allocation.allocation.total_amount"),
    # -- cash rounding (BT-114) ----------------------------------------------------------------------------
    Case("chf_cash_rounding_down", "EN16931", "CHF", [("1", "10.02", None, [])],
         {"total_amount": "10.02", "cash_rounding_amount": "-0.02", "amount_due": "10.00"},
         invoice={"cash_rounding_increment": "0.05"}),
    Case("chf_cash_rounding_up_then_paid", "EN16931", "CHF", [("1", "10.03", None, [])],
         {"cash_rounding_amount": "0.02", "amount_due": "0.00"}, invoice={"cash_rounding_increment": "0.05"},
         payments=[("10.05", "CHF", None)], status=Status.PAID),
    Case("sek_whole_krona", "EN16931", "SEK", [("1", "99.50", None, [])],
         {"cash_rounding_amount": "0.50", "amount_due": "100.00"}, invoice={"cash_rounding_increment": "1"}),
    Case("cash_increment_beyond_currency_refused", "EN16931", "CHF", [("1", "10", None, [])], {},
         invoice={"cash_rounding_increment": "0.005"}, error="invoice.cash_rounding_increment"),
    # -- write-offs and reversals ------------------------------------------------------------------------------
    Case("write_off_balance", "ZUORA", "USD", [("3", "19.99", None, ["21"])],
         {"amount_credited": "22.56", "amount_due": "0.00"}, payments=[("50", "USD", None)], action="write_off",
         status=Status.VOID),
    Case("write_off_jpy", "ZUORA", "JPY", [("1", "552", None, ["20"])],
         {"amount_credited": "562", "amount_due": "0"}, payments=[("100", "JPY", None)], action="write_off",
         status=Status.VOID),
    Case("reverse_with_cash_rounding", "ZUORA", "CHF", [("1", "10.02", None, [])],
         {"amount_credited": "10.00"}, invoice={"cash_rounding_increment": "0.05"}, action="reverse",
         status=Status.VOID),
]  # fmt: skip


def _invoice(case: Case) -> Invoice:
    lines = []
    for qty, price, disc, taxes in case.lines:
        items = [
            TaxationItem(tax_rate=D(t[1]), tax_rate_type=TaxRateType.FLAT_FEE, name="Fee")
            if isinstance(t, tuple)
            else TaxationItem(tax_rate=D(t), name="VAT")
            for t in taxes
        ]
        lines.append(LineItem(quantity=D(qty), unit_amount=D(price), taxation_items=items,
                              discount_percentage=D(disc) if disc else None))  # fmt: skip
    if case.name == "discount_amount_with_too_many_decimals":
        lines[0].discount_amount = D("0.001")
    inv = Invoice(currency=case.currency, customer_id="c", lines=lines, status=Status.SUBMITTED,
                  rounding_mode=case.rounding, tax_mode=case.tax_mode)  # fmt: skip
    for name, value in case.invoice.items():
        setattr(inv, name, D(value))
    return inv


def _value(inv: Invoice, path: str) -> Decimal | None:
    return dict(amounts(inv))[path]


def _run(case: Case) -> Invoice:
    inv = _invoice(case)
    lifecycle.prepare_new(inv, Violations(), NOW)
    for amount, currency, rate in case.payments:
        alloc = PaymentAllocation(amount=D(amount), currency=currency, currency_rate=D(rate) if rate else None)
        lifecycle.record_payment(inv, alloc, NOW)
    if case.action == "write_off":
        lifecycle.write_off(inv, NOW, "", "")
    elif case.action == "reverse":
        lifecycle.reverse(inv, NOW, "", "")
    return inv


def test_at_least_40_cases_each_with_a_source() -> None:
    assert len(CASES) >= 40
    assert all(c.source in SOURCES for c in CASES)
    assert len({c.name for c in CASES}) == len(CASES)
    exponents = {exponent(c.currency) for c in CASES}
    assert exponents == {0, 2, 3, 4, None}
    assert {c.tax_mode for c in CASES} >= {None, TaxMode.DOCUMENT_PER_RATE}
    assert {c.rounding for c in CASES} >= {None, *Rounding}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.source}-{c.name}" for c in CASES])
def test_money_rule(case: Case) -> None:
    if case.error:
        with pytest.raises(InvalidArgument) as err:
            _run(case)
        assert case.error in [v.field for v in err.value.violations], err.value.violations
        return
    if case.refused:
        with pytest.raises(FailedPrecondition):
            _run(case)
        case = Case(**{**case.__dict__, "payments": [], "refused": False})
    inv = _run(case)
    for path, want in case.expect.items():
        assert fmt(_value(inv, path), inv.currency) == want, path
    assert inv.status is case.status
    assert lifecycle.invariant_breaches(inv) == []
    # The breakdown adds up exactly, and every amount sits at the currency's exponent.
    assert sum((b.tax_amount for b in tax_breakdown(inv)), D(0)) == inv.total_tax_amount
    for path, value in amounts(inv):
        assert value is None or fmt(value, inv.currency) == format(value, "f"), (path, value)


@pytest.mark.parametrize(
    ("total", "weights", "currency", "parts"),
    [
        ("1.00", ["3.33", "3.33", "3.34"], "USD", ["0.33", "0.33", "0.34"]),
        ("100", ["1", "1", "1"], "JPY", ["34", "33", "33"]),
        ("-0.05", ["1", "1"], "USD", ["-0.02", "-0.03"]),
        ("0.10", ["0", "0"], "USD", ["0.10", "0.00"]),
        ("0.001", ["1", "2"], "KWD", ["0.000", "0.001"]),
    ],
)
def test_spread_by_largest_remainder(total: str, weights: list[str], currency: str, parts: list[str]) -> None:
    got = spread(D(total), [D(w) for w in weights], currency)
    assert [format(x, "f") for x in got] == parts
    assert sum(got, D(0)) == D(total)


def test_breakdown_per_rate() -> None:
    case = next(c for c in CASES if c.name == "mixed_rates_document_mode_br_co_17")
    inv = _run(case)
    got = {(b.category, b.rate): (str(b.taxable_amount), str(b.tax_amount)) for b in tax_breakdown(inv)}
    assert got == {("VAT", D("19")): ("30.08", "5.72"), ("VAT", D("7")): ("5.03", "0.35")}
