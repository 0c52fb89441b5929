"""Order commands: submit (validation, risk gate, persist) and cancel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from msgspec.structs import replace

from ordex.clock import Clock
from ordex.domain.accounts import Account
from ordex.domain.commands import CancelOrder, SubmitOrder
from ordex.domain.controls import deadline
from ordex.domain.errors import Code, DomainError, Violation
from ordex.domain.instruments import marked
from ordex.domain.journal import Actor, JournalEntry, LogAction, entry
from ordex.domain.orders import (
    Accepted,
    Cancelled,
    CancelRequested,
    Order,
    OrderStatus,
    Routing,
    Side,
    apply,
)
from ordex.domain.positions import daily_pnl, equity
from ordex.domain.risk import check_order
from ordex.domain.routing import Venues, choose_venue, unknown_venue
from ordex.domain.status import OrderEvent as StatusEvent
from ordex.domain.status import payload
from ordex.domain.validation import AccountState, PricePolicy, reserve_price
from ordex.engine.core import Core
from ordex.engine.tx import Tx

log = logging.getLogger("ordex.orders")

R = TypeVar("R")
Keep = Callable[[Tx, R], None]


@dataclass(frozen=True, slots=True)
class Submitted:
    order: Order
    created: bool
    events: list[StatusEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Preview:
    """``unit_price`` is what ordex reserves per share (the limit, or the live price with its
    market-order margin); ``buying_power_after`` is what would be left once the order is open."""

    violations: list[Violation]
    unit_price: Decimal | None
    notional: Decimal | None
    buying_power: Decimal
    buying_power_after: Decimal


class OrderService:
    """Commands on orders, each a unit of work run by the execution core (``engine.core``):
    validated and risk-checked against the engine's memory, answered once committed.
    ``reference_price`` gives the live price of a symbol when market data has one; otherwise the
    instrument's stored reference applies. ``venues`` are those an order may name; each order
    records the one it goes to."""

    def __init__(self, core: Core, clock: Clock, policy: PricePolicy,
                 reference_price: Callable[[str], Decimal | None] | None = None,
                 venues: Venues | None = None) -> None:
        self.core = core
        self.venues = venues
        self.clock = clock
        self.policy = policy
        self.reference_price = reference_price

    async def submit(self, cmd: SubmitOrder, extra: dict[str, str] | None = None, *,
                     keep: Keep[Submitted] | None = None) -> Submitted:
        """Validate, risk-check and persist an order; an existing client order id is a replay.
        ``keep`` (here and in the other commands) is called in the command's unit of work with
        what it answers, unless it is refused: the command port keeps its outcome there."""
        result = await self.core.run(lambda tx: self._submit_in(tx, cmd, extra or {}, keep))
        if isinstance(result, list):
            log.info("order refused", extra={"trader_id": cmd.trader_id,
                                             "client_order_id": cmd.client_order_id,
                                             "codes": ",".join(v.code for v in result)})
            raise DomainError(result)
        if result.created:
            o = result.order
            log.debug("order accepted", extra={"order_id": o.id, "trader_id": cmd.trader_id,
                                              "client_order_id": cmd.client_order_id})
        return result

    async def _submit_in(self, tx: Tx, cmd: SubmitOrder, extra: dict[str, str],
                         keep: Keep[Submitted] | None) -> Submitted | list[Violation]:
        now = self.clock.now()
        account = await tx.account(cmd.trader_id)
        if account is None:
            raise DomainError(_account_gone())
        if cmd.client_order_id is not None:
            existing = await tx.order_by_client_id(cmd.trader_id, cmd.client_order_id)
            if existing is not None:
                return _kept(tx, keep, Submitted(_same_or_conflict(existing, cmd),
                                                 created=False))
        violations, unit, _ = self._check(tx, account, cmd, now, start_day=True)
        if violations:
            tx.record(JournalEntry(
                cmd.trader_id, None, Actor.ENGINE, LogAction.REJECT, OrderStatus.REJECTED.value,
                now, "; ".join(v.message for v in violations), cmd.symbol, cmd.quantity,
                cmd.limit_price, None,
                {"codes": [v.code.value for v in violations], "request": _request_details(cmd)},
            ))
            return violations
        venue = self._venue(cmd)
        assert not isinstance(venue, Violation)
        order = Order(
            id=tx.new_id(), trader_id=cmd.trader_id, client_order_id=cmd.client_order_id,
            symbol=cmd.symbol, side=cmd.side, type=cmd.type, quantity=cmd.quantity,
            limit_price=cmd.limit_price, stop_loss=cmd.stop_loss, take_profit=cmd.take_profit,
            time_in_force=cmd.time_in_force, reserve_price=unit, created_at=now, updated_at=now,
            max_slippage_pct=cmd.max_slippage_pct,
            slippage_price=unit if cmd.max_slippage_pct is not None else None,
            timeout_seconds=cmd.timeout_seconds,
            expires_at=deadline(now, cmd.timeout_seconds), extra=extra, venue=venue,
        )
        retry_of = extra.get("retry_of")
        tx.record(entry(order, LogAction.SUBMIT, now, Actor.TRADER,
                        details={"retry_of": retry_of} if retry_of else None))
        order = apply(order, Accepted(at=now))
        tx.insert_order(order)
        event = tx.show(entry(order, LogAction.APPROVE, now, Actor.ENGINE), order.status.value,
                        payload(order))
        return _kept(tx, keep, Submitted(order, created=True, events=[event]))

    async def preview(self, cmd: SubmitOrder) -> Preview:
        """What ``submit`` would decide of ``cmd`` now, and what it would cost; nothing is
        written."""
        now = self.clock.now()
        view = self.core.view()
        account = await view.account(cmd.trader_id)
        if account is None:
            raise DomainError(_account_gone())
        violations, unit, state = self._check(view, account, cmd, now, start_day=False)
        buying_power = state.buying_power()
        notional = cmd.quantity * unit if unit else None
        after = buying_power - notional if notional is not None and cmd.side is Side.BUY \
            else buying_power
        return Preview(violations, unit or None, notional, buying_power, after)

    def _check(self, tx: Tx, account: Account, cmd: SubmitOrder, now: datetime,
               *, start_day: bool) -> tuple[list[Violation], Decimal, AccountState]:
        """Validation and risk against the live price; the unit price reserved per share."""
        instrument = tx.instrument(cmd.symbol)
        if instrument is not None:
            instrument = marked(instrument, self.reference_price)
        state = self._account_state(tx, account, now, start_day=start_day)
        violations = check_order(cmd, instrument, state, self.policy)
        venue = self._venue(cmd)
        if isinstance(venue, Violation):
            violations.insert(0, venue)
        unit = reserve_price(cmd, instrument, self.policy) if instrument is not None else Decimal(0)
        return violations, unit, state

    def _venue(self, cmd: SubmitOrder) -> str | Violation | None:
        """The venue the order goes to; None when this service is not told the venues."""
        if self.venues is None:
            return None if cmd.venue is None else unknown_venue(cmd.venue, None)
        return choose_venue(cmd.venue, self.venues)

    def _account_state(self, tx: Tx, account: Account, now: datetime, *,
                       start_day: bool) -> AccountState:
        held = {s: p.quantity for s, p in tx.positions(account.id).items() if p.quantity}
        current = equity(account.cash, held, tx.instruments(set(held)))
        today = now.date()
        if account.trading_day != today or account.day_start_equity is None:
            account = replace(account, trading_day=today, day_start_equity=current)
            if start_day:
                tx.set_account(account, now)
        return AccountState(account, held, tx.exposure(account.id),
                            daily_pnl(current, account.day_start_equity))

    async def cancel(self, cmd: CancelOrder, *, keep: Keep[Order] | None = None) -> Order:
        """Cancel a working order: at once if no venue has it yet, otherwise request it."""
        order, changed = await self.core.run(lambda tx: self._cancel_in(tx, cmd, keep))
        if changed:
            log.debug("order cancel", extra={"order_id": order.id, "trader_id": order.trader_id,
                                            "status": order.status.value})
        return order

    async def _cancel_in(self, tx: Tx, cmd: CancelOrder,
                         keep: Keep[Order] | None) -> tuple[Order, bool]:
        order = await tx.order(cmd.order_id, cmd.trader_id)
        if order is None:
            raise DomainError(not_found_order(cmd.order_id))
        if order.status is OrderStatus.PENDING_CANCEL:
            return _kept(tx, keep, order), False
        if order.status.is_terminal:
            raise DomainError(Violation(
                Code.ORDER_NOT_CANCELABLE, None,
                f"This order is already {order.status.value.replace('_', ' ')}; there is "
                "nothing left to cancel.",
                "Only working orders (accepted or partially filled) can be cancelled.",
            ))
        now = self.clock.now()
        if order.routing is Routing.PENDING:  # no venue has it yet
            order = apply(order, Cancelled(at=now, reason="cancelled by trader"))
        else:
            order = apply(order, CancelRequested(at=now, reason="cancelled by trader"))
        tx.update_order(order)
        tx.show(entry(order, LogAction.CANCEL, now, Actor.TRADER, reason="requested by trader"),
                order.status.value, payload(order))
        return _kept(tx, keep, order), True

    async def retry(self, trader_id: UUID, order_id: UUID, *,
                    keep: Keep[Submitted] | None = None) -> Submitted:
        """A failed order sent again as a new order with the same terms, through every check
        again. Its client order id is derived from the failed order, so retrying twice returns
        the same new order: a retry can never make two. The failed order is acknowledged."""
        client_order_id = f"retry-{order_id}"
        view = self.core.view()
        failed = _must_be_failed(await view.order(order_id, trader_id), order_id, "retried")
        earlier = await view.order_by_client_id(trader_id, client_order_id)
        if earlier is not None:
            again = Submitted(earlier, created=False)
        else:  # what filled after the failure (the venue had it after all) is not bought twice
            again = await self.submit(SubmitOrder(
                trader_id=trader_id, symbol=failed.symbol, side=failed.side, type=failed.type,
                quantity=failed.quantity - failed.filled_quantity,
                time_in_force=failed.time_in_force, limit_price=failed.limit_price,
                stop_loss=failed.stop_loss, take_profit=failed.take_profit,
                client_order_id=client_order_id, max_slippage_pct=failed.max_slippage_pct,
                timeout_seconds=failed.timeout_seconds, venue=failed.venue,
            ), extra={"retry_of": str(failed.id)})
        await self.acknowledge(trader_id, order_id, retried_as=again.order.id,
                               keep=None if keep is None else lambda tx, _: keep(tx, again))
        return again

    async def acknowledge(self, trader_id: UUID, order_id: UUID, *,
                          retried_as: UUID | None = None,
                          keep: Keep[Order] | None = None) -> Order:
        """The trader has seen a failed order: it is closed for good (idempotent)."""
        async def unit(tx: Tx) -> Order:
            order = _must_be_failed(await tx.order(order_id, trader_id), order_id,
                                    "acknowledged")
            if order.acknowledged_at is not None:
                return _kept(tx, keep, order)
            now = self.clock.now()
            extra = {**order.extra, **({"retried_as": str(retried_as)} if retried_as else {})}
            order = replace(order, acknowledged_at=now, extra=extra, updated_at=now)
            tx.update_order(order)
            note = f"retried as {retried_as}" if retried_as else "acknowledged by trader"
            tx.show(entry(order, LogAction.ACKNOWLEDGE, now, Actor.TRADER, reason=note),
                    "acknowledged", payload(order))
            return _kept(tx, keep, order)
        return await self.core.run(unit)


def _kept(tx: Tx, keep: Keep[R] | None, answer: R) -> R:
    if keep is not None:
        keep(tx, answer)
    return answer


def _must_be_failed(order: Order | None, order_id: UUID, what: str) -> Order:
    if order is None:
        raise DomainError(not_found_order(order_id))
    if order.status is not OrderStatus.FAILED:
        raise DomainError(Violation(
            Code.ORDER_NOT_FAILED, None,
            f"This order is {order.status.value.replace('_', ' ')}; only a failed order can be "
            f"{what}.",
            "Open the order to see its status; working orders can be cancelled instead."))
    return order


def _account_gone() -> Violation:
    return Violation(Code.UNAUTHORIZED, None, "Your account no longer exists.",
                     "Ask an administrator for a new API key.")


def not_found_order(order_id: UUID | str) -> Violation:
    return Violation(
        Code.NOT_FOUND, "id", f"No order with id {order_id} was found in your account.",
        "Check the order id; GET /v1/orders lists your orders.",
    )


def _request_details(cmd: SubmitOrder) -> dict[str, Any]:
    return {
        "symbol": cmd.symbol, "side": cmd.side.value, "type": cmd.type.value,
        "quantity": str(cmd.quantity), "time_in_force": cmd.time_in_force.value,
        "limit_price": None if cmd.limit_price is None else str(cmd.limit_price),
        "stop_loss": None if cmd.stop_loss is None else str(cmd.stop_loss),
        "take_profit": None if cmd.take_profit is None else str(cmd.take_profit),
        "client_order_id": cmd.client_order_id,
    }


def _same_or_conflict(existing: Order, cmd: SubmitOrder) -> Order:
    """A replay must repeat the original request; a different order under the same id is refused."""
    same = (
        existing.symbol == cmd.symbol and existing.side is cmd.side and existing.type is cmd.type
        and existing.quantity == cmd.quantity and existing.limit_price == cmd.limit_price
        and existing.stop_loss == cmd.stop_loss and existing.take_profit == cmd.take_profit
        and existing.time_in_force is cmd.time_in_force
        and existing.max_slippage_pct == cmd.max_slippage_pct
        and existing.timeout_seconds == cmd.timeout_seconds
        and (cmd.venue is None or cmd.venue == existing.venue)
    )
    if not same:
        raise DomainError(Violation(
            Code.CLIENT_ORDER_ID_CONFLICT, "client_order_id",
            f"client_order_id '{cmd.client_order_id}' was already used for a different order "
            f"({existing.side.value} {existing.quantity} {existing.symbol}, id {existing.id}).",
            "Use a new client_order_id for a new order; resend the original request unchanged "
            "to look up the existing one.",
        ))
    return existing
