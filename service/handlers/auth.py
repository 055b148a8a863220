"""Who is calling: an API key in `authorization: Bearer <key>` names the one company a call may touch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from service.domain.errors import DomainError, FieldViolation, InvalidArgument, NotFound
from service.domain.ids import new_id
from service.handlers.writes import require_company, utcnow
from service.store import api_keys as store
from service.store.api_keys import Grant

__all__ = ["Grant", "Keys", "PermissionDenied", "Unauthenticated"]

CACHE_SECONDS = 60.0
T = TypeVar("T")
log = logging.getLogger(__name__)


class Unauthenticated(DomainError):
    status_code = 401


class PermissionDenied(DomainError):
    """A valid key asked for more than it may: a write with a read-only key."""

    status_code = 403


class Keys:
    """Resolves keys to companies, with a short cache that every revocation clears (NOTIFY), and ends the
    open streams of a revoked key (each process re-checks the keys of its own streams)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._cache: dict[str, tuple[Grant, float]] = {}
        self._streams: dict[str, set[asyncio.Event]] = {}  # key -> one event per open stream
        self._checks: set[asyncio.Task[None]] = set()

    def forget(self) -> None:
        """A key was revoked somewhere: drop the cache, then end the streams whose key is gone."""
        self._cache.clear()
        if self._streams:
            task = asyncio.get_running_loop().create_task(self._recheck_streams())
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _recheck_streams(self) -> None:
        keys = list(self._streams)
        try:
            async with self.pool.acquire() as conn:
                active = await store.active(conn, keys)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("cannot re-check the keys of open streams: %s", exc)
            return
        for key in keys:
            if key not in active:
                for revoked in self._streams.get(key, ()):
                    revoked.set()

    @contextlib.contextmanager
    def stream_guard(self, authorization: str, expire_time: datetime | None = None) -> Iterator[asyncio.Event]:
        """An event set when the key of this stream is revoked, or expires, for as long as the stream is open."""
        key = authorization.partition(" ")[2].strip()
        revoked = asyncio.Event()
        self._streams.setdefault(key, set()).add(revoked)
        expiry = None
        if expire_time is not None:
            delay = max(0.0, (expire_time - utcnow()).total_seconds())
            expiry = asyncio.get_running_loop().call_later(delay, revoked.set)
        try:
            yield revoked
        finally:
            if expiry is not None:
                expiry.cancel()
            streams = self._streams.get(key)
            if streams is not None:
                streams.discard(revoked)
                if not streams:
                    del self._streams[key]

    async def grant(self, authorization: str) -> Grant:
        """The key's company and scope; cached for at most a minute, and never past the key's expiry."""
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("send `authorization: Bearer <api key>`")
        key = key.strip()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        async with self.pool.acquire() as conn:
            grant = await store.grant_of(conn, key)
        if grant is None:
            raise Unauthenticated("unknown, expired or revoked API key")
        if len(self._cache) > 10_000:
            self._cache.clear()
        until = time.monotonic() + CACHE_SECONDS
        if grant.expire_time is not None:
            until = min(until, time.monotonic() + (grant.expire_time - utcnow()).total_seconds())
        self._cache[key] = (grant, until)
        return grant

    async def company(self, authorization: str) -> str:
        return (await self.grant(authorization)).company_id


async def until_revoked(items: AsyncIterator[T], revoked: asyncio.Event) -> AsyncIterator[T]:
    """The items of a stream, ended with UNAUTHENTICATED as soon as `revoked` is set, even while the
    stream waits for its next item (a watcher idles until the next event)."""
    iterator = aiter(items)
    waiter = asyncio.ensure_future(revoked.wait())
    step: asyncio.Future[T] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(iterator))
            await asyncio.wait((step, waiter), return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                raise Unauthenticated("the API key of this stream was revoked or expired")
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        waiter.cancel()
        # Closed while waiting (a cancelled call): no orphan task, and its outcome (it may finish with
        # StopAsyncIteration or an error before the cancel lands) retrieved, never logged as unretrieved.
        if step is not None and step.done():
            _retrieve(step)
        elif step is not None:
            step.cancel()
            step.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def check_company(caller: str, requested: str) -> str:
    """The company a call acts on: the caller's (its key's). Another company's name is NOT_FOUND, never a
    hint it exists."""
    if requested and requested != caller:
        raise NotFound("company", requested)
    return caller


async def create_key(
    pool: asyncpg.Pool,
    company_id: str,
    description: str = "",
    expire_time: datetime | None = None,
    read_only: bool = False,
) -> tuple[str, str]:
    """A new key for a company: (key id, key). The key itself is shown once and never stored."""
    require_company(company_id)
    now = utcnow()
    if expire_time is not None and expire_time <= now:
        raise InvalidArgument([FieldViolation("expire_time", "must be in the future")])
    key = f"inv_{secrets.token_urlsafe(32)}"
    key_id = new_id()
    async with pool.acquire() as conn:
        await store.insert(conn, key_id, company_id, key, description, now, expire_time, read_only)
    return key_id, key


async def revoke_key(pool: asyncpg.Pool, key_id: str) -> bool:
    async with pool.acquire() as conn:
        return await store.revoke(conn, key_id, utcnow())
