"""A whole write as one SQL statement: each part a data-modifying CTE with its own parameters.

One statement is atomic on its own, so a write made of inserts needs no BEGIN and COMMIT round trips:
the invoice, its lines and taxes, its push operation and its events go to PostgreSQL in one message and
commit together, or not at all. Inside a transaction (a write that read and locked first) the same form
makes the whole write one round trip. PostgreSQL runs every data-modifying CTE exactly once, to
completion, whether or not the final query reads it; foreign keys between them are checked at the end of
the statement.

Every INSERT of the service is built here, by `insert`, with its columns taken from the schema.

Optimistic writes (`execute_guarded`) read first without a transaction and then write in one statement
whose first parts, the guards, check that what was read is still so: each guard selects one row and locks
it (or, the last one, makes the one write that may not apply: a company's first invoice number), and
every other part runs only when the last guard gave its row (the GATE). A guard that gives none leaves the
whole statement without effect; a guard's lock keeps its row as checked until the statement commits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB

from service.store import schema

_PARAM = re.compile(r"\$(\d+)")
# Where a hand-written part (an UPDATE, a DELETE, a guard) of a guarded statement takes its condition:
# "... WHERE <conditions> GATE [RETURNING ...]". A comment, so the same text runs unguarded as it is.
GATE = "/*gate*/"
Row = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Piece:
    """One part of the statement; its parameters are numbered from $1 as if it stood alone. A piece with
    a `check` name ends in RETURNING and must touch exactly one row (execute reports the names that did
    not)."""

    sql: str = ""
    args: tuple[Any, ...] = ()
    check: str = ""
    # An insert(): its table and rows (values in column order), made SQL when the statement is composed.
    table: str = ""
    rows: tuple[tuple[Any, ...], ...] = ()


@lru_cache(maxsize=32)
def columns(table: str) -> tuple[str, ...]:
    """The columns a writer supplies: all of the table's but identities and those the database sets."""
    t = schema.metadata.tables[table]
    return tuple(c.name for c in t.columns if c.identity is None and c.info.get("set_by") != "server")


def _array_type(table: str, column: str) -> str:
    """The PostgreSQL array type for unnest() parameters of a column, from the schema (collation dropped)."""
    col: sa.Column[Any] = schema.metadata.tables[table].c[column]
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return col.type.compile(dialect=dialect).split(" COLLATE", 1)[0] + "[]"


@lru_cache(maxsize=32)
def _json_columns(table: str) -> frozenset[str]:
    return frozenset(c.name for c in schema.metadata.tables[table].columns if isinstance(c.type, JSONB))


@lru_cache(maxsize=32)
def _unnest_sql(table: str, gate: str = "") -> str:
    names, json_columns = columns(table), _json_columns(table)
    # JSONB values travel as text (a jsonb[] parameter would need array quoting of every document).
    arrays = ", ".join(
        f"${i}::{'text[]' if c in json_columns else _array_type(table, c)}" for i, c in enumerate(names, start=1)
    )
    aliases = [f"u{i}" for i in range(len(names))]
    values = ", ".join(f"{a}::jsonb" if c in json_columns else a for a, c in zip(aliases, names, strict=True))
    return (
        f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608 - names from the schema
        f"SELECT {values} FROM unnest({arrays}) WITH ORDINALITY AS u({', '.join(aliases)}, ord) "
        f"{f'WHERE {gate} ' if gate else ''}ORDER BY ord"
    )


@lru_cache(maxsize=32)
def _values_sql(table: str, gate: str = "") -> str:
    names = columns(table)
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    if gate:  # parameters of INSERT ... SELECT take the columns' types as those of VALUES do
        return f"INSERT INTO {table} ({', '.join(names)}) SELECT {marks} WHERE {gate}"
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608 - names from the schema


@lru_cache(maxsize=32)
def _layout(table: str) -> tuple[Callable[[Row], tuple[Any, ...]], tuple[int, ...]]:
    """A row's values in column order (one C call), and the positions of its JSONB columns."""
    names, json_columns = columns(table), _json_columns(table)
    return itemgetter(*names), tuple(i for i, c in enumerate(names) if c in json_columns)


def insert(table: str, rows: Sequence[Row]) -> Piece:
    """The one INSERT builder: rows, each with every column of `columns(table)`. The statement inserts
    all rows of a table at once: one row as VALUES, more as one unnest() over a parameter array per column
    (in their order), so a batch of any size is the same prepared statement."""
    values, _ = _layout(table)
    return Piece(table=table, rows=tuple(map(values, rows)))


def render(p: Piece, gate: str = "") -> Piece:
    """An insert() as SQL and parameters, inserting only when `gate` (an SQL condition) holds; other
    pieces as they are, their GATE replaced by `AND gate`."""
    if not p.table:
        if not gate:
            return p
        if GATE not in p.sql:
            raise ValueError(f"a part of a guarded statement has no {GATE}: {p.sql[:80]}")
        return Piece(p.sql.replace(GATE, f"AND {gate}"), p.args, p.check)
    if len(p.rows) == 1:
        return Piece(_values_sql(p.table, gate), p.rows[0], p.check)
    arrays = [list(a) for a in zip(*p.rows, strict=True)] or [[] for _ in columns(p.table)]
    for i in _layout(p.table)[1]:
        arrays[i] = [None if v is None else json.dumps(v) for v in arrays[i]]
    return Piece(_unnest_sql(p.table, gate), tuple(arrays), p.check)


def merged(pieces: Sequence[Piece], gate: str = "") -> list[Piece]:
    """The pieces as SQL, each table's inserted rows joined into its first insert (none: no insert)."""
    out: list[Piece] = []
    first: dict[str, int] = {}
    for p in pieces:
        at = first.get(p.table) if p.table else None
        if at is None:
            if p.table:
                first[p.table] = len(out)
            out.append(p)
        else:
            out[at] = Piece(table=p.table, rows=out[at].rows + p.rows)
    return [render(p, gate) for p in out if p.rows or not p.table]


def _shift(by: int) -> Callable[[re.Match[str]], str]:
    return lambda m: f"${int(m.group(1)) + by}"


def _gate(guard: int) -> str:
    """The condition that guard `guard` (numbered from 0) gave its row."""
    return f"EXISTS (SELECT FROM g{guard})"


@lru_cache(maxsize=128)
def _compose(texts: tuple[str, ...], checks: tuple[str, ...], final: str, guards: tuple[str, ...] = ()) -> str:
    parts, offset = [], 0
    named = [*(f"g{i}" for i in range(len(guards))), *(f"w{i}" for i in range(len(texts)))]
    for name, text in zip(named, (*guards, *texts), strict=True):
        shifted = _PARAM.sub(_shift(offset), text)
        parts.append(f"{name} AS ({shifted})")
        offset += max((int(n) for n in _PARAM.findall(text)), default=0)
    counts = [f"(SELECT count(*) FROM w{i}) = 1" for i, name in enumerate(checks) if name]  # noqa: S608
    select = [final, f"ARRAY[{', '.join(counts)}]::bool[]" if counts else "'{}'::bool[]"]
    if guards:  # the last column says whether it was written
        select.append(_gate(len(guards) - 1))
    return f"WITH {', '.join(parts)} SELECT {', '.join(select)}"


async def execute(conn: asyncpg.Connection, pieces: Sequence[Piece], final: str) -> list[str]:
    """Runs the pieces and `final` (a select-list expression, e.g. a pg_notify) as one statement; returns
    the checks of pieces that did not touch exactly one row."""
    pieces = merged(pieces)
    checks = tuple(p.check for p in pieces)
    sql = _compose(tuple(p.sql for p in pieces), checks, final)
    row = await conn.fetchrow(sql, *(a for p in pieces for a in p.args))
    assert row is not None
    outcome = iter(row[-1])  # the checks: the last column
    return [name for name in checks if name and not next(outcome)]


async def execute_guarded(
    conn: asyncpg.Connection, guards: Sequence[Piece], pieces: Sequence[Piece], finals: Sequence[str]
) -> list[str] | None:
    """Runs the pieces and `finals` (select-list expressions, e.g. pg_notify calls) as one statement, only
    if every guard gives its row; None when one did not (nothing was written, nothing announced), else the
    checks of pieces that did not touch exactly one row. Guard i runs only if guard i-1 gave its row: its
    GATE becomes that condition (the first one's nothing). Outside a transaction the statement commits
    alone, and a guard's lock lasts until then."""
    if not guards:
        raise ValueError("a guarded statement needs a guard")
    texts = []
    for i, g in enumerate(guards):
        if GATE not in g.sql:
            raise ValueError(f"a guard has no {GATE}: {g.sql[:80]}")
        texts.append(g.sql.replace(GATE, f"AND {_gate(i - 1)}" if i else ""))
    gate = _gate(len(guards) - 1)
    pieces = merged(pieces, gate)
    checks = tuple(p.check for p in pieces)
    final = ", ".join(f"CASE WHEN {gate} THEN {f} END" for f in finals)
    sql = _compose(tuple(p.sql for p in pieces), checks, final, tuple(texts))
    args = (*(a for g in guards for a in g.args), *(a for p in pieces for a in p.args))
    try:
        row = await conn.fetchrow(sql, *args)
    except asyncpg.LockNotAvailableError:  # a NOWAIT guard met a writer holding its row
        return None
    assert row is not None
    if not row[-1]:
        return None
    outcome = iter(row[-2])
    return [name for name in checks if name and not next(outcome)]
