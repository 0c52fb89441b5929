"""Fills, quotes and an order's status events (long poll)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from ordex.api.deps import CurrentAccount, ServicesDep, invalid_key
from ordex.api.routes.common import (
    AUTH_ERRORS,
    NOT_FOUND,
    as_utc,
    parse_uuid,
    scope_of,
    symbol_filter,
    visible_order,
)
from ordex.api.schemas import (
    EventList,
    FillList,
    PriceHistory,
    QuoteList,
    QuoteOut,
    fill_json,
    ticked,
    timestamp,
)
from ordex.bootstrap import Services
from ordex.bus.memory import Subscription, trader_topic
from ordex.domain.accounts import Role
from ordex.domain.errors import Code, DomainError, Violation
from ordex.domain.fills import Fill
from ordex.domain.instruments import Instrument
from ordex.domain.status import OrderEvent

router = APIRouter(prefix="/v1", tags=["execution"])

MAX_WAIT_SECONDS = 30.0


@router.get("/orders/{order_id}/fills", summary="The fills of one order, newest first",
            responses={200: {"model": FillList}, **NOT_FOUND, **AUTH_ERRORS})
async def order_fills(order_id: str, services: ServicesDep,
                      account: CurrentAccount) -> JSONResponse:
    order = await visible_order(services, account, order_id)
    oid = order.id
    fills = await services.queries.fills(order_id=oid, limit=10_000)
    return JSONResponse({"fills": await _fills_json(services, fills), "next_cursor": None})


@router.get("/fills", summary="The trader's fills across orders, newest first",
            responses={200: {"model": FillList}, **AUTH_ERRORS})
async def list_fills(
    services: ServicesDep,
    account: CurrentAccount,
    symbol: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    before = parse_uuid(cursor) if cursor else None
    if cursor and before is None:
        raise DomainError(Violation(Code.INVALID_VALUE, "cursor", "The cursor is not valid.",
                                    "Pass next_cursor from the previous page unchanged."))
    fills = await services.queries.fills(
        trader_id=scope_of(account), symbol=symbol_filter(symbol),
        since=as_utc(since, "from"), until=as_utc(until, "to"), before_id=before, limit=limit)
    next_cursor = str(fills[-1].id) if len(fills) == limit else None
    return JSONResponse({"fills": await _fills_json(services, fills),
                         "next_cursor": next_cursor})


async def _fills_json(services: Services, fills: list[Fill]) -> list[dict[str, Any]]:
    names = await services.queries.trader_names(f.trader_id for f in fills)
    return [fill_json(f, names.get(f.trader_id)) for f in fills]


@router.get("/quotes", summary="Latest bid, ask and last trade of every symbol",
            responses={200: {"model": QuoteList}, **AUTH_ERRORS})
async def list_quotes(services: ServicesDep, _: CurrentAccount) -> JSONResponse:
    instruments = await services.queries.instruments()
    return JSONResponse({"quotes": [_quote_json(services, i) for i in instruments]})


@router.get("/quotes/{symbol}", summary="Latest bid, ask and last trade of a symbol",
            responses={200: {"model": QuoteOut}, **NOT_FOUND, **AUTH_ERRORS})
async def get_quote(symbol: str, services: ServicesDep, _: CurrentAccount) -> JSONResponse:
    instrument = await _instrument(services, symbol)
    return JSONResponse(_quote_json(services, instrument))


@router.get("/quotes/{symbol}/history",
            summary="Recent prices of a symbol, one point a second, oldest first",
            responses={200: {"model": PriceHistory}, **NOT_FOUND, **AUTH_ERRORS})
async def quote_history(
    symbol: str, services: ServicesDep, _: CurrentAccount,
    since: Annotated[datetime | None, Query(alias="from")] = None,
) -> JSONResponse:
    instrument = await _instrument(services, symbol)
    points = services.market.history(instrument.symbol, as_utc(since, "from"))
    return JSONResponse({"symbol": instrument.symbol, "points": [
        {"timestamp": timestamp(p.timestamp), "price": ticked(p.price, instrument.tick_size)}
        for p in points]})


async def _instrument(services: Services, symbol: str) -> Instrument:
    wanted = symbol.strip().upper()[:16]
    instrument = await services.queries.instrument(wanted)
    if instrument is None:
        raise DomainError(Violation(
            Code.NOT_FOUND, "symbol", f"Unknown symbol '{wanted}'.",
            "GET /v1/instruments lists every symbol."))
    return instrument


def _quote_json(services: Services, instrument: Instrument) -> dict[str, Any]:
    tick = instrument.tick_size
    body: dict[str, Any] = {
        "symbol": instrument.symbol, "status": instrument.status.value,
        "reference_price": ticked(instrument.reference_price, tick),
        "bid": None, "ask": None, "last": None, "timestamp": None,
    }
    quote = services.market.quote(instrument.symbol)
    if quote is not None:
        body.update(bid=ticked(quote.bid, tick), ask=ticked(quote.ask, tick),
                    last=ticked(quote.last, tick),
                    timestamp=timestamp(quote.timestamp))
    return body


@router.get("/orders/{order_id}/events",
            summary="Status events of one order after a sequence number (long poll)",
            responses={200: {"model": EventList}, **NOT_FOUND, **AUTH_ERRORS})
async def order_events(
    order_id: str,
    services: ServicesDep,
    account: CurrentAccount,
    after: Annotated[int, Query(ge=0, le=2**62, description="last seq already seen")] = 0,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS,
                                 description="seconds to wait for a new event")] = 0,
) -> JSONResponse:
    order = await visible_order(services, account, order_id)
    oid = order.id
    own = account.role is Role.TRADER  # a trader's own positions; the service's for others
    events = await services.queries.events(after, order_id=oid, per_trader=own)
    if not events and wait > 0:
        with (services.bus.subscribe(trader_topic(order.trader_id)) as sub,
              services.accounts.session(account) as key_changed):
            stopper = asyncio.create_task(key_changed.wait())
            stopper.add_done_callback(lambda _: sub.stop())
            try:
                events = await _events_within(services, sub, oid, after, own, wait)
            finally:
                stopper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stopper
            if key_changed.is_set():
                raise invalid_key()
    last = events[-1].position(service_wide=not own) if events else after
    return JSONResponse({"events": [e.as_json(service_wide=not own) for e in events],
                         "last_seq": last})


async def _events_within(services: Services, sub: Subscription, order_id: UUID, after: int,
                         own: bool, wait: float) -> list[OrderEvent]:
    """The order's events after ``after`` once one is committed, or none after ``wait`` seconds
    (or as soon as ``sub`` is stopped). The store is read when the bus shows an event of this
    order, or may have dropped one (the subscription lagged)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    events = await services.queries.events(after, order_id=order_id, per_trader=own)
    while not events and not sub.stopped:
        left = deadline - loop.time()
        if left <= 0:
            break
        await sub.wait(left)
        ours = any(frame.order_id == order_id for frame in sub.take())
        if sub.lagged or ours:
            sub.reset()
            events = await services.queries.events(after, order_id=order_id, per_trader=own)
    return events
