"""The Python client: the same methods sync and async, lists that page, typed refusals."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from ordex.api.app import create_app
from ordex.client import (
    AsyncClient,
    Client,
    Conflict,
    NotFound,
    OrdexError,
    RateLimited,
    ServerUnavailable,
    Unauthorized,
    ValidationRefused,
)
from ordex.config import Settings
from ordex.domain.accounts import Role
from tests.conftest import Api, auth
from tests.support.live import Live, live_service, quiet_venue


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")}


def parameters(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


def test_sync_and_async_clients_have_the_same_methods_and_parameters() -> None:
    sync, async_ = public_methods(Client), public_methods(AsyncClient)
    assert sorted(sync) == sorted(async_)
    for name in sync:
        assert parameters(sync[name]) == parameters(async_[name]), name
    assert {"quote", "list_page", "iter_orders", "fills_page", "iter_fills"} <= sync.keys()


def client_on(api: Api, key_headers: dict[str, str] | str) -> AsyncClient:
    key = key_headers if isinstance(key_headers, str) else \
        key_headers["Authorization"].removeprefix("Bearer ")
    app = create_app(api.services.settings, api.services)
    return AsyncClient("http://ordex.test", key, transport=httpx.ASGITransport(app=app))


async def test_orders_page_with_next_cursor_and_iterate_over_every_page(api: Api) -> None:
    alice = client_on(api, await api.account("alice"))
    made = [await alice.submit("AAPL", "buy", "1", type="limit", limit_price="189.00")
            for _ in range(5)]
    first = await alice.list_page(limit=2)
    assert [o["id"] for o in first] == [made[4]["id"], made[3]["id"]]
    assert first.next_cursor == made[3]["id"]
    last = await alice.list_page(limit=2, cursor=(await alice.list_page(limit=4)).next_cursor)
    assert [o["id"] for o in last] == [made[0]["id"]] and last.next_cursor is None
    every = [o["id"] async for o in alice.iter_orders(limit=2)]
    assert every == [m["id"] for m in reversed(made)]
    assert await alice.list(limit=2) == first.items
    await alice.close()


async def test_each_kind_of_refusal_raises_its_own_type_with_code_message_and_hint(
        api: Api) -> None:
    headers = await api.account("alice")
    alice = client_on(api, headers)
    with pytest.raises(ValidationRefused) as refused:
        await alice.submit("AAPL", "buy", "0", type="limit", limit_price="189.00")
    assert refused.value.status == 422 and refused.value.code == "quantity_not_positive"
    assert refused.value.message.startswith("Quantity must be greater than zero")
    assert refused.value.hint == "Enter a quantity of at least 1."
    assert refused.value.codes == ["quantity_not_positive"]
    assert isinstance(refused.value, OrdexError)

    with pytest.raises(NotFound) as missing:
        await alice.get("0190c7c0-0000-7000-8000-000000000000")
    assert missing.value.code == "not_found" and missing.value.hint

    order = await alice.submit("AAPL", "buy", "1", type="limit", limit_price="189.00")
    await alice.cancel(order["id"])
    with pytest.raises(Conflict) as twice:
        await alice.cancel(order["id"])
    assert twice.value.code == "order_not_cancelable"

    stranger = client_on(api, "ordex_not-a-key")
    with pytest.raises(Unauthorized) as who:
        await stranger.account()
    assert who.value.code == "unauthorized" and who.value.hint

    root = await api.account("root", Role.ADMIN, cash="0")
    r = await api.client.patch(f"/v1/admin/accounts/{headers['id']}",
                               json={"rate_limit_per_minute": 1}, headers=auth(root))
    assert r.status_code == 200
    with pytest.raises(RateLimited) as slow:
        for _ in range(3):
            await alice.submit("AAPL", "buy", "1", type="limit", limit_price="189.00")
    assert slow.value.code == "rate_limited"
    assert slow.value.retry_after is not None and 0 < slow.value.retry_after <= 60
    for client in (alice, stranger):
        await client.close()


def test_an_answer_that_is_not_ordex_json_still_raises_a_typed_error() -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"errors": [{
            "code": "service_unavailable", "field": None, "message": "The store is down.",
            "hint": "Try again shortly."}]})

    with Client("http://x", "k", transport=httpx.MockTransport(proxy)) as ordex, \
            pytest.raises(ServerUnavailable) as bad:
        ordex.account()
    assert bad.value.status == 502 and bad.value.code == "http_error"
    assert "Bad Gateway" in bad.value.message
    with Client("http://x", "k", transport=httpx.MockTransport(down)) as ordex, \
            pytest.raises(ServerUnavailable) as gone:
        ordex.positions()
    assert (gone.value.code, gone.value.hint) == ("service_unavailable", "Try again shortly.")


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    wired = settings.model_copy(update={"execution_enabled": True})
    async with live_service(wired, quiet_venue(5)) as running:
        yield running


async def test_the_sync_client_pages_fills_and_quotes(live: Live, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("paging is the API's; one store is enough for the client")
    key = (await live.services.accounts.create("alice", Role.TRADER, Decimal(1_000_000))).api_key
    ordex = AsyncClient(live.url, key)
    for symbol in ("KO", "INTC", "MSFT"):
        done = await ordex.wait_for((await ordex.submit(symbol, "buy", "2"))["id"], {"filled"})
        assert done["status"] == "filled"
    await ordex.close()

    def read() -> tuple[list[str], list[str], str | None, dict[str, object]]:
        with Client(live.url, key) as sync:
            every = [f["symbol"] for f in sync.iter_fills(limit=1)]
            page = sync.fills_page(limit=2)
            return every, [f["symbol"] for f in page], page.next_cursor, sync.quote("KO")

    every, first, cursor, quote = await asyncio.to_thread(read)
    assert sorted(every) == ["INTC", "KO", "MSFT"] and len(every) == 3
    assert first == every[:2] and cursor is not None
    assert quote["symbol"] == "KO"
