"""``ordex orders``: a trader's orders through a running service (with ``ordex.client``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from ordex.cli_support import USAGE, CliError

DEFAULT_URL = "http://127.0.0.1:8000"
DETAIL_FIELDS = ("id", "client_order_id", "status", "reason", "symbol", "side", "type",
                 "quantity", "filled_quantity", "remaining_quantity", "average_price",
                 "limit_price", "stop_loss", "take_profit", "time_in_force",
                 "max_slippage_pct", "slippage_price", "timeout_seconds", "venue", "created_at",
                 "updated_at")


def service_url(text: str) -> str:
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not the URL of an ordex service, e.g. {DEFAULT_URL}")
    return text.rstrip("/")


def decimal_text(text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number, e.g. 10 or 189.50") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return text


@contextlib.contextmanager
def _client(args: argparse.Namespace) -> Iterator[Any]:
    """The client, with a service that cannot be reached or a refusal turned into words."""
    from ordex.client import Client, OrdexError

    key = args.key or os.environ.get("ORDEX_API_KEY")
    if not key:
        raise CliError("an API key is needed: --key KEY, or set ORDEX_API_KEY", USAGE)
    try:
        with Client(args.url, key) as ordex:
            yield ordex
    except OrdexError as refused:
        raise CliError(_refusal(refused)) from None
    except httpx.ConnectError:
        raise CliError(f"cannot connect to ordex at {args.url}: is `ordex serve` running there? "
                       "(check --url)") from None
    except httpx.TimeoutException:
        raise CliError(f"ordex at {args.url} did not answer in time; try again, or check "
                       "that the service is healthy (GET /readyz)") from None
    except httpx.HTTPError as exc:
        raise CliError(f"talking to ordex at {args.url} failed: {exc or type(exc).__name__} "
                       "(check --url)") from None
    except ValueError:  # an answer that is not JSON: not an ordex service
        raise CliError(f"{args.url} did not answer like an ordex service (check --url)") from None


def _refusal(refused: Exception) -> str:
    """One line per problem the API named: its code, field, message and hint."""
    status = getattr(refused, "status", None)
    errors = getattr(refused, "errors", None) or [{"message": str(refused)}]
    lines = []
    for e in errors:
        said = f"refused (HTTP {status})" if status else "refused"
        code = f" [{e['code']}]" if e.get("code") else ""
        field = f" {e['field']}:" if e.get("field") else ""
        hint = f" — {e['hint']}" if e.get("hint") else ""
        lines.append(f"{said}{code}{field} {e.get('message', '')}{hint}")
    return "\n".join(lines)


def order_line(o: dict[str, Any]) -> str:
    reason = f"  {o['reason']}" if o.get("reason") else ""
    return (f"{o['id']}  {o['status']:<16} {o['side']:<4} {o['quantity']:>8} {o['symbol']:<6} "
            f"filled {o['filled_quantity']}{reason}")


def _details(o: dict[str, Any]) -> str:
    return "\n".join(f"{name:<19} {o[name]}" for name in DETAIL_FIELDS
                     if o.get(name) not in (None, ""))


def _show(args: argparse.Namespace, order: dict[str, Any], *, detailed: bool) -> None:
    if args.json:
        print(json.dumps(order, indent=2))
    else:
        print(_details(order) if detailed else order_line(order))


def submit(args: argparse.Namespace) -> int:
    kind = args.type or ("limit" if args.limit_price is not None else "market")
    with _client(args) as ordex:
        order = ordex.submit(args.symbol, args.side, args.quantity, type=kind,
                             limit_price=args.limit_price, stop_loss=args.stop_loss,
                             take_profit=args.take_profit, time_in_force=args.tif,
                             client_order_id=args.client_order_id,
                             max_slippage_pct=args.max_slippage, timeout_seconds=args.timeout,
                             venue=args.venue)
    _show(args, order, detailed=True)
    return 0


def get(args: argparse.Namespace) -> int:
    with _client(args) as ordex:
        order = ordex.get(args.order_id)
    _show(args, order, detailed=True)
    return 0


def action(args: argparse.Namespace) -> int:
    with _client(args) as ordex:
        order = getattr(ordex, args.action)(args.order_id)
    _show(args, order, detailed=False)
    return 0


def listing(args: argparse.Namespace) -> int:
    filters = {"status": args.status, "symbol": args.symbol, "from": args.since,
               "to": args.until, "limit": args.limit, "cursor": args.cursor}
    with _client(args) as ordex:
        orders = ordex.list(**{k: v for k, v in filters.items() if v is not None})
    if args.json:
        print(json.dumps(orders, indent=2))
    else:
        for order in orders:
            print(order_line(order))
    if args.limit is not None and orders and len(orders) >= args.limit:
        print(f"more may follow: --cursor {orders[-1]['id']}", file=sys.stderr)
    return 0


def install(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    orders = sub.add_parser("orders", help="a trader's orders, through a running service")
    ord_sub = orders.add_subparsers(dest="orders_command", required=True)

    new = ord_sub.add_parser("submit", help="submit an order; prints it, or why it was refused")
    new.add_argument("symbol", help="e.g. AAPL")
    new.add_argument("side", choices=["buy", "sell"], type=str.lower, help="buy or sell")
    new.add_argument("quantity", type=decimal_text, help="shares, a multiple of the lot")
    new.add_argument("--type", choices=["market", "limit"], default=None,
                     help="market or limit (default: limit when --limit-price is given)")
    new.add_argument("--limit-price", type=decimal_text, help="the worst price (limit orders)")
    new.add_argument("--tif", choices=["day", "gtc", "ioc", "fok"], default="day",
                     help="time in force (default day)")
    new.add_argument("--stop-loss", type=decimal_text, help="stop-loss price")
    new.add_argument("--take-profit", type=decimal_text, help="take-profit price")
    new.add_argument("--max-slippage", type=decimal_text, metavar="PCT",
                     help="market orders: the most the fill may move from the price at "
                          "acceptance, in percent (above 0, at most 10)")
    new.add_argument("--timeout", type=int, metavar="SECONDS",
                     help="cancel what is still unfilled this long after acceptance (1-86400)")
    new.add_argument("--client-order-id", help="your id for the order; sending it again "
                     "returns the same order instead of a second one")
    new.add_argument("--venue", metavar="NAME", help="the venue to send it to (default: the "
                     "service's default venue)")
    new.set_defaults(func=submit)

    one = ord_sub.add_parser("get", help="one order, in full")
    one.add_argument("order_id", help="the order's id")
    one.set_defaults(func=get)

    listed = ord_sub.add_parser("list", help="your orders, newest first")
    listed.add_argument("--status", help="e.g. failed, or accepted,partially_filled")
    listed.add_argument("--symbol", help="only this symbol")
    listed.add_argument("--from", dest="since", metavar="TIME",
                        help="created at or after, e.g. 2026-12-01T09:30:00Z")
    listed.add_argument("--to", dest="until", metavar="TIME", help="created before")
    listed.add_argument("--limit", type=int, help="at most this many (default 100)")
    listed.add_argument("--cursor", help="continue after this order id (printed when more "
                        "may follow)")
    listed.set_defaults(func=listing)

    for name, what in (("cancel", "cancel a working order"),
                       ("retry", "send a failed order again (as a new order)"),
                       ("acknowledge", "close a failed order")):
        acted = ord_sub.add_parser(name, help=what)
        acted.add_argument("order_id", help="the order's id")
        acted.set_defaults(func=action, action=name)

    for command in ord_sub.choices.values():
        command.add_argument("--url", type=service_url, default=DEFAULT_URL,
                             help=f"the service (default {DEFAULT_URL})")
        command.add_argument("--key", help="your API key (default: $ORDEX_API_KEY)")
        command.add_argument("--json", action="store_true",
                             help="print the API's JSON instead of text")
