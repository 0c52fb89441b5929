"""Many venues in one engine, on in-memory fakes: the routing choice, orders grouped per venue for
``submit_many``, a venue that is down holding back only its own orders, and timers that fire
when the engine's clock says so and at no other time. The two-venue run over the real store is
tests/e2e/test_two_venues.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace
from pydantic import ValidationError

from ordex.api.parsing import parse_order
from ordex.config import Settings, VenueSpec
from ordex.domain.errors import Code, DomainError, Violation
from ordex.domain.orders import OrderStatus, sent
from ordex.domain.routing import Venues, choose_venue
from ordex.domain.sending import RetryPolicy
from ordex.domain.validation import PricePolicy
from ordex.engine.core import Core
from ordex.engine.engine import ExecutionEngine
from ordex.engine.ledger import Ledger
from ordex.engine.marketdata import MarketData
from ordex.services.orders import OrderService
from ordex.venues.base import (
    Capabilities,
    Capability,
    ExecutionReport,
    NewOrder,
    Quote,
    SessionStatus,
    VenueOrder,
    VenueUnavailable,
)
from tests.unit.factories import T0, TRADER, account, instrument, submit
from tests.unit.factories import order as make_order
from tests.unit.test_core import FakeStore, FixedClock

# ---- the routing choice -------------------------------------------------------------------------

TWO = Venues(("SIM", "ALT"), "SIM")


def test_an_order_naming_no_venue_goes_to_the_default() -> None:
    assert choose_venue(None, TWO) == "SIM"


def test_an_order_naming_a_configured_venue_goes_there() -> None:
    assert choose_venue("ALT", TWO) == "ALT"


def test_an_order_naming_an_unknown_venue_is_refused_in_words() -> None:
    refused = choose_venue("NYSE", TWO)
    assert isinstance(refused, Violation)
    assert (refused.code, refused.field) == (Code.UNKNOWN_VENUE, "venue")
    assert refused.message == "Venue 'NYSE' is not one ordex trades on."
    assert refused.hint == ("Use one of: SIM, ALT; or leave venue out to send the order to SIM.")


_names = st.text(alphabet="ABCXYZ", min_size=1, max_size=3)


@given(st.lists(_names, min_size=1, max_size=4, unique=True), st.none() | _names)
def test_the_choice_is_a_configured_venue_or_a_refusal(names: list[str],
                                                       requested: str | None) -> None:
    venues = Venues(tuple(names), names[-1])
    chosen = choose_venue(requested, venues)
    if requested is None:
        assert chosen == names[-1]
    elif requested in names:
        assert chosen == requested
    else:
        assert isinstance(chosen, Violation) and chosen.code is Code.UNKNOWN_VENUE


def test_a_default_that_is_not_configured_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Venues(("SIM",), "ALT")


def test_the_order_body_may_name_a_venue() -> None:
    body = {"symbol": "AAPL", "side": "buy", "quantity": "1", "type": "market"}
    cmd, found = parse_order({**body, "venue": "ALT"}, TRADER)
    assert not found and cmd is not None and cmd.venue == "ALT"
    cmd, found = parse_order(body, TRADER)
    assert cmd is not None and cmd.venue is None
    for bad in (7, "", "two words", "x" * 33):
        cmd, found = parse_order({**body, "venue": bad}, TRADER)
        assert cmd is None and [(v.code, v.field) for v in found] == [(Code.INVALID_TEXT,
                                                                       "venue")]


# ---- settings -----------------------------------------------------------------------------------

def test_the_single_venue_settings_are_unchanged() -> None:
    assert Settings().venue_specs() == [VenueSpec("SIM")]
    assert Settings(venue="127.0.0.1:9000").venue_specs() == [VenueSpec("SIM", "127.0.0.1:9000")]
    assert Settings().default_venue_name == "SIM"


def test_more_venues_are_named_beside_the_embedded_one() -> None:
    settings = Settings(venues="ALT=127.0.0.1:9001, SIM2=embedded", default_venue="ALT")
    assert settings.venue_specs() == [VenueSpec("SIM"), VenueSpec("ALT", "127.0.0.1:9001"),
                                      VenueSpec("SIM2")]
    assert settings.default_venue_name == "ALT"
    taken = Settings(venues=["SIM=127.0.0.1:9001"])  # the named entry is the SIM venue
    assert taken.venue_specs() == [VenueSpec("SIM", "127.0.0.1:9001")]


@pytest.mark.parametrize(("values", "words"), [
    ({"venues": ["ALT=nowhere"]}, "must be HOST:PORT"),
    ({"venues": ["=127.0.0.1:1"]}, "NAME=HOST:PORT"),
    ({"venues": ["ALT=127.0.0.1:1", "ALT=embedded"]}, "ALT is configured more than once"),
    ({"default_venue": "ALT"}, "the default venue 'ALT' is not configured"),
])
def test_venue_settings_that_cannot_work_are_refused(values: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        Settings(**values)


# ---- the engine with two venues -----------------------------------------------------------------

async def _never() -> AsyncIterator[Any]:
    await asyncio.Event().wait()
    yield


class FakeVenue:
    """A venue that keeps what it is sent; ``up`` is its session."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.capabilities = Capabilities(name, dict.fromkeys(Capability, "fake"))
        self.up = True
        self.batches: list[list[NewOrder]] = []
        self.cancels: list[str] = []

    @property
    def connected(self) -> bool:
        return self.up

    def session_status(self) -> SessionStatus:
        return SessionStatus("connected" if self.up else "disconnected")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _check(self) -> None:
        if not self.up:
            raise VenueUnavailable(f"{self.name} is down")

    async def submit(self, order: NewOrder) -> None:
        self._check()
        self.batches.append([order])

    async def submit_many(self, orders: list[NewOrder]) -> list[VenueUnavailable | None]:
        self._check()
        self.batches.append(list(orders))
        return [None] * len(orders)

    async def cancel(self, client_order_id: str) -> None:
        self._check()
        self.cancels.append(client_order_id)

    async def query(self, client_order_id: str) -> VenueOrder | None:
        return None

    async def open_orders(self) -> list[VenueOrder]:
        return []

    async def fills_since(self, since: datetime) -> list[ExecutionReport]:
        return []

    def reports(self) -> AsyncIterator[ExecutionReport]:
        return _never()

    def quotes(self) -> AsyncIterator[Quote]:
        return _never()

    def sent(self) -> list[str]:
        return [o.client_order_id for batch in self.batches for o in batch]


class StepClock:
    """Time that moves only when the test says: ``wait`` returns when its event is set or when
    ``advance`` has taken the clock past its deadline."""

    def __init__(self) -> None:
        self.at = T0
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self.at

    async def wait(self, wake: asyncio.Event, seconds: float) -> bool:
        deadline = self.at + timedelta(seconds=seconds)
        while not wake.is_set() and self.at < deadline:
            moved = self._moved
            waiting = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(moved.wait())]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in waiting:
                task.cancel()
        return wake.is_set()

    async def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        for _ in range(20):  # let every loop that woke run its units to the end
            await asyncio.sleep(0.005)


class Wired:
    def __init__(self, clock: Any = None) -> None:
        ledger = Ledger()
        ledger.add_account(account("1000000"), {})
        ledger.instruments["AAPL"] = instrument()
        self.store = FakeStore()
        self.clock = clock or FixedClock()
        self.core = Core(None, ledger, lambda events: None, writer=self.store,
                         reader=self.store)
        self.orders = OrderService(self.core, self.clock, PricePolicy(), venues=TWO)
        self.sim, self.alt = FakeVenue("SIM"), FakeVenue("ALT")
        self.engine = ExecutionEngine(self.core, {"SIM": self.sim, "ALT": self.alt},
                                      self.clock, MarketData(), default_venue="SIM",
                                      policy=RetryPolicy(order_timeout_seconds=60))

    def reconciled(self) -> None:
        """As after each venue's first reconciliation (which reads the store)."""
        for recovery in self.engine.recoveries.values():
            recovery.in_sync = True

    async def place(self, venue: str | None = None, **more: Any) -> str:
        done = await self.orders.submit(replace(submit(quantity="1"), venue=venue, **more))
        return str(done.order.id)


async def test_orders_are_grouped_per_venue_and_each_records_its_venue() -> None:
    w = Wired()
    w.reconciled()
    await w.core.start()
    ids = await asyncio.gather(w.place(), w.place("ALT"), w.place("SIM"), w.place("ALT"),
                               w.place())
    await w.engine.send("SIM")
    await w.engine.send("ALT")
    to_sim = [ids[0], ids[2], ids[4]]
    to_alt = [ids[1], ids[3]]
    assert sorted(w.sim.sent()) == sorted(to_sim) and sorted(w.alt.sent()) == sorted(to_alt)
    assert len(w.sim.batches) == 1 and len(w.alt.batches) == 1, "one submit_many per venue"
    first_rows = {str(o.id): o.venue for b in w.store.batches for o in b.new_orders}
    assert first_rows == {**dict.fromkeys(to_sim, "SIM"), **dict.fromkeys(to_alt, "ALT")}
    assert {str(o.id): o.venue for o in w.core.ledger.open.values()} == first_rows
    assert all(o.routed_at is not None for o in w.core.ledger.open.values())
    await w.core.stop()


async def test_an_unknown_venue_is_refused_and_nothing_is_kept() -> None:
    w = Wired()
    await w.core.start()
    with pytest.raises(DomainError) as refused:
        await w.place("NYSE")
    assert [v.code for v in refused.value.violations] == [Code.UNKNOWN_VENUE]
    assert not w.core.ledger.open
    assert [o for b in w.store.batches for o in b.new_orders] == []
    preview = await w.orders.preview(replace(submit(quantity="1"), venue="NYSE"))
    assert [v.code for v in preview.violations] == [Code.UNKNOWN_VENUE]
    await w.core.stop()


async def test_a_replay_may_leave_the_venue_out_but_not_name_another() -> None:
    w = Wired()
    await w.core.start()
    first = await w.orders.submit(replace(submit(quantity="1"), venue="ALT",
                                          client_order_id="c1"))
    again = await w.orders.submit(replace(submit(quantity="1"), client_order_id="c1"))
    assert not again.created and again.order.id == first.order.id
    with pytest.raises(DomainError) as refused:
        await w.orders.submit(replace(submit(quantity="1"), venue="SIM", client_order_id="c1"))
    assert refused.value.violations[0].code is Code.CLIENT_ORDER_ID_CONFLICT
    await w.core.stop()


async def test_a_venue_that_is_down_holds_back_only_its_own_orders() -> None:
    w = Wired()
    w.reconciled()
    await w.core.start()
    w.alt.up = False
    await w.engine.sweep("ALT", T0)  # a sweep notices: ALT must reconcile once it is back
    assert not w.engine.recoveries["ALT"].in_sync and w.engine.recoveries["SIM"].in_sync
    to_sim, to_alt = await w.place(), await w.place("ALT")
    await w.engine.send("SIM")
    await w.engine.send("ALT")
    assert w.sim.sent() == [to_sim] and w.alt.sent() == []
    waiting = w.core.ledger.open[UUID(to_alt)]
    assert waiting.routed_at is None and waiting.venue == "ALT"
    batches = w.core.batches
    await w.engine.send("SIM")
    assert w.core.batches == batches, "ALT's waiting orders cost SIM's dispatch no unit of work"
    w.alt.up = True
    w.engine.recoveries["ALT"].in_sync = True  # reconciled again
    await w.engine.send("ALT")
    assert w.alt.sent() == [to_alt] and w.sim.sent() == [to_sim]
    await w.core.stop()


async def test_the_engine_refuses_venues_it_cannot_tell_apart() -> None:
    w = Wired()
    with pytest.raises(ValueError, match="configured as"):
        ExecutionEngine(w.core, {"X": w.sim}, w.clock, MarketData())
    with pytest.raises(ValueError, match="not configured"):
        ExecutionEngine(w.core, {"SIM": w.sim}, w.clock, MarketData(), default_venue="ALT")


async def test_timers_fire_when_the_engine_clock_says_so_and_only_then() -> None:
    """Both venues down, so nothing is sent: a 5 s timeout cancels the first order when the
    clock passes it, and the order ALT could not take expires after the order timeout with
    ALT's name in its reason. Real time passing does nothing."""
    clock = StepClock()
    w = Wired(clock)
    w.sim.up = w.alt.up = False
    await w.core.start()
    timed = await w.place(timeout_seconds=5)
    waiting = await w.place("ALT")
    await w.engine.start()
    try:
        await asyncio.sleep(0.7)  # more than a sweep of a wall clock
        await clock.advance(4)
        statuses = {str(o.id): o.status for o in w.core.ledger.open.values()}
        assert statuses == {timed: OrderStatus.ACCEPTED, waiting: OrderStatus.ACCEPTED}
        await clock.advance(2)
        assert timed not in {str(o.id) for o in w.core.ledger.open.values()}
        assert w.store.orders[UUID(timed)].status is OrderStatus.CANCELLED
        await clock.advance(50)
        assert w.store.orders[UUID(waiting)].status is OrderStatus.ACCEPTED
        await clock.advance(5)
        expired = w.store.orders[UUID(waiting)]
        assert expired.status is OrderStatus.EXPIRED
        assert expired.reason is not None and "venue ALT could not be reached" in expired.reason
        assert w.sim.sent() == [] and w.alt.sent() == []
    finally:
        await w.engine.stop()
        await w.core.stop()


async def test_open_orders_of_a_venue_no_longer_configured_are_said_at_start(
        caplog: pytest.LogCaptureFixture) -> None:
    w = Wired()
    for _ in range(2):
        w.core.ledger.put_order(sent(make_order(), T0, "GONE"))
    await w.engine.start()
    await w.engine.stop()
    [said] = [r.getMessage() for r in caplog.records if "GONE" in r.getMessage()]
    assert said.startswith("2 open orders belong to venue GONE, which is not configured")
