"""Vendor JSON payloads as data: exact numbers in (``json_decimal``), checked and normalized (``normalize``),
compared (``same``), kept in JSONB and on the wire (``encode``/``decode``) and written back (``dumps``). Pure.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any, Final

from service.domain.errors import Violations
from service.domain.values import shown

DECIMAL_TAG: Final = "$decimal"  # a kept number a JSON float cannot hold exactly, as {"$decimal": "0.10"}
MAX_DEPTH: Final = 32  # deeper vendor JSON is refused rather than risking recursion limits
MAX_JSON_NUMBER_CHARS: Final = 100  # the longest number literal in vendor JSON
MAX_JSON_EXPONENT: Final = 400  # |exponent| of a kept number: beyond any float, far below Decimal's limits


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


def tagged(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(DECIMAL_TAG), str)


def decode(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if tagged(value):
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
