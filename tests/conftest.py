"""Real parts only: a real PostgreSQL (embedded pgserver, or TEST_DATABASE_URL), the real server on a
random port in a background event loop, and real gRPC channels."""

from __future__ import annotations

import os

# The suite forks helpers (pgserver's pg_ctl runs with `user=` under root, which rules out vfork) from a
# process full of gRPC threads; gRPC's fork handlers are for children that go on using gRPC, which none
# of these do, and a child caught in them can crash before it execs. Read when grpc initialises.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import asyncio
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import grpc
import pytest
from invoices.v1 import invoice_service_pb2_grpc as svc_grpc

from service.bootstrap import Running, start_server
from service.config import Settings
from service.store.db import EmbeddedPostgres, create_pool, init_connection, migrate

TABLES = (
    "invoices", "line_items", "taxation_items", "payment_allocations", "credit_memos", "customer_credit_balances",
    "credit_entries", "invoice_number_sequences",
)  # fmt: skip


async def _create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for this test session."""
    name = f"invoices_test_{uuid.uuid4().hex[:10]}"
    admin = os.environ.get("TEST_DATABASE_URL", "")
    embedded = None
    if admin:
        asyncio.run(_create_database(admin, name))
        base, _, _ = admin.rpartition("/")
        url = f"{base}/{name}"
    else:
        embedded = EmbeddedPostgres(str(tmp_path_factory.mktemp("pg")), cleanup="delete")
        url = embedded.create_database(name)
    migrate(url)
    yield url
    if embedded is not None:
        embedded.stop()


def sibling_database(url: str) -> str:
    """A fresh, migrated database on the same server as `url`: for suites whose servers are configured
    differently from the session's, since every server's workers take asynchronous writes from the queue
    of the database it serves."""
    name = f"invoices_test_{uuid.uuid4().hex[:10]}"
    parts = urllib.parse.urlsplit(url)
    asyncio.run(_create_database(url, name))
    sibling = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    migrate(sibling)
    return sibling


class ServerThread:
    """The real service in its own thread and event loop, as a separate process would run it."""

    def __init__(self, url: str, **overrides: Any) -> None:
        # Batches stay synchronous up to the batch limit here; the asynchronous tests lower the threshold.
        # Most suites test behaviour, not keys: auth is off unless a test asks for it (test_security.py does).
        defaults = {
            "listen_addr": "127.0.0.1:0",
            "database_url": url,
            "pool_max": 20,
            "async_batch_threshold": 50,
            "auth_required": False,
        }
        self.settings = Settings.from_env().model_copy(update={**defaults, **overrides})
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.port = 0
        self.metrics_port = 0  # the bound /metrics port when metrics_addr is set
        self.error: BaseException | None = None

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            self.pool = await create_pool(
                self.settings.database_url, 2, self.settings.pool_max, self.settings.statement_timeout_ms
            )
            running: Running = await start_server(self.settings, self.pool, self.settings.database_url)
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise
        self.port = running.port
        self.metrics_port = running.metrics.port if running.metrics else 0
        self.ready.set()
        await self._stop.wait()
        await running.stop(2)
        await self.pool.close()

    def start(self) -> ServerThread:
        self.thread.start()
        self.ready.wait(60)
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerThread]:
    srv = ServerThread(database_url).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> svc_grpc.InvoiceServiceStub:
    return svc_grpc.InvoiceServiceStub(channel)


@pytest.fixture
def company() -> str:
    """Each test writes to its own company, so tests never see each other's data."""
    return f"co-{uuid.uuid4().hex[:12]}"


class Database:
    """Direct SQL for assertions about what was (not) stored."""

    def __init__(self, url: str) -> None:
        self.url = url

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.url)
            await init_connection(conn)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(run())

    def snapshot(self, company_id: str) -> dict[str, str]:
        """A digest of every business row of a company (push operations aside)."""
        out = {}
        for table in TABLES:
            if table in ("line_items", "taxation_items", "payment_allocations", "credit_memos"):
                where = "invoice_id IN (SELECT id FROM invoices WHERE company_id = $1)"
            else:
                where = "company_id = $1"
            rows = self.fetch(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS h, "
                f"count(*) AS n FROM {table} t WHERE {where}",
                company_id,
            )
            out[table] = f"{rows[0]['n']}:{rows[0]['h']}"
        return out


@pytest.fixture(scope="session")
def db(database_url: str) -> Database:
    return Database(database_url)
