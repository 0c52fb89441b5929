"""What a person reads in responses: trader names rather than ids, money in cents, prices on
the tick and average prices to four decimals. Stored values keep their full precision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from uuid import UUID

import pytest

from ordex.client import AsyncClient
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.store.uow import reading
from tests.conftest import Api, auth
from tests.support.live import Live, live_service, quiet_venue

ORDER = {"symbol": "AAPL", "side": "buy", "quantity": "10", "type": "limit",
         "limit_price": "189.00"}


def places(text: str) -> int:
    exponent = Decimal(text).as_tuple().exponent
    assert isinstance(exponent, int)
    return max(-exponent, 0)


async def test_compliance_sees_trader_names_on_orders_and_events(api: Api) -> None:
    alice = await api.account("alice")
    bob = await api.account("bob")
    carol = await api.account("carol", Role.COMPLIANCE, cash="0")
    for who in (alice, bob):
        r = await api.client.post("/v1/orders", json=ORDER, headers=auth(who))
        assert r.status_code == 201 and r.json()["trader_name"] in ("alice", "bob")
    listed = (await api.client.get("/v1/orders", headers=auth(carol))).json()["orders"]
    assert sorted(o["trader_name"] for o in listed) == ["alice", "bob"]
    by_name = {o["trader_name"]: o for o in listed}
    assert by_name["bob"]["trader_id"] == bob["id"]
    one = (await api.client.get(f"/v1/orders/{by_name['alice']['id']}",
                                headers=auth(carol))).json()
    assert one["trader_name"] == "alice"
    events = (await api.client.get(f"/v1/orders/{by_name['bob']['id']}/events",
                                   headers=auth(carol))).json()["events"]
    assert events and all(e["trader_name"] == "bob" for e in events)
    cancelled = await api.client.delete(f"/v1/orders/{by_name['alice']['id']}",
                                        headers=auth(alice))
    assert cancelled.json()["trader_name"] == "alice"


async def test_positions_and_account_show_cents_and_four_decimal_averages(api: Api) -> None:
    cost = "189.3333333333"  # three fills averaged, as the store keeps it
    alice = await api.account("alice", cash="1000.005",
                              positions={"AAPL": ("3", cost), "KO": ("7", "61.1234567891")})
    positions = (await api.client.get("/v1/positions", headers=auth(alice))).json()["positions"]
    aapl = next(p for p in positions if p["symbol"] == "AAPL")
    assert aapl["average_cost"] == "189.3333"
    exact = (Decimal(aapl["market_price"]) - Decimal(cost)) * 3
    assert Decimal(aapl["unrealized_pnl"]) == exact.quantize(Decimal("0.01"))
    for p in positions:
        assert places(p["average_cost"]) <= 4
        for key in ("market_value", "unrealized_pnl", "realized_pnl"):
            assert places(p[key]) <= 2, (key, p)
        assert places(p["market_price"]) <= 2
    account = (await api.client.get("/v1/account", headers=auth(alice))).json()
    for key in ("cash", "reserved_cash", "buying_power", "equity", "day_pnl"):
        assert places(account[key]) <= 2, (key, account)
    assert account["cash"] == "1000"  # half a cent, rounded half to even
    async with reading(api.services.db) as repo:
        stored = next(p for p in await repo.positions(alice_id(alice)) if p.symbol == "AAPL")
        held = await repo.account(alice_id(alice))
    assert stored.average_cost == Decimal(cost) and held is not None
    assert held.cash == Decimal("1000.005")


def alice_id(headers: dict[str, str]) -> UUID:
    return UUID(headers["id"])


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    wired = settings.model_copy(update={"execution_enabled": True})
    async with live_service(wired, quiet_venue(3)) as running:
        yield running


async def test_fills_and_stream_events_carry_the_trader_name(live: Live, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the names come from the same read side on every store")
    alice_key = (await live.services.accounts.create("alice", Role.TRADER,
                                                     Decimal(1_000_000))).api_key
    carol_key = (await live.services.accounts.create("carol", Role.COMPLIANCE,
                                                     Decimal(0))).api_key
    async with AsyncClient(live.url, alice_key) as alice, \
            AsyncClient(live.url, carol_key) as carol:
        order = await alice.submit("MSFT", "buy", "7")
        done = await alice.wait_for(order["id"], {"filled"})
        assert places(done["average_price"]) <= 4
        fills = await carol.fills()
        assert fills and {f["trader_name"] for f in fills} == {"alice"}
        assert all(places(f["commission"]) <= 2 for f in fills)
        seen = []
        async for event in carol.stream(everyone=True, reconnect=False):
            seen.append(event)
            if event["status"] == "filled":
                break
        assert {e["trader_name"] for e in seen} == {"alice"}
