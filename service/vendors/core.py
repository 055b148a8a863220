"""The canonical core every vendor module maps through. Pure: no I/O.

A vendor describes its invoice JSON as Shapes: a table of FieldMap entries (vendor path, canonical
attribute, kind) plus hooks for the few rules a table cannot express (statuses, amounts split differently).
The one table drives both import (vendor JSON -> domain Invoice) and export (Invoice -> vendor JSON).

Nothing is dropped. After an import the payload is compared with the export of what was imported; what the
export does not reproduce is kept in ``inv.supplemental_data[vendor]`` and put back on export:
- vendor fields no table maps are kept verbatim, nested as in the payload (line leftovers by position);
- mapped fields the vendor wrote differently (a lower-case currency, an unqualified date, a left-out
  default) are listed under ``"$verbatim"`` with the value the export gave at import time; the vendor's own
  text comes back only while the export still gives that value, so an edited invoice never gets stale data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, StrEnum, auto
from typing import Any, Final

from service.domain import money
from service.domain.errors import FieldViolation, InvalidArgument, Violations
from service.domain.lifecycle import derive_status
from service.domain.models import Invoice, LineItem, PaymentAllocation, Status
from service.domain.totals import infer_modes
from service.domain.values import (
    MAX_INT_DIGITS,
    MAX_SCALE,
    SHORT_TEXT,
    ZERO,
    check_metadata,
    check_text,
    clamp_scale,
    fmt_date,
    fmt_datetime,
    fmt_decimal,
    parse_currency,
    parse_date,
    parse_datetime,
    parse_decimal,
    shown,
)

VERBATIM: Final = "$verbatim"  # key of the list of mapped fields kept in the vendor's own form
DECIMAL_TAG: Final = "$decimal"  # a kept number a JSON float cannot hold exactly, as {"$decimal": "0.10"}
MAX_DEPTH: Final = 32  # deeper vendor JSON is refused rather than risking recursion limits
ONE: Final = Decimal(1)
HUNDRED: Final = Decimal(100)


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


@dataclass(frozen=True, slots=True)
class ListMap:
    """A vendor array of objects and the canonical list it becomes, element by element."""

    vendor: str
    attr: str
    shape: Shape


ReadHook = Callable[[dict[str, Any], Any, Violations, str], None]
WriteHook = Callable[[Any, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Shape:
    """A vendor object: its table, a factory for the canonical object, and hooks run after the table."""

    fields: tuple[FieldMap | ListMap, ...]
    make: Callable[[], Any]
    read_hook: ReadHook | None = None
    write_hook: WriteHook | None = None


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    shape: Shape  # makes an Invoice


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


# -- paths ----------------------------------------------------------------------------------------


def join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _vendor_get(src: dict[str, Any], path: str, v: Violations, base: str) -> Any:
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


def _vendor_set(out: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    cur = out
    for part in parents:
        cur = cur.setdefault(part, {})
    cur[last] = value


def _blank(value: Any) -> bool:
    """Canonical "not given": nothing is written for it."""
    return value is None or value is False or (isinstance(value, str | dict | list) and not value)


def _as_text(value: Any) -> Any:
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


def _get(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else getattr(cur, part)
        if cur is None:
            return None
    return cur


def _set(obj: Any, path: str, value: Any) -> None:
    """Sets a canonical attribute; inside dicts only given values are stored, as text."""
    *parents, last = path.split(".")
    cur = obj
    for part in parents:
        if isinstance(cur, dict):
            if _blank(value):
                return
            cur = cur.setdefault(part, {})
        else:
            cur = getattr(cur, part)
    if isinstance(cur, dict):
        if not _blank(value):
            cur[last] = _as_text(value)
    else:
        setattr(cur, last, value)


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
        return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)
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
    return _as_text(value)


def read_value(fm: FieldMap, src: dict[str, Any], v: Violations, base: str) -> Any:
    """The canonical value of one vendor field: parsed, its default when left out, None when refused."""
    raw = _vendor_get(src, fm.vendor, v, base)
    if raw is MISSING or raw is None:
        if fm.required:
            v.add(join(base, fm.vendor), "is required")
        return fm.default
    return _parse(fm, v, join(base, fm.vendor), raw)


def write_value(fm: FieldMap, out: dict[str, Any], value: Any) -> None:
    """Writes one canonical value in the vendor's form; "not given" values are left out."""
    if fm.kind is Kind.CONSTANT:
        if fm.emit:
            _vendor_set(out, fm.vendor, fm.const)
        return
    value = _from_text(fm.kind, value)
    if _blank(value):
        return
    if fm.kind is Kind.CURRENCY and isinstance(value, str):
        value = value.lower() if fm.lower else value.upper()
    rendered = _render(fm, value)
    if not _blank(rendered):
        _vendor_set(out, fm.vendor, rendered)


# -- shapes ---------------------------------------------------------------------------------------


def read_shape(shape: Shape, src: dict[str, Any], v: Violations, base: str) -> Any:
    obj = shape.make()
    for fm in shape.fields:
        if isinstance(fm, ListMap):
            _set(obj, fm.attr, read_list(fm, src, v, base))
            continue
        value = read_value(fm, src, v, base)
        if fm.kind is not Kind.CONSTANT and value is not None:
            _set(obj, fm.attr, value)  # left out: the factory's default stays
    if shape.read_hook is not None:
        shape.read_hook(src, obj, v, base)
    return obj


def read_list(fm: ListMap, src: dict[str, Any], v: Violations, base: str) -> list[Any]:
    path = join(base, fm.vendor)
    raw = _vendor_get(src, fm.vendor, v, base)
    if raw is MISSING or raw is None:
        return []
    if not isinstance(raw, list):
        v.add(path, f"must be a JSON array; got {json_type(raw)}")
        return []
    items = []
    for i, element in enumerate(raw):
        if not isinstance(element, dict):
            v.add(f"{path}[{i}]", f"must be a JSON object; got {json_type(element)}")
            continue
        items.append(read_shape(fm.shape, element, v, f"{path}[{i}]"))
    return items


def write_shape(shape: Shape, obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fm in shape.fields:
        if isinstance(fm, ListMap):
            items = _get(obj, fm.attr) or []
            if items:
                _vendor_set(out, fm.vendor, [write_shape(fm.shape, item) for item in items])
        else:
            write_value(fm, out, None if fm.kind is Kind.CONSTANT else _get(obj, fm.attr))
    if shape.write_hook is not None:
        shape.write_hook(obj, out)
    return out


# -- shared rules the vendor hooks use ------------------------------------------------------------


def by_amounts(inv: Invoice) -> Status:
    """Status of a finalized invoice from its amounts (README "by amount_due"); SUBMITTED when unknown."""
    if inv.amount_due is None or inv.total_amount is None:
        return Status.SUBMITTED
    return derive_status(inv)


def paid_allocations(inv: Invoice, paid: Decimal | None) -> list[PaymentAllocation]:
    """A vendor that reports only the total paid: one allocation of it, in the invoice's currency."""
    if not paid:
        return []
    return [PaymentAllocation(amount=paid, currency=inv.currency, applied_amount=paid)]


def reported_paid(inv: Invoice) -> Decimal | None:
    """The total paid, for vendors that carry only that; None when nothing was allocated."""
    return inv.amount_paid if inv.allocations else None


def line_discount(line: LineItem) -> Decimal | None:
    if line.discount_amount is not None:
        return line.discount_amount
    if line.discount_percentage is None:
        return None
    return clamp_scale(clamp_scale(line.quantity * line.unit_amount) * line.discount_percentage / HUNDRED)


def line_gross(line: LineItem) -> Decimal:
    """quantity x unit_amount before discounts: sub_total + discount when the sub total is known."""
    if line.sub_total is not None:
        return line.sub_total + (line_discount(line) or ZERO)
    return clamp_scale(line.quantity * line.unit_amount)


def unit_from(v: Violations, path: str, amount: Decimal, quantity: Decimal, currency: str = "") -> Decimal | None:
    """The unit amount of a line a vendor gives as amount and quantity: exact when it divides, else (the
    amount being rounded to the currency) the 9-decimal price whose rounded product gives the amount back."""
    if quantity == 0:
        if amount == 0:
            return ZERO
        v.add(path, f"is {amount} for quantity 0: no unit amount gives that")
        return None
    unit = amount / quantity
    exponent = unit.as_tuple().exponent
    if unit * quantity == amount and isinstance(exponent, int) and exponent >= -MAX_SCALE:
        return unit.quantize(ONE) if exponent > 0 else unit
    if currency and money.exponent(currency) is not None:
        unit = unit.quantize(Decimal(1).scaleb(-MAX_SCALE)).normalize()
        if money.round_amount(unit * quantity, currency) == amount:
            tail = unit.as_tuple().exponent
            return unit.quantize(ONE) if isinstance(tail, int) and tail > 0 else unit
    v.add(
        path,
        f"{amount} / quantity {quantity} does not divide to {MAX_SCALE} decimal places: "
        "the unit amount cannot be represented",
    )
    return None


# -- JSON hygiene ---------------------------------------------------------------------------------

MAX_JSON_NUMBER_CHARS: Final = 100  # the longest number literal in vendor JSON
MAX_JSON_EXPONENT: Final = 400  # |exponent| of a kept number: beyond any float, far below Decimal's limits


def json_decimal(text: str) -> Decimal:
    """json.loads' parse_float: the literal's size and exponent are checked before any Decimal exists, so
    `1e999999999999999999` is refused (ValueError: "not JSON") instead of stalling or failing later."""
    if len(text) > MAX_JSON_NUMBER_CHARS:
        raise ValueError(f"a number literal longer than {MAX_JSON_NUMBER_CHARS} characters")
    try:
        value = Decimal(text)  # at most 100 characters: cheap
    except ArithmeticError as exc:  # an exponent beyond Decimal's own range
        raise ValueError(f"a number beyond 1e{MAX_JSON_EXPONENT} in magnitude: {text[:40]}") from exc
    if abs(value.adjusted()) > MAX_JSON_EXPONENT:
        raise ValueError(f"a number beyond 1e{MAX_JSON_EXPONENT} in magnitude: {text[:40]}")
    return value


def _unstorable(text: str) -> str | None:
    """Why JSON text cannot be kept, or None: a `\\ud800` escape decodes to a lone surrogate, which is no
    Unicode text (UTF-8 cannot encode it), and PostgreSQL stores no NUL in text or jsonb."""
    if "\x00" in text:
        return "must not contain the NUL character (\\u0000)"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "is not Unicode text: it holds a lone surrogate escape such as \\ud800"
    return None


def normalize(v: Violations, value: Any, path: str = "", depth: int = 0) -> Any:
    """The payload as json.loads(parse_float=Decimal) gives it: floats become exact Decimals (from their
    shortest repr); NaN, Infinity, non-JSON types and very deep nesting are refused."""
    if depth > MAX_DEPTH:
        v.add(path, f"is nested more than {MAX_DEPTH} levels deep")
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            v.add(path, f"must be a finite number; got {value}")
            return None
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            v.add(path, f"must be a finite number; got {value}")
            return None
        if value and abs(value.adjusted()) > MAX_JSON_EXPONENT:  # a payload not parsed by json_decimal
            v.add(path, f"must be a number below 1e{MAX_JSON_EXPONENT} in magnitude; got {shown(str(value))}")
            return None
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                v.add(path, f"object keys must be strings; got {json_type(key)}")
                continue
            if (problem := _unstorable(key)) is not None:
                v.add(path or "invoice_json", f"has an object key that {problem}")
                continue
            out[key] = normalize(v, item, join(path, key), depth + 1)
        return out
    if isinstance(value, list):
        return [normalize(v, item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, str):
        if (problem := _unstorable(value)) is not None:
            v.add(path or "invoice_json", problem)
            return None
        return value
    if value is None or isinstance(value, int):  # bool is an int
        return value
    v.add(path, f"is not JSON: {type(value).__name__}")
    return None


def same(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (30 == 30.0), everything else by type and value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | Decimal) and isinstance(b, int | Decimal):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def encode(value: Any) -> Any:
    """JSON-safe for the JSONB column and the Struct on the wire: a Decimal becomes the float that prints
    the same, else {"$decimal": text}."""
    if isinstance(value, Decimal):
        as_float = float(value)
        return as_float if repr(as_float) == str(value) else {DECIMAL_TAG: str(value)}
    if isinstance(value, dict):
        return {k: encode(x) for k, x in value.items()}
    if isinstance(value, list):
        return [encode(x) for x in value]
    return value


def _tagged(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(DECIMAL_TAG), str)


def decode(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if _tagged(value):
        try:
            number = Decimal(value[DECIMAL_TAG])
        except ArithmeticError:
            return value
        return number if number.is_finite() else value  # only a hand-edited tag could hold NaN
    if isinstance(value, dict):
        return {k: decode(x) for k, x in value.items()}
    if isinstance(value, list):
        return [decode(x) for x in value]
    return value


# -- what an import keeps, and putting it back ---------------------------------------------------


def _diff(orig: Any, made: Any, path: list[str | int], verbatim: list[dict[str, Any]]) -> Any:
    """What of `orig` the export `made` does not reproduce, shaped like `orig`; None when nothing."""
    if isinstance(orig, dict) and isinstance(made, dict):
        kept: dict[str, Any] = {}
        for key, value in orig.items():
            if key not in made:
                kept[key] = value
            else:
                sub = _diff(value, made[key], [*path, key], verbatim)
                if sub is not None:
                    kept[key] = sub
        for key, value in made.items():
            if key not in orig:  # the export adds what the vendor left out: dropped again on export
                verbatim.append({"path": [*path, key], "as": value})
        return kept or None
    if (
        isinstance(orig, list)
        and isinstance(made, list)
        and len(orig) == len(made)
        and all(isinstance(o, dict) and isinstance(m, dict) for o, m in zip(orig, made, strict=True))
    ):
        parts = [_diff(o, m, [*path, i], verbatim) for i, (o, m) in enumerate(zip(orig, made, strict=True))]
        return [p or {} for p in parts] if any(p is not None for p in parts) else None
    if not same(orig, made):
        verbatim.append({"path": path, "raw": orig, "as": made})
    return None


def _step(cur: Any, key: Any) -> tuple[Any, Any]:
    """The container key to use at `cur` (indexes may come back from a Struct as floats), or MISSING."""
    if isinstance(cur, dict) and isinstance(key, str):
        return (key, cur[key]) if key in cur else (MISSING, MISSING)
    whole = isinstance(key, int) or (isinstance(key, float) and key.is_integer())
    if isinstance(cur, list) and whole and not isinstance(key, bool):
        index = int(key)
        return (index, cur[index]) if 0 <= index < len(cur) else (MISSING, MISSING)
    return MISSING, MISSING


def _restore_one(doc: dict[str, Any], entry: Any) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), list) or not entry["path"] or "as" not in entry:
        return  # a hand-edited entry that is not ours
    *parents, last = entry["path"]
    cur: Any = doc
    for key in parents:
        _, cur = _step(cur, key)
    if cur is MISSING:
        return
    key, current = _step(cur, last)
    if key is MISSING or not same(current, decode(entry["as"])):
        return  # the canonical value changed since the import: the export's value stands
    if "raw" in entry:
        cur[key] = decode(entry["raw"])
    else:
        del cur[key]


def _merge(made: Any, kept: Any) -> None:
    """Adds kept vendor fields the export does not write; the export wins wherever it has a value."""
    if isinstance(made, dict) and isinstance(kept, dict) and not _tagged(kept):
        for key, value in kept.items():
            if key not in made:
                made[key] = decode(value)
            else:
                _merge(made[key], value)
    elif isinstance(made, list) and isinstance(kept, list) and len(made) == len(kept):
        for m, k in zip(made, kept, strict=True):
            _merge(m, k)


# -- entry points ---------------------------------------------------------------------------------


def raise_unique(v: Violations) -> None:
    """Raises once with every distinct violation (a bad parent object is reported by each child field)."""
    unique: list[FieldViolation] = list(dict.fromkeys(v.items))
    if unique:
        raise InvalidArgument(unique)


def import_invoice(vendor: Vendor, payload: Any) -> Invoice:
    v = Violations()
    doc = normalize(v, payload)
    if not isinstance(doc, dict):
        raise InvalidArgument([FieldViolation("", f"must be a JSON object; got {json_type(payload)}")])
    inv = read_shape(vendor.shape, doc, v, "")
    raise_unique(v)
    assert isinstance(inv, Invoice)
    inv.company_id = inv.id = ""  # a client-side invoice: the create path assigns both
    infer_modes(inv)
    verbatim: list[dict[str, Any]] = []
    kept = _diff(doc, write_shape(vendor.shape, inv), [], verbatim) or {}
    if verbatim:
        kept[VERBATIM] = verbatim
    inv.supplemental_data = {vendor.name: encode(kept)} if kept else None
    return inv


def export_invoice(vendor: Vendor, inv: Invoice) -> dict[str, Any]:
    out = write_shape(vendor.shape, inv)
    kept = (inv.supplemental_data or {}).get(vendor.name)
    if isinstance(kept, dict):
        entries = kept.get(VERBATIM)
        for entry in entries if isinstance(entries, list) else []:
            _restore_one(out, entry)
        _merge(out, {k: x for k, x in kept.items() if k != VERBATIM})
    return out


def dumps(payload: Any) -> str:
    """JSON text of an exported payload: Decimals as exact JSON numbers (json.dumps cannot write them)."""
    if isinstance(payload, Decimal):
        return str(payload)
    if isinstance(payload, dict):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{dumps(x)}" for k, x in payload.items()) + "}"
    if isinstance(payload, list):
        return "[" + ",".join(dumps(x) for x in payload) + "]"
    # Text as itself (UTF-8 on the wire), not \uXXXX escapes: an invoice at its size bound still exports in
    # one message.
    return json.dumps(payload, ensure_ascii=False)
