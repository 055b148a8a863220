"""Money exact to the currency: the one rounding rule set (issue 13). Pure functions, no I/O.

- Minor units come from the ISO 4217 list one as the `iso4217` package ships it (JPY 0, USD 2, KWD 3,
  CLF 4). CLDR (babel) is not used: its digits differ from ISO for IQD, AFN, HUF... and it gives XAU 2.
  Currencies without a minor unit ("N.A.": XAU, XDR, XXX...) keep up to 9 decimals and are never rounded.
- Every amount is rounded to the exponent when it is computed; quantities, prices and rates never are.
- Rounding: HALF_UP (default, away from zero), HALF_EVEN, UP (away from zero), DOWN (toward zero).
- Tax: LINE rounds each tax item; DOCUMENT_PER_RATE rounds once per (rate, category) and spreads the
  result over the items by largest remainder, so lines and the breakdown both add up exactly.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache

from iso4217 import Currency

from service.domain.values import MAX_SCALE, WITHDRAWN_CURRENCIES, ZERO

HUNDRED = Decimal(100)


class Rounding(StrEnum):
    HALF_UP = "HALF_UP"
    HALF_EVEN = "HALF_EVEN"
    UP = "UP"
    DOWN = "DOWN"


class TaxMode(StrEnum):
    LINE = "LINE"
    DOCUMENT_PER_RATE = "DOCUMENT_PER_RATE"


_DECIMAL_MODE = {
    Rounding.HALF_UP: decimal.ROUND_HALF_UP,
    Rounding.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    Rounding.UP: decimal.ROUND_UP,
    Rounding.DOWN: decimal.ROUND_DOWN,
}


@cache
def exponent(currency: str) -> int | None:
    """ISO 4217 minor units; None for a currency without one (never rounded, up to 9 decimals)."""
    if currency in WITHDRAWN_CURRENCIES:
        return WITHDRAWN_CURRENCIES[currency]
    try:
        return Currency(currency).exponent
    except ValueError:
        return None


@cache  # every amount of every answer is rounded to it: made once per currency (Decimals are immutable)
def quantum(currency: str) -> Decimal:
    exp = exponent(currency)
    return Decimal(1).scaleb(-(MAX_SCALE if exp is None else exp))


def round_amount(value: Decimal, currency: str, mode: Rounding = Rounding.HALF_UP) -> Decimal:
    """`value` at exactly the currency's exponent (a currency without minor unit: at most 9 decimals)."""
    exp = exponent(currency)
    if exp is None:
        tail = value.as_tuple().exponent
        if isinstance(tail, int) and tail >= -MAX_SCALE:
            return value
        return value.quantize(quantum(currency), rounding=_DECIMAL_MODE[mode])
    result = value.quantize(quantum(currency), rounding=_DECIMAL_MODE[mode])
    return result if result != 0 else abs(result)  # no "-0.00"


def fits(value: Decimal, currency: str) -> bool:
    """Whether a client amount has no more (non-zero) decimals than the currency allows."""
    return value == value.quantize(quantum(currency), rounding=decimal.ROUND_DOWN)


def fmt(value: Decimal | None, currency: str) -> str:
    """An amount as the API, the PDF and the exports show it: exactly the currency's exponent."""
    if value is None:
        return ""
    return format(round_amount(value, currency), "f")


def to_increment(value: Decimal, increment: Decimal, mode: Rounding = Rounding.HALF_UP) -> Decimal:
    """`value` rounded to a multiple of `increment` (cash rounding, e.g. CHF 0.05)."""
    steps = (value / increment).quantize(Decimal(1), rounding=_DECIMAL_MODE[mode])
    return (steps * increment).quantize(increment)


def spread(total: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """`total` split in proportion to `weights` by largest remainder: the parts are at the currency's
    exponent and add up to `total` exactly. Ties go to the earlier part. Zero weights all: the first."""
    if not weights:
        return []
    q = quantum(currency)
    units = int((total / q).to_integral_value())
    whole = sum(weights, ZERO)
    if whole == 0:
        raw = [Decimal(units) if i == 0 else ZERO for i in range(len(weights))]
    else:
        raw = [Decimal(units) * w / whole for w in weights]
    floors = [int(r.to_integral_value(rounding=decimal.ROUND_FLOOR)) for r in raw]
    left = units - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [(Decimal(n) * q).quantize(q) for n in floors]


@dataclass(frozen=True, slots=True)
class MoneyDefaults:
    """A company's defaults, given to invoices created without their own modes."""

    rounding: Rounding = Rounding.HALF_UP
    tax_mode: TaxMode = TaxMode.LINE


def display(value: Decimal | None, currency: str) -> str:
    """An amount for people (PDF, e-mail): the API's digits with thousands separators."""
    return "" if value is None else format(round_amount(value, currency), ",f")


@dataclass(frozen=True, slots=True)
class Rules:
    """The rounding of one invoice: its currency and the modes stored with it."""

    currency: str
    rounding: Rounding = Rounding.HALF_UP
    tax_mode: TaxMode = TaxMode.LINE

    def round(self, value: Decimal) -> Decimal:
        return round_amount(value, self.currency, self.rounding)

    def percent(self, base: Decimal, rate: Decimal) -> Decimal:
        """round(base x rate / 100): a discount, a tax item, an additional tax."""
        return self.round(base * rate / HUNDRED)

    def fits(self, value: Decimal) -> bool:
        return fits(value, self.currency)

    def spread(self, total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
        return spread(total, weights, self.currency)

    def convert(self, amount: Decimal, rate: Decimal) -> Decimal:
        """An allocation in another currency, in this one: round(amount x rate)."""
        return self.round(amount * rate)

    def fmt(self, value: Decimal | None) -> str:
        return fmt(value, self.currency)

    @property
    def exponent(self) -> int | None:
        return exponent(self.currency)
