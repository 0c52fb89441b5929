"""The trader's account, positions, and the instruments they can trade."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ordex.api.deps import CurrentAccount, ServicesDep
from ordex.api.routes.common import AUTH_ERRORS
from ordex.api.schemas import (
    AccountOut,
    InstrumentList,
    PositionList,
    avg,
    cents,
    dec,
    instrument_json,
    limits_json,
    ticked,
)
from ordex.domain.errors import Code, DomainError, Violation

router = APIRouter(prefix="/v1", tags=["account"])


@router.get("/account", summary="Cash, buying power, equity, day P&L and limits",
            responses={200: {"model": AccountOut}, **AUTH_ERRORS})
async def get_account(services: ServicesDep, account: CurrentAccount) -> JSONResponse:
    view = await services.queries.account(account.id)
    if view is None:
        raise DomainError(Violation(Code.UNAUTHORIZED, None, "Your account no longer exists.",
                                    "Ask an administrator for a new API key."))
    a = view.account
    return JSONResponse({
        "id": str(a.id), "name": a.name, "role": a.role.value, "cash": cents(a.cash),
        "reserved_cash": cents(view.reserved_cash), "buying_power": cents(view.buying_power),
        "equity": cents(view.equity), "day_pnl": cents(view.day_pnl),
        "allow_short": a.allow_short,
        "open_orders": view.open_orders,
        "rate_limit_per_minute": a.rate_limit_per_minute
        or services.settings.rate_limit_per_minute,
        "limits": limits_json(a.limits),
    })


@router.get("/positions", summary="Open positions marked to market",
            responses={200: {"model": PositionList}, **AUTH_ERRORS})
async def get_positions(services: ServicesDep, account: CurrentAccount) -> JSONResponse:
    views = await services.queries.positions(account.id)
    return JSONResponse({"positions": [{
        "symbol": v.row.symbol, "quantity": dec(v.row.quantity),
        "average_cost": avg(v.row.average_cost), "market_price": ticked(v.market_price, v.tick),
        "market_value": cents(v.market_value), "unrealized_pnl": cents(v.unrealized_pnl),
        "realized_pnl": cents(v.row.realized_pnl),
    } for v in views]})


@router.get("/instruments", summary="Every instrument, with its status and reference price",
            responses={200: {"model": InstrumentList}, **AUTH_ERRORS})
async def get_instruments(services: ServicesDep, _: CurrentAccount) -> JSONResponse:
    instruments = await services.queries.instruments()
    return JSONResponse({"instruments": [instrument_json(i) for i in instruments]})
