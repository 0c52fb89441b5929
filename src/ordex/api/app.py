"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ordex import __version__
from ordex.api import docs, errors
from ordex.api.routes import account, admin, execution, orders, stream, web
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
    app.include_router(orders.router)
    app.include_router(account.router)
    app.include_router(execution.router)
    app.include_router(stream.router)
    app.include_router(admin.router)
    web.install(app)
    docs.install(app)

    @app.get("/healthz", tags=["health"], summary="Alive")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/readyz", tags=["health"], summary="Store and venue reachable",
             responses={503: {"description": "Not ready: the body says what is not"}})
    async def readyz() -> JSONResponse:
        """200 when the store answers and the venue's session is up; 503 otherwise. Orders are
        still accepted and kept while the venue is down (they are sent when it returns)."""
        try:
            await asyncio.wait_for(wired.queries.last_event_seq(), READY_CHECK_SECONDS)
            store = "ok"
        except Exception as exc:  # any failure to answer means not ready
            store = f"unreachable: {type(exc).__name__}"
        engine = wired.engine
        venues = {} if engine is None else {
            engine.venue.name: "connected" if engine.venue.connected else "disconnected"}
        ready = store == "ok" and all(v == "connected" for v in venues.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "store": store,
                             "venues": venues}, status_code=200 if ready else 503)

    return app
