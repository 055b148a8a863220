"""The filter and order language of ListInvoices (PRODUCT section 7). Pure: text in, typed tree out.

One grammar for Google AIP-160 and Codat's query spelling:

    expr       := term ( binop term | term )*          juxtaposition is AND (AIP-160)
    binop      := '||' | '&&' | 'AND' | 'OR'
    term       := ('NOT' | '!') term | '(' expr ')' | '{' expr '}' | field comparator value
    comparator := '=' | '==' | '!=' | '<' | '<=' | '>' | '>=' | ':' | '~'
    value      := "quoted" | 'quoted' | bare-word | null

Precedence, loosest first: `||`, `&&`, `AND`, `OR`, `NOT`. So the keyword spelling keeps AIP-160's rule
(OR binds tighter than AND) and the symbol spelling keeps the usual one (&& binds tighter than ||).
Field names are snake_case or camelCase paths (`customer_ref.id`, `customerRef.id`); enum values are
case-insensitive (`paid`, `PartiallyPaid`, `INVOICE_STATUS_PAID`); `:` and `~` mean "contains" on text
and "equals" elsewhere; a calendar date compared with a timestamp field covers that whole UTC day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Union

from service.domain import models as m
from service.domain.ids import parse_id

MAX_FILTER_LENGTH = 2048
MAX_COMPARISONS = 64
MAX_DEPTH = 16
MAX_ORDER_KEYS = 4


class Kind(StrEnum):
    TEXT = "text"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"
    ENUM = "enum"
    ID = "id"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str  # canonical snake_case path
    kind: Kind
    nullable: bool = False
    enum: tuple[str, ...] = ()


def _enum(name: str, values: type[StrEnum], nullable: bool = True) -> FieldSpec:
    return FieldSpec(name, Kind.ENUM, nullable, tuple(v.value for v in values))


_SPECS = [
    FieldSpec("id", Kind.ID),
    FieldSpec("invoice_number", Kind.TEXT, nullable=True),
    FieldSpec("customer_ref.id", Kind.TEXT),
    FieldSpec("customer_ref.company_name", Kind.TEXT),
    FieldSpec("currency", Kind.TEXT),
    FieldSpec("note", Kind.TEXT),
    FieldSpec("subscription_id", Kind.TEXT),
    FieldSpec("vendor_status", Kind.TEXT),
    _enum("status", m.Status, nullable=False),
    _enum("payment_status", m.PaymentStatus),
    _enum("void_reason", m.VoidReason),
    _enum("invoice_type", m.InvoiceType),
    _enum("billing_reason", m.BillingReason),
    *(
        FieldSpec(n, Kind.DECIMAL, nullable=n in ("currency_rate",))
        for n in (
            "total_amount",
            "amount_due",
            "sub_total",
            "total_tax_amount",
            "total_discount",
            "amount_paid",
            "amount_credited",
            "currency_rate",
        )
    ),
    *(
        FieldSpec(n, Kind.TIMESTAMP, nullable=n not in ("create_time", "modified_date"))
        for n in (
            "issue_date",
            "due_date",
            "paid_on_date",
            "modified_date",
            "source_modified_date",
            "create_time",
            "finalize_time",
            "void_time",
            "period_start",
            "period_end",
        )
    ),
]
METADATA_PREFIX = "metadata."
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


def _camel(path: str) -> str:
    return ".".join(re.sub(r"_([a-z0-9])", lambda g: g.group(1).upper(), part) for part in path.split("."))


# Every spelling a client may use: snake_case, camelCase, and the FlexPrice names.
FIELDS: dict[str, FieldSpec] = {}
for _spec in _SPECS:
    FIELDS[_spec.name] = FIELDS[_camel(_spec.name)] = _spec
_ALIASES = {
    "customer_id": "customer_ref.id",
    "customerId": "customer_ref.id",
    "invoice_status": "status",
    "invoiceStatus": "status",
    "number": "invoice_number",
    "total": "total_amount",
    "amount_remaining": "amount_due",
    "amountRemaining": "amount_due",
    "subtotal": "sub_total",
    "created_at": "create_time",
    "updated_at": "modified_date",
    "finalized_at": "finalize_time",
    "voided_at": "void_time",
}
for _alias, _target in _ALIASES.items():
    FIELDS[_alias] = FIELDS[_target]


def _catalog(specs: list[FieldSpec]) -> dict[str, FieldSpec]:
    return {name: spec for spec in specs for name in (spec.name, _camel(spec.name))}


# ListPushOperations: the same language over push operation fields.
PUSH_FIELDS: dict[str, FieldSpec] = _catalog(
    [
        FieldSpec("push_operation_key", Kind.ID),
        FieldSpec("status", Kind.ENUM, enum=("PENDING", "SUCCESS", "FAILED", "TIMED_OUT")),
        FieldSpec("operation", Kind.TEXT),
        FieldSpec("data_type", Kind.TEXT),
        FieldSpec("status_code", Kind.DECIMAL),
        FieldSpec("error_message", Kind.TEXT),
        FieldSpec("requested_on_utc", Kind.TIMESTAMP),
        FieldSpec("completed_on_utc", Kind.TIMESTAMP, nullable=True),
    ]
)


class FilterError(ValueError):
    """Refused text; `position` is 1-based, `token` the offending text."""

    def __init__(self, position: int, token: str, message: str) -> None:
        self.position, self.token, self.message = position, token, message
        super().__init__(f"at position {position} ({token!r}): {message}")


@dataclass(frozen=True, slots=True)
class DayRange:
    """A calendar date compared with a timestamp: [start, end) in UTC."""

    start: datetime
    end: datetime


Value = Union[str, Decimal, datetime, DayRange, None]  # noqa: UP007 - used at runtime


@dataclass(frozen=True, slots=True)
class Comparison:
    field: FieldSpec
    op: str  # one of = != < <= > >= ~   (':' is normalised to '~' on text, '=' elsewhere)
    value: Value
    metadata_key: str = ""


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Union[Comparison, And, Or, Not]  # noqa: UP007 - used at runtime


# -- lexer ----------------------------------------------------------------------------------------

_COMPARATORS = ("<=", ">=", "!=", "==", "=", "<", ">", ":", "~")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_\-]+)*")
_VALUE_STOP = set(" \t\r\n(){}")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # IDENT, OP, AND, OR, SAND, SOR, NOT, OPEN, CLOSE, VALUE, STRING, END
    text: str
    pos: int  # 1-based


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def _skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def peek(self) -> Token:
        save = self.i
        tok = self.next()
        self.i = save
        return tok

    def next(self) -> Token:
        self._skip()
        t, i = self.text, self.i
        pos = i + 1
        if i >= len(t):
            return Token("END", "", pos)
        two = t[i : i + 2]
        if two in ("&&", "||"):
            self.i += 2
            return Token("SAND" if two == "&&" else "SOR", two, pos)
        c = t[i]
        if c in "({":
            self.i += 1
            return Token("OPEN", c, pos)
        if c in ")}":
            self.i += 1
            return Token("CLOSE", c, pos)
        if c == "!" and two != "!=":
            self.i += 1
            return Token("NOT", c, pos)
        for op in _COMPARATORS:
            if t.startswith(op, i):
                self.i += len(op)
                return Token("OP", op, pos)
        match = _IDENT.match(t, i)
        if match:
            word = match.group(0)
            self.i = match.end()
            if word in ("AND", "OR", "NOT"):
                return Token(word, word, pos)
            return Token("IDENT", word, pos)
        end = i
        while end < len(t) and not t[end].isspace() and t[end] not in "(){}":
            end += 1
        raise FilterError(pos, t[i:end] or c, "expected a field name, a comparison, '(', '{' or NOT")

    def value(self) -> Token:
        """A comparison's right-hand side: quoted, or a bare word up to whitespace or a bracket."""
        self._skip()
        t, i = self.text, self.i
        pos = i + 1
        if i >= len(t):
            raise FilterError(pos, "", "expected a value after the comparator")
        if t[i] in "\"'":
            quote, out, j = t[i], [], i + 1
            while j < len(t):
                ch = t[j]
                if ch == "\\" and j + 1 < len(t):
                    out.append(t[j + 1])
                    j += 2
                    continue
                if ch == quote:
                    self.i = j + 1
                    return Token("STRING", "".join(out), pos)
                out.append(ch)
                j += 1
            raise FilterError(pos, t[i:], "unterminated string")
        j = i
        while j < len(t) and t[j] not in _VALUE_STOP and not t.startswith(("&&", "||"), j):
            j += 1
        if j == i:
            raise FilterError(pos, t[i], "expected a value after the comparator")
        self.i = j
        return Token("VALUE", t[i:j], pos)


# -- parser ---------------------------------------------------------------------------------------

# Loosest first. Juxtaposition (implicit AND) sits with AND.
_LEVEL = {"SOR": 1, "SAND": 2, "AND": 3, "OR": 4}
_STARTS_TERM = {"IDENT", "NOT", "OPEN"}


class _Parser:
    def __init__(self, text: str, fields: dict[str, FieldSpec]) -> None:
        self.lex = _Lexer(text)
        self.fields = fields
        self.comparisons = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self.expr(1)
        tok = self.lex.next()
        if tok.kind != "END":
            raise FilterError(
                tok.pos, tok.text, "unexpected token" + (": unbalanced bracket" if tok.kind == "CLOSE" else "")
            )
        return node

    def expr(self, min_level: int) -> Node:
        left = self.term()
        while True:
            tok = self.lex.peek()
            if tok.kind in _LEVEL:
                level, explicit = _LEVEL[tok.kind], True
            elif tok.kind in _STARTS_TERM:
                level, explicit = _LEVEL["AND"], False
            else:
                return left
            if level < min_level:
                return left
            if explicit:
                self.lex.next()
            right = self.expr(level + 1)
            left = _join(Or if tok.kind in ("OR", "SOR") and explicit else And, left, right)

    def term(self) -> Node:
        tok = self.lex.next()
        if tok.kind == "NOT":
            # NOTs nest like brackets: bounded, so no input reaches the recursion limit.
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(tok.pos, tok.text, f"nesting deeper than {MAX_DEPTH} levels (brackets and NOTs)")
            negated = Not(self.term())
            self.depth -= 1
            return negated
        if tok.kind == "OPEN":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(tok.pos, tok.text, f"nesting deeper than {MAX_DEPTH} levels (brackets and NOTs)")
            node = self.expr(1)
            close = self.lex.next()
            if close.kind != "CLOSE":
                raise FilterError(close.pos, close.text, f"expected the closing bracket of {tok.text!r} at {tok.pos}")
            if (tok.text, close.text) not in (("(", ")"), ("{", "}")):
                raise FilterError(
                    close.pos, close.text, f"{tok.text!r} at position {tok.pos} is closed by {close.text!r}"
                )
            self.depth -= 1
            return node
        if tok.kind == "IDENT":
            return self.comparison(tok)
        if tok.kind == "END":
            raise FilterError(tok.pos, tok.text, "the filter ends where a comparison was expected")
        raise FilterError(tok.pos, tok.text, "expected a comparison such as amount_due > 0")

    def comparison(self, ident: Token) -> Comparison:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise FilterError(ident.pos, ident.text, f"more than {MAX_COMPARISONS} comparisons")
        spec, key = resolve_field(ident, self.fields)
        op = self.lex.next()
        if op.kind != "OP":
            raise FilterError(op.pos, op.text, f"expected a comparator (= != < <= > >= : ~) after {ident.text!r}")
        value = self.lex.value()
        return _typed(spec, key, "=" if op.text == "==" else op.text, value)


def _join(kind: type[And] | type[Or], left: Node, right: Node) -> Node:
    items: list[Node] = []
    for side in (left, right):
        items.extend(side.items if isinstance(side, kind) else (side,))
    return kind(tuple(items))


def resolve_field(tok: Token, fields: dict[str, FieldSpec]) -> tuple[FieldSpec, str]:
    name = tok.text
    if name.startswith(METADATA_PREFIX) and fields is FIELDS:
        key = name[len(METADATA_PREFIX) :]
        if not _METADATA_KEY.match(key):
            raise FilterError(tok.pos, name, "metadata keys are 1-40 letters, digits, '_' or '-'")
        return FieldSpec(name, Kind.TEXT, nullable=True), key
    spec = fields.get(name)
    if spec is None:
        known = ", ".join(sorted({s.name for s in fields.values()}))
        raise FilterError(tok.pos, name, f"unknown field; filterable fields: {known}")
    return spec, ""


def _norm_enum(text: str) -> str:
    return text.replace("_", "").lower()


def _typed(spec: FieldSpec, key: str, op: str, tok: Token) -> Comparison:
    raw = tok.text
    if tok.kind == "VALUE" and raw == "null":
        if op not in ("=", "!=", ":"):
            raise FilterError(tok.pos, raw, "null compares only with = or !=")
        if not spec.nullable:
            raise FilterError(tok.pos, raw, f"{spec.name} is never null")
        return Comparison(spec, "!=" if op == "!=" else "=", None, key)
    if spec.kind is Kind.TEXT:
        value = raw.upper() if spec.name == "currency" else raw
        return Comparison(spec, "~" if op in (":", "~") else op, value, key)
    if op == "~":
        raise FilterError(tok.pos, "~", f"~ (contains) applies to text fields; {spec.name} is {spec.kind.value}")
    op = "=" if op == ":" else op
    if spec.kind is Kind.ENUM:
        if op not in ("=", "!="):
            raise FilterError(tok.pos, raw, f"{spec.name} compares only with = or !=")
        wanted = _norm_enum(raw)
        for choice in spec.enum:
            if wanted in (
                _norm_enum(choice),
                _norm_enum(f"{spec.name}_{choice}"),
                _norm_enum(f"invoice_{spec.name}_{choice}"),
            ):
                return Comparison(spec, op, choice, key)
        raise FilterError(tok.pos, raw, f"not a {spec.name} value; one of: {', '.join(spec.enum)}")
    if spec.kind is Kind.ID:
        if op not in ("=", "!="):
            raise FilterError(tok.pos, raw, "id compares only with = or !=")
        canonical = parse_id(raw)
        if canonical is None:
            raise FilterError(tok.pos, raw, "id needs a UUID")
        return Comparison(spec, op, canonical, key)
    if spec.kind is Kind.DECIMAL:
        if not re.fullmatch(r"-?[0-9]{1,20}(\.[0-9]{1,9})?", raw):
            raise FilterError(tok.pos, raw, f"{spec.name} needs a decimal number such as 100.50")
        try:
            return Comparison(spec, op, Decimal(raw), key)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already refuses these
            raise FilterError(tok.pos, raw, "not a decimal") from exc
    return Comparison(spec, op, _timestamp(tok), key)


def _timestamp(tok: Token) -> datetime | DayRange:
    raw = tok.text
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = date.fromisoformat(raw)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return DayRange(start, start + timedelta(days=1))
        parsed = datetime.fromisoformat(raw)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: an offset moving year 1 or 9999 out of range
        raise FilterError(
            tok.pos, raw, "needs a date (2021-01-28) or a timestamp (2021-01-28T10:00:00Z) between years 1 and 9999"
        ) from exc


def parse_filter(text: str, fields: dict[str, FieldSpec] = FIELDS) -> Node | None:
    """The typed tree of a filter; None for an empty filter. Raises FilterError."""
    if len(text) > MAX_FILTER_LENGTH:
        excess = text[MAX_FILTER_LENGTH : MAX_FILTER_LENGTH + 10]
        why = f"filters are at most {MAX_FILTER_LENGTH} characters; this one has {len(text)}"
        raise FilterError(MAX_FILTER_LENGTH + 1, excess, why)
    if not text.strip():
        return None
    return _Parser(text, fields).parse()


# -- order_by -------------------------------------------------------------------------------------

DEFAULT_ORDER: tuple[tuple[FieldSpec, bool], ...] = ((FIELDS["create_time"], True),)


def parse_order_by(
    text: str, fields: dict[str, FieldSpec] = FIELDS, default: tuple[tuple[FieldSpec, bool], ...] = DEFAULT_ORDER
) -> tuple[tuple[FieldSpec, bool], ...]:
    """`due_date desc, total_amount` or Codat's `-modifiedDate`: (field, descending) pairs."""
    if not text.strip():
        return default
    keys: list[tuple[FieldSpec, bool]] = []
    offset = 0
    for part in text.split(","):
        pos = offset + len(part) - len(part.lstrip()) + 1
        offset += len(part) + 1
        words = part.split()
        if not words:
            raise FilterError(pos, part, "empty sort key")
        desc = False
        name = words[0]
        if name.startswith("-"):
            desc, name = True, name[1:]
        if len(words) == 2 and words[1].lower() in ("asc", "desc") and not desc:
            desc = words[1].lower() == "desc"
        elif len(words) != 1:
            raise FilterError(pos, part.strip(), "a sort key is `field`, `field desc`, `field asc` or `-field`")
        spec = fields.get(name)
        if spec is None or spec.kind is Kind.ID:
            raise FilterError(pos, name, "unknown or unsortable field")
        if any(s.name == spec.name for s, _ in keys):
            raise FilterError(pos, name, "the same field twice")
        keys.append((spec, desc))
    if len(keys) > MAX_ORDER_KEYS:
        raise FilterError(1, text, f"at most {MAX_ORDER_KEYS} sort keys")
    return tuple(keys)
