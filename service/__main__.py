"""python -m service [serve|migrate|keys|money-defaults]"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from service.config import ConfigError, Settings, StartupError
from service.domain.money import MoneyDefaults, Rounding, TaxMode
from service.handlers.auth import create_key, revoke_key
from service.logs import configure
from service.store import api_keys, money_settings
from service.store.db import create_pool, migrate
from service.transport.server import database_url, serve, serve_processes


async def _keys(url: str, args: argparse.Namespace) -> int:
    pool = await create_pool(url, 1, 2)
    try:
        if args.action == "create":
            key_id, key = await create_key(pool, args.company, args.description)
            print(f"key id:  {key_id}\ncompany: {args.company}\nkey:     {key}")
            print("(the key is shown once; only its hash is kept)")
        elif args.action == "revoke":
            if not await revoke_key(pool, args.id):
                print(f"no active key {args.id}", file=sys.stderr)
                return 1
            print(f"revoked {args.id}")
        else:
            async with pool.acquire() as conn:
                for r in await api_keys.list_for(conn, args.company):
                    state = f"revoked {r['revoke_time']:%Y-%m-%d}" if r["revoke_time"] else "active"
                    print(f"{r['id']}  {r['prefix']}...  {state}  {r['description']}")
        return 0
    finally:
        await pool.close()


async def _money_defaults(url: str, args: argparse.Namespace) -> int:
    """Shows a company's money defaults; sets the ones given (issue 13)."""
    pool = await create_pool(url, 1, 2)
    try:
        current = await money_settings.load(pool, args.company)
        if args.rounding or args.tax_mode:
            current = MoneyDefaults(
                Rounding(args.rounding) if args.rounding else current.rounding,
                TaxMode(args.tax_mode) if args.tax_mode else current.tax_mode,
            )
            await money_settings.save(pool, args.company, current, datetime.now(UTC))
        print(f"company:       {args.company}\nrounding mode: {current.rounding.value}\ntax mode:      "
              f"{current.tax_mode.value}")  # fmt: skip
        return 0
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m service", description="Canonical invoice gRPC service")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="migrate, then serve (the default)")
    commands.add_parser("migrate", help="apply database migrations")
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key for a company (shown once)")
    create.add_argument("--company", required=True)
    create.add_argument("--description", default="")
    keys.add_parser("revoke", help="revoke a key by id").add_argument("id")
    keys.add_parser("list", help="a company's keys").add_argument("--company", required=True)
    money = commands.add_parser(
        "money-defaults", help="a company's rounding defaults for new invoices (shown; set those given)"
    )
    money.add_argument("--company", required=True)
    money.add_argument("--rounding", choices=[r.value for r in Rounding])
    money.add_argument("--tax-mode", choices=[t.value for t in TaxMode])
    args = parser.parse_args()
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
    if args.command in ("migrate", "keys", "money-defaults"):
        url, embedded = database_url(settings)
        try:
            migrate(url)
            if args.command == "keys":
                sys.exit(asyncio.run(_keys(url, args)))
            if args.command == "money-defaults":
                sys.exit(asyncio.run(_money_defaults(url, args)))
        finally:
            if embedded is not None:
                embedded.stop()
        return
    if settings.processes > 1:
        sys.exit(serve_processes(settings))
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
