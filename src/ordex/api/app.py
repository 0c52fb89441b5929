"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ordex import __version__
from ordex.api import docs, errors
from ordex.api.deps import account_for
from ordex.api.guard import BodyGuard
from ordex.api.order_lane import OrderLane
from ordex.api.routes import account, admin, execution, orders, stream, venues, web
from ordex.bootstrap import Services, build, prepare
from ordex.config import Settings

READY_CHECK_SECONDS = 2.0
DESCRIPTION = """Order execution service: submit, validate, risk-check, persist and follow orders.

Authenticate with `Authorization: Bearer YOUR_KEY`. Errors are always
`{"errors": [{"code", "field", "message", "hint"}]}`; decimals travel as strings.
"""


def create_app(settings: Settings | None = None, services: Services | None = None,
               on_ready: Callable[[Services], None] | None = None) -> FastAPI:
    """Build the app; it owns ``services`` (built from ``settings`` when not given)."""
    settings = settings or Settings()
    wired = services or build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await prepare(wired)
        await wired.start()
        if on_ready is not None:
            on_ready(wired)
        yield
        await wired.close()

    app = FastAPI(title="ordex", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = wired
    errors.install(app)

    async def authenticate(header: str | None) -> object:
        return await account_for(wired, header)

    # the last added runs first: the guard authenticates and bounds the body, then the lane
    app.add_middleware(OrderLane, services=wired, handlers=app.exception_handlers)
    app.add_middleware(BodyGuard, authenticate=authenticate, limit=settings.max_body_bytes)
    app.include_router(orders.router)
    app.include_router(account.router)
    app.include_router(execution.router)
    app.include_router(stream.router)
    app.include_router(admin.router)
    app.include_router(venues.router)
    web.install(app)
    docs.install(app)

    @app.get("/healthz", tags=["health"], summary="Alive")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/readyz", tags=["health"], summary="Store and venue reachable",
             responses={503: {"description": "Not ready: the body says what is not"}})
    async def readyz() -> JSONResponse:
        """200 when the store answers and the venue's session is up; 503 otherwise. Orders are
        still accepted and kept while the venue is down (they are sent when it returns).
        ``venue_details`` says why a session is not up (the venue's words and a hint) and which
        optional capabilities the venue lacks; a missing capability never makes it not ready."""
        try:
            await asyncio.wait_for(wired.queries.last_event_seq(), READY_CHECK_SECONDS)
            store = "ok"
        except Exception as exc:  # any failure to answer means not ready
            store = f"unreachable: {type(exc).__name__}"
        linked = venues.venues_of(wired)
        states = {v.name: "connected" if v.connected else "disconnected" for v in linked}
        ready = store == "ok" and all(v == "connected" for v in states.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "store": store,
                             "venues": states,
                             "venue_details": {v.name: venues.venue_json(v, i == 0)
                                               for i, v in enumerate(linked)}},
                            status_code=200 if ready else 503)

    return app
