"""ListInvoices queries: a parsed filter compiled to parameterised SQL, keyset pages, counts, summaries.

Values only ever travel as $n parameters; the SQL text is assembled from this module's constants
(column names from COLUMNS, operators from _OPS), never from client text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from service.domain.filtering import FIELDS, And, Comparison, DayRange, FieldSpec, Kind, Node, Not, Or
from service.store.schema import CURRENT_DOCUMENT

# Every filterable field is stored in the column of its own name, but for the customer reference.
_RENAMED = {"customer_ref.id": "customer_id", "customer_ref.company_name": "customer_name"}
COLUMNS = {spec.name: _RENAMED.get(spec.name, spec.name) for spec in FIELDS.values()}
_OPS = {"=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
Order = tuple[tuple[FieldSpec, bool], ...]


class _Sql:
    """Collects parameters; each call returns the typed placeholder of the value it was given."""

    def __init__(self, params: list[Any]) -> None:
        self.params = params

    def __call__(self, value: Any, sql_type: str = "") -> str:
        self.params.append(value)
        sql_type = sql_type or _TYPES.get(type(value), "text")
        return f"${len(self.params)}::{sql_type}"


_TYPES = {Decimal: "numeric", datetime: "timestamptz", int: "bigint", str: "text"}


def _column(c: Comparison, p: _Sql, columns: Mapping[str, str]) -> str:
    if c.metadata_key:
        return f'(metadata ->> {p(c.metadata_key)}) COLLATE "C"'
    return columns[c.field.name]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Collations whose lower() folds Unicode letters, best first: ICU, PostgreSQL 17's builtin C.UTF-8, glibc's
# C.UTF-8. The columns themselves stay "C" (byte order); only contains-comparisons fold through one of these.
FOLD_COLLATIONS = ("und-x-icu", "pg_c_utf8", "C.utf8", "C.UTF-8")


async def fold_collation(conn: asyncpg.Connection) -> str:
    """The first of FOLD_COLLATIONS this server has for the database's encoding; "" when none (then
    contains-comparisons fall back to ILIKE, which folds ASCII only under the "C" collation)."""
    rows = await conn.fetch(
        "SELECT collname FROM pg_collation WHERE collname = ANY($1::text[]) "
        "AND collencoding IN (-1, (SELECT encoding FROM pg_database WHERE datname = current_database()))",
        list(FOLD_COLLATIONS),
    )
    have = {r["collname"] for r in rows}
    return next((name for name in FOLD_COLLATIONS if name in have), "")


def _contains(col: str, pattern: str, fold: str) -> str:
    if not fold:
        return f"{col} ILIKE {pattern}"
    assert fold in FOLD_COLLATIONS  # an identifier from our own list, never client text
    return f'lower({col} COLLATE "{fold}") LIKE lower({pattern} COLLATE "{fold}")'


def _comparison(c: Comparison, p: _Sql, columns: Mapping[str, str], fold: str = "") -> str:
    col = _column(c, p, columns)
    nullable = c.field.nullable
    if c.value is None:
        return f"{col} IS NULL" if c.op == "=" else f"{col} IS NOT NULL"
    if c.op == "!=":
        if isinstance(c.value, DayRange):
            return f"({col} IS NULL OR {col} < {p(c.value.start)} OR {col} >= {p(c.value.end)})"
        return f"{col} IS DISTINCT FROM {p(c.value, 'uuid' if c.field.kind is Kind.ID else '')}"
    if c.op == "~":
        sql = _contains(col, p("%" + _escape_like(str(c.value)) + "%"), fold)
    elif isinstance(c.value, DayRange):
        start, end = c.value.start, c.value.end
        if c.op == "=":
            sql = f"({col} >= {p(start)} AND {col} < {p(end)})"
        else:  # a day's bounds: < day, <= day, > day, >= day
            bound, sql_op = {"<": (start, "<"), "<=": (end, "<"), ">": (end, ">="), ">=": (start, ">=")}[c.op]
            sql = f"{col} {sql_op} {p(bound)}"
    else:
        sql = f"{col} {_OPS[c.op]} {p(c.value, 'uuid' if c.field.kind is Kind.ID else '')}"
    # Two-valued logic: a comparison with a NULL column is false, so NOT(...) of it is true.
    return f"({col} IS NOT NULL AND {sql})" if nullable else sql


def compile_filter(node: Node, params: list[Any], columns: Mapping[str, str] = COLUMNS, fold: str = "") -> str:
    """`fold`: a collation of FOLD_COLLATIONS for case-insensitive contains, or "" for ILIKE."""
    p = _Sql(params)

    def walk(n: Node) -> str:
        if isinstance(n, Comparison):
            return _comparison(n, p, columns, fold)
        if isinstance(n, Not):
            return f"NOT ({walk(n.item)})"
        joiner = " AND " if isinstance(n, And) else " OR "
        assert isinstance(n, And | Or)
        return "(" + joiner.join(walk(i) for i in n.items) + ")"

    return walk(node)


# -- keyset pages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the sort key values and the id of its last invoice."""

    keys: tuple[Any, ...]
    id: str


def order_sql(order: Order, columns: Mapping[str, str] = COLUMNS, id_column: str = "id") -> str:
    # PostgreSQL defaults (ASC NULLS LAST, DESC NULLS FIRST) match a plain btree scan either way.
    parts = [f"{columns[f.name]} {'DESC' if desc else 'ASC'}" for f, desc in order]
    parts.append(f"{id_column} {'DESC' if order[-1][1] else 'ASC'}")
    return ", ".join(parts)


def _after(order: Order, pos: Position, p: _Sql, columns: Mapping[str, str] = COLUMNS, id_column: str = "id") -> str:
    """Rows strictly after `pos` in `order` (lexicographic, null-aware), as one predicate."""
    ors: list[str] = []
    equal: list[str] = []
    for (spec, desc), value in zip(order, pos.keys, strict=True):
        col = columns[spec.name]
        if value is None:
            # ASC puts NULLs last: nothing but NULLs follows. DESC puts them first: every value follows.
            beyond = None if not desc else f"{col} IS NOT NULL"
            same = f"{col} IS NULL"
        else:
            ph = p(value)
            beyond = f"{col} {'<' if desc else '>'} {ph}"
            if spec.nullable and not desc:
                beyond = f"({beyond} OR {col} IS NULL)"
            same = f"{col} = {ph}"
        if beyond:
            ors.append("(" + " AND ".join([*equal, beyond]) + ")")
        equal.append(same)
    ors.append("(" + " AND ".join([*equal, f"{id_column} {'<' if order[-1][1] else '>'} {p(pos.id, 'uuid')}"]) + ")")
    clause = "(" + " OR ".join(ors) + ")"
    first, first_desc = order[0]
    if not first.nullable and pos.keys[0] is not None:
        # A redundant bound on the leading key lets the index start its scan at the position.
        clause = f"{columns[first.name]} {'<=' if first_desc else '>='} {p(pos.keys[0])} AND {clause}"
    return clause


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes  # the batch's stored documents, concatenated in order
    taken: int  # invoices in body
    more: bool  # whether rows follow the batch
    last: Position | None  # where the batch ends
    missing: list[str]  # ids in the batch without a stored document of the current version
    snapshot: str = ""  # the snapshot later pages keep to (orders by a key that can change), else ""


# Sort keys no write ever changes: paging by them needs no snapshot (an invoice keeps its place).
FIXED_KEYS = frozenset({"create_time"})


def needs_snapshot(order: Order) -> bool:
    """Whether an invoice could move across a page boundary while a client pages in this order."""
    return any(spec.name not in FIXED_KEYS for spec, _ in order)


def page_query(
    company_id: str,
    node: Node | None,
    order: Order,
    after: Position | None,
    limit: int,
    fold: str = "",
    snapshot: str | None = None,
) -> tuple[str, list[Any]]:
    """`snapshot`: None, no snapshot; "" (a first page), also select the statement's snapshot; else keep
    to rows whose last write is visible in it, i.e. unchanged since the first page was read."""
    params: list[Any] = [company_id]
    p = _Sql(params)
    where = ["company_id = $1"]
    if node is not None:
        where.append(compile_filter(node, params, fold=fold))
    if after is not None:
        where.append(_after(order, after, p))
    if snapshot:
        where.append(f"pg_visible_in_snapshot(write_xact::text::xid8, {p(snapshot)}::pg_snapshot)")
    keys = ", ".join(f"{COLUMNS[f.name]} AS k{i}" for i, (f, _) in enumerate(order))
    snap = ", (SELECT pg_current_snapshot()::text) AS snap" if snapshot == "" else ""  # once: an InitPlan
    sql = (
        f"SELECT id, {keys}, {CURRENT_DOCUMENT}{snap} FROM invoices WHERE {' AND '.join(where)} "  # noqa: S608 - constants
        f"ORDER BY {order_sql(order)} LIMIT {p(limit)}"
    )
    return sql, params


async def fetch_page(
    conn: asyncpg.Connection,
    company_id: str,
    node: Node | None,
    order: Order,
    after: Position | None,
    limit: int,
    budget: int,
    fold: str = "",
    snapshot: str | None = None,
) -> Page:
    """One batch: up to `limit` rows and `budget` bytes of documents (at least one row). Documents are
    stored ready to concatenate, so the batch body is a join of bytes, with no per-row protobuf work."""
    sql, params = page_query(company_id, node, order, after, limit + 1, fold, snapshot)
    rows = await conn.fetch(sql, *params)
    if snapshot == "":  # a first page: its statement's snapshot (also when it found no rows)
        snapshot = rows[0]["snap"] if rows else str(await conn.fetchval("SELECT pg_current_snapshot()::text"))
    taken, size = 0, 0
    for row in rows[:limit]:
        size += len(row["document"] or b"")
        if taken and size > budget:
            break
        taken += 1
    kept = rows[:taken]
    last = Position(tuple(kept[-1][f"k{i}"] for i in range(len(order))), kept[-1]["id"]) if kept else None
    missing = [r["id"] for r in kept if r["document"] is None]
    body = b"".join(r["document"] for r in kept) if not missing else b""
    return Page(body, taken, len(rows) > taken, last, missing, snapshot or "")


def keyset_query(
    table: str,
    select: str,
    columns: Mapping[str, str],
    id_column: str,
    company_id: str,
    node: Node | None,
    order: Order,
    after: Position | None,
    limit: int,
    fold: str = "",
) -> tuple[str, list[Any]]:
    """A page of any company-scoped table the filter language describes (push operations)."""
    params: list[Any] = [company_id]
    p = _Sql(params)
    where = ["company_id = $1"]
    if node is not None:
        where.append(compile_filter(node, params, columns, fold))
    if after is not None:
        where.append(_after(order, after, p, columns, id_column))
    keys = ", ".join(f"{columns[f.name]} AS k{i}" for i, (f, _) in enumerate(order))
    sql = (
        f"SELECT {select}, {keys} FROM {table} WHERE {' AND '.join(where)} "  # noqa: S608 - constants only
        f"ORDER BY {order_sql(order, columns, id_column)} LIMIT {p(limit)}"
    )
    return sql, params


async def count(conn: asyncpg.Connection, company_id: str, node: Node | None, fold: str = "") -> int:
    params: list[Any] = [company_id]
    where = "company_id = $1" + (f" AND {compile_filter(node, params, fold=fold)}" if node is not None else "")
    return int(await conn.fetchval(f"SELECT count(*) FROM invoices WHERE {where}", *params))  # noqa: S608


# -- customer summary -----------------------------------------------------------------------------

_ISSUED = "status <> 'DRAFT' AND NOT (status = 'VOID' AND void_reason = 'CANCELED')"
_UNPAID = "status IN ('SUBMITTED', 'PARTIALLY_PAID') AND amount_due > 0"


async def customer_summary(
    conn: asyncpg.Connection, company_id: str, customer_id: str, today_start: datetime
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            f"""
            SELECT currency,
                   count(*) FILTER (WHERE {_ISSUED}) AS invoiced_count,
                   coalesce(sum(total_amount) FILTER (WHERE {_ISSUED}), 0) AS invoiced_amount,
                   count(*) FILTER (WHERE {_UNPAID}) AS unpaid_count,
                   coalesce(sum(amount_due) FILTER (WHERE {_UNPAID}), 0) AS unpaid_amount,
                   count(*) FILTER (WHERE {_UNPAID} AND due_date < $3) AS overdue_count,
                   coalesce(sum(amount_due) FILTER (WHERE {_UNPAID} AND due_date < $3), 0) AS overdue_amount
            FROM invoices WHERE company_id = $1 AND customer_id = $2
            GROUP BY currency ORDER BY currency
            """,  # noqa: S608 - constants only
            company_id,
            customer_id,
            today_start,
        )
    )


def json_key(value: Any) -> Any:
    """A sort key value as it travels in a page token."""
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    return value


def from_json_key(value: Any, spec: FieldSpec) -> Any:
    """The inverse of json_key; ValueError (or TypeError, KeyError) for anything json_key cannot write."""
    if value is None:
        return None
    if spec.kind is Kind.DECIMAL:
        number = Decimal(value["d"])  # ArithmeticError for text that is no number
        if not number.is_finite() or abs(number.adjusted()) > 40:  # stored numerics are far smaller
            raise ValueError("not a stored decimal")
        return number
    if spec.kind is Kind.TIMESTAMP:
        moment = datetime.fromisoformat(value["t"])
        if moment.tzinfo is None:
            raise ValueError("not a stored timestamp")
        return moment.astimezone(UTC)  # OverflowError (an ArithmeticError) past years 1 or 9999
    if not isinstance(value, str) or "\x00" in value:  # PostgreSQL text holds no NUL
        raise ValueError("not a text key")
    return value
