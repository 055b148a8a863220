"""How documents write amounts, prices, quantities and dates: in the profile's locale, else as the API does.
Pure (no I/O): the formatter the invoice and credit note PDFs use."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from service.outbound.formats import Formats

D = Decimal


@pytest.mark.parametrize(
    ("locale", "value", "currency", "expect"),
    [
        ("", D("1234567.5"), "EUR", "1,234,567.50 EUR"),
        ("de-DE", D("1234567.5"), "EUR", "1.234.567,50 EUR"),
        ("fr-FR", D("1234567.5"), "EUR", "1\u202f234\u202f567,50 EUR"),
        ("de-DE", D("1234"), "JPY", "1.234 JPY"),
        ("de-DE", D("1.2345"), "KWD", "1,235 KWD"),
        ("en-US", D("-0.5"), "USD", "-0.50 USD"),
        ("xx-YY", D("1234.5"), "EUR", "1,234.50 EUR"),  # a tag CLDR does not know: the API's form
    ],
)
def test_money_keeps_the_currency_digits_in_the_locale_separators(
    locale: str, value: Decimal, currency: str, expect: str
) -> None:
    assert Formats.of(locale).money(value, currency) == expect


@pytest.mark.parametrize(
    ("locale", "value", "expect"),
    [("", D("1E+3"), "1000"), ("", D("2.500"), "2.500"), ("de-DE", D("1234.125"), "1.234,125")],
)
def test_quantities_never_use_scientific_notation(locale: str, value: Decimal, expect: str) -> None:
    assert Formats.of(locale).quantity(value) == expect


@pytest.mark.parametrize(
    ("locale", "value", "expect"),
    [
        ("", datetime(2030, 3, 1, 23, 0, tzinfo=UTC), "2030-03-01"),
        ("de-DE", datetime(2030, 3, 1, tzinfo=UTC), "01.03.2030"),
        ("ja-JP", date(2030, 3, 1), "2030/03/01"),
        ("de-DE", None, "-"),
    ],
)
def test_dates_in_the_locale(locale: str, value: datetime | date | None, expect: str) -> None:
    assert Formats.of(locale).date(value) == expect
