"""Value rules: what a valid decimal, date, currency or identifier is. Pure functions."""

from __future__ import annotations

import decimal
import re
from datetime import UTC, date, datetime
from decimal import Decimal

from iso4217 import Currency

from service.domain.errors import Violations

# Inputs have up to 29 significant digits and products of two of them up to 58: at the default 28 digits
# arithmetic would round silently. Every thread and task started after this import computes exactly.
MONEY_PRECISION = 100
decimal.DefaultContext.prec = MONEY_PRECISION
decimal.getcontext().prec = MONEY_PRECISION

MAX_INT_DIGITS = 20
MAX_SCALE = 9
DECIMAL_TEXT = re.compile(rf"^-?[0-9]{{1,{MAX_INT_DIGITS}}}(\.[0-9]{{1,{MAX_SCALE}}})?$")  # ASCII digits only
_COMPANY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
SHORT_TEXT = 255
LONG_TEXT = 10_000
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
ZERO = Decimal(0)
QUANTUM = Decimal(1).scaleb(-MAX_SCALE)

# Codes the ISO 4217 list (the `iso4217` package) no longer carries but invoices still use, with their minor
# units: withdrawn since (Sierra Leone's old leone, Zimbabwe's 2009 dollar, the Antillean guilder replaced by
# XCG, Bulgaria's lev after the euro, the Cuban convertible peso) yet found in history and imports.
WITHDRAWN_CURRENCIES = {"SLL": 2, "ZWL": 2, "ANG": 2, "BGN": 2, "CUC": 2}
# Every ISO 4217 code (XXX included: no currency, as Codat allows) and the withdrawn ones above: one list,
# so every accepted currency has its minor unit known (money.exponent).
CURRENCIES = frozenset({c.code for c in Currency} | WITHDRAWN_CURRENCIES.keys())


def shown(raw: str, limit: int = 40) -> str:
    """A value safe to echo in an error message."""
    return repr(raw if len(raw) <= limit else raw[:limit] + "...")


def parse_decimal(
    v: Violations,
    path: str,
    raw: str,
    *,
    required: bool = False,
    minimum: Decimal | None = None,
    positive: bool = False,
    maximum: Decimal | None = None,
) -> Decimal | None:
    """Parses an exact decimal string; records a violation and returns None when invalid or empty."""
    if raw == "":
        if required:
            v.add(path, "is required")
        return None
    if not DECIMAL_TEXT.fullmatch(raw):  # fullmatch: "$" alone would let "1\n" through
        v.add(
            path,
            f'must be a decimal string such as "1234.56" (at most {MAX_INT_DIGITS} integer digits and '
            f"{MAX_SCALE} decimal places, no exponent, NaN or Infinity); got {shown(raw)}",
        )
        return None
    value = Decimal(raw)
    if value == 0:
        value = abs(value)  # no negative zero
    if positive and value <= 0:
        v.add(path, f"must be greater than 0; got {raw}")
    elif minimum is not None and value < minimum:
        v.add(path, f"must be at least {minimum}; got {raw}")
    if maximum is not None and value > maximum:
        v.add(path, f"must be at most {maximum}; got {raw}")
    return value


def clamp_scale(value: Decimal) -> Decimal:
    """Rounds a computed value to the largest scale the service stores (half-up)."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_SCALE:
        return value.quantize(QUANTUM, rounding="ROUND_HALF_UP")
    return value


def fmt_decimal(value: Decimal | None) -> str:
    """Plain notation always ("0.0000002", never "2E-7"), so a value read can be sent back as is."""
    return "" if value is None else format(value, "f")


def parse_datetime(v: Violations, path: str, raw: str, *, required: bool = False) -> datetime | None:
    """Codat's accepted date forms: UTC (Z), with an offset, or unqualified (taken as UTC)."""
    if raw == "":
        if required:
            v.add(path, "is required")
        return None
    if len(raw) > 40 or raw[:1].isspace():
        v.add(path, f"must be an ISO 8601 date such as 2023-04-18T11:09:01Z; got {shown(raw)}")
        return None
    try:
        return as_utc(datetime.fromisoformat(raw))
    except (ValueError, OverflowError):  # OverflowError: an offset pushing year 1 or 9999 out of range
        v.add(
            path, f"must be an ISO 8601 date between years 1 and 9999, such as 2023-04-18T11:09:01Z; got {shown(raw)}"
        )
        return None


def as_utc(value: datetime) -> datetime:
    """A time in UTC; an unqualified time is taken as UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def start_of_day(day: date) -> datetime:
    """00:00 UTC of a calendar day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def fmt_datetime(value: datetime | None) -> str:
    """Normalised form: UTC with a Z, milliseconds when there are any."""
    if value is None:
        return ""
    value = value.astimezone(UTC)
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        frac = f"{value.microsecond:06d}"
        text += "." + (frac[:3] if frac.endswith("000") else frac)
    return text + "Z"


def parse_date(v: Violations, path: str, raw: str) -> date | None:
    """A calendar date, YYYY-MM-DD (a date-time is accepted and cut to its UTC date)."""
    if raw == "":
        return None
    if len(raw) == 10:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    parsed = parse_datetime(v, path, raw)
    return parsed.date() if parsed else None


def fmt_date(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def parse_currency(v: Violations, path: str, raw: str, *, required: bool = True) -> str | None:
    if raw == "":
        if required:
            v.add(path, "is required (ISO 4217 code; XXX when unknown)")
        return None
    code = raw.upper()
    if code not in CURRENCIES:
        v.add(path, f"must be an ISO 4217 currency code such as USD; got {shown(raw)}")
        return None
    return code


def check_text(v: Violations, path: str, raw: str, *, limit: int = SHORT_TEXT, required: bool = False) -> str:
    """Bounded text without control characters (newlines and tabs allowed in long text)."""
    if raw == "":
        if required:
            v.add(path, "is required")
        return raw
    if len(raw) > limit:
        v.add(path, f"must be at most {limit} characters; got {len(raw)}")
        return raw
    text = raw.replace("\n", "").replace("\t", "").replace("\r", "") if limit > SHORT_TEXT else raw
    if _CONTROL_RE.search(text):
        v.add(path, "must not contain control characters")
    return raw


def check_company_id(v: Violations, path: str, raw: str) -> str:
    if raw == "":
        v.add(path, "is required")
    elif not _COMPANY_RE.fullmatch(raw):
        v.add(path, "must be 1-64 letters, digits, '_', '.', ':' or '-'")
    return raw


def check_metadata(v: Violations, path: str, metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_KEYS:
        v.add(path, f"must have at most {MAX_METADATA_KEYS} keys; got {len(metadata)}")
        return metadata
    for key, value in metadata.items():
        if not key or len(key) > MAX_METADATA_KEY:
            v.add(f"{path}[{shown(key)}]", f"keys must be 1-{MAX_METADATA_KEY} characters")
        elif len(value) > MAX_METADATA_VALUE:
            v.add(f"{path}[{shown(key)}]", f"values must be at most {MAX_METADATA_VALUE} characters")
    return metadata
