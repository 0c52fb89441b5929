"""``ordex accounts``: create, list, revoke and rotate keys, on the store itself.

They work on the same ``--data-dir`` or ``--database-url`` as the server, also while it runs; a
key revoked or rotated here is refused by the running server within a second.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

from ordex.cli_support import open_store, settings_from, store_errors
from ordex.clock import SystemClock
from ordex.domain.accounts import Account, Role
from ordex.services.accounts import AccountService

T = TypeVar("T")


def _on_store(args: argparse.Namespace,
              work: Callable[[AccountService], Awaitable[T]]) -> T:
    settings = settings_from(args, seed_demo=False)

    async def run() -> T:
        async with open_store(settings, existing=True) as db:
            return await work(AccountService(db, SystemClock()))

    with store_errors(settings):
        return asyncio.run(run())


def _line(account: Account) -> str:
    key = f"key revoked {account.key_revoked_at:%Y-%m-%d %H:%M}Z" if account.key_revoked_at \
        else "key active"
    return (f"{account.name:<16} {account.role.value:<10} {account.id}  "
            f"cash {account.cash:>14,.2f}  {key}")


def create(args: argparse.Namespace) -> int:
    async def work(accounts: AccountService) -> str:
        issued = await accounts.create(args.name, Role(args.role), args.cash,
                                       allow_short=args.allow_short)
        print(f"created {args.role} account '{args.name}' (id {issued.account.id}) "
              f"with cash {args.cash}")
        return issued.api_key

    print(_on_store(args, work))
    return 0


def listing(args: argparse.Namespace) -> int:
    async def work(accounts: AccountService) -> list[Account]:
        from ordex.store.uow import reading

        async with reading(accounts.db) as repo:
            return await repo.list_accounts()

    for account in _on_store(args, work):
        print(_line(account))
    return 0


def revoke(args: argparse.Namespace) -> int:
    async def work(accounts: AccountService) -> Account:
        return await accounts.revoke_key((await accounts.find(args.account)).id)

    account = _on_store(args, work)
    print(f"revoked the key of '{account.name}' (id {account.id}); the server refuses it "
          "within a second. `ordex accounts rotate-key` issues a new one.")
    return 0


def rotate_key(args: argparse.Namespace) -> int:
    async def work(accounts: AccountService) -> tuple[Account, str]:
        issued = await accounts.issue_key((await accounts.find(args.account)).id)
        return issued.account, issued.api_key

    account, key = _on_store(args, work)
    print(f"new key for '{account.name}' (id {account.id}); the old one is refused within a "
          "second")
    print(key)
    return 0


def install(sub: argparse._SubParsersAction[argparse.ArgumentParser],
            store_flags: Callable[[argparse.ArgumentParser], None],
            money: Callable[[str], Decimal]) -> None:
    accounts = sub.add_parser("accounts", help="manage accounts and their API keys, on the store "
                              "(also while the server runs)")
    acc_sub = accounts.add_subparsers(dest="accounts_command", required=True,
                                      metavar="{create,list,revoke,rotate-key}")
    made = acc_sub.add_parser("create", help="create an account; prints its API key last")
    made.add_argument("name", help="the account's name (letters, digits, . _ -)")
    made.add_argument("--role", choices=["trader", "compliance", "admin"], default="trader",
                      help="trader (default), compliance (reads every order) or admin")
    made.add_argument("--cash", type=money, default=Decimal(0),
                      help="starting cash in dollars (default 0)")
    made.add_argument("--allow-short", action="store_true",
                      help="let the account sell what it does not hold")
    made.set_defaults(func=create)
    listed = acc_sub.add_parser("list", help="every account with its role, cash and key status")
    listed.set_defaults(func=listing)
    for command, action, what in (
            ("revoke", revoke, "revoke an account's API key (refused within a second)"),
            ("rotate-key", rotate_key, "issue a new API key (printed last); the old one is "
                                       "refused within a second")):
        one = acc_sub.add_parser(command, help=what)
        one.add_argument("account", metavar="NAME|ID", help="the account's name or id")
        one.set_defaults(func=action)
    for command in acc_sub.choices.values():
        store_flags(command)
