"""``/v1/stream``: every status change of the trader's orders, live, resumable by sequence number.

Protocol (JSON text frames). The client authenticates with ``Authorization: Bearer KEY`` on the
upgrade request, or in its first message; the first message may also carry ``after`` (the last
seq it has seen) and, for compliance and admin, ``"all": true``::

    -> {"api_key": "...", "after": 41}
    <- {"type": "subscribed", "after": 41, "last_seq": 57}
    <- {"seq": 42, "type": "partially_filled", "order_id": "...", ...}   (backlog, then live)
    <- {"type": "heartbeat", "last_seq": 57}                              (when idle)

Events come in ``seq`` order, each once. A trader's ``seq`` counts that trader's events only
(1, 2, 3, ...); compliance and admin see the service-wide position. A message the stream cannot
take ends it with a close code and a reason in words: 1003 binary frame, 1007 not JSON, 1008 a
value it refuses or too many streams, 1009 too large, 4401 no valid key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from typing import Any
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ordex.bootstrap import Services
from ordex.bus.memory import ORDER_EVENTS, trader_topic
from ordex.domain.accounts import Account, Role
from ordex.services.feed import InOrder, event_text
from ordex.services.queries import MAX_SEQ

router = APIRouter(tags=["stream"])
log = logging.getLogger("ordex.api.stream")

HEARTBEAT_SECONDS = 15.0
FIRST_MESSAGE_SECONDS = 10.0
BACKLOG_PAGE = 1000
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4401


class Refusal(Exception):
    """Ends the stream with a close frame; ``reason`` is short enough for one (123 bytes)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    services: Services = ws.app.state.services
    await ws.accept()
    try:
        hello = await _first_message(ws, services.settings.stream_max_message_bytes)
        account = await _authenticate(services, ws, hello)
        if account is None:
            await ws.send_json({"type": "error", "code": "unauthorized",
                                "message": "No valid API key was sent.",
                                "hint": "Send 'Authorization: Bearer KEY' on connect, or "
                                        "{\"api_key\": KEY} as the first message."})
            raise Refusal(CLOSE_UNAUTHORIZED, "No valid API key was sent.")
        after = _after(hello.get("after"))
        everyone = bool(hello.get("all")) and account.role is not Role.TRADER
        with (_slot(ws, account, services.settings.stream_connections_per_trader),
              services.accounts.session(account) as key_changed):
            await _serve(services, ws, account, everyone, after, key_changed)
    except Refusal as refusal:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await ws.close(refusal.code, refusal.reason)
    except WebSocketDisconnect:
        return


async def _first_message(ws: WebSocket, max_bytes: int) -> dict[str, Any]:
    """The optional hello; a client that authenticated by header may send nothing."""
    header = ws.headers.get("authorization")
    wait = 0.2 if header else FIRST_MESSAGE_SECONDS
    try:
        text = await asyncio.wait_for(_receive_text(ws, max_bytes), wait)
    except TimeoutError:
        return {}
    try:
        data = json.loads(text)
    except RecursionError:
        raise Refusal(CLOSE_INVALID, "The first message is nested too deeply to read; send a "
                                     "flat JSON object.") from None
    except ValueError:
        raise Refusal(CLOSE_INVALID, 'The first message is not JSON; send {"api_key": KEY, '
                                     '"after": SEQ}.') from None
    if not isinstance(data, dict):
        raise Refusal(CLOSE_POLICY, 'The first message must be a JSON object, like '
                                    '{"api_key": KEY, "after": SEQ}.')
    return data


async def _receive_text(ws: WebSocket, max_bytes: int) -> str:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raise Refusal(CLOSE_UNSUPPORTED, "Binary frames are not accepted; send JSON as text.")
    if len(text) > max_bytes:  # characters; at least as many bytes in UTF-8
        raise Refusal(CLOSE_TOO_BIG, f"Message too large: the limit is {max_bytes:,} bytes.")
    return str(text)


async def _authenticate(services: Services, ws: WebSocket,
                        hello: dict[str, Any]) -> Account | None:
    key = hello.get("api_key")
    header = ws.headers.get("authorization", "")
    if not isinstance(key, str) and header.lower().startswith("bearer "):
        key = header[7:].strip()
    if not isinstance(key, str) or not key or len(key) > 256:
        return None
    return await services.accounts.authenticate(key)


def _after(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise Refusal(CLOSE_POLICY, f"'after' must be a whole number from 0 to {MAX_SEQ}: the "
                                    "last seq you received.")
    return value


@contextlib.contextmanager
def _slot(ws: WebSocket, account: Account, limit: int) -> Any:
    """One of the account's ``limit`` concurrent streams, or a refusal."""
    state = ws.app.state
    if not hasattr(state, "stream_counts"):
        state.stream_counts = Counter()
    counts: Counter[UUID] = state.stream_counts
    if counts[account.id] >= limit:
        log.info("stream refused: too many open", extra={"trader_id": account.id})
        raise Refusal(CLOSE_POLICY, f"Too many streams open for this account (the limit is "
                                    f"{limit}); close one and connect again.")
    counts[account.id] += 1
    try:
        yield
    finally:
        counts[account.id] -= 1
        if counts[account.id] <= 0:
            del counts[account.id]


async def _serve(services: Services, ws: WebSocket, account: Account, everyone: bool,
                 after: int, key_changed: asyncio.Event) -> None:
    """Live events come from the bus, already serialized, and go out in order, each once (see
    ``InOrder``); the store is read only to resume after the last position sent: the backlog on
    connect, after the subscription lagged, or for an event still missing after a short wait.
    When the key the client connected with is rotated or revoked, the socket is closed with a
    reason."""
    trader = None if everyone else account.id
    per_trader = account.role is Role.TRADER
    topic = ORDER_EVENTS if trader is None else trader_topic(trader)
    max_bytes = services.settings.stream_max_message_bytes
    place = InOrder(after, everyone=everyone, service_wide=not per_trader,
                    counted=after if per_trader or everyone else None)
    with services.bus.subscribe(topic) as sub:
        last_seq = await services.queries.last_event_seq(trader if per_trader else None)
        await ws.send_json({"type": "subscribed", "after": after, "last_seq": last_seq})
        await _send_from_store(services, ws, trader, place, per_trader)
        receiver = asyncio.create_task(_drain_client(ws, max_bytes))
        revoked = asyncio.create_task(key_changed.wait())
        for task in (receiver, revoked):
            task.add_done_callback(lambda _: sub.stop())
        try:
            while True:
                due = place.store_due()
                woken = await sub.wait(HEARTBEAT_SECONDS if due is None else due)
                if receiver.done():
                    refusal = receiver.result()
                    if refusal is not None:
                        raise refusal
                    return
                if revoked.done():
                    await _close_revoked(ws)
                    return
                if sub.lagged:
                    sub.reset()
                    await _send_from_store(services, ws, trader, place, per_trader)
                    continue
                for frame in place.accept(sub.take()):
                    await ws.send_text(frame.text(service_wide=place.service_wide))
                if place.store_due() == 0.0:
                    await _send_from_store(services, ws, trader, place, per_trader)
                elif not woken and due is None:
                    await ws.send_json({"type": "heartbeat", "last_seq": place.shown})
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


async def _send_from_store(services: Services, ws: WebSocket, trader: UUID | None,
                           place: InOrder, per_trader: bool) -> None:
    """Everything after ``place.shown`` from the store, then what was held behind it."""
    while True:
        events = await services.queries.events(place.shown, trader_id=trader,
                                               limit=BACKLOG_PAGE, per_trader=per_trader)
        for event in events:
            await ws.send_text(event_text(event, service_wide=place.service_wide))
            place.sent_from_store(event)
        if len(events) < BACKLOG_PAGE:
            break
    for frame in place.accept(()):
        await ws.send_text(frame.text(service_wide=place.service_wide))


async def _drain_client(ws: WebSocket, max_bytes: int) -> Refusal | None:
    """Read (and ignore) what the client sends, so that a disconnect is noticed at once; a frame
    the stream does not take is the refusal that ends it."""
    try:
        while True:
            await _receive_text(ws, max_bytes)
    except WebSocketDisconnect:
        return None
    except Refusal as refusal:
        return refusal
