"""Turn a raw order request body into a command, or into every reason it cannot be one.

Bodies are parsed by hand rather than by the web framework so that numbers keep full decimal
precision, NaN and Infinity are refused, and every error reads as a trader would want it.
"""

from __future__ import annotations

import difflib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from uuid import UUID

from ordex.domain.commands import SubmitOrder
from ordex.domain.errors import Code, Violation
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.domain.routing import VENUE_NAME

MAX_BODY_BYTES = 64 * 1024
MAX_INTEGER_DIGITS = 12
MAX_FRACTION_DIGITS = 8
SMALLEST_STEP = Decimal(1).scaleb(-MAX_FRACTION_DIGITS)
BLANKS = " \t\r\n"
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,15}$")
CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")

FIELDS = ("symbol", "side", "quantity", "type", "limit_price", "stop_loss", "take_profit",
          "time_in_force", "client_order_id", "max_slippage_pct", "timeout_seconds", "venue")
DECIMAL_FIELDS = {"quantity": "Quantity", "limit_price": "Limit price", "stop_loss": "Stop loss",
                  "take_profit": "Take profit", "max_slippage_pct": "Max slippage"}
E = TypeVar("E", Side, OrderType, TimeInForce)
EXAMPLE = '{"symbol": "AAPL", "side": "buy", "quantity": "10", "type": "market"}'


class _BadConstant(ValueError):
    pass


class _DuplicateKey(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _BadConstant(name)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Parsers disagree on which of two equal keys wins, so an order must not depend on it."""
    data = dict(pairs)
    if len(data) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


def check_content_type(header: str | None, what: str = "order") -> Violation | None:
    """JSON, or no content type at all; a form or text body is refused rather than guessed at."""
    if header is None:
        return None
    media = header.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and
                                       media.endswith("+json")):
        return None
    return Violation(
        Code.UNSUPPORTED_MEDIA_TYPE, None,
        f"The {what} was sent as '{shown(media, 60)}'; ordex reads it as JSON only.",
        f"Send the {what} as a JSON object with the header 'Content-Type: application/json'.")


def decode_json(body: bytes) -> tuple[Any, Violation | None]:
    """Parse JSON keeping decimals exact; NaN, Infinity and invalid text are refused."""
    if len(body) > MAX_BODY_BYTES:
        return None, Violation(
            Code.BODY_TOO_LARGE, None,
            f"The request body is {len(body):,} bytes; the limit is {MAX_BODY_BYTES:,} bytes.",
            "Send one order per request, without padding.")
    if not body.strip():
        return None, Violation(Code.INVALID_JSON, None, "The request body is empty.",
                               f"Send the order as JSON, for example {EXAMPLE}.")
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal,
                          parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicates)
    except _BadConstant as exc:
        return None, Violation(
            Code.INVALID_NUMBER, None, f"{exc} is not a number ordex accepts.",
            "Send finite numbers only, such as 100 or \"189.50\".")
    except _DuplicateKey as exc:
        key = shown(str(exc), 40)
        return None, Violation(
            Code.INVALID_BODY, key, f"The field '{key}' appears more than once.",
            "Send each field once.")
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, Violation(
            Code.INVALID_JSON, None, "The request body is not valid JSON.",
            f"Send the order as a JSON object, for example {EXAMPLE}.")
    return data, None


def parse_order(data: Any, trader_id: UUID) -> tuple[SubmitOrder | None, list[Violation]]:
    if not isinstance(data, dict):
        kind = _json_kind(data)
        return None, [Violation(
            Code.INVALID_BODY, None, f"The order must be a JSON object, not {kind}.",
            f"Send one order as an object, for example {EXAMPLE}.")]
    found: list[Violation] = []
    for key in data:
        if key not in FIELDS:
            found.append(_unknown_field(key))
    symbol = _symbol(data, found)
    side = _choice(data, "side", Side, found, required=True)
    order_type = _choice(data, "type", OrderType, found, required=True)
    tif = _choice(data, "time_in_force", TimeInForce, found, required=False) or TimeInForce.DAY
    numbers = {name: _decimal(data, name, found) for name in DECIMAL_FIELDS}
    if data.get("quantity") is None:
        found.append(Violation(Code.MISSING_FIELD, "quantity", "Quantity is required.",
                               "Add quantity, the number of shares, for example \"10\"."))
    client_order_id = _client_order_id(data, found)
    timeout = _seconds(data, "timeout_seconds", found)
    venue = _venue(data, found)
    if found or symbol is None or side is None or order_type is None:
        return None, found
    quantity = numbers["quantity"]
    assert quantity is not None
    return SubmitOrder(
        trader_id=trader_id, symbol=symbol, side=side, type=order_type, quantity=quantity,
        time_in_force=tif, limit_price=numbers["limit_price"], stop_loss=numbers["stop_loss"],
        take_profit=numbers["take_profit"], client_order_id=client_order_id,
        max_slippage_pct=numbers["max_slippage_pct"], timeout_seconds=timeout, venue=venue,
    ), []


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "a number"


def shown(value: Any, limit: int = 32) -> str:
    """A value echoed back safely: truncated, with control characters escaped."""
    try:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
    except RecursionError:
        text = _json_kind(value)
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "…"


def _unknown_field(key: str) -> Violation:
    close = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.6)
    hint = (f"Did you mean '{close[0]}'? " if close else "") + \
        "Accepted fields: " + ", ".join(FIELDS) + "."
    return Violation(Code.UNKNOWN_FIELD, shown(key, 40), f"Unknown field '{shown(key, 40)}'.",
                     hint)


def _plain(value: str) -> str | None:
    """``value`` without surrounding blanks, or None unless that is printable ASCII.

    Python would otherwise read other digits (``"１０"`` is 10), case-fold other letters onto
    ASCII ones (``"ıntc"`` is INTC) and strip control characters as if they were blanks.
    """
    text = value.strip(BLANKS)
    return text if text.isascii() and text.isprintable() else None


def _symbol(data: dict[str, Any], found: list[Violation]) -> str | None:
    value = data.get("symbol")
    if value is None:
        found.append(Violation(Code.MISSING_FIELD, "symbol", "Symbol is required.",
                               "Add the ticker you want to trade, for example \"AAPL\"."))
        return None
    if not isinstance(value, str):
        found.append(Violation(Code.INVALID_VALUE, "symbol",
                               f"Symbol must be text, not {_json_kind(value)}.",
                               "Send the ticker as a string, for example \"AAPL\"."))
        return None
    symbol = (_plain(value) or "").upper()
    if not SYMBOL_RE.fullmatch(symbol):
        found.append(Violation(
            Code.INVALID_TEXT, "symbol", f"'{shown(value)}' is not a valid ticker symbol.",
            "Use letters, digits, '.' or '-', at most 16 characters, for example \"AAPL\"."))
        return None
    return symbol


def _choice(
    data: dict[str, Any], name: str, enum: type[E], found: list[Violation], *, required: bool
) -> E | None:
    value = data.get(name)
    options = " or ".join(f'"{e.value}"' for e in enum)
    label = name.replace("_", " ").capitalize()
    if value is None:
        if required:
            found.append(Violation(Code.MISSING_FIELD, name, f"{label} is required.",
                                   f"Add {name}: {options}."))
        return None
    if isinstance(value, str):
        try:
            return enum((_plain(value) or "").lower())
        except ValueError:
            pass
    found.append(Violation(Code.INVALID_CHOICE, name,
                           f"{label} '{shown(value)}' is not one ordex knows.",
                           f"Use {options}."))
    return None


def _decimal(data: dict[str, Any], name: str, found: list[Violation]) -> Decimal | None:
    if name not in data or data[name] is None:
        return None
    value = data[name]
    label = DECIMAL_FIELDS[name]
    example = "100" if name == "quantity" else "189.50"
    not_a_number = Violation(Code.INVALID_NUMBER, name,
                             f"{label} '{shown(value)}' is not a number.",
                             f"Send a number such as {example} or \"{example}\".")
    if isinstance(value, str):
        text = _plain(value) if len(value) <= 64 else None
        try:
            number = Decimal(text) if text else None
        except InvalidOperation:
            number = None
        if number is None:
            found.append(not_a_number)
            return None
    elif isinstance(value, Decimal):
        number = value
    else:
        found.append(Violation(Code.INVALID_NUMBER, name,
                               f"{label} must be a number, not {_json_kind(value)}.",
                               f"Send a number such as {example} or \"{example}\"."))
        return None
    if not number.is_finite():
        found.append(Violation(Code.INVALID_NUMBER, name, f"{label} must be a finite number.",
                               f"Send a number such as {example}."))
        return None
    if number.is_zero():
        return Decimal(0)
    # Checked exactly, before any arithmetic: the decimal context would round past 28 digits
    # (10.000...0001 becoming 10) and overflow past an exponent of 999999.
    if number.adjusted() >= MAX_INTEGER_DIGITS:
        found.append(Violation(Code.OUT_OF_RANGE, name, f"{label} is far too large.",
                               f"Use at most {MAX_INTEGER_DIGITS} digits before the decimal "
                               "point."))
        return None
    if number.adjusted() < -MAX_FRACTION_DIGITS or number.quantize(SMALLEST_STEP) != number:
        found.append(Violation(Code.TOO_PRECISE, name,
                               f"{label} has more than {MAX_FRACTION_DIGITS} decimal places.",
                               f"Round it to at most {MAX_FRACTION_DIGITS} decimal places."))
        return None
    number = number.normalize()
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    return number.quantize(Decimal(1)) if exponent >= 0 else number


def _seconds(data: dict[str, Any], name: str, found: list[Violation]) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    number: Decimal | None = None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = _plain(value) if len(value) <= 16 else None
        try:
            number = Decimal(text) if text else None
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite() or number != number.to_integral_value() \
            or abs(number) >= 10 ** MAX_INTEGER_DIGITS:
        found.append(Violation(Code.INVALID_NUMBER, name,
                               f"Timeout '{shown(value)}' is not a whole number of seconds.",
                               "Send whole seconds, such as 30."))
        return None
    return int(number)


def _client_order_id(data: dict[str, Any], found: list[Violation]) -> str | None:
    value = data.get("client_order_id")
    if value is None:
        return None
    if not isinstance(value, str) or not CLIENT_ORDER_ID_RE.fullmatch(value):
        found.append(Violation(
            Code.INVALID_TEXT, "client_order_id",
            f"client_order_id '{shown(value)}' is not valid.",
            "Use 1 to 64 characters: letters, digits, '.', '_', ':' or '-'."))
        return None
    return value


def _venue(data: dict[str, Any], found: list[Violation]) -> str | None:
    """The venue the order names (checked against the configured ones on submit)."""
    value = data.get("venue")
    if value is None:
        return None
    if not isinstance(value, str) or not VENUE_NAME.fullmatch(value):
        found.append(Violation(
            Code.INVALID_TEXT, "venue", f"Venue '{shown(value)}' is not a venue name.",
            "Use the name of a venue (GET /v1/venues lists them), or leave venue out to use "
            "the default one."))
        return None
    return value
