"""Shared pieces of the route modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from ordex.api.errors import ApiError
from ordex.api.parsing import SYMBOL_RE, check_content_type, decode_json, shown
from ordex.api.schemas import ErrorResponse
from ordex.bootstrap import Services
from ordex.domain.accounts import Account, Role
from ordex.domain.errors import Code, DomainError, Violation
from ordex.domain.orders import Order
from ordex.services.orders import not_found_order

M = TypeVar("M", bound=BaseModel)
_ERR = {"model": ErrorResponse}

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**_ERR, "description": "No API key, or one that is not valid"},
    403: {**_ERR, "description": "The account's role may not do this"},
    422: {**_ERR, "description": "A parameter is not valid"},
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {**_ERR, "description": "The body is larger than the limit (64 KiB by default)"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {**_ERR, "description": "Not found"}}


def scope_of(account: Account) -> UUID | None:
    """Traders see their own orders and fills; compliance and admin see everyone's."""
    return account.id if account.role is Role.TRADER else None


def as_utc(at: datetime | None, field: str) -> datetime | None:
    """A query parameter's time in UTC; a time without a zone is taken to be UTC. A time whose
    offset takes it outside the calendar (0001-01-01T00:00:00+00:01) is refused."""
    if at is None:
        return None
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError:
        raise DomainError(Violation(
            Code.OUT_OF_RANGE, field, f"{field} is outside the calendar once moved to UTC.",
            "Send a time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.")) from None


async def json_model(request: Request, model: type[M], what: str) -> M:
    """A body read as exact JSON (decimals stay decimals, NaN and duplicate keys are refused)
    and then checked against ``model``; what is wrong is a 4xx in words."""
    bad = check_content_type(request.headers.get("content-type"), what)
    if bad is None:
        data, bad = decode_json(await request.body())
    if bad is not None:
        raise ApiError(bad, status=None if bad.code is not Code.INVALID_JSON else 422)
    if not isinstance(data, dict):
        raise ApiError(Violation(Code.INVALID_BODY, None,
                                 f"The {what} must be a JSON object.",
                                 "Send a JSON object; /docs describes its fields."), status=422)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads ``model`` with ``json_model``."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


def symbol_filter(symbol: str | None) -> str | None:
    """A ``symbol`` query parameter, upper-cased; one that cannot be a ticker is refused."""
    if not symbol:
        return None
    wanted = symbol.strip().upper()
    if not SYMBOL_RE.fullmatch(wanted):
        raise DomainError(Violation(
            Code.INVALID_TEXT, "symbol", f"'{shown(symbol)}' is not a ticker symbol.",
            "Use letters, digits, '.' or '-', at most 16 characters, for example AAPL."))
    return wanted


async def visible_order(services: Services, account: Account, order_id: str) -> Order:
    """The order if this account may see it; otherwise the same 404 as for a missing one."""
    oid = parse_uuid(order_id)
    order = await services.queries.order(oid, scope_of(account)) if oid else None
    if order is None:
        raise DomainError(not_found_order(order_id))
    return order


def parse_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None
