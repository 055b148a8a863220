"""Who is calling: an API key in `authorization: Bearer <key>` names the one company a call may touch."""

from __future__ import annotations

import secrets
import time
from contextvars import ContextVar

import asyncpg

from service.domain.errors import DomainError, NotFound
from service.handlers.writes import require_company, utcnow
from service.store import api_keys as store
from service.store.invoices import new_id

CALLER_COMPANY: ContextVar[str | None] = ContextVar("caller_company", default=None)
CACHE_SECONDS = 60.0


class Unauthenticated(DomainError):
    status_code = 401


class Keys:
    """Resolves keys to companies, with a short cache that every revocation clears (NOTIFY)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._cache: dict[str, tuple[str, float]] = {}

    def forget(self) -> None:
        self._cache.clear()

    async def company(self, authorization: str) -> str:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("send `authorization: Bearer <api key>`")
        key = key.strip()
        hit = self._cache.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        async with self.pool.acquire() as conn:
            company = await store.company_of(conn, key)
        if company is None:
            raise Unauthenticated("unknown or revoked API key")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (company, time.monotonic() + CACHE_SECONDS)
        return company


def check_company(requested: str) -> str:
    """The company a call acts on: the key's. Another company's name is NOT_FOUND, never a hint it exists."""
    caller = CALLER_COMPANY.get()
    if caller is None:
        return requested
    if requested and requested != caller:
        raise NotFound("company", requested)
    return caller


async def create_key(pool: asyncpg.Pool, company_id: str, description: str = "") -> tuple[str, str]:
    """A new key for a company: (key id, key). The key itself is shown once and never stored."""
    require_company(company_id)
    key = f"inv_{secrets.token_urlsafe(32)}"
    key_id = new_id()
    async with pool.acquire() as conn:
        await store.insert(conn, key_id, company_id, key, description, utcnow())
    return key_id, key


async def revoke_key(pool: asyncpg.Pool, key_id: str) -> bool:
    async with pool.acquire() as conn:
        return await store.revoke(conn, key_id, utcnow())
