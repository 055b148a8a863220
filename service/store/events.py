"""The change feed: append in the writer's transaction, sequence in commit order, read by position."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.store.statement import Piece, unnest_insert

NEW = "invoice_events_new"  # NOTIFY channel: rows were appended (sent at the writer's commit)
SEQUENCED = "invoice_events"  # NOTIFY channel: positions were given; the payload is the highest
SEQUENCER_LOCK = 7_243_002  # one sequencer at a time across every replica


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    company_id: str
    invoice_id: str = ""
    push_operation_key: str = ""
    attachment_id: str = ""
    invoice: bytes | None = None


_COLUMNS = ("company_id", "type", "invoice_id", "push_operation_key", "attachment_id", "invoice")
_APPEND = unnest_insert("invoice_events", _COLUMNS, constant=("create_time",))
# The last part of a one-statement write: its events' NOTIFY, delivered when the statement commits.
NOTIFY_NEW = f"SELECT pg_notify('{NEW}', '')"


def append_piece(events: list[Event], now: datetime) -> Piece:
    """Events as a statement piece, in order (ids, hence sequencing within a commit, follow it)."""
    columns = tuple(
        [getattr(e, c) for e in events] for c in _COLUMNS
    )  # fmt: skip
    return Piece(_APPEND, (*columns, now))


async def append(conn: asyncpg.Connection, events: list[Event], now: datetime) -> None:
    """Appends events in the caller's transaction; the NOTIFY goes out when it commits."""
    piece = append_piece(events, now)
    await conn.execute(piece.sql, *piece.args)
    await conn.execute(f"NOTIFY {NEW}")


async def sequence(conn: asyncpg.Connection) -> int:
    """Numbers every visible unnumbered event after the highest position, in id order; returns the highest.

    Under the lock, rows committed before this transaction's snapshot are numbered before any committed
    later, so positions follow commit order and a reader that has seen position p never misses a row < p.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SEQUENCER_LOCK)
        top = await conn.fetchval(
            """
            WITH base AS (SELECT coalesce(max(position), 0) AS b FROM invoice_events),
            numbered AS (
                SELECT id, (SELECT b FROM base) + row_number() OVER (ORDER BY id) AS pos
                FROM invoice_events WHERE position IS NULL
            ),
            done AS (
                UPDATE invoice_events e SET position = n.pos FROM numbered n WHERE e.id = n.id RETURNING e.position
            )
            SELECT max(position) FROM done
            """
        )
        if top is not None:
            await conn.execute("SELECT pg_notify($1, $2)", SEQUENCED, str(top))
        return int(top or 0)


async def head(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM invoice_events"))


EVENT_OVERHEAD = 256  # bytes of an event's own fields on the wire, beside the invoice it may carry


async def read(
    conn: asyncpg.Connection, company_id: str, after: int, types: list[str], invoice_id: str, limit: int, budget: int
) -> tuple[list[asyncpg.Record], int]:
    """Up to `limit` events past `after`, cut where their size would pass `budget` bytes (at least one), and
    the oldest position kept (0 when none), from the same snapshot: a purge that removed events past
    `after` is seen, never a silent gap.

    Sizes come from octet_length, which reads no TOASTed invoice; only the events kept are fetched whole."""
    rows = await conn.fetch(
        "WITH oldest AS (SELECT coalesce(min(position), 0) AS p FROM invoice_events), "
        "next AS ("
        "  SELECT id, position, sum(coalesce(octet_length(invoice), 0) + $6) OVER (ORDER BY position) AS upto"
        "  FROM invoice_events WHERE company_id = $1 AND position > $2"
        "  AND (cardinality($3::text[]) = 0 OR type = ANY($3::text[])) AND ($4 = '' OR invoice_id = $4)"
        "  ORDER BY position LIMIT $5"
        "), "
        "kept AS ("
        "  SELECT e.position, e.type, e.company_id, e.invoice_id, e.push_operation_key, e.attachment_id, e.invoice,"
        "  e.create_time FROM next JOIN invoice_events e ON e.id = next.id"
        "  WHERE next.upto <= $7 OR next.position = (SELECT min(position) FROM next)"
        ") "
        "SELECT oldest.p AS oldest, kept.* FROM oldest LEFT JOIN kept ON true ORDER BY kept.position",
        company_id, after, types, invoice_id, limit, EVENT_OVERHEAD, budget,
    )  # fmt: skip
    oldest = int(rows[0]["oldest"]) if rows else 0
    return [r for r in rows if r["position"] is not None], oldest


async def purge(conn: asyncpg.Connection, cutoff: datetime, batch: int) -> int:
    """Deletes up to `batch` of the oldest events created before `cutoff`, as a prefix of positions (so the
    oldest kept position tells a watcher exactly what is gone); the head is always kept, because the
    sequencer numbers on from it."""
    result = await conn.execute(
        """
        WITH head AS (SELECT max(position) AS h FROM invoice_events),
        first AS (
            SELECT position, create_time FROM invoice_events WHERE position IS NOT NULL ORDER BY position LIMIT $2
        ),
        stop AS (SELECT min(position) AS s FROM first WHERE create_time >= $1)
        DELETE FROM invoice_events WHERE position IN (SELECT position FROM first)
        AND position < coalesce((SELECT s FROM stop), (SELECT h FROM head))
        """,
        cutoff,
        batch,
    )
    return int(result.split()[-1])


async def invoice_id_of_number(conn: asyncpg.Connection, company_id: str, number: str) -> str | None:
    """The id of the company's invoice with this number, if any (a watch names an invoice by either)."""
    found = await conn.fetchval(
        "SELECT id::text FROM invoices WHERE company_id = $1 AND invoice_number = $2", company_id, number
    )
    return None if found is None else str(found)
