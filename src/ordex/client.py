"""A Python client for ordex: async (``AsyncClient``) and sync (``Client``).

Responses are the API's JSON as dicts (decimals as strings). A refusal raises ``OrdexError``
carrying the API's errors, each with code, field, message and hint.

    async with AsyncClient("http://127.0.0.1:8000", api_key) as ordex:
        order = await ordex.submit("AAPL", "buy", "10", type="limit", limit_price="189.00")
        async for event in ordex.stream():
            print(event["seq"], event["status"])
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect_sync

Number = Decimal | int | str


class OrdexError(Exception):
    """The API refused a request; ``errors`` are its ``{"code", "field", "message", "hint"}``."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        self.status = status
        self.errors = errors
        self.codes = [e.get("code") for e in errors]
        super().__init__("; ".join(f"{e.get('message')} ({e.get('hint')})" for e in errors))


def _order_body(symbol: str, side: str, quantity: Number, type: str,
                **optional: Number | str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": symbol, "side": side, "quantity": str(quantity),
                            "type": type}
    for name, value in optional.items():
        if value is not None:
            body[name] = value if isinstance(value, int) else str(value)
    return body


def _result(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            errors = response.json().get("errors", [])
        except ValueError:
            errors = [{"code": "http_error", "message": response.text[:200], "hint": ""}]
        raise OrdexError(response.status_code, errors)
    return response.json()


def _params(filters: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in filters.items() if v is not None}


def _ws_url(base_url: str) -> str:
    return base_url.replace("https://", "wss://").replace("http://", "ws://").rstrip("/") + \
        "/v1/stream"


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

    async def submit(self, symbol: str, side: str, quantity: Number, *, type: str = "market",
                     limit_price: Number | None = None, stop_loss: Number | None = None,
                     take_profit: Number | None = None, time_in_force: str = "day",
                     client_order_id: str | None = None, max_slippage_pct: Number | None = None,
                     timeout_seconds: int | None = None) -> dict[str, Any]:
        body = _order_body(symbol, side, quantity, type, limit_price=limit_price,
                           stop_loss=stop_loss, take_profit=take_profit,
                           time_in_force=time_in_force, client_order_id=client_order_id,
                           max_slippage_pct=max_slippage_pct, timeout_seconds=timeout_seconds)
        return dict(_result(await self._http.post("/v1/orders", json=body)))

    async def cancel(self, order_id: str) -> dict[str, Any]:
        return dict(_result(await self._http.delete(f"/v1/orders/{order_id}")))

    async def retry(self, order_id: str) -> dict[str, Any]:
        """Send a failed order again; returns the new order (the same one if retried before)."""
        return dict(_result(await self._http.post(f"/v1/orders/{order_id}/retry")))

    async def acknowledge(self, order_id: str) -> dict[str, Any]:
        """Close a failed order."""
        return dict(_result(await self._http.post(f"/v1/orders/{order_id}/acknowledge")))

    async def get(self, order_id: str) -> dict[str, Any]:
        return dict(_result(await self._http.get(f"/v1/orders/{order_id}")))

    async def list(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of orders, newest first (status, symbol, from, to, limit, cursor)."""
        page = _result(await self._http.get("/v1/orders", params=_params(filters)))
        return list(page["orders"])

    async def fills(self, order_id: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        path = f"/v1/orders/{order_id}/fills" if order_id else "/v1/fills"
        return list(_result(await self._http.get(path, params=_params(filters)))["fills"])

    async def positions(self) -> list[dict[str, Any]]:
        return list(_result(await self._http.get("/v1/positions"))["positions"])

    async def account(self) -> dict[str, Any]:
        return dict(_result(await self._http.get("/v1/account")))

    async def quote(self, symbol: str) -> dict[str, Any]:
        return dict(_result(await self._http.get(f"/v1/quotes/{symbol}")))

    async def events(self, order_id: str, after: int = 0, wait: float = 0) -> dict[str, Any]:
        """Status events of one order after ``after``, waiting up to ``wait`` s (long poll)."""
        return dict(_result(await self._http.get(
            f"/v1/orders/{order_id}/events", params={"after": after, "wait": wait},
            timeout=wait + 10)))

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
        last = after
        while True:
            try:
                async with ws_connect(_ws_url(self.base_url)) as ws:
                    await ws.send(json.dumps({"api_key": self.api_key, "after": last,
                                              "all": everyone}))
                    async for text in ws:
                        message = json.loads(text)
                        if message.get("type") == "error":
                            raise OrdexError(401, [message])
                        if "seq" in message:
                            last = message["seq"]
                            yield message
            except (ConnectionClosed, OSError):
                if not reconnect:
                    return
                await asyncio.sleep(0.2)


class Client:
    """The same operations, synchronous."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(self, symbol: str, side: str, quantity: Number, *, type: str = "market",
               limit_price: Number | None = None, stop_loss: Number | None = None,
               take_profit: Number | None = None, time_in_force: str = "day",
               client_order_id: str | None = None, max_slippage_pct: Number | None = None,
               timeout_seconds: int | None = None) -> dict[str, Any]:
        body = _order_body(symbol, side, quantity, type, limit_price=limit_price,
                           stop_loss=stop_loss, take_profit=take_profit,
                           time_in_force=time_in_force, client_order_id=client_order_id,
                           max_slippage_pct=max_slippage_pct, timeout_seconds=timeout_seconds)
        return dict(_result(self._http.post("/v1/orders", json=body)))

    def cancel(self, order_id: str) -> dict[str, Any]:
        return dict(_result(self._http.delete(f"/v1/orders/{order_id}")))

    def retry(self, order_id: str) -> dict[str, Any]:
        return dict(_result(self._http.post(f"/v1/orders/{order_id}/retry")))

    def acknowledge(self, order_id: str) -> dict[str, Any]:
        return dict(_result(self._http.post(f"/v1/orders/{order_id}/acknowledge")))

    def get(self, order_id: str) -> dict[str, Any]:
        return dict(_result(self._http.get(f"/v1/orders/{order_id}")))

    def list(self, **filters: Any) -> list[dict[str, Any]]:
        return list(_result(self._http.get("/v1/orders", params=_params(filters)))["orders"])

    def fills(self, order_id: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        path = f"/v1/orders/{order_id}/fills" if order_id else "/v1/fills"
        return list(_result(self._http.get(path, params=_params(filters)))["fills"])

    def positions(self) -> list[dict[str, Any]]:
        return list(_result(self._http.get("/v1/positions"))["positions"])

    def account(self) -> dict[str, Any]:
        return dict(_result(self._http.get("/v1/account")))

    def events(self, order_id: str, after: int = 0, wait: float = 0) -> dict[str, Any]:
        return dict(_result(self._http.get(
            f"/v1/orders/{order_id}/events", params={"after": after, "wait": wait},
            timeout=wait + 10)))

    def stream(self, after: int = 0, *, everyone: bool = False) -> Iterator[dict[str, Any]]:
        """Status events in seq order (one connection; iterate again with the last seq)."""
        with ws_connect_sync(_ws_url(self.base_url)) as ws:
            ws.send(json.dumps({"api_key": self.api_key, "after": after, "all": everyone}))
            for text in ws:
                message = json.loads(text)
                if message.get("type") == "error":
                    raise OrdexError(401, [message])
                if "seq" in message:
                    yield message
