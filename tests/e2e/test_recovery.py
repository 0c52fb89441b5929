"""Never lose, never double (FR-008 to FR-010), in process: retries, lookups of unconfirmed
orders, reconciliation after a reconnect or a restart, stalled reports, manual handling.

Each case names the failure it guards against. The TCP fault matrix is in
tests/integration/test_fault_matrix.py; the kill -9 run in tests/sim/test_crash.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from msgspec.structs import replace

from ordex.bootstrap import Services
from ordex.client import AsyncClient, OrdexError
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.domain.orders import Order, OrderType, Side, TimeInForce, sent
from ordex.engine.tx import Tx
from ordex.store.uow import reading
from ordex.venues.base import NewOrder
from ordex.venues.simulated.inprocess import InProcessVenue
from tests.support.live import FAST as FAST_RECOVERY
from tests.support.live import FINAL, Live, below_market, eventually, live_service, quiet_venue

FAST = {**FAST_RECOVERY, "order_timeout_seconds": 2}


@dataclass
class Desk:
    settings: Settings
    venue: InProcessVenue
    live: Live | None = None

    @property
    def url(self) -> str:
        assert self.live is not None
        return self.live.url

    async def trader(self, name: str = "alice") -> AsyncClient:
        assert self.live is not None
        issued = await self.live.services.accounts.create(name, Role.TRADER, Decimal("1000000"))
        return AsyncClient(self.live.url, issued.api_key)

    def copies_at_venue(self, order_id: str) -> int:
        return [o.client_order_id for o in self.venue.exchange.orders()].count(order_id)

    def resting_limit(self, symbol: str) -> Decimal:
        return below_market(self.venue, symbol)


@asynccontextmanager
async def running_desk(settings: Settings, **more: Any) -> AsyncIterator[Desk]:
    desk = Desk(settings.model_copy(update={**FAST, **more}), quiet_venue(3))
    async with live_service(desk.settings, desk.venue) as live:
        desk.live = live
        yield desk


@pytest.fixture
async def desk(settings: Settings) -> AsyncIterator[Desk]:
    async with running_desk(settings) as desk:
        yield desk


@pytest.fixture
async def patient_desk(settings: Settings) -> AsyncIterator[Desk]:
    """An order waits 60 s for a venue before it expires unsent: a busy venue fails it first
    however slow the machine (with ``desk``'s 2 s it may expire instead)."""
    async with running_desk(settings, order_timeout_seconds=60) as desk:
        yield desk


def metrics_in(data_dir: Path) -> list[dict[str, Any]]:
    path = Path(data_dir) / "logs" / "metrics" / "orders.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def metrics_lines(desk: Desk) -> list[dict[str, Any]]:
    return metrics_in(desk.settings.data_dir)


async def metrics_show(where: Desk | Path, wanted: Callable[[list[dict[str, Any]]], bool],
                       within: float = 3.0) -> bool:
    """Whether the metrics file (of a desk, or in a data dir) comes to hold what ``wanted``
    looks for (its writer thread appends every few tens of milliseconds)."""
    data_dir = where.settings.data_dir if isinstance(where, Desk) else where

    async def check() -> bool:
        return wanted(metrics_in(data_dir))
    return bool(await eventually(check, within))


async def at_venue(ordex: AsyncClient, order_id: str, within: float = 5.0) -> bool:
    async def check() -> bool:
        return (await ordex.get(order_id))["routing"] == "at_venue"
    return bool(await eventually(check, within))


async def resting(desk: Desk, ordex: AsyncClient) -> tuple[dict[str, Any], Decimal]:
    """A GTC buy of 10 KO below the market, once the venue has acknowledged it."""
    limit = desk.resting_limit("KO")
    order = await ordex.submit("KO", "buy", "10", type="limit", limit_price=limit,
                               time_in_force="gtc")
    assert await at_venue(ordex, order["id"])
    return order, limit


async def test_a_lost_ack_is_recovered_by_asking_the_venue(desk: Desk) -> None:
    ordex = await desk.trader()
    desk.venue.faults.update(lose_acks=1)
    order, _ = await resting(desk, ordex)
    found = await ordex.get(order["id"])
    assert found["status"] == "accepted" and found["send_attempts"] == 1
    assert desk.copies_at_venue(order["id"]) == 1
    assert await metrics_show(desk, lambda lines: any(
        m["event"] == "order.recovered" and m["order_id"] == order["id"] for m in lines))
    await ordex.close()


async def test_not_found_is_not_proof_a_resend_refused_as_duplicate_recovers_the_order(
        desk: Desk) -> None:
    """The venue hides the order for a while (visibility lag) and its ack is lost: ordex sends
    again with the same id, the venue refuses the copy, and ordex adopts the original."""
    ordex = await desk.trader()
    desk.venue.faults.update(lose_acks=1, visibility_lag=3.0)  # longer than a re-attempt takes
    order = await ordex.submit("KO", "buy", "10", type="limit",
                               limit_price=desk.resting_limit("KO"), time_in_force="gtc")
    assert await at_venue(ordex, order["id"], within=8)
    assert desk.copies_at_venue(order["id"]) == 1
    assert desk.venue.exchange.duplicates_refused >= 1
    assert (await ordex.get(order["id"]))["status"] == "accepted"
    assert await metrics_show(desk, lambda lines: any(
        m.get("error") == "duplicate" and m["order_id"] == order["id"] for m in lines))
    await ordex.close()


async def test_an_order_in_flight_at_a_timeout_is_unconfirmed_never_rejected(desk: Desk) -> None:
    ordex = await desk.trader()
    desk.venue.faults.update(ack_delay=1.5)  # far beyond the 0.3 s ack timeout
    order = await ordex.submit("KO", "buy", "5", type="limit",
                               limit_price=desk.resting_limit("KO"), time_in_force="gtc")
    seen: set[tuple[str, str]] = set()

    async def settled() -> bool:
        now = await ordex.get(order["id"])
        seen.add((now["status"], now["routing"]))
        return now["routing"] == "at_venue"
    assert await eventually(settled, within=6)
    assert ("accepted", "unconfirmed") in seen
    assert {status for status, _ in seen} == {"accepted"}
    assert desk.copies_at_venue(order["id"]) == 1
    await ordex.close()


async def test_a_busy_venue_is_retried_with_backoff_and_every_attempt_is_logged(
        desk: Desk) -> None:
    ordex = await desk.trader()
    desk.venue.faults.update(refuse_sends=2)
    order = await ordex.submit("KO", "buy", "5")
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    assert done["status"] == "filled" and done["send_attempts"] == 3
    assert desk.copies_at_venue(order["id"]) == 1
    assert desk.live is not None
    async with reading(desk.live.services.db) as repo:
        logs = await repo.journal(order_id=_uuid(order["id"]))
    actions = [entry.action.value for entry in logs]
    assert actions.count("execute") == 3 and actions.count("retry") == 2

    def retry_counts(lines: list[dict[str, Any]]) -> list[int]:
        return [m["retry_count"] for m in lines
                if m["event"] == "order.executed" and m["order_id"] == order["id"]]
    assert await metrics_show(desk, lambda lines: len(retry_counts(lines)) >= 3)
    assert retry_counts(metrics_lines(desk)) == [0, 1, 2]
    await ordex.close()


async def test_a_venue_busy_beyond_every_retry_fails_the_order_then_retry_and_acknowledge(
        patient_desk: Desk) -> None:
    desk = patient_desk
    ordex = await desk.trader()
    desk.venue.faults.update(refuse_sends=4)  # 1 attempt + 3 retries
    order = await ordex.submit("KO", "buy", "5")
    failed = await ordex.wait_for(order["id"], FINAL, within=5)
    assert failed["status"] == "failed" and failed["send_attempts"] == 4
    assert failed["reason"].startswith("Could not reach venue SIM after 4 attempts (SIM is busy)")
    assert "Retry it, or acknowledge it" in failed["reason"]
    assert desk.copies_at_venue(order["id"]) == 0
    assert await metrics_show(desk, lambda lines: any(
        m["event"] == "order.failed" and m["order_id"] == order["id"] for m in lines))

    again = await ordex.retry(order["id"])
    assert again["id"] != order["id"] and again["retry_of"] == order["id"]
    assert (await ordex.retry(order["id"]))["id"] == again["id"]  # twice: still one new order
    done = await ordex.wait_for(again["id"], FINAL, within=5)
    assert done["status"] == "filled"
    closed = await ordex.get(order["id"])
    assert closed["acknowledged_at"] is not None and closed["retried_as"] == again["id"]
    assert len(await ordex.list()) == 2
    with pytest.raises(OrdexError) as refused:
        await ordex.retry(again["id"])
    assert refused.value.status == 409 and refused.value.codes == ["order_not_failed"]
    await ordex.close()


async def test_acknowledging_a_failed_order_closes_it(patient_desk: Desk) -> None:
    desk = patient_desk
    ordex = await desk.trader()
    desk.venue.faults.update(refuse_sends=4)
    order = await ordex.submit("KO", "buy", "5")
    await ordex.wait_for(order["id"], FINAL, within=5)
    acked = await ordex.acknowledge(order["id"])
    assert acked["status"] == "failed" and acked["acknowledged_at"] is not None
    assert (await ordex.acknowledge(order["id"]))["acknowledged_at"] == acked["acknowledged_at"]
    events = (await ordex.events(order["id"]))["events"]
    assert events[-1]["type"] == "acknowledged"
    await ordex.close()


async def test_fills_while_disconnected_are_fetched_on_reconnect(desk: Desk) -> None:
    ordex = await desk.trader()
    order, limit = await resting(desk, ordex)
    desk.venue.faults.update(down=True)
    desk.venue.move_market("KO", limit - Decimal("0.50"))  # fills while nobody listens
    assert desk.venue.lost_reports > 0
    await asyncio.sleep(0.6)
    assert (await ordex.get(order["id"]))["filled_quantity"] == "0"
    desk.venue.faults.update(down=False)
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    assert done["status"] == "filled"
    fills = await ordex.fills(order["id"])
    assert sum(Decimal(f["quantity"]) for f in fills) == 10
    [position] = [p for p in await ordex.positions() if p["symbol"] == "KO"]
    assert position["quantity"] == "10"
    await ordex.close()


async def test_a_silently_stalled_report_stream_is_detected_and_recovered(desk: Desk) -> None:
    ordex = await desk.trader()
    order, limit = await resting(desk, ordex)
    desk.venue.faults.update(stall_reports=True)  # the session looks fine; reports vanish
    desk.venue.move_market("KO", limit - Decimal("0.50"))
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    assert done["status"] == "filled"
    assert desk.live is not None and desk.live.services.engine is not None
    recovery = desk.live.services.engine.recovery

    async def reconciled() -> bool:  # the order is filled before reconcile() returns
        return recovery.last is not None and recovery.last.adopted >= 1
    assert await eventually(reconciled)
    await ordex.close()


async def test_an_order_waiting_for_a_down_venue_expires_unsent_and_says_so(desk: Desk) -> None:
    ordex = await desk.trader()
    desk.venue.faults.update(down=True)
    order = await ordex.submit("KO", "buy", "5")
    done = await ordex.wait_for(order["id"], FINAL, within=5)
    desk.venue.faults.update(down=False)
    assert done["status"] == "expired" and done["send_attempts"] == 0
    assert done["reason"] == ("Not sent: venue SIM could not be reached for 2 seconds after the "
                              "order was accepted. Nothing was executed; send it again when the "
                              "venue is back.")
    await asyncio.sleep(0.6)
    assert desk.copies_at_venue(order["id"]) == 0
    await ordex.close()


async def test_readyz_follows_the_venue(desk: Desk) -> None:
    async with httpx.AsyncClient(base_url=desk.url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["venues"] == {"SIM": "connected"}
        assert ready.json()["venue_details"]["SIM"]["notices"] == []
        desk.venue.faults.update(down=True)
        down = await http.get("/readyz")
        assert down.status_code == 503
        body = down.json()
        assert {k: body[k] for k in ("status", "store", "venues")} == {
            "status": "not ready", "store": "ok", "venues": {"SIM": "disconnected"}}
        assert body["venue_details"]["SIM"]["session"]["state"] == "disconnected"
        assert "down" in body["venue_details"]["SIM"]["session"]["problem"]
        assert (await http.get("/healthz")).status_code == 200
        desk.venue.faults.update(down=False)


@pytest.mark.parametrize("reached_venue", [True, False])
async def test_a_restart_never_sends_again_an_order_that_reached_the_venue(
        settings: Settings, reached_venue: bool) -> None:
    """The process died after recording the intent to send, before or after the send itself.
    On restart ordex asks the venue first: one copy at the venue, either way."""
    venue = quiet_venue(3)
    quiet = settings.model_copy(update={**FAST, "execution_enabled": False})
    async with live_service(quiet, venue) as first:
        issued = await first.services.accounts.create("alice", Role.TRADER, Decimal("100000"))
        async with AsyncClient(first.url, issued.api_key) as ordex:
            quote = venue.exchange.quote("KO")
            assert quote is not None and quote.bid is not None
            limit = (quote.bid * Decimal("0.98")).quantize(Decimal("0.01"))
            order = await ordex.submit("KO", "buy", "10", type="limit", limit_price=limit,
                                       time_in_force="gtc")
        await _mark_routed(first.services, order["id"])
        if reached_venue:
            await venue.submit(NewOrder(order["id"], "KO", Side.BUY, OrderType.LIMIT,
                                        Decimal(10), TimeInForce.GTC, limit))
    async with live_service(settings.model_copy(update=FAST), venue) as second, \
            AsyncClient(second.url, issued.api_key) as ordex:
        assert await at_venue(ordex, order["id"])
        assert [o.client_order_id for o in venue.exchange.orders()].count(order["id"]) == 1
        assert (await ordex.get(order["id"]))["send_attempts"] == (1 if reached_venue else 2)


async def test_a_ghost_order_at_the_venue_is_reported_and_cancelled(desk: Desk) -> None:
    ghost = "00000000-0000-7000-8000-000000000001"
    await desk.venue.submit(NewOrder(ghost, "KO", Side.BUY, OrderType.LIMIT, Decimal(3),
                                     TimeInForce.GTC, desk.resting_limit("KO")))
    desk.venue.faults.update(down=True)
    await asyncio.sleep(0.6)
    desk.venue.faults.update(down=False)  # a reconnect: reconciliation runs

    async def cancelled() -> bool:
        found = desk.venue.exchange.query(ghost)
        return found is not None and not found.state.is_open
    assert await eventually(cancelled)

    async def alerted() -> bool:  # the metrics file is written behind the service's back
        return any(m["event"] == "order.ghost" and m["order_id"] == ghost
                   for m in metrics_lines(desk))
    assert await eventually(alerted)


async def test_metrics_events_are_json_lines_with_the_plans_fields(desk: Desk) -> None:
    ordex = await desk.trader()
    order = await ordex.submit("KO", "buy", "2")
    await ordex.wait_for(order["id"], FINAL)
    resting = await ordex.submit("KO", "buy", "2", type="limit",
                                 limit_price=desk.resting_limit("KO"), time_in_force="gtc")
    await ordex.wait_for(resting["id"], {"accepted"})
    await ordex.cancel(resting["id"])

    async def all_there() -> bool:
        names = {(m["event"], m["order_id"]) for m in metrics_lines(desk)}
        return {("order.submitted", order["id"]), ("order.executed", order["id"]),
                ("order.filled", order["id"]),
                ("order.cancelled_by_trader", resting["id"])} <= names
    assert await eventually(all_there)
    for line in metrics_lines(desk):
        assert {"event", "timestamp", "order_id", "trader_id", "retry_count"} <= set(line)
        assert line["timestamp"].endswith("Z")
    await ordex.close()


def _uuid(value: str) -> Any:
    from uuid import UUID

    return UUID(value)


async def test_the_cli_lists_retries_and_acknowledges_failed_orders(
        patient_desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    desk = patient_desk
    from ordex.cli import main

    assert desk.live is not None
    issued = await desk.live.services.accounts.create("carl", Role.TRADER, Decimal("100000"))
    desk.venue.faults.update(refuse_sends=8)
    async with AsyncClient(desk.url, issued.api_key) as ordex:
        orders = [await ordex.submit("KO", "buy", "2") for _ in range(2)]
        for order in orders:
            await ordex.wait_for(order["id"], FINAL, within=5)
        flags = ["--url", desk.url, "--key", issued.api_key]
        assert await asyncio.to_thread(main, ["orders", "list", "--status", "failed", *flags]) == 0
        listed = capsys.readouterr().out
        assert all(o["id"] in listed for o in orders) and "Could not reach venue SIM" in listed
        assert await asyncio.to_thread(main, ["orders", "retry", orders[0]["id"], *flags]) == 0
        new_id = capsys.readouterr().out.split()[0]
        assert (await ordex.get(new_id))["retry_of"] == orders[0]["id"]
        assert await asyncio.to_thread(
            main, ["orders", "acknowledge", orders[1]["id"], *flags]) == 0
        capsys.readouterr()
        assert (await ordex.get(orders[1]["id"]))["acknowledged_at"] is not None
        assert await asyncio.to_thread(main, ["orders", "retry", new_id, *flags]) == 1
        assert "only a failed order can be retried" in capsys.readouterr().err


@pytest.mark.parametrize("at_venue_first", [True, False])
async def test_a_cancel_caught_by_a_crash_is_settled_after_the_restart(
        settings: Settings, at_venue_first: bool) -> None:
    """The process died after a cancel was recorded as sent (the order at the venue), or after a
    cancel of an order whose own send never happened: either way the cancel ends cancelled in
    ordex and at the venue, and the order is never sent."""
    venue = quiet_venue(3)
    quiet = settings.model_copy(update={**FAST, "execution_enabled": False})
    async with live_service(quiet, venue) as first:
        issued = await first.services.accounts.create("alice", Role.TRADER, Decimal("100000"))
        quote = venue.exchange.quote("KO")
        assert quote is not None and quote.bid is not None
        limit = (quote.bid * Decimal("0.98")).quantize(Decimal("0.01"))
        async with AsyncClient(first.url, issued.api_key) as ordex:
            order = await ordex.submit("KO", "buy", "10", type="limit", limit_price=limit,
                                       time_in_force="gtc")
            await _mark_routed(first.services, order["id"])
            if at_venue_first:
                await venue.submit(NewOrder(order["id"], "KO", Side.BUY, OrderType.LIMIT,
                                            Decimal(10), TimeInForce.GTC, limit))
            assert (await ordex.cancel(order["id"]))["status"] == "pending_cancel"
        if at_venue_first:
            await _change(first.services, order["id"], lambda o: replace(
                o, cancel_sent_at=first.services.clock.now()))
    async with live_service(settings.model_copy(update=FAST), venue) as second, \
            AsyncClient(second.url, issued.api_key) as ordex:
        done = await ordex.wait_for(order["id"], FINAL, within=8)
        assert done["status"] == "cancelled"
        found = venue.exchange.query(order["id"])
        if at_venue_first:
            assert found is not None and found.state.value == "cancelled"
        else:
            assert found is None and "never reached venue SIM" in done["reason"]


async def _change(services: Services, order_id: str,
                  step: Callable[[Order], Order]) -> None:
    """What the engine records at a step of its own (through the one write path), as if the
    process then died before the next step."""
    async def unit(tx: Tx) -> None:
        order = await tx.order(_uuid(order_id))
        assert order is not None
        tx.update_order(step(order))
    await services.core.run(unit)


async def _mark_routed(services: Services, order_id: str) -> None:
    """The intent to send recorded, the order not yet sent."""
    await _change(services, order_id, lambda o: sent(o, services.clock.now(), "SIM"))
