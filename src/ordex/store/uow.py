"""The unit of work: one transaction on the writer, and the repository bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from ordex.store.database import Database
from ordex.store.repository import Repository


class UnitOfWork:
    """``async with uow:`` ... ``await uow.commit()``; leaving without commit rolls back."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self.repo: Repository

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._db.writer.connect()
        try:
            self._tx = await self._conn.begin()
        except BaseException:
            await self._conn.close()
            raise
        self.repo = Repository(self._conn)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._conn is not None
        try:
            if self._tx is not None and self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._conn.close()

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()

    async def rollback(self) -> None:
        assert self._tx is not None
        await self._tx.rollback()


@asynccontextmanager
async def reading(db: Database) -> AsyncIterator[Repository]:
    """A read-only repository on the reader pool (a consistent snapshot for its duration)."""
    async with db.reader.connect() as conn:
        async with conn.begin():
            yield Repository(conn)
