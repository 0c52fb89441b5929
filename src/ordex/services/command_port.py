"""The command port: how the API hands a command to the engine and awaits its outcome.

``CommandHandler`` is the engine's side: it carries a command out on the order and account
services (each a unit of work on the execution core) and answers with its outcome, never an
exception for a refusal. ``InProcessPort`` is the embedded default: a direct call into the
handler in the same process, whose units then wait in the core's own queue and are committed in
groups. A port to an engine in another process sends the same messages as bytes
(``messages.encode``); ``InProcessPort(handler, as_bytes=True)`` does exactly that in process.

Failures that are not refusals (the store is away) are raised, not answered: the command was not
carried out, nothing of it is remembered, and sending it again with the same key does it then.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from typing import Protocol
from uuid import UUID

import msgspec

from ordex.domain.commands import CancelOrder
from ordex.domain.errors import DomainError
from ordex.services.accounts import AccountService
from ordex.services.messages import (
    AccountDone,
    Acknowledge,
    AnyCommand,
    AnyOutcome,
    Cancel,
    OrderDone,
    Refused,
    Retry,
    Submit,
    UpdateAccount,
    decode_command,
    decode_outcome,
    encode,
    key_reused,
)
from ordex.services.orders import OrderService

# Outcomes kept for repeats of a trader's own idempotency keys: the most recent this many.
# A key older than that is forgotten; a repeat is then answered by the command's own
# idempotency (a submit's client_order_id is never used twice; a cancelled order stays so).
REMEMBERED_KEYS = 10_000


class CommandPort(Protocol):
    async def send(self, command: AnyCommand) -> AnyOutcome:
        """The command's outcome once it is committed (or refused)."""
        ...


class CommandHandler:
    """Runs commands on the services; remembers the outcomes of the last ``remember`` commands
    sent with a trader's own key, per actor, so that a repeat (sent again after a timeout, or
    at the same time) is answered with the first outcome and does nothing more."""

    def __init__(self, orders: OrderService, accounts: AccountService | None = None, *,
                 remember: int = REMEMBERED_KEYS) -> None:
        self.orders = orders
        self.accounts = accounts
        self.remember = remember
        self._recent: OrderedDict[tuple[UUID, str],
                                  tuple[AnyCommand, asyncio.Future[AnyOutcome]]] = OrderedDict()

    @property
    def remembered(self) -> int:
        return len(self._recent)

    async def handle(self, command: AnyCommand) -> AnyOutcome:
        if not command.client_key:
            return await self._run(command)
        scope = (command.actor, command.idempotency_key)
        seen = self._recent.get(scope)
        if seen is not None:
            first, outcome = seen
            if first != command:
                return key_reused(command.idempotency_key)
            answer = await asyncio.shield(outcome)
            return answer if answer.replay else _replayed(answer)
        # a task, so that a sender that stops waiting (its client went away) does not stop the
        # work: it is committed, and its outcome kept, for the repeat that will come
        work = asyncio.ensure_future(self._run(command))
        self._recent[scope] = (command, work)
        while len(self._recent) > self.remember:
            self._recent.popitem(last=False)
        work.add_done_callback(functools.partial(self._settled, scope))
        return await asyncio.shield(work)

    def _settled(self, scope: tuple[UUID, str], work: asyncio.Future[AnyOutcome]) -> None:
        """A command that failed is forgotten: it was not carried out, and may be sent again."""
        if (work.cancelled() or work.exception() is not None) \
                and self._recent.get(scope, (None, None))[1] is work:
            del self._recent[scope]

    async def _run(self, command: AnyCommand) -> AnyOutcome:
        try:
            match command:
                case Submit():
                    submitted = await self.orders.submit(command.order)
                    return OrderDone(order=submitted.order, created=submitted.created)
                case Cancel():
                    order = await self.orders.cancel(
                        CancelOrder(command.trader_id, command.order_id))
                    return OrderDone(order=order)
                case Retry():
                    submitted = await self.orders.retry(command.trader_id, command.order_id)
                    return OrderDone(order=submitted.order, created=submitted.created)
                case Acknowledge():
                    order = await self.orders.acknowledge(command.trader_id, command.order_id)
                    return OrderDone(order=order)
                case UpdateAccount():
                    assert self.accounts is not None, "account commands need the accounts"
                    account = await self.accounts.update(
                        command.account_id,
                        limit_changes=command.limits.given() if command.limits else None,
                        allow_short=command.allow_short,
                        rate_limit_per_minute=command.rate_limit_per_minute, cash=command.cash)
                    return AccountDone(account=account)
        except DomainError as exc:
            return Refused(violations=tuple(exc.violations))
        raise TypeError(f"not a command: {command!r}")


def _replayed(outcome: AnyOutcome) -> AnyOutcome:
    return msgspec.structs.replace(outcome, replay=True)


class InProcessPort:
    """The engine in this process. With ``as_bytes``, every command and outcome goes through
    its bytes on the way, as it would to an engine in another process (tests use it)."""

    def __init__(self, handler: CommandHandler, *, as_bytes: bool = False) -> None:
        self.handler = handler
        self.as_bytes = as_bytes

    async def send(self, command: AnyCommand) -> AnyOutcome:
        if not self.as_bytes:
            return await self.handler.handle(command)
        outcome = await self.handler.handle(decode_command(encode(command)))
        return decode_outcome(encode(outcome))
