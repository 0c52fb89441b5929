"""Matching an incoming order against a book: price-time priority, fills at the resting price.

``match`` takes liquidity; ``execute`` adds what the order type and time in force decide about
the rest (rest it, cancel it, or kill the whole order before anything trades).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from ordex.domain.money import ZERO, qty
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.venues.simulated.book import OrderBook, marketable, opposite


@dataclass(frozen=True, slots=True)
class Match:
    """One trade between the incoming order and one resting order, at the resting price."""

    maker_id: str
    maker_synthetic: bool
    quantity: Decimal
    price: Decimal


class Outcome(StrEnum):
    FILLED = "filled"  # nothing left
    REST = "rest"  # the remainder rests in the book (the caller adds it)
    CANCEL = "cancel"  # the remainder is cancelled (market, IOC)
    KILL = "kill"  # fill or kill that could not fill: nothing traded


@dataclass(frozen=True, slots=True)
class Execution:
    matches: tuple[Match, ...]
    filled: Decimal
    remaining: Decimal
    outcome: Outcome
    reason: str | None = None


def match(book: OrderBook, side: Side, quantity: Decimal, limit: Decimal | None) -> list[Match]:
    """Trade up to ``quantity`` against the other side at ``limit`` or better (None: any price),
    best price first and oldest first within a price; the book loses what was taken."""
    matches: list[Match] = []
    remaining = quantity
    other = book.side(opposite(side))
    while remaining > 0:
        level = other.best()
        if level is None or not marketable(side, limit, level.price):
            break
        maker = level.first()
        take = min(remaining, maker.quantity)
        book.take(maker, take)
        matches.append(Match(maker.id, maker.synthetic, take, maker.price))
        remaining -= take
    return matches


def execute(book: OrderBook, side: Side, order_type: OrderType, tif: TimeInForce,
            quantity: Decimal, limit: Decimal | None) -> Execution:
    """Match an incoming client order and decide what happens to what is left."""
    price_limit = limit if order_type is OrderType.LIMIT else None
    where = "" if price_limit is None else f" at {price_limit} or better"
    if tif is TimeInForce.FOK:
        have = book.available(side, price_limit, quantity)
        if have < quantity:
            return Execution((), ZERO, quantity, Outcome.KILL,
                             f"fill or kill: only {qty(have)} of {qty(quantity)} available{where}")
    matches = tuple(match(book, side, quantity, price_limit))
    filled = sum((m.quantity for m in matches), ZERO)
    remaining = quantity - filled
    if remaining == 0:
        return Execution(matches, filled, remaining, Outcome.FILLED)
    if order_type is OrderType.MARKET:
        return Execution(matches, filled, remaining, Outcome.CANCEL,
                         f"no more liquidity: {qty(remaining)} of {qty(quantity)} not filled")
    if tif in (TimeInForce.IOC, TimeInForce.FOK):
        return Execution(matches, filled, remaining, Outcome.CANCEL,
                         f"immediate or cancel: no more liquidity{where}, "
                         f"{qty(remaining)} of {qty(quantity)} not filled")
    return Execution(matches, filled, remaining, Outcome.REST)
