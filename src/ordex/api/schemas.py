"""Wire shapes: pydantic models document the API; ``*_json`` functions build the responses.

Decimals travel as strings in responses; requests accept strings or numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from ordex.clock import iso
from ordex.domain.accounts import Account, RiskLimits
from ordex.domain.fills import Fill
from ordex.domain.instruments import Instrument
from ordex.domain.money import in_cents, on_tick, shown_average, tidy
from ordex.domain.orders import Order

DecimalIn = Decimal | str
DecimalStr = str


class OrderRequest(BaseModel):
    """``POST /v1/orders``: one order. Decimal fields accept a JSON number or a string."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=16, examples=["AAPL"])
    side: Literal["buy", "sell"]
    quantity: DecimalIn = Field(examples=["10"])
    type: Literal["market", "limit"]
    limit_price: DecimalIn | None = Field(default=None, examples=["189.50"])
    stop_loss: DecimalIn | None = None
    take_profit: DecimalIn | None = None
    time_in_force: Literal["day", "gtc", "ioc", "fok"] = "day"
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64,
                                        pattern=r"^[A-Za-z0-9._:\-]{1,64}$")
    max_slippage_pct: DecimalIn | None = Field(
        default=None, examples=["0.5"],
        description="market orders: the worst fill price, in percent from the price at "
                    "submission; what cannot fill within it is cancelled")
    timeout_seconds: int | None = Field(
        default=None, ge=1, le=86_400, examples=[30],
        description="cancel whatever is not filled this many seconds after acceptance")
    venue: str | None = Field(
        default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._\-]{1,32}$",
        examples=["SIM"],
        description="the venue to send the order to (GET /v1/venues lists them); left out: "
                    "the default venue")


class ErrorItem(BaseModel):
    code: str
    field: str | None
    message: str
    hint: str


class ErrorResponse(BaseModel):
    errors: list[ErrorItem]


class OrderOut(BaseModel):
    id: str
    trader_id: str
    trader_name: str | None
    client_order_id: str | None
    symbol: str
    side: Literal["buy", "sell"]
    type: Literal["market", "limit"]
    quantity: DecimalStr
    limit_price: DecimalStr | None
    stop_loss: DecimalStr | None
    take_profit: DecimalStr | None
    time_in_force: Literal["day", "gtc", "ioc", "fok"]
    status: str
    filled_quantity: DecimalStr
    remaining_quantity: DecimalStr
    average_price: DecimalStr | None = Field(description="to four decimals")
    reason: str | None
    max_slippage_pct: DecimalStr | None
    slippage_price: DecimalStr | None = Field(description="the worst price the order may fill "
                                              "at, set from max_slippage_pct on acceptance")
    timeout_seconds: int | None
    expires_at: datetime | None = Field(description="when ordex cancels what is left unfilled")
    routing: Literal["pending", "unconfirmed", "at_venue", "done"] = Field(
        description="pending: not sent yet; unconfirmed: sent, the venue has not answered (the "
                    "order may or may not be there; ordex asks it); at_venue: acknowledged")
    send_attempts: int
    venue: str | None = Field(description="the venue the order goes to (or went to)")
    acknowledged_at: datetime | None = Field(description="failed orders: when the trader "
                                             "closed it")
    retry_of: str | None
    retried_as: str | None
    created_at: datetime
    updated_at: datetime


class OrderList(BaseModel):
    orders: list[OrderOut]
    next_cursor: str | None
    last_seq: int = Field(description="the stream's last seq before this list was read: "
                          "subscribe with after=last_seq to follow these orders live")


class PositionOut(BaseModel):
    symbol: str
    quantity: DecimalStr
    average_cost: DecimalStr
    market_price: DecimalStr | None
    market_value: DecimalStr | None
    unrealized_pnl: DecimalStr | None
    realized_pnl: DecimalStr


class PositionList(BaseModel):
    positions: list[PositionOut]


class LimitsOut(BaseModel):
    max_position_shares: DecimalStr
    max_position_notional: DecimalStr
    max_order_notional: DecimalStr
    daily_loss_limit: DecimalStr
    max_open_orders: int


class AccountOut(BaseModel):
    id: str
    name: str
    role: str
    cash: DecimalStr
    reserved_cash: DecimalStr
    buying_power: DecimalStr
    equity: DecimalStr
    day_pnl: DecimalStr
    allow_short: bool
    open_orders: int
    rate_limit_per_minute: int
    limits: LimitsOut


class InstrumentOut(BaseModel):
    symbol: str
    name: str
    tick_size: DecimalStr
    lot_size: DecimalStr
    status: str
    reference_price: DecimalStr


class InstrumentList(BaseModel):
    instruments: list[InstrumentOut]


class AccountSummary(BaseModel):
    id: str
    name: str
    role: str
    cash: DecimalStr
    allow_short: bool
    rate_limit_per_minute: int | None
    limits: LimitsOut
    key_status: Literal["active", "revoked"]
    key_revoked_at: datetime | None


class AccountSummaryList(BaseModel):
    accounts: list[AccountSummary]


class NewAccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._\-]+$")
    role: Literal["trader", "compliance", "admin"] = "trader"
    cash: Decimal = Field(default=Decimal(0), ge=0, le=Decimal("1e12"), allow_inf_nan=False,
                  decimal_places=8)
    allow_short: bool = False


class NewAccountOut(BaseModel):
    account: AccountSummary
    api_key: str


class LimitsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_position_shares: Decimal | None = Field(default=None, gt=0, le=Decimal("1e12"),
                                                allow_inf_nan=False,
                  decimal_places=8)
    max_position_notional: Decimal | None = Field(default=None, gt=0, le=Decimal("1e15"),
                                                  allow_inf_nan=False,
                  decimal_places=8)
    max_order_notional: Decimal | None = Field(default=None, gt=0, le=Decimal("1e15"),
                                               allow_inf_nan=False,
                  decimal_places=8)
    daily_loss_limit: Decimal | None = Field(default=None, gt=0, le=Decimal("1e15"),
                                             allow_inf_nan=False,
                  decimal_places=8)
    max_open_orders: int | None = Field(default=None, gt=0, le=100_000)
    rate_limit_per_minute: int | None = Field(default=None, gt=0, le=100_000)
    allow_short: bool | None = None
    cash: Decimal | None = Field(default=None, ge=0, le=Decimal("1e12"), allow_inf_nan=False,
                  decimal_places=8)


class FillOut(BaseModel):
    id: str
    order_id: str
    trader_id: str
    trader_name: str | None
    symbol: str
    side: Literal["buy", "sell"]
    timestamp: datetime
    quantity: DecimalStr
    price: DecimalStr
    venue: str
    commission: DecimalStr
    exec_id: str


class FillList(BaseModel):
    fills: list[FillOut]
    next_cursor: str | None


class QuoteOut(BaseModel):
    symbol: str
    status: str
    reference_price: DecimalStr
    bid: DecimalStr | None
    ask: DecimalStr | None
    last: DecimalStr | None
    timestamp: datetime | None


class EstimateOut(BaseModel):
    unit_price: DecimalStr | None = Field(description="price reserved per share")
    notional: DecimalStr | None = Field(description="quantity x unit_price, before fees")
    buying_power: DecimalStr
    buying_power_after: DecimalStr


class NoticeOut(BaseModel):
    code: str
    message: str


class PreviewOut(BaseModel):
    accepted: bool
    errors: list[ErrorItem]
    estimate: EstimateOut | None
    notices: list[NoticeOut] = []


class CapabilityOut(BaseModel):
    supported: bool | None
    how: str
    learnt_at: datetime | None


class VenueSessionOut(BaseModel):
    state: str
    problem: str | None
    hint: str | None


class VenueOut(BaseModel):
    name: str
    default: bool = Field(description="orders that name no venue go here")
    session: VenueSessionOut
    capabilities: dict[str, CapabilityOut]
    notices: list[str]


class VenueList(BaseModel):
    venues: list[VenueOut]


class QuoteList(BaseModel):
    quotes: list[QuoteOut]


class PricePointOut(BaseModel):
    timestamp: datetime
    price: DecimalStr


class PriceHistory(BaseModel):
    symbol: str
    points: list[PricePointOut]


class EventOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    seq: int
    type: str
    order_id: str
    trader_id: str
    trader_name: str | None
    status: str
    timestamp: datetime
    client_order_id: str | None
    filled_quantity: DecimalStr
    remaining_quantity: DecimalStr
    average_price: DecimalStr | None
    last_fill_quantity: DecimalStr | None
    last_fill_price: DecimalStr | None
    last_fill_venue: str | None
    last_fill_time: datetime | None
    reason: str | None


class EventList(BaseModel):
    events: list[EventOut]
    last_seq: int


def fill_json(fill: Fill, trader_name: str | None) -> dict[str, Any]:
    return {
        "id": str(fill.id), "order_id": str(fill.order_id), "trader_id": str(fill.trader_id),
        "trader_name": trader_name, "symbol": fill.symbol, "side": fill.side.value,
        "timestamp": timestamp(fill.timestamp), "quantity": dec(fill.quantity),
        "price": dec(fill.price), "venue": fill.venue, "commission": cents(fill.commission),
        "exec_id": fill.exec_id,
    }


def dec(value: Decimal | None) -> str | None:
    return None if value is None else format(tidy(value), "f")


def cents(value: Decimal | None) -> str | None:
    """Money as shown: rounded half to even to the cent."""
    return None if value is None else dec(in_cents(value))


def ticked(value: Decimal | None, tick: Decimal) -> str | None:
    """A price as shown: the nearest multiple of the instrument's tick."""
    return None if value is None else dec(on_tick(value, tick))


def avg(value: Decimal | None) -> str | None:
    """An average price or cost as shown: four decimals."""
    return None if value is None else dec(shown_average(value))


def order_json(order: Order, trader_name: str | None) -> dict[str, Any]:
    return {
        "id": str(order.id), "trader_id": str(order.trader_id), "trader_name": trader_name,
        "client_order_id": order.client_order_id, "symbol": order.symbol,
        "side": order.side.value, "type": order.type.value, "quantity": dec(order.quantity),
        "limit_price": dec(order.limit_price), "stop_loss": dec(order.stop_loss),
        "take_profit": dec(order.take_profit), "time_in_force": order.time_in_force.value,
        "status": order.status.value, "filled_quantity": dec(order.filled_quantity),
        "remaining_quantity": dec(order.remaining_quantity),
        "average_price": avg(order.average_price), "reason": order.reason,
        "max_slippage_pct": dec(order.max_slippage_pct),
        "slippage_price": dec(order.slippage_price), "timeout_seconds": order.timeout_seconds,
        "expires_at": timestamp(order.expires_at) if order.expires_at else None,
        "routing": order.routing.value, "send_attempts": order.send_attempts,
        "venue": order.venue,
        "acknowledged_at": timestamp(order.acknowledged_at) if order.acknowledged_at else None,
        "retry_of": order.extra.get("retry_of"), "retried_as": order.extra.get("retried_as"),
        "created_at": timestamp(order.created_at), "updated_at": timestamp(order.updated_at),
    }


timestamp = iso


def limits_json(limits: RiskLimits) -> dict[str, Any]:
    return {
        "max_position_shares": dec(limits.max_position_shares),
        "max_position_notional": dec(limits.max_position_notional),
        "max_order_notional": dec(limits.max_order_notional),
        "daily_loss_limit": dec(limits.daily_loss_limit),
        "max_open_orders": limits.max_open_orders,
    }


def account_summary_json(account: Account) -> dict[str, Any]:
    return {
        "id": str(account.id), "name": account.name, "role": account.role.value,
        "cash": cents(account.cash), "allow_short": account.allow_short,
        "rate_limit_per_minute": account.rate_limit_per_minute,
        "limits": limits_json(account.limits),
        "key_status": "revoked" if account.key_revoked_at else "active",
        "key_revoked_at": iso(account.key_revoked_at) if account.key_revoked_at else None,
    }


def instrument_json(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol, "name": instrument.name,
        "tick_size": dec(instrument.tick_size), "lot_size": dec(instrument.lot_size),
        "status": instrument.status.value,
        "reference_price": ticked(instrument.reference_price, instrument.tick_size),
    }


def orders_json(orders: Sequence[Order], names: dict[UUID, str]) -> list[dict[str, Any]]:
    return [order_json(o, names.get(o.trader_id)) for o in orders]
