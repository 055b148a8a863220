"""What the operational gauges read from the database: queue depths and ages, in one round trip.

Each count walks an index (the partial indexes on PENDING operations and on unsequenced events) except
the push operations by status, a scan of that table; the caller queries at most every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg


@dataclass(frozen=True, slots=True)
class Stats:
    push_operations: dict[str, int] = field(default_factory=dict)  # status -> count
    oldest_pending_seconds: float = 0.0
    unsequenced_events: int = 0
    sequencer_lag_seconds: float = 0.0  # age of the oldest event still waiting for a position
    idempotency_keys: int = 0
    mail_outbox: int = 0  # sends queued or under way


_QUERY = """
SELECT
    (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
       FROM (SELECT status, count(*) AS n FROM push_operations GROUP BY status) s) AS by_status,
    (SELECT coalesce(extract(epoch FROM now() - min(requested_on_utc)), 0)
       FROM push_operations WHERE status = 'PENDING') AS oldest_pending,
    (SELECT count(*) FROM invoice_events WHERE position IS NULL) AS unsequenced,
    (SELECT coalesce(extract(epoch FROM now() - min(create_time)), 0)
       FROM invoice_events WHERE position IS NULL) AS lag,
    (SELECT count(*) FROM idempotency_keys) AS idempotency_keys,
    (SELECT count(*) FROM mail_outbox WHERE status IN ('QUEUED', 'SENDING')) AS mail_outbox
"""


async def read(conn: asyncpg.Connection) -> Stats:
    row = await conn.fetchrow(_QUERY)
    return Stats(
        push_operations={str(k): int(v) for k, v in row["by_status"].items()},
        oldest_pending_seconds=max(0.0, float(row["oldest_pending"])),
        unsequenced_events=int(row["unsequenced"]),
        sequencer_lag_seconds=max(0.0, float(row["lag"])),
        idempotency_keys=int(row["idempotency_keys"]),
        mail_outbox=int(row["mail_outbox"]),
    )
