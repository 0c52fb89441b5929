"""Abuse and bad input cost nothing and get a clear answer (issue 9, part 3), in-process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ordex.api.app import create_app
from ordex.domain.accounts import Role
from tests.conftest import Api, auth

MiB = 1024 * 1024
HUGE = 32 * MiB  # a body the server must never hold; 200 MB behaves the same, only slower
BODY_ROUTES = [("POST", "/v1/orders"), ("POST", "/v1/orders/preview"),
               ("POST", "/v1/admin/accounts"),
               ("PATCH", "/v1/admin/accounts/01a21585-757c-7d07-ae90-3d753abd5f74")]


class Sent:
    """What the app made of one request driven straight through ASGI: status, body, and how many
    bytes of the request body it pulled with ``receive``."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self.read = 0

    def json(self) -> Any:
        return json.loads(self.body)


async def drive(api: Api, method: str, path: str, headers: dict[str, str], *,
                size: int = HUGE, declare_length: bool = True) -> Sent:
    app = create_app(api.services.settings, api.services)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-type", b"application/json"))
    raw.append((b"content-length", str(size).encode()) if declare_length
               else (b"transfer-encoding", b"chunked"))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": raw,
             "client": ("127.0.0.1", 50000), "server": ("ordex.test", 80)}
    out = Sent()
    chunk = b"{" + b" " * (MiB - 1)

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        left = size
        while left > 0:
            piece = chunk[:min(left, MiB)]
            left -= len(piece)
            out.read += len(piece)
            yield {"type": "http.request", "body": piece, "more_body": left > 0}
        while True:
            yield {"type": "http.disconnect"}

    source = chunks()

    async def receive() -> dict[str, Any]:
        return await anext(source)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out.status = message["status"]
            out.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out.body += message.get("body", b"")

    await app(scope, receive, send)
    return out


def refusal(sent: Sent, code: str) -> dict[str, Any]:
    assert sent.headers["content-type"].startswith("application/json")
    error = sent.json()["errors"][0]
    assert error["code"] == code, error
    assert error["message"] and error["hint"]
    return error


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_keyless_huge_body_is_refused_before_a_byte_is_read(
        api: Api, method: str, path: str, declare_length: bool) -> None:
    for headers in ({}, {"Authorization": "Bearer ordex_not-a-key"}):
        sent = await drive(api, method, path, headers, declare_length=declare_length)
        assert sent.status == 401, sent.body[:300]
        refusal(sent, "unauthorized")
        assert sent.read == 0, f"{sent.read:,} bytes of an unauthenticated body were read"
        assert sent.headers.get("connection") == "close"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_trader_key_on_admin_route_is_refused_before_the_body_is_read(api: Api) -> None:
    trader = auth(await api.account("t-admin-body"))
    for method, path in BODY_ROUTES[2:]:
        sent = await drive(api, method, path, trader)
        assert sent.status == 403, sent.body[:300]
        refusal(sent, "forbidden")
        assert sent.read == 0


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_keyed_huge_body_is_a_413_without_buffering_it(
        api: Api, method: str, path: str, declare_length: bool) -> None:
    role = Role.ADMIN if "admin" in path else Role.TRADER
    headers = auth(await api.account(f"big-{declare_length}-{len(path)}-{method}", role))
    sent = await drive(api, method, path, headers, declare_length=declare_length)
    assert sent.status == 413, sent.body[:300]
    error = refusal(sent, "body_too_large")
    assert "65,536 bytes" in error["message"], error
    limit = api.services.settings.max_body_bytes
    # Declared: refused on the header alone. Streamed: read up to the limit, plus one chunk.
    assert sent.read <= (0 if declare_length else limit + MiB), sent.read
    assert sent.headers.get("connection") == "close"


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_body_within_the_limit_still_works(api: Api) -> None:
    headers = await api.account("small-body")
    order = {"symbol": "AAPL", "side": "buy", "quantity": "1", "type": "market",
             "client_order_id": "pad-" + "x" * 50}
    r = await api.client.post("/v1/orders", json=order, headers=auth(headers))
    assert r.status_code == 201, r.text
