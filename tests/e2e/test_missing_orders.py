"""An order ordex believes is working but the venue says it does not know (issue 9, part 1): after
reconciliation the venue is asked again; unknown twice with no fill meanwhile, the order ends
cancelled with a reason, its reservation released, with a log row and a metrics line."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from ordex.client import AsyncClient
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.domain.orders import OrderType, Side, TimeInForce
from ordex.store.uow import reading
from ordex.venues.base import NewOrder
from tests.e2e.test_recovery import FAST, FINAL, _uuid, at_venue, metrics_show
from tests.support.live import live_service, quiet_venue


async def resting_then_forgotten(settings: Settings) -> tuple[str, dict[str, Any], Decimal]:
    """A GTC bid the venue acknowledged; then ordex stops, and the venue that comes back has
    forgotten everything (a venue without a persisted book, restarted meanwhile)."""
    venue = quiet_venue(3)
    async with live_service(settings, venue) as live:
        issued = await live.services.accounts.create("alice", Role.TRADER, Decimal("100000"))
        quote = venue.exchange.quote("KO")
        assert quote.bid is not None
        limit = (quote.bid * Decimal("0.98")).quantize(Decimal("0.01"))
        async with AsyncClient(live.url, issued.api_key) as ordex:
            order = await ordex.submit("KO", "buy", "10", type="limit", limit_price=limit,
                                       time_in_force="gtc")
            assert await at_venue(ordex, order["id"])
            assert Decimal((await ordex.account())["reserved_cash"]) == 10 * limit
    return issued.api_key, order, limit


async def test_an_order_the_venue_no_longer_knows_ends_cancelled_with_a_reason(
        settings: Settings) -> None:
    """Before, ordex logged an error and kept the order open for good: its cancel bounced back
    to accepted ("unknown client order id") and its cash stayed reserved."""
    settings = settings.model_copy(update=FAST)
    key, order, _ = await resting_then_forgotten(settings)
    forgetful = quiet_venue(3)
    async with live_service(settings, forgetful) as live, AsyncClient(live.url, key) as ordex:
        done = await ordex.wait_for(order["id"], FINAL, within=8)
        assert done["status"] == "cancelled"
        assert done["reason"] == ("Venue SIM no longer has this order; nothing more will fill. "
                                  "0 of 10 shares were filled.")
        assert Decimal((await ordex.account())["reserved_cash"]) == 0
        async with reading(live.services.db) as repo:
            logs = await repo.journal(order_id=_uuid(order["id"]))
        recovered = [e for e in logs if e.action.value == "recover"]
        assert [(e.status, e.details["answers"]) for e in recovered] == [("cancelled", 2)]
        assert await metrics_show(settings.data_dir, lambda lines: any(
            m["event"] == "order.recovered" and m["order_id"] == order["id"]
            and m.get("status") == "cancelled" for m in lines))
        assert forgetful.exchange.orders() == []  # nothing was sent again


async def test_an_order_the_venue_shows_again_on_the_second_question_stays_working(
        settings: Settings) -> None:
    settings = settings.model_copy(update={**FAST, "stall_check_seconds": 2.0})
    key, order, limit = await resting_then_forgotten(settings)
    late = quiet_venue(3)
    async with live_service(settings, late) as live, AsyncClient(live.url, key) as ordex:
        engine = live.services.engine
        assert engine is not None

        async def noted() -> bool:
            return _uuid(order["id"]) in engine.recovery.missing
        for _ in range(100):  # reconciliation asked once and got "unknown"
            if await noted():
                break
            await asyncio.sleep(0.05)
        assert await noted()
        await late.submit(NewOrder(order["id"], "KO", Side.BUY, OrderType.LIMIT, Decimal(10),
                                   TimeInForce.GTC, limit))  # it shows up before the 2nd ask
        await asyncio.sleep(3.0)
        back = await ordex.get(order["id"])
        assert (back["status"], back["routing"]) == ("accepted", "at_venue")
        assert not await noted()
