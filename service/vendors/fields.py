"""One vendor field (a FieldMap row): its Kind, how its JSON value is read into a canonical value and how a
canonical value is written back in the vendor's form. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, StrEnum, auto
from typing import Any, Final

from service.domain.errors import Violations
from service.domain.values import (
    MAX_INT_DIGITS,
    MAX_SCALE,
    SHORT_TEXT,
    check_metadata,
    check_text,
    fmt_date,
    fmt_datetime,
    fmt_decimal,
    parse_currency,
    parse_date,
    parse_datetime,
    parse_decimal,
    shown,
    start_of_day,
)
from service.vendors.json_payload import join, json_type


class Kind(Enum):
    """How a vendor value is written and which canonical type it becomes."""

    NUMBER = auto()  # JSON number <-> Decimal: Codat and Zuora money, rates, quantities
    DECIMAL_STRING = auto()  # "12.50" <-> Decimal: FlexPrice money
    TEXT = auto()
    BOOL = auto()
    DATETIME = auto()  # ISO 8601 date-time <-> datetime (UTC)
    DATE = auto()  # YYYY-MM-DD <-> date
    DAY = auto()  # YYYY-MM-DD <-> datetime at 00:00 UTC (Zuora invoiceDate in issue_date)
    DAY_TIME = auto()  # ISO 8601 date-time <-> date, its UTC day (FlexPrice period_start in service_start_date)
    CURRENCY = auto()  # ISO 4217 code, any case on input
    ENUM = auto()  # vendor value <-> canonical StrEnum member, one to one
    STRING_MAP = auto()  # {"key": "value"} <-> dict[str, str]
    CONSTANT = auto()  # a value the canonical model implies (Zuora taxMode): checked on input, maybe written


_EXPECTED = {
    Kind.NUMBER: "a JSON number",
    Kind.DECIMAL_STRING: 'a decimal string such as "12.50"',
    Kind.TEXT: "a string",
    Kind.BOOL: "a boolean",
    Kind.DATETIME: "an ISO 8601 date-time string",
    Kind.DATE: "a YYYY-MM-DD string",
    Kind.DAY: "a YYYY-MM-DD string",
    Kind.DAY_TIME: "an ISO 8601 date-time string",
    Kind.CURRENCY: "an ISO 4217 currency code string",
    Kind.ENUM: "a string",
    Kind.STRING_MAP: "a JSON object of strings",
    Kind.CONSTANT: "a string",
}
# Kinds whose canonical value is stored as text inside the domain's proto-shaped dicts (refs, payment).
_TEXT_STORED = frozenset({Kind.NUMBER, Kind.DECIMAL_STRING, Kind.DATETIME})


@dataclass(frozen=True, slots=True)
class FieldMap:
    """One vendor field and the canonical attribute it is. Paths are dotted; in the canonical path a
    segment is an attribute of a dataclass or a key of a dict (dict values are kept as canonical text)."""

    vendor: str
    attr: str
    kind: Kind
    required: bool = False
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    positive: bool = False
    limit: int = SHORT_TEXT
    values: Mapping[str, StrEnum] | None = None  # ENUM: vendor value -> canonical member (one to one)
    default: Any = None  # canonical value when the vendor leaves the field out
    lower: bool = False  # CURRENCY: written lower-case
    const: str = ""  # CONSTANT: the only accepted value
    why: str = ""  # CONSTANT: why no other value can be represented
    emit: bool = True  # CONSTANT: written on export
    about: str = ""  # a hook's field (attr ""): what it is in canonical terms, for the model
    omit_zero: bool = False  # a zero amount is written as nothing (a field most invoices do not use)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


# -- vendor paths and canonical text -----------------------------------------------------------------


def vendor_get(src: dict[str, Any], path: str, v: Violations, base: str) -> Any:
    """The value at a dotted vendor path, or MISSING; a non-object on the way is a violation."""
    parts = path.split(".")
    cur: Any = src
    for i, part in enumerate(parts):
        if i:
            if cur is None:
                return MISSING
            if not isinstance(cur, dict):
                v.add(join(base, ".".join(parts[:i])), f"must be a JSON object; got {json_type(cur)}")
                return MISSING
        if part not in cur:
            return MISSING
        cur = cur[part]
    return cur


def vendor_set(out: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    cur = out
    for part in parents:
        cur = cur.setdefault(part, {})
    cur[last] = value


def blank(value: Any) -> bool:
    """Canonical "not given": nothing is written for it."""
    return value is None or value is False or (isinstance(value, str | dict | list) and not value)


def as_text(value: Any) -> Any:
    """The proto-JSON form the domain keeps in its dicts (as MessageToDict writes it)."""
    if isinstance(value, Decimal):
        return fmt_decimal(value)
    if isinstance(value, datetime):
        return fmt_datetime(value)
    if isinstance(value, date):
        return fmt_date(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


# -- values ---------------------------------------------------------------------------------------


def _number(v: Violations, path: str, value: Decimal, fm: FieldMap) -> Decimal | None:
    if not value.is_finite():
        v.add(path, f"must be a finite number; got {value}")
        return None
    # Magnitude first, from the exponent: writing 1e100000000 out in full would take seconds.
    if value != 0 and value.adjusted() >= MAX_INT_DIGITS:
        v.add(path, f"must have at most {MAX_INT_DIGITS} integer digits; got {shown(str(value))}")
        return None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_SCALE:
        written = shown(str(value))
        v.add(path, f"must have at most {MAX_SCALE} decimal places (a float written out is refused); got {written}")
        return None
    text = format(value, "f")  # now at most MAX_INT_DIGITS + MAX_SCALE digits
    return parse_decimal(v, path, text, minimum=fm.minimum, positive=fm.positive, maximum=fm.maximum)


def _parse(fm: FieldMap, v: Violations, path: str, raw: Any) -> Any:
    """A present, non-null vendor value to its canonical value; None (and a violation) when refused."""
    kind = fm.kind
    if kind is Kind.NUMBER:
        if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
            v.add(path, f"must be {_EXPECTED[kind]}; got {json_type(raw)}")
            return None
        return _number(v, path, Decimal(raw), fm)
    if kind is Kind.BOOL:
        if not isinstance(raw, bool):
            v.add(path, f"must be {_EXPECTED[kind]}; got {json_type(raw)}")
            return None
        return raw
    if kind is Kind.STRING_MAP:
        return _string_map(v, path, raw)
    if not isinstance(raw, str):
        v.add(path, f"must be {_EXPECTED[kind]}; got {json_type(raw)}")
        return None
    if kind is Kind.DECIMAL_STRING:
        return parse_decimal(v, path, raw, minimum=fm.minimum, positive=fm.positive, maximum=fm.maximum)
    if kind is Kind.TEXT:
        return check_text(v, path, raw, limit=fm.limit)
    if kind is Kind.DATETIME:
        return parse_datetime(v, path, raw)
    if kind in (Kind.DATE, Kind.DAY_TIME):
        return parse_date(v, path, raw)
    if kind is Kind.DAY:
        day = parse_date(v, path, raw)
        return None if day is None else start_of_day(day)
    if kind is Kind.CURRENCY:
        return parse_currency(v, path, raw, required=False)
    if kind is Kind.ENUM:
        assert fm.values is not None
        if raw not in fm.values:
            v.add(path, f"must be one of {', '.join(fm.values)}; got {shown(raw)}")
            return None
        return fm.values[raw]
    if raw != fm.const:  # CONSTANT
        v.add(path, f"must be {fm.const}{': ' + fm.why if fm.why else ''}; got {shown(raw)}")
    return None


def _string_map(v: Violations, path: str, raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        v.add(path, f"must be {_EXPECTED[Kind.STRING_MAP]}; got {json_type(raw)}")
        return None
    bad = [k for k, x in raw.items() if not isinstance(x, str)]
    for key in bad:
        v.add(join(path, key), f"must be a string; got {json_type(raw[key])}")
    return None if bad else check_metadata(v, path, dict(raw))


def _from_text(kind: Kind, value: Any) -> Any:
    """A value read back from a domain dict, where numbers and times are text."""
    if not isinstance(value, str) or kind not in _TEXT_STORED:
        return value
    if kind is Kind.DATETIME:
        parsed = parse_datetime(Violations(), "", value)
        return value if parsed is None else parsed
    number = parse_decimal(Violations(), "", value)
    return value if number is None else number


def json_number(value: Decimal) -> int | Decimal:
    """Whole numbers as int (so 30 stays 30), the rest as exact Decimal."""
    exponent = value.as_tuple().exponent
    return int(value) if isinstance(exponent, int) and exponent >= 0 else value


def _render(fm: FieldMap, value: Any) -> Any:
    kind = fm.kind
    if not isinstance(value, Decimal | datetime | date | StrEnum):
        return value  # text, bools, maps; or an unreadable stored value, passed on as it is
    if kind is Kind.NUMBER and isinstance(value, Decimal):
        return json_number(value)
    if kind is Kind.DECIMAL_STRING and isinstance(value, Decimal):
        return fmt_decimal(value)
    if kind is Kind.DATETIME and isinstance(value, datetime):
        return fmt_datetime(value)
    if kind is Kind.DAY and isinstance(value, datetime):
        return fmt_date(value.astimezone(UTC).date())
    if kind is Kind.DAY_TIME and isinstance(value, date):
        return f"{fmt_date(value)}T00:00:00Z"
    if kind is Kind.DATE and isinstance(value, date):
        return fmt_date(value)
    if kind is Kind.ENUM and isinstance(value, StrEnum):
        assert fm.values is not None
        return next((k for k, member in fm.values.items() if member is value), None)
    return as_text(value)


def read_value(fm: FieldMap, src: dict[str, Any], v: Violations, base: str) -> Any:
    """The canonical value of one vendor field: parsed, its default when left out, None when refused."""
    raw = vendor_get(src, fm.vendor, v, base)
    if raw is MISSING or raw is None:
        if fm.required:
            v.add(join(base, fm.vendor), "is required")
        return fm.default
    return _parse(fm, v, join(base, fm.vendor), raw)


def write_value(fm: FieldMap, out: dict[str, Any], value: Any) -> None:
    """Writes one canonical value in the vendor's form; "not given" values are left out."""
    if fm.kind is Kind.CONSTANT:
        if fm.emit:
            vendor_set(out, fm.vendor, fm.const)
        return
    value = _from_text(fm.kind, value)
    if blank(value) or (fm.omit_zero and isinstance(value, Decimal) and value == 0):
        return
    if fm.kind is Kind.CURRENCY and isinstance(value, str):
        value = value.lower() if fm.lower else value.upper()
    rendered = _render(fm, value)
    if not blank(rendered):
        vendor_set(out, fm.vendor, rendered)
