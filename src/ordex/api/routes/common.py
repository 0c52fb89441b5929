"""Shared pieces of the route modules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from ordex.api.schemas import ErrorResponse
from ordex.bootstrap import Services
from ordex.domain.accounts import Account, Role
from ordex.domain.errors import DomainError
from ordex.domain.orders import Order
from ordex.services.orders import not_found_order

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


def as_utc(at: datetime | None) -> datetime | None:
    """A query parameter's time in UTC; a time without a zone is taken to be UTC."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


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
