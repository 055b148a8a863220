"""python -m service [serve | migrate | migrations status | keys ... | push-operations ... | purge | config |
money-defaults]"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from service.bootstrap import database_url, serve, serve_processes
from service.config import ConfigError, Settings, StartupError, effective
from service.domain.errors import DomainError
from service.domain.money import MoneyDefaults, Rounding, TaxMode
from service.handlers import operator
from service.handlers.auth import create_key, revoke_key
from service.handlers.retention import policy_of
from service.logs import configure
from service.store import api_keys, money_settings
from service.store.db import applied_migrations, create_pool, migrate, migration_heads, pending_migrations

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `3600s` or `2w`."""
    match = re.fullmatch(r"(\d{1,7})([smhdw])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: accepts a positive number with s, m, h, d or w, e.g. 30d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def moment(text: str) -> datetime:
    """An ISO 8601 time; without a zone, UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: accepts an ISO 8601 time, e.g. 2027-01-31T00:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}" if value else "-"


async def _keys(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    if args.action == "create":
        expires = moment_of(args)
        key_id, key = await create_key(pool, args.company, args.description, expires, args.read_only)
        print(f"key id:  {key_id}\ncompany: {args.company}\nkey:     {key}")
        print(f"scope:   {'read-only' if args.read_only else 'read and write'}\nexpires: {_when(expires)}")
        print("(the key is shown once; only its hash is kept)")
    elif args.action == "revoke":
        if not await revoke_key(pool, args.id):
            print(f"no active key {args.id}", file=sys.stderr)
            return 1
        print(f"revoked {args.id}")
    else:
        async with pool.acquire() as conn:
            now = datetime.now(UTC)
            for r in await api_keys.list_for(conn, args.company):
                if r["revoke_time"]:
                    state = f"revoked {r['revoke_time']:%Y-%m-%d}"
                elif r["expire_time"] and r["expire_time"] <= now:
                    state = f"expired {_when(r['expire_time'])}"
                else:
                    state = f"active until {_when(r['expire_time'])}" if r["expire_time"] else "active"
                scope = "read-only" if r["read_only"] else "read-write"
                print(f"{r['id']}  {r['prefix']}...  {state}  {scope}  {r['description']}")
    return 0


def moment_of(args: argparse.Namespace) -> datetime | None:
    if args.expires_in is not None:
        return datetime.now(UTC) + args.expires_in  # type: ignore[no-any-return]
    return args.expires_at  # type: ignore[no-any-return]


def _operation(row: Any) -> dict[str, Any]:
    out = {k: row[k] for k in row.keys()}  # noqa: SIM118 - asyncpg records
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = _when(v)
    return out


async def _push_operations(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    if args.action == "list":
        for r in await operator.list_operations(pool, args.company, args.status, args.limit):
            error = (r["error_message"] or "").replace("\n", " ")[:80]
            print(
                f"{r['push_operation_key']}  {r['company_id']}  {r['operation']}  {r['status']}  "
                f"requested {_when(r['requested_on_utc'])}  completed {_when(r['completed_on_utc'])}  "
                f"attempts {r['attempts']}  {error}".rstrip()
            )
    elif args.action == "show":
        print(json.dumps(_operation(await operator.get_operation(pool, args.key)), indent=2))
    else:
        company = await operator.requeue(pool, args.key)
        print(f"requeued {args.key} ({company}): PENDING; a worker applies it")
    return 0


async def _purge(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    """What the periodic purge deletes, now: expired request ids, events and finished push operations past
    their retention (EVENT_RETENTION_DAYS, PUSH_OPERATION_RETENTION_DAYS)."""
    for kind, count in (await operator.purge_expired(pool, args.retention)).items():
        print(f"purged {count} {kind}")
    return 0


async def _money_defaults(pool: asyncpg.Pool, args: argparse.Namespace) -> int:
    """Shows a company's money defaults; sets the ones given (issue 13)."""
    current = await money_settings.load(pool, args.company)
    if args.rounding or args.tax_mode:
        current = MoneyDefaults(
            Rounding(args.rounding) if args.rounding else current.rounding,
            TaxMode(args.tax_mode) if args.tax_mode else current.tax_mode,
        )
        await money_settings.save(pool, args.company, current, datetime.now(UTC))
    print(f"company:       {args.company}\nrounding mode: {current.rounding.value}")
    print(f"tax mode:      {current.tax_mode.value}")
    return 0


async def _with_pool(url: str, args: argparse.Namespace, run: Callable[..., Awaitable[int]]) -> int:
    pool = await create_pool(url, 1, 2)
    try:
        return await run(pool, args)
    except DomainError as exc:  # a refusal, said plainly
        print(exc.message, file=sys.stderr)
        return 1
    finally:
        await pool.close()


async def _migration_status(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        applied = await applied_migrations(conn)
    finally:
        await conn.close()
    heads = migration_heads()
    pending = pending_migrations(applied)
    print(f"current: {', '.join(applied) or '(none: never migrated)'}\nhead:    {', '.join(heads)}")
    print(f"pending: {', '.join(pending)}" if pending else "up to date")
    return 1 if pending else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m service", description="Canonical invoice gRPC service")
    commands = top.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate, then serve (the default)")
    commands.add_parser("migrate", help="apply database migrations")
    migrations = commands.add_parser("migrations", help="migration state").add_subparsers(dest="action", required=True)
    migrations.add_parser("status", help="the database's revision against the code's head (exit 1 when behind)")

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key for a company (shown once)")
    create.add_argument("--company", required=True)
    create.add_argument("--description", default="")
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", type=duration, help="e.g. 30d, 12h, 90m (default: never)")
    expiry.add_argument("--expires-at", type=moment, help="ISO 8601 time, e.g. 2027-01-31T00:00:00Z")
    create.add_argument("--read-only", action="store_true", help="read RPCs only; writes are PERMISSION_DENIED")
    keys.add_parser("revoke", help="revoke a key by id").add_argument("id")
    keys.add_parser("list", help="a company's keys").add_argument("--company", required=True)

    ops = commands.add_parser("push-operations", help="push operations of every company")
    actions = ops.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the newest operations")
    listing.add_argument("--company", default="")
    listing.add_argument("--status", default="", choices=["", "PENDING", "SUCCESS", "FAILED", "TIMED_OUT"])
    listing.add_argument("--limit", type=int, default=50)
    actions.add_parser("show", help="one operation, as JSON").add_argument("key")
    actions.add_parser("requeue", help="a FAILED or TIMED_OUT asynchronous write back to PENDING").add_argument("key")

    commands.add_parser("purge", help="delete expired data now (request ids, old events and push operations)")
    commands.add_parser("config", help="print the effective configuration, secrets masked")
    money = commands.add_parser(
        "money-defaults", help="a company's rounding defaults for new invoices (shown; set those given)"
    )
    money.add_argument("--company", required=True)
    money.add_argument("--rounding", choices=[r.value for r in Rounding])
    money.add_argument("--tax-mode", choices=[t.value for t in TaxMode])
    return top


def main() -> None:
    args = parser().parse_args()
    try:
        settings = Settings.from_env()
    except ConfigError as exc:  # one line per bad variable, no traceback
        print(exc, file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level)
    try:
        _run(args, settings)
    except StartupError as exc:  # valid settings whose target refuses: one line, no traceback
        print(f"cannot start: {exc}", file=sys.stderr)
        sys.exit(1)


def _run(args: argparse.Namespace, settings: Settings) -> None:
    if args.command == "config":
        for variable, value in effective(settings):
            print(f"{variable}={value}")
        return
    args.retention = policy_of(settings)
    handlers: dict[str, Callable[..., Awaitable[int]]] = {
        "keys": _keys,
        "push-operations": _push_operations,
        "purge": _purge,
        "money-defaults": _money_defaults,
    }
    if args.command in ("migrate", "migrations", *handlers):
        url, embedded = database_url(settings)
        try:
            if args.command == "migrations":  # reads the state, changes nothing
                sys.exit(asyncio.run(_migration_status(url)))
            migrate(url)
            if args.command in handlers:
                sys.exit(asyncio.run(_with_pool(url, args, handlers[args.command])))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            print(f"cannot use the database: {exc}", file=sys.stderr)
            sys.exit(2)
        finally:
            if embedded is not None:
                embedded.stop()
        return
    if settings.processes > 1:
        sys.exit(serve_processes(settings))
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
