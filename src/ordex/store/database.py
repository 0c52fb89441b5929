"""Engines for the store: one writer and one reader pool, tuned per backend.

SQLite allows one writer at a time. Writers therefore share a single connection, taken in turn
from the pool (fair and without busy-waiting), and begin with ``BEGIN IMMEDIATE`` so that a read
followed by a write in one transaction can never be refused halfway. Other processes (the CLI)
wait on SQLite's busy timeout. Readers use their own pool and, in WAL mode, never block writers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ordex.store.types import json_text, json_value

JSON_CODEC = {"json_serializer": json_text, "json_deserializer": json_value}


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.writer = create_async_engine(url, echo=echo, pool_size=1, max_overflow=0,
                                              pool_timeout=60, **JSON_CODEC)
            self.reader = create_async_engine(url, echo=echo, pool_size=4, max_overflow=4,
                                              **JSON_CODEC)
            _sqlite_pragmas(self.writer, immediate=True)
            _sqlite_pragmas(self.reader, immediate=False)
        else:
            self.writer = create_async_engine(url, echo=echo, pool_size=20, max_overflow=20,
                                              pool_pre_ping=True, **JSON_CODEC)
            self.reader = self.writer

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def _sqlite_pragmas(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, issue BEGIN, so that the mode can be chosen.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
