"""A fill that reaches an order ordex has already closed (issue 9, part 1): the venue filled it
while the close was on its way. It is booked (fill, position, cash, log, status event), never
dropped, and the order says what happened."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from ordex.store.uow import reading
from ordex.venues.base import ExecutionReport, ReportKind
from tests.e2e.test_recovery import FINAL, Desk, _uuid, desk, patient_desk, resting

__all__ = ["desk", "patient_desk"]


async def closed_in_ordex(desk: Desk, order: dict[str, Any], kind: ReportKind,
                          reason: str) -> None:
    """ordex closes the order (here: a report saying so) while the venue still works it."""
    assert desk.live is not None and desk.live.services.engine is not None
    await desk.live.services.engine.apply_all([ExecutionReport(
        venue="SIM", client_order_id=order["id"], exec_id=f"closed-{order['id']}", kind=kind,
        timestamp=desk.live.services.clock.now(), symbol="KO", side=order_side(order),
        reason=reason)])


def order_side(order: dict[str, Any]) -> Any:
    from ordex.domain.orders import Side

    return Side(order["side"])


async def settled(ordex: Any, order_id: str, filled: str, within: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        now = await ordex.get(order_id)
        if now["filled_quantity"] == filled or asyncio.get_running_loop().time() > deadline:
            return now
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("kind", "status", "words"), [
    (ReportKind.CANCELLED, "cancelled", "after the cancel"),
    (ReportKind.EXPIRED, "expired", "after it expired")])
async def test_a_full_fill_after_the_close_is_booked_and_fills_the_order(
        desk: Desk, kind: ReportKind, status: str, words: str) -> None:
    """Before, the fill raised IllegalTransition and was lost: no fill, no position, no cash."""
    ordex = await desk.trader()
    cash_before = Decimal((await ordex.account())["cash"])
    order, limit = await resting(desk, ordex)
    await closed_in_ordex(desk, order, kind, "closed by ordex")
    assert (await ordex.get(order["id"]))["status"] == status
    desk.venue.move_market("KO", limit - Decimal("0.10"))  # the venue fills all 10 at the limit

    done = await settled(ordex, order["id"], "10")
    assert (done["status"], done["filled_quantity"]) == ("filled", "10")
    assert done["reason"] == (f"Filled 10 {words}: the fill was already on its way, so the "
                              f"order is filled in full. It had been {status}: closed by ordex")
    fills = await ordex.fills(order["id"])
    assert [(f["quantity"], f["price"]) for f in fills] == [("10", str(limit))]
    ko = next(p for p in await ordex.positions() if p["symbol"] == "KO")
    assert Decimal(ko["quantity"]) == 10
    account = await ordex.account()
    fee = sum((Decimal(f["commission"]) for f in fills), Decimal(0))
    assert Decimal(account["cash"]) == cash_before - 10 * limit - fee
    assert Decimal(account["reserved_cash"]) == 0
    events = (await ordex.events(order["id"]))["events"]
    assert events[-1]["status"] == "filled" and events[-1]["last_fill_quantity"] == "10"
    assert desk.live is not None
    async with reading(desk.live.services.db) as repo:
        logs = await repo.journal(order_id=_uuid(order["id"]))
    assert [e.status for e in logs if e.action.value == "fill"] == ["filled"]
    await ordex.close()


async def test_a_partial_fill_after_the_cancel_keeps_it_cancelled_with_what_filled(
        desk: Desk) -> None:
    ordex = await desk.trader()
    order, limit = await resting(desk, ordex)
    await closed_in_ordex(desk, order, ReportKind.CANCELLED, "Cancelled at your request")
    desk.venue.set_liquidity("KO", depth_levels=1, level_size=Decimal(4),
                             level_size_max=Decimal(4))
    desk.venue.move_market("KO", limit - Decimal("0.10"))  # one synthetic ask of 4 crosses it

    done = await settled(ordex, order["id"], "4")
    assert (done["status"], done["filled_quantity"]) == ("cancelled", "4")
    assert done["reason"] == ("4 filled after the cancel (the fill was already on its way); "
                              "4 of 10 filled in all. It had been cancelled: Cancelled at your "
                              "request")
    assert [f["quantity"] for f in await ordex.fills(order["id"])] == ["4"]
    ko = next(p for p in await ordex.positions() if p["symbol"] == "KO")
    assert Decimal(ko["quantity"]) == 4
    assert FINAL >= {done["status"]}
    await ordex.close()


# ---- a fill missed on the stream, behind a later one (a kill -9, a stalled link) ----------------

def fill_unreported(desk: Desk, limit: Decimal, size: int) -> list[ExecutionReport]:
    """The exchange fills ``size`` of the resting order and no report reaches ordex (made on
    the exchange, not through the venue adapter)."""
    desk.venue.exchange.set_liquidity("KO", depth_levels=1, level_size=Decimal(size),
                                      level_size_max=Decimal(size))
    return desk.venue.exchange.move_market("KO", limit - Decimal("0.10"))


async def test_a_missed_fill_behind_a_later_one_is_booked_by_its_exec_id(desk: Desk) -> None:
    """Before, the missed fill (CumQty 4) was taken for one already booked because ordex had
    booked more (the later 6): the order stayed partially filled 6 of 10, the venue had it
    filled, and every reconciliation only logged the difference."""
    ordex = await desk.trader()
    order, limit = await resting(desk, ordex)
    [missed] = fill_unreported(desk, limit, 4)
    desk.venue.set_liquidity("KO", depth_levels=5, level_size=Decimal(100),
                             level_size_max=Decimal(100))  # the rest, reported
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    assert (done["status"], done["filled_quantity"]) == ("filled", "10")
    fills = await ordex.fills(order["id"])
    assert missed.exec_id in {f["exec_id"] for f in fills}
    assert sorted(f["quantity"] for f in fills) == ["4", "6"]
    ko = next(p for p in await ordex.positions() if p["symbol"] == "KO")
    assert Decimal(ko["quantity"]) == 10
    await ordex.close()


async def test_a_fill_trade_capture_lacks_is_booked_from_cumqty_once(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """A venue with trade capture whose fills do not add up to its CumQty: the rest is booked
    from CumQty/AvgPx; the real report arriving later adds nothing, a later fill does."""
    ordex = await desk.trader()
    order, limit = await resting(desk, ordex)
    [missed] = fill_unreported(desk, limit, 4)
    listed = desk.venue.fills_since

    async def without_missed(since: Any) -> list[ExecutionReport]:
        return [f for f in await listed(since) if f.exec_id != missed.exec_id]
    monkeypatch.setattr(desk.venue, "fills_since", without_missed)

    booked = await settled(ordex, order["id"], "4")  # the stall check notices and reconciles
    assert (booked["status"], booked["filled_quantity"]) == ("partially_filled", "4")
    [cumulative] = await ordex.fills(order["id"])
    assert cumulative["exec_id"] == f"recovered-cum-{order['id']}-4"
    assert (cumulative["quantity"], Decimal(cumulative["price"])) == ("4", limit)

    assert desk.live is not None and desk.live.services.engine is not None
    await desk.live.services.engine.apply_all([missed])  # the real report, late
    assert (await ordex.get(order["id"]))["filled_quantity"] == "4"
    desk.venue.set_liquidity("KO", depth_levels=5, level_size=Decimal(100),
                             level_size_max=Decimal(100))
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    assert (done["status"], done["filled_quantity"]) == ("filled", "10")
    assert sorted(f["quantity"] for f in await ordex.fills(order["id"])) == ["4", "6"]
    await ordex.close()


async def test_retrying_a_failed_order_that_partly_filled_late_sends_only_the_rest(
        patient_desk: Desk) -> None:
    """Before, the retry sent the failed order's whole quantity again: with 2 of 5 filled late,
    the trader ended up with 7 shares where 5 were asked for."""
    desk = patient_desk
    ordex = await desk.trader()
    desk.venue.faults.update(refuse_sends=4)  # 1 attempt + 3 retries: the order fails
    order = await ordex.submit("KO", "buy", "5")
    failed = await ordex.wait_for(order["id"], FINAL, within=15)
    assert failed["status"] == "failed"
    assert desk.live is not None and desk.live.services.engine is not None
    await desk.live.services.engine.apply_all([ExecutionReport(
        venue="SIM", client_order_id=order["id"], exec_id=f"late-{order['id']}",
        kind=ReportKind.FILL, timestamp=desk.live.services.clock.now(), symbol="KO",
        side=order_side(order), last_quantity=Decimal(2), last_price=Decimal("60.00"),
        cum_quantity=Decimal(2), leaves_quantity=Decimal(3))])
    late = await ordex.get(order["id"])
    assert (late["status"], late["filled_quantity"]) == ("failed", "2")

    again = await ordex.retry(order["id"])
    assert again["quantity"] == "3" and again["retry_of"] == order["id"]
    done = await ordex.wait_for(again["id"], FINAL, within=15)
    assert (done["status"], done["filled_quantity"]) == ("filled", "3")
    ko = next(p for p in await ordex.positions() if p["symbol"] == "KO")
    assert Decimal(ko["quantity"]) == 5
    await ordex.close()
