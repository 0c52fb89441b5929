"""Kept outcomes of commands sent with a client's own idempotency key: the row the execution
core writes with the command's other rows, and the two queries beside the order path (the
recent keys read at start, the old ones deleted in bounded chunks)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, select, tuple_

from ordex.store.database import Database
from ordex.store.tables import idempotency_keys as keys
from ordex.store.uow import UnitOfWork, reading

PRUNE_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class KeptOutcome:
    """``outcome`` is the outcome message's bytes as the port sends them; ``fingerprint`` the
    hex SHA-256 of the command's."""

    actor: UUID
    key: str
    fingerprint: str
    outcome: bytes
    created_at: datetime


class StoredKeys:
    """The kept outcomes in ``db``: what a command handler reads at start and prunes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def recent(self, since: datetime, per_actor: int) -> list[KeptOutcome]:
        return await recent_keys(self.db, since, per_actor)

    async def forget(self, before: datetime, most: int | None = None) -> int:
        return await forget_keys(self.db, before, most=most)


async def recent_keys(db: Database, since: datetime, per_actor: int) -> list[KeptOutcome]:
    """Each actor's ``per_actor`` most recent keys kept at ``since`` or later, oldest first."""
    ranked = select(
        keys, func.row_number().over(
            partition_by=keys.c.actor,
            order_by=(keys.c.created_at.desc(), keys.c.key.desc())).label("n"),
    ).where(keys.c.created_at >= since).subquery()
    query = select(ranked.c.actor, ranked.c.key, ranked.c.fingerprint, ranked.c.outcome,
                   ranked.c.created_at).where(ranked.c.n <= per_actor).order_by(
        ranked.c.created_at, ranked.c.key)
    async with reading(db) as repo:
        rows = (await repo.conn.execute(query)).all()
    return [KeptOutcome(r.actor, r.key, r.fingerprint, r.outcome.encode(), r.created_at)
            for r in rows]


async def forget_keys(db: Database, before: datetime, *, chunk: int = PRUNE_CHUNK,
                      most: int | None = None) -> int:
    """Delete the keys kept before ``before``, ``chunk`` rows per transaction (a short hold of
    the store's write lock each), ``most`` at most in all; how many were deleted."""
    deleted = 0
    while most is None or deleted < most:
        size = chunk if most is None else min(chunk, most - deleted)
        old = select(keys.c.actor, keys.c.key).where(keys.c.created_at < before).limit(size)
        async with UnitOfWork(db) as uow:
            done = await uow.repo.conn.execute(
                delete(keys).where(tuple_(keys.c.actor, keys.c.key).in_(old)))
            await uow.commit()
        deleted += done.rowcount
        if done.rowcount < size:
            break
    return deleted
