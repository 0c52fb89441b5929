"""The command port: how the API hands a command to the engine and awaits its outcome.

``CommandHandler`` is the engine's side: it carries a command out on the order and account
services (each a unit of work on the execution core) and answers with its outcome, never an
exception for a refusal. ``InProcessPort`` is the embedded default: a direct call into the
handler in the same process, whose units then wait in the core's own queue and are committed in
groups. A port to an engine in another process sends the same messages as bytes
(``messages.encode``); ``InProcessPort(handler, as_bytes=True)`` does exactly that in process.

Failures that are not refusals (the store is away) are raised, not answered: the command was not
carried out, nothing of it is remembered, and sending it again with the same key does it then.

The outcome of a command sent with a trader's own key that was carried out is stored in the
command's own unit of work (``Tx.keep``, one more row of its batch): there is no moment when
the order is committed and its key is not. At start the handler reads the recent keys back, so
that a repeat after a restart (or a ``kill -9``) is answered from memory with the first outcome.
A refused command is not stored: after a restart, its repeat is decided again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar
from uuid import UUID

import msgspec

from ordex.clock import Clock
from ordex.domain.accounts import Account
from ordex.domain.commands import CancelOrder
from ordex.domain.errors import DomainError
from ordex.domain.orders import Order
from ordex.engine.tx import Tx
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
from ordex.services.orders import OrderService, Submitted
from ordex.store.idempotency import KeptOutcome

log = logging.getLogger("ordex.commands")

# Outcomes kept for repeats of a trader's own idempotency keys: of each actor's keys, the most
# recent this many, for KEY_RETENTION. An older key is forgotten; a repeat is then answered by
# the command's own idempotency (a submit's client_order_id is never used twice; a cancelled
# order stays so), and the key names the new command.
REMEMBERED_KEYS = 10_000
KEY_RETENTION = timedelta(hours=24)
PRUNE_SECONDS = 3600.0  # how often keys past their retention are dropped, in memory and store
PRUNE_MOST = 100_000  # rows deleted from the store per round; a full round is followed at once

R = TypeVar("R")


class CommandPort(Protocol):
    async def send(self, command: AnyCommand) -> AnyOutcome:
        """The command's outcome once it is committed (or refused)."""
        ...


class KeyStore(Protocol):
    """Where the kept outcomes are (written by the execution core, with their commands)."""

    async def recent(self, since: datetime, per_actor: int) -> list[KeptOutcome]:
        """Each actor's ``per_actor`` most recent outcomes kept since ``since``, oldest first."""
        ...

    async def forget(self, before: datetime, most: int | None = None) -> int:
        """Delete those kept before ``before`` (``most`` at most); how many."""
        ...


def fingerprint(command: AnyCommand) -> str:
    """What tells a repeat from another request under the same key: the SHA-256 of the
    command's bytes (the same before and after a restart, whichever process decodes it)."""
    return hashlib.sha256(encode(command)).hexdigest()


@dataclass(slots=True)
class _Seen:
    fingerprint: str
    at: datetime
    # this process's command (in flight, or settled), or the bytes of one read from the store
    outcome: asyncio.Future[AnyOutcome] | bytes


class CommandHandler:
    """Runs commands on the services; remembers the outcomes of commands sent with a trader's
    own key (the ``remember`` most recent of each actor, for ``retention``), so that a repeat
    (sent again after a timeout, at the same time, or after a restart) is answered with the
    first outcome and does nothing more. With ``keys``, the outcomes of commands carried out
    are stored with them, and ``start()`` reads them back."""

    def __init__(self, orders: OrderService, accounts: AccountService | None = None, *,
                 keys: KeyStore | None = None, clock: Clock | None = None,
                 remember: int = REMEMBERED_KEYS, retention: timedelta = KEY_RETENTION,
                 prune_seconds: float = PRUNE_SECONDS) -> None:
        self.orders = orders
        self.accounts = accounts
        self.keys = keys
        self.clock = clock or orders.clock
        self.remember = remember
        self.retention = retention
        self.prune_seconds = prune_seconds
        self._recent: dict[UUID, OrderedDict[str, _Seen]] = {}
        self._pruner: asyncio.Task[None] | None = None

    @property
    def remembered(self) -> int:
        return sum(len(keys) for keys in self._recent.values())

    async def start(self) -> None:
        """Read back the keys the store holds that are still remembered (each actor's most
        recent ``remember`` within the retention), drop the older ones, and from then on drop
        them every ``prune_seconds``."""
        if self.keys is None or self._pruner is not None:
            return
        since = self.clock.now() - self.retention
        for kept in await self.keys.recent(since, self.remember):
            self._add(kept.actor, kept.key, _Seen(kept.fingerprint, kept.created_at,
                                                  kept.outcome))
        full = await self.keys.forget(since, PRUNE_MOST) >= PRUNE_MOST
        self._pruner = asyncio.create_task(self._prune_now_and_then(full), name="ordex-keys")

    async def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pruner
            self._pruner = None

    async def _prune_now_and_then(self, full: bool) -> None:
        while True:
            await asyncio.sleep(1.0 if full else self.prune_seconds)
            try:
                full = await self.prune() >= PRUNE_MOST
            except Exception as exc:  # the store is away: the next round deletes them
                log.warning("could not drop old idempotency keys: %s", exc)
                full = False

    async def prune(self) -> int:
        """Forget the keys older than the retention: in memory, then (``PRUNE_MOST`` at most)
        in the store; how many the store dropped."""
        since = self.clock.now() - self.retention
        for actor in list(self._recent):
            keys = self._recent[actor]
            while keys and _settled_at(next(iter(keys.values())), since):
                keys.popitem(last=False)
            if not keys:
                del self._recent[actor]
        return 0 if self.keys is None else await self.keys.forget(since, PRUNE_MOST)

    async def handle(self, command: AnyCommand) -> AnyOutcome:
        if not command.client_key:
            return await self._run(command, None)
        actor, key = command.actor, command.idempotency_key
        print_ = fingerprint(command)
        seen = self._seen(actor, key)
        if seen is not None:
            if seen.fingerprint != print_:
                return key_reused(key)
            if isinstance(seen.outcome, bytes):
                return _replayed(decode_outcome(seen.outcome))
            answer = await asyncio.shield(seen.outcome)
            return answer if answer.replay else _replayed(answer)
        # a task, so that a sender that stops waiting (its client went away) does not stop the
        # work: it is committed, and its outcome kept, for the repeat that will come
        work = asyncio.ensure_future(self._run(command, print_))
        self._add(actor, key, _Seen(print_, self.clock.now(), work))
        work.add_done_callback(functools.partial(self._settled, actor, key))
        return await asyncio.shield(work)

    def _seen(self, actor: UUID, key: str) -> _Seen | None:
        keys = self._recent.get(actor)
        if keys is None or (seen := keys.get(key)) is None:
            return None
        if _settled_at(seen, self.clock.now() - self.retention):
            del keys[key]
            return None
        return seen

    def _add(self, actor: UUID, key: str, seen: _Seen) -> None:
        keys = self._recent.setdefault(actor, OrderedDict())
        keys.pop(key, None)
        keys[key] = seen
        while len(keys) > self.remember:
            keys.popitem(last=False)

    def _settled(self, actor: UUID, key: str, work: asyncio.Future[AnyOutcome]) -> None:
        """A command that failed is forgotten: it was not carried out, and may be sent again."""
        if not (work.cancelled() or work.exception() is not None):
            return
        keys = self._recent.get(actor)
        if keys is not None and key in keys and keys[key].outcome is work:
            del keys[key]
            if not keys:
                del self._recent[actor]

    def _keep(self, command: AnyCommand, print_: str | None,
              outcome: Callable[[R], AnyOutcome]) -> Callable[[Tx, R], None] | None:
        """What stores the command's outcome in its unit of work (None: nothing to store)."""
        if print_ is None or self.keys is None:
            return None
        actor, key, clock = command.actor, command.idempotency_key, self.clock

        def keep(tx: Tx, answer: R) -> None:
            tx.keep(KeptOutcome(actor, key, print_, encode(outcome(answer)), clock.now()))
        return keep

    async def _run(self, command: AnyCommand, print_: str | None) -> AnyOutcome:
        """``print_``: the fingerprint of a command sent with the trader's own key."""
        try:
            match command:
                case Submit():
                    return _submitted(await self.orders.submit(
                        command.order, keep=self._keep(command, print_, _submitted)))
                case Cancel():
                    return _order_done(await self.orders.cancel(
                        CancelOrder(command.trader_id, command.order_id),
                        keep=self._keep(command, print_, _order_done)))
                case Retry():
                    return _submitted(await self.orders.retry(
                        command.trader_id, command.order_id,
                        keep=self._keep(command, print_, _submitted)))
                case Acknowledge():
                    return _order_done(await self.orders.acknowledge(
                        command.trader_id, command.order_id,
                        keep=self._keep(command, print_, _order_done)))
                case UpdateAccount():
                    assert self.accounts is not None, "account commands need the accounts"
                    account = await self.accounts.update(
                        command.account_id,
                        limit_changes=command.limits.given() if command.limits else None,
                        allow_short=command.allow_short,
                        rate_limit_per_minute=command.rate_limit_per_minute, cash=command.cash,
                        keep=self._keep(command, print_, _account_done))
                    return _account_done(account)
        except DomainError as exc:
            return Refused(violations=tuple(exc.violations))
        raise TypeError(f"not a command: {command!r}")


def _settled_at(seen: _Seen, before: datetime) -> bool:
    """Kept since before ``before``, and no longer in flight."""
    return seen.at < before and (isinstance(seen.outcome, bytes) or seen.outcome.done())


def _submitted(submitted: Submitted) -> OrderDone:
    return OrderDone(order=submitted.order, created=submitted.created)


def _order_done(order: Order) -> OrderDone:
    return OrderDone(order=order)


def _account_done(account: Account) -> AccountDone:
    return AccountDone(account=account)


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
