"""Which venue an order goes to: the one it names, else the configured default.

One small pure function, so that smart routing can replace it without touching its callers.
"""

from __future__ import annotations

import re

import msgspec

from ordex.domain.errors import Code, Violation
from ordex.domain.orders import Order

VENUE_NAME = re.compile(r"^[A-Za-z0-9._\-]{1,32}$")


class Venues(msgspec.Struct, frozen=True, gc=False):
    """The venues ordex is configured to trade on, by name, and the one orders go to when
    they name none."""

    names: tuple[str, ...]
    default: str

    def __post_init__(self) -> None:
        if self.default not in self.names:
            raise ValueError(f"the default venue {self.default!r} is not one of {self.names}")

    @classmethod
    def only(cls, name: str) -> Venues:
        return cls((name,), name)


def choose_venue(requested: str | None, venues: Venues) -> str | Violation:
    """The venue an order goes to, or why the one it names cannot be used."""
    if requested is None:
        return venues.default
    if requested in venues.names:
        return requested
    return unknown_venue(requested, venues)


def unknown_venue(requested: str, venues: Venues | None) -> Violation:
    if venues is None:
        hint = "This service routes to no venue by name; leave venue out."
    else:
        hint = (f"Use one of: {', '.join(venues.names)}; or leave venue out to send the order "
                f"to {venues.default}.")
    return Violation(Code.UNKNOWN_VENUE, "venue",
                     f"Venue '{requested}' is not one ordex trades on.", hint)


def venue_of(order: Order, default: str) -> str:
    """The venue an order belongs to; orders accepted before orders recorded their venue at
    acceptance belong to the default venue until they are routed."""
    return order.venue if order.venue is not None else default
