"""The closed set of error and denial codes, each with a plain-words message and a hint.

Interfaces only render these; they never invent their own wording.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Code(StrEnum):
    # request shape
    INVALID_JSON = "invalid_json"
    INVALID_BODY = "invalid_body"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BODY_TOO_LARGE = "body_too_large"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    INVALID_VALUE = "invalid_value"
    INVALID_NUMBER = "invalid_number"
    TOO_PRECISE = "too_precise"
    OUT_OF_RANGE = "out_of_range"
    INVALID_CHOICE = "invalid_choice"
    INVALID_TEXT = "invalid_text"
    # order rules (FR-002)
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNKNOWN_VENUE = "unknown_venue"
    SYMBOL_HALTED = "symbol_halted"
    SYMBOL_SUSPENDED = "symbol_suspended"
    SYMBOL_DELISTED = "symbol_delisted"
    QUANTITY_NOT_POSITIVE = "quantity_not_positive"
    QUANTITY_NOT_LOT_MULTIPLE = "quantity_not_lot_multiple"
    LIMIT_PRICE_REQUIRED = "limit_price_required"
    LIMIT_PRICE_NOT_ALLOWED = "limit_price_not_allowed"
    PRICE_NOT_POSITIVE = "price_not_positive"
    PRICE_OFF_TICK = "price_off_tick"
    PRICE_OUT_OF_BAND = "price_out_of_band"
    STOP_LOSS_WRONG_SIDE = "stop_loss_wrong_side"
    TAKE_PROFIT_WRONG_SIDE = "take_profit_wrong_side"
    SLIPPAGE_NOT_FOR_LIMIT = "slippage_not_for_limit_orders"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INSUFFICIENT_POSITION = "insufficient_position"
    # risk rules (FR-003)
    MAX_POSITION_SHARES = "max_position_shares_exceeded"
    MAX_POSITION_NOTIONAL = "max_position_notional_exceeded"
    MAX_ORDER_NOTIONAL = "max_order_notional_exceeded"
    DAILY_LOSS_LIMIT = "daily_loss_limit_breached"
    MAX_OPEN_ORDERS = "max_open_orders_exceeded"
    # access and flow
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    RATE_LIMITED = "rate_limited"
    ORDER_NOT_CANCELABLE = "order_not_cancelable"
    ORDER_NOT_FAILED = "order_not_failed"
    CLIENT_ORDER_ID_CONFLICT = "client_order_id_conflict"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    UNAVAILABLE = "service_unavailable"
    # notices: the order is fine, but the trader should know
    NO_MARKET_DATA = "no_market_data"
    INTERNAL = "internal_error"


class Violation(msgspec.Struct, frozen=True, gc=False):
    """One thing wrong with a request, said so that a trader can fix it."""

    code: Code
    field: str | None
    message: str
    hint: str

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code.value, "field": self.field, "message": self.message,
                "hint": self.hint}


class DomainError(Exception):
    """Raised when a command cannot be carried out; carries every violation found."""

    def __init__(self, violations: list[Violation] | Violation) -> None:
        self.violations = violations if isinstance(violations, list) else [violations]
        super().__init__("; ".join(v.message for v in self.violations))


class IllegalTransition(Exception):
    """An order event that the state machine does not allow from the order's status."""

    def __init__(self, status: str, event: str) -> None:
        self.status = status
        self.event = event
        super().__init__(f"an order that is {status} cannot take the event {event!r}")


class IllegalRouting(IllegalTransition):
    """A move of an order's venue lifecycle (pending, unconfirmed, at venue, done) that
    ``ROUTES`` does not allow."""

    def __init__(self, routing: str, move: str, why: str = "") -> None:
        self.status = routing
        self.event = move
        Exception.__init__(self, f"an order whose routing is {routing} cannot take the move "
                                 f"{move!r}" + (f": {why}" if why else ""))
