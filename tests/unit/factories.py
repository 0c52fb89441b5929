"""Small builders for domain objects used across unit tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from ordex.domain.accounts import Account, RiskLimits, Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.instruments import Instrument, InstrumentStatus
from ordex.domain.orders import Order, OrderStatus, OrderType, Routing, Side, TimeInForce
from ordex.domain.validation import AccountState

T0 = datetime(2026, 1, 5, 14, 30, 0, 123456, tzinfo=UTC)
TRADER = UUID("00000000-0000-7000-8000-000000000001")


def instrument(symbol: str = "AAPL", ref: str = "100.00", status: InstrumentStatus =
               InstrumentStatus.ACTIVE, tick: str = "0.01", lot: str = "1") -> Instrument:
    return Instrument(symbol, f"{symbol} Inc.", Decimal(tick), Decimal(lot), status, Decimal(ref))


def account(cash: str = "10000", allow_short: bool = False, **limits: object) -> Account:
    return Account(id=TRADER, name="t", role=Role.TRADER, cash=Decimal(cash),
                   allow_short=allow_short, limits=RiskLimits(**limits))  # type: ignore[arg-type]


def state(cash: str = "10000", positions: dict[str, str] | None = None,
          open_orders: list[Order] | None = None, daily_pnl: str = "0",
          allow_short: bool = False, **limits: object) -> AccountState:
    return AccountState(
        account(cash, allow_short, **limits),
        {s: Decimal(q) for s, q in (positions or {}).items()},
        open_orders or [], Decimal(daily_pnl))


def submit(side: str = "buy", quantity: str = "10", type: str = "limit",
           limit_price: str | None = "100.00", symbol: str = "AAPL",
           stop_loss: str | None = None, take_profit: str | None = None) -> SubmitOrder:
    return SubmitOrder(
        trader_id=TRADER, symbol=symbol, side=Side(side), type=OrderType(type),
        quantity=Decimal(quantity), limit_price=Decimal(limit_price) if limit_price else None,
        stop_loss=Decimal(stop_loss) if stop_loss else None,
        take_profit=Decimal(take_profit) if take_profit else None)


def order(side: str = "buy", quantity: str = "10", reserve: str = "100", symbol: str = "AAPL",
          status: OrderStatus = OrderStatus.ACCEPTED, filled: str = "0") -> Order:
    return Order(id=uuid4(), trader_id=TRADER, symbol=symbol, side=Side(side),
                 type=OrderType.LIMIT, quantity=Decimal(quantity), time_in_force=TimeInForce.DAY,
                 created_at=T0, updated_at=T0, limit_price=Decimal(reserve),
                 reserve_price=Decimal(reserve), status=status, filled_quantity=Decimal(filled))


def derived_routing(o: Order) -> Routing:
    """The venue lifecycle as ordex derived it from the columns before it was stored: the stored
    ``routing`` must always agree with it."""
    if o.status.is_terminal:
        return Routing.DONE
    if o.venue_order_id is not None:
        return Routing.AT_VENUE
    if o.routed_at is not None:
        return Routing.UNCONFIRMED
    return Routing.PENDING
