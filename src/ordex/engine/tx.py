"""A unit of work on the engine's memory: reads see the ledger with this batch's changes on top;
writes are kept as changes (rows to store, state to adopt) until the batch commits.

A batch is a ``Tx`` of its own; each command or report in it runs in a child ``Tx`` that is
merged into the batch when it succeeds and dropped when it fails, so one bad input never leaves
half of its changes behind."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

from msgspec.structs import replace

from ordex.domain.accounts import Account
from ordex.domain.fills import Fill
from ordex.domain.instruments import Instrument
from ordex.domain.journal import JournalEntry
from ordex.domain.money import ZERO
from ordex.domain.orders import Order
from ordex.domain.positions import Position
from ordex.domain.status import OrderEvent
from ordex.domain.validation import Exposure
from ordex.engine.ledger import Ledger, Totals, is_open
from ordex.ids import new_id
from ordex.store.database import Database
from ordex.store.idempotency import KeptOutcome
from ordex.store.rows import Batch
from ordex.store.uow import reading

AfterCommit = Callable[[], Any]


class Reader(Protocol):
    """What the engine's memory does not hold, read from the store: a closed order (with the
    exec ids of its fills), an account created since the start (with its positions)."""

    async def closed_order(self, order_id: UUID) -> tuple[Order, set[tuple[str, str]]] | None: ...

    async def account(self, account_id: UUID) -> tuple[Account, dict[str, Position]] | None: ...


class StoreReader:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def closed_order(self, order_id: UUID) -> tuple[Order, set[tuple[str, str]]] | None:
        async with reading(self.db) as repo:
            order = await repo.order(order_id)
            if order is None:
                return None
            return order, {(f.venue, f.exec_id) for f in await repo.fills(order_id=order_id)}

    async def account(self, account_id: UUID) -> tuple[Account, dict[str, Position]] | None:
        async with reading(self.db) as repo:
            account = await repo.account(account_id)
            if account is None:
                return None
            return account, {p.symbol: p for p in await repo.positions(account_id)}


class Tx:
    def __init__(self, ledger: Ledger, reader: Reader, parent: Tx | None = None, *,
                 ids: Callable[[], UUID] = new_id) -> None:
        self.ledger = ledger
        self.reader = reader
        self.parent = parent
        self.new_id = ids  # every id a unit makes comes from here: injected, so replayable
        self.orders: dict[UUID, Order] = {}
        self.new_orders: set[UUID] = set()
        self.loaded: dict[UUID, Order] = {}  # closed orders read from the store, unchanged
        self.exec_ids: dict[UUID, set[tuple[str, str]]] = {}
        self.accounts: dict[UUID, tuple[Account, datetime]] = {}
        self.held: dict[tuple[UUID, str], tuple[Position, datetime]] = {}
        self.fills: list[Fill] = []
        self.journal: list[JournalEntry] = []
        self.market: dict[str, tuple[Instrument, datetime]] = {}  # instruments' market changes
        self.trader_seq: dict[UUID, int] = {}
        self.seq: int | None = None
        self.stream_seq: int | None = None
        self.after_commit: list[AfterCommit] = []
        self.keys: list[KeptOutcome] = []
        # this unit, then what it runs within: reads look in that order
        self._chain: tuple[Tx, ...] = (self,) if parent is None else (self, *parent._chain)

    def child(self) -> Tx:
        return Tx(self.ledger, self.reader, self, ids=self.new_id)

    # ---- reads --------------------------------------------------------------------------------

    async def order(self, order_id: UUID, trader_id: UUID | None = None) -> Order | None:
        order = self._order(order_id)
        if order is None:
            order = await self._load_closed(order_id)
        if order is None or (trader_id is not None and order.trader_id != trader_id):
            return None
        return order

    def _order(self, order_id: UUID) -> Order | None:
        for tx in self._chain:
            if order_id in tx.orders:
                return tx.orders[order_id]
            if order_id in tx.loaded:
                return tx.loaded[order_id]
        return self.ledger.open.get(order_id)

    async def _load_closed(self, order_id: UUID) -> Order | None:
        found = await self.reader.closed_order(order_id)
        if found is None:
            return None
        order, booked = found
        self.loaded[order_id] = order
        self.exec_ids.setdefault(order_id, set()).update(booked)
        return order

    async def order_by_client_id(self, trader_id: UUID, client_order_id: str) -> Order | None:
        for tx in self._chain:
            for order in tx.orders.values():
                if order.trader_id == trader_id and order.client_order_id == client_order_id:
                    return order
        order_id = self.ledger.client_ids.get((trader_id, client_order_id))
        return None if order_id is None else await self.order(order_id)

    def pending(self, known: Iterable[UUID], wanted: Callable[[Order], bool]) -> list[UUID]:
        """``known`` (ids the ledger keeps for a purpose), then the orders this batch made or
        changed that ``wanted`` picks; the caller checks each again as it reads it."""
        ids = dict.fromkeys(known)
        for tx in reversed(self._chain):
            ids.update((i, None) for i, o in tx.orders.items() if wanted(o))
        return list(ids)

    def booked(self, order_id: UUID) -> set[tuple[str, str]]:
        """The (venue, exec id) of every fill booked for the order."""
        seen: set[tuple[str, str]] = set(self.ledger.exec_ids.get(order_id, ()))
        for tx in self._chain:
            seen.update(tx.exec_ids.get(order_id, ()))
        return seen

    async def account(self, account_id: UUID) -> Account | None:
        for tx in self._chain:
            if account_id in tx.accounts:
                return tx.accounts[account_id][0]
        account = self.ledger.accounts.get(account_id)
        if account is None:
            found = await self.reader.account(account_id)
            if found is not None:
                account, held = found
                self.ledger.add_account(account, held)
        return account

    def position(self, account_id: UUID, symbol: str) -> Position:
        for tx in self._chain:
            if (account_id, symbol) in tx.held:
                return tx.held[(account_id, symbol)][0]
        held = self.ledger.positions.get(account_id, {}).get(symbol)
        return held if held is not None else Position(symbol, ZERO, ZERO, ZERO)

    def positions(self, account_id: UUID) -> dict[str, Position]:
        held = dict(self.ledger.positions.get(account_id, {}))
        for tx in reversed(self._chain):
            for (owner, symbol), (pos, _) in tx.held.items():
                if owner == account_id:
                    held[symbol] = pos
        return held

    def exposure(self, trader_id: UUID) -> Exposure:
        base = self.ledger.totals.get(trader_id)
        totals = Totals(base.count, base.reserved, dict(base.quantities)) if base else Totals()
        latest: dict[UUID, Order] = {}
        for tx in reversed(self._chain):
            latest.update({k: o for k, o in tx.orders.items() if o.trader_id == trader_id})
        for order_id, order in latest.items():
            before = self.ledger.open.get(order_id)
            if before is not None:
                totals.add(before, -1)
            if is_open(order):
                totals.add(order)
        return totals.frozen()

    def instrument(self, symbol: str) -> Instrument | None:
        for tx in self._chain:
            if symbol in tx.market:
                return tx.market[symbol][0]
        return self.ledger.instruments.get(symbol)

    def instruments(self, symbols: set[str]) -> dict[str, Instrument]:
        if not any(tx.market for tx in self._chain):
            known = self.ledger.instruments
            return {s: i for s in symbols if (i := known.get(s)) is not None}
        return {s: i for s in symbols if (i := self.instrument(s)) is not None}

    # ---- writes -------------------------------------------------------------------------------

    def insert_order(self, order: Order) -> None:
        self.orders[order.id] = order
        self.new_orders.add(order.id)

    def update_order(self, order: Order) -> None:
        self.orders[order.id] = order

    def add_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.exec_ids.setdefault(fill.order_id, set()).add((fill.venue, fill.exec_id))

    def set_position(self, account_id: UUID, position: Position, at: datetime) -> None:
        self.held[(account_id, position.symbol)] = (position, at)

    def set_account(self, account: Account, at: datetime) -> None:
        self.accounts[account.id] = (account, at)

    def set_instrument(self, instrument: Instrument, at: datetime) -> None:
        """A change of the instrument's status or reference price (from the market)."""
        self.market[instrument.symbol] = (instrument, at)

    def set_cash(self, account: Account, cash: Decimal, at: datetime) -> Account:
        changed = replace(account, cash=cash)
        self.set_account(changed, at)
        return changed

    def record(self, *entries: JournalEntry) -> None:
        """Appends to the journal; the numbers come from the one writer, in commit order."""
        for e in entries:
            self._append(e)

    def show(self, entry: JournalEntry, event: str, payload: dict[str, Any]) -> OrderEvent:
        """Appends ``entry`` as a row the trader's stream shows, as ``event``."""
        shown = self._append(replace(entry, event=event, payload=payload)).stream_event()
        assert shown is not None
        return shown

    def _append(self, e: JournalEntry) -> JournalEntry:
        self.seq = self._last(lambda tx: tx.seq, self.ledger.seq) + 1
        if e.event is not None:
            self.stream_seq = self._last(lambda tx: tx.stream_seq, self.ledger.stream_seq) + 1
            trader_seq = self._trader_seq(e.trader_id) + 1
            self.trader_seq[e.trader_id] = trader_seq
            e = replace(e, seq=self.seq, stream_seq=self.stream_seq, trader_seq=trader_seq)
        else:
            e = replace(e, seq=self.seq)
        self.journal.append(e)
        return e

    def _last(self, of: Callable[[Tx], int | None], committed: int) -> int:
        for tx in self._chain:
            if (last := of(tx)) is not None:
                return last
        return committed

    def _trader_seq(self, trader_id: UUID) -> int:
        for tx in self._chain:
            if trader_id in tx.trader_seq:
                return tx.trader_seq[trader_id]
        return self.ledger.trader_seq.get(trader_id, 0)

    def keep(self, kept: KeptOutcome) -> None:
        """Store a command's outcome under its idempotency key, with the command's changes."""
        self.keys.append(kept)

    def after(self, action: AfterCommit) -> None:
        """Run ``action`` once this unit's changes are committed (sends, answers, metrics)."""
        self.after_commit.append(action)

    # ---- the batch ----------------------------------------------------------------------------

    def absorb(self, unit: Tx) -> None:
        """A unit that succeeded becomes part of its batch."""
        for order_id in unit.new_orders:
            if order_id not in self.orders:
                self.new_orders.add(order_id)
        self.orders.update(unit.orders)
        self.loaded.update(unit.loaded)
        for order_id, ids in unit.exec_ids.items():
            self.exec_ids.setdefault(order_id, set()).update(ids)
        self.accounts.update(unit.accounts)
        self.held.update(unit.held)
        self.fills += unit.fills
        self.journal += unit.journal
        self.market.update(unit.market)
        self.trader_seq.update(unit.trader_seq)
        if unit.seq is not None:
            self.seq = unit.seq
        if unit.stream_seq is not None:
            self.stream_seq = unit.stream_seq
        self.after_commit += unit.after_commit
        self.keys += unit.keys

    def rows(self) -> Batch:
        return Batch(
            new_orders=[self.orders[i] for i in self.orders if i in self.new_orders],
            orders=[o for i, o in self.orders.items() if i not in self.new_orders],
            fills=list(self.fills),
            positions=[(owner, pos, at) for (owner, _), (pos, at) in self.held.items()],
            accounts=list(self.accounts.values()), instruments=list(self.market.values()),
            journal=list(self.journal), keys=list(self.keys))

    def commit_to(self, ledger: Ledger) -> None:
        """The batch is stored: memory follows."""
        for account, _ in self.accounts.values():
            ledger.accounts[account.id] = account
        for instrument, _ in self.market.values():
            ledger.instruments[instrument.symbol] = instrument
        for (owner, symbol), (pos, _) in self.held.items():
            ledger.positions.setdefault(owner, {})[symbol] = pos
        for order in self.orders.values():  # a fill always changes its order
            ledger.put_order(order, self.exec_ids.get(order.id))
        if self.seq is not None:
            ledger.seq = self.seq
        if self.stream_seq is not None:
            ledger.stream_seq = self.stream_seq
        ledger.trader_seq.update(self.trader_seq)

