"""A whole write as one SQL statement: each part a data-modifying CTE with its own parameters.

One statement is atomic on its own, so a write made of inserts needs no BEGIN and COMMIT round trips:
the invoice, its lines and taxes, its push operation and its events go to PostgreSQL in one message and
commit together, or not at all. PostgreSQL runs every data-modifying CTE exactly once, to completion,
whether or not the final query reads it; foreign keys between them are checked at the end of the statement.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from service.store import schema

_PARAM = re.compile(r"\$(\d+)")


@dataclass(frozen=True, slots=True)
class Piece:
    """One INSERT of the statement; its parameters are numbered from $1 as if it stood alone."""

    sql: str
    args: tuple[Any, ...]


def array_type(table: str, column: str) -> str:
    """The PostgreSQL array type for unnest() parameters of a column, from the schema (collation dropped)."""
    col: sa.Column[Any] = schema.metadata.tables[table].c[column]
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return col.type.compile(dialect=dialect).split(" COLLATE", 1)[0] + "[]"


def unnest_insert(table: str, columns: Sequence[str], constant: Sequence[str] = ()) -> str:
    """INSERT of one row per array element, in array order; `constant` columns take one scalar each."""
    arrays = ", ".join(f"${i}::{array_type(table, c)}" for i, c in enumerate(columns, start=1))
    scalars = [f"${i}" for i in range(len(columns) + 1, len(columns) + len(constant) + 1)]
    names = ", ".join(f"u{i}" for i in range(len(columns)))
    select = ", ".join([*(f"u{i}" for i in range(len(columns))), *scalars])
    return (
        f"INSERT INTO {table} ({', '.join([*columns, *constant])}) "  # noqa: S608 - constant names
        f"SELECT {select} FROM unnest({arrays}) WITH ORDINALITY AS u({names}, ord) ORDER BY ord"
    )


def _shift(by: int) -> Callable[[re.Match[str]], str]:
    return lambda m: f"${int(m.group(1)) + by}"


@lru_cache(maxsize=64)
def _compose(texts: tuple[str, ...], final: str) -> str:
    parts, offset = [], 0
    for i, text in enumerate(texts):
        shifted = _PARAM.sub(_shift(offset), text)
        parts.append(f"w{i} AS ({shifted})")
        offset += max((int(n) for n in _PARAM.findall(text)), default=0)
    return f"WITH {', '.join(parts)} {final}"


async def execute(conn: asyncpg.Connection, pieces: Sequence[Piece], final: str) -> None:
    """Runs the pieces and `final` (a SELECT, e.g. a pg_notify) as one statement, outside any transaction."""
    sql = _compose(tuple(p.sql for p in pieces), final)
    await conn.execute(sql, *(a for p in pieces for a in p.args))
