"""Shared fixtures: stores on SQLite and on a real PostgreSQL server, and the wired app."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest

from ordex.api.app import create_app
from ordex.bootstrap import Services, build, prepare
from ordex.config import Settings
from ordex.domain.accounts import Role
from ordex.store.database import Database
from ordex.store.rows import RowWriter, open_writer
from tests.support.postgres import PostgresServer

_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def fresh_postgres_database(server: PostgresServer) -> str:
    name = f"ordex_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    url = None
    if backend == "postgres":
        url = await fresh_postgres_database(request.getfixturevalue("postgres"))
    return Settings(data_dir=tmp_path / "data", database_url=url, seed_demo=False,
                    execution_enabled=False)


@pytest.fixture
async def empty_db(settings: Settings) -> AsyncIterator[Database]:
    """The store with no schema yet (migration tests build it to the revision they need)."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True)
    database = Database(settings.resolved_database_url())
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    wired = build(settings)
    await prepare(wired)
    try:
        yield wired
    finally:
        await wired.close()


@pytest.fixture
async def writer(services: Services) -> AsyncIterator[RowWriter]:
    """The order path's row writer on the service's store."""
    rows = await open_writer(services.db)
    try:
        yield rows
    finally:
        await rows.close()


class Api:
    """An HTTP client on the app, with a trader key and helpers to make more accounts."""

    def __init__(self, client: httpx.AsyncClient, services: Services) -> None:
        self.client = client
        self.services = services

    async def account(self, name: str, role: Role = Role.TRADER, cash: str = "100000",
                      positions: dict[str, tuple[str, str]] | None = None) -> dict[str, str]:
        issued = await self.services.accounts.create(
            name, role, Decimal(cash),
            positions={s: (Decimal(q), Decimal(c)) for s, (q, c) in (positions or {}).items()})
        return {"Authorization": f"Bearer {issued.api_key}", "id": str(issued.account.id)}


@pytest.fixture
async def api(services: Services) -> AsyncIterator[Api]:
    app = create_app(services.settings, services)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ordex.test") as client:
        yield Api(client, services)


def auth(headers: dict[str, str]) -> dict[str, str]:
    return {"Authorization": headers["Authorization"]}
