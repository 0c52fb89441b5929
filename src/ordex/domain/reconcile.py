"""Reconciliation decided: what ordex must do to agree with a venue (FR-009, FR-010).

``reconcile(ours, theirs, now, policy)`` is given ordex's view of the orders that may be at a
venue (:class:`Ours`) and the venue's view of them (:class:`Theirs`), and returns the decisions
in the order they are carried out (``engine.recovery`` carries them out). It reads no store, no
venue and no clock. When the venue's view lacks a fact it needs, it returns only what must be
asked first (:class:`NeedsQuery`, :class:`NeedsFills`); given the answers, it returns the plan:

- the venue's fills ordex has not booked, each exec id once (also one missed behind a later fill
  that got through first), and none that a fill booked from CumQty/AvgPx already covers;
- what the venue's fills leave out of its CumQty (or all of it, without trade capture), booked
  from CumQty/AvgPx under an exec id made of the order and that CumQty (``from_cumulative``);
- then the end the venue gave the order, if ordex has not ended it;
- orders the venue never received, routed longer ago than the ack window: sent again with the
  same id, or failed (``unsent`` policy; failed anyway once every attempt is spent). An order the
  venue refused a copy of is at the venue: neither;
- acknowledged orders the venue does not know: noted as missing (``engine.missing`` decides);
- open venue orders ordex does not know or has closed: ghosts, cancelled or left alone
  (``ghosts`` policy).

What applying a report does is predicted with the domain's own rules (``orders.apply``, the
exec-id and CumQty checks of ``engine.apply``), so the plan books each fill once and never takes
an order beyond its quantity; applying it and reconciling again decides nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec

from ordex.domain.errors import IllegalTransition
from ordex.domain.fills import cumulative_covered, cumulative_exec_id
from ordex.domain.money import ZERO
from ordex.domain.orders import Filled, InvalidFill, Order, OrderStatus, Routing, apply, confirmed
from ordex.domain.sending import RetryPolicy, never_confirmed_reason
from ordex.venues.base import ExecutionReport, ReportKind, VenueOrder, VenueOrderState

PRICE_QUANTUM = Decimal("1e-10")  # the store keeps prices to 10 places
FILLS_MARGIN = timedelta(seconds=5)  # fills are asked for from this long before an order's start
END_REPORTS = {VenueOrderState.CANCELLED: ReportKind.CANCELLED,
               VenueOrderState.REJECTED: ReportKind.REJECTED,
               VenueOrderState.EXPIRED: ReportKind.EXPIRED}


# ---- the two views and the policies -------------------------------------------------------------

class Ours(msgspec.Struct, frozen=True, gc=False):
    """ordex's view. ``orders``: its open orders that may have reached the venue (in flight);
    ``known``: its other orders the venue's view names (closed ones, mostly); ``booked``: the exec
    ids ordex has booked from this venue, by client order id; ``held_by_venue``: ids of orders
    the venue refused a copy of as a duplicate, so it has them."""

    orders: tuple[Order, ...] = ()
    known: Mapping[str, Order] = msgspec.field(default_factory=dict)
    booked: Mapping[str, frozenset[str]] = msgspec.field(default_factory=dict)
    held_by_venue: frozenset[str] = frozenset()

    def booked_of(self, client_order_id: str) -> frozenset[str]:
        return self.booked.get(client_order_id, frozenset())


class Theirs(msgspec.Struct, frozen=True, gc=False):
    """The venue's view. ``open_orders``: every open order, if it offers mass status;
    ``answers``: what it said when asked about one order (None: it does not know it); ``fills``:
    its fills (None: not read, or no trade capture); ``fills_fresh``: they were read after every
    status in this view, so a fill a status counts is among them unless the venue leaves it out."""

    venue: str
    mass_status: bool = True
    trade_capture: bool = True
    open_orders: Mapping[str, VenueOrder] = msgspec.field(default_factory=dict)
    answers: Mapping[str, VenueOrder | None] = msgspec.field(default_factory=dict)
    fills: tuple[ExecutionReport, ...] | None = None
    fills_fresh: bool = False

    def status(self, client_order_id: str) -> VenueOrder | None:
        """What the venue knows of an order ordex has in flight (None: not known there)."""
        return self.open_orders.get(client_order_id) or self.answers.get(client_order_id)

    def fills_of(self, client_order_id: str) -> list[ExecutionReport]:
        return [f for f in self.fills or () if f.client_order_id == client_order_id]


class Policy(msgspec.Struct, frozen=True, gc=False):
    """``unsent``: "resend" or "fail" an order the venue never received; ``ghosts``: "cancel"
    or "alert" for a venue order ordex does not know."""

    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    unsent: str = "resend"
    ghosts: str = "cancel"

    @property
    def ack_window(self) -> timedelta:
        return timedelta(seconds=self.retry.ack_seconds)


# ---- the decisions ------------------------------------------------------------------------------

class NeedsQuery(msgspec.Struct, frozen=True, gc=False):
    """Ask the venue about each of these orders by itself, then decide again."""

    client_order_ids: tuple[str, ...]


class NeedsFills(msgspec.Struct, frozen=True, gc=False):
    """Read the venue's fills since ``since`` (after its statuses), then decide again."""

    since: datetime


class ApplyReports(msgspec.Struct, frozen=True, gc=False):
    """Apply these reports as they are: for ``order_id``, its ack and the fills ordex missed;
    ``order_id`` None: fills of orders ordex has closed (late fills)."""

    order_id: UUID | None
    reports: tuple[ExecutionReport, ...]


class BookFromCumulative(msgspec.Struct, frozen=True, gc=False):
    """Book what the venue's fills leave out of its CumQty, as one fill made of CumQty/AvgPx."""

    order_id: UUID
    report: ExecutionReport
    trade_capture: bool  # the venue's fills were there, and leave this out


class AdoptEnd(msgspec.Struct, frozen=True, gc=False):
    """The venue ended the order (cancelled, rejected, expired): so does ordex, after its fills."""

    order_id: UUID
    report: ExecutionReport


class Resend(msgspec.Struct, frozen=True, gc=False):
    """The venue never received the order: send it again with the same id."""

    order_id: UUID


class FailUnsent(msgspec.Struct, frozen=True, gc=False):
    """The venue never received the order, and it is not sent again: failed."""

    order_id: UUID
    reason: str
    details: Mapping[str, Any]


class NoteMissing(msgspec.Struct, frozen=True, gc=False):
    """The venue does not know an order it acknowledged: ask again later (``engine.missing``)."""

    order_id: UUID


class Ghost(msgspec.Struct, frozen=True, gc=False):
    """An open venue order ordex does not know (``owner`` None) or has closed."""

    venue_order: VenueOrder
    owner: Order | None
    cancel: bool


Decision = (NeedsQuery | NeedsFills | ApplyReports | BookFromCumulative | AdoptEnd | Resend
            | FailUnsent | NoteMissing | Ghost)
ADOPTION = (ApplyReports, BookFromCumulative, AdoptEnd)


# ---- deciding -----------------------------------------------------------------------------------

def reconcile(ours: Ours, theirs: Theirs, now: datetime, policy: Policy) -> list[Decision]:
    """Every decision that brings ordex and the venue into agreement, in order: late fills of
    closed orders; for each order in flight, its missed fills, CumQty rest and end (or a resend,
    a fail, a missing note); then the ghosts. Or, first, the facts it lacks."""
    in_flight = {str(o.id): o for o in ours.orders}
    ask = [cid for cid in in_flight if cid not in theirs.open_orders and cid not in theirs.answers]
    ask += [cid for cid in theirs.open_orders
            if (owner := ours.known.get(cid)) is not None and owner.status.is_terminal
            and cid not in theirs.answers]  # it may have ended since the open orders were read
    if ask:
        return [NeedsQuery(tuple(ask))]
    fills_wanted = _fills_wanted(ours, theirs, now)
    if fills_wanted is not None:
        return [fills_wanted]

    decisions: list[Decision] = []
    late = _late_fills(ours, theirs, set(in_flight))
    if late:
        decisions.append(ApplyReports(None, tuple(late)))
    routed_before = now - policy.ack_window
    for order in ours.orders:
        found = theirs.status(str(order.id))
        if found is not None:
            decisions += adoption(order, found, ours.booked_of(str(order.id)),
                                  theirs.fills_of(str(order.id)), now,
                                  trade_capture=theirs.trade_capture, fresh=True)
        elif (order.status is OrderStatus.ACCEPTED and order.routing is Routing.UNCONFIRMED
              and order.routed_at is not None and order.routed_at <= routed_before):
            unsent = (not_at_venue(order, ours.held_by_venue, policy.retry, theirs.venue)
                      if policy.unsent == "resend"
                      else _fail_unsent(order, ours.held_by_venue, theirs.venue))
            if unsent is not None:
                decisions.append(unsent)
        elif order.routing is Routing.AT_VENUE:
            decisions.append(NoteMissing(order.id))
    for cid, listed in theirs.open_orders.items():
        owner = in_flight.get(cid) or ours.known.get(cid)
        found = listed
        if owner is not None and owner.status.is_terminal:
            found = theirs.answers.get(cid) or listed
        if owner is None or (owner.status.is_terminal and found.state.is_open):
            decisions.append(Ghost(found, owner, cancel=policy.ghosts == "cancel"))
    return decisions


def adoption(order: Order, found: VenueOrder, booked: Iterable[str],
             fills: Sequence[ExecutionReport] | None, now: datetime, *, trade_capture: bool,
             fresh: bool) -> list[Decision]:
    """What brings ``order`` to what the venue knows of it (``found``): its ack, the fills
    ordex missed (from ``fills``, the venue's fills of it; None: not read yet), the rest of the
    venue's CumQty, then the end. Empty if ordex already agrees. ``fresh``: ``fills`` were read
    after ``found``; if they are not and leave something out, they are asked for again."""
    behind = found.filled_quantity > order.filled_quantity
    if trade_capture and behind and fills is None:
        return [NeedsFills(order.created_at - FILLS_MARGIN)]
    state = order
    exec_ids = set(booked)
    reports: list[ExecutionReport] = []
    if order.venue_order_id is None:
        reports.append(synthetic(found, ReportKind.ACK, now, "ack"))
        state = confirmed(state, found.venue_order_id)
    if trade_capture and behind:
        for report in fills or ():
            after = booking(state, exec_ids, report)
            if after is not None:
                state = after
                exec_ids.add(report.exec_id)
                reports.append(report)
    if trade_capture and not fresh and state.filled_quantity < found.filled_quantity:
        return [NeedsFills(order.created_at - FILLS_MARGIN)]
    decisions: list[Decision] = [ApplyReports(order.id, tuple(reports))] if reports else []
    if state.filled_quantity < found.filled_quantity:
        rest = from_cumulative(state, found, now)
        after = booking(state, exec_ids, rest)
        if after is not None:
            state = after
            decisions.append(BookFromCumulative(order.id, rest, trade_capture))
    end = END_REPORTS.get(found.state)
    if end is not None and not state.status.is_terminal:
        decisions.append(AdoptEnd(order.id, synthetic(found, end, now, end.value)))
    return decisions


def not_at_venue(order: Order, held_by_venue: frozenset[str], retry: RetryPolicy,
                 venue: str) -> Resend | FailUnsent | None:
    """An order the venue has no record of: sent again while attempts are left, else failed;
    neither if the venue refused a copy of it (it has it; it will show up)."""
    if str(order.id) in held_by_venue:
        return None
    if retry.may_retry(order.send_attempts):
        return Resend(order.id)
    return FailUnsent(order.id, never_confirmed_reason(venue, order.send_attempts),
                      {"venue": venue, "attempts": order.send_attempts})


def _fail_unsent(order: Order, held_by_venue: frozenset[str], venue: str) -> FailUnsent | None:
    if str(order.id) in held_by_venue:
        return None
    return FailUnsent(order.id, never_confirmed_reason(venue, order.send_attempts),
                      {"venue": venue})


def _fills_wanted(ours: Ours, theirs: Theirs, now: datetime) -> NeedsFills | None:
    """The venue's fills, if they are needed and not read yet, or read before a status that
    counts more than they and ordex's fills add up to."""
    if not theirs.trade_capture or not ours.orders or theirs.fills_fresh:
        return None
    since = min(o.created_at for o in ours.orders) - FILLS_MARGIN
    if theirs.fills is None:
        return NeedsFills(since)
    for order in ours.orders:
        found = theirs.status(str(order.id))
        if found is None:
            continue
        plan = adoption(order, found, ours.booked_of(str(order.id)),
                        theirs.fills_of(str(order.id)), now, trade_capture=True, fresh=False)
        if any(isinstance(d, NeedsFills) for d in plan):
            return NeedsFills(since)
    return None


def _late_fills(ours: Ours, theirs: Theirs, in_flight: set[str]) -> list[ExecutionReport]:
    """Fills of orders ordex has (closed, mostly) and does not have in flight, not booked yet."""
    states: dict[str, Order] = {}
    exec_ids: dict[str, set[str]] = {}
    late: list[ExecutionReport] = []
    for report in theirs.fills or ():
        cid = report.client_order_id
        if cid in in_flight or cid not in ours.known:
            continue
        state = states.get(cid, ours.known[cid])
        seen = exec_ids.setdefault(cid, set(ours.booked_of(cid)))
        after = booking(state, seen, report)
        if after is not None:
            states[cid] = after
            seen.add(report.exec_id)
            late.append(report)
    return late


def booking(order: Order, exec_ids: Iterable[str], report: ExecutionReport) -> Order | None:
    """The order after ``report`` is booked, or None if it is not: not a fill of it, an exec id
    already booked, a fill a CumQty/AvgPx booking covers, or one the order cannot take (the same
    rules ``engine.apply.apply_report`` follows)."""
    if report.kind is not ReportKind.FILL or report.client_order_id != str(order.id):
        return None
    booked = set(exec_ids)
    if report.exec_id in booked:
        return None
    if (ZERO < report.cum_quantity <= order.filled_quantity
            and report.cum_quantity <= cumulative_covered(report.client_order_id, booked)):
        return None
    try:
        return apply(order, Filled(at=report.timestamp, quantity=report.last_quantity,
                                   price=report.last_price))
    except (IllegalTransition, InvalidFill):
        return None


def synthetic(found: VenueOrder, kind: ReportKind, now: datetime, tag: str) -> ExecutionReport:
    """A report made from what a status query returned, for ``apply_report``."""
    return ExecutionReport(
        venue=found.venue, client_order_id=found.client_order_id,
        exec_id=f"recovered-{tag}-{found.client_order_id}", kind=kind, timestamp=now,
        symbol=found.symbol, side=found.side, venue_order_id=found.venue_order_id,
        cum_quantity=found.filled_quantity,
        leaves_quantity=found.quantity - found.filled_quantity,
        reason=found.reason or f"{kind.value} at venue {found.venue} (recovered)")


def from_cumulative(order: Order, found: VenueOrder, now: datetime) -> ExecutionReport:
    """The fills a venue reports in CumQty/AvgPx that ordex has not booked, as one fill: the
    difference in quantity, at the price that brings ordex's average to the venue's AvgPx. Its
    exec id names the order and the venue's CumQty, so it is booked once however often it is
    made."""
    quantity = found.filled_quantity - order.filled_quantity
    venue_notional = (found.average_price or ZERO) * found.filled_quantity
    booked = (order.average_price or ZERO) * order.filled_quantity
    price = ((venue_notional - booked) / quantity).quantize(PRICE_QUANTUM)
    return ExecutionReport(
        venue=found.venue, client_order_id=found.client_order_id,
        exec_id=cumulative_exec_id(found.client_order_id, found.filled_quantity),
        kind=ReportKind.FILL, timestamp=now, symbol=found.symbol, side=found.side,
        venue_order_id=found.venue_order_id, last_quantity=quantity, last_price=price,
        cum_quantity=found.filled_quantity,
        leaves_quantity=found.quantity - found.filled_quantity if found.state.is_open else ZERO,
        reason=f"fills recovered from venue {found.venue}'s order status: "
               f"{found.filled_quantity} filled at an average of {found.average_price}")
