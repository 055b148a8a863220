"""python -m service [serve|migrate]"""

from __future__ import annotations

import argparse
import asyncio
import sys

from service.config import ConfigError, Settings
from service.handlers.auth import create_key, revoke_key
from service.logs import configure
from service.store import api_keys
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
    args = parser.parse_args()
    try:
        settings = Settings.from_env()
    except ConfigError as exc:  # one line per bad variable, no traceback
        print(exc, file=sys.stderr)
        sys.exit(2)
    configure(settings.log_level)
    if args.command in ("migrate", "keys"):
        url, embedded = database_url(settings)
        try:
            migrate(url)
            if args.command == "keys":
                sys.exit(asyncio.run(_keys(url, args)))
        finally:
            if embedded is not None:
                embedded.stop()
        return
    if settings.processes > 1:
        sys.exit(serve_processes(settings))
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
