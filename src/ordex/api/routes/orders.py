"""Orders: submit, read, list, cancel."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ordex.api.deps import CurrentAccount, ServicesDep, Trader
from ordex.api.errors import ApiError, error_response
from ordex.api.parsing import check_content_type, decode_json, parse_order
from ordex.api.routes.common import (
    AUTH_ERRORS,
    BODY_ERRORS,
    KEYED,
    NOT_FOUND,
    as_utc,
    command_key,
    parse_uuid,
    refusal,
    replayed,
    scope_of,
    symbol_filter,
    visible_order,
)
from ordex.api.routes.venues import market_data_notice
from ordex.api.schemas import (
    ErrorResponse,
    OrderList,
    OrderOut,
    OrderRequest,
    PreviewOut,
    cents,
    dec,
    order_json,
    orders_json,
)
from ordex.bootstrap import Services
from ordex.domain.accounts import Account, Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code, DomainError, Violation
from ordex.domain.orders import OrderStatus
from ordex.services.messages import (
    Acknowledge,
    AnyOutcome,
    Cancel,
    OrderDone,
    Refused,
    Retry,
    Submit,
)
from ordex.services.orders import not_found_order
from ordex.services.ratelimit import rate_headers, retry_after_header
from ordex.store.repository import OrderQuery

router = APIRouter(prefix="/v1/orders", tags=["orders"])

_ERR = {"model": ErrorResponse}
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": OrderOut, "description": "Replay of a client_order_id: the original order"},
    400: {**_ERR, "description": "The body is not a JSON object"},
    409: {**_ERR, "description": "client_order_id already used for a different order"},
    415: {**_ERR, "description": "The body is not sent as application/json"},
    429: {**_ERR, "description": "Too many orders this minute; see Retry-After"},
    **AUTH_ERRORS, **BODY_ERRORS,
}


@router.post(
    "", status_code=201, summary="Submit an order",
    responses={201: {"model": OrderOut, "description": "Accepted"}, **SUBMIT_RESPONSES},
    openapi_extra={**KEYED, "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": OrderRequest.model_json_schema()}},
    }},
)
async def submit_order(request: Request, services: ServicesDep, trader: Trader) -> JSONResponse:
    """Only a call that creates an order counts against the rate limit: a replay of a
    ``client_order_id`` and a refused order give their place back."""
    return await submit(services, trader, request)


async def submit(services: Services, trader: Account, request: Request) -> JSONResponse:
    """``POST /v1/orders`` by ``trader`` (its body read once the rate limit is checked); the
    route and ``OrderLane`` both answer with this."""
    limiter = services.limiter
    decision = limiter.hit(trader.id, time.monotonic(), trader.rate_limit_per_minute)
    epoch = services.clock.now().timestamp()
    if not decision.allowed:
        at = datetime.fromtimestamp(epoch + decision.retry_after, UTC).strftime("%H:%M:%S UTC")
        raise ApiError(Violation(
            Code.RATE_LIMITED, None,
            f"Rate limit reached: at most {decision.limit} orders per minute. You can send "
            f"again in {retry_after_header(decision.retry_after)} seconds (at {at}).",
            "Wait until then, or ask an administrator to raise your limit."),
            {"Retry-After": retry_after_header(decision.retry_after),
             **rate_headers(decision, epoch)})
    try:
        cmd = _order_of(request.headers.get("content-type"), await request.body(), trader.id)
        outcome = None
        if not isinstance(cmd, JSONResponse):
            key, chosen = command_key(request, cmd.client_order_id and
                                      f"client_order_id:{cmd.client_order_id}")
            outcome = await services.commands.send(Submit(key, chosen, cmd))
    except BaseException:
        limiter.refund(trader.id, decision)
        raise
    if isinstance(outcome, Refused):
        return refusal(outcome, rate_headers(limiter.refund(trader.id, decision), epoch))
    if outcome is None or not outcome.created or outcome.replay:
        decision = limiter.refund(trader.id, decision)
    headers = rate_headers(decision, epoch)
    if isinstance(cmd, JSONResponse):
        cmd.headers.update(headers)
        return cmd
    assert isinstance(outcome, OrderDone)
    headers["Location"] = f"/v1/orders/{outcome.order.id}"
    status = 201 if outcome.created else 200
    return JSONResponse(order_json(outcome.order, trader.name), status_code=status,
                        headers={**headers, **replayed(outcome)})


@router.post(
    "/preview", summary="Check an order and estimate its cost without sending it",
    responses={200: {"model": PreviewOut}, **{k: v for k, v in SUBMIT_RESPONSES.items()
                                            if k not in (200, 409, 429)}},
    openapi_extra={"requestBody": {
        "required": True,
        "content": {"application/json": {"schema": OrderRequest.model_json_schema()}},
    }},
)
async def preview_order(request: Request, services: ServicesDep, trader: Trader) -> JSONResponse:
    """Every reason the order would be refused now (the same checks as a submit, against the
    same live prices), and its estimated value and the buying power left; nothing is stored and
    the rate limit is not counted."""
    cmd = _order_of(request.headers.get("content-type"), await request.body(), trader.id,
                    problems_are_answers=True)
    if isinstance(cmd, JSONResponse):
        return cmd
    preview = await services.orders.preview(cmd)
    notice = market_data_notice(services, cmd.symbol)
    return JSONResponse({
        "accepted": not preview.violations,
        "errors": [v.as_dict() for v in preview.violations],
        "estimate": {
            "unit_price": dec(preview.unit_price), "notional": cents(preview.notional),
            "buying_power": cents(preview.buying_power),
            "buying_power_after": cents(preview.buying_power_after),
        },
        "notices": [notice] if notice else [],
    })


def _order_of(content_type: str | None, body: bytes, trader_id: UUID, *,
              problems_are_answers: bool = False) -> SubmitOrder | JSONResponse:
    """The order in ``body`` sent as ``content_type``, or the answer that refuses it."""
    bad = check_content_type(content_type)
    if bad is not None:
        return error_response([bad])
    data, bad = decode_json(body)
    if bad is not None:
        return error_response([bad])
    cmd, violations = parse_order(data, trader_id)
    if cmd is not None:
        return cmd
    if problems_are_answers and isinstance(data, dict):
        return JSONResponse({"accepted": False, "errors": [v.as_dict() for v in violations],
                             "estimate": None})
    return error_response(violations, status=422 if isinstance(data, dict) else 400)


@router.get("/{order_id}", summary="Get one order",
            responses={200: {"model": OrderOut}, **NOT_FOUND, **AUTH_ERRORS})
async def get_order(order_id: str, services: ServicesDep,
                    account: CurrentAccount) -> JSONResponse:
    order = await visible_order(services, account, order_id)
    names = await services.queries.trader_names([order.trader_id])
    return JSONResponse(order_json(order, names.get(order.trader_id)))


@router.get("", summary="List orders, newest first",
            responses={200: {"model": OrderList}, **AUTH_ERRORS})
async def list_orders(
    services: ServicesDep,
    account: CurrentAccount,
    status: Annotated[list[str] | None, Query(
        description="Filter by status; repeat or comma-separate for several")] = None,
    symbol: Annotated[str | None, Query(max_length=16)] = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    trader_id: Annotated[str | None, Query(
        description="Compliance and admin only: one trader's orders")] = None,
) -> JSONResponse:
    before = parse_uuid(cursor) if cursor else None
    if cursor and before is None:
        raise DomainError(Violation(Code.INVALID_VALUE, "cursor", "The cursor is not valid.",
                                    "Pass next_cursor from the previous page unchanged."))
    scope = scope_of(account)
    if scope is None and trader_id:
        scope = parse_uuid(trader_id)
        if scope is None:
            raise DomainError(Violation(Code.INVALID_VALUE, "trader_id",
                                        "trader_id is not a valid id.", "Use an account id."))
    query = OrderQuery(
        trader_id=scope, statuses=_statuses(status),
        symbol=symbol_filter(symbol),
        created_from=as_utc(created_from, "from"), created_to=as_utc(created_to, "to"),
        before_id=before, limit=limit,
    )
    last_seq = await services.queries.last_event_seq(
        account.id if account.role is Role.TRADER else None)
    orders = await services.queries.orders(query)
    next_cursor = str(orders[-1].id) if len(orders) == limit else None
    names = await services.queries.trader_names(o.trader_id for o in orders)
    return JSONResponse({"orders": orders_json(orders, names), "next_cursor": next_cursor,
                         "last_seq": last_seq})


@router.delete("/{order_id}", summary="Cancel an order",
               responses={200: {"model": OrderOut},
                          409: {**_ERR, "description": "The order is no longer working"},
                          **NOT_FOUND, **AUTH_ERRORS},
               openapi_extra=KEYED)
async def cancel_order(order_id: str, request: Request, services: ServicesDep,
                       trader: Trader) -> JSONResponse:
    oid = parse_uuid(order_id)
    if oid is None:
        raise DomainError(not_found_order(order_id))
    return _order_answer(await services.commands.send(
        Cancel(*command_key(request), trader_id=trader.id, order_id=oid)), trader)


_FAILED_ONLY = {409: {**_ERR, "description": "The order is not failed"}}


@router.post("/{order_id}/retry", status_code=201,
             summary="Send a failed order again, as a new order with the same terms",
             responses={201: {"model": OrderOut, "description": "The new order"},
                        200: {"model": OrderOut, "description": "Retried before: that order"},
                        422: {**_ERR, "description": "The new order fails a check"},
                        **_FAILED_ONLY, **NOT_FOUND, **AUTH_ERRORS},
             openapi_extra=KEYED)
async def retry_order(order_id: str, request: Request, services: ServicesDep,
                      trader: Trader) -> JSONResponse:
    """The new order goes through validation and risk again; the failed one is acknowledged
    and points to it (``retried_as``). Retrying twice returns the same new order."""
    oid = parse_uuid(order_id)
    if oid is None:
        raise DomainError(not_found_order(order_id))
    outcome = await services.commands.send(
        Retry(*command_key(request), trader_id=trader.id, order_id=oid))
    return _order_answer(outcome, trader, created=201)


@router.post("/{order_id}/acknowledge", summary="Close a failed order",
             responses={200: {"model": OrderOut}, **_FAILED_ONLY, **NOT_FOUND, **AUTH_ERRORS},
             openapi_extra=KEYED)
async def acknowledge_order(order_id: str, request: Request, services: ServicesDep,
                            trader: Trader) -> JSONResponse:
    oid = parse_uuid(order_id)
    if oid is None:
        raise DomainError(not_found_order(order_id))
    return _order_answer(await services.commands.send(
        Acknowledge(*command_key(request), trader_id=trader.id, order_id=oid)), trader)


def _order_answer(outcome: AnyOutcome, trader: Account, *, created: int = 200) -> JSONResponse:
    """The order a command left, or the command's refusal; ``created`` is the status of an
    answer whose command made a new order (with its Location)."""
    if isinstance(outcome, Refused):
        return refusal(outcome)
    assert isinstance(outcome, OrderDone)
    headers = replayed(outcome)
    if created != 200:
        headers["Location"] = f"/v1/orders/{outcome.order.id}"
    return JSONResponse(order_json(outcome.order, trader.name),
                        status_code=created if outcome.created else 200, headers=headers)


def _statuses(values: list[str] | None) -> frozenset[OrderStatus] | None:
    if not values:
        return None
    wanted: set[OrderStatus] = set()
    for part in (p.strip().lower() for v in values for p in v.split(",")):
        if not part:
            continue
        try:
            wanted.add(OrderStatus(part))
        except ValueError:
            raise DomainError(Violation(
                Code.INVALID_CHOICE, "status", f"'{part[:32]}' is not an order status.",
                "Use one or more of: " + ", ".join(s.value for s in OrderStatus) + "."),
            ) from None
    return frozenset(wanted) or None
