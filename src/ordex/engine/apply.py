"""Turn one venue report into the order's next state, its fill, position, cash, log and event,
all in the caller's unit of work (``engine.tx``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ordex.clock import iso
from ordex.domain.controls import slippage_stop_reason
from ordex.domain.errors import IllegalTransition
from ordex.domain.fills import Fill, cumulative_covered, cumulative_prefix
from ordex.domain.journal import Actor, LogAction, entry
from ordex.domain.money import ZERO
from ordex.domain.orders import (
    Cancelled,
    CancelRejected,
    Expired,
    Filled,
    InvalidFill,
    Order,
    OrderEvent,
    OrderStatus,
    Rejected,
    apply,
    confirmed,
)
from ordex.domain.positions import apply_fill, cash_change
from ordex.domain.status import LastFill, payload
from ordex.domain.status import OrderEvent as StatusEvent
from ordex.engine.tx import Tx
from ordex.venues.base import ExecutionReport, ReportKind

log = logging.getLogger("ordex.engine")


@dataclass(frozen=True, slots=True)
class Applied:
    order: Order | None
    events: list[StatusEvent]


def _reason(order: Order, report: ExecutionReport) -> str:
    """The reason a trader reads: why ordex asked for a cancel, or why a slippage-limited order
    stopped, rather than the venue's own words for the same thing."""
    if report.kind is ReportKind.CANCELLED:
        if order.status is OrderStatus.PENDING_CANCEL and order.reason:
            return order.reason
        if order.slippage_price is not None:
            return slippage_stop_reason(order)
    return report.reason or ""


def _event_for(order: Order, report: ExecutionReport) -> OrderEvent | None:
    at = report.timestamp
    reason = _reason(order, report)
    match report.kind:
        case ReportKind.FILL:
            return Filled(at=at, quantity=report.last_quantity, price=report.last_price)
        case ReportKind.CANCELLED:
            return Cancelled(at=at, reason=reason or "cancelled at the venue")
        case ReportKind.REJECTED:
            return Rejected(at=at, reason=reason or "rejected by the venue")
        case ReportKind.EXPIRED:
            return Expired(at=at, reason=reason or "expired at the venue")
        case ReportKind.CANCEL_REJECTED:
            return CancelRejected(at=at, reason=reason)
    return None


async def apply_report(tx: Tx, report: ExecutionReport, now: datetime) -> Applied:
    """Apply ``report`` in the unit of work ``tx``; a repeated fill is applied once. ``now``
    stamps the status event."""
    try:
        order_id = UUID(report.client_order_id)
    except ValueError:
        order_id = None
    order = await tx.order(order_id) if order_id else None
    if order is None:
        log.warning("report for an order ordex does not know: %s %s", report.venue,
                    report.client_order_id)
        return Applied(None, [])
    if report.kind is ReportKind.FILL and (report.venue, report.exec_id) in tx.booked(order.id):
        return Applied(order, [])
    if report.kind is ReportKind.FILL and _in_cumulative(tx, order, report):
        log.info("fill %s of order %s already booked from venue %s's CumQty (%s)",
                 report.exec_id, order.id, report.venue, report.cum_quantity,
                 extra={"order_id": order.id, "trader_id": order.trader_id})
        return Applied(order, [])
    if report.kind is ReportKind.FILL and _cumulative_out_of_date(order, report):
        log.info("fill %s of order %s was made from venue %s's CumQty %s for %s booked, but "
                 "ordex has booked %s since; not booked", report.exec_id, order.id, report.venue,
                 report.cum_quantity, report.cum_quantity - report.last_quantity,
                 order.filled_quantity,
                 extra={"order_id": order.id, "trader_id": order.trader_id})
        return Applied(order, [])
    if report.kind is ReportKind.ACK:
        if report.venue_order_id is None or order.venue_order_id == report.venue_order_id:
            return Applied(order, [])
        try:
            acked = confirmed(order, report.venue_order_id, report.venue)
        except IllegalTransition as exc:
            log.warning("ack of order %s from %s not applied: %s", order.id, report.venue, exc,
                        extra={"order_id": order.id, "trader_id": order.trader_id})
            return Applied(order, [])
        tx.update_order(acked)
        row = entry(acked, LogAction.ACK, now, Actor.VENUE,
                    details={"venue_order_id": report.venue_order_id})
        return Applied(acked, [tx.show(row, "venue_ack", payload(acked))])

    if (report.kind is ReportKind.CANCEL_REJECTED and order.status is OrderStatus.PENDING_CANCEL
            and order.venue_order_id is None):
        # The venue does not know an order it never confirmed: it may not have it yet, or never
        # will. The cancel stands; recovery asks the venue and settles it (engine.recovery).
        log.info("cancel of unconfirmed order %s refused by %s (%s); the cancel stands",
                 order.id, report.venue, report.reason,
                 extra={"order_id": order.id, "trader_id": order.trader_id})
        return Applied(order, [])
    if report.kind is ReportKind.REJECTED and report.duplicate:
        log.warning("venue %s refused a second copy of order %s; the order stands: %s",
                    report.venue, order.id, report.reason,
                    extra={"order_id": order.id, "trader_id": order.trader_id})
        return Applied(order, [])
    domain_event = _event_for(order, report)
    assert domain_event is not None
    try:
        after = apply(order, domain_event)
        if report.venue_order_id and after.venue_order_id is None:
            after = confirmed(after, report.venue_order_id)
    except (IllegalTransition, InvalidFill) as exc:
        log.info("report not applied to order %s (%s): %s", order.id, order.status.value, exc,
                 extra={"order_id": order.id, "trader_id": order.trader_id})
        return Applied(order, [])
    tx.update_order(after)

    last_fill = None
    if isinstance(domain_event, Filled):
        last_fill = LastFill(report.last_quantity, report.last_price, report.venue,
                             report.timestamp)
        await _book_fill(tx, after, report)
    action = {ReportKind.FILL: LogAction.FILL, ReportKind.CANCELLED: LogAction.CANCEL,
              ReportKind.REJECTED: LogAction.REJECT}.get(report.kind, LogAction.EXECUTE)
    filled = report.kind is ReportKind.FILL
    row = entry(after, action, now, Actor.VENUE, reason=report.reason,
                quantity=report.last_quantity if filled else None,
                price=report.last_price if filled else None, venue=report.venue,
                details={"exec_id": report.exec_id, "kind": report.kind.value,
                         "fee": str(report.fee), "venue_time": iso(report.timestamp)})
    body = payload(after, last_fill, None if filled else after.reason)
    return Applied(after, [tx.show(row, after.status.value, body)])


def _in_cumulative(tx: Tx, order: Order, report: ExecutionReport) -> bool:
    """Whether a fill reported late is in one ordex booked from an order status answer's CumQty
    (``domain.reconcile.from_cumulative``): up to the CumQty that fill names. A fill ordex has
    booked more than, but by its own exec id only, is not: the venue's fills may reach ordex out
    of order (a fill missed while ordex was down comes back after a later one)."""
    if not ZERO < report.cum_quantity <= order.filled_quantity:
        return False
    prefix = cumulative_prefix(report.client_order_id)
    exec_ids = [e for venue, e in tx.booked(order.id)
                if venue == report.venue and e.startswith(prefix)]
    return report.cum_quantity <= cumulative_covered(report.client_order_id, exec_ids)


def _cumulative_out_of_date(order: Order, report: ExecutionReport) -> bool:
    """A fill made from a venue's CumQty/AvgPx (``domain.reconcile.from_cumulative``) is the
    difference between that CumQty and what ordex had booked when it was made: booked only if
    ordex still has exactly that, so a fill that reached ordex meanwhile is not booked twice."""
    return (report.exec_id.startswith(cumulative_prefix(report.client_order_id))
            and order.filled_quantity + report.last_quantity != report.cum_quantity)


async def _book_fill(tx: Tx, order: Order, report: ExecutionReport) -> None:
    fill = Fill(
        id=tx.new_id(), order_id=order.id, trader_id=order.trader_id, symbol=order.symbol,
        side=order.side, timestamp=report.timestamp, quantity=report.last_quantity,
        price=report.last_price, venue=report.venue, commission=report.fee,
        exec_id=report.exec_id)
    tx.add_fill(fill)
    position = tx.position(order.trader_id, order.symbol)
    tx.set_position(order.trader_id, apply_fill(position, order.side, fill.quantity, fill.price),
                    report.timestamp)
    account = await tx.account(order.trader_id)
    assert account is not None
    tx.set_cash(account, account.cash + cash_change(order.side, fill.quantity, fill.price,
                                                    fill.commission), report.timestamp)
