"""``/v1/stream``: every status change of the trader's orders, live, resumable by sequence number.

Protocol (JSON text frames). The client authenticates with ``Authorization: Bearer KEY`` on the
upgrade request, or in its first message; the first message may also carry ``after`` (the last
seq it has seen) and, for compliance and admin, ``"all": true``::

    -> {"api_key": "...", "after": 41}
    <- {"type": "subscribed", "after": 41, "last_seq": 57}
    <- {"seq": 42, "type": "partially_filled", "order_id": "...", ...}   (backlog, then live)
    <- {"type": "heartbeat", "last_seq": 57}                              (when idle)

Events come in ``seq`` order, each once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ordex.bootstrap import Services
from ordex.bus.memory import ORDER_EVENTS, Subscription, trader_topic
from ordex.domain.accounts import Account, Role

router = APIRouter(tags=["stream"])

HEARTBEAT_SECONDS = 15.0
FIRST_MESSAGE_SECONDS = 10.0
BACKLOG_PAGE = 1000
CLOSE_UNAUTHORIZED = 4401


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    try:
        hello = await _first_message(ws)
        account = await _authenticate(services, ws, hello)
        if account is None:
            await ws.send_json({"type": "error", "code": "unauthorized",
                                "message": "No valid API key was sent.",
                                "hint": "Send 'Authorization: Bearer KEY' on connect, or "
                                        "{\"api_key\": KEY} as the first message."})
            await ws.close(CLOSE_UNAUTHORIZED)
            return
        after = _int(hello.get("after"), 0)
        everyone = bool(hello.get("all")) and account.role is not Role.TRADER
        with services.accounts.session(account) as key_changed:
            await _serve(services, ws, account.id if not everyone else None, after, key_changed)
    except WebSocketDisconnect:
        return


async def _first_message(ws: WebSocket) -> dict[str, Any]:
    """The optional hello; a client that authenticated by header may send nothing."""
    header = ws.headers.get("authorization")
    wait = 0.2 if header else FIRST_MESSAGE_SECONDS
    try:
        text = await asyncio.wait_for(ws.receive_text(), wait)
    except TimeoutError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def _authenticate(services: Services, ws: WebSocket,
                        hello: dict[str, Any]) -> Account | None:
    key = hello.get("api_key")
    header = ws.headers.get("authorization", "")
    if not isinstance(key, str) and header.lower().startswith("bearer "):
        key = header[7:].strip()
    if not isinstance(key, str) or not key or len(key) > 256:
        return None
    return await services.accounts.authenticate(key)


async def _serve(services: Services, ws: WebSocket, trader: UUID | None, after: int,
                 key_changed: asyncio.Event) -> None:
    """Bus messages only say that something was committed; what is sent is always read from the
    store after the last seq sent, so events published out of order are never skipped. When the
    key the client connected with is rotated or revoked, the socket is closed with a reason."""
    topic = ORDER_EVENTS if trader is None else trader_topic(trader)
    with services.bus.subscribe(topic) as sub:
        last_seq = await services.queries.last_event_seq()
        await ws.send_json({"type": "subscribed", "after": after, "last_seq": last_seq})
        sent = await _send_from_store(services, ws, trader, after)
        receiver = asyncio.create_task(_drain_client(ws))
        revoked = asyncio.create_task(key_changed.wait())
        try:
            while True:
                message = await _next_or_gone(sub, receiver, revoked)
                if receiver.done():
                    return
                if revoked.done():
                    await _close_revoked(ws)
                    return
                if sub.lagged:
                    sub.reset()
                elif message is None:
                    await ws.send_json({"type": "heartbeat", "last_seq": sent})
                    continue
                elif message["seq"] <= sent:
                    continue
                sent = await _send_from_store(services, ws, trader, sent)
        finally:
            for task in (receiver, revoked):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                    await task


async def _close_revoked(ws: WebSocket) -> None:
    message = "Your API key was revoked or replaced by a new one."
    await ws.send_json({"type": "error", "code": "unauthorized", "message": message,
                        "hint": "Connect again with your new key; ask an administrator for one "
                                "if you have none."})
    await ws.close(CLOSE_UNAUTHORIZED, reason=message)


async def _next_or_gone(sub: Subscription, *stops: asyncio.Task[Any]) -> dict[str, Any] | None:
    """The next bus message, or None after a heartbeat's wait or as soon as one of ``stops``
    ends (the client left, its key was revoked)."""
    getter = asyncio.create_task(sub.next_within(HEARTBEAT_SECONDS))
    await asyncio.wait({getter, *stops}, return_when=asyncio.FIRST_COMPLETED)
    if not getter.done():
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        return None
    return getter.result()


async def _send_from_store(services: Services, ws: WebSocket, trader: UUID | None,
                           after: int) -> int:
    sent = after
    while True:
        events = await services.queries.events(sent, trader_id=trader, limit=BACKLOG_PAGE)
        for event in events:
            await ws.send_json(event.as_json())
            sent = event.seq
        if len(events) < BACKLOG_PAGE:
            return sent


async def _drain_client(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends, so that a disconnect is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await ws.receive_text()


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return default
    return value
