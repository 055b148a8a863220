"""The totals rules of service/domain/totals.py as tables. Pure: no I/O.

Rounding per currency exponent, rounding modes, LINE vs DOCUMENT_PER_RATE tax, invoice discounts spread by
largest remainder, FX payments and cash rounding amounts are in tests/test_money_rules.py; here: what a client
may send beside the computed totals (checked exactly), flat fees, invoices without lines, limits, mode
inference, the tax breakdown and client amounts.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from service.domain.errors import InvalidArgument, Violations
from service.domain.models import Invoice, LineItem, TaxationItem, TaxRateType
from service.domain.money import Rounding, Rules, TaxMode
from service.domain.totals import (
    ADDITIONAL,
    cash_rounding,
    client_amount,
    expected_amount_due,
    infer_modes,
    price_invoice,
    tax_breakdown,
)
from tests.domain.builders import D, check, line, new, raises_on


def _vat(rate: str = "10", **attrs: Any) -> TaxationItem:
    return TaxationItem(tax_rate=D(rate), name="VAT", **attrs)


def _flat(amount: str) -> TaxationItem:
    return TaxationItem(tax_rate=D(amount), tax_rate_type=TaxRateType.FLAT_FEE, name="Fee")


def _priced(lines: list[LineItem] | None = None, **attrs: Any) -> Callable[[], Invoice]:
    def run() -> Invoice:
        inv = new(lines=lines, **attrs)
        price_invoice(inv, Violations())
        return inv

    return run


def _refused(lines: list[LineItem] | None = None, **attrs: Any) -> Callable[[], Invoice]:
    def run() -> Invoice:
        inv = new(lines=lines, **attrs)
        v = Violations()
        price_invoice(inv, v)
        v.raise_if_any()
        return inv

    return run


PRICED: list[tuple[str, Callable[[], Invoice], dict[str, object]]] = [
    # -- line sub total and discounts ---------------------------------------------------------------------
    ("line_sub_total_is_gross_minus_discount", _priced([line("3", "10", discount_amount=D("5"))]),
     {"lines[0].sub_total": "25.00", "lines[0].discount_amount": "5.00", "total_discount": "5.00"}),
    ("line_sub_total_sent_and_right_accepted", _priced([line("3", "10", sub_total=D("30"))]),
     {"lines[0].sub_total": "30.00"}),
    ("line_discount_percentage_computes_the_amount", _priced([line("1", "80", discount_percentage=D("12.5"))]),
     {"lines[0].discount_amount": "10.00", "sub_total": "70.00"}),
    ("line_discount_amount_matching_percentage_accepted",
     _priced([line("1", "80", discount_percentage=D("12.5"), discount_amount=D("10"))]),
     {"lines[0].discount_amount": "10.00"}),
    ("line_own_discount_wins_over_the_invoices",
     _priced([line("1", "100", discount_percentage=D("5")), line("1", "100")], discount_percentage=D("10")),
     {"lines[0].discount_amount": "5.00", "lines[1].discount_amount": "10.00", "total_discount": "15.00"}),
    ("line_discount_amount_sent_keeps_it_from_the_invoice_percentage",
     _priced([line("1", "100", discount_amount=D("1"))], discount_percentage=D("10")),
     {"lines[0].discount_amount": "1.00", "lines[0].discount_percentage": None, "total_discount": "1.00"}),
    ("invoice_discount_is_copied_onto_inheriting_lines", _priced(discount_percentage=D("10")),
     {"lines[0].discount_percentage": D("10"), "lines[0].discount_amount": "10.00"}),
    ("no_discount_is_zero", _priced(), {"lines[0].discount_amount": "0.00", "total_discount": "0.00"}),
    # -- taxes --------------------------------------------------------------------------------------------------
    ("tax_item_percentage_of_the_line_sub_total",
     _priced([line("1", "100", discount_amount=D("20"), taxation_items=[_vat("10")])]),
     {"lines[0].taxation_items[0].tax_amount": "8.00", "lines[0].tax_amount": "8.00",
      "lines[0].total_amount": "88.00"}),
    ("tax_items_add_up_on_the_line", _priced([line(taxation_items=[_vat("10"), _vat("2.5")])]),
     {"lines[0].tax_amount": "12.50", "total_tax_amount": "12.50"}),
    ("tax_item_flat_fee_is_its_rate_as_amount", _priced([line(taxation_items=[_flat("1.5"), _vat("10")])]),
     {"lines[0].taxation_items[0].tax_amount": "1.50", "lines[0].tax_amount": "11.50"}),
    ("tax_item_amount_sent_wins_over_rate", _priced([line(taxation_items=[_vat("10", tax_amount=D("9.99"))])]),
     {"lines[0].tax_amount": "9.99"}),
    ("tax_amount_sent_without_items_kept", _priced([line(tax_amount=D("7"))]),
     {"lines[0].tax_amount": "7.00", "lines[0].total_amount": "107.00", "total_tax_amount": "7.00"}),
    ("tax_amount_sent_matching_items_accepted", _priced([line(tax_amount=D("10"), taxation_items=[_vat("10")])]),
     {"lines[0].tax_amount": "10.00"}),
    ("line_total_sent_and_right_accepted", _priced([line(total_amount=D("110"), taxation_items=[_vat("10")])]),
     {"lines[0].total_amount": "110.00"}),
    ("tax_rate_zero_is_zero_tax", _priced([line(taxation_items=[_vat("0")])]), {"total_tax_amount": "0.00"}),
    # -- additional tax -------------------------------------------------------------------------------------------
    ("additional_tax_from_percentage_of_sub_total", _priced([line("1", "200")], additional_tax_percentage=D("2.5")),
     {"additional_tax_amount": "5.00", "total_tax_amount": "5.00", "total_amount": "205.00"}),
    ("additional_tax_amount_sent_alone_added", _priced(additional_tax_amount=D("3")),
     {"additional_tax_amount": "3.00", "total_tax_amount": "3.00", "total_amount": "103.00"}),
    ("additional_tax_amount_sent_matching_percentage",
     _priced(additional_tax_amount=D("5"), additional_tax_percentage=D("5")), {"total_amount": "105.00"}),
    ("additional_tax_defaults_to_zero", _priced(), {"additional_tax_amount": "0.00"}),
    ("additional_tax_on_top_of_line_tax", _priced([line(taxation_items=[_vat("10")])], additional_tax_amount=D("1")),
     {"total_tax_amount": "11.00", "total_amount": "111.00"}),
    # -- invoice totals ---------------------------------------------------------------------------------------------
    ("invoice_totals_are_sums_of_lines",
     _priced([line("2", "10", taxation_items=[_vat("10")]), line("1", "5.55", discount_amount=D("0.55"))]),
     {"sub_total": "25.00", "total_discount": "0.55", "total_tax_amount": "2.00", "total_amount": "27.00"}),
    ("invoice_totals_sent_and_right_accepted",
     _priced(sub_total=D("100"), total_discount=D("0"), total_tax_amount=D("0"), total_amount=D("100.00")),
     {"total_amount": "100.00"}),
    ("negative_line_lowers_the_total", _priced([line("1", "100"), line("1", "-30")]), {"total_amount": "70.00"}),
    ("total_at_twenty_integer_digits_accepted", _priced([line("1", "9" * 20)]), {"total_amount": "9" * 20 + ".00"}),
    ("cash_rounding_without_increment_is_zero", _priced([line("1", "10.02")]), {"cash_rounding_amount": "0.00"}),
    # -- invoices without lines (ledger-synced): the client's totals, which must add up --------------------------
    ("no_lines_sub_total_derived_from_total_and_tax", _priced([], total_amount=D("121"), total_tax_amount=D("21")),
     {"sub_total": "100.00", "total_tax_amount": "21.00", "total_discount": "0.00"}),
    ("no_lines_total_alone_is_all_sub_total", _priced([], total_amount=D("50")),
     {"sub_total": "50.00", "total_tax_amount": "0.00", "additional_tax_amount": "0.00"}),
    ("no_lines_additional_tax_from_percentage", _priced([], total_amount=D("105"), total_tax_amount=D("5"),
                                                        additional_tax_percentage=D("5")),
     {"additional_tax_amount": "5.00", "total_tax_amount": "5.00"}),
    ("no_lines_total_discount_sent_kept", _priced([], total_amount=D("90"), total_discount=D("10")),
     {"total_discount": "10.00"}),
]  # fmt: skip


@pytest.mark.parametrize(("build", "expect"), [pytest.param(b, e, id=n) for n, b, e in PRICED])
def test_priced(build: Callable[[], Invoice], expect: dict[str, object]) -> None:
    check(build(), expect)


REFUSED: list[tuple[str, Callable[[], Invoice], str]] = [
    ("line_sub_total_sent_wrong", _refused([line("3", "10", sub_total=D("29.99"))]), "invoice.line_items[0].sub_total"),
    ("line_discount_amount_disagrees_with_percentage",
     _refused([line("1", "80", discount_percentage=D("12.5"), discount_amount=D("9.99"))]),
     "invoice.line_items[0].discount_amount"),
    ("line_tax_amount_disagrees_with_its_items", _refused([line(tax_amount=D("9"), taxation_items=[_vat("10")])]),
     "invoice.line_items[0].tax_amount"),
    ("line_total_sent_wrong", _refused([line(total_amount=D("100.01"))]), "invoice.line_items[0].total_amount"),
    ("tax_item_without_rate_or_amount", _refused([line(taxation_items=[TaxationItem(name="VAT")])]),
     "invoice.line_items[0].taxation_items[0].tax_amount"),
    ("tax_item_amount_too_many_decimals", _refused([line(taxation_items=[_vat("1", tax_amount=D("0.001"))])]),
     "invoice.line_items[0].taxation_items[0].tax_amount"),
    ("tax_item_exempt_amount_too_many_decimals",
     _refused([line(taxation_items=[_vat("1", exempt_amount=D("0.001"))])]),
     "invoice.line_items[0].taxation_items[0].exempt_amount"),
    ("flat_fee_rate_is_an_amount_at_the_exponent", _refused([line(taxation_items=[_flat("0.015")])]),
     "invoice.line_items[0].taxation_items[0].tax_rate"),
    ("line_tax_amount_too_many_decimals", _refused([line(tax_amount=D("0.001"))]), "invoice.line_items[0].tax_amount"),
    ("invoice_sub_total_sent_wrong", _refused(sub_total=D("99")), "invoice.sub_total"),
    ("invoice_total_discount_sent_wrong", _refused(total_discount=D("1")), "invoice.total_discount"),
    ("invoice_total_tax_sent_wrong", _refused(total_tax_amount=D("1")), "invoice.total_tax_amount"),
    ("invoice_total_sent_wrong", _refused(total_amount=D("99.99")), "invoice.total_amount"),
    ("additional_tax_amount_disagrees_with_percentage",
     _refused(additional_tax_amount=D("4.99"), additional_tax_percentage=D("5")), "invoice.additional_tax_amount"),
    ("negative_total_refused", _refused([line("1", "-1")]), "invoice.total_amount"),
    ("total_beyond_twenty_integer_digits", _refused([line("11", "9" * 19)]), "invoice.line_items[0].total_amount"),
    ("cash_rounding_increment_not_positive", _refused(cash_rounding_increment=D("0")),
     "invoice.cash_rounding_increment"),
    ("cash_rounding_increment_without_minor_unit", _refused(currency="XAU", cash_rounding_increment=D("0.05")),
     "invoice.cash_rounding_increment"),
    ("no_lines_needs_total_amount", _refused([]), "invoice.total_amount"),
    ("no_lines_totals_must_add_up", _refused([], sub_total=D("100"), total_tax_amount=D("21"),
                                             total_amount=D("120")), "invoice.total_amount"),
    ("no_lines_additional_tax_disagrees_with_percentage",
     _refused([], total_amount=D("105"), total_tax_amount=D("5"), additional_tax_percentage=D("5"),
              additional_tax_amount=D("4")), "invoice.additional_tax_amount"),
    ("no_lines_negative_total_refused", _refused([], total_amount=D("-1")), "invoice.total_amount"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "field"), [pytest.param(b, f, id=n) for n, b, f in REFUSED])
def test_refused(build: Callable[[], Invoice], field: str) -> None:
    raises_on(InvalidArgument, field, build)


def test_every_disagreement_is_reported_at_once() -> None:
    inv = new(lines=[line(sub_total=D("1"), total_amount=D("2"))], sub_total=D("3"), total_amount=D("4"))
    v = Violations()
    price_invoice(inv, v)
    assert [x.field for x in v.items] == [
        "invoice.line_items[0].sub_total",
        "invoice.line_items[0].total_amount",
        "invoice.sub_total",
        "invoice.total_amount",
    ]


# -- mode inference for imported invoices ---------------------------------------------------------------------------


def _imported(**attrs: Any) -> Invoice:
    return new(lines=[line("1", "0.99", taxation_items=[_vat("21")]) for _ in range(100)], **attrs)


@pytest.mark.parametrize(
    ("inv", "rounding", "tax_mode"),
    [
        pytest.param(_imported(), None, None, id="adds_up_in_the_default_modes_left_undeclared"),
        pytest.param(_imported(total_tax_amount=D("20.79"), total_amount=D("119.79")), Rounding.HALF_UP,
                     TaxMode.DOCUMENT_PER_RATE, id="adds_up_per_rate_recorded"),
        pytest.param(new(lines=[line("1", "0.125")], total_amount=D("0.12")), Rounding.HALF_EVEN, TaxMode.LINE,
                     id="adds_up_half_even_recorded"),
        pytest.param(_imported(tax_mode=TaxMode.LINE, total_tax_amount=D("20.79")), None, TaxMode.LINE,
                     id="declared_modes_never_changed"),
        pytest.param(new(total_amount=D("1")), None, None, id="adds_up_in_no_mode_left_for_the_checks"),
    ],
)  # fmt: skip
def test_infer_modes(inv: Invoice, rounding: Rounding | None, tax_mode: TaxMode | None) -> None:
    infer_modes(inv)
    assert (inv.rounding_mode, inv.tax_mode) == (rounding, tax_mode)


# -- tax breakdown, cash rounding, client amounts, amount due --------------------------------------------------


def _breakdown(inv: Invoice) -> dict[tuple[str, Decimal | None], tuple[str, str]]:
    price_invoice(inv, Violations())
    rows = tax_breakdown(inv)
    assert sum((r.tax_amount for r in rows), D(0)) == inv.total_tax_amount  # always adds up
    return {(r.category, r.rate): (format(r.taxable_amount, "f"), format(r.tax_amount, "f")) for r in rows}


@pytest.mark.parametrize(
    ("inv", "expect"),
    [
        pytest.param(new(lines=[line(tax_amount=D("7"))]), {("", None): ("100.00", "7.00")},
                     id="line_tax_without_items_uncategorised"),
        pytest.param(new(lines=[line(taxation_items=[_vat("10", tax_code="S")]), line(taxation_items=[_flat("2")])]),
                     {("S", D("10")): ("100.00", "10.00"), ("Fee", None): ("100.00", "2.00")},
                     id="tax_code_is_the_category_flat_fee_has_no_rate"),
        pytest.param(new(additional_tax_percentage=D("5")),
                     {("", None): ("100.00", "0.00"), (ADDITIONAL, D("5")): ("100.00", "5.00")},
                     id="additional_tax_is_its_own_category"),
        pytest.param(new(lines=[], total_amount=D("121"), total_tax_amount=D("21")), {("", None): ("100.00", "21.00")},
                     id="no_lines_one_uncategorised_row"),
        pytest.param(new(lines=[], total_amount=D("110"), total_tax_amount=D("10"), additional_tax_amount=D("4")),
                     {("", None): ("100.00", "6.00"), (ADDITIONAL, None): ("100.00", "4.00")},
                     id="no_lines_additional_tax_split_out"),
    ],
)  # fmt: skip
def test_tax_breakdown(inv: Invoice, expect: dict[tuple[str, Decimal | None], tuple[str, str]]) -> None:
    assert _breakdown(inv) == expect


@pytest.mark.parametrize(
    ("total", "increment", "currency", "expect"),
    [
        ("10.02", None, "CHF", "0.00"),
        ("10.02", "0.05", "CHF", "-0.02"),
        ("10.03", "0.05", "CHF", "0.02"),
        ("10.00", "0.05", "CHF", "0.00"),
        ("10.02", "0", "CHF", "0.00"),
        ("10.02", "0.005", "CHF", "0.00"),
        ("1.5", "0.05", "XAU", "0"),
    ],
    ids=["no_increment", "rounds_down", "rounds_up", "already_a_multiple", "zero_increment_ignored",
         "increment_beyond_exponent_ignored", "no_minor_unit_never_cash_rounded"],
)  # fmt: skip
def test_cash_rounding(total: str, increment: str | None, currency: str, expect: str) -> None:
    got = cash_rounding(D(total), D(increment) if increment else None, Rules(currency))
    assert format(got, "f") == expect


@pytest.mark.parametrize(
    ("value", "currency", "expect", "violation"),
    [
        (None, "USD", None, False),
        ("1.5", "USD", "1.50", False),
        ("1.50000", "USD", "1.50", False),
        ("1.505", "USD", "1.505", True),
        ("100.0", "JPY", "100", False),
        ("100.5", "JPY", "100.5", True),
        ("1.123456789", "XAU", "1.123456789", False),
    ],
    ids=["absent_stays_absent", "set_to_the_exponent", "trailing_zeros_fit", "too_many_decimals_reported",
         "jpy_whole", "jpy_decimal_reported", "no_minor_unit_up_to_nine"],
)  # fmt: skip
def test_client_amount(value: str | None, currency: str, expect: str | None, violation: bool) -> None:
    v = Violations()
    got = client_amount(v, "x", D(value) if value else None, Rules(currency))
    assert (None if got is None else format(got, "f")) == expect
    assert [i.field for i in v.items] == (["x"] if violation else [])


def test_amount_due_is_payable_minus_payments_and_credits() -> None:
    inv = new(currency="CHF", lines=[line("1", "10.02")], cash_rounding_increment=D("0.05"))
    price_invoice(inv, Violations())
    assert format(expected_amount_due(inv), "f") == "10.00"
