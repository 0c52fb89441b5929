"""The ``ordex`` command: serve, venue, accounts, orders, migrate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ordex.config import Settings


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    values: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if getattr(args, "data_dir", None):
        values["data_dir"] = Path(args.data_dir)
    if getattr(args, "database_url", None):
        values["database_url"] = args.database_url
    return Settings(**values)


def _money(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{text}' is not an amount, e.g. 25000") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("the amount must be zero or more")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ordex.api.app import create_app
    from ordex.api.http import header_timeout_protocol
    from ordex.bootstrap import Services
    from ordex.logs import configure

    settings = _settings(args, host=args.host, port=args.port, venue=args.venue,
                         seed_demo=False if args.no_demo else None,
                         venue_sender_comp_id=args.venue_sender_comp_id,
                         venue_target_comp_id=args.venue_target_comp_id,
                         venue_reset_seq=True if args.venue_reset_seq else None,
                         venue_heartbeat=args.venue_heartbeat,
                         venue_username=args.venue_username)

    def ready(services: Services) -> None:
        where = f"http://{settings.host}:{settings.port}"
        print(f"ordex is running at {where}  (API docs: {where}/docs)", flush=True)
        print(f"store: {_redact(settings.resolved_database_url())}", flush=True)
        if services.demo_keys:
            print("demo API keys (send as 'Authorization: Bearer KEY'):", flush=True)
            for name, key in services.demo_keys.items():
                print(f"  {name:<8} {key}", flush=True)

    configure(args.log_level)
    os.umask(0o077)  # the store, its journal, logs and keys are the owner's alone
    app = create_app(settings, on_ready=ready)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level,
                access_log=False, http=header_timeout_protocol(settings.header_timeout_seconds),
                ws_max_size=settings.stream_max_message_bytes)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from ordex.bootstrap import build
    from ordex.store.migrate import upgrade

    async def run() -> None:
        services = build(_settings(args))
        try:
            await upgrade(services.db.writer)
        finally:
            await services.close()

    asyncio.run(run())
    print("schema is up to date")
    return 0


def cmd_accounts_create(args: argparse.Namespace) -> int:
    from ordex.bootstrap import build, prepare
    from ordex.domain.accounts import Role
    from ordex.domain.errors import DomainError

    async def run() -> str:
        services = build(_settings(args, seed_demo=False))
        try:
            await prepare(services)
            issued = await services.accounts.create(args.name, Role(args.role), args.cash,
                                                    allow_short=args.allow_short)
            print(f"created {args.role} account '{args.name}' (id {issued.account.id}) "
                  f"with cash {args.cash}")
            return issued.api_key
        finally:
            await services.close()

    try:
        key = asyncio.run(run())
    except DomainError as exc:
        for v in exc.violations:
            print(f"error: {v.message} {v.hint}", file=sys.stderr)
        return 1
    print(key)
    return 0


def cmd_venue(args: argparse.Namespace) -> int:
    import os

    from ordex.logs import configure
    from ordex.venues.fix.server import main as venue_main

    configure(args.log_level)
    return venue_main(port=args.port, admin_port=args.admin_port, data_dir=Path(args.data_dir),
                      name=args.name, seed=args.seed, tick_seconds=args.tick_seconds,
                      md_interval=args.md_interval,
                      client_comp_id=args.client_comp_id, heartbeat_seconds=args.heartbeat,
                      log_messages=args.log_messages, host=args.host,
                      password=args.password or os.environ.get("ORDEX_VENUE_PASSWORD"))


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ordex", description="Order execution service")
    sub = p.add_subparsers(dest="command", required=True)

    def store_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", help="where the embedded SQLite store lives (default: data)")
        sp.add_argument("--database-url", help="e.g. postgresql+asyncpg://user:pw@host/db "
                        "(default: ORDEX_DATABASE_URL, else SQLite in the data dir)")

    serve = sub.add_parser("serve", help="run the service (embedded default, demo seeded)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--no-demo", action="store_true", help="do not seed the demo accounts")
    serve.add_argument("--venue", metavar="HOST:PORT", default=None,
                       help="trade on an `ordex venue` (FIX 4.4) at HOST:PORT instead of the "
                       "embedded simulated exchange")
    serve.add_argument("--venue-sender-comp-id", metavar="ID", default=None,
                       help="ordex's SenderCompID (49) on the FIX session (default ORDEX; "
                       "ORDEX_VENUE_SENDER_COMP_ID)")
    serve.add_argument("--venue-target-comp-id", metavar="ID", default=None,
                       help="the venue's CompID, TargetCompID (56) (default: the venue name, SIM; "
                       "ORDEX_VENUE_TARGET_COMP_ID)")
    serve.add_argument("--venue-reset-seq", action="store_true",
                       help="start a new FIX session: send ResetSeqNumFlag=Y (141) on the first "
                       "logon so both ends start again at sequence number 1 "
                       "(ORDEX_VENUE_RESET_SEQ)")
    serve.add_argument("--venue-heartbeat", metavar="SECONDS", type=int, default=None,
                       help="FIX HeartBtInt (108) in seconds (default 5; ORDEX_VENUE_HEARTBEAT)")
    serve.add_argument("--venue-username", metavar="NAME", default=None,
                       help="Username (553) on the logon (ORDEX_VENUE_USERNAME); the Password "
                       "(554) is EXCHANGE_API_KEY")
    serve.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"])
    store_flags(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="bring the store's schema up to date")
    store_flags(migrate)
    migrate.set_defaults(func=cmd_migrate)

    venue = sub.add_parser("venue", help="run the simulated exchange as a FIX 4.4 venue")
    venue.add_argument("--host", default="127.0.0.1",
                       help="address the FIX port listens on (default 127.0.0.1; 0.0.0.0 for "
                       "every interface)")
    venue.add_argument("--port", type=int, required=True, help="FIX acceptor port")
    venue.add_argument("--admin-port", type=int, required=True, help="admin HTTP port (loopback)")
    venue.add_argument("--seed", type=int, default=7)
    venue.add_argument("--tick-seconds", type=float, default=0.25,
                       help="seconds between market steps (0: only on POST /step)")
    venue.add_argument("--md-interval", type=float, default=1.0,
                       help="at most one quote update per symbol this often from market steps")
    venue.add_argument("--data-dir", default="data/venue",
                       help="FIX sequence number store (default: data/venue)")
    venue.add_argument("--name", default="SIM", help="venue name and FIX SenderCompID")
    venue.add_argument("--client-comp-id", default="ORDEX", help="the client's SenderCompID")
    venue.add_argument("--heartbeat", type=int, default=5, help="FIX HeartBtInt in seconds")
    venue.add_argument("--password", default=None,
                       help="refuse a logon whose Password (554) is not this one "
                       "(default: ORDEX_VENUE_PASSWORD; none: no check)")
    venue.add_argument("--log-messages", action="store_true",
                       help="log every FIX message to <data-dir>/fix-log")
    venue.add_argument("--log-level", default="info",
                       choices=["debug", "info", "warning", "error"])
    venue.set_defaults(func=cmd_venue)

    accounts = sub.add_parser("accounts", help="manage accounts")
    acc_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    create = acc_sub.add_parser("create", help="create an account; prints its API key last")
    create.add_argument("name")
    create.add_argument("--role", choices=["trader", "compliance", "admin"], default="trader")
    create.add_argument("--cash", type=_money, default=Decimal(0))
    create.add_argument("--allow-short", action="store_true")
    store_flags(create)
    create.set_defaults(func=cmd_accounts_create)

    orders = sub.add_parser("orders", help="a trader's orders, through a running service")
    ord_sub = orders.add_subparsers(dest="orders_command", required=True)
    listing = ord_sub.add_parser("list", help="newest first; --status failed for failed ones")
    listing.add_argument("--status", help="e.g. failed, or accepted,partially_filled")
    listing.set_defaults(func=cmd_orders_list)
    for name, what in (("retry", "send a failed order again (as a new order)"),
                       ("acknowledge", "close a failed order")):
        one = ord_sub.add_parser(name, help=what)
        one.add_argument("order_id")
        one.set_defaults(func=cmd_orders_action, action=name)
    for command in (listing, *(ord_sub.choices[n] for n in ("retry", "acknowledge"))):
        command.add_argument("--url", default="http://127.0.0.1:8000",
                             help="the service (default http://127.0.0.1:8000)")
        command.add_argument("--key", help="API key (default: $ORDEX_API_KEY)")
    return p


def _client(args: argparse.Namespace) -> Any:
    import os

    from ordex.client import Client

    key = args.key or os.environ.get("ORDEX_API_KEY")
    if not key:
        raise SystemExit("an API key is needed: --key KEY or ORDEX_API_KEY")
    return Client(args.url, key)


def _order_line(o: dict[str, Any]) -> str:
    reason = f"  {o['reason']}" if o.get("reason") else ""
    return (f"{o['id']}  {o['status']:<16} {o['side']:<4} {o['quantity']:>8} {o['symbol']:<6} "
            f"filled {o['filled_quantity']}{reason}")


def cmd_orders_list(args: argparse.Namespace) -> int:
    from ordex.client import OrdexError

    with _client(args) as ordex:
        try:
            orders = ordex.list(**({"status": args.status} if args.status else {}))
        except OrdexError as refused:
            print(refused, file=sys.stderr)
            return 1
    for order in orders:
        print(_order_line(order))
    return 0


def cmd_orders_action(args: argparse.Namespace) -> int:
    from ordex.client import OrdexError

    with _client(args) as ordex:
        try:
            order = getattr(ordex, args.action)(args.order_id)
        except OrdexError as refused:
            print(refused, file=sys.stderr)
            return 1
    print(_order_line(order))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
