"""A Python client for ordex: async (``AsyncClient``) and sync (``Client``), with the same methods.

Responses are the API's JSON as dicts (decimals as strings). Lists come a page at a time
(``list_page``, ``fills_page``: the items and ``next_cursor``), or every page in turn
(``iter_orders``, ``iter_fills``). A refusal raises a subclass of ``OrdexError`` chosen by the
HTTP status (``ValidationRefused``, ``NotFound``, ``Conflict``, ``RateLimited``, ...), carrying
the API's ``code``, ``field``, ``message`` and ``hint`` (and ``errors``, every one of them).
A service that cannot be reached raises httpx's own transport errors.

    async with AsyncClient("http://127.0.0.1:8000", api_key) as ordex:
        order = await ordex.submit("AAPL", "buy", "10", type="limit", limit_price="189.00")
        async for event in ordex.stream():
            print(event["seq"], event["status"])
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect_sync

from ordex.client_errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    OrdexError,
    RateLimited,
    ServerError,
    ServerUnavailable,
    Unauthorized,
    ValidationRefused,
    error_for,
)

__all__ = [
    "AsyncClient", "BadRequest", "Client", "Conflict", "Forbidden", "NotFound", "OrdexError",
    "Page", "RateLimited", "ServerError", "ServerUnavailable", "Unauthorized",
    "ValidationRefused",
]

Number = Decimal | int | str
RECONNECT_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list, newest first; pass ``next_cursor`` back as ``cursor`` for the next
    (``None``: this was the last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class _Call:
    """One request, the same for both clients."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    timeout: float | None = None


def _order_body(symbol: str, side: str, quantity: Number, type: str,
                **optional: Number | str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": symbol, "side": side, "quantity": str(quantity),
                            "type": type}
    for name, value in optional.items():
        if value is not None:
            body[name] = value if isinstance(value, int) else str(value)
    return body


def _submit_call(path: str, symbol: str, side: str, quantity: Number, type: str,
                 **optional: Number | str | None) -> _Call:
    return _Call("POST", path, body=_order_body(symbol, side, quantity, type, **optional))


def _params(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in filters.items() if v is not None}


def _list_call(filters: dict[str, Any]) -> _Call:
    return _Call("GET", "/v1/orders", params=_params(filters))


def _fills_call(order_id: str | None, filters: dict[str, Any]) -> _Call:
    path = f"/v1/orders/{order_id}/fills" if order_id else "/v1/fills"
    return _Call("GET", path, params=_params(filters))


def _events_call(order_id: str, after: int, wait: float) -> _Call:
    return _Call("GET", f"/v1/orders/{order_id}/events", params={"after": after, "wait": wait},
                 timeout=wait + 10)


def _page(body: dict[str, Any], key: str) -> Page:
    return Page(list(body[key]), body.get("next_cursor"), body)


def _next_page(call: _Call, page: Page) -> _Call | None:
    """The request of the page after ``page`` (fetched by ``call``); None after the last."""
    if page.next_cursor is None:
        return None
    return replace(call, params={**(call.params or {}), "cursor": page.next_cursor})


def _result(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise error_for(response)
    return response.json()


def _ws_url(base_url: str) -> str:
    return base_url.replace("https://", "wss://").replace("http://", "ws://").rstrip("/") + \
        "/v1/stream"


def _stream_message(text: str | bytes) -> dict[str, Any] | None:
    """An event to hand on, None for protocol messages; a refusal raises."""
    message = json.loads(text)
    if message.get("type") == "error":
        raise Unauthorized(401, [message])
    return message if "seq" in message else None


class _Resume:
    """Where a stream is: the hello that resumes after the last event seen, and each message
    read, keeping that place."""

    def __init__(self, api_key: str, after: int, everyone: bool) -> None:
        self.api_key = api_key
        self.last = after
        self.everyone = everyone

    def hello(self) -> str:
        return json.dumps({"api_key": self.api_key, "after": self.last, "all": self.everyone})

    def read(self, text: str | bytes) -> dict[str, Any] | None:
        event = _stream_message(text)
        if event is not None:
            self.last = event["seq"]
        return event


class AsyncClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {api_key}"})

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, call: _Call) -> Any:
        extra: dict[str, Any] = {} if call.timeout is None else {"timeout": call.timeout}
        return _result(await self._http.request(call.method, call.path, params=call.params,
                                                json=call.body, **extra))

    async def submit(self, symbol: str, side: str, quantity: Number, *, type: str = "market",
                     limit_price: Number | None = None, stop_loss: Number | None = None,
                     take_profit: Number | None = None, time_in_force: str = "day",
                     client_order_id: str | None = None, max_slippage_pct: Number | None = None,
                     timeout_seconds: int | None = None,
                     venue: str | None = None) -> dict[str, Any]:
        return dict(await self._call(_submit_call(
            "/v1/orders", symbol, side, quantity, type, limit_price=limit_price,
            stop_loss=stop_loss, take_profit=take_profit, time_in_force=time_in_force,
            client_order_id=client_order_id, max_slippage_pct=max_slippage_pct,
            timeout_seconds=timeout_seconds, venue=venue)))

    async def preview(self, symbol: str, side: str, quantity: Number, *, type: str = "market",
                      limit_price: Number | None = None, stop_loss: Number | None = None,
                      take_profit: Number | None = None, time_in_force: str = "day",
                      max_slippage_pct: Number | None = None,
                      timeout_seconds: int | None = None) -> dict[str, Any]:
        """Every reason the order would be refused now, and its estimated cost; nothing sent."""
        return dict(await self._call(_submit_call(
            "/v1/orders/preview", symbol, side, quantity, type, limit_price=limit_price,
            stop_loss=stop_loss, take_profit=take_profit, time_in_force=time_in_force,
            max_slippage_pct=max_slippage_pct, timeout_seconds=timeout_seconds)))

    async def cancel(self, order_id: str) -> dict[str, Any]:
        return dict(await self._call(_Call("DELETE", f"/v1/orders/{order_id}")))

    async def retry(self, order_id: str) -> dict[str, Any]:
        """Send a failed order again; returns the new order (the same one if retried before)."""
        return dict(await self._call(_Call("POST", f"/v1/orders/{order_id}/retry")))

    async def acknowledge(self, order_id: str) -> dict[str, Any]:
        """Close a failed order."""
        return dict(await self._call(_Call("POST", f"/v1/orders/{order_id}/acknowledge")))

    async def get(self, order_id: str) -> dict[str, Any]:
        return dict(await self._call(_Call("GET", f"/v1/orders/{order_id}")))

    async def list(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of orders, newest first (status, symbol, from, to, limit, cursor)."""
        return (await self.list_page(**filters)).items

    async def list_page(self, **filters: Any) -> Page:
        """One page of orders and the cursor of the next."""
        return _page(await self._call(_list_call(filters)), "orders")

    async def iter_orders(self, **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every order matching the filters, newest first, page after page."""
        async for order in self._every(_list_call(filters), "orders"):
            yield order

    async def fills(self, order_id: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """One page of fills: one order's, or the trader's (symbol, from, to, limit, cursor)."""
        return (await self.fills_page(order_id, **filters)).items

    async def fills_page(self, order_id: str | None = None, **filters: Any) -> Page:
        return _page(await self._call(_fills_call(order_id, filters)), "fills")

    async def iter_fills(self, order_id: str | None = None,
                         **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every fill matching the filters, newest first, page after page."""
        async for fill in self._every(_fills_call(order_id, filters), "fills"):
            yield fill

    async def _every(self, call: _Call | None, key: str) -> AsyncIterator[dict[str, Any]]:
        while call is not None:
            page = _page(await self._call(call), key)
            for item in page:
                yield item
            call = _next_page(call, page)

    async def positions(self) -> list[dict[str, Any]]:
        return list((await self._call(_Call("GET", "/v1/positions")))["positions"])

    async def account(self) -> dict[str, Any]:
        return dict(await self._call(_Call("GET", "/v1/account")))

    async def instruments(self) -> list[dict[str, Any]]:
        return list((await self._call(_Call("GET", "/v1/instruments")))["instruments"])

    async def quote(self, symbol: str) -> dict[str, Any]:
        return dict(await self._call(_Call("GET", f"/v1/quotes/{symbol}")))

    async def events(self, order_id: str, after: int = 0, wait: float = 0) -> dict[str, Any]:
        """Status events of one order after ``after``, waiting up to ``wait`` s (long poll)."""
        return dict(await self._call(_events_call(order_id, after, wait)))

    async def wait_for(self, order_id: str, statuses: set[str],
                       within: float = 10.0) -> dict[str, Any]:
        """Long-poll until the order reaches one of ``statuses``; return the order."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        after = 0
        while True:
            order = await self.get(order_id)
            if order["status"] in statuses:
                return order
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"order {order_id} is {order['status']}, not {statuses}")
            after = (await self.events(order_id, after, min(left, 25.0)))["last_seq"]

    async def stream(self, after: int = 0, *, everyone: bool = False,
                     reconnect: bool = True) -> AsyncIterator[dict[str, Any]]:
        """Status events in seq order; reconnects and resumes from the last seq seen."""
        place = _Resume(self.api_key, after, everyone)
        while True:
            try:
                async with ws_connect(_ws_url(self.base_url)) as ws:
                    await ws.send(place.hello())
                    async for text in ws:
                        if (event := place.read(text)) is not None:
                            yield event
            except (ConnectionClosed, OSError):
                if not reconnect:
                    return
                await asyncio.sleep(RECONNECT_SECONDS)


class Client:
    """The same operations as ``AsyncClient``, synchronous."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, call: _Call) -> Any:
        extra: dict[str, Any] = {} if call.timeout is None else {"timeout": call.timeout}
        return _result(self._http.request(call.method, call.path, params=call.params,
                                          json=call.body, **extra))

    def submit(self, symbol: str, side: str, quantity: Number, *, type: str = "market",
               limit_price: Number | None = None, stop_loss: Number | None = None,
               take_profit: Number | None = None, time_in_force: str = "day",
               client_order_id: str | None = None, max_slippage_pct: Number | None = None,
               timeout_seconds: int | None = None, venue: str | None = None) -> dict[str, Any]:
        return dict(self._call(_submit_call(
            "/v1/orders", symbol, side, quantity, type, limit_price=limit_price,
            stop_loss=stop_loss, take_profit=take_profit, time_in_force=time_in_force,
            client_order_id=client_order_id, max_slippage_pct=max_slippage_pct,
            timeout_seconds=timeout_seconds, venue=venue)))

    def preview(self, symbol: str, side: str, quantity: Number, *, type: str = "market",
                limit_price: Number | None = None, stop_loss: Number | None = None,
                take_profit: Number | None = None, time_in_force: str = "day",
                max_slippage_pct: Number | None = None,
                timeout_seconds: int | None = None) -> dict[str, Any]:
        return dict(self._call(_submit_call(
            "/v1/orders/preview", symbol, side, quantity, type, limit_price=limit_price,
            stop_loss=stop_loss, take_profit=take_profit, time_in_force=time_in_force,
            max_slippage_pct=max_slippage_pct, timeout_seconds=timeout_seconds)))

    def cancel(self, order_id: str) -> dict[str, Any]:
        return dict(self._call(_Call("DELETE", f"/v1/orders/{order_id}")))

    def retry(self, order_id: str) -> dict[str, Any]:
        return dict(self._call(_Call("POST", f"/v1/orders/{order_id}/retry")))

    def acknowledge(self, order_id: str) -> dict[str, Any]:
        return dict(self._call(_Call("POST", f"/v1/orders/{order_id}/acknowledge")))

    def get(self, order_id: str) -> dict[str, Any]:
        return dict(self._call(_Call("GET", f"/v1/orders/{order_id}")))

    def list(self, **filters: Any) -> list[dict[str, Any]]:
        return self.list_page(**filters).items

    def list_page(self, **filters: Any) -> Page:
        return _page(self._call(_list_call(filters)), "orders")

    def iter_orders(self, **filters: Any) -> Iterator[dict[str, Any]]:
        yield from self._every(_list_call(filters), "orders")

    def fills(self, order_id: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        return self.fills_page(order_id, **filters).items

    def fills_page(self, order_id: str | None = None, **filters: Any) -> Page:
        return _page(self._call(_fills_call(order_id, filters)), "fills")

    def iter_fills(self, order_id: str | None = None,
                   **filters: Any) -> Iterator[dict[str, Any]]:
        yield from self._every(_fills_call(order_id, filters), "fills")

    def _every(self, call: _Call | None, key: str) -> Iterator[dict[str, Any]]:
        while call is not None:
            page = _page(self._call(call), key)
            yield from page
            call = _next_page(call, page)

    def positions(self) -> list[dict[str, Any]]:
        return list(self._call(_Call("GET", "/v1/positions"))["positions"])

    def account(self) -> dict[str, Any]:
        return dict(self._call(_Call("GET", "/v1/account")))

    def instruments(self) -> list[dict[str, Any]]:
        return list(self._call(_Call("GET", "/v1/instruments"))["instruments"])

    def quote(self, symbol: str) -> dict[str, Any]:
        return dict(self._call(_Call("GET", f"/v1/quotes/{symbol}")))

    def events(self, order_id: str, after: int = 0, wait: float = 0) -> dict[str, Any]:
        return dict(self._call(_events_call(order_id, after, wait)))

    def wait_for(self, order_id: str, statuses: set[str],
                 within: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        after = 0
        while True:
            order = self.get(order_id)
            if order["status"] in statuses:
                return order
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"order {order_id} is {order['status']}, not {statuses}")
            after = self.events(order_id, after, min(left, 25.0))["last_seq"]

    def stream(self, after: int = 0, *, everyone: bool = False,
               reconnect: bool = True) -> Iterator[dict[str, Any]]:
        place = _Resume(self.api_key, after, everyone)
        while True:
            try:
                with ws_connect_sync(_ws_url(self.base_url)) as ws:
                    ws.send(place.hello())
                    for text in ws:
                        if (event := place.read(text)) is not None:
                            yield event
            except (ConnectionClosed, OSError):
                if not reconnect:
                    return
                time.sleep(RECONNECT_SECONDS)

