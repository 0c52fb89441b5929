"""What the engine holds in memory and owns: accounts, positions, open orders and their running
totals, the client-order-id index, the exec ids of open orders' fills and the journal's
sequence numbers. Loaded from the store at start; changed only by the core after a commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from sqlalchemy import func, select

from ordex.domain.accounts import Account
from ordex.domain.instruments import Instrument
from ordex.domain.money import ZERO
from ordex.domain.orders import OPEN_STATUSES, Order, OrderStatus, Routing, Side
from ordex.domain.positions import Position
from ordex.domain.validation import Exposure
from ordex.store.database import Database
from ordex.store.repository import OPEN_ORDER, order_from_row
from ordex.store.tables import fills, journal, orders, positions
from ordex.store.uow import reading


@dataclass(slots=True)
class Totals:
    """An account's open orders added up, kept current as orders change."""

    count: int = 0
    reserved: Decimal = ZERO
    quantities: dict[tuple[str, Side], Decimal] = field(default_factory=dict)

    def add(self, order: Order, sign: int = 1) -> None:
        self.count += sign
        remaining = order.remaining_quantity
        if order.side is Side.BUY:
            self.reserved += sign * remaining * order.reserve_price
        key = (order.symbol, order.side)
        left = self.quantities.get(key, ZERO) + sign * remaining
        if left:
            self.quantities[key] = left
        else:
            self.quantities.pop(key, None)

    def frozen(self) -> Exposure:
        return Exposure(self.count, self.reserved, dict(self.quantities))


def is_open(order: Order) -> bool:
    return order.status in OPEN_STATUSES


def routable(order: Order) -> bool:
    return order.status is OrderStatus.ACCEPTED and order.routing is Routing.PENDING


def cancel_to_send(order: Order) -> bool:
    return order.status is OrderStatus.PENDING_CANCEL and order.cancel_sent_at is None


class Ledger:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.accounts: dict[UUID, Account] = {}
        self.positions: dict[UUID, dict[str, Position]] = {}
        self.open: dict[UUID, Order] = {}
        self.totals: dict[UUID, Totals] = {}
        self.client_ids: dict[tuple[UUID, str], UUID] = {}
        self.exec_ids: dict[UUID, set[tuple[str, str]]] = {}
        self.instruments: dict[str, Instrument] = {}
        self.seq = 0  # the journal's last row
        self.stream_seq = 0  # the last row the stream shows
        self.trader_seq: dict[UUID, int] = {}
        self.to_route: dict[UUID, None] = {}  # in order of arrival
        self.to_cancel: dict[UUID, None] = {}

    async def load(self, db: Database) -> None:
        """Everything the order path reads, from the store (what was held before is dropped)."""
        self.clear()
        async with reading(db) as repo:
            for account in await repo.list_accounts():
                self.accounts[account.id] = account
            for row in await repo.conn.execute(select(positions)):
                self.positions.setdefault(row.account_id, {})[row.symbol] = Position(
                    row.symbol, row.quantity, row.average_cost, row.realized_pnl)
            for instrument in await repo.instruments():
                self.instruments[instrument.symbol] = instrument
            for row in await repo.conn.execute(select(orders).where(OPEN_ORDER)):
                self._track(order_from_row(row))
            for trader, client_order_id, order_id in await repo.conn.execute(
                    select(orders.c.trader_id, orders.c.client_order_id, orders.c.id).where(
                        orders.c.client_order_id.is_not(None))):
                self.client_ids[(trader, client_order_id)] = order_id
            for order_id, venue, exec_id in await repo.conn.execute(
                    select(fills.c.order_id, fills.c.venue, fills.c.exec_id).join(
                        orders, orders.c.id == fills.c.order_id).where(OPEN_ORDER)):
                self.exec_ids.setdefault(order_id, set()).add((venue, exec_id))
            self.seq = await repo.last_journal_seq()
            self.stream_seq = await repo.last_event_seq()
            for trader, last in await repo.conn.execute(select(
                    journal.c.trader_id, func.max(journal.c.trader_seq)).where(
                        journal.c.trader_seq.is_not(None)).group_by(journal.c.trader_id)):
                self.trader_seq[trader] = int(last)

    def add_account(self, account: Account, held: dict[str, Position]) -> None:
        """An account created after the start (by the admin API or the CLI)."""
        if account.id not in self.accounts:
            self.accounts[account.id] = account
            self.positions[account.id] = dict(held)

    def exposure(self, trader_id: UUID) -> Totals:
        return self.totals.setdefault(trader_id, Totals())

    def put_order(self, order: Order, exec_ids: set[tuple[str, str]] | None = None) -> None:
        """The committed state of an order: kept while open, dropped (with its exec ids) once it
        is closed; a closed order is read from the store when a late report names it."""
        before = self.open.pop(order.id, None)
        if before is not None:
            self.exposure(before.trader_id).add(before, -1)
        self.to_route.pop(order.id, None)
        self.to_cancel.pop(order.id, None)
        if order.client_order_id is not None:
            self.client_ids[(order.trader_id, order.client_order_id)] = order.id
        if is_open(order):
            self._track(order)
            if exec_ids:
                self.exec_ids.setdefault(order.id, set()).update(exec_ids)
        else:
            self.exec_ids.pop(order.id, None)

    def _track(self, order: Order) -> None:
        self.open[order.id] = order
        self.exposure(order.trader_id).add(order)
        if routable(order):
            self.to_route[order.id] = None
        elif cancel_to_send(order):
            self.to_cancel[order.id] = None


# What recovery looks at, picked from the open orders in memory (one venue's each).

_SENT = frozenset({Routing.UNCONFIRMED, Routing.AT_VENUE})


def unconfirmed(open_orders: Iterable[Order], venue: str, sent_before: datetime,
                limit: int = 100) -> list[Order]:
    """Orders sent (or being sent) before ``sent_before`` that ``venue`` has not acknowledged,
    longest waiting first."""
    found = [o for o in open_orders if o.venue == venue and o.status is OrderStatus.ACCEPTED
             and o.routing is Routing.UNCONFIRMED and o.routed_at is not None
             and o.routed_at <= sent_before]
    return sorted(found, key=lambda o: o.routed_at or sent_before)[:limit]


def cancels_unanswered(open_orders: Iterable[Order], venue: str, sent_before: datetime,
                       limit: int = 100) -> list[Order]:
    """Orders waiting to cancel whose cancel went out before ``sent_before`` (or whose send
    never confirmed), still without an answer from ``venue``, least recently changed first."""
    def waiting(o: Order) -> bool:
        if o.cancel_sent_at is not None and o.cancel_sent_at <= sent_before:
            return True
        return (o.routing is Routing.UNCONFIRMED and o.routed_at is not None
                and o.routed_at <= sent_before)
    found = [o for o in open_orders if o.venue == venue
             and o.status is OrderStatus.PENDING_CANCEL and waiting(o)]
    return sorted(found, key=lambda o: o.updated_at)[:limit]


def in_flight(open_orders: Iterable[Order], venue: str) -> list[Order]:
    """Every open order that may have reached ``venue``."""
    return sorted((o for o in open_orders if o.venue == venue and o.routing in _SENT),
                  key=lambda o: o.id)


def working_at(open_orders: Iterable[Order], venue: str, limit: int) -> list[Order]:
    """Open orders ``venue`` has acknowledged, least recently changed first."""
    found = [o for o in open_orders if o.venue == venue and o.routing is Routing.AT_VENUE]
    return sorted(found, key=lambda o: o.updated_at)[:limit]
