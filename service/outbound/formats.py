"""How documents write amounts and dates for people: in the company profile's locale (CLDR data through
Babel: separators, date forms), else as the API writes them. Digits are never changed: an amount keeps
exactly its currency's minor unit, a price its own precision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal

from service.domain.money import display, round_amount
from service.domain.values import fmt_datetime


@cache
def _locale(tag: str) -> Locale | None:
    """The CLDR locale of a BCP 47 tag; None for none, or one CLDR does not know (the API's forms then)."""
    if not tag:
        return None
    try:
        return Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return None


def _digits(value: Decimal) -> str:
    """`value` in the locale's separators, with exactly its own digits."""
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return "#,##0" + ("." + "0" * places if places else "")


@dataclass(frozen=True, slots=True)
class Formats:
    locale: Locale | None = None

    @classmethod
    def of(cls, tag: str) -> Formats:
        return cls(_locale(tag))

    def amount(self, value: Decimal | None, currency: str) -> str:
        """An amount at exactly its currency's minor unit."""
        if value is None or self.locale is None:
            return display(value, currency)
        rounded = round_amount(value, currency)
        return format_decimal(rounded, format=_digits(rounded), locale=self.locale, decimal_quantization=False)

    def money(self, value: Decimal | None, currency: str) -> str:
        """An amount and its currency code ("" for none)."""
        return f"{self.amount(value, currency)} {currency}".strip() if value is not None else ""

    def price(self, value: Decimal) -> str:
        """A unit price or quantity: its own precision, grouped."""
        if self.locale is None:
            return f"{value:,f}"
        return format_decimal(value, format=_digits(value), locale=self.locale, decimal_quantization=False)

    def quantity(self, value: Decimal) -> str:
        """A quantity as written, never in scientific notation (1E+3 is 1000)."""
        return format(value, "f") if self.locale is None else self.price(value)

    def date(self, value: datetime | date | None) -> str:
        """A calendar date ("-" for none)."""
        if value is None:
            return "-"
        if self.locale is None:
            return value.isoformat() if not isinstance(value, datetime) else fmt_datetime(value)[:10] or "-"
        return format_date(value.date() if isinstance(value, datetime) else value, "medium", locale=self.locale)
