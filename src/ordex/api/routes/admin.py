"""Administration: accounts, keys and per-trader risk limits."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ordex.api.deps import Admin, ServicesDep
from ordex.api.routes.common import (
    AUTH_ERRORS,
    BODY_ERRORS,
    KEYED,
    NOT_FOUND,
    body_schema,
    command_key,
    json_model,
    parse_uuid,
    refusal,
    replayed,
)
from ordex.api.schemas import (
    AccountSummary,
    AccountSummaryList,
    ErrorResponse,
    LimitsUpdate,
    NewAccountOut,
    NewAccountRequest,
    account_summary_json,
)
from ordex.domain.accounts import Role
from ordex.domain.errors import Code, DomainError, Violation
from ordex.services.messages import AccountDone, LimitsChange, Refused, UpdateAccount

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/accounts", summary="Every account",
            responses={200: {"model": AccountSummaryList}, **AUTH_ERRORS})
async def list_accounts(services: ServicesDep, _: Admin) -> JSONResponse:
    accounts = await services.queries.accounts()
    return JSONResponse({"accounts": [account_summary_json(a) for a in accounts]})


@router.post("/accounts", status_code=201, summary="Create an account and issue its API key",
             responses={201: {"model": NewAccountOut}, **AUTH_ERRORS, **BODY_ERRORS},
             openapi_extra=body_schema(NewAccountRequest))
async def create_account(request: Request, services: ServicesDep, _: Admin) -> JSONResponse:
    body = await json_model(request, NewAccountRequest, "account")
    issued = await services.accounts.create(body.name, Role(body.role), body.cash,
                                            allow_short=body.allow_short)
    return JSONResponse({"account": account_summary_json(issued.account),
                         "api_key": issued.api_key}, status_code=201)


@router.patch("/accounts/{account_id}", summary="Set a trader's risk limits and rate limit",
              responses={200: {"model": AccountSummary}, **NOT_FOUND, **AUTH_ERRORS,
                         **BODY_ERRORS,
                         409: {"model": ErrorResponse}},
              openapi_extra={**body_schema(LimitsUpdate), **KEYED})
async def update_account(account_id: str, request: Request, services: ServicesDep,
                         admin: Admin) -> JSONResponse:
    body = await json_model(request, LimitsUpdate, "change")
    aid = _account_id(account_id)
    current = await services.queries.account(aid)
    if current is None:
        raise DomainError(Violation(Code.NOT_FOUND, "id", f"No account with id {account_id}.",
                                    "GET /v1/admin/accounts lists the accounts."))
    limits = LimitsChange(
        max_position_shares=body.max_position_shares,
        max_position_notional=body.max_position_notional,
        max_order_notional=body.max_order_notional, daily_loss_limit=body.daily_loss_limit,
        max_open_orders=body.max_open_orders)
    outcome = await services.commands.send(UpdateAccount(
        *command_key(request), admin_id=admin.id, account_id=aid,
        limits=limits if limits.given() else None,
        allow_short=body.allow_short, rate_limit_per_minute=body.rate_limit_per_minute,
        cash=body.cash))
    if isinstance(outcome, Refused):
        return refusal(outcome)
    assert isinstance(outcome, AccountDone)
    return JSONResponse(account_summary_json(outcome.account), headers=replayed(outcome))


@router.post("/accounts/{account_id}/rotate-key",
             summary="Issue a new API key for an account; its old key stops working at once",
             responses={200: {"model": NewAccountOut}, **NOT_FOUND, **AUTH_ERRORS})
async def rotate_key(account_id: str, services: ServicesDep, _: Admin) -> JSONResponse:
    """The old (or revoked) key is refused within a second everywhere: REST, long polls, and
    open streams, which are closed with a reason. The new key is shown only in this answer."""
    issued = await services.accounts.issue_key(_account_id(account_id))
    return JSONResponse({"account": account_summary_json(issued.account),
                         "api_key": issued.api_key})


@router.post("/accounts/{account_id}/revoke-key",
             summary="Revoke an account's API key; rotate-key issues a new one",
             responses={200: {"model": AccountSummary}, **NOT_FOUND, **AUTH_ERRORS})
async def revoke_key(account_id: str, services: ServicesDep, _: Admin) -> JSONResponse:
    """The key is refused within a second everywhere: REST, long polls, and open streams, which
    are closed with a reason. Revoking a revoked key changes nothing."""
    account = await services.accounts.revoke_key(_account_id(account_id))
    return JSONResponse(account_summary_json(account))


def _account_id(text: str) -> UUID:
    aid = parse_uuid(text)
    if aid is None:
        raise DomainError(Violation(Code.NOT_FOUND, "id", f"No account with id {text}.",
                                    "GET /v1/admin/accounts lists the accounts."))
    return aid
