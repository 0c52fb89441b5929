"""The order API end to end, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

from ordex.domain.accounts import Role
from tests.conftest import Api, auth

ORDER = {"symbol": "AAPL", "side": "buy", "quantity": "10", "type": "limit",
         "limit_price": "189.00"}


async def test_submit_then_read_back(api: Api) -> None:
    alice = await api.account("alice")
    r = await api.client.post("/v1/orders", json=ORDER, headers=auth(alice))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "accepted"
    assert body["quantity"] == "10" and body["limit_price"] == "189"
    assert r.headers["location"] == f"/v1/orders/{body['id']}"
    got = await api.client.get(f"/v1/orders/{body['id']}", headers=auth(alice))
    assert got.status_code == 200
    assert got.json() == body


async def test_decimal_numbers_keep_full_precision(api: Api) -> None:
    alice = await api.account("alice")
    r = await api.client.post(
        "/v1/orders", content=b'{"symbol":"KO","side":"buy","quantity":3,"type":"limit",'
        b'"limit_price":62.85}', headers={**auth(alice), "content-type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["limit_price"] == "62.85"


async def test_other_traders_order_is_404_like_a_missing_one(api: Api) -> None:
    alice = await api.account("alice")
    bob = await api.account("bob")
    order = (await api.client.post("/v1/orders", json=ORDER, headers=auth(alice))).json()
    theirs = await api.client.get(f"/v1/orders/{order['id']}", headers=auth(bob))
    missing = await api.client.get("/v1/orders/01a21585-757c-7d07-ae90-3d753abd5f74",
                                   headers=auth(bob))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["errors"][0]["code"] == missing.json()["errors"][0]["code"]
    cancel = await api.client.delete(f"/v1/orders/{order['id']}", headers=auth(bob))
    assert cancel.status_code == 404
    listed = await api.client.get("/v1/orders", headers=auth(bob))
    assert listed.json()["orders"] == []


async def test_compliance_sees_all_orders_but_cannot_trade(api: Api) -> None:
    alice = await api.account("alice")
    carol = await api.account("carol", Role.COMPLIANCE)
    order = (await api.client.post("/v1/orders", json=ORDER, headers=auth(alice))).json()
    seen = await api.client.get(f"/v1/orders/{order['id']}", headers=auth(carol))
    assert seen.status_code == 200
    refused = await api.client.post("/v1/orders", json=ORDER, headers=auth(carol))
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "forbidden"


async def test_missing_and_bad_keys_are_401(api: Api) -> None:
    r = await api.client.get("/v1/orders")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = await api.client.get("/v1/orders", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["errors"][0]["message"] == "The API key is not valid."


async def test_idempotent_replay_returns_original(api: Api) -> None:
    alice = await api.account("alice")
    body = {**ORDER, "client_order_id": "abc-1"}
    first = await api.client.post("/v1/orders", json=body, headers=auth(alice))
    again = await api.client.post("/v1/orders", json=body, headers=auth(alice))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    changed = await api.client.post("/v1/orders", json={**body, "quantity": "11"},
                                    headers=auth(alice))
    assert changed.status_code == 409
    assert changed.json()["errors"][0]["code"] == "client_order_id_conflict"


async def test_twenty_simultaneous_duplicates_make_one_order(api: Api) -> None:
    alice = await api.account("alice")
    body = {**ORDER, "client_order_id": "same-moment"}
    replies = await asyncio.gather(*(
        api.client.post("/v1/orders", json=body, headers=auth(alice)) for _ in range(20)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] * 19 + [201], [r.text for r in replies if r.status_code >= 300]
    assert len({r.json()["id"] for r in replies}) == 1
    listed = (await api.client.get("/v1/orders", headers=auth(alice))).json()["orders"]
    assert len(listed) == 1
