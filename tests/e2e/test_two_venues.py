"""Two venues at once, through the whole service on SQLite and PostgreSQL: two embedded
simulated exchanges, SIM (the default) and ALT. Orders go where they say (or to the default),
every order row records its venue, and one venue going down leaves the other trading; the
orders of the one that went down are recovered when it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import httpx
import pytest

from ordex.client import AsyncClient, OrdexError
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.domain.journal import LogAction
from ordex.engine.engine import ExecutionEngine
from ordex.store.uow import reading
from ordex.venues.simulated.inprocess import InProcessVenue
from tests.support.live import FAST as FAST_RECOVERY
from tests.support.live import FINAL, Live, below_market, eventually, live_service, quiet_venue

FAST = {**FAST_RECOVERY, "order_timeout_seconds": 60}


@dataclass
class Desk:
    live: Live
    sim: InProcessVenue
    alt: InProcessVenue

    @property
    def engine(self) -> ExecutionEngine:
        assert self.live.services.engine is not None
        return self.live.services.engine

    async def trader(self) -> AsyncClient:
        issued = await self.live.services.accounts.create("alice", Role.TRADER,
                                                          Decimal("1000000"))
        return AsyncClient(self.live.url, issued.api_key)

    def at(self, venue: InProcessVenue) -> set[str]:
        return {o.client_order_id for o in venue.exchange.orders()}


@pytest.fixture
async def desk(settings: Settings) -> AsyncIterator[Desk]:
    sim, alt = quiet_venue(3), quiet_venue(5, "ALT")
    async with live_service(settings.model_copy(update=FAST),
                            venues={"SIM": sim, "ALT": alt}) as live:
        yield Desk(live, sim, alt)


async def test_orders_go_to_the_venue_they_name_and_every_row_records_it(desk: Desk) -> None:
    ordex = await desk.trader()
    default = await ordex.submit("KO", "buy", "5")
    there = await ordex.submit("KO", "buy", "5", venue="ALT")
    named_default = await ordex.submit("KO", "buy", "5", venue="SIM")
    assert (default["venue"], there["venue"], named_default["venue"]) == ("SIM", "ALT", "SIM")
    for order in (default, there, named_default):
        assert (await ordex.wait_for(order["id"], FINAL))["status"] == "filled"
    assert desk.at(desk.sim) == {default["id"], named_default["id"]}
    assert desk.at(desk.alt) == {there["id"]}
    assert {f["venue"] for f in await ordex.fills(there["id"])} == {"ALT"}
    assert {f["venue"] for f in await ordex.fills(default["id"])} == {"SIM"}
    async with reading(desk.live.services.db) as repo:
        rows = {str(o.id): o.venue for o in await repo.orders_by_ids(
            [UUID(o["id"]) for o in (default, there, named_default)])}
        sent = [e for e in await repo.journal(order_id=UUID(there["id"]))
                if e.action is LogAction.EXECUTE]
    assert rows == {default["id"]: "SIM", there["id"]: "ALT", named_default["id"]: "SIM"}
    assert [e.venue for e in sent] == ["ALT"]

    with pytest.raises(OrdexError) as refused:
        await ordex.submit("KO", "buy", "5", venue="NYSE")
    assert (refused.value.status, refused.value.code, refused.value.field) == (
        422, "unknown_venue", "venue")
    assert "SIM, ALT" in refused.value.hint
    await ordex.close()


async def test_each_venue_is_listed_with_its_session(desk: Desk) -> None:
    ordex = await desk.trader()
    async with httpx.AsyncClient(base_url=desk.live.url,
                                 headers={"Authorization": f"Bearer {ordex.api_key}"}) as http:
        listed = (await http.get("/v1/venues")).json()["venues"]
        assert [(v["name"], v["default"], v["session"]["state"]) for v in listed] == [
            ("SIM", True, "connected"), ("ALT", False, "connected")]
        desk.alt.faults.update(down=True)
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["venues"] == {"SIM": "connected", "ALT": "disconnected"}
        desk.alt.faults.update(down=False)
        assert (await http.get("/readyz")).status_code == 200
    await ordex.close()


async def test_one_venue_down_leaves_the_other_trading_and_recovers_on_reconnect(
        desk: Desk) -> None:
    ordex = await desk.trader()
    limit = below_market(desk.alt, "KO")
    resting = await ordex.submit("KO", "buy", "10", type="limit", limit_price=limit,
                                 time_in_force="gtc", venue="ALT")
    # resting at SIM all along: ALT's reconciliation must leave it alone
    stays = await ordex.submit("KO", "buy", "2", type="limit",
                               limit_price=below_market(desk.sim, "KO"), time_in_force="gtc")

    async def acknowledged() -> bool:
        return all([(await ordex.get(o["id"]))["routing"] == "at_venue"
                    for o in (resting, stays)])
    assert await eventually(acknowledged)

    desk.alt.faults.update(down=True)
    desk.alt.move_market("KO", limit - Decimal("0.50"))  # fills while nobody listens
    assert desk.alt.lost_reports > 0
    waiting = await ordex.submit("KO", "buy", "3", venue="ALT")

    traded = await ordex.submit("KO", "buy", "4")  # SIM trades on meanwhile
    assert (await ordex.wait_for(traded["id"], FINAL))["status"] == "filled"
    await asyncio.sleep(0.6)  # more than a sweep: nothing of ALT's moved
    held = await ordex.get(waiting["id"])
    assert (held["status"], held["routing"], held["venue"]) == ("accepted", "pending", "ALT")
    assert (await ordex.get(resting["id"]))["filled_quantity"] == "0"
    assert waiting["id"] not in desk.at(desk.alt)

    desk.alt.faults.update(down=False)
    done = await ordex.wait_for(resting["id"], FINAL)
    assert (done["status"], done["filled_quantity"]) == ("filled", "10")
    assert (await ordex.wait_for(waiting["id"], FINAL))["status"] == "filled"
    recovered = desk.engine.recoveries["ALT"].last
    assert recovered is not None and recovered.adopted >= 1
    untouched = desk.engine.recoveries["SIM"].last
    assert untouched is not None and untouched.adopted == 0
    await asyncio.sleep(1.5)  # several of ALT's lookups and stall checks
    still = await ordex.get(stays["id"])
    assert (still["status"], still["routing"], still["send_attempts"]) == (
        "accepted", "at_venue", 1)
    assert desk.at(desk.sim) == {traded["id"], stays["id"]}
    assert stays["id"] not in desk.at(desk.alt)
    [position] = [p for p in await ordex.positions() if p["symbol"] == "KO"]
    assert position["quantity"] == "17"
    await ordex.close()


async def test_a_failed_order_is_retried_at_its_own_venue(desk: Desk) -> None:
    ordex = await desk.trader()
    desk.alt.faults.update(refuse_sends=10)  # busy beyond every retry
    failed = await ordex.wait_for((await ordex.submit("KO", "buy", "2", venue="ALT"))["id"],
                                  FINAL)
    assert (failed["status"], failed["venue"]) == ("failed", "ALT")
    assert "venue ALT" in failed["reason"]
    desk.alt.faults.update(refuse_sends=0)
    again = await ordex.retry(failed["id"])
    assert again["venue"] == "ALT"
    assert (await ordex.wait_for(again["id"], FINAL))["status"] == "filled"
    assert again["id"] in desk.at(desk.alt) and again["id"] not in desk.at(desk.sim)
    await ordex.close()
