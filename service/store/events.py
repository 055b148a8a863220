"""The change feed: appended by the writer's statement (the unit of work's commit), sequenced in commit
order, read by position."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from service.store.statement import Piece, insert

NEW = "invoice_events_new"  # NOTIFY channel: rows were appended (sent at the writer's commit)
# NOTIFY channel: positions were given; one notification per company, the payload "<position> <company_id>"
# (the company's new head). Positions count per company: no lock or counter is shared between companies.
SEQUENCED = "invoice_events"


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    company_id: str
    invoice_id: str = ""
    push_operation_key: str = ""
    attachment_id: str = ""
    invoice: bytes | None = None


_FIELDS = tuple(f.name for f in fields(Event))  # each a column of invoice_events
# The select-list part of a one-statement write that announces its events: delivered at commit.
NOTIFY_NEW = f"pg_notify('{NEW}', '')"


def append_piece(events: list[Event], now: datetime) -> Piece:
    """Events as a statement piece, in order (ids, hence sequencing within a commit, follow it)."""
    rows = [{**{name: getattr(e, name) for name in _FIELDS}, "create_time": now} for e in events]
    return insert("invoice_events", rows)


def parse_head(payload: str) -> tuple[str, int]:
    """(company_id, position) of a SEQUENCED notification."""
    position, _, company_id = payload.partition(" ")
    return company_id, int(position)


async def sequence(conn: asyncpg.Connection) -> list[tuple[str, int]]:
    """Numbers every visible unnumbered event after its company's head, in id order; returns the companies
    whose head moved, with the new head.

    Each company's head row (invoice_event_heads) is its lock: taken before the numbering statement reads,
    so that statement's snapshot sees every event numbered by whoever held the row before; events committed
    before that snapshot are numbered before any committed later, so a company's positions follow commit
    order and a reader that has seen position p never misses a row < p. A company another sequencer holds is
    skipped: that one numbers it, now or on its next round (every process hears every append's NOTIFY).
    Companies never wait on each other, and there is no lock or counter shared by all of them.
    """
    async with conn.transaction():
        locked = await conn.fetch(
            """
            WITH waiting AS (SELECT DISTINCT company_id FROM invoice_events WHERE position IS NULL),
            created AS (  -- the head row of a company's first event, locked by its insertion (in company
                -- order: two sequencers creating the same rows wait on each other in one order, never in a cycle)
                INSERT INTO invoice_event_heads (company_id) SELECT company_id FROM waiting ORDER BY company_id
                ON CONFLICT (company_id) DO NOTHING RETURNING company_id
            ),
            held AS (
                SELECT company_id FROM invoice_event_heads WHERE company_id IN (SELECT company_id FROM waiting)
                FOR UPDATE SKIP LOCKED
            )
            SELECT company_id FROM created UNION SELECT company_id FROM held
            """
        )
        if not locked:
            return []
        companies = [r["company_id"] for r in locked]
        rows = await conn.fetch(
            """
            WITH numbered AS (
                SELECT e.company_id, e.id,
                       h.position + row_number() OVER (PARTITION BY e.company_id ORDER BY e.id) AS pos
                FROM invoice_events e JOIN invoice_event_heads h ON h.company_id = e.company_id
                WHERE e.position IS NULL AND e.company_id = ANY($1::text[])
            ),
            done AS (
                UPDATE invoice_events e SET position = n.pos FROM numbered n
                WHERE e.company_id = n.company_id AND e.id = n.id
                RETURNING e.company_id, e.position
            ),
            moved AS (
                UPDATE invoice_event_heads h SET position = d.top
                FROM (SELECT company_id, max(position) AS top FROM done GROUP BY company_id) d
                WHERE h.company_id = d.company_id
                RETURNING h.company_id, h.position
            )
            SELECT company_id, position FROM moved
            """,
            companies,
        )
        if rows:
            # Its own statement, on no table: on Citus it runs on the coordinator, where the hubs LISTEN.
            await conn.execute(
                "SELECT pg_notify($1, p) FROM unnest($2::text[]) p",
                SEQUENCED,
                [f"{r['position']} {r['company_id']}" for r in rows],
            )
        return [(r["company_id"], int(r["position"])) for r in rows]


async def head(conn: asyncpg.Connection, company_id: str) -> int:
    """The company's last given position (0 before its first event)."""
    value = await conn.fetchval("SELECT position FROM invoice_event_heads WHERE company_id = $1", company_id)
    return int(value or 0)


async def heads(conn: asyncpg.Connection, companies: list[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT company_id, position FROM invoice_event_heads WHERE company_id = ANY($1::text[])", companies
    )
    return {r["company_id"]: int(r["position"]) for r in rows}


EVENT_OVERHEAD = 256  # bytes of an event's own fields on the wire, beside the invoice it may carry


async def read(
    conn: asyncpg.Connection, company_id: str, after: int, types: list[str], invoice_id: str, limit: int, budget: int
) -> tuple[list[asyncpg.Record], int]:
    """Up to `limit` events past `after`, cut where their size would pass `budget` bytes (at least one), and
    the company's purge horizon (every event up to it is gone; 0 when none was purged), from the same
    snapshot: a purge that removed events past `after` is seen, never a silent gap.

    Sizes come from octet_length, which reads no TOASTed invoice; only the events kept are fetched whole."""
    rows = await conn.fetch(
        "WITH purged AS (SELECT coalesce((SELECT purged FROM invoice_event_heads WHERE company_id = $1), 0) AS p), "
        "next AS ("
        "  SELECT id, position, sum(coalesce(octet_length(invoice), 0) + $6) OVER (ORDER BY position) AS upto"
        "  FROM invoice_events WHERE company_id = $1 AND position > $2"
        "  AND (cardinality($3::text[]) = 0 OR type = ANY($3::text[])) AND ($4 = '' OR invoice_id = $4)"
        "  ORDER BY position LIMIT $5"
        "), "
        "kept AS ("
        "  SELECT e.position, e.type, e.company_id, e.invoice_id, e.push_operation_key, e.attachment_id, e.invoice,"
        "  e.create_time FROM next JOIN invoice_events e ON e.company_id = $1 AND e.id = next.id"
        "  WHERE next.upto <= $7 OR next.position = (SELECT min(position) FROM next)"
        ") "
        "SELECT purged.p AS purged, kept.* FROM purged LEFT JOIN kept ON true ORDER BY kept.position",
        company_id,
        after,
        types,
        invoice_id,
        limit,
        EVENT_OVERHEAD,
        budget,
    )
    purged = int(rows[0]["purged"]) if rows else 0
    return [r for r in rows if r["position"] is not None], purged


async def purge(conn: asyncpg.Connection, cutoff: datetime, batch: int) -> int:
    """Deletes about `batch` of the oldest events created before `cutoff`, per company a prefix of its
    positions (never past an event created since `cutoff`), and raises each company's purge horizon to the
    last position deleted, in the same statement: a watcher behind the horizon is told it lost events.

    The candidates are the oldest by time; for each company, what goes is its positions up to the last
    candidate, stopped before the first one that is not old enough (commit order and creation time may
    differ by a transaction's length)."""
    result = await conn.fetchval(
        """
        WITH candidates AS (
            SELECT company_id, max(position) AS upto FROM (
                SELECT company_id, position FROM invoice_events
                WHERE position IS NOT NULL AND create_time < $1 ORDER BY create_time LIMIT $2
            ) c GROUP BY company_id
        ),
        bounds AS (
            SELECT c.company_id,
                   least(c.upto, coalesce(min(e.position) FILTER (WHERE e.create_time >= $1) - 1, c.upto)) AS upto
            FROM candidates c JOIN invoice_events e ON e.company_id = c.company_id AND e.position <= c.upto
            GROUP BY c.company_id, c.upto
        ),
        gone AS (
            DELETE FROM invoice_events e USING bounds b
            WHERE e.company_id = b.company_id AND e.position <= b.upto
            RETURNING e.company_id, e.position
        ),
        horizon AS (
            UPDATE invoice_event_heads h SET purged = g.top
            FROM (SELECT company_id, max(position) AS top FROM gone GROUP BY company_id) g
            WHERE h.company_id = g.company_id AND g.top > h.purged
        )
        SELECT count(*) FROM gone
        """,
        cutoff,
        batch,
    )
    return int(result)


async def invoice_id_of_number(conn: asyncpg.Connection, company_id: str, number: str) -> str | None:
    """The id of the company's invoice with this number, if any (a watch names an invoice by either)."""
    found = await conn.fetchval(
        "SELECT id::text FROM invoices WHERE company_id = $1 AND invoice_number = $2", company_id, number
    )
    return None if found is None else str(found)
