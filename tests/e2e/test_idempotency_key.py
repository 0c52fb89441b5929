"""The Idempotency-Key header: a request sent again with its key gets the first answer again and
is not carried out twice; on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

from ordex.domain.accounts import Role
from tests.conftest import Api, auth

ORDER = {"symbol": "AAPL", "side": "buy", "quantity": "10", "type": "limit",
         "limit_price": "189.00"}


def keyed(account: dict[str, str], key: str | bytes) -> dict[str, str | bytes]:
    return {**auth(account), "Idempotency-Key": key}


async def test_a_submit_sent_again_with_its_key_gets_the_first_answer(api: Api) -> None:
    alice = await api.account("alice")
    first = await api.client.post("/v1/orders", json=ORDER, headers=keyed(alice, "order-1"))
    again = await api.client.post("/v1/orders", json=ORDER, headers=keyed(alice, "order-1"))
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    remaining = int(first.headers["x-ratelimit-remaining"])
    assert int(again.headers["x-ratelimit-remaining"]) == remaining, "a replay is not counted"
    listed = (await api.client.get("/v1/orders", headers=auth(alice))).json()["orders"]
    assert [o["id"] for o in listed] == [first.json()["id"]]


async def test_the_same_key_sent_at_the_same_time_makes_one_order(api: Api) -> None:
    alice = await api.account("alice")
    replies = await asyncio.gather(*(
        api.client.post("/v1/orders", json=ORDER, headers=keyed(alice, '"same-moment"'))
        for _ in range(10)))
    assert {r.status_code for r in replies} == {201}
    assert len({r.json()["id"] for r in replies}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in replies) == 9
    listed = (await api.client.get("/v1/orders", headers=auth(alice))).json()["orders"]
    assert len(listed) == 1


async def test_a_key_used_for_another_request_is_refused(api: Api) -> None:
    alice = await api.account("alice")
    await api.client.post("/v1/orders", json=ORDER, headers=keyed(alice, "k"))
    other = await api.client.post("/v1/orders", json={**ORDER, "quantity": "11"},
                                  headers=keyed(alice, "k"))
    assert other.status_code == 422
    err = other.json()["errors"][0]
    assert (err["code"], err["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    assert len((await api.client.get("/v1/orders", headers=auth(alice))).json()["orders"]) == 1


async def test_keys_are_each_traders_own(api: Api) -> None:
    alice = await api.account("alice")
    bob = await api.account("bob")
    mine = await api.client.post("/v1/orders", json=ORDER, headers=keyed(alice, "shared"))
    theirs = await api.client.post("/v1/orders", json=ORDER, headers=keyed(bob, "shared"))
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert theirs.json()["trader_id"] == bob["id"]


async def test_a_cancel_sent_again_with_its_key_gets_the_same_answer(api: Api) -> None:
    alice = await api.account("alice")
    order = (await api.client.post("/v1/orders", json=ORDER, headers=auth(alice))).json()
    first = await api.client.delete(f"/v1/orders/{order['id']}", headers=keyed(alice, "c"))
    again = await api.client.delete(f"/v1/orders/{order['id']}", headers=keyed(alice, "c"))
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    unkeyed = await api.client.delete(f"/v1/orders/{order['id']}", headers=auth(alice))
    assert first.json()["status"] == "cancelled", "no venue had it: cancelled at once"
    assert unkeyed.status_code == 409, "without the key, it is a new cancel, refused as ever"
    assert unkeyed.json()["errors"][0]["code"] == "order_not_cancelable"


async def test_a_key_that_is_not_printable_ascii_or_too_long_is_refused(api: Api) -> None:
    alice = await api.account("alice")
    for bad in ("x" * 256, "", '""', "café".encode(), "a\tb"):
        r = await api.client.post("/v1/orders", json=ORDER, headers=keyed(alice, bad))
        assert r.status_code == 422, (bad, r.text)
        err = r.json()["errors"][0]
        assert (err["code"], err["field"]) == ("invalid_value", "Idempotency-Key")
    assert (await api.client.get("/v1/orders", headers=auth(alice))).json()["orders"] == []
    longest = await api.client.post("/v1/orders", json=ORDER, headers=keyed(alice, "x" * 255))
    assert longest.status_code == 201


async def test_an_account_change_sent_again_with_its_key_is_a_replay(api: Api) -> None:
    admin = await api.account("root", Role.ADMIN, cash="0")
    alice = await api.account("alice")
    url = f"/v1/admin/accounts/{alice['id']}"
    first = await api.client.patch(url, json={"max_open_orders": 5},
                                   headers=keyed(admin, "limits-1"))
    between = await api.client.patch(url, json={"max_order_notional": "1000"},
                                     headers=auth(admin))
    again = await api.client.patch(url, json={"max_open_orders": 5},
                                   headers=keyed(admin, "limits-1"))
    assert (first.status_code, between.status_code, again.status_code) == (200, 200, 200)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    now = (await api.client.get("/v1/admin/accounts", headers=auth(admin))).json()["accounts"]
    limits = next(a for a in now if a["id"] == alice["id"])["limits"]
    assert (limits["max_open_orders"], limits["max_order_notional"]) == (5, "1000"), \
        "the change in between is kept: each change sets only what it names"
