"""Abuse and bad input cost nothing and get a clear answer (issue 9, part 3), in-process."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ordex.api.app import create_app
from ordex.bootstrap import build, prepare
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.domain.commands import SubmitOrder
from ordex.domain.orders import OrderType, Side, TimeInForce
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


# --- values out of range in query strings ----------------------------------------------------

# As sent on the wire (percent-encoded where needed).
BAD_TIMES = ["0001-01-01T00:00:00%2B00:01", "9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00Z",
             "10000-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-02-30", "1e999999", "NaN",
             "99999999999999999999999", "2026-01-01T25:00:00Z", "%00"]
BAD_INTS = ["1e999999", "NaN", "inf", "99999999999999999999999", "-1", "1.5", "0x10", "",
            str(2**63), "-" + str(2**63)]
BAD_WAITS = ["NaN", "inf", "-inf", "1e999999", "-1", "31", "99999999999999999999999"]
BAD_TEXT = ["%00", "A" * 5000, "%ED%A0%80", "%FF"]


def query_cases(order_id: str) -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    for path in ("/v1/orders", "/v1/fills"):
        for name in ("from", "to"):
            cases += [(path, name, v) for v in BAD_TIMES]
        cases += [(path, "limit", v) for v in BAD_INTS]
        cases += [(path, "cursor", v) for v in [*BAD_TEXT, "1e999999", "-1"]]
        cases += [(path, "symbol", v) for v in BAD_TEXT]
    cases += [("/v1/orders", "status", v) for v in BAD_TEXT]
    cases += [("/v1/quotes/AAPL/history", "from", v) for v in BAD_TIMES]
    events = f"/v1/orders/{order_id}/events"
    cases += [(events, "after", v) for v in BAD_INTS if v not in ("",)]
    cases += [(events, "wait", v) for v in BAD_WAITS]
    return cases


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_every_query_value_out_of_range_is_a_422_in_words(api: Api) -> None:
    headers = auth(await api.account("ranges"))
    r = await api.client.post("/v1/orders", headers=headers, json={
        "symbol": "AAPL", "side": "buy", "quantity": "1", "type": "limit",
        "limit_price": "180.00"})
    assert r.status_code == 201, r.text
    failures = []
    for path, name, value in query_cases(r.json()["id"]):
        got = await api.client.get(f"{path}?{name}={value}", headers=headers)
        body = got.json() if got.headers["content-type"].startswith("application/json") else {}
        errors = body.get("errors") or [{}]
        if got.status_code != 422 or not errors[0].get("message") or not errors[0].get("hint"):
            failures.append((path, name, value, got.status_code, got.text[:200]))
    assert not failures, "\n".join(map(str, failures))


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_times_at_the_edges_of_the_calendar_are_accepted(api: Api) -> None:
    headers = auth(await api.account("edges"))
    for value in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
                  "0001-01-01T00:00:00-00:01", "2026-01-31T14:30:00"):
        for path in ("/v1/orders", "/v1/fills", "/v1/quotes/AAPL/history"):
            got = await api.client.get(path, params={"from": value}, headers=headers)
            assert got.status_code == 200, (path, value, got.text)


ADMIN_BAD_BODIES = [
    b'{"name": "n1", "cash": 1e999999}', b'{"name": "n1", "cash": "1e999999"}',
    b'{"name": "n1", "cash": NaN}', b'{"name": "n1", "cash": "NaN"}',
    b'{"name": "n1", "cash": Infinity}', b'{"name": "n1", "cash": -1e-999999}',
    b'{"name": "n1", "cash": "1e-999999"}', b'{"name": "n1", "cash": "0.00000000000000000001"}',
    b'{"name": "n1", "cash": 99999999999999999999999999999999999999999}',
    b'{"name": "' + b"n" * 10_000 + b'"}', b'{"name": "n1", "role": ["admin"]}',
]
LIMITS_BAD_BODIES = [
    b'{"max_open_orders": 1e999999}', b'{"max_open_orders": 99999999999999999999999999}',
    b'{"max_open_orders": NaN}', b'{"rate_limit_per_minute": -99999999999999999999}',
    b'{"max_order_notional": "1e999999"}', b'{"max_order_notional": 1e-999999}',
    b'{"daily_loss_limit": "0.000000000000000000001"}', b'{"cash": "1e12345678901234"}',
    b'{"max_position_shares": 1.0000000000000000000000000000001}',
]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_admin_numbers_out_of_range_are_a_422_in_words(api: Api) -> None:
    admin = auth(await api.account("range-admin", Role.ADMIN))
    target = await api.account("range-target")
    failures = []
    for method, path, bodies in (
            ("POST", "/v1/admin/accounts", ADMIN_BAD_BODIES),
            ("PATCH", f"/v1/admin/accounts/{target['id']}", LIMITS_BAD_BODIES)):
        for body in bodies:
            got = await api.client.request(method, path, content=body, headers={
                **admin, "Content-Type": "application/json"})
            errors = got.json().get("errors") or [{}]
            if got.status_code != 422 or not errors[0].get("hint"):
                failures.append((path, body[:80], got.status_code, got.text[:300]))
    assert not failures, "\n".join(map(str, failures))


# --- rate limit: only orders created count -------------------------------------------------------

def rate_headers_of(r: Any) -> tuple[int, int, int]:
    return (int(r.headers["X-RateLimit-Limit"]), int(r.headers["X-RateLimit-Remaining"]),
            int(r.headers["X-RateLimit-Reset"]))


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_replays_and_refusals_do_not_use_up_the_rate_limit(api: Api) -> None:
    admin = auth(await api.account("rl-admin", Role.ADMIN))
    trader = await api.account("rl-trader")
    r = await api.client.patch(f"/v1/admin/accounts/{trader['id']}", headers=admin,
                               json={"rate_limit_per_minute": 3})
    assert r.status_code == 200, r.text
    headers = auth(trader)
    first = {"symbol": "AAPL", "side": "buy", "quantity": "1", "type": "limit",
             "limit_price": "180.00", "client_order_id": "rl-1"}
    r = await api.client.post("/v1/orders", json=first, headers=headers)
    assert r.status_code == 201, r.text
    assert rate_headers_of(r)[:2] == (3, 2)
    for _ in range(5):
        r = await api.client.post("/v1/orders", json=first, headers=headers)
        assert r.status_code == 200, r.text
        assert rate_headers_of(r)[:2] == (3, 2), "a replay used up the rate limit"
    for bad in ({**first, "client_order_id": "rl-bad", "quantity": "-1"},
                {**first, "client_order_id": "rl-bad", "symbol": "ZZZZ"}, {"symbol": 1}):
        r = await api.client.post("/v1/orders", json=bad, headers=headers)
        assert r.status_code in (400, 422), r.text
        assert rate_headers_of(r)[:2] == (3, 2), "a refused order used up the rate limit"
    for n in (2, 3):
        r = await api.client.post("/v1/orders", json={**first, "client_order_id": f"rl-{n}"},
                                  headers=headers)
        assert r.status_code == 201, r.text
    limit, remaining, reset = rate_headers_of(r)
    assert (limit, remaining) == (3, 0)
    now = api.services.clock.now().timestamp()
    assert now <= reset <= now + 61
    r = await api.client.post("/v1/orders", json={**first, "client_order_id": "rl-4"},
                              headers=headers)
    assert r.status_code == 429, r.text
    assert r.json()["errors"][0]["code"] == "rate_limited"
    assert rate_headers_of(r)[:2] == (3, 0) and int(r.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(("field", "first", "second"), [
    ("timeout_seconds", 30, 60), ("timeout_seconds", None, 60),
    ("max_slippage_pct", "0.5", "1"), ("max_slippage_pct", "0.5", None)])
async def test_replay_with_different_execution_limits_is_a_409(
        api: Api, field: str, first: Any, second: Any) -> None:
    headers = auth(await api.account(f"limits-{field}-{first}-{second}"))
    order = {"symbol": "AAPL", "side": "buy", "quantity": "1", "type": "market",
             "client_order_id": "same-id"}
    one = {**order, field: first} if first is not None else order
    two = {**order, field: second} if second is not None else order
    r = await api.client.post("/v1/orders", json=one, headers=headers)
    assert r.status_code == 201, r.text
    r = await api.client.post("/v1/orders", json=two, headers=headers)
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["code"] == "client_order_id_conflict"
    r = await api.client.post("/v1/orders", json=one, headers=headers)
    assert r.status_code == 200, r.text


# --- data files are the owner's alone ----------------------------------------------------------

def modes(root: Path) -> dict[str, int]:
    """Every folder and file under ``root`` (itself included) with its permission bits."""
    found = {".": root.stat().st_mode & 0o777}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = path.stat().st_mode & 0o777
    return found


def assert_owner_only(root: Path) -> dict[str, int]:
    found = modes(root)
    wrong = {name: oct(mode) for name, mode in found.items()
             if mode != (0o700 if (root / name).is_dir() else 0o600)}
    assert not wrong, f"not owner-only (want 0700 folders, 0600 files): {wrong}"
    return found


async def test_store_journal_metrics_and_demo_keys_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual login umask: what ordex creates must not depend on it
    try:
        settings = Settings(data_dir=tmp_path / "deep" / "data", seed_demo=True,
                            execution_enabled=False)
        services = build(settings)
        await prepare(services)
        await services.start()
        try:
            key = services.demo_keys["alice"]
            account = await services.accounts.authenticate(key)
            assert account is not None
            await services.orders.submit(SubmitOrder(
                trader_id=account.id, symbol="AAPL", side=Side.BUY, type=OrderType.MARKET,
                quantity=Decimal(1), time_in_force=TimeInForce.DAY))
            await asyncio.sleep(0.1)  # the metrics line is written by its own thread
            found = assert_owner_only(settings.data_dir)
        finally:
            await services.close()
    finally:
        os.umask(old)
    for name in ("ordex.db", "ordex.db-wal", "ordex.db-shm", "demo-keys.json",
                 "logs/metrics/orders.jsonl"):
        assert name in found, sorted(found)
    assert (tmp_path / "deep").stat().st_mode & 0o777 == 0o700


async def test_an_existing_store_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "ordex.db").touch(mode=0o644)
    os.chmod(data / "ordex.db", 0o644)
    os.chmod(data, 0o755)
    services = build(Settings(data_dir=data, seed_demo=False, execution_enabled=False))
    await prepare(services)
    await services.close()
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "ordex.db").stat().st_mode & 0o777 == 0o600
