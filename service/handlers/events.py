"""The live change feed: one LISTEN connection per process wakes every local watcher.

Writers append events and NOTIFY at commit. The hub's sequencer numbers new events per company (one
sequencer at a time per company across replicas, holding the company's head row; companies never wait on
each other) and NOTIFYs each company's new head; watchers, each scoped to one company, read past their
cursor and sleep until their company's head moves. No polling: a watcher wakes only when a position of its
company was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from service.domain.errors import NotFound, OutOfRange
from service.domain.ids import parse_id
from service.domain.push import EventType, PushOperation
from service.handlers.writes import require_company
from service.store import events as store
from service.store import push_operations as push_store

log = logging.getLogger(__name__)
BATCH = 500
# Bytes of events per streamed message: under what any client accepts by default (4 MB), with room for
# the message's framing. An event carrying an invoice (COMMUNICATION_TRIGGERED) is at most
# MAX_INVOICE_BYTES, so one always fits.
BATCH_BYTES = 4 * 1024 * 1024 - 256 * 1024
# Seconds from the start of one sequencing round to the next, at least: what a watcher may wait longer for
# an event while writes keep coming.
SEQUENCE_SPACING = 0.01


@dataclass(frozen=True, slots=True)
class FeedEvent:
    cursor: int
    type: EventType
    company_id: str
    invoice_id: str
    push_operation_key: str
    attachment_id: str
    create_time: datetime
    invoice: bytes | None  # the stored invoice document, for COMMUNICATION_TRIGGERED


@dataclass(slots=True)
class _Feed:
    head: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    watchers: int = 0


class EventHub:
    def __init__(self, pool: asyncpg.Pool, url: str, batch_bytes: int = BATCH_BYTES) -> None:
        if not url:  # asyncpg would fall back to libpq's defaults: another server, or none
            raise ValueError("the event hub needs the URL of the database the pool connects to")
        self.pool = pool
        self.url = url
        self.batch_bytes = batch_bytes
        # The companies that local watchers follow: their last known head and the event that wakes them.
        self._watched: dict[str, _Feed] = {}
        self._dirty = asyncio.Event()
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        self._conn: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def subscribe(self, channel: str, callback: Callable[[], None]) -> None:
        """Other parts (the push operation workers) listen on the same connection; subscribe before start()."""
        if self._conn is not None:
            raise RuntimeError("subscribe before the hub starts listening")
        self._listeners.setdefault(channel, []).append(callback)

    async def start(self) -> None:
        await self._connect()
        self._tasks = [asyncio.create_task(self._sequencer()), asyncio.create_task(self._keep_listening())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    async def ping(self, seconds: float) -> bool:
        """Whether the database answers on this process's LISTEN connection (health checks)."""
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            return bool(await conn.fetchval("SELECT true", timeout=seconds))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=5)
        await conn.add_listener(store.NEW, self._on_new)
        await conn.add_listener(store.SEQUENCED, self._on_sequenced)
        for channel in self._listeners:
            await conn.add_listener(channel, self._on_other)
        self._conn = conn
        if self._watched:  # heads given while nobody listened
            async with self.pool.acquire() as c:
                for company_id, head in (await store.heads(c, list(self._watched))).items():
                    self._advance(company_id, head)
        self._dirty.set()  # whatever was appended while nobody listened
        for callbacks in self._listeners.values():
            for callback in callbacks:
                callback()

    async def _keep_listening(self) -> None:
        """Reconnects the LISTEN connection if it drops (database restart)."""
        while True:
            await asyncio.sleep(1)
            if self._conn is None or self._conn.is_closed():
                try:
                    await self._connect()
                    log.info("event listener reconnected")
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("event listener cannot reconnect yet: %s", exc)

    def _on_new(self, *_: object) -> None:
        self._dirty.set()

    def _on_sequenced(self, _conn: object, _pid: object, _channel: object, payload: object) -> None:
        self._advance(*store.parse_head(str(payload)))

    def _on_other(self, _conn: object, _pid: object, channel: object, _payload: object) -> None:
        for callback in self._listeners.get(str(channel), []):
            callback()

    def _advance(self, company_id: str, head: int) -> None:
        feed = self._watched.get(company_id)
        if feed is not None and head > feed.head:
            feed.head = head
            changed, feed.changed = feed.changed, asyncio.Event()
            changed.set()

    async def _sequencer(self) -> None:
        loop = asyncio.get_running_loop()
        last = -SEQUENCE_SPACING
        while True:
            await self._dirty.wait()
            # Under a steady stream of writes one round numbers the events of several (a round is five
            # round trips); a write after a quiet spell is numbered at once.
            if (pause := last + SEQUENCE_SPACING - loop.time()) > 0:
                await asyncio.sleep(pause)
            self._dirty.clear()
            last = loop.time()
            try:
                async with self.pool.acquire() as conn:
                    for company_id, head in await store.sequence(conn):
                        self._advance(company_id, head)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("sequencing events failed, retrying: %s", exc)
                await asyncio.sleep(0.5)
                self._dirty.set()

    @contextlib.asynccontextmanager
    async def _follow(self, company_id: str) -> AsyncIterator[_Feed]:
        """The company's feed for one watcher, its head read from the database once it is followed (so no
        notification falls in between); forgotten when its last watcher leaves."""
        feed = self._watched.get(company_id)
        if feed is None:
            feed = self._watched[company_id] = _Feed()
        feed.watchers += 1
        try:
            async with self.pool.acquire() as conn:
                self._advance(company_id, await store.head(conn, company_id))
            yield feed
        finally:
            feed.watchers -= 1
            if feed.watchers == 0 and self._watched.get(company_id) is feed:
                del self._watched[company_id]

    # -- reading ----------------------------------------------------------------------------

    async def _invoice_key(self, company_id: str, key: str) -> str:
        """An invoice key as every invoiceId takes it: the id (any letter case; also of a deleted invoice,
        whose events stay) or else the number of an invoice of the company."""
        canonical = parse_id(key)
        if canonical is not None:
            return canonical
        async with self.pool.acquire() as conn:
            found = await store.invoice_id_of_number(conn, company_id, key)
        if found is None:
            raise NotFound("invoice", key)
        return found

    async def watch(
        self, company_id: str, after: int, from_now: bool, types: list[str], invoice_id: str
    ) -> AsyncIterator[list[FeedEvent]]:
        """Batches of events past `after`, in position (commit) order, live; never repeats, never skips."""
        require_company(company_id)
        if after < 0:
            raise OutOfRange("must not be negative", "after_cursor")
        if invoice_id:
            invoice_id = await self._invoice_key(company_id, invoice_id)
        async with self._follow(company_id) as feed:
            async for batch in self._watch(feed, company_id, after, from_now, types, invoice_id):
                yield batch

    async def _watch(
        self, feed: _Feed, company_id: str, after: int, from_now: bool, types: list[str], invoice_id: str
    ) -> AsyncIterator[list[FeedEvent]]:
        cursor = feed.head if from_now else after
        while True:
            seen = feed.head
            async with self.pool.acquire() as conn:
                rows, purged = await store.read(conn, company_id, cursor, types, invoice_id, BATCH, self.batch_bytes)
            if cursor and cursor < purged:  # every event up to `purged` is gone: some after `cursor` were lost
                raise OutOfRange(
                    f"events after cursor {cursor} are no longer kept (those up to {purged} were purged; events "
                    "are kept for EVENT_RETENTION_DAYS): resume from 0 (the oldest kept) or with from_now",
                    "after_cursor",
                )
            if rows:
                cursor = rows[-1]["position"]
                yield [
                    FeedEvent(
                        r["position"],
                        EventType(r["type"]),
                        r["company_id"],
                        r["invoice_id"],
                        r["push_operation_key"],
                        r["attachment_id"],
                        r["create_time"],
                        r["invoice"],
                    )
                    for r in rows
                ]
            else:  # nothing for this watcher up to `seen`: sleep until a later position is given
                while feed.head <= seen:
                    await feed.changed.wait()

    async def watch_push_operations(
        self, company_id: str, after: int, from_now: bool, statuses: set[str]
    ) -> AsyncIterator[list[tuple[int, PushOperation]]]:
        kind = [EventType.PUSH_OPERATION_STATUS_CHANGED.value]
        async for batch in self.watch(company_id, after, from_now, kind, ""):
            async with self.pool.acquire() as conn:
                ops = await push_store.get_many(conn, company_id, [e.push_operation_key for e in batch])
            out = [(e.cursor, ops[e.push_operation_key]) for e in batch if e.push_operation_key in ops]
            out = [(c, op) for c, op in out if not statuses or op.status.value in statuses]
            if out:
                yield out
