"""SimulatedExchange: a matching engine with synthetic liquidity, fees, halts and fault switches.

Synchronous and pure apart from the injected clock and its ``random.Random(seed)``: the same seed
and the same calls give the same reports and quotes. Adapters (``inprocess.py``, the TCP server)
wrap it; admin commands (``move_market``, ``halt``, ``set_liquidity``, ``faults``) drive it.

With a journal (``journal.py``) every call that changed a client order, made a fill or handed out
an id is written to disk before it returns its reports, and a new exchange on the same journal
starts where the old one stopped: the same resting orders, fills and id counters.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ordex.domain.money import CENT, ZERO, is_multiple, qty
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.base import (
    ExecutionReport,
    NewOrder,
    Quote,
    ReportKind,
    VenueOrder,
    VenueOrderState,
)
from ordex.venues.simulated.book import OrderBook, Resting
from ordex.venues.simulated.faults import Faults
from ordex.venues.simulated.journal import ExchangeJournal, FillRow, OrderRow, Saved
from ordex.venues.simulated.market import (
    MarketConfig,
    SymbolMarket,
    synthetic_orders,
    synthetic_trade,
    walk,
)
from ordex.venues.simulated.matching import Match, Outcome, execute, match

MAKER = "maker"
TAKER = "taker"
_BP = Decimal(10_000)
MARKET_SAVE_INTERVAL = timedelta(seconds=1)

InstrumentSpec = tuple[str, Decimal | str, Decimal | str, Decimal | str]


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fees in basis points of a fill's notional; a negative maker fee is a rebate."""

    maker_bp: Decimal = Decimal("0.5")
    taker_bp: Decimal = Decimal("1.0")

    def fee(self, notional: Decimal, liquidity: str) -> Decimal:
        """The fee for one fill, rounded to cents half up."""
        bp = self.maker_bp if liquidity == MAKER else self.taker_bp
        return (notional * bp / _BP).quantize(CENT, rounding=ROUND_HALF_UP)

    def as_dict(self) -> dict[str, str]:
        return {"maker_bp": str(self.maker_bp), "taker_bp": str(self.taker_bp)}


@dataclass(slots=True, eq=False)
class SimOrder:
    """Everything the exchange knows of one client order it received."""

    client_order_id: str
    venue_order_id: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    limit_price: Decimal | None
    received_at: datetime
    status: VenueOrderState = VenueOrderState.OPEN
    reason: str | None = None
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fills: list[ExecutionReport] = field(default_factory=list)
    ack_lost: bool = False

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled if self.status.is_open else ZERO

    @property
    def average_price(self) -> Decimal | None:
        return self.notional / self.filled if self.filled else None

    def view(self, venue: str) -> VenueOrder:
        return VenueOrder(
            venue=venue, client_order_id=self.client_order_id,
            venue_order_id=self.venue_order_id, symbol=self.symbol, side=self.side,
            type=self.type, quantity=self.quantity, filled_quantity=self.filled,
            average_price=self.average_price, state=self.status, limit_price=self.limit_price,
            reason=self.reason)

    def as_dict(self) -> dict[str, object]:
        average = self.average_price
        return {
            "client_order_id": self.client_order_id, "venue_order_id": self.venue_order_id,
            "symbol": self.symbol, "side": self.side.value, "type": self.type.value,
            "time_in_force": self.time_in_force.value, "quantity": str(self.quantity),
            "limit_price": None if self.limit_price is None else str(self.limit_price),
            "received_at": self.received_at.isoformat(), "status": self.status.value,
            "reason": self.reason, "filled_quantity": str(self.filled),
            "average_price": None if average is None else str(average),
            "ack_lost": self.ack_lost,
            "fills": [{"exec_id": f.exec_id, "timestamp": f.timestamp.isoformat(),
                       "quantity": str(f.last_quantity), "price": str(f.last_price),
                       "fee": str(f.fee), "liquidity": f.liquidity} for f in self.fills],
        }


def _system_clock() -> datetime:
    return datetime.now(UTC)


class SimulatedExchange:
    """A simulated venue: one order book per symbol, client orders and synthetic liquidity."""

    def __init__(self, name: str, instruments: Iterable[InstrumentSpec],
                 config: MarketConfig | None = None, fees: FeeSchedule | None = None,
                 seed: int = 0, clock: Callable[[], datetime] = _system_clock,
                 journal: ExchangeJournal | None = None) -> None:
        self.name = name
        self.config = config or MarketConfig()
        self.fees = fees or FeeSchedule()
        self.faults = Faults()
        self.seed = seed
        self.steps = 0
        self.duplicates_refused = 0
        self._rng = random.Random(seed)
        self._clock = clock
        self._markets: dict[str, SymbolMarket] = {}
        self._books: dict[str, OrderBook] = {}
        self._orders: dict[str, SimOrder] = {}  # every order received, by client order id
        self._by_venue_id: dict[str, SimOrder] = {}
        self._open: dict[str, SimOrder] = {}
        self._fills: list[ExecutionReport] = []
        self._exec_seq = 0
        self._order_seq = 0
        self._synthetic_seq = 0
        self._id_prefix = name
        self._journal = journal
        self._dirty: dict[str, SimOrder] = {}  # changed since the last save
        self._unsaved_fills: list[ExecutionReport] = []
        self._saved_counters = (0, 0)
        self._markets_saved_at: datetime | None = None
        self._saved_markets: dict[str, tuple[Decimal, Decimal | None]] = {}  # as on disk
        self._saved_meta: dict[str, str] = {}
        # fills made while the journal was read back (resting orders the market crossed)
        self.restored_reports: list[ExecutionReport] = []
        for symbol, reference, tick, lot in instruments:
            tick_d, lot_d, ref_d = Decimal(tick), Decimal(lot), Decimal(reference)
            if tick_d <= 0 or lot_d <= 0 or ref_d <= 0:
                raise ValueError(f"{symbol}: reference price, tick and lot must be positive")
            market = SymbolMarket(
                symbol=symbol, tick=tick_d, lot=lot_d, reference=ref_d, mid=ref_d,
                depth_levels=self.config.depth_levels, size_min=self.config.level_size_min,
                size_max=self.config.level_size_max, last=ref_d)
            market.mid = market.mid_ticks * tick_d
            self._markets[symbol] = market
            self._books[symbol] = OrderBook(symbol)
        now = self._clock()
        if journal is not None:
            self._restore(journal.load())
        for market in self._markets.values():
            self.restored_reports += self._refresh(market, now)
        self._save(markets=True)

    # ---- client orders ------------------------------------------------------------------------

    def submit(self, order: NewOrder) -> list[ExecutionReport]:
        """Receive a new order: ACK then any immediate fills, or a single REJECTED report."""
        return self._saved(self._submit(order))

    def submit_many(self, orders: list[NewOrder]) -> list[list[ExecutionReport]]:
        """Orders received together: each matched in turn, all journaled in one transaction
        before any report goes out."""
        reports = [self._submit(order) for order in orders]
        self._save()
        return reports

    def _submit(self, order: NewOrder) -> list[ExecutionReport]:
        now = self._clock()
        existing = self._orders.get(order.client_order_id)
        if existing is not None:
            self.duplicates_refused += 1
            return [self._new_report(
                ReportKind.REJECTED, now, order.client_order_id, order.symbol, order.side,
                reason=f"duplicate client order id {order.client_order_id}: already received "
                       f"as {existing.venue_order_id} ({existing.status.value})",
                duplicate=True)]
        self._order_seq += 1
        sim = SimOrder(
            client_order_id=order.client_order_id,
            venue_order_id=f"{self._id_prefix}-o{self._order_seq}",
            symbol=order.symbol, side=order.side, type=order.type,
            time_in_force=order.time_in_force, quantity=order.quantity,
            limit_price=order.limit_price if order.type is OrderType.LIMIT else None,
            received_at=now)
        self._orders[sim.client_order_id] = sim
        self._by_venue_id[sim.venue_order_id] = sim
        self._dirty[sim.client_order_id] = sim
        refusal = self._check(order)
        if refusal is not None:
            return [self._finish(sim, VenueOrderState.REJECTED, ReportKind.REJECTED, refusal, now)]

        market, book = self._markets[sim.symbol], self._books[sim.symbol]
        done = execute(book, sim.side, sim.type, sim.time_in_force, sim.quantity, sim.limit_price)
        if done.outcome is Outcome.KILL:
            assert done.reason is not None
            return [self._finish(sim, VenueOrderState.REJECTED, ReportKind.REJECTED, done.reason,
                                 now)]
        reports: list[ExecutionReport] = []
        ack = self._order_report(sim, ReportKind.ACK, now)
        if self.faults.lose_acks > 0:
            self.faults.lose_acks -= 1
            sim.ack_lost = True
        else:
            reports.append(ack)
        self._open[sim.client_order_id] = sim
        reports += self._trades(market, sim, done.matches, now)
        if done.outcome is Outcome.FILLED:
            return reports
        if done.filled > 0 and self.faults.reject_after_partial:
            self.faults.reject_after_partial = False
            reason = (f"{self.name} rejected the remaining {qty(done.remaining)} after a partial "
                      "fill (simulated fault)")
            reports.append(self._finish(sim, VenueOrderState.REJECTED, ReportKind.REJECTED,
                                        reason, now))
        elif done.outcome is Outcome.CANCEL:
            reports.append(self._finish(sim, VenueOrderState.CANCELLED, ReportKind.CANCELLED,
                                        done.reason, now))
        else:
            assert sim.limit_price is not None
            book.add(Resting(sim.venue_order_id, sim.side, sim.limit_price, done.remaining))
        return reports

    def cancel(self, client_order_id: str) -> list[ExecutionReport]:
        """Cancel a resting order: CANCELLED, or CANCEL_REJECTED if unknown or already done."""
        return self._saved(self._cancel(client_order_id))

    def _cancel(self, client_order_id: str) -> list[ExecutionReport]:
        now = self._clock()
        sim = self._orders.get(client_order_id)
        if sim is None:
            # The report needs a symbol and a side; an unknown order has neither.
            return [self._new_report(ReportKind.CANCEL_REJECTED, now, client_order_id, "",
                                     Side.BUY, reason=f"unknown client order id {client_order_id}")]
        if not sim.status.is_open:
            return [self._order_report(
                sim, ReportKind.CANCEL_REJECTED, now,
                reason=f"order {client_order_id} is already {sim.status.value}")]
        self._books[sim.symbol].remove(sim.venue_order_id)
        return [self._finish(sim, VenueOrderState.CANCELLED, ReportKind.CANCELLED,
                             "cancelled on request", now)]

    def expire_day_orders(self, reason: str = "end of day") -> list[ExecutionReport]:
        """End the session: every open DAY order expires (EXPIRED reports); GTC orders stay."""
        now = self._clock()
        reports: list[ExecutionReport] = []
        for sim in list(self._open.values()):
            if sim.time_in_force is TimeInForce.DAY:
                self._books[sim.symbol].remove(sim.venue_order_id)
                reports.append(self._finish(sim, VenueOrderState.EXPIRED, ReportKind.EXPIRED,
                                            reason, now))
        return self._saved(reports)

    # ---- what the venue knows -----------------------------------------------------------------

    def query(self, client_order_id: str) -> VenueOrder | None:
        """The order as the venue knows it; None if unknown or received less than
        ``faults.visibility_lag`` seconds ago."""
        sim = self._orders.get(client_order_id)
        if sim is None:
            return None
        if self.faults.visibility_lag > 0:
            age = self._clock() - sim.received_at
            if age < timedelta(seconds=self.faults.visibility_lag):
                return None
        return sim.view(self.name)

    def terms(self, client_order_id: str) -> NewOrder | None:
        """The order as the client sent it, or None if it never arrived."""
        sim = self._orders.get(client_order_id)
        if sim is None:
            return None
        return NewOrder(client_order_id=sim.client_order_id, symbol=sim.symbol, side=sim.side,
                        type=sim.type, quantity=sim.quantity, time_in_force=sim.time_in_force,
                        limit_price=sim.limit_price)

    def open_orders(self) -> list[VenueOrder]:
        return [sim.view(self.name) for sim in self._open.values()]

    def orders(self) -> list[VenueOrder]:
        """Every order ever received, oldest first."""
        return [sim.view(self.name) for sim in self._orders.values()]

    def fills_since(self, since: datetime) -> list[ExecutionReport]:
        """Every client fill report stamped at or after ``since``, in the order they were made."""
        return [r for r in self._fills if r.timestamp >= since]

    def symbols(self) -> list[str]:
        return list(self._markets)

    def book(self, symbol: str) -> OrderBook:
        return self._books[self._market(symbol).symbol]

    def quote(self, symbol: str) -> Quote:
        return self._quote(self._market(symbol), self._clock())

    def quotes(self, symbols: Iterable[str] | None = None) -> list[Quote]:
        """The quote of every symbol, or of those of ``symbols`` the exchange lists."""
        now = self._clock()
        if symbols is None:
            return [self._quote(m, now) for m in self._markets.values()]
        markets = self._markets
        return [self._quote(markets[s], now) for s in symbols if s in markets]

    # ---- market data and admin commands -------------------------------------------------------

    def step(self) -> list[ExecutionReport]:
        """One market-data tick for every symbol not halted: the mid walks (maybe gaps), the
        synthetic liquidity is refreshed (trading through client orders it crosses), and maybe a
        synthetic taker trades. Returns the client fill reports."""
        now = self._clock()
        self.steps += 1
        reports: list[ExecutionReport] = []
        for market in self._markets.values():
            if market.halted:
                continue
            walk(market, self.config, self._rng)
            reports += self._refresh(market, now)
            trade = synthetic_trade(market, self.config, self._rng)
            if trade is not None:
                reports += self._synthetic_take(market, *trade, now)
        due = self._markets_saved_at is None or now - self._markets_saved_at >= \
            MARKET_SAVE_INTERVAL
        return self._saved(reports, markets=due)

    def move_market(self, symbol: str, price: Decimal) -> list[ExecutionReport]:
        """Set the mid to ``price`` and refresh the synthetic liquidity around it; resting client
        orders it crosses fill at their own limit. Raises ValueError for a price off the tick."""
        market = self._market(symbol)
        price = Decimal(price)
        if not price.is_finite() or price <= 0 or not is_multiple(price, market.tick):
            raise ValueError(f"{price} is not a positive price on the tick {market.tick}")
        market.mid = price
        return self._saved(self._refresh(market, self._clock()), markets=True)

    def set_liquidity(self, symbol: str, depth_levels: int | None = None,
                      level_size: Decimal | None = None,
                      level_size_max: Decimal | None = None) -> list[ExecutionReport]:
        """Change a symbol's synthetic depth (levels per side; 0 for none) or level size (fixed,
        or drawn between ``level_size`` and ``level_size_max``), then refresh it."""
        market = self._market(symbol)
        if depth_levels is not None:
            if depth_levels < 0:
                raise ValueError("depth_levels must not be negative")
            market.depth_levels = depth_levels
        if level_size is not None:
            high = Decimal(level_size_max) if level_size_max is not None else Decimal(level_size)
            if not 0 < Decimal(level_size) <= high:
                raise ValueError("0 < level_size <= level_size_max")
            market.size_min, market.size_max = Decimal(level_size), high
        return self._saved(self._refresh(market, self._clock()))

    def halt(self, symbol: str, reason: str = "trading halt") -> None:
        """Stop trading in ``symbol``: new orders are rejected, resting orders stay unfilled."""
        market = self._market(symbol)
        market.halted, market.halt_reason = True, reason

    def resume(self, symbol: str) -> list[ExecutionReport]:
        """Reopen ``symbol``; liquidity is refreshed and may trade through resting orders."""
        market = self._market(symbol)
        market.halted, market.halt_reason = False, None
        return self._saved(self._refresh(market, self._clock()))

    def snapshot(self) -> dict[str, object]:
        """Everything, JSON-able: orders with fills, books, quotes, markets, faults."""
        now = self._clock()
        return {
            "venue": self.name,
            "time": now.isoformat(),
            "seed": self.seed,
            "steps": self.steps,
            "duplicates_refused": self.duplicates_refused,
            "orders": [sim.as_dict() for sim in self._orders.values()],
            "books": {s: b.snapshot() for s, b in self._books.items()},
            "quotes": {m.symbol: _quote_dict(self._quote(m, now))
                       for m in self._markets.values()},
            "markets": {s: m.as_dict() for s, m in self._markets.items()},
            "faults": self.faults.as_dict(),
            "config": self.config.as_dict(),
            "fees": self.fees.as_dict(),
        }

    # ---- the journal --------------------------------------------------------------------------

    @property
    def persistent(self) -> bool:
        return self._journal is not None

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _saved(self, reports: list[ExecutionReport], markets: bool = False
               ) -> list[ExecutionReport]:
        self._save(markets)
        return reports

    def _save(self, markets: bool = False) -> None:
        """Write what changed since the last save, in one transaction, before anyone is told."""
        if self._journal is None:
            return
        counters = (self._exec_seq, self._order_seq)
        if not (markets or self._dirty or self._unsaved_fills or counters != self._saved_counters):
            return
        saved_markets = self._saved_markets
        moved = [(m.symbol, m.mid, m.last) for m in self._markets.values()
                 if saved_markets.get(m.symbol) != (m.mid, m.last)]
        meta = {"exec_seq": str(self._exec_seq), "order_seq": str(self._order_seq),
                "steps": str(self.steps), "duplicates_refused": str(self.duplicates_refused)}
        saved_meta = self._saved_meta
        self._journal.save(
            {k: v for k, v in meta.items() if saved_meta.get(k) != v},
            [_order_row(sim) for sim in self._dirty.values()],
            [_fill_row(report) for report in self._unsaved_fills],
            moved)
        for symbol, mid, last in moved:
            saved_markets[symbol] = (mid, last)
        saved_meta.update(meta)
        self._dirty.clear()
        self._unsaved_fills.clear()
        self._saved_counters = counters
        self._markets_saved_at = self._clock()

    def _restore(self, saved: Saved) -> None:
        """Take back what a journal holds: counters, prices, orders, fills, the resting book."""
        meta = saved.meta
        self._id_prefix = meta.get("id_prefix", self.name)
        self._exec_seq = int(meta.get("exec_seq", 0))
        self._order_seq = int(meta.get("order_seq", 0))
        self._saved_counters = (self._exec_seq, self._order_seq)
        self.steps = int(meta.get("steps", 0))
        self.duplicates_refused = int(meta.get("duplicates_refused", 0))
        for symbol, (mid, last) in saved.markets.items():
            market = self._markets.get(symbol)
            if market is not None and mid > 0 and is_multiple(mid, market.tick):
                market.mid = mid
                market.last = last if last is not None else market.last
        for book in self._books.values():
            book.remove_synthetic()
        for row in saved.orders:
            sim = SimOrder(
                client_order_id=row.client_order_id, venue_order_id=row.venue_order_id,
                symbol=row.symbol, side=Side(row.side), type=OrderType(row.type),
                time_in_force=TimeInForce(row.time_in_force), quantity=row.quantity,
                limit_price=row.limit_price, received_at=row.received_at,
                status=VenueOrderState(row.status), reason=row.reason, filled=row.filled,
                notional=row.notional, ack_lost=row.ack_lost)
            self._orders[sim.client_order_id] = sim
            self._by_venue_id[sim.venue_order_id] = sim
            if not sim.status.is_open:
                continue
            self._open[sim.client_order_id] = sim
            book = self._books.get(sim.symbol)
            if book is not None and sim.limit_price is not None and sim.leaves > 0:
                book.add(Resting(sim.venue_order_id, sim.side, sim.limit_price, sim.leaves))
        for f in saved.fills:
            report = ExecutionReport(
                venue=self.name, client_order_id=f.client_order_id, exec_id=f.exec_id,
                kind=ReportKind.FILL, timestamp=f.timestamp, symbol=f.symbol, side=Side(f.side),
                venue_order_id=f.venue_order_id, last_quantity=f.quantity, last_price=f.price,
                fee=f.fee, cum_quantity=f.cum_quantity, leaves_quantity=f.leaves_quantity,
                liquidity=f.liquidity)
            self._fills.append(report)
            owner = self._orders.get(f.client_order_id)
            if owner is not None:
                owner.fills.append(report)

    # ---- internals ----------------------------------------------------------------------------

    def _market(self, symbol: str) -> SymbolMarket:
        market = self._markets.get(symbol)
        if market is None:
            raise KeyError(f"unknown symbol {symbol} at {self.name}")
        return market

    def _check(self, order: NewOrder) -> str | None:
        """Why the order is refused, in plain words; None if it may trade."""
        market = self._markets.get(order.symbol)
        if market is None:
            return f"unknown symbol {order.symbol} at {self.name}"
        if market.halted:
            return f"{order.symbol} is halted at {self.name}: {market.halt_reason}"
        quantity = order.quantity
        if not quantity.is_finite() or quantity <= 0:
            return f"quantity must be a positive number, got {quantity}"
        if not is_multiple(quantity, market.lot):
            return f"quantity {quantity} is not a multiple of the lot size {market.lot}"
        if order.type is OrderType.LIMIT:
            price = order.limit_price
            if price is None:
                return "a limit order needs a limit price"
            if not price.is_finite() or price <= 0:
                return f"limit price must be a positive number, got {price}"
            if not is_multiple(price, market.tick):
                return f"limit price {price} is not a multiple of the tick size {market.tick}"
        return None

    def _refresh(self, market: SymbolMarket, now: datetime) -> list[ExecutionReport]:
        """Replace the synthetic orders of ``market``. New synthetic orders that cross resting
        client orders trade with them (clients are makers), unless the symbol is halted: then
        crossing synthetic orders are left out."""
        book = self._books[market.symbol]
        book.remove_synthetic()
        reports: list[ExecutionReport] = []
        for side, price, size in synthetic_orders(market, self.config, self._rng):
            if not book.crosses(side, price):
                book.add(self._synthetic(side, price, size))
                continue
            if market.halted:
                continue
            matches = match(book, side, size, price)
            reports += self._trades(market, None, matches, now)
            left = size - sum((m.quantity for m in matches), ZERO)
            if left > 0:
                book.add(self._synthetic(side, price, left))
        return reports

    def _synthetic(self, side: Side, price: Decimal, size: Decimal) -> Resting:
        self._synthetic_seq += 1
        return Resting(f"syn-{self._synthetic_seq}", side, price, size, synthetic=True)

    def _synthetic_take(self, market: SymbolMarket, side: Side, size: Decimal,
                        now: datetime) -> list[ExecutionReport]:
        """A synthetic taker trades up to ``size`` at the best price on the other side."""
        book = self._books[market.symbol]
        best = book.asks.best() if side is Side.BUY else book.bids.best()
        if best is None:
            return []
        return self._trades(market, None, match(book, side, size, best.price), now)

    def _trades(self, market: SymbolMarket, taker: SimOrder | None, matches: Iterable[Match],
                now: datetime) -> list[ExecutionReport]:
        """Book the matches: fill reports for client takers and client makers; synthetic ones
        only set the last price."""
        reports: list[ExecutionReport] = []
        for m in matches:
            market.last = m.price
            if taker is not None:
                reports.append(self._fill(taker, m.quantity, m.price, TAKER, now))
            if not m.maker_synthetic:
                maker = self._by_venue_id[m.maker_id]
                reports.append(self._fill(maker, m.quantity, m.price, MAKER, now))
        return reports

    def _fill(self, sim: SimOrder, quantity: Decimal, price: Decimal, liquidity: str,
              now: datetime) -> ExecutionReport:
        sim.filled += quantity
        sim.notional += quantity * price
        if sim.filled == sim.quantity:
            sim.status = VenueOrderState.FILLED
            self._open.pop(sim.client_order_id, None)
        self._dirty[sim.client_order_id] = sim
        report = self._order_report(
            sim, ReportKind.FILL, now, last_quantity=quantity, last_price=price,
            fee=self.fees.fee(quantity * price, liquidity), liquidity=liquidity)
        sim.fills.append(report)
        self._fills.append(report)
        self._unsaved_fills.append(report)
        return report

    def _finish(self, sim: SimOrder, state: VenueOrderState, kind: ReportKind,
                reason: str | None, now: datetime) -> ExecutionReport:
        sim.status, sim.reason = state, reason
        self._open.pop(sim.client_order_id, None)
        self._dirty[sim.client_order_id] = sim
        return self._order_report(sim, kind, now, reason=reason)

    def _order_report(self, sim: SimOrder, kind: ReportKind, now: datetime,
                      **extra: object) -> ExecutionReport:
        return self._new_report(kind, now, sim.client_order_id, sim.symbol, sim.side,
                                venue_order_id=sim.venue_order_id, cum_quantity=sim.filled,
                                leaves_quantity=sim.leaves, **extra)

    def _new_report(self, kind: ReportKind, now: datetime, client_order_id: str, symbol: str,
                    side: Side, **extra: object) -> ExecutionReport:
        self._exec_seq += 1
        return ExecutionReport(venue=self.name, client_order_id=client_order_id,
                               exec_id=f"{self._id_prefix}-e{self._exec_seq}", kind=kind,
                               timestamp=now, symbol=symbol, side=side, **extra)  # type: ignore[arg-type]

    def _quote(self, market: SymbolMarket, now: datetime) -> Quote:
        book = self._books[market.symbol]
        return Quote(symbol=market.symbol, bid=book.best_bid(), ask=book.best_ask(),
                     last=market.last, timestamp=now, halted=market.halted)


def _quote_dict(quote: Quote) -> dict[str, object]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {"bid": text(quote.bid), "ask": text(quote.ask), "last": text(quote.last),
            "timestamp": quote.timestamp.isoformat(), "halted": quote.halted}


def _order_row(sim: SimOrder) -> OrderRow:
    return OrderRow(
        sim.client_order_id, sim.venue_order_id, sim.symbol, sim.side.value, sim.type.value,
        sim.time_in_force.value, sim.quantity, sim.limit_price, sim.received_at,
        sim.status.value, sim.reason, sim.filled, sim.notional, sim.ack_lost)


def _fill_row(report: ExecutionReport) -> FillRow:
    assert report.venue_order_id is not None
    return FillRow(
        report.exec_id, report.client_order_id, report.venue_order_id, report.symbol,
        report.side.value, report.timestamp, report.last_quantity, report.last_price, report.fee,
        report.liquidity, report.cum_quantity, report.leaves_quantity)
