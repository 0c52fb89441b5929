"""The FastAPI application: ``create_app(settings)``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from ordex import __version__
from ordex.api import errors
from ordex.api.routes import account, admin, execution, orders, stream, web
from ordex.bootstrap import Services, build, prepare
from ordex.config import Settings

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
                  lifespan=lifespan)
    app.state.services = wired
    errors.install(app)
    app.include_router(orders.router)
    app.include_router(account.router)
    app.include_router(execution.router)
    app.include_router(stream.router)
    app.include_router(admin.router)
    web.install(app)

    @app.get("/healthz", tags=["health"], summary="Alive")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app
