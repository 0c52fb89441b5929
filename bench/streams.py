"""A benchmark's WebSocket on ``/v1/stream``: opened once the service has said ``subscribed``,
so that no later event is missed; closed with the task that reads it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect


async def subscribe(ws_url: str, key: str, *, after: int = 0, within: float = 30.0,
                    **options: Any) -> ClientConnection:
    """The trader ``key``'s stream from after seq ``after``; ``within`` s to open it
    and again for ``subscribed``; ``options`` go to ``connect``."""
    ws = await ws_connect(ws_url, open_timeout=within, ping_interval=None, **options)
    await ws.send(json.dumps({"api_key": key, "after": after}))
    first = json.loads(await asyncio.wait_for(ws.recv(), within))
    if first.get("type") != "subscribed":
        raise RuntimeError(f"the stream answered {first!r}, not 'subscribed'")
    return ws


async def close(ws: ClientConnection | None, reader: asyncio.Task[None] | None) -> None:
    """Stop ``reader`` (the task reading ``ws``), then close ``ws`` within 5 s; either may be
    None (never started)."""
    if reader is not None:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    if ws is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 5)
