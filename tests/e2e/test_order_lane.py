"""``OrderLane``: a trader's ``POST /v1/orders`` is answered beside FastAPI's router, with the
route's answers; everything else goes on to the app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from ordex.api.app import create_app
from ordex.api.deps import account_for
from ordex.api.guard import BodyGuard
from ordex.api.order_lane import OrderLane
from ordex.bootstrap import Services
from ordex.domain.accounts import Role
from tests.conftest import Api, auth

ORDER = {"symbol": "AAPL", "side": "buy", "quantity": "10", "type": "limit",
         "limit_price": "189.00"}


class Lane(Api):
    def __init__(self, client: httpx.AsyncClient, services: Services,
                 passed: list[tuple[str, str]]) -> None:
        super().__init__(client, services)
        self.passed = passed  # (method, path) of each request the lane handed on


@pytest.fixture
async def lane(services: Services) -> AsyncIterator[Lane]:
    """The guard and the lane in front of an app that only notes what reaches it."""
    app = create_app(services.settings, services)  # for its exception handlers
    passed: list[tuple[str, str]] = []

    async def rest(scope: Scope, receive: Receive, send: Send) -> None:
        passed.append((scope["method"], scope["path"]))
        await JSONResponse({"handed_on": True}, status_code=418)(scope, receive, send)

    async def authenticate(header: str | None) -> object:
        return await account_for(services, header)

    stack = BodyGuard(OrderLane(rest, services, app.exception_handlers),
                      authenticate=authenticate, limit=services.settings.max_body_bytes)
    transport = httpx.ASGITransport(app=stack, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ordex.test") as client:
        yield Lane(client, services, passed)


async def test_a_traders_submit_is_answered_by_the_lane(lane: Lane) -> None:
    alice = await lane.account("alice")
    made = await lane.client.post("/v1/orders", json=ORDER, headers=auth(alice))
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "accepted" and made.json()["trader_name"] == "alice"
    assert made.headers["location"] == f"/v1/orders/{made.json()['id']}"
    assert made.headers["x-ratelimit-remaining"].isdigit()
    assert UUID(made.json()["id"]) in lane.services.core.ledger.open
    assert lane.passed == []


async def test_other_callers_go_on_to_the_app(lane: Lane) -> None:
    admin = await lane.account("root", Role.ADMIN)
    alice = await lane.account("alice")
    assert (await lane.client.post("/v1/orders", json=ORDER, headers=auth(admin))
            ).status_code == 418
    assert (await lane.client.post("/v1/orders/", json=ORDER, headers=auth(alice))
            ).status_code == 418
    assert (await lane.client.get("/v1/orders", headers=auth(alice))).status_code == 418
    assert (await lane.client.post("/v1/orders/preview", json=ORDER, headers=auth(alice))
            ).status_code == 418
    assert lane.passed == [("POST", "/v1/orders"), ("POST", "/v1/orders/"),
                           ("GET", "/v1/orders"), ("POST", "/v1/orders/preview")]
    nobody = await lane.client.post("/v1/orders", json=ORDER)
    assert nobody.status_code == 401  # the guard, before the lane
    assert nobody.json()["errors"][0]["code"] == "unauthorized"


async def test_the_lane_and_the_route_give_the_same_errors(api: Api, lane: Lane) -> None:
    for client in (api, lane):
        alice = await client.account(f"alice-{id(client)}")
        cases = [
            (b"{not json", "application/json"),
            (b'{"symbol": "AAPL"}', "application/json"),
            (b"symbol=AAPL", "application/x-www-form-urlencoded"),
            (b'{"symbol": "AAPL", "symbol": "MSFT"}', "application/json"),
        ]
        answers = []
        for body, media in cases:
            reply = await client.client.post(
                "/v1/orders", content=body,
                headers={**auth(alice), "Content-Type": media})
            answers.append((reply.status_code, [e["code"] for e in reply.json()["errors"]]))
        if client is api:
            expected = answers
        else:
            assert answers == expected
    assert [status for status, _ in expected] == [400, 422, 415, 400]


async def test_a_replay_and_the_rate_limit_through_the_lane(lane: Lane) -> None:
    alice = await lane.account("alice")
    keyed = {**auth(alice), "Idempotency-Key": "lane-1"}
    first = await lane.client.post("/v1/orders", json=ORDER, headers=keyed)
    again = await lane.client.post("/v1/orders", json=ORDER, headers=keyed)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    await lane.services.accounts.update(UUID(alice["id"]), rate_limit_per_minute=1)
    limited = await lane.client.post("/v1/orders", json={**ORDER, "quantity": "1"},
                                     headers=auth(alice))
    assert limited.status_code == 429
    assert limited.json()["errors"][0]["code"] == "rate_limited"
    assert limited.headers["retry-after"].isdigit()
    assert lane.passed == []
