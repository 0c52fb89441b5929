"""Shared pieces of the route modules."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from ordex.api.errors import ApiError, error_response
from ordex.api.parsing import SYMBOL_RE, check_content_type, decode_json, shown
from ordex.api.schemas import ErrorResponse
from ordex.bootstrap import Services
from ordex.domain.accounts import Account, Role
from ordex.domain.errors import Code, DomainError, Violation
from ordex.domain.orders import Order
from ordex.services.messages import AnyOutcome, Refused
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
IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255
# the answer to a repeated Idempotency-Key is the first one again, marked so
REPLAYED = "Idempotent-Replayed"
IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_KEY, "in": "header", "required": False,
    "description": "A key of your choice, new for each request (a UUID, say): the same request "
                   "sent again with the same key gets the first answer again, marked "
                   f"`{REPLAYED}: true`, and is not carried out twice. The service keeps "
                   "the answers of its 10,000 most recent keyed commands.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY,
               "pattern": "^[\\x21-\\x7E][\\x20-\\x7E]*$"},
}
# a key ordex derives is unique to one request: this process, then a count
_PROCESS = secrets.token_hex(8)
_requests = itertools.count(1)
# the openapi_extra of a route that sends a command
KEYED: dict[str, Any] = {"parameters": [IDEMPOTENCY_PARAMETER]}


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


def command_key(request: Request, derived: str | None = None) -> tuple[str, bool]:
    """A command's idempotency key and whether the client chose it: the ``Idempotency-Key``
    header (a token or a quoted string of 1 to 255 printable ASCII characters), else
    ``derived``, else one new to this request."""
    given = request.headers.get(IDEMPOTENCY_KEY)
    if given is None:
        return derived or f"request:{_PROCESS}-{next(_requests)}", False
    key = given.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise ApiError(Violation(
            Code.INVALID_VALUE, IDEMPOTENCY_KEY,
            f"The {IDEMPOTENCY_KEY} header must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII "
            "characters.", "Send a new random key, for example a UUID, for each new request."))
    return key, True


def replayed(outcome: AnyOutcome) -> dict[str, str]:
    """The header that marks the answer to a repeated ``Idempotency-Key``."""
    return {REPLAYED: "true"} if outcome.replay else {}


def refusal(outcome: Refused, headers: dict[str, str] | None = None) -> JSONResponse:
    """A refused command answered as the error it has always been."""
    return error_response(list(outcome.violations),
                          headers={**(headers or {}), **replayed(outcome)})
