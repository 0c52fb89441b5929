"""Cancel, listing, account, positions, instruments, admin limits and the rate limit."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from uuid import uuid4

import pytest
from websockets.exceptions import ConnectionClosed

from ordex.bootstrap import build
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.services.ratelimit import SlidingWindowLimiter
from tests.conftest import Api, auth

ORDER = {"symbol": "AAPL", "side": "buy", "quantity": "10", "type": "limit",
         "limit_price": "189.00"}


async def submit(api: Api, who: dict[str, str], **changes: str) -> dict[str, object]:
    r = await api.client.post("/v1/orders", json={**ORDER, **changes}, headers=auth(who))
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


async def test_cancel_a_working_order_then_again(api: Api) -> None:
    alice = await api.account("alice")
    order = await submit(api, alice)
    r = await api.client.delete(f"/v1/orders/{order['id']}", headers=auth(alice))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["reason"] == "cancelled by trader"
    again = await api.client.delete(f"/v1/orders/{order['id']}", headers=auth(alice))
    assert again.status_code == 409
    err = again.json()["errors"][0]
    assert err["code"] == "order_not_cancelable"
    assert err["message"] == "This order is already cancelled; there is nothing left to cancel."
    account = (await api.client.get("/v1/account", headers=auth(alice))).json()
    assert account["reserved_cash"] == "0" and account["open_orders"] == 0


async def test_list_filters_and_pages(api: Api) -> None:
    alice = await api.account("alice")
    made = [await submit(api, alice, symbol=s, limit_price=p)
            for s, p in [("AAPL", "189.00"), ("KO", "62.85"), ("AAPL", "189.10")]]
    await api.client.delete(f"/v1/orders/{made[0]['id']}", headers=auth(alice))

    async def ids(query: str) -> list[object]:
        r = await api.client.get(f"/v1/orders?{query}", headers=auth(alice))
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["orders"]]

    assert await ids("symbol=aapl") == [made[2]["id"], made[0]["id"]]
    assert await ids("status=cancelled") == [made[0]["id"]]
    assert await ids("status=accepted,cancelled") == [m["id"] for m in reversed(made)]
    assert await ids("status=accepted&status=cancelled") == [m["id"] for m in reversed(made)]
    first = (await api.client.get("/v1/orders?limit=2", headers=auth(alice))).json()
    assert len(first["orders"]) == 2 and first["next_cursor"] == made[1]["id"]
    assert await ids(f"limit=2&cursor={first['next_cursor']}") == [made[0]["id"]]
    assert await ids("from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00") == []
    bad = await api.client.get("/v1/orders?status=done", headers=auth(alice))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    bad = await api.client.get("/v1/orders?limit=0", headers=auth(alice))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "limit"


async def test_account_positions_and_instruments(api: Api) -> None:
    alice = await api.account("alice", cash="50000", positions={"AAPL": ("100", "180.00")})
    await submit(api, alice)
    account = (await api.client.get("/v1/account", headers=auth(alice))).json()
    assert account["cash"] == "50000"
    assert account["reserved_cash"] == "1890"
    assert account["buying_power"] == "48110"
    assert account["equity"] == "68950"  # 50,000 + 100 x 189.50
    assert account["rate_limit_per_minute"] == 100
    positions = (await api.client.get("/v1/positions", headers=auth(alice))).json()["positions"]
    assert positions == [{"symbol": "AAPL", "quantity": "100", "average_cost": "180",
                          "market_price": "189.5", "market_value": "18950",
                          "unrealized_pnl": "950", "realized_pnl": "0"}]
    listed = (await api.client.get("/v1/instruments", headers=auth(alice))).json()["instruments"]
    statuses = {i["symbol"]: i["status"] for i in listed}
    assert len(listed) >= 20
    assert statuses["SIVBQ"] == "suspended" and statuses["BBBYQ"] == "delisted"


async def test_suspended_and_delisted_symbols_are_refused(api: Api) -> None:
    alice = await api.account("alice")
    for symbol, code in [("SIVBQ", "symbol_suspended"), ("BBBYQ", "symbol_delisted"),
                         ("NOPE", "unknown_symbol")]:
        r = await api.client.post("/v1/orders", json={**ORDER, "symbol": symbol,
                                                      "type": "market", "limit_price": None},
                                  headers=auth(alice))
        assert r.status_code == 422
        assert r.json()["errors"][0]["code"] == code


async def test_admin_sets_a_traders_limits(api: Api) -> None:
    admin = await api.account("root", Role.ADMIN, cash="0")
    alice = await api.account("alice")
    r = await api.client.patch(f"/v1/admin/accounts/{alice['id']}",
                               json={"max_order_notional": "1000", "max_open_orders": 5},
                               headers=auth(admin))
    assert r.status_code == 200, r.text
    assert r.json()["limits"]["max_order_notional"] == "1000"
    refused = await api.client.post("/v1/orders", json=ORDER, headers=auth(alice))
    assert refused.status_code == 422
    err = refused.json()["errors"][0]
    assert err["code"] == "max_order_notional_exceeded"
    assert err["hint"] == "Reduce the quantity to 5 shares or fewer, or split the order."
    forbidden = await api.client.patch(f"/v1/admin/accounts/{alice['id']}",
                                       json={"max_open_orders": 500}, headers=auth(alice))
    assert forbidden.status_code == 403
    created = await api.client.post("/v1/admin/accounts", json={"name": "dave", "cash": "10"},
                                    headers=auth(admin))
    assert created.status_code == 201
    key = created.json()["api_key"]
    me = await api.client.get("/v1/account", headers={"Authorization": f"Bearer {key}"})
    assert me.json()["name"] == "dave"


async def test_rate_limit_answers_429_and_spares_other_traders(api: Api) -> None:
    admin = await api.account("root", Role.ADMIN, cash="0")
    alice = await api.account("alice", cash="1000000")
    bob = await api.account("bob")
    await api.client.patch(f"/v1/admin/accounts/{alice['id']}",
                           json={"rate_limit_per_minute": 3}, headers=auth(admin))
    for _ in range(3):
        await submit(api, alice)
    limited = await api.client.post("/v1/orders", json=ORDER, headers=auth(alice))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    err = limited.json()["errors"][0]
    assert err["code"] == "rate_limited"
    assert err["message"].startswith("Rate limit reached: at most 3 orders per minute. You can "
                                     "send again in ")
    assert (await api.client.post("/v1/orders", json=ORDER, headers=auth(bob))).status_code == 201


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_default_limit_is_100_per_minute(api: Api) -> None:
    alice = await api.account("alice", cash="10000000")
    admin = await api.account("root", Role.ADMIN, cash="0")
    await api.client.patch(f"/v1/admin/accounts/{alice['id']}", json={"max_open_orders": 1000},
                           headers=auth(admin))
    codes = [(await api.client.post("/v1/orders", json={**ORDER, "quantity": "1"},
                                    headers=auth(alice))).status_code for _ in range(101)]
    assert codes[:100] == [201] * 100 and codes[100] == 429


def test_sliding_window_frees_slots_as_they_age() -> None:
    limiter = SlidingWindowLimiter(2, window=60)
    from uuid import uuid4

    who = uuid4()
    assert limiter.hit(who, 0.0).allowed and limiter.hit(who, 10.0).allowed
    refused = limiter.hit(who, 20.0)
    assert not refused.allowed and refused.retry_after == pytest.approx(40.0)
    assert limiter.hit(who, 60.5).allowed
    assert not limiter.hit(who, 61.0).allowed


async def test_unknown_route_and_method_use_the_error_shape(api: Api) -> None:
    alice = await api.account("alice")
    r = await api.client.get("/v1/nothing", headers=auth(alice))
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "not_found"
    r = await api.client.put("/v1/orders", headers=auth(alice))
    assert r.status_code == 405 and r.json()["errors"][0]["code"] == "method_not_allowed"


async def test_admin_revokes_and_rotates_a_key(api: Api) -> None:
    admin = await api.account("root", Role.ADMIN, cash="0")
    alice = await api.account("alice")
    assert (await api.client.get("/v1/account", headers=auth(alice))).status_code == 200
    r = await api.client.post(f"/v1/admin/accounts/{alice['id']}/revoke-key",
                              headers=auth(admin))
    assert r.status_code == 200, r.text
    assert r.json()["key_status"] == "revoked" and r.json()["key_revoked_at"].endswith("Z")
    refused = await api.client.get("/v1/account", headers=auth(alice))
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["code"] == "unauthorized"
    again = await api.client.post(f"/v1/admin/accounts/{alice['id']}/revoke-key",
                                  headers=auth(admin))
    assert again.status_code == 200 and again.json() == r.json()

    rotated = await api.client.post(f"/v1/admin/accounts/{alice['id']}/rotate-key",
                                    headers=auth(admin))
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["api_key"]
    assert rotated.json()["account"]["key_status"] == "active"
    me = await api.client.get("/v1/account", headers={"Authorization": f"Bearer {new_key}"})
    assert me.status_code == 200 and me.json()["name"] == "alice"
    assert (await api.client.get("/v1/account", headers=auth(alice))).status_code == 401
    newer = await api.client.post(f"/v1/admin/accounts/{alice['id']}/rotate-key",
                                  headers=auth(admin))
    old = await api.client.get("/v1/account", headers={"Authorization": f"Bearer {new_key}"})
    assert newer.json()["api_key"] != new_key and old.status_code == 401

    listed = (await api.client.get("/v1/admin/accounts", headers=auth(admin))).json()
    assert {a["name"]: a["key_status"] for a in listed["accounts"]} == {
        "alice": "active", "root": "active"}
    for path in ("revoke-key", "rotate-key"):
        missing = await api.client.post(f"/v1/admin/accounts/{uuid4()}/{path}",
                                        headers=auth(admin))
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "not_found"
        bad = await api.client.post(f"/v1/admin/accounts/nope/{path}", headers=auth(admin))
        assert bad.status_code == 404
        forbidden = await api.client.post(f"/v1/admin/accounts/{alice['id']}/{path}",
                                          headers={"Authorization": f"Bearer {new_key}"})
        assert forbidden.status_code in (401, 403)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_key_revoked_by_another_process_is_refused_within_a_second_everywhere(
        settings: Settings) -> None:
    """REST, a long poll in progress and an open stream: all end within a second of the
    revocation, which another process (the CLI, another server) makes in the store."""
    import time

    import httpx
    from websockets.asyncio.client import connect

    from tests.support.live import live_service

    async with live_service(settings) as live:
        issued = await live.services.accounts.create("alice", Role.TRADER, Decimal(100_000))
        headers = {"Authorization": f"Bearer {issued.api_key}"}
        async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=10) as client:
            order = (await client.post("/v1/orders", json=ORDER)).json()
            assert (await client.get("/v1/account")).status_code == 200
            ws_url = live.url.replace("http://", "ws://") + "/v1/stream"
            async with connect(ws_url) as ws:
                await ws.send(json.dumps({"api_key": issued.api_key}))
                assert json.loads(await ws.recv())["type"] == "subscribed"
                poll = asyncio.create_task(client.get(
                    f"/v1/orders/{order['id']}/events", params={"after": 10**6, "wait": 20}))
                await asyncio.sleep(0.3)

                other = build(settings)  # another process's view of the same store
                try:
                    await other.accounts.revoke_key(issued.account.id)
                finally:
                    await other.close()
                revoked_at = time.monotonic()

                polled = await asyncio.wait_for(poll, 1.5)
                assert polled.status_code == 401
                assert polled.json()["errors"][0]["code"] == "unauthorized"
                assert time.monotonic() - revoked_at < 1.0
                error = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                while error["type"] != "error":  # the order's backlog, then the refusal
                    error = json.loads(await asyncio.wait_for(ws.recv(), 1.0))
                assert error["code"] == "unauthorized"
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 1.0)
                assert time.monotonic() - revoked_at < 1.0
                assert ws.close_code == 4401
                assert ws.close_reason == "Your API key was revoked or replaced by a new one."
            assert (await client.get("/v1/account")).status_code == 401


async def test_the_api_docs_use_only_assets_ordex_serves(api: Api) -> None:
    import re

    for path in ("/docs",):
        page = await api.client.get(path)
        assert page.status_code == 200
        assert "script-src 'self' 'sha256-" in page.headers["content-security-policy"]
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: *'([^']+)'""", page.text)
        urls = [a or b for a, b in urls]
        assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        for url in urls:
            assert (await api.client.get(url)).status_code == 200, url
        assert "cdn" not in page.text
