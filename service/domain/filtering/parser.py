"""Filter text to its typed tree: a lexer, a precedence-climbing parser, and the typing of each comparison's
value against its field. The grammar is in the package docstring. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from service.domain.filtering.fields import FIELDS, METADATA_KEY, METADATA_PREFIX, FieldSpec, Kind
from service.domain.filtering.tree import And, Comparison, DayRange, FilterError, Node, Not, Or
from service.domain.ids import parse_id
from service.domain.values import DECIMAL_TEXT, as_utc, start_of_day

MAX_FILTER_LENGTH = 2048
MAX_COMPARISONS = 64
MAX_DEPTH = 16


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
        if not METADATA_KEY.match(key):
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
        if not DECIMAL_TEXT.fullmatch(raw):
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
            start = start_of_day(date.fromisoformat(raw))
            return DayRange(start, start + timedelta(days=1))
        return as_utc(datetime.fromisoformat(raw))
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
