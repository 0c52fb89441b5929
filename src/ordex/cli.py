"""The ``ordex`` command: serve, venue, accounts, orders, migrate."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import ValidationError

from ordex import __version__, cli_accounts, cli_orders, heap
from ordex.cli_support import (
    FAILURE,
    USAGE,
    CliError,
    DataDirLock,
    check_settings,
    listen,
    open_store,
    redact,
    settings_from,
    store_errors,
    where,
)
from ordex.config import Settings
from ordex.files import private_dir


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

    unnamed = [v for v in args.venue or () if "=" not in v]
    if len(unnamed) > 1:
        raise CliError("--venue HOST:PORT is given more than once; name the others "
                       "(--venue NAME=HOST:PORT)", USAGE)
    named = [v for v in args.venue or () if "=" in v]
    settings = settings_from(args, host=args.host, port=args.port,
                             venue=unnamed[0] if unnamed else None, venues=named or None,
                             default_venue=args.default_venue,
                             seed_demo=False if args.no_demo else None, seed=args.seed,
                             venue_sender_comp_id=args.venue_sender_comp_id,
                             venue_target_comp_id=args.venue_target_comp_id,
                             venue_reset_seq=True if args.venue_reset_seq else None,
                             venue_heartbeat=args.venue_heartbeat,
                             venue_username=args.venue_username)
    check_settings(settings)
    os.umask(0o077)  # the store, its journal, logs and keys are the owner's alone
    with store_errors(settings):
        private_dir(Path(settings.data_dir))
    lock = DataDirLock(Path(settings.data_dir))
    lock.acquire()
    try:
        sock = listen(settings.host, settings.port)
        base_url = f"http://{settings.host}:{sock.getsockname()[1]}"
        asyncio.run(_reachable(settings))

        def ready(services: Services) -> None:
            heap.settle()
            print(f"ordex is running at {base_url}  (API docs: {base_url}/docs)", flush=True)
            print(f"store: {redact(settings.resolved_database_url())}", flush=True)
            if services.demo_keys:
                print("demo API keys (send as 'Authorization: Bearer KEY'):", flush=True)
                for name, key in services.demo_keys.items():
                    print(f"  {name:<8} {key}", flush=True)

        configure(args.log_level)
        app = create_app(settings, on_ready=ready)
        server = uvicorn.Server(uvicorn.Config(
            app, log_level=args.log_level, access_log=False,
            http=header_timeout_protocol(settings.header_timeout_seconds),
            ws_max_size=settings.stream_max_message_bytes,
            ws_per_message_deflate=settings.stream_compression))
        server.run(sockets=[sock])
        return 0 if server.started else 1
    finally:
        lock.release()


async def _reachable(settings: Settings) -> None:
    async with open_store(settings, existing=False):
        pass


def cmd_migrate(args: argparse.Namespace) -> int:
    from ordex.store.migrate import upgrade

    settings = settings_from(args)

    async def run() -> None:
        async with open_store(settings, existing=False) as db:
            await upgrade(db.writer)

    with store_errors(settings):
        asyncio.run(run())
    print(f"the schema of {where(settings)} is up to date")
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ordex", description="Order execution service")
    p.add_argument("--version", action="version", version=f"ordex {__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)

    def store_flags(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", help="where the embedded SQLite store lives (default: "
                        "$ORDEX_DATA_DIR, else ./data)")
        sp.add_argument("--database-url", help="e.g. postgresql+asyncpg://user:pw@host/db "
                        "(default: ORDEX_DATABASE_URL, else SQLite in the data dir)")

    log_levels = ["debug", "info", "warning", "error"]
    serve = sub.add_parser("serve", help="run the service (embedded default, demo seeded)")
    serve.add_argument("--host", default=None,
                       help="address to listen on (default 127.0.0.1; 0.0.0.0 for every "
                            "interface)")
    serve.add_argument("--port", type=_port, default=None, help="HTTP port (default 8000)")
    serve.add_argument("--no-demo", action="store_true", help="do not seed the demo accounts")
    serve.add_argument("--seed", type=int, default=None,
                       help="seed of the engine's random numbers (the jitter of send retries), "
                       "to replay a run with the same draws (default: unseeded; ORDEX_SEED)")
    serve.add_argument("--venue", metavar="[NAME=]HOST:PORT", action="append", default=None,
                       help="trade on an `ordex venue` (FIX 4.4) at HOST:PORT instead of the "
                       "embedded simulated exchange; NAME=HOST:PORT (or NAME=embedded, another "
                       "embedded exchange) adds a venue beside it; repeatable (ORDEX_VENUE, "
                       "ORDEX_VENUES)")
    serve.add_argument("--default-venue", metavar="NAME", default=None,
                       help="where orders that name no venue go (default: SIM; "
                       "ORDEX_DEFAULT_VENUE)")
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
    serve.add_argument("--log-level", default="info", choices=log_levels,
                       help="how much to log (default info)")
    store_flags(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="create the store, or bring its schema up to date")
    store_flags(migrate)
    migrate.set_defaults(func=cmd_migrate)

    venue = sub.add_parser("venue", help="run the simulated exchange as a FIX 4.4 venue")
    venue.add_argument("--host", default="127.0.0.1",
                       help="address the FIX port listens on (default 127.0.0.1; 0.0.0.0 for "
                       "every interface)")
    venue.add_argument("--port", type=_port, required=True, help="FIX acceptor port")
    venue.add_argument("--admin-port", type=_port, required=True,
                       help="admin HTTP port (loopback)")
    venue.add_argument("--seed", type=int, default=7,
                       help="seed of the market's random walk (default 7)")
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
    venue.add_argument("--log-level", default="info", choices=log_levels,
                       help="how much to log (default info)")
    venue.set_defaults(func=cmd_venue)

    cli_accounts.install(sub, store_flags, _money)
    cli_orders.install(sub)
    return p


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port (0 to 65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    from ordex.domain.errors import DomainError

    try:
        args = parser().parse_args(argv)
        return int(args.func(args))
    except CliError as problem:
        for line in str(problem).splitlines():
            print(f"ordex: error: {line}", file=sys.stderr)
        return problem.status
    except DomainError as refused:
        for v in refused.violations:
            print(f"ordex: error: {v.message} {v.hint}", file=sys.stderr)
        return FAILURE
    except ValidationError as bad:
        for e in bad.errors():
            if not e["loc"]:  # a check across settings (the venues)
                message = str(e["msg"]).removeprefix("Value error, ")
                print(f"ordex: error: settings: {message}", file=sys.stderr)
                continue
            name = "ORDEX_" + "_".join(str(x) for x in e["loc"]).upper()
            print(f"ordex: error: setting {name}: {e['msg']}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
