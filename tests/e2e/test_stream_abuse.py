"""``/v1/stream`` under bad input and crowds, and positions that reveal nothing of other traders.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from ordex.client import AsyncClient
from ordex.config import Settings
from ordex.domain.accounts import Role
from tests.support.live import FINAL, Live, live_service, quiet_venue

CAP = 3


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    wired = settings.model_copy(update={"execution_enabled": True,
                                        "stream_connections_per_trader": CAP})
    async with live_service(wired, quiet_venue(11)) as service:
        yield service


async def key(live: Live, name: str, role: Role = Role.TRADER) -> str:
    issued = await live.services.accounts.create(name, role, Decimal("1000000"))
    return issued.api_key


def ws_url(live: Live) -> str:
    return live.url.replace("http://", "ws://") + "/v1/stream"


async def until_closed(ws: ClientConnection, within: float = 5) -> tuple[int, str, list[Any]]:
    """Every message until the server closes: its close code, reason, and what came before."""
    seen: list[Any] = []
    try:
        while True:
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), within)))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the server dropped the connection without a close frame"
        return closed.rcvd.code, closed.rcvd.reason, seen


async def refused(live: Live, *frames: str | bytes) -> tuple[int, str, list[Any]]:
    async with ws_connect(ws_url(live), max_size=None) as ws:
        for frame in frames:
            await ws.send(frame)
        return await until_closed(ws)


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR
           or "Traceback" in r.getMessage()]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_bad_frames_close_the_stream_with_a_code_and_a_reason(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    api_key = await key(live, "frames")

    def hello(after: str) -> str:
        return f'{{"api_key": "{api_key}", "after": {after}}}'

    deep = "[" * 30_000 + "]" * 30_000  # within the size limit, beyond the JSON parser's depth
    cases: list[tuple[str, list[str | bytes], int, str]] = [
        ("binary", [b"\x00\x01binary"], 1003, "Binary frames"),
        ("not-json", ["hello there"], 1007, "not JSON"),
        ("deep", [deep], 1007, "nested too deeply"),
        ("not-an-object", ['"just text"'], 1008, "JSON object"),
        ("list", ["[1, 2]"], 1008, "JSON object"),
        ("too-large", ['{"api_key": "' + "k" * 100_000 + '"}'], 1009, "too large"),
        ("after-negative", [hello("-1")], 1008, "'after'"),
        ("after-huge", [hello("99999999999999999999999999")], 1008, "'after'"),
        ("after-infinite", [hello("1e999")], 1008, "'after'"),
        ("after-fraction", [hello("1.5")], 1008, "'after'"),
        ("after-text", [hello('"5"')], 1008, "'after'"),
        ("after-bool", [hello("true")], 1008, "'after'"),
        ("no-key", ['{"after": 0}'], 4401, "API key"),
        ("binary-after-subscribing", [hello("0"), b"\x00"], 1003, "Binary frames"),
        ("too-large-after-subscribing", [hello("0"), "x" * 100_000], 1009, "too large"),
    ]
    for name, frames, code, words in cases:
        got, reason, _ = await refused(live, *frames)
        assert (got, words in reason) == (code, True), (name, got, reason)
    async with ws_connect(ws_url(live)) as ws:  # and a good one still works
        await ws.send(hello("0"))
        assert json.loads(await ws.recv())["type"] == "subscribed"
    no_tracebacks(caplog)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_streams_per_trader_are_capped_with_a_reason(
        live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    alice, bob = await key(live, "alice"), await key(live, "bob")
    hello = json.dumps({"api_key": alice, "after": 0})
    opened = []
    for _ in range(CAP):
        ws = await ws_connect(ws_url(live))
        await ws.send(hello)
        assert json.loads(await ws.recv())["type"] == "subscribed"
        opened.append(ws)
    code, reason, _ = await refused(live, hello)
    assert code == 1008 and "Too many streams" in reason and str(CAP) in reason, reason
    async with ws_connect(ws_url(live)) as other:  # another trader is not affected
        await other.send(json.dumps({"api_key": bob}))
        assert json.loads(await other.recv())["type"] == "subscribed"
    await opened.pop().close()
    for _ in range(50):  # the server notices the close at once; give it a moment
        async with ws_connect(ws_url(live)) as again:
            await again.send(hello)
            first = await until_closed_or_first(again)
        if first == "subscribed":
            break
        await asyncio.sleep(0.05)
    assert first == "subscribed"
    for ws in opened:
        await ws.close()
    no_tracebacks(caplog)


async def until_closed_or_first(ws: ClientConnection) -> str:
    try:
        return str(json.loads(await asyncio.wait_for(ws.recv(), 5))["type"])
    except ConnectionClosed:
        return "closed"


# --- positions a trader sees are the trader's own ----------------------------------------------

async def trade(client: AsyncClient, n: int, prefix: str) -> list[dict[str, Any]]:
    done = []
    for i in range(n):
        order = await client.submit("KO", "buy", "1", client_order_id=f"{prefix}-{i}")
        done.append(await client.wait_for(order["id"], FINAL))
    return done


async def collect(client: AsyncClient, after: int, *, everyone: bool = False,
                  quiet: float = 0.5) -> list[dict[str, Any]]:
    found = []
    stream = client.stream(after, everyone=everyone, reconnect=False)
    try:
        while True:
            found.append(await asyncio.wait_for(anext(stream), quiet))
    except (TimeoutError, StopAsyncIteration):
        return found
    finally:
        await stream.aclose()


async def test_nothing_a_trader_sees_moves_when_another_trader_trades(live: Live) -> None:
    alice = AsyncClient(live.url, await key(live, "alice"))
    bob = AsyncClient(live.url, await key(live, "bob"))
    carol = AsyncClient(live.url, await key(live, "carol", Role.COMPLIANCE))
    mine = await trade(alice, 2, "a")
    async with httpx.AsyncClient(base_url=live.url, headers={
            "Authorization": f"Bearer {alice.api_key}"}) as raw:
        before = (await raw.get("/v1/orders")).json()["last_seq"]
        seen = await collect(alice, 0)
        await trade(bob, 3, "b")
        after = (await raw.get("/v1/orders")).json()["last_seq"]
        assert after == before, "alice's last_seq moved when bob traded"
        assert await collect(alice, before) == [], "alice was shown something of bob's"
        async with ws_connect(ws_url(live)) as ws:  # subscribed and heartbeat positions too
            await ws.send(json.dumps({"api_key": alice.api_key, "after": before}))
            assert json.loads(await ws.recv())["last_seq"] == before
    seqs = [e["seq"] for e in seen]
    assert seqs == list(range(1, len(seqs) + 1)), seqs  # 1, 2, 3...: alice's own count
    assert seqs[-1] == before
    assert {e["order_id"] for e in seen} == {o["id"] for o in mine}

    # Resuming from any position gives exactly what followed it, once.
    for k in range(len(seqs)):
        assert [e["seq"] for e in await collect(alice, seqs[k])] == seqs[k + 1:]
    # An order's own events carry the same positions as the stream.
    one = mine[0]["id"]
    events = (await alice.events(one))["events"]
    assert [e["seq"] for e in events] == [e["seq"] for e in seen if e["order_id"] == one]
    more = await trade(alice, 1, "a2")
    resumed = await collect(alice, seqs[-1])
    assert resumed and resumed[0]["seq"] == seqs[-1] + 1
    assert {e["order_id"] for e in resumed} == {more[0]["id"]}

    # Compliance's all-traders stream has a position of its own, resumable without loss.
    everything = await collect(carol, 0, everyone=True)
    positions = [e["seq"] for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert {e["trader_id"] for e in everything} == {
        (await alice.account())["id"], (await bob.account())["id"]}
    middle = positions[len(positions) // 2]
    assert [e["seq"] for e in await collect(carol, middle, everyone=True)] == \
        [p for p in positions if p > middle]
    for client in (alice, bob, carol):
        await client.close()
