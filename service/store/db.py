"""Connections: the asyncpg pool, the embedded PostgreSQL, and migrations."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg

from service.config import StartupError
from service.domain.errors import (
    AlreadyExists,
    Contention,
    DeadlineExceeded,
    FieldViolation,
    InvalidArgument,
    Unavailable,
)

log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).parent / "migrations"


class EmbeddedPostgres:
    """A real PostgreSQL from the pgserver package, data kept in `data_dir` across restarts."""

    def __init__(self, data_dir: str, cleanup: str | None = "stop") -> None:
        try:
            import pgserver  # only needed without DATABASE_URL
        except ImportError as exc:
            raise SystemExit("DATABASE_URL is empty and the embedded PostgreSQL (pgserver) is not installed") from exc

        try:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            self._server: Any = pgserver.get_server(data_dir, cleanup_mode=cleanup)  # type: ignore[attr-defined]
        except Exception as exc:  # pgserver reports a folder it cannot use in several ways; all end start-up
            raise StartupError(
                f"EMBEDDED_PG_DIR={data_dir!r}: the embedded PostgreSQL cannot run there: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from exc
        self.url: str = self._server.get_uri()

    def create_database(self, name: str) -> str:
        self._server.psql(f'CREATE DATABASE "{name}";')
        return str(self.url.replace("/postgres?", f"/{name}?"))

    def stop(self) -> None:
        self._server.cleanup()


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("uuid", encoder=str, decoder=str, schema="pg_catalog", format="text")


async def _no_session_reset(conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset on release (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL: one more round
    trip per call). Pooled connections never hold session state here: LISTEN has its own connection,
    advisory locks and cursors are transaction-scoped, nothing runs SET. asyncpg still rolls back a
    transaction left open before calling this."""


async def create_pool(url: str, min_size: int = 2, max_size: int = 10, statement_timeout_ms: int = 0) -> asyncpg.Pool:
    """`statement_timeout_ms` (0: none) is every connection's statement_timeout, set at connect time (no
    round trip per call): PostgreSQL cancels a statement that runs, or waits for locks, longer."""
    server_settings = {"statement_timeout": str(statement_timeout_ms)} if statement_timeout_ms else None
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        reset=_no_session_reset,
        server_settings=server_settings,
    )


def _where(url: str) -> str:
    """host:port/database of a URL, never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


async def _probe(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    await conn.close()


def require_database(url: str) -> None:
    """One clear line, not a traceback, when the database cannot be reached or refuses the login."""
    try:
        asyncio.run(_probe(url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # TimeoutError is an OSError
        raise StartupError(
            f"DATABASE_URL: cannot connect to PostgreSQL at {_where(url)}: {str(exc) or type(exc).__name__}"
        ) from exc


def migrate(url: str) -> None:
    """Brings the schema to head. Safe to run from several processes at once (advisory lock)."""
    from alembic import command

    require_database(url)
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["database_url"] = url
    command.upgrade(cfg, "head")


def migration_heads() -> tuple[str, ...]:
    """The head revision(s) of the migrations this code carries."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return tuple(ScriptDirectory.from_config(cfg).get_heads())


def pending_migrations(applied: tuple[str, ...]) -> list[str]:
    """The revisions between what the database has and the heads, oldest first."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    script = ScriptDirectory.from_config(cfg)
    lower = applied if applied else "base"
    return [r.revision for r in reversed(list(script.iterate_revisions("heads", lower)))]


async def applied_migrations(conn: asyncpg.Connection) -> tuple[str, ...]:
    """The revision(s) the database is at; empty when it was never migrated."""
    if not await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL"):
        return ()
    return tuple(str(r["version_num"]) for r in await conn.fetch("SELECT version_num FROM alembic_version"))


_UNAVAILABLE = (
    OSError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
)


def domain_error(exc: BaseException) -> Exception | None:
    """The domain's name for a driver error (None: not one the store knows, a bug). The one place that
    reads asyncpg's exceptions: nothing above the store sees them."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return AlreadyExists(f"a record with these values already exists ({exc.constraint_name})")
    if isinstance(exc, asyncpg.DataError):  # a value PostgreSQL cannot hold that the checks let through
        log.warning("data error: %s", exc)
        return InvalidArgument([FieldViolation("request", f"a value cannot be stored: {type(exc).__name__}")])
    if isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError):
        return Contention("concurrent update conflict; retry the call")
    if isinstance(exc, asyncpg.QueryCanceledError):
        return DeadlineExceeded(
            "the database work ran over its time limit (DB_STATEMENT_TIMEOUT_MS or DB_WRITE_STATEMENT_TIMEOUT_MS); "
            "nothing was changed"
        )
    if isinstance(exc, _UNAVAILABLE):
        return Unavailable("the database is unavailable; retry later")
    return None


class _DriverErrors:
    """Raises the domain error for a driver error inside (see domain_error). A class, not a generator-based
    context manager: every read and write passes through it."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is not None and isinstance(exc, (asyncpg.PostgresError, *_UNAVAILABLE)):
            mapped = domain_error(exc)
            if mapped is not None:
                raise mapped from exc
        return False


_DRIVER_ERRORS = _DriverErrors()


def driver_errors() -> _DriverErrors:
    """Raises the domain error for a driver error inside (see domain_error)."""
    return _DRIVER_ERRORS


class connection:
    """A pooled connection for reads, with driver errors as domain errors."""

    __slots__ = ("_acquire", "_pool")

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._acquire: Any = None

    async def __aenter__(self) -> asyncpg.Connection:
        with _DRIVER_ERRORS:
            self._acquire = self._pool.acquire()
            conn: asyncpg.Connection = await self._acquire.__aenter__()
            return conn

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> Literal[False]:
        with _DRIVER_ERRORS:
            await self._acquire.__aexit__(kind, exc, tb)
        return _DRIVER_ERRORS.__exit__(kind, exc, tb)  # a driver error from the body, as the domain's
