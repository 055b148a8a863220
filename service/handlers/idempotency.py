"""AIP-155 request ids: the first answer (success or refusal) is replayed; a reused key with another
request is refused; a key whose first call is still running is ABORTED."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from service.domain.errors import Aborted, FieldViolation, InvalidArgument
from service.handlers.writes import utcnow
from service.store import idempotency as store
from service.store.db import connection

MAX_KEY = 128


@dataclass(frozen=True, slots=True)
class Replay:
    response: bytes | None  # the serialized response of the first call, or
    status: bytes | None  # the serialized google.rpc.Status it was refused with


class Idempotency:
    def __init__(self, pool: asyncpg.Pool, ttl: timedelta) -> None:
        self.pool = pool
        self.ttl = ttl

    @staticmethod
    def check_key(key: str) -> None:
        if len(key) > MAX_KEY or not key.isprintable():
            raise InvalidArgument([FieldViolation("request_id", f"must be 1-{MAX_KEY} printable characters")])

    async def begin(self, company_id: str, key: str, method: str, body: bytes) -> Replay | None:
        """None: this call owns the key and should run. A Replay: answer with it instead."""
        self.check_key(key)
        digest = hashlib.sha256(body).hexdigest()
        async with connection(self.pool) as conn:
            claim = await store.claim(conn, company_id, key, method, digest, utcnow(), self.ttl)
        if claim.first:
            return None
        if claim.request_hash != f"{method}:{digest}":
            raise InvalidArgument([FieldViolation("request_id", "was already used with a different request")])
        if claim.state != "DONE":
            raise Aborted("the first request with this request_id is still running; retry later")
        return Replay(claim.response, claim.status)

    async def finish(self, company_id: str, key: str, response: bytes | None, status: bytes | None) -> None:
        async with connection(self.pool) as conn:
            await store.finish(conn, company_id, key, response, status)

    async def release(self, company_id: str, key: str) -> None:
        async with connection(self.pool) as conn:
            await store.release(conn, company_id, key)
