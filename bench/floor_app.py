"""The floor: a minimal FastAPI service that does what a submit costs without ordex.

``POST /v1/orders`` validates the body with the same pydantic model ordex's API uses, gives the
order an id, sends one event like ordex's ``accepted`` event to every WebSocket connected to
``/v1/stream`` (none in most runs) and answers 201. No store, no risk, no venue. uvicorn runs it
with the settings ``ordex serve`` uses (httptools with the same header deadline, uvloop,
no access log, the same WebSocket message limit).

Run by ``bench.bench_core`` as a process of its own::

    python -m bench.floor_app --host 127.0.0.1 --port 8123
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from ordex.api.http import header_timeout_protocol
from ordex.api.schemas import OrderRequest
from ordex.clock import iso
from ordex.config import Settings


def create_app() -> FastAPI:
    app = FastAPI()
    sockets: set[WebSocket] = set()
    seq = 0

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/orders", status_code=201)
    async def submit(body: OrderRequest) -> JSONResponse:
        nonlocal seq
        seq += 1
        now = iso(datetime.now(UTC))
        order: dict[str, Any] = {"id": str(uuid.uuid4()), "status": "accepted",
                                 "created_at": now, "updated_at": now,
                                 **body.model_dump(mode="json")}
        if sockets:
            event = {"seq": seq, "type": "accepted", "order_id": order["id"], **order,
                     "timestamp": now}
            for ws in tuple(sockets):
                try:
                    await ws.send_json(event)
                except (WebSocketDisconnect, RuntimeError):
                    sockets.discard(ws)
        return JSONResponse(order, status_code=201)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()  # the hello, as ordex's stream takes it
        await ws.send_json({"type": "subscribed", "after": 0, "last_seq": seq})
        sockets.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            sockets.discard(ws)

    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor_app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    settings = Settings()
    server = uvicorn.Server(uvicorn.Config(
        create_app(), host=args.host, port=args.port, log_level="info", access_log=False,
        http=header_timeout_protocol(settings.header_timeout_seconds),
        ws_max_size=settings.stream_max_message_bytes,
        ws_per_message_deflate=settings.stream_compression))
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    raise SystemExit(main())
