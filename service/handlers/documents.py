"""Stored documents of another format version (after DOCUMENT_VERSION changes) rendered again in the
background at start, a batch at a time, so reads go back to sending them as stored. Until then a read
renders such an invoice from its rows: a stale document is never answered. (Rows without any document
are rendered when ListInvoices first reads them.)"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from service.domain.errors import DomainError
from service.domain.models import Invoice
from service.store import invoices as store

log = logging.getLogger(__name__)
BATCH = 200
PAUSE_SECONDS = 0.05  # between batches: live calls keep the pool


class DocumentRefresh:
    def __init__(self, pool: asyncpg.Pool, render: Callable[[Invoice], bytes], batch: int = BATCH) -> None:
        self.pool = pool
        self.render = render
        self.batch = batch
        self._task: asyncio.Task[int] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> int:
        """Renders every stale document again; the number rendered. A failed batch ends the run (the
        next start, or reads, take over)."""
        done = 0
        while True:
            try:
                found, rendered = await self.run_once()
            except (OSError, DomainError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("rendering stored documents again stopped: %s", exc)
                return done
            done += rendered
            if found < self.batch or not rendered:
                if done:
                    log.info("rendered %d stored documents again", done)
                return done
            await asyncio.sleep(PAUSE_SECONDS)

    async def run_once(self) -> tuple[int, int]:
        """One batch: how many stale documents it found, and how many it rendered again."""
        rendered = 0
        async with self.pool.acquire() as conn:
            stale = await store.stale_documents(conn, self.batch)
            for company_id, invoice_id in stale:
                inv = await store.load_invoice(conn, company_id, invoice_id)
                if inv is not None:
                    await store.save_document(conn, inv, self.render(inv))
                    rendered += 1
        return len(stale), rendered
