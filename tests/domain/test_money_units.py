"""The money functions of service/domain/money.py that tests/test_money_rules.py does not reach directly.

That file tables the published rounding rules end to end (exponents 0/2/3/4/none, HALF_UP/HALF_EVEN/UP/DOWN,
LINE vs DOCUMENT_PER_RATE, spread, FX, cash rounding); these rows pin the helpers' edge cases. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.domain.money import Rounding, Rules, display, exponent, fits, fmt, quantum, round_amount, to_increment

D = Decimal


@pytest.mark.parametrize(
    ("currency", "expect"),
    [("USD", 2), ("JPY", 0), ("KWD", 3), ("CLF", 4), ("XAU", None), ("XXX", None), ("SLL", 2), ("ZWL", 2),
     ("NOPE", None)],
    ids=["usd", "jpy", "kwd", "clf", "gold_has_none", "no_currency_has_none", "withdrawn_sll", "withdrawn_zwl",
         "unknown_has_none"],
)  # fmt: skip
def test_exponent(currency: str, expect: int | None) -> None:
    assert exponent(currency) == expect


@pytest.mark.parametrize(
    ("value", "currency", "mode", "expect"),
    [
        ("-0.001", "USD", Rounding.HALF_UP, "0.00"),
        ("-0.4", "JPY", Rounding.HALF_EVEN, "0"),
        ("1.1234567891", "XAU", Rounding.HALF_UP, "1.123456789"),
        ("1.1234567899", "XAU", Rounding.DOWN, "1.123456789"),
        ("1.5", "XAU", Rounding.HALF_UP, "1.5"),
        ("2", "USD", Rounding.HALF_UP, "2.00"),
    ],
    ids=["no_negative_zero", "no_negative_zero_jpy", "no_minor_unit_beyond_nine_rounded",
         "no_minor_unit_rounds_in_the_mode", "no_minor_unit_kept_as_is", "padded_to_the_exponent"],
)  # fmt: skip
def test_round_amount(value: str, currency: str, mode: Rounding, expect: str) -> None:
    assert format(round_amount(D(value), currency, mode), "f") == expect


@pytest.mark.parametrize(
    ("value", "currency", "expect"),
    [("1.50", "USD", True), ("1.500", "USD", True), ("1.501", "USD", False), ("100.0", "JPY", True),
     ("0.1", "JPY", False), ("1.123456789", "XAU", True), ("1.1234567891", "XAU", False)],
    ids=["at_exponent", "trailing_zeros", "beyond", "jpy_trailing_zero", "jpy_decimal", "xau_nine", "xau_ten"],
)  # fmt: skip
def test_fits(value: str, currency: str, expect: bool) -> None:
    assert fits(D(value), currency) is expect


@pytest.mark.parametrize(
    ("value", "increment", "mode", "expect"),
    [("10.02", "0.05", Rounding.HALF_UP, "10.00"), ("10.025", "0.05", Rounding.HALF_UP, "10.05"),
     ("10.025", "0.05", Rounding.HALF_EVEN, "10.00"), ("10.01", "0.05", Rounding.UP, "10.05"),
     ("10.04", "0.05", Rounding.DOWN, "10.00"), ("99.5", "1", Rounding.HALF_UP, "100")],
    ids=["half_up_down", "half_up_tie_up", "half_even_tie_to_even_step", "up", "down", "whole_units"],
)  # fmt: skip
def test_to_increment(value: str, increment: str, mode: Rounding, expect: str) -> None:
    assert format(to_increment(D(value), D(increment), mode), "f") == expect


def test_formatting() -> None:
    assert (fmt(D("1"), "USD"), fmt(D("1234.5"), "KWD"), fmt(None, "USD")) == ("1.00", "1234.500", "")
    assert (display(D("1234567.5"), "USD"), display(D("1000"), "JPY"), display(None, "USD")) == (
        "1,234,567.50", "1,000", "")  # fmt: skip
    assert (quantum("USD"), quantum("JPY"), quantum("XAU")) == (D("0.01"), D("1"), D("0.000000001"))


@pytest.mark.parametrize(
    ("currency", "mode", "amount", "rate", "expect"),
    [("EUR", Rounding.HALF_UP, "10.50", "1.05", "11.03"), ("JPY", Rounding.DOWN, "10", "151.99", "1519")],
    ids=["rounded_in_the_invoices_mode", "to_the_invoices_exponent"],
)
def test_convert(currency: str, mode: Rounding, amount: str, rate: str, expect: str) -> None:
    assert format(Rules(currency, mode).convert(D(amount), D(rate)), "f") == expect


@pytest.mark.parametrize("currency", ["ANG", "BGN", "CUC", "XAD"])
def test_withdrawn_and_new_codes_round_at_their_minor_unit(currency: str) -> None:
    assert exponent(currency) == 2


def test_every_accepted_currency_but_the_units_of_account_has_a_minor_unit() -> None:
    """An accepted code without a minor unit is never rounded: only gold, silver, funds codes and XXX may."""
    from service.domain.values import CURRENCIES

    without = sorted(c for c in CURRENCIES if exponent(c) is None)
    assert without and all(c.startswith("X") for c in without), without
